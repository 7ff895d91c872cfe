// Bandwidth and latency measurements between the GPUs of this process (conventions in measure.h).
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <numeric>
#include <random>
#include <vector>

#include "vt/core/error.h"
#include "vt/cuda/check.h"
#include "vt/cuda/device.h"
#include "vt/cuda/peer_access.h"
#include "vt/topology/measure.h"

namespace vt::topology {
namespace {

// Holds src -> dst peer access for its lifetime through the core's refcounted owner (Note [Peer mapping
// lifetime]). Copy-engine copies work without it (the driver stages them), so for those a pair without P2P is not
// an error.
class PeerScope {
 public:
  PeerScope(int src, int dst, bool required) : src_(src), dst_(dst) {
    if (src == dst) return;
    if (!required && !cuda::can_access_peer(src, dst)) return;
    cuda::enable_peer_access(src, dst);  // raises naming the pair when required and refused
    held_ = true;
  }
  ~PeerScope() {
    if (held_) cuda::disable_peer_access(src_, dst_);
  }

 private:
  int src_, dst_;
  bool held_ = false;
};

// Sets the current (logical) device from a destructor, where failure can only be ignored.
void set_device_quietly(int d) noexcept {
  try {
    cuda::set_device_raw(d);
  } catch (...) {
  }
}

struct DeviceBuffer {
  void* p = nullptr;
  int dev;
  DeviceBuffer(int d, size_t bytes) : dev(d) {
    cuda::set_device_raw(d);
    VT_CUDA_CHECK(cudaMalloc(&p, bytes));
    cudaError_t e = cudaMemset(p, 1, bytes);
    if (e != cudaSuccess) cudaFree(p);  // the destructor does not run for a throwing constructor
    VT_CUDA_CHECK(e);
  }
  ~DeviceBuffer() {
    set_device_quietly(dev);
    cudaFree(p);
  }
};

struct Stream;

// An event owned by one device (an event can only be recorded on streams of the device it was made on).
struct Event {
  cudaEvent_t e = nullptr;
  int dev;
  Event(int d, unsigned flags) : dev(d) {
    cuda::set_device_raw(d);
    VT_CUDA_CHECK(cudaEventCreateWithFlags(&e, flags));
  }
  ~Event() {
    set_device_quietly(dev);
    cudaEventDestroy(e);
  }
};

// Restores the caller's current device when a measurement returns or throws.
struct RestoreDevice {
  int prev = 0;
  RestoreDevice() : prev(cuda::current_device_raw()) {}
  ~RestoreDevice() { set_device_quietly(prev); }
};

double median_ms(const std::vector<const Stream*>& streams, int iters, const std::function<void()>& work);

struct Stream {
  cudaStream_t s = nullptr;
  int dev;
  explicit Stream(int d) : dev(d) {
    cuda::set_device_raw(d);
    VT_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  }
  ~Stream() {
    set_device_quietly(dev);
    cudaStreamDestroy(s);
  }
};

// Times `work()`, which issues onto `streams` (the first is the timeline; the others join it through
// events made on their own devices); the median milliseconds over iters after one warm-up.
double median_ms(const std::vector<const Stream*>& streams, int iters, const std::function<void()>& work) {
  VT_CHECK(iters >= 1, "measurement needs at least one iteration, got ", iters);
  const Stream& main = *streams[0];
  Event start(main.dev, cudaEventDefault), stop(main.dev, cudaEventDefault);
  std::vector<std::unique_ptr<Event>> joins;
  for (size_t k = 1; k < streams.size(); ++k) joins.push_back(std::make_unique<Event>(streams[k]->dev, cudaEventDisableTiming));
  work();
  for (const Stream* s : streams) VT_CUDA_CHECK(cudaStreamSynchronize(s->s));
  std::vector<double> t;
  for (int i = 0; i < iters; ++i) {
    cuda::set_device_raw(main.dev);
    VT_CUDA_CHECK(cudaEventRecord(start.e, main.s));
    for (size_t k = 1; k < streams.size(); ++k) VT_CUDA_CHECK(cudaStreamWaitEvent(streams[k]->s, start.e, 0));
    work();
    for (size_t k = 1; k < streams.size(); ++k) {
      cuda::set_device_raw(streams[k]->dev);
      VT_CUDA_CHECK(cudaEventRecord(joins[k - 1]->e, streams[k]->s));
      VT_CUDA_CHECK(cudaStreamWaitEvent(main.s, joins[k - 1]->e, 0));
    }
    cuda::set_device_raw(main.dev);
    VT_CUDA_CHECK(cudaEventRecord(stop.e, main.s));
    VT_CUDA_CHECK(cudaEventSynchronize(stop.e));
    float ms = 0;
    VT_CUDA_CHECK(cudaEventElapsedTime(&ms, start.e, stop.e));
    t.push_back(ms);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// dst[i] = src[i] in 16-byte units, grid-stride.
__global__ void copy_kernel(const int4* __restrict__ src, int4* __restrict__ dst, size_t n) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    dst[i] = src[i];
}

// One thread follows next[] for `hops` loads; the result is stored so the loads cannot be elided.
__global__ void chase_kernel(const uint32_t* next, int hops, uint32_t* sink) {
  uint32_t i = 0;
  for (int h = 0; h < hops; ++h) i = next[i];
  *sink = i;
}

void launch_copy(int dev, cudaStream_t s, const void* src, void* dst, size_t bytes) {
  int sms = 0;
  VT_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, cuda::physical_device(dev)));
  copy_kernel<<<sms * 4, 512, 0, s>>>(static_cast<const int4*>(src), static_cast<int4*>(dst), bytes / 16);
  VT_CUDA_CHECK(cudaGetLastError());
}

double gbps(size_t bytes, double ms) { return double(bytes) / (ms * 1e-3) / 1e9; }

}  // namespace

double ce_copy_gbps(int src, int dst, size_t bytes, int iters, bool bidirectional) {
  RestoreDevice restore;
  PeerScope a(src, dst, false), b(dst, src, false);
  DeviceBuffer s_buf(src, bytes), d_buf(dst, bytes), s_buf2(src, bytes), d_buf2(dst, bytes);
  Stream s1(src), s2(dst);
  double ms = median_ms(bidirectional ? std::vector<const Stream*>{&s1, &s2} : std::vector<const Stream*>{&s1}, iters, [&] {
    VT_CUDA_CHECK(cudaMemcpyPeerAsync(d_buf.p, cuda::physical_device(dst), s_buf.p, cuda::physical_device(src), bytes, s1.s));
    if (bidirectional) VT_CUDA_CHECK(cudaMemcpyPeerAsync(s_buf2.p, cuda::physical_device(src), d_buf2.p, cuda::physical_device(dst), bytes, s2.s));
  });
  return gbps(bidirectional ? 2 * bytes : bytes, ms);
}

double sm_copy_gbps(int src, int dst, size_t bytes, int iters, bool bidirectional) {
  RestoreDevice restore;
  PeerScope a(src, dst, true), b(dst, src, bidirectional);
  DeviceBuffer s_buf(src, bytes), d_buf(dst, bytes), s_buf2(src, bytes), d_buf2(dst, bytes);
  Stream s1(src), s2(dst);
  double ms = median_ms(bidirectional ? std::vector<const Stream*>{&s1, &s2} : std::vector<const Stream*>{&s1}, iters, [&] {
    cuda::set_device_raw(src);
    launch_copy(src, s1.s, s_buf.p, d_buf.p, bytes);  // src GPU stores into dst's memory
    if (bidirectional) {
      cuda::set_device_raw(dst);
      launch_copy(dst, s2.s, d_buf2.p, s_buf2.p, bytes);
    }
  });
  return gbps(bidirectional ? 2 * bytes : bytes, ms);
}

double peer_latency_us(int src, int dst, int hops) {
  RestoreDevice restore;
  PeerScope a(src, dst, true);
  // A random cycle over 4 KiB-strided slots defeats prefetching and keeps each load dependent.
  constexpr uint32_t kSlots = 1 << 14, kStride = 1024;
  std::vector<uint32_t> order(kSlots);
  std::iota(order.begin(), order.end(), 0u);
  std::shuffle(order.begin() + 1, order.end(), std::mt19937(12345));
  std::vector<uint32_t> next(size_t(kSlots) * kStride, 0);
  for (uint32_t k = 0; k < kSlots; ++k) next[size_t(order[k]) * kStride] = order[(k + 1) % kSlots] * kStride;
  DeviceBuffer chain(dst, next.size() * 4), sink(src, 4);
  cuda::set_device_raw(dst);
  VT_CUDA_CHECK(cudaMemcpy(chain.p, next.data(), next.size() * 4, cudaMemcpyHostToDevice));
  Stream s(src);
  double ms = median_ms({&s}, 5, [&] {
    cuda::set_device_raw(src);
    chase_kernel<<<1, 1, 0, s.s>>>(static_cast<const uint32_t*>(chain.p), hops, static_cast<uint32_t*>(sink.p));
    VT_CUDA_CHECK(cudaGetLastError());
  });
  return ms * 1e3 / hops;
}

namespace {
double host_copy(int dev, size_t bytes, int iters, bool to_device) {
  RestoreDevice restore;
  void* host = nullptr;
  cuda::set_device_raw(dev);
  VT_CUDA_CHECK(cudaMallocHost(&host, bytes));
  std::unique_ptr<void, cudaError_t (*)(void*)> pinned(host, &cudaFreeHost);
  std::fill_n(static_cast<char*>(host), bytes, 1);
  double ms;
  {
    DeviceBuffer d(dev, bytes);
    Stream s(dev);
    ms = median_ms({&s}, iters, [&] {
      VT_CUDA_CHECK(to_device ? cudaMemcpyAsync(d.p, host, bytes, cudaMemcpyHostToDevice, s.s)
                           : cudaMemcpyAsync(host, d.p, bytes, cudaMemcpyDeviceToHost, s.s));
    });
  }
  return gbps(bytes, ms);
}
}  // namespace

double host_to_device_gbps(int dev, size_t bytes, int iters) { return host_copy(dev, bytes, iters, true); }
double device_to_host_gbps(int dev, size_t bytes, int iters) { return host_copy(dev, bytes, iters, false); }

double device_local_copy_gbps(int dev, size_t bytes, int iters) {
  RestoreDevice restore;
  DeviceBuffer a(dev, bytes), b(dev, bytes);
  Stream s(dev);
  double ms = median_ms({&s}, iters, [&] {
    VT_CUDA_CHECK(cudaMemcpyAsync(b.p, a.p, bytes, cudaMemcpyDeviceToDevice, s.s));
  });
  return gbps(bytes, ms);
}

}  // namespace vt::topology
