// The host cost of one CUDA kernel launch on this machine (an empty kernel through cudaLaunchKernel), the floor
// under any eager CUDA op's overhead: benchmarks/cuda_ops.py reports tiny-op times beside it.
// Build and run: nvcc -O2 -o /tmp/launch_floor benchmarks/launch_floor.cu && /tmp/launch_floor
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

__global__ void empty_kernel(float* p, float v) {
  if (p && threadIdx.x == 1024) *p = v;  // never true: keeps the argument live, does nothing
}

int main() {
  float* p = nullptr;
  cudaStream_t s;
  cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
  for (int i = 0; i < 1000; ++i) empty_kernel<<<1, 32, 0, s>>>(p, 1.0f);
  cudaStreamSynchronize(s);
  std::vector<double> us;
  const int iters = 20000;
  for (int r = 0; r < 7; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < iters; ++i) empty_kernel<<<1, 32, 0, s>>>(p, 1.0f);
    cudaStreamSynchronize(s);
    us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / iters);
  }
  std::sort(us.begin(), us.end());
  std::printf("empty kernel launch (host, median of 7 x %d): %.3f us\n", iters, us[3]);
  return cudaGetLastError() == cudaSuccess ? 0 : 1;
}
