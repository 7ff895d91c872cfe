// The host cost of one CUDA kernel launch on this machine (an empty kernel through cudaLaunchKernel), the floor
// under any eager CUDA op's overhead: benchmarks/cuda_ops.py reports tiny-op times beside it, and
// benchmarks/ring.py's issue time of a collective over n (emulated) devices is n launches at least.
// Build and run: nvcc -O2 -o /tmp/launch_floor benchmarks/launch_floor.cu && /tmp/launch_floor
//
// Each case times bursts of 64 launches from a drained device (host time only, the burst's sync outside the
// clock), so a GPU slower than the host is not charged and the launch queue never fills.
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

__global__ void empty_kernel(float* p, float v) {
  if (p && threadIdx.x == 1024) *p = v;  // never true: keeps the argument live, does nothing
}

struct Big {  // the size of a collective's parameter block (every rank's pointers, flags and counts)
  void* ptr[56];
  long long n;
};
__global__ void big_param_kernel(Big b) {
  if (b.ptr[0] && threadIdx.x == 1024) *static_cast<float*>(b.ptr[0]) = float(b.n);
}

template <typename F>
double burst_us(F launch_one) {
  const int burst = 64;
  std::vector<double> us;
  for (int r = 0; r < 201; ++r) {
    cudaDeviceSynchronize();
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < burst; ++i) launch_one(i);
    us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / burst);
  }
  std::sort(us.begin(), us.end());
  return us[us.size() / 2];
}

// One collective's launches fanned out to a spinning worker thread per stream: the caller's host time from the go
// signal until every worker has launched. Whether the driver lets launches into one context (emulated devices) or
// several (real GPUs) overlap decides whether a thread per device beats the caller launching all of them.
struct FanOut {
  std::atomic<long> go{0};
  std::atomic<int> done{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> workers;
  FanOut(std::vector<cudaStream_t>& s, float* p) {
    for (size_t w = 0; w < s.size(); ++w)
      workers.emplace_back([this, &s, p, w] {
        long seen = 0;
        while (!stop.load(std::memory_order_acquire)) {
          long g = go.load(std::memory_order_acquire);
          if (g == seen) continue;
          seen = g;
          empty_kernel<<<1, 32, 0, s[w]>>>(p, 1.0f);
          done.fetch_add(1, std::memory_order_acq_rel);
        }
      });
  }
  void issue(int n) {
    done.store(0, std::memory_order_relaxed);
    go.fetch_add(1, std::memory_order_acq_rel);
    while (done.load(std::memory_order_acquire) < n) {
    }
  }
  ~FanOut() {
    stop = true;
    for (auto& t : workers) t.join();
  }
};

int main() {
  float* p = nullptr;
  std::vector<cudaStream_t> s(8);
  for (auto& x : s) cudaStreamCreateWithFlags(&x, cudaStreamNonBlocking);
  Big big{};
  for (int i = 0; i < 1000; ++i) empty_kernel<<<1, 32, 0, s[0]>>>(p, 1.0f);
  std::printf("host time per launch, median of 201 bursts of 64 from a drained device:\n");
  std::printf("  empty kernel, one stream               %.3f us\n",
              burst_us([&](int) { empty_kernel<<<1, 32, 0, s[0]>>>(p, 1.0f); }));
  std::printf("  empty kernel, 8 streams round robin    %.3f us\n",
              burst_us([&](int i) { empty_kernel<<<1, 32, 0, s[i % 8]>>>(p, 1.0f); }));
  std::printf("  %zu-byte parameters, 8 streams          %.3f us\n", sizeof(Big),
              burst_us([&](int i) { big_param_kernel<<<1, 32, 0, s[i % 8]>>>(big); }));
  std::printf("  + cudaGetLastError, one stream          %.3f us\n", burst_us([&](int) {
                empty_kernel<<<1, 32, 0, s[0]>>>(p, 1.0f);
                (void)cudaGetLastError();
              }));
  std::printf("host time per 8-stream collective (8 launches):\n");
  std::printf("  one thread launches all 8               %.3f us\n", 8 * burst_us([&](int i) {
                empty_kernel<<<1, 32, 0, s[i % 8]>>>(p, 1.0f);
              }));
  {
    FanOut fan(s, p);
    std::printf("  a spinning thread per stream            %.3f us\n", burst_us([&](int) { fan.issue(8); }));
  }
  return cudaGetLastError() == cudaSuccess ? 0 : 1;
}
