// Autograd graph pieces: Node bookkeeping, the leaf accumulator, saved tensors with version checks, and the
// per-tensor helpers (requires_grad, gradient edges, history). See vt/autograd/node.h for the ownership model.
#include "vt/autograd/node.h"

#include <atomic>

#include "view_rebase.h"
#include "vt/autograd/grad_mode.h"
#include "vt/core/dispatcher.h"
#include "vt/core/memory_overlap.h"
#include "vt/core/ops.h"
#include "vt/cuda/stream.h"

namespace vt::autograd {

namespace {
std::atomic<uint64_t> next_sequence_nr{0};
}

Node::Node() : sequence_nr_(next_sequence_nr.fetch_add(1, std::memory_order_relaxed)) {}

Node::~Node() {
  // Note [Iterative graph teardown]
  thread_local std::vector<std::shared_ptr<Node>> pending;
  thread_local bool draining = false;
  for (Edge& e : next_edges_)
    if (e.node && e.node.use_count() == 1) pending.push_back(std::move(e.node));
  next_edges_.clear();
  if (draining) return;
  draining = true;
  while (!pending.empty()) {
    std::shared_ptr<Node> n = std::move(pending.back());
    pending.pop_back();
    n.reset();  // may push n's next nodes
  }
  draining = false;
}

uint32_t Node::add_output(const Tensor& t) {
  if (stream_device_ < 0 && t.defined() && t.is_cuda()) {
    stream_device_ = t.device().index;
    stream_ = cuda::current_stream(stream_device_);
  }
  outputs_.emplace_back(t);
  return uint32_t(outputs_.size() - 1);
}

namespace {
// A hook may replace a gradient, but not by one of another shape, dtype or device: the gradient would no longer
// fit the tensor it belongs to (torch's check_single_result).
void run_hook(const TensorHook& hook, Tensor& g) {
  Tensor replaced = hook(g);
  if (!replaced.defined()) return;
  VT_CHECK(std::equal(replaced.sizes().begin(), replaced.sizes().end(), g.sizes().begin(), g.sizes().end()),
           "hook has changed the size of value: the gradient was ", shape_str(g.sizes()), ", the hook returned ",
           shape_str(replaced.sizes()));
  VT_CHECK(replaced.dtype() == g.dtype() && replaced.device() == g.device(), "hook has changed the type of value (was ",
           dtype_name(g.dtype()), " on ", g.device().str(), " got ", dtype_name(replaced.dtype()), " on ",
           replaced.device().str(), ")");
  g = std::move(replaced);
}
}  // namespace

void Node::run_tensor_hooks(std::vector<Tensor>& grads) {
  for (HookEntry& h : tensor_hooks_) {
    Tensor& g = grads.at(h.output_nr);
    if (!g.defined() || !*h.hook) continue;
    run_hook(*h.hook, g);
  }
  // retain_grad runs after the user's hooks, so .grad sees what they returned (as torch).
  if (retain_grad_.empty()) return;
  std::lock_guard<std::mutex> lock(retain_mutex_);  // Note [Concurrent accumulation]
  for (RetainEntry& r : retain_grad_) {
    std::shared_ptr<TensorImpl> impl = r.impl.lock();
    const Tensor& g = grads.at(r.output_nr);
    if (!impl || !g.defined()) continue;
    AutogradMeta& m = meta(Tensor(impl));
    m.grad = m.grad.defined() ? ops::add(m.grad, g) : (is_grad_enabled() ? g : ops::clone(g));
  }
}

void Node::drop_retain_grad(const TensorImpl* impl) {
  std::lock_guard<std::mutex> lock(retain_mutex_);
  std::erase_if(retain_grad_, [&](const RetainEntry& r) {
    std::shared_ptr<TensorImpl> p = r.impl.lock();
    return !p || p.get() == impl;
  });
}

// ---- AccumulateGrad ----

AccumulateGrad::AccumulateGrad(Tensor leaf) : leaf_(std::move(leaf)) { add_output(leaf_); }

std::vector<Tensor> AccumulateGrad::apply(std::vector<Tensor>&& grads) {
  Tensor g = std::move(grads.at(0));
  if (!g.defined()) return {};
  AutogradMeta& m = meta(leaf_);
  for (TensorHookPtr& hook : m.leaf_hooks)
    if (*hook) run_hook(*hook, g);
  std::unique_lock<std::mutex> lock(mutex_);  // Note [Concurrent accumulation]
  if (!m.grad.defined()) {
    // Keep the gradient as .grad when nothing else can see its memory; otherwise copy, so a later in-place
    // accumulation cannot write into a user's tensor (the gradient handed to backward(), say). Overlapping
    // layouts (expanded grads) are made dense for the same reason.
    bool shared = g.storage().use_count() > 1 || !g.is_contiguous();
    if (is_grad_enabled()) m.grad = g;
    else if (!shared) m.grad = detach(g);
    else m.grad = g.is_contiguous() ? ops::clone(g) : ops::contiguous(g);
  } else if (is_grad_enabled() || has_internal_overlap(m.grad)) {
    // create_graph: out of place, so the old .grad's graph stays valid. A .grad stored under create_graph may
    // be an expanded tensor, which cannot be added to in place (Note [In-place overlap]).
    m.grad = ops::add(m.grad, g);
  } else {
    static const TypedOp<Tensor(const Tensor&, const Tensor&, const Scalar&)> add_inplace("vt::add_");
    add_inplace(m.grad, g, Scalar(int64_t(1)));
  }
  // Outside the lock: a hook may read or reset .grad (an optimizer step per parameter, say), and another thread's
  // accumulation into the same leaf should not wait for it. A copy of the list, as a hook may register another.
  lock.unlock();
  std::vector<TensorHookPtr> post = m.post_accumulate_hooks;
  for (TensorHookPtr& hook : post)
    if (*hook) (*hook)(leaf_);
  return {};
}

// ---- SavedVariable ----

namespace {
thread_local std::vector<SavedTensorPackHook> t_pack_hooks;  // Note [Saved tensor hooks]
}  // namespace

void push_saved_tensor_hooks(SavedTensorPackHook pack) { t_pack_hooks.push_back(std::move(pack)); }

void pop_saved_tensor_hooks() {
  VT_CHECK(!t_pack_hooks.empty(), "pop_saved_tensor_hooks: no saved tensor hooks are installed");
  t_pack_hooks.pop_back();
}

bool saved_tensor_hooks_active() { return !t_pack_hooks.empty(); }

SavedVariable::SavedVariable(const Tensor& t, bool is_output) : is_output_(is_output) {
  if (!t.defined()) return;
  VT_CHECK(!t.storage()->is_inference(), "Inference tensors cannot be saved for backward. To work around you can "
           "make a clone to get a normal tensor and use it in autograd.");  // Note [Inference tensors]
  version_ = t.storage()->version();
  if (AutogradMeta* m = meta_if(t); m && m->grad_fn) {
    output_nr_ = m->output_nr;
    producer_ = m->grad_fn->name();
  }
  // An output keeps no history (it would own the node that saves it); an input keeps all of it, so that
  // create_graph backward can differentiate through it.
  Tensor kept = is_output ? detach(t) : t;
  if (!t_pack_hooks.empty()) {
    SavedTensorPackHook hook = t_pack_hooks.back();
    t_pack_hooks.pop_back();  // the hook's own ops save nothing through it (torch runs pack with hooks off)
    std::shared_ptr<PackedSaved> packed;
    try {
      packed = hook(kept);
    } catch (...) {
      t_pack_hooks.push_back(std::move(hook));
      throw;
    }
    t_pack_hooks.push_back(std::move(hook));
    if (!is_output && requires_grad(t)) {
      Edge e = gradient_edge(t);
      if (meta(t).grad_fn) packed_grad_fn_ = e.node;
      else packed_accumulator_ = e.node;
      output_nr_ = e.input_nr;
    }
    packed_ = std::move(packed);
    return;
  }
  saved_ = std::move(kept);
}

Tensor SavedVariable::unpack(const std::shared_ptr<Node>& owner) const {
  if (was_freed_) {
    VT_FAIL("Trying to backward through the graph a second time (or directly access saved tensors after they ",
            "have already been freed), at ", owner ? owner->name() : std::string("a node"),
            ". Saved intermediate values of the graph are freed when you call .backward() or autograd.grad(). ",
            "Specify retain_graph=True if you need to backward through the graph a second time or if you need to ",
            "access saved tensors after calling backward.");
  }
  if (packed_) {  // Note [Saved tensor hooks]: the hook's tensor, put in the original's place in the graph
    Tensor t = packed_->unpack();
    VT_CHECK(t.defined(), "the unpack hook of saved_tensors_hooks must return a Tensor");
    Tensor out = detach(t);
    std::shared_ptr<Node> node = is_output_ ? owner : packed_grad_fn_;
    if (!node && !is_output_) node = packed_accumulator_.lock();
    if (!node) return out;
    out.impl()->set_requires_grad_flag(true);
    AutogradMeta& m = meta(out);
    m.grad_fn = node;
    m.output_nr = output_nr_;
    return out;
  }
  if (!saved_.defined()) return Tensor();
  uint32_t now = saved_.storage()->version();
  if (now != version_) {
    std::string which = producer_.empty() ? "" : ", which is output " + std::to_string(output_nr_) + " of " + producer_ + ",";
    if (is_output_ && owner) which = ", which is output " + std::to_string(output_nr_) + " of " + owner->name() + ",";
    VT_FAIL("one of the variables needed for gradient computation has been modified by an inplace operation: ",
            tensor_description(saved_), which, " is at version ", now, "; expected version ", version_,
            " instead. Hint: the in-place op ran after the tensor was saved by ", owner ? owner->name() : "a node",
            "; use an out-of-place op, or clone() the tensor before modifying it.");
  }
  if (!is_output_ || !owner) return saved_;
  // Give the output its history back: a fresh alias whose grad_fn is the owner, so double backward through
  // the saved output reaches the owner's inputs.
  Tensor out = detach(saved_);
  out.impl()->set_requires_grad_flag(true);
  AutogradMeta& m = meta(out);
  m.grad_fn = owner;
  m.output_nr = output_nr_;
  return out;
}

void SavedVariable::reset() {
  if (saved_.defined() || packed_) was_freed_ = true;
  saved_ = Tensor();
  packed_.reset();
}

// ---- per-tensor helpers ----

AutogradMeta& meta(const Tensor& t) {
  auto& slot = t.impl()->autograd_meta;
  if (!slot) slot = std::make_shared<AutogradMeta>();
  return *slot;
}

void set_requires_grad(const Tensor& t, bool flag) {
  if (!is_leaf(t)) {
    VT_CHECK(flag, "you can only change requires_grad flags of leaf variables. If you want to use a computed ",
             "variable in a subgraph that doesn't require differentiation use var_no_grad = var.detach().");
    return;
  }
  VT_CHECK(!flag || is_floating(t.dtype()), "only Tensors of floating point dtype can require gradients (got ",
           dtype_name(t.dtype()), ")");
  VT_CHECK(!flag || !t.storage()->is_inference() || is_inference_mode_enabled(),  // Note [Inference tensors]
           "Setting requires_grad=True on inference tensor outside InferenceMode is not allowed.");
  t.impl()->set_requires_grad_flag(flag);
  if (flag) meta(t);
}

bool is_leaf(const Tensor& t) {
  refresh_view_history(t);
  AutogradMeta* m = meta_if(t);
  return !m || !m->grad_fn;
}

std::shared_ptr<Node> grad_fn(const Tensor& t) {
  refresh_view_history(t);
  AutogradMeta* m = meta_if(t);
  return m ? m->grad_fn : nullptr;
}

Edge gradient_edge(const Tensor& t) {
  if (!requires_grad(t)) return {};
  refresh_view_history(t);  // Note [View rebasing]
  AutogradMeta& m = meta(t);
  if (m.grad_fn) return {m.grad_fn, m.output_nr};
  std::shared_ptr<Node> acc = m.grad_accumulator.lock();
  if (!acc) {
    acc = std::make_shared<AccumulateGrad>(t);
    m.grad_accumulator = acc;
  }
  return {acc, 0};
}

void set_history(const Tensor& t, const std::shared_ptr<Node>& node) {
  t.impl()->set_requires_grad_flag(true);
  AutogradMeta& m = meta(t);
  // retain_grad follows the tensor to its new history: after y.mul_(2), y.grad is the gradient of the new y.
  if (m.retains_grad && m.grad_fn && m.grad_fn != node) m.grad_fn->drop_retain_grad(t.impl());
  m.grad_fn = node;
  m.output_nr = node->add_output(t);
  if (m.retains_grad) node->set_retain_grad(m.output_nr, t.impl_ptr());
}

Tensor detach(const Tensor& t) {
  Tensor out = make_view(t, t.sizes(), t.strides(), t.storage_offset());
  out.impl()->set_wrapped_number(t.impl()->is_wrapped_number());
  return out;
}

bool is_expandable_to(IntArrayRef shape, IntArrayRef desired) {
  if (shape.size() > desired.size()) return false;
  for (size_t i = 0; i < shape.size(); ++i) {
    int64_t s = shape[shape.size() - 1 - i], d = desired[desired.size() - 1 - i];
    if (s != d && s != 1) return false;
  }
  return true;
}

Tensor sum_to(const Tensor& grad, IntArrayRef sizes) {
  IntArrayRef gs = grad.sizes();
  if (gs.size() == sizes.size() && std::equal(gs.begin(), gs.end(), sizes.begin())) return grad;
  VT_INTERNAL_ASSERT(is_expandable_to(sizes, gs), "gradient of shape ", shape_str(gs), " cannot be summed to ",
                     shape_str(sizes));
  std::vector<int64_t> dims;
  size_t lead = gs.size() - sizes.size();
  for (size_t d = 0; d < lead; ++d) dims.push_back(int64_t(d));
  for (size_t d = 0; d < sizes.size(); ++d)
    if (sizes[d] == 1 && gs[lead + d] != 1) dims.push_back(int64_t(lead + d));
  Tensor out = dims.empty() ? grad : ops::sum(grad, IntArrayRef(dims), /*keepdim=*/true, std::nullopt);
  return ops::view(out, sizes);  // drops the leading size-1 dims
}

std::string tensor_description(const Tensor& t) {
  std::string s = "[";  // appended, not a chain of operator+ (gcc 12 warns falsely on that chain's memcpy)
  s += dtype_name(t.dtype());
  s += ' ';
  s += shape_str(t.sizes());
  s += ']';
  return s;
}

void not_implemented_derivative(const std::string& op) {
  if (op.rfind("vt::", 0) != 0) {  // an extension op (vibetensor.library, a plugin): its author can add one
    VT_FAIL_KIND(NotImplemented, "the derivative for '", op, "' is not implemented; register a backward with ",
                 "vibetensor.library.register_autograd(\"", op, "\", backward, setup_context=...), define the op with ",
                 "composite=True if its kernel is made of differentiable vibetensor ops, or run it under vt.no_grad()");
  }
  VT_FAIL_KIND(NotImplemented, "the derivative for '", op, "' is not implemented yet (autograd formulas are ",
               "being added op by op; run it under vt.no_grad() or detach its inputs if no gradient is needed)");
}

}  // namespace vt::autograd
