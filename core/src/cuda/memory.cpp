// The CUDA MemoryBackend and the per-device allocators behind CUDA tensors (vt/cuda/memory.h).
#include <cuda_runtime.h>

#include <array>
#include <atomic>
#include <cstdlib>
#include <mutex>

#include "vt/cuda/check.h"
#include "vt/cuda/device.h"
#include "vt/cuda/event.h"
#include "vt/cuda/guard.h"
#include "vt/cuda/memory.h"
#include "vt/cuda/stream.h"

namespace vt::cuda {
namespace {

class CudaBackend : public MemoryBackend {
 public:
  explicit CudaBackend(int device) : device_(device) {
    DeviceGuard g(device_);
    size_t free_b = 0;
    VT_CUDA_CHECK(cudaMemGetInfo(&free_b, &capacity_));
  }
  void* malloc(size_t bytes) override {
    DeviceGuard g(device_);
    // Legal during a capture in relaxed mode; the graph never re-runs it (Note [Graph-private pool]).
    CaptureModeGuard relaxed(cudaStreamCaptureModeRelaxed);
    void* p = nullptr;
    cudaError_t e = cudaMalloc(&p, bytes);
    if (e == cudaErrorMemoryAllocation) {
      cudaGetLastError();  // not sticky: the allocator's GC ladder takes over
      return nullptr;
    }
    VT_CUDA_CHECK(e);
    return p;
  }
  void free(void* p) override {
    DeviceGuard g(device_);
    VT_CUDA_CHECK(cudaFree(p));
  }
  EventId record_event(int device, StreamId stream) override {
    DeviceGuard g(device);  // the stream's device: a use recorded from another GPU's stream
    cudaEvent_t e;
    VT_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    VT_CUDA_CHECK(cudaEventRecord(e, reinterpret_cast<cudaStream_t>(stream)));
    return reinterpret_cast<EventId>(e);
  }
  bool event_done(EventId e) override {
    cudaError_t r = cudaEventQuery(reinterpret_cast<cudaEvent_t>(e));
    if (r == cudaErrorNotReady) {
      cudaGetLastError();
      return false;
    }
    VT_CUDA_CHECK(r);
    return true;
  }
  void event_wait(EventId e) override { VT_CUDA_CHECK(cudaEventSynchronize(reinterpret_cast<cudaEvent_t>(e))); }
  void event_destroy(EventId e) override { cudaEventDestroy(reinterpret_cast<cudaEvent_t>(e)); }
  size_t capacity() override { return capacity_; }
  uint64_t capture_id(StreamId stream) override {
    cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
    unsigned long long id = 0;
    DeviceGuard g(device_);  // handle 0 means the legacy stream of the current device
    cudaError_t e = cudaStreamGetCaptureInfo(reinterpret_cast<cudaStream_t>(stream), &status, &id);
    if (e != cudaSuccess) {  // e.g. cudaErrorStreamCaptureImplicit: the legacy stream while a blocking one captures
      cudaGetLastError();
      return 0;
    }
    return status == cudaStreamCaptureStatusActive ? uint64_t(id) : 0;
  }
  size_t free_memory() override {
    DeviceGuard g(device_);
    CaptureModeGuard relaxed(cudaStreamCaptureModeRelaxed);  // the OOM message may be built during a capture
    size_t f = 0, t = 0;
    cudaMemGetInfo(&f, &t);
    cudaGetLastError();
    return f;
  }

 private:
  int device_;
  size_t capacity_ = 0;
};

// Never deleted: tensors may be freed during interpreter shutdown, after static destructors have run.
std::array<std::atomic<CachingAllocator*>, kMaxDevices> g_allocators{};
std::array<std::once_flag, kMaxDevices> g_once;
// The history configuration every allocator gets, including those created later (Note [Allocation history]).
std::mutex g_history_mu;
HistoryConfig g_history;

struct CudaCtx {
  void* ptr;
  int device;
};
void free_cuda(void* ctx) {
  auto* c = static_cast<CudaCtx*>(ctx);
  g_allocators[size_t(c->device)].load(std::memory_order_acquire)->free(c->ptr);
  delete c;
}

}  // namespace

int current_device() {
  VT_CHECK(is_available(), "CUDA is not available: ", unavailable_reason());
  return current_device_raw();
}

void set_device(int device) {
  check_device(Device(DeviceType::CUDA, device));
  set_device_raw(device);
}

void order_stream_after_current(int device, int64_t stream) {
  cudaStream_t target = stream == 1   ? cudaStreamLegacy
                        : stream == 2 ? cudaStreamPerThread
                                      : reinterpret_cast<cudaStream_t>(stream);
  Stream ours = current(device);
  if (target == ours.native() || (stream == 1 && ours.handle == 0)) return;  // same stream: already ordered
  wait_stream({device, reinterpret_cast<StreamId>(target)}, ours);
}

CachingAllocator& device_allocator(int device) {
  check_device(Device(DeviceType::CUDA, device));
  VT_CHECK(device < kMaxDevices, "device index ", device, " above the supported ", kMaxDevices);
  std::call_once(g_once[size_t(device)], [device] {
    const char* conf = std::getenv("VT_CUDA_ALLOC_CONF");
    AllocatorConfig config = parse_alloc_conf(conf ? conf : "");
    auto* a = new CachingAllocator(std::make_unique<CudaBackend>(device), config, device);
    std::lock_guard<std::mutex> g(g_history_mu);  // published under the lock: set_memory_history sees it or
    if (g_history.enabled != HistoryMode::Off) a->record_history(g_history);  // it sees the setting here
    g_allocators[size_t(device)].store(a, std::memory_order_release);
  });
  return *g_allocators[size_t(device)].load(std::memory_order_acquire);
}

CachingAllocator* device_allocator_if_created(int device) {
  if (device < 0 || device >= kMaxDevices) return nullptr;
  return g_allocators[size_t(device)].load(std::memory_order_acquire);
}

bool any_capture_underway() {
  for (auto& a : g_allocators)
    if (CachingAllocator* p = a.load(std::memory_order_acquire); p && p->capture_underway()) return true;
  return false;
}

void set_memory_history(const HistoryConfig& config) {
  std::lock_guard<std::mutex> g(g_history_mu);
  g_history = config;
  g_history.clear = false;  // a later allocator starts empty anyway
  for (auto& a : g_allocators)
    if (CachingAllocator* p = a.load(std::memory_order_acquire)) p->record_history(config);
}

std::shared_ptr<Storage> allocate_storage(size_t nbytes, Device d) {
  check_device(d);
  int device = d.index < 0 ? current_device() : d.index;
  void* p = device_allocator(device).allocate(nbytes, current_stream(device));
  return std::make_shared<Storage>(DataPtr(p, new CudaCtx{p, device}, &free_cuda), nbytes,
                                   Device(DeviceType::CUDA, device));
}

}  // namespace vt::cuda
