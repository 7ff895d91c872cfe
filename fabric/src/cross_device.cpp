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
#include "vt/core/ops.h"
#include "vt/cuda/event.h"
#include "vt/cuda/guard.h"
#include "vt/cuda/memory.h"
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

struct Remote {
  int device;
  Route route;
  Reason reason;
  int64_t bytes = 0;
};

class FabricHook final : public detail::CrossDeviceHook {
 public:
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
    for (const Remote& r : remotes) cuda::wait_stream(stream, cuda::current(r.device));
    std::vector<Tensor> read_remotely;
    for_each_tensor(s, [&](Tensor& t, size_t) {
      if (!is_operand(t) || !t.is_cuda() || t.device().index == compute) return;
      const Remote& r = *std::find_if(remotes.begin(), remotes.end(),
                                      [&](const Remote& x) { return x.device == t.device().index; });
      if (r.route == Route::Staged) {  // a stream-ordered copy (Note [Cross-device copy ordering])
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
        EventRecord e{r.route == Route::Staged ? EventKind::Fallback : EventKind::Enqueue, op.name(), compute,
                      r.device, r.bytes, stream.handle};
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
