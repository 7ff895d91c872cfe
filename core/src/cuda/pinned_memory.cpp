// Pinned host memory for tensors: the CUDA HostBackend of the caching host allocator (Note [Pinned host memory]
// in vt/cuda/caching_host_allocator.h), pinned CPU storage, and the questions copy_ asks about host memory.
#include <cuda_runtime.h>

#include <atomic>
#include <mutex>
#include <vector>

#include "vt/cuda/check.h"
#include "vt/cuda/device.h"
#include "vt/cuda/guard.h"
#include "vt/cuda/memory.h"

namespace vt::cuda {
namespace {

// An event and the device it belongs to; finished events are kept for reuse (creating one costs microseconds).
struct HostEvent {
  cudaEvent_t event;
  int device;
};

class CudaHostBackend : public HostBackend {
 public:
  void* malloc(size_t bytes) override {
    // Legal in relaxed capture mode, and never part of a graph: a capture may allocate pinned memory.
    CaptureModeGuard relaxed(cudaStreamCaptureModeRelaxed);
    void* p = nullptr;
    cudaError_t e = cudaHostAlloc(&p, bytes, cudaHostAllocPortable);  // pinned for every device's context
    if (e == cudaErrorMemoryAllocation) {
      cudaGetLastError();  // not sticky: the allocator releases its cache and retries
      return nullptr;
    }
    VT_CUDA_CHECK(e);
    return p;
  }
  void free(void* p) override { VT_CUDA_CHECK(cudaFreeHost(p)); }
  EventId record_event(int device, StreamId stream) override {
    VT_INTERNAL_ASSERT(device >= 0 && device < 64, "device index ", device);
    HostEvent* ev = nullptr;
    {
      std::lock_guard<std::mutex> g(mu_);
      auto& pool = pool_[size_t(device)];
      if (!pool.empty()) ev = pool.back(), pool.pop_back();
    }
    DeviceGuard dg(device);
    if (!ev) {
      ev = new HostEvent{nullptr, device};
      VT_CUDA_CHECK(cudaEventCreateWithFlags(&ev->event, cudaEventDisableTiming));
    }
    VT_CUDA_CHECK(cudaEventRecord(ev->event, reinterpret_cast<cudaStream_t>(stream)));
    return reinterpret_cast<EventId>(ev);
  }
  bool event_done(EventId e) override {
    cudaError_t r = cudaEventQuery(reinterpret_cast<HostEvent*>(e)->event);
    if (r == cudaErrorNotReady) {
      cudaGetLastError();
      return false;
    }
    VT_CUDA_CHECK(r);
    return true;
  }
  void event_destroy(EventId e) override {
    auto* ev = reinterpret_cast<HostEvent*>(e);
    std::lock_guard<std::mutex> g(mu_);
    pool_[size_t(ev->device)].push_back(ev);
  }
  bool capture_underway() override { return any_capture_underway(); }

 private:
  std::mutex mu_;
  std::vector<HostEvent*> pool_[kMaxDevices];  // by device
};

// Never deleted: pinned tensors may be freed during interpreter shutdown, after static destructors have run.
std::atomic<CachingHostAllocator*> g_host{nullptr};
std::once_flag g_host_once;

void free_pinned(void* p) { g_host.load(std::memory_order_acquire)->free(p); }

}  // namespace

CachingHostAllocator& host_allocator() {
  VT_CHECK(is_available(), "pinned (page-locked) host memory needs a CUDA device, and there is no CUDA device ",
           "here (", unavailable_reason(), "); use ordinary CPU tensors");
  std::call_once(g_host_once, [] {
    g_host.store(new CachingHostAllocator(std::make_unique<CudaHostBackend>()), std::memory_order_release);
  });
  return *g_host.load(std::memory_order_acquire);
}

CachingHostAllocator* host_allocator_if_created() { return g_host.load(std::memory_order_acquire); }

std::shared_ptr<Storage> allocate_pinned_storage(size_t nbytes) {
  void* p = host_allocator().allocate(nbytes);
  return std::make_shared<Storage>(DataPtr(p, p, &free_pinned), nbytes, kCPU);
}

Tensor empty_pinned(IntArrayRef sizes, ScalarType dtype) {
  for (int64_t s : sizes) VT_CHECK(s >= 0, "negative dimension ", s, " in shape ", shape_str(sizes));
  int64_t n = prod(sizes);  // checked for overflow
  int64_t nbytes = 0;
  VT_CHECK(n <= (int64_t(1) << 48) && !__builtin_mul_overflow(n, itemsize(dtype), &nbytes), "pinned host memory: absurd tensor size ",
           shape_str(sizes), " has ", n, " elements");
  return Tensor(std::make_shared<TensorImpl>(allocate_pinned_storage(size_t(nbytes)), dtype, sizes,
                                             contiguous_strides(sizes), 0));
}

HostMemory host_memory_kind(const void* base, bool probe_foreign) {
  if (CachingHostAllocator* h = host_allocator_if_created(); h && h->owns(base)) return HostMemory::PinnedCached;
  if (!probe_foreign || !is_available()) return HostMemory::Pageable;
  cudaPointerAttributes a{};
  cudaError_t e = cudaPointerGetAttributes(&a, base);
  if (e != cudaSuccess) {  // memory CUDA has never heard of
    cudaGetLastError();
    return HostMemory::Pageable;
  }
  return a.type == cudaMemoryTypeHost ? HostMemory::PinnedForeign : HostMemory::Pageable;
}

void record_host_use(const void* base, int device, StreamId stream) {
  if (CachingHostAllocator* h = host_allocator_if_created()) h->record_use(base, device, stream);
}

}  // namespace vt::cuda
