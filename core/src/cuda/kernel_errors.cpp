// Per-device error records of Note [Deferred kernel errors] (vt/cuda/kernel_errors.h): allocated on a device's
// first checking launch and kept for the life of the process (a few bytes each).
#include "vt/cuda/kernel_errors.h"

#include <cuda_runtime.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>

#include "vt/cuda/check.h"
#include "vt/cuda/device.h"
#include "vt/cuda/guard.h"
#include "vt/cuda/stream.h"

namespace vt::cuda {
namespace {

struct DeviceRecord {
  std::once_flag once;
  std::atomic<KernelErrorRecord*> host{nullptr};  // null until allocated
  KernelErrorRecord* device_view = nullptr;
  unsigned long long* claim = nullptr;
};

struct Records {
  int count;
  std::unique_ptr<DeviceRecord[]> at;
};

Records& records() {
  static Records r{device_count(), std::make_unique<DeviceRecord[]>(size_t(std::max(device_count(), 1)))};
  return r;
}

// Allocation is legal while this thread's stream captures a graph only in relaxed mode.
struct RelaxedCapture {
  cudaStreamCaptureMode previous = cudaStreamCaptureModeRelaxed;
  RelaxedCapture() { cudaThreadExchangeStreamCaptureMode(&previous); }
  ~RelaxedCapture() { cudaThreadExchangeStreamCaptureMode(&previous); }
};

void allocate(DeviceRecord& r, int device) {
  DeviceGuard g(device);
  RelaxedCapture relaxed;
  void* host = nullptr;
  VT_CUDA_CHECK(cudaHostAlloc(&host, sizeof(KernelErrorRecord), cudaHostAllocMapped | cudaHostAllocPortable));
  std::memset(host, 0, sizeof(KernelErrorRecord));
  void* view = nullptr;
  VT_CUDA_CHECK(cudaHostGetDevicePointer(&view, host, 0));
  void* claim = nullptr;
  VT_CUDA_CHECK(cudaMalloc(&claim, sizeof(unsigned long long)));
  // Zeroed on a private non-blocking stream: the legacy stream could join a capture under way on this thread.
  cudaStream_t s = nullptr;
  VT_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  cudaError_t e = cudaMemsetAsync(claim, 0, sizeof(unsigned long long), s);
  if (e == cudaSuccess) e = cudaStreamSynchronize(s);
  cudaStreamDestroy(s);
  VT_CUDA_CHECK(e);
  r.device_view = static_cast<KernelErrorRecord*>(view);
  r.claim = static_cast<unsigned long long*>(claim);
  r.host.store(static_cast<KernelErrorRecord*>(host), std::memory_order_release);
}

bool sync_checks() {
  static const bool sync = [] {
    const char* v = std::getenv("VT_CUDA_INDEX_CHECKS");
    return v && std::strcmp(v, "sync") == 0;
  }();
  return sync;
}

}  // namespace

KernelErrorSlot kernel_error_slot(int device, const char* op, ErrorKind kind) {
  Records& rs = records();
  VT_INTERNAL_ASSERT(device >= 0 && device < rs.count, "kernel_error_slot: no device ", device);
  DeviceRecord& r = rs.at[size_t(device)];
  std::call_once(r.once, [&] { allocate(r, device); });
  return {r.claim, r.device_view, uint64_t(reinterpret_cast<uintptr_t>(op)), int32_t(kind)};
}

void raise_kernel_errors() {
  Records& rs = records();
  for (int d = 0; d < rs.count; ++d) {
    DeviceRecord& r = rs.at[size_t(d)];
    KernelErrorRecord* host = r.host.load(std::memory_order_acquire);
    if (!host) continue;
    volatile KernelErrorRecord* v = host;
    if (!v->flag) continue;
    std::atomic_thread_fence(std::memory_order_acquire);
    const KernelErrorRecord e{1, v->kind, v->value, v->dim, v->size, v->op};
    // Clear, so the next error is reported: the record here (one thread takes it, so two threads synchronizing
    // at once do not both raise it), then the claim on the device's current stream (after everything queued
    // there; the error was found at a synchronization, so the kernel that claimed is done).
    int32_t expected = 1;
    if (!__atomic_compare_exchange_n(&host->flag, &expected, 0, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) continue;
    {
      DeviceGuard g(d);
      VT_CUDA_CHECK(cudaMemsetAsync(r.claim, 0, sizeof(unsigned long long),
                                    reinterpret_cast<cudaStream_t>(current_stream(d))));
    }
    const char* op = reinterpret_cast<const char*>(uintptr_t(e.op));
    const int64_t value = e.value < kNegativeIndexMark / 2 ? e.value - kNegativeIndexMark : e.value;
    vt::detail::fail(ErrorKind(e.kind), "index ", value, " is out of bounds for dimension ", e.dim, " with size ",
                     e.size, " (", op, " on cuda:", d, "; CUDA index checks report at the next synchronization, "
                     "VT_CUDA_INDEX_CHECKS=sync raises at the op)");
  }
}

void after_checked_launch(int device, void* stream) {
  if (!sync_checks()) return;
  DeviceGuard g(device);  // handle 0 names the legacy stream of the current device
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  VT_CUDA_CHECK(cudaStreamIsCapturing(static_cast<cudaStream_t>(stream), &capture));
  if (capture != cudaStreamCaptureStatusNone) return;  // reported after a replay
  VT_CUDA_CHECK(cudaStreamSynchronize(static_cast<cudaStream_t>(stream)));
  raise_kernel_errors();
}

}  // namespace vt::cuda
