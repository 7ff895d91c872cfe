// The Fabric's cross-device call hook (Note [Cross-device calls] in vt/core/dispatcher.h).
//
// One call: pick the compute device (the `out` argument's when there is one, else the first non-scalar tensor's:
// where TensorIterator puts the kernel), look up the route of every other device the arguments live on, order the
// compute stream after those devices' current streams, replace operands on staged pairs by copies on the compute
// device, run the CUDA kernel under a device guard, then record the remote storages on the compute stream so their
// blocks are not handed out while the kernel may still read them (Note [Stream-ordered free]). Each remote device
// is counted once per call (Note [Counter invariants]).
#include <algorithm>

#include "vt/core/dispatcher.h"
#include "vt/core/memory_overlap.h"
#include "vt/core/ops.h"
#include "vt/cuda/event.h"
#include "vt/cuda/graph.h"
#include "vt/cuda/guard.h"
#include "vt/cuda/memory.h"
#include "vt/cuda/peer_access.h"
#include "vt/fabric/cross_device.h"
#include "vt/fabric/observe.h"
#include "vt/fabric/routes.h"

namespace vt::fabric {
namespace {

bool is_operand(const Tensor& t) { return t.defined() && !(t.device().is_cpu() && t.dim() == 0); }

template <typename F>
void for_each_tensor(Stack& s, F&& f) {
  for (size_t i = 0; i < s.size(); ++i) {
    if (auto* t = std::get_if<Tensor>(&s[i])) f(*t, i);
    else if (auto* ts = std::get_if<std::vector<Tensor>>(&s[i]))
      for (Tensor& e : *ts) f(e, i);
  }
}

int compute_device(const OperatorEntry& op, Stack& s) {
  const auto& args = op.schema().args;
  for (size_t i = 0; i < args.size() && i < s.size(); ++i) {
    if (args[i].name != "out") continue;
    if (auto* t = std::get_if<Tensor>(&s[i]); t && t->defined() && t->is_cuda()) return t->device().index;
  }
  int device = -1;
  for_each_tensor(s, [&](Tensor& t, size_t) {
    if (device < 0 && is_operand(t) && t.is_cuda()) device = t.device().index;
  });
  return device;
}

// Note [Remote layouts]: kernels read remote operands in place through unified addresses, but an op may first
// prepare an operand with kernels of its own - a GEMM makes a gapped matrix contiguous, an index op its index -
// and those run on the operand's device and its current stream (where the op puts a tensor of that device),
// unordered with the compute stream that then reads the result. Operands with gaps or overlaps are the ones an
// op prepares, so a remote operand that is not non-overlapping and dense is first copied to the compute device
// by one kernel on the compute stream that reads the peer (capturable, exact), as a staged operand is. Dense
// remote operands - transposes and permutations included - are read where they are: copying them would change
// a GEMM's layout and so its rounding (an H200 run showed a transposed remote operand then differing from the
// local matmul in the last bits). Written arguments (an in-place op's self, out=) are never replaced by copies.
bool is_written(const OperatorEntry& op, size_t arg) {
  const auto& args = op.schema().args;
  if (arg == 0 && !op.schema().name.empty() && op.schema().name.back() == '_') return true;
  if (arg >= args.size()) return false;
  const std::string& name = args[arg].name;
  return name.rfind("out", 0) == 0 || name == "values" || name == "indices";
}
bool needs_layout_copy(const OperatorEntry& op, const Tensor& t, size_t arg) {
  return !t.is_contiguous() && !is_written(op, arg) && !is_non_overlapping_and_dense(t);  // the cached flag first: the unboxed hot path
}

struct Remote {
  int device;
  Route route;
  Reason reason;
  int64_t bytes = 0;
};

// Finishes an unboxed call (see FabricHook::begin).
class FabricScope final : public detail::CrossDeviceScope {
 public:
  FabricScope(int compute, cuda::Stream stream) : guard_(compute), compute_(compute), stream_(stream) {}
  ~FabricScope() override {
    end_span(span_);
    for (const auto& [data, device] : remote_)
      cuda::device_allocator(device).try_record_stream(data, stream_.handle, compute_);
  }
  cuda::DeviceGuard guard_;
  int compute_;
  cuda::Stream stream_;
  std::shared_ptr<GpuSpan> span_;
  std::vector<std::pair<void*, int>> remote_;  // (storage data, its device)
};

class FabricHook final : public detail::CrossDeviceHook {
 public:
  std::unique_ptr<detail::CrossDeviceScope> begin(const OperatorEntry& op, const detail::TensorArg* tensors,
                                                  int n) override {
    const auto& args = op.schema().args;
    int compute = -1;
    for (int i = 0; i < n; ++i) {  // the out argument's device, else the first CUDA operand's
      const detail::TensorArg& t = tensors[i];
      if (!is_operand(*t.tensor) || !t.tensor->is_cuda()) continue;
      if (size_t(t.arg) < args.size() && args[size_t(t.arg)].name == "out") {
        compute = t.tensor->device().index;
        break;
      }
      if (compute < 0) compute = t.tensor->device().index;
    }
    if (compute < 0) return nullptr;
    Remote remotes[detail::DeviceCollector::kSeen];
    int nremote = 0;
    for (int i = 0; i < n; ++i) {
      const Tensor& t = *tensors[i].tensor;
      if (!is_operand(t) || !t.is_cuda() || t.device().index == compute) continue;
      int d = t.device().index;
      int k = 0;
      while (k < nremote && remotes[k].device != d) ++k;
      if (needs_layout_copy(op, t, size_t(tensors[i].arg))) return nullptr;  // run() copies it first
      if (k == nremote) {
        Route r = route(compute, d);
        if (r == Route::Uncovered || r == Route::Staged) return nullptr;  // run() stages, or raises
        remotes[nremote++] = {d, r, Reason::None};
      }
      remotes[k].bytes += t.nbytes();
    }
    cuda::Stream stream = cuda::current(compute);
    for (int k = 0; k < nremote; ++k) cuda::wait_stream(stream, cuda::current(remotes[k].device));
    auto scope = std::make_unique<FabricScope>(compute, stream);
    scope->span_ = begin_span(compute, stream.handle);
    for (int i = 0; i < n; ++i) {
      const Tensor& t = *tensors[i].tensor;
      if (is_operand(t) && t.is_cuda() && t.device().index != compute)
        scope->remote_.emplace_back(t.storage()->data(), t.device().index);
    }
    for (int k = 0; k < nremote; ++k) {
      count(compute, remotes[k].device, remotes[k].bytes, remotes[k].route, Reason::None);
      if (tracing()) {
        EventRecord e{.kind = EventKind::Enqueue, .name = op.name(), .device = compute, .peer = remotes[k].device,
                      .bytes = remotes[k].bytes, .stream = stream.handle};
        e.gpu = scope->span_;
        record_event(std::move(e));
      }
    }
    return scope;
  }

  // Note [Staging under capture]: a staged operand is copied with cudaMemcpyPeerAsync, which the driver stages
  // itself when the pair has no peer access, and which CUDA refuses to record into a graph (it would invalidate
  // the capture, even one joined over both devices by vt.fabric.graphs.capture). While the compute stream
  // captures, such a call is refused before anything is enqueued, so the capture stays valid, with the reason
  // capture_active in the message and in the event ring.
  static void refuse_staging_under_capture(const OperatorEntry& op, int compute, const std::vector<Remote>& remotes) {
    auto staged = std::find_if(remotes.begin(), remotes.end(), [](const Remote& r) { return r.route == Route::Staged; });
    if (staged == remotes.end()) return;
    {
      cuda::DeviceGuard g(compute);
      if (!cuda::is_current_stream_capturing()) return;
    }
    EventRecord e{.kind = EventKind::Error, .name = op.name(), .device = compute, .peer = staged->device,
                  .bytes = staged->bytes, .stream = cuda::current(compute).handle};
    e.reason = Reason::CaptureActive;
    e.detail = reason_name(staged->reason);
    record_event(std::move(e));
    VT_FAIL(op.name(), ": cuda:", staged->device, " -> cuda:", compute, " has no P2P route (",
            reason_name(staged->reason), "), and its staged copy cannot be captured in a CUDA graph (capture_active). "
            "Move the operand to cuda:", compute, " before the capture, or capture on a Fabric whose pairs use P2P.");
  }

  bool run(const OperatorEntry& op, Stack& s) override {
    int compute = compute_device(op, s);
    if (compute < 0) return false;
    std::vector<Remote> remotes;
    bool covered = true;
    for_each_tensor(s, [&](Tensor& t, size_t) {
      if (!is_operand(t) || !t.is_cuda() || t.device().index == compute) return;
      int d = t.device().index;
      auto it = std::find_if(remotes.begin(), remotes.end(), [d](const Remote& r) { return r.device == d; });
      if (it == remotes.end()) {
        Route r = route(compute, d);
        covered = covered && r != Route::Uncovered;
        remotes.push_back({d, r, r == Route::Staged ? route_reason(compute, d) : Reason::None});
        it = remotes.end() - 1;
      }
      it->bytes += t.nbytes();
    });
    if (!covered) return false;  // the dispatcher raises torch's mixed-device error
    cuda::Stream stream = cuda::current(compute);
    refuse_staging_under_capture(op, compute, remotes);
    for (const Remote& r : remotes) cuda::wait_stream(stream, cuda::current(r.device));
    std::vector<Tensor> read_remotely;
    for_each_tensor(s, [&](Tensor& t, size_t arg) {
      if (!is_operand(t) || !t.is_cuda() || t.device().index == compute) return;
      const Remote& r = *std::find_if(remotes.begin(), remotes.end(),
                                      [&](const Remote& x) { return x.device == t.device().index; });
      if (r.route != Route::Staged && needs_layout_copy(op, t, arg)) {  // Note [Remote layouts]
        read_remotely.push_back(t);  // the copy kernel reads it on the compute stream
        Tensor here = ops::empty(t.sizes(), t.dtype(), Device(DeviceType::CUDA, compute));
        cuda::copy_reading_peer(here, t);
        t = here;
      } else if (r.route == Route::Staged) {  // a stream-ordered copy (Note [Cross-device copy ordering])
        Tensor here = ops::empty(t.sizes(), t.dtype(), Device(DeviceType::CUDA, compute));
        t = ops::copy_(here, t);
      } else {
        read_remotely.push_back(t);
      }
    });
    auto span = begin_span(compute, stream.handle);
    {
      cuda::DeviceGuard g(compute);
      op.call_backend_boxed(DispatchKey::CUDA, s);
    }
    end_span(span);
    for (const Tensor& t : read_remotely)
      cuda::device_allocator(t.device().index).try_record_stream(t.storage()->data(), stream.handle, compute);
    for (const Remote& r : remotes) {
      count(compute, r.device, r.bytes, r.route, r.reason);
      if (r.route == Route::Staged || tracing()) {
        EventRecord e{.kind = r.route == Route::Staged ? EventKind::Fallback : EventKind::Enqueue, .name = op.name(),
                      .device = compute, .peer = r.device, .bytes = r.bytes, .stream = stream.handle};
        e.reason = r.reason;
        e.gpu = span;
        record_event(std::move(e));
      }
    }
    return true;
  }
};

FabricHook g_hook;

}  // namespace

void install_cross_device_hook() { detail::set_cross_device_hook(&g_hook); }

}  // namespace vt::fabric
