// vibetensor._C.cuda stream and event primitives, as integer handles; vibetensor/cuda/streams.py wraps them
// in torch-shaped Stream and Event classes.
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>

#include "common.h"
#include "vt/cuda/device.h"
#include "vt/cuda/event.h"
#include "vt/cuda/peer_access.h"
#include "vt/cuda/guard.h"
#include "vt/cuda/kernel_errors.h"
#include "vt/cuda/memory.h"
#include "vt/cuda/stream.h"

namespace vt::py {
namespace {
cudaStream_t as_stream(uintptr_t s) { return reinterpret_cast<cudaStream_t>(s); }
cudaEvent_t as_event(uintptr_t e) { return reinterpret_cast<cudaEvent_t>(e); }
}  // namespace

void bind_streams(nb::module_& m) {
  using namespace vt::cuda;
  m.def("priority_range", [] {
    DeviceGuard g(current_device());
    return priority_range();
  });
  m.def("stream_from_pool", &pool_stream, nb::arg("device"), nb::arg("priority") = 0);
  m.def("current_stream", [](int device) {
    check_device(Device(DeviceType::CUDA, device));
    return cuda::current_stream(device);
  });
  m.def("set_current_stream", &set_current_stream);
  m.def("default_stream", [](int device) {
    check_device(Device(DeviceType::CUDA, device));
    return cuda::default_stream(device);
  });
  m.def("_sleep", [](int64_t cycles, int device) { spin_for_cycles(cuda::current(device), cycles); });
  m.def("physical_device", [](int device) {
    check_device(Device(DeviceType::CUDA, device));
    return physical_device(device);
  });
  m.def("physical_device_count", &physical_device_count);
  m.def("is_emulated", &is_emulated);
  m.def("emulation_label", &emulation_label);
  m.def("emulate_devices", &emulate_devices);
  m.def("peer_path", [](int device, int peer) {
    static const char* names[] = {"native", "p2p", "none"};
    return std::string(names[int(peer_path(device, peer))]);
  });
  m.def("enable_peer_access", &enable_peer_access);
  m.def("disable_peer_access", &disable_peer_access);
  m.def("peer_access_refcount", &peer_access_refcount);
  m.def("check_peer_access", [](int device, int peer) {
    nb::gil_scoped_release release;
    return check_peer_access(device, peer);
  });
  m.def("device_properties", [](int device) {
    check_device(Device(DeviceType::CUDA, device));
    cudaDeviceProp p;
    VT_CUDA_CHECK(cudaGetDeviceProperties(&p, physical_device(device)));
    nb::dict d;
    size_t share = is_emulated() ? size_t(device_count() + physical_device_count() - 1) / size_t(physical_device_count())
                                 : 1;  // logical devices sharing this GPU (at most)
    d["name"] = std::string(p.name) + (is_emulated() ? " (emulated)" : "");
    d["major"] = p.major;
    d["minor"] = p.minor;
    d["total_memory"] = size_t(p.totalGlobalMem) / share;
    d["multi_processor_count"] = p.multiProcessorCount;
    d["is_emulated"] = is_emulated();
    d["physical_device"] = physical_device(device);
    d["pci_bus_id"] = p.pciBusID;
    return d;
  });
  m.def("stream_query", [](uintptr_t s, int device) {
    DeviceGuard g(device);
    cudaError_t e = cudaStreamQuery(as_stream(s));
    if (e == cudaErrorNotReady) {
      cudaGetLastError();
      return false;
    }
    VT_CUDA_CHECK(e);
    raise_kernel_errors();  // the stream's work is done: Note [Deferred kernel errors]
    return true;
  });
  m.def("stream_synchronize", [](uintptr_t s, int device) {
    DeviceGuard g(device);
    {
      nb::gil_scoped_release release;
      VT_CUDA_CHECK(cudaStreamSynchronize(as_stream(s)));
    }
    raise_kernel_errors();
  });
  m.def("stream_wait_event", [](uintptr_t s, uintptr_t e, int device) {
    DeviceGuard g(device);
    VT_CUDA_CHECK(cudaStreamWaitEvent(as_stream(s), as_event(e), 0));
  });
  m.def("event_create", [](int device, bool timing, bool blocking) {
    DeviceGuard g(device);
    unsigned flags = (timing ? cudaEventDefault : cudaEventDisableTiming) | (blocking ? cudaEventBlockingSync : 0);
    cudaEvent_t e;
    VT_CUDA_CHECK(cudaEventCreateWithFlags(&e, flags));
    return reinterpret_cast<uintptr_t>(e);
  });
  m.def("event_destroy", [](uintptr_t e, int device) {
    DeviceGuard g(device);
    cudaEventDestroy(as_event(e));
  });
  m.def("event_record", [](uintptr_t e, uintptr_t s, int device) {
    DeviceGuard g(device);
    VT_CUDA_CHECK(cudaEventRecord(as_event(e), as_stream(s)));
  });
  m.def("event_query", [](uintptr_t e) {
    cudaError_t r = cudaEventQuery(as_event(e));
    if (r == cudaErrorNotReady) {
      cudaGetLastError();
      return false;
    }
    VT_CUDA_CHECK(r);
    raise_kernel_errors();
    return true;
  });
  m.def("event_synchronize", [](uintptr_t e) {
    {
      nb::gil_scoped_release release;
      VT_CUDA_CHECK(cudaEventSynchronize(as_event(e)));
    }
    raise_kernel_errors();
  });
  m.def("event_elapsed_ms", [](uintptr_t start, uintptr_t end) {
    float ms = 0;
    VT_CUDA_CHECK(cudaEventElapsedTime(&ms, as_event(start), as_event(end)));
    return ms;
  });
}

}  // namespace vt::py
