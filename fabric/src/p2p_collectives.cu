// The P2P schedule executor and its reduction kernel (vt/fabric/p2p.h, Note [P2P schedule ordering]).
//
// Kernel: dst[i] = op(srcs[0][i], srcs[1][i], ...) in a fixed source order, accumulating 16-bit floats in float,
// 16-byte vector loads when every pointer is 16-byte aligned, a scalar loop for the rest. Sources are read
// through unified addresses: local, a peer's mapped memory, or (emulation) another logical device's memory on
// the same GPU.
#include <array>
#include <chrono>
#include <string>
#include <thread>

#include "vt/core/dtype.h"
#include "vt/core/error.h"
#include "vt/cuda/check.h"
#include "vt/cuda/device.h"
#include "vt/cuda/guard.h"
#include "vt/cuda/memory.h"
#include "vt/fabric/observe.h"
#include "vt/fabric/p2p.h"

namespace vt::fabric {
namespace {

constexpr int kMaxSrcs = 64;
struct SrcPtrs {
  const void* p[kMaxSrcs];
};

template <typename T> struct Acc { using type = T; };
template <> struct Acc<Half> { using type = float; };
template <> struct Acc<BFloat16> { using type = float; };

template <typename A>
__device__ __forceinline__ A combine(A a, A b, int op) {
  if (op == int(RedOp::Max)) return a > b || a != a ? a : b;  // NaN propagates, as torch's max
  if (op == int(RedOp::Min)) return a < b || a != a ? a : b;
  return a + b;
}

template <typename T>
__device__ __forceinline__ T reduce_at(const SrcPtrs& s, int nsrc, int64_t i, int op, bool scale, double k) {
  using A = typename Acc<T>::type;
  A acc = A(static_cast<const T*>(s.p[0])[i]);
  for (int j = 1; j < nsrc; ++j) acc = combine<A>(acc, A(static_cast<const T*>(s.p[j])[i]), op);
  if (scale) acc = A(double(acc) * k);
  return T(acc);
}

template <typename T, int V>
__global__ void reduce_kernel(SrcPtrs s, int nsrc, T* dst, int64_t n, int op, bool scale, double k) {
  int64_t stride = int64_t(gridDim.x) * blockDim.x;
  int64_t nvec = V > 1 ? n / V : 0;
  for (int64_t v = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; v < nvec; v += stride) {
    union alignas(16) Pack {
      int4 raw;
      T v[V];
      __device__ Pack() {}
    } out;
#pragma unroll
    for (int e = 0; e < V; ++e) out.v[e] = reduce_at<T>(s, nsrc, v * V + e, op, scale, k);
    *reinterpret_cast<int4*>(dst + v * V) = out.raw;  // one 16-byte store
  }
  for (int64_t i = nvec * V + blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += stride)
    dst[i] = reduce_at<T>(s, nsrc, i, op, scale, k);
}

__device__ __forceinline__ uint64_t global_ns() {
  uint64_t t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

__global__ void stall_kernel(uint64_t ns) {
  uint64_t start = global_ns();
  while (global_ns() - start < ns) __nanosleep(1000);
}

int grid_for(int64_t n) { return int(std::min<int64_t>((n + 255) / 256, 1024)); }

}  // namespace

void launch_reduce(int device, ScalarType dtype, void* dst_ptr, const std::vector<const void*>& srcs, int64_t n,
                   RedOp op, bool scale, double k) {
  VT_CHECK_VALUE(!srcs.empty() && srcs.size() <= size_t(kMaxSrcs), "p2p transfer with ", srcs.size(), " sources (1..",
                 kMaxSrcs, ")");
  if (n == 0) return;
  SrcPtrs s{};
  bool aligned = reinterpret_cast<uintptr_t>(dst_ptr) % 16 == 0;
  for (size_t j = 0; j < srcs.size(); ++j) {
    s.p[j] = srcs[j];
    aligned = aligned && reinterpret_cast<uintptr_t>(srcs[j]) % 16 == 0;
  }
  bool scale_here = scale && op == RedOp::Avg;  // only an average's final reduction is scaled
  cuda::DeviceGuard g(device);
  cudaStream_t stream = cuda::current(device).native();
  int nsrc = int(srcs.size());
  VT_DISPATCH_ALL(dtype, "p2p collective", [&] {
    constexpr int V = 16 / sizeof(scalar_t) >= 1 ? 16 / sizeof(scalar_t) : 1;
    auto* dst = static_cast<scalar_t*>(dst_ptr);
    if (aligned && V > 1) reduce_kernel<scalar_t, V><<<grid_for(n / V + 1), 256, 0, stream>>>(s, nsrc, dst, n, int(op), scale_here, k);
    else reduce_kernel<scalar_t, 1><<<grid_for(n), 256, 0, stream>>>(s, nsrc, dst, n, int(op), scale_here, k);
  });
  VT_CUDA_CHECK(cudaGetLastError());
}

// Note [Hub barriers]: a barrier orders every device's stream after every other's work so far. Each stream
// records an event; the first device's stream (the hub) waits for all of them and records once more; every
// other stream waits for that. 2(n - 1) waits and n + 1 records instead of n(n - 1) waits: the host's cost of
// a barrier over 8 devices falls from 56 waits to 14, and ordering is transitive, so it is the same barrier. On
// the GPU the hub adds one hop (a wait on an event that is already complete when the hub was last to arrive).
namespace {
void join_through_hub(const std::vector<int>& devices, const std::vector<cuda::Event*>& arrivals, cuda::Event& hub) {
  const cuda::Stream hub_stream = cuda::current(devices[0]);
  for (size_t b = 1; b < devices.size(); ++b) arrivals[b]->block(hub_stream);
  hub.record(hub_stream);
  for (size_t a = 1; a < devices.size(); ++a) hub.block(cuda::current(devices[a]));
}

// Events a barrier needs only while it is being queued, one per thread and device (Note [Reused ordering
// events]: a wait queued on an event holds its record of that moment, so recording it again is safe).
cuda::Event& reused_event(int device, int slot) {
  thread_local std::array<std::array<std::unique_ptr<cuda::Event>, kMaxDevices>, 2> cached;
  VT_CHECK_VALUE(device >= 0 && device < kMaxDevices, "p2p barrier: device ", device, " outside 0..", kMaxDevices - 1);
  auto& e = cached[size_t(slot)][size_t(device)];
  if (!e) e = std::make_unique<cuda::Event>(device);
  return *e;
}
}  // namespace

// The barrier a Work keeps: its per-device arrival events say which device never arrived or did not finish.
std::vector<std::unique_ptr<cuda::Event>> barrier(const std::vector<int>& devices) {
  std::vector<std::unique_ptr<cuda::Event>> ev;
  std::vector<cuda::Event*> raw;
  ev.reserve(devices.size());
  for (int d : devices) {
    ev.push_back(std::make_unique<cuda::Event>(d));
    ev.back()->record(cuda::current(d));
    raw.push_back(ev.back().get());
  }
  if (devices.size() > 1) join_through_hub(devices, raw, reused_event(devices[0], 1));
  return ev;
}

// A barrier between steps: nothing keeps its events.
void step_barrier(const std::vector<int>& devices) {
  std::vector<cuda::Event*> raw;
  for (int d : devices) {
    cuda::Event& e = reused_event(d, 0);
    e.record(cuda::current(d));
    raw.push_back(&e);
  }
  if (devices.size() > 1) join_through_hub(devices, raw, reused_event(devices[0], 1));
}

bool P2PWork::query() const {
  for (const auto& e : done)
    if (!e->query()) return false;
  return true;
}

void P2PWork::wait(double timeout_ms) const {
  auto start = std::chrono::steady_clock::now();
  auto elapsed_ms = [&] {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  };
  while (!query()) {
    if (timeout_ms > 0 && elapsed_ms() > timeout_ms) {
      std::string missing;
      for (size_t i = 0; i < devices.size(); ++i)
        if (!arrived[i]->query()) missing += (missing.empty() ? "cuda:" : ", cuda:") + std::to_string(devices[i]);
      std::string what = missing.empty() ? "did not finish" : "never arrived (its inputs were not ready)";
      if (missing.empty()) {
        for (size_t i = 0; i < devices.size(); ++i)
          if (!done[i]->query()) missing += (missing.empty() ? "cuda:" : ", cuda:") + std::to_string(devices[i]);
      }
      record_event({EventKind::Error, "p2p collective timeout", devices.empty() ? -1 : devices[0], -1, 0, 0, 0,
                    Reason::None, missing + " " + what});
      VT_FAIL_KIND(Timeout, "fabric collective timed out after ", timeout_ms, " ms: ", missing, " ", what,
                   missing.empty() ? "" : " at step 0 (arrival)",
                   "; the other devices' streams stay blocked behind it until it arrives");
    }
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

std::shared_ptr<P2PWork> run_p2p_schedule(const std::vector<std::vector<Transfer>>& steps, const std::vector<int>& devices,
                                          RedOp op, double scale) {
  VT_CHECK_VALUE(!devices.empty(), "p2p collective over no devices");
  auto work = std::make_shared<P2PWork>();
  work->devices = devices;
  work->arrived = barrier(devices);
  for (size_t s = 0; s < steps.size(); ++s) {
    if (s > 0) step_barrier(devices);
    for (const Transfer& t : steps[s]) {
      int64_t n = t.dst.numel();
      std::vector<const void*> srcs;
      for (size_t j = 0; j < t.srcs.size(); ++j) {
        const Tensor& x = t.srcs[j];
        VT_CHECK_VALUE(x.numel() == n && x.dtype() == t.dst.dtype() && x.is_contiguous(), "p2p transfer source ", j,
                       " does not match its destination (numel ", x.numel(), " vs ", n, ")");
        srcs.push_back(x.data_ptr());
      }
      launch_reduce(t.dst.device().index, t.dst.dtype(), t.dst.data_ptr(), srcs, n, op, t.scale, scale);
      cuda::StreamId on = cuda::current(t.dst.device().index).handle;
      for (const Tensor& x : t.srcs)
        if (x.device() != t.dst.device())
          cuda::device_allocator(x.device().index).try_record_stream(x.storage()->data(), on, t.dst.device().index);
    }
  }
  work->done = barrier(devices);
  return work;
}

void inject_stall(int device, double ms) {
  VT_CHECK_VALUE(ms >= 0 && ms <= 600e3, "inject_stall: ms must be within 0..600000, got ", ms);
  cuda::DeviceGuard g(device);
  stall_kernel<<<1, 1, 0, cuda::current(device).native()>>>(uint64_t(ms * 1e6));
  VT_CUDA_CHECK(cudaGetLastError());
}

}  // namespace vt::fabric
