#pragma once
// The autograd graph. Every tensor produced by a differentiable op while grad mode is on points (through its
// AutogradMeta) at the Node that computes its input gradients, and at which of that Node's outputs it is
// (output_nr). A Node's next_edges say where each input gradient goes: an Edge (node, input_nr) is "input
// input_nr of node". Leaves that require grad are reached through an AccumulateGrad node, which adds the
// incoming gradient into the leaf's .grad.
//
// Ownership points from outputs towards inputs only: tensor -> meta -> grad_fn -> next nodes -> ... ->
// AccumulateGrad -> leaf tensor. A leaf's meta holds its AccumulateGrad weakly, and a Node saves its own output
// without the output's history (SavedVariable), so no reference cycle keeps a graph alive.
//
// Note [Requires-grad flag]
// Whether a tensor requires grad lives in TensorImpl (requires_grad()), not here: the dispatcher tests it for
// every tensor argument of every op, and a bool in the impl costs one load with no autograd header in sight.
// A tensor with a grad_fn always has the flag set; a leaf has it when the user asked for it.
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "vt/core/tensor.h"

namespace vt::autograd {

class Node;
// A hook on a tensor's gradient; an undefined result keeps the gradient unchanged. Held through a shared_ptr so
// that a handle can remove it (by emptying the function) wherever it is stored.
using TensorHook = std::function<Tensor(const Tensor&)>;
using TensorHookPtr = std::shared_ptr<TensorHook>;

struct Edge {
  std::shared_ptr<Node> node;
  uint32_t input_nr = 0;
  bool valid() const { return node != nullptr; }
};

}  // namespace vt::autograd

namespace vt {
struct AutogradMeta {
  Tensor grad;                               // accumulated gradient (leaves, and non-leaves with retain_grad)
  std::shared_ptr<autograd::Node> grad_fn;   // null for leaves
  uint32_t output_nr = 0;
  std::weak_ptr<autograd::Node> grad_accumulator;  // leaves only (weak: the node holds the leaf)
  std::vector<autograd::TensorHookPtr> leaf_hooks;    // hooks of a leaf, run by its AccumulateGrad
  // register_post_accumulate_grad_hook: called with the leaf itself once .grad holds the new sum (result unused)
  std::vector<autograd::TensorHookPtr> post_accumulate_hooks;
  bool retains_grad = false;
  // A view's grad_fn matches its base's history while the storage is at this version (Note [View rebasing]).
  uint32_t view_version = 0;
  std::string name;           // optional, used in error messages
};
}  // namespace vt

namespace vt::autograd {

// Metadata of one Node input or output, enough to make zeros or check a gradient's shape without the tensor.
struct TensorGeometry {
  DimVector sizes;
  ScalarType dtype = ScalarType::Float32;
  Device device = kCPU;
  TensorGeometry() = default;
  explicit TensorGeometry(const Tensor& t) : sizes(t.sizes()), dtype(t.dtype()), device(t.device()) {}
};

// Note [Iterative graph teardown]
// A graph is a chain of shared_ptrs (node -> next edge's node -> ...), so freeing its last owner would free
// the chain recursively, one stack frame per node: a 100,000-op chain overflows the stack. ~Node therefore
// moves the next nodes it solely owns onto a per-thread list and, in the outermost destructor only, frees that
// list in a loop; a node freed from the loop adds its own next nodes to the list instead of recursing. A derived
// node's members (saved tensors) are destroyed before this runs, while its edges still hold the next nodes, so
// they only drop a count.
class Node : public std::enable_shared_from_this<Node> {
 public:
  Node();
  virtual ~Node();  // Note [Iterative graph teardown]
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // grads[i] is the gradient of output i (undefined when none flowed); returns one gradient per next edge.
  virtual std::vector<Tensor> apply(std::vector<Tensor>&& grads) = 0;
  virtual std::string name() const = 0;
  // Frees saved tensors once backward has run through this node without retain_graph.
  virtual void release_variables() {}

  std::vector<Edge>& next_edges() { return next_edges_; }
  const std::vector<Edge>& next_edges() const { return next_edges_; }
  // Later nodes (higher numbers) run first when several are ready: a cheap stand-in for reverse topological order.
  uint64_t sequence_nr() const { return sequence_nr_; }
  uint32_t num_outputs() const { return uint32_t(outputs_.size()); }
  const TensorGeometry& output_geometry(uint32_t i) const { return outputs_.at(i); }
  // Records an output's geometry; the first CUDA output also fixes the node's stream (Note [Backward streams]).
  uint32_t add_output(const Tensor& t);
  // The CUDA stream that was current on the device of the node's first CUDA output when the node was made (the
  // forward's stream); backward runs the node there. device -1: a CPU node.
  int stream_device() const { return stream_device_; }
  uintptr_t stream() const { return stream_; }

  // Hooks registered on a non-leaf tensor: run on the gradient of output `output_nr` before apply().
  void add_tensor_hook(uint32_t output_nr, TensorHookPtr hook) { tensor_hooks_.push_back({output_nr, std::move(hook)}); }
  // retain_grad() on a non-leaf: the gradient of that output is stored in the tensor's meta (held weakly).
  void set_retain_grad(uint32_t output_nr, std::weak_ptr<TensorImpl> impl) {
    std::lock_guard<std::mutex> lock(retain_mutex_);
    retain_grad_.push_back({output_nr, std::move(impl)});
  }
  // The tensor got a new grad_fn (an in-place op): its .grad now comes from there, not from this node.
  void drop_retain_grad(const TensorImpl* impl);
  void run_tensor_hooks(std::vector<Tensor>& grads);

 private:
  struct HookEntry {
    uint32_t output_nr;
    TensorHookPtr hook;
  };
  struct RetainEntry {
    uint32_t output_nr;
    std::weak_ptr<TensorImpl> impl;
  };
  std::vector<Edge> next_edges_;
  std::vector<TensorGeometry> outputs_;
  std::vector<HookEntry> tensor_hooks_;
  std::vector<RetainEntry> retain_grad_;
  std::mutex retain_mutex_;  // Note [Concurrent accumulation]
  uint64_t sequence_nr_;
  int stream_device_ = -1;
  uintptr_t stream_ = 0;
};

// A leaf's sink: runs the leaf's hooks, adds the gradient into leaf.grad, then runs its post-accumulate hooks.
// Note [Concurrent accumulation]
// Backward runs without the GIL, so several threads may run backward through graphs that share a leaf (or a
// retained non-leaf) at once. Reading .grad, adding to it and storing it back is one critical section per
// accumulator (the node's mutex); without it two threads read the same old .grad and one update is lost.
class AccumulateGrad final : public Node {
 public:
  explicit AccumulateGrad(Tensor leaf);
  std::vector<Tensor> apply(std::vector<Tensor>&& grads) override;
  std::string name() const override { return "AccumulateGrad"; }
  const Tensor& variable() const { return leaf_; }

 private:
  Tensor leaf_;
  std::mutex mutex_;
};

// Note [Saved tensor hooks]
// torch.autograd.graph.saved_tensors_hooks: while a pack hook is installed on this thread (a stack; the innermost
// applies), a SavedVariable gives its tensor to the hook and keeps only what the hook returns (a PackedSaved),
// not the tensor: activation offloading moves it to the host and back, say. unpack() in the backward asks the
// PackedSaved for the tensor again and gives it the original's place in the graph (its grad_fn and output
// number, or its leaf's accumulator), so that create_graph backward differentiates through it. As torch's, a
// hooked tensor skips the version check (the hook decides what comes back).
struct PackedSaved {
  virtual ~PackedSaved() = default;
  virtual Tensor unpack() const = 0;
};
using SavedTensorPackHook = std::function<std::shared_ptr<PackedSaved>(const Tensor&)>;
void push_saved_tensor_hooks(SavedTensorPackHook pack);
void pop_saved_tensor_hooks();
bool saved_tensor_hooks_active();

// A tensor kept for backward. Records the storage version at save time and refuses to hand the tensor back if
// an in-place op moved it since (Note [Version counter]). A node's own output is kept without its history (it
// would point back at the node) and given it again when unpacked.
class SavedVariable {
 public:
  SavedVariable() = default;
  SavedVariable(const Tensor& t, bool is_output);
  // `owner` is the node unpacking (used to re-attach an output's history and to name the node in errors).
  Tensor unpack(const std::shared_ptr<Node>& owner) const;
  void reset();  // frees the tensor; later unpacks raise the "backward a second time" error
  bool defined() const { return saved_.defined() || packed_ || was_freed_; }

 private:
  Tensor saved_;
  std::shared_ptr<PackedSaved> packed_;  // Note [Saved tensor hooks]: set instead of saved_
  std::shared_ptr<Node> packed_grad_fn_;  // a packed input's place in the graph: its grad_fn, or
  std::weak_ptr<Node> packed_accumulator_;  // its leaf's accumulator (held by the graph, as torch holds it)
  uint32_t version_ = 0;
  uint32_t output_nr_ = 0;
  bool is_output_ = false;
  bool was_freed_ = false;
  std::string producer_;  // name of the node that made the tensor, for the error message
};

// ---- per-tensor helpers ----
AutogradMeta& meta(const Tensor& t);                       // creates the meta on first use
inline AutogradMeta* meta_if(const Tensor& t) { return t.impl()->autograd_meta.get(); }
inline bool requires_grad(const Tensor& t) { return t.defined() && t.impl()->requires_grad(); }
void set_requires_grad(const Tensor& t, bool flag);      // leaves only; float dtypes only
bool is_leaf(const Tensor& t);
std::shared_ptr<Node> grad_fn(const Tensor& t);
// Where gradient for `t` goes: its grad_fn and output_nr, or its leaf accumulator (created on demand).
Edge gradient_edge(const Tensor& t);
// Makes `t` an output of `node` (sets requires_grad and grad_fn) and records its geometry in the node.
void set_history(const Tensor& t, const std::shared_ptr<Node>& node);
// A new tensor sharing t's data and version counter, with no autograd history.
Tensor detach(const Tensor& t);
// Sums `grad` down to `sizes` (undoes broadcasting). Returns grad unchanged when the sizes already match.
Tensor sum_to(const Tensor& grad, IntArrayRef sizes);
bool is_expandable_to(IntArrayRef shape, IntArrayRef desired);
std::string tensor_description(const Tensor& t);  // "[float32 [2, 3]]"
// Raises the "derivative for X is not implemented" error; used by nodes of ops without a formula.
[[noreturn]] void not_implemented_derivative(const std::string& op);

}  // namespace vt::autograd
