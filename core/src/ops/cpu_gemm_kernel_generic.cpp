// Portable micro-kernels of the CPU GEMM (contract in cpu_gemm_kernels.h): plain C++ for any CPU, the fallback
// when neither AVX2 nor AVX-512 is available (Note [GEMM kernel selection]). The tile is a fixed-size array the
// compiler keeps in registers and vectorises for the baseline instruction set (SSE2 on x86-64, NEON on arm64).
#include "cpu_gemm_kernels.h"

namespace vt::cpu_gemm {
namespace {

template <typename T, int MR, int NR>
void tile(int64_t kc, const T* __restrict__ a, const T* __restrict__ b, T* __restrict__ c, int64_t ldc,
          bool accumulate) {
  T acc[MR][NR] = {};
  for (int64_t k = 0; k < kc; ++k) {
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j) acc[i][j] += a[i] * b[j];
    a += MR;
    b += NR;
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) c[i * ldc + j] = accumulate ? c[i * ldc + j] + acc[i][j] : acc[i][j];
}

}  // namespace

MicroKernel<float> generic_kernel_f32() { return {4, 8, 256, 128, 512, &tile<float, 4, 8>}; }
MicroKernel<double> generic_kernel_f64() { return {4, 4, 256, 128, 256, &tile<double, 4, 4>}; }

}  // namespace vt::cpu_gemm
