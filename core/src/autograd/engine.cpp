// The backward engine.
//
// Note [Backward engine]
// One call (backward or grad) is a GraphTask:
//   1. Discovery: a walk from the roots' grad_fns counts, for every reachable node, how many edges point at it
//      (its dependencies). When the caller names inputs, a second walk marks the nodes from which an input is
//      reachable; only those run (others cannot contribute).
//   2. Each node gets an input buffer, one slot per output of the node; gradients arriving at the same slot are
//      summed there (never in the producer), so a tensor used twice gets the sum of both uses.
//   3. A node whose dependency count reaches zero is ready and goes to the ready queue of the device its
//      gradients live on. Within a queue the node created last runs first (highest sequence number), which
//      tends to free activations early. When the graph's nodes ran on two or more CUDA devices, each of those
//      devices' queues is drained by that device's worker thread and the calling thread drains the rest (CPU
//      nodes), so the devices' host work overlaps (Note [Device workers]); otherwise the calling thread drains
//      every queue. On CUDA each node runs on its forward's stream, and a gradient crossing streams is fenced
//      with an event where a buffer receives it (Note [Backward streams] in backward_streams.h).
//   4. Running a node: tensor hooks of its outputs, then capture (grad) or accumulation (AccumulateGrad), then
//      apply() under grad mode = create_graph, so with create_graph the backward ops record a graph of their own.
//      Without retain_graph the node's saved tensors are released right after it runs; a second backward
//      through it raises (SavedVariable::unpack names the node).
// Errors leave the graph as it was up to the failing node; buffers are per task, so nothing leaks into the next
// call.
#include "vt/autograd/engine.h"
#include "vt/core/autocast.h"
#include "vt/core/profiler.h"

#include <algorithm>
#include <condition_variable>
#include <exception>
#include <map>
#include <mutex>
#include <queue>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "backward_streams.h"
#include "device_workers.h"
#include "vt/autograd/grad_mode.h"
#include "vt/core/ops.h"

namespace vt::autograd {
namespace {

struct NodeTask {
  uint64_t sequence_nr;
  std::shared_ptr<Node> node;
  bool operator<(const NodeTask& o) const { return sequence_nr < o.sequence_nr; }  // max-heap on sequence_nr
};

// One ready queue per device; keyed by (type, index) so CPU and every GPU get their own.
class ReadyQueues {
 public:
  void push(Device d, std::shared_ptr<Node> n) {
    uint64_t seq = n->sequence_nr();
    queues_[{int(d.type), d.index}].push({seq, std::move(n)});
  }
  // The next node for `owner`: a device worker (owner >= 0) takes only its CUDA device's queue; the calling
  // thread (owner -1) takes every queue no worker owns.
  std::shared_ptr<Node> pop(int owner, const std::vector<int>& workers) {
    for (auto& [k, q] : queues_) {
      if (q.empty()) continue;
      bool cuda = k.first == int(DeviceType::CUDA);
      int worker = cuda && std::find(workers.begin(), workers.end(), k.second) != workers.end() ? k.second : -1;
      if (worker != owner) continue;
      std::shared_ptr<Node> n = q.top().node;
      q.pop();
      return n;
    }
    return nullptr;
  }

 private:
  std::map<std::pair<int, int>, std::priority_queue<NodeTask>> queues_;
};

StreamRef stream_of(const Node& n) { return {n.stream_device(), cuda::StreamId(n.stream())}; }

// A node's incoming gradients. Producers on several device workers may add to one buffer at once, so adds take
// the buffer's own lock (the sums run outside the task's lock); the node reads it only after its last producer
// is done (its dependency count reached zero under the task's lock).
struct InputBuffer {
  std::mutex mu;
  std::vector<Tensor> grads;
  Device device = kCPU;  // of the first defined gradient: the queue the node goes to
  // g was produced on `producer`; the buffer's node consumes it on its own stream (or, for a node without one,
  // on the current stream of g's device), which first waits for the producer. Sums run on the consumer's stream.
  void add(uint32_t slot, Tensor g, StreamRef producer, const Node& consumer_node) {
    std::lock_guard<std::mutex> lock(mu);
    if (grads.size() <= slot) grads.resize(slot + 1);
    StreamRef consumer = stream_of(consumer_node);
    if (!consumer.valid()) consumer = current_stream_of(g);
    order_for_consumer(g, producer.valid() ? producer : current_stream_of(g), consumer);
    Tensor& cur = grads[slot];
    if (!cur.defined()) {
      bool first = true;
      for (const Tensor& other : grads) first = first && !other.defined();
      if (first) device = g.device();
      cur = std::move(g);
      return;
    }
    StreamGuard on(g.is_cuda() && consumer.device == g.device().index ? consumer : StreamRef{});
    cur = ops::add(cur, g);
  }
};

class GraphTask {
 public:
  GraphTask(bool keep_graph, bool create_graph) : keep_graph_(keep_graph), create_graph_(create_graph) {}

  // Mode: accumulate into leaves (backward) or capture at `targets` (grad, or backward with inputs=).
  void set_targets(const std::vector<Edge>& targets, bool accumulate) {
    accumulate_targets_ = accumulate;
    for (size_t i = 0; i < targets.size(); ++i) {
      if (targets[i].valid()) target_slots_[targets[i].node.get()].push_back({targets[i].input_nr, i});
    }
    captured_.resize(targets.size());
    has_targets_ = true;
  }

  std::vector<Tensor> run(const std::vector<Edge>& roots, std::vector<Tensor> root_grads) {
    discover(roots);
    if (has_targets_) mark_needed(roots);
    for (size_t i = 0; i < roots.size(); ++i)  // root gradients come from the caller's current stream
      buffers_[roots[i].node.get()].add(roots[i].input_nr, root_grads[i], current_stream_of(root_grads[i]),
                                        *roots[i].node);
    std::unordered_set<Node*> queued;
    for (const Edge& r : roots) {
      if (dependencies_[r.node.get()] == 0 && queued.insert(r.node.get()).second) push_ready(r.node);
    }
    DeviceWorkersLease lease;
    if (std::vector<int> devices = cuda_devices(); devices.size() >= 2 && lease.held()) {
      workers_ = devices;
      std::vector<StreamRef> caller_streams = current_streams();  // where every worker starts
      run_on_device_workers(
          devices,
          [&](int d) {
            StreamsGuard on(caller_streams);
            drain(d);
          },
          [&] { drain(-1); });
    } else {
      drain(-1);
    }
    if (error_) std::rethrow_exception(error_);
    join_streams(used_streams_);
    return std::move(captured_);
  }

 private:
  // The CUDA devices the graph's nodes ran their forward on.
  std::vector<int> cuda_devices() const {
    std::set<int> devices;
    for (const auto& [node, count] : dependencies_)
      if (node->stream_device() >= 0) devices.insert(node->stream_device());
    return {devices.begin(), devices.end()};
  }

  void push_ready(const std::shared_ptr<Node>& node) {  // with mu_ held (or before any worker runs)
    ready_.push(buffers_[node.get()].device, node);
    ++outstanding_;
    cv_.notify_all();
  }

  // Runs the nodes of `owner`'s queues (Note [Device workers]) until the task is over or has failed. The first
  // exception of any thread ends every thread's loop; the caller rethrows it once all have stopped.
  void drain(int owner) {
    GradModeGuard mode(create_graph_);
    AutocastSuspendGuard no_autocast;  // backward formulas keep the forward's dtypes (Note [Autocast suspension])
    std::unique_lock<std::mutex> lk(mu_);
    while (!error_) {
      std::shared_ptr<Node> node = ready_.pop(owner, workers_);
      if (!node) {
        if (outstanding_ == 0) return;
        cv_.wait(lk);
        continue;
      }
      auto buffer = buffers_.extract(node.get());
      StreamRef stream = stream_of(*node);
      if (stream.valid()) used_streams_.insert(stream);
      lk.unlock();
      try {
        run_node(node, std::move(buffer.mapped().grads), stream);
      } catch (...) {
        lk.lock();
        if (!error_) error_ = std::current_exception();
        cv_.notify_all();
        return;
      }
      lk.lock();
      if (--outstanding_ == 0) cv_.notify_all();
    }
  }

  void run_node(const std::shared_ptr<Node>& node, std::vector<Tensor> grads, StreamRef stream) {
    grads.resize(std::max<size_t>(grads.size(), node->num_outputs()));
    std::vector<Tensor> outputs;
    {
      StreamGuard on(stream);  // the node's backward runs on its forward's stream
      outputs = evaluate(*node, std::move(grads));
    }
    const std::vector<Edge>& edges = node->next_edges();
    for (size_t i = 0; i < edges.size(); ++i) {
      const Edge& e = edges[i];
      if (!e.valid()) continue;
      bool defined = i < outputs.size() && outputs[i].defined();
      if (defined) validate_output(*node, i, outputs[i], e);
      InputBuffer* buffer;
      {
        std::lock_guard<std::mutex> g(mu_);
        buffer = &buffers_[e.node.get()];  // an empty buffer still lets the node run (its other inputs may be defined)
      }
      if (defined) buffer->add(e.input_nr, std::move(outputs[i]), stream, *e.node);
      std::lock_guard<std::mutex> g(mu_);
      if (--dependencies_[e.node.get()] == 0) push_ready(e.node);
    }
  }

 private:
  void discover(const std::vector<Edge>& roots) {
    std::vector<Node*> stack;
    std::unordered_set<Node*> seen;
    for (const Edge& r : roots)
      if (seen.insert(r.node.get()).second) stack.push_back(r.node.get());
    while (!stack.empty()) {
      Node* n = stack.back();
      stack.pop_back();
      dependencies_.try_emplace(n, 0);
      for (const Edge& e : n->next_edges()) {
        if (!e.valid()) continue;
        ++dependencies_[e.node.get()];
        if (seen.insert(e.node.get()).second) stack.push_back(e.node.get());
      }
    }
  }

  // needed_[n]: some target lies strictly below n, so n must run. Iterative post-order walk.
  void mark_needed(const std::vector<Edge>& roots) {
    std::vector<std::pair<Node*, size_t>> stack;
    for (const Edge& r : roots) {
      if (needed_.count(r.node.get())) continue;
      stack.push_back({r.node.get(), 0});
      needed_[r.node.get()] = false;
      while (!stack.empty()) {
        auto& [n, i] = stack.back();
        const std::vector<Edge>& edges = n->next_edges();
        if (i < edges.size()) {
          Node* child = edges[i++].node.get();
          if (child && !needed_.count(child)) {
            needed_[child] = false;
            stack.push_back({child, 0});
          }
          continue;
        }
        bool need = false;
        for (const Edge& e : edges)
          if (e.valid() && (needed_[e.node.get()] || target_slots_.count(e.node.get()))) need = true;
        needed_[n] = need;
        stack.pop_back();
      }
    }
  }

  // Every node's gradient must fit the tensor it flows to (torch's validate_outputs): a broadcast shape is
  // summed down and another dtype cast; anything else is the node's fault, reported as a user error since
  // custom Functions and kernels registered from Python produce these gradients.
  static void validate_output(const Node& node, size_t i, Tensor& g, const Edge& e) {
    if (e.input_nr >= e.node->num_outputs()) return;
    const TensorGeometry& geo = e.node->output_geometry(e.input_nr);
    if (!std::equal(g.sizes().begin(), g.sizes().end(), geo.sizes.begin(), geo.sizes.end())) {
      VT_CHECK(is_expandable_to(geo.sizes, g.sizes()), "Function ", node.name(), " returned an invalid gradient at ",
               "index ", i, " - got ", shape_str(g.sizes()), " but expected shape compatible with ",
               shape_str(geo.sizes));
      g = sum_to(g, geo.sizes);
    }
    if (g.dtype() != geo.dtype) g = ops::to_dtype(g, geo.dtype);
  }

  std::vector<Tensor> evaluate(Node& node, std::vector<Tensor>&& grads) {
    node.run_tensor_hooks(grads);
    bool is_target = false;
    if (auto it = target_slots_.find(&node); it != target_slots_.end()) {
      is_target = true;
      for (auto [slot, index] : it->second) {
        const Tensor& g = grads.at(slot);
        if (!g.defined()) continue;
        std::lock_guard<std::mutex> lock(capture_mu_);
        captured_[index] = captured_[index].defined() ? ops::add(captured_[index], g) : g;
      }
    }
    auto need = needed_.find(&node);  // read-only here: device workers evaluate nodes at once
    bool run = !has_targets_ || (need != needed_.end() && need->second) || (accumulate_targets_ && is_target && dynamic_cast<AccumulateGrad*>(&node));
    if (!run) return {};
    bool any = false;
    for (const Tensor& g : grads) any = any || g.defined();
    std::vector<Tensor> outputs;
    if (any && profiler::active()) [[unlikely]] {  // torch's range name, so profiles read alike
      profiler::Range range("autograd::engine::evaluate_function: " + std::string(node.name()));
      outputs = node.apply(std::move(grads));
    } else if (any) {
      outputs = node.apply(std::move(grads));
    }
    if (!keep_graph_) node.release_variables();
    VT_INTERNAL_ASSERT(!any || outputs.size() == node.next_edges().size() || dynamic_cast<AccumulateGrad*>(&node),
                       "node ", node.name(), " returned ", outputs.size(), " gradients for ", node.next_edges().size(), " inputs");
    return outputs;
  }

  bool keep_graph_, create_graph_;
  bool has_targets_ = false, accumulate_targets_ = false;
  std::unordered_map<Node*, int> dependencies_;
  std::unordered_map<Node*, bool> needed_;
  std::unordered_map<Node*, std::vector<std::pair<uint32_t, size_t>>> target_slots_;
  std::vector<Tensor> captured_;
  std::mutex capture_mu_;

  // What the draining threads share, under mu_ (Note [Device workers]).
  std::mutex mu_;
  std::condition_variable cv_;
  std::unordered_map<Node*, InputBuffer> buffers_;
  ReadyQueues ready_;
  std::vector<int> workers_;  // the devices whose queues a worker drains; empty when the caller drains all
  int64_t outstanding_ = 0;   // nodes queued or running
  std::set<StreamRef> used_streams_;
  std::exception_ptr error_;
};

// Checks the roots and makes their starting gradients (ones for one-element roots without one).
std::pair<std::vector<Edge>, std::vector<Tensor>> prepare_roots(const std::vector<Tensor>& roots,
                                                                const std::vector<Tensor>& grad_roots) {
  VT_CHECK(!roots.empty(), "backward/grad needs at least one output tensor");
  VT_CHECK(grad_roots.empty() || grad_roots.size() == roots.size(), "got ", grad_roots.size(),
           " gradients for ", roots.size(), " outputs");
  std::vector<Edge> edges;
  std::vector<Tensor> grads;
  for (size_t i = 0; i < roots.size(); ++i) {
    const Tensor& r = roots[i];
    VT_CHECK(requires_grad(r), "element ", i, " of tensors does not require grad and does not have a grad_fn");
    Tensor g = i < grad_roots.size() ? grad_roots[i] : Tensor();
    if (!g.defined()) {
      VT_CHECK(r.numel() == 1, "grad can be implicitly created only for scalar outputs (output ", i, " has shape ",
               shape_str(r.sizes()), ")");
      g = ops::full(r.sizes(), Scalar(int64_t(1)), r.dtype(), r.device());
    } else {
      VT_CHECK(std::equal(g.sizes().begin(), g.sizes().end(), r.sizes().begin(), r.sizes().end()),
               "Mismatch in shape: grad_output[", i, "] has a shape of ", shape_str(g.sizes()), " and output[", i,
               "] has a shape of ", shape_str(r.sizes()), ".");
    }
    edges.push_back(gradient_edge(r));
    grads.push_back(std::move(g));
  }
  return {std::move(edges), std::move(grads)};
}

std::vector<Edge> input_edges(const std::vector<Tensor>& inputs) {
  std::vector<Edge> out;
  for (size_t i = 0; i < inputs.size(); ++i) {
    VT_CHECK(requires_grad(inputs[i]), "One of the differentiated Tensors (input ", i, ", ",
             tensor_description(inputs[i]), ") does not require grad");
    out.push_back(gradient_edge(inputs[i]));
  }
  return out;
}

}  // namespace

void backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grad_roots, bool retain_graph,
              bool create_graph, const std::vector<Tensor>& inputs) {
  auto [edges, grads] = prepare_roots(roots, grad_roots);
  GraphTask task(retain_graph, create_graph);
  if (inputs.empty()) {
    task.run(edges, std::move(grads));
    return;
  }
  task.set_targets(input_edges(inputs), /*accumulate=*/true);
  std::vector<Tensor> captured = task.run(edges, std::move(grads));
  // Leaves accumulated through their AccumulateGrad; non-leaf inputs get the captured gradient as .grad.
  GradModeGuard mode(create_graph);
  AutocastSuspendGuard no_autocast;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (is_leaf(inputs[i]) || !captured[i].defined()) continue;
    AutogradMeta& m = meta(inputs[i]);
    m.grad = m.grad.defined() ? ops::add(m.grad, captured[i]) : captured[i];
  }
}

std::vector<Tensor> grad(const std::vector<Tensor>& roots, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_roots, bool retain_graph, bool create_graph,
                         bool allow_unused) {
  auto [edges, grads] = prepare_roots(roots, grad_roots);
  VT_CHECK(!inputs.empty(), "grad requires non-empty inputs.");
  GraphTask task(retain_graph, create_graph);
  task.set_targets(input_edges(inputs), /*accumulate=*/false);
  std::vector<Tensor> captured = task.run(edges, std::move(grads));
  for (size_t i = 0; i < captured.size(); ++i) {
    VT_CHECK(allow_unused || captured[i].defined(), "One of the differentiated Tensors (input ", i, ", ",
             tensor_description(inputs[i]), ") appears to not have been used in the graph. Set allow_unused=True "
             "if this is the desired behavior.");
  }
  return captured;
}

}  // namespace vt::autograd
