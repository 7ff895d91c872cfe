// AVX2 + FMA micro-kernels of the CPU GEMM (contract in cpu_gemm_kernels.h): 6 x 16 for float, 6 x 8 for
// double. The 6 x 2 accumulators fill 12 of the 16 ymm registers; each k step loads two vectors of B, broadcasts
// six values of A and issues twelve FMAs, enough independent chains to cover FMA latency on two FMA pipes.
// Only functions marked with the avx2/fma target use those instructions (Note [GEMM kernel selection]).
#if defined(__x86_64__)
#include <immintrin.h>

#include "cpu_gemm_kernels.h"

namespace vt::cpu_gemm {
namespace {

#define VT_AVX2 __attribute__((target("avx2,fma"), always_inline)) static inline

struct F32Ops {
  using T = float;
  using V = __m256;
  static constexpr int kWidth = 8;
  VT_AVX2 V zero() { return _mm256_setzero_ps(); }
  VT_AVX2 V load(const T* p) { return _mm256_loadu_ps(p); }
  VT_AVX2 V broadcast(const T* p) { return _mm256_broadcast_ss(p); }
  VT_AVX2 V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  VT_AVX2 V add(V a, V b) { return _mm256_add_ps(a, b); }
  VT_AVX2 void store(T* p, V v) { _mm256_storeu_ps(p, v); }
};

struct F64Ops {
  using T = double;
  using V = __m256d;
  static constexpr int kWidth = 4;
  VT_AVX2 V zero() { return _mm256_setzero_pd(); }
  VT_AVX2 V load(const T* p) { return _mm256_loadu_pd(p); }
  VT_AVX2 V broadcast(const T* p) { return _mm256_broadcast_sd(p); }
  VT_AVX2 V fma(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
  VT_AVX2 V add(V a, V b) { return _mm256_add_pd(a, b); }
  VT_AVX2 void store(T* p, V v) { _mm256_storeu_pd(p, v); }
};

#undef VT_AVX2

// acc[MR][NV]: the tile in registers, NV vectors of kWidth columns per row.
template <class Ops, int MR, int NV>
__attribute__((target("avx2,fma"))) void tile(int64_t kc, const typename Ops::T* a, const typename Ops::T* b,
                                              typename Ops::T* c, int64_t ldc, bool accumulate) {
  using V = typename Ops::V;
  constexpr int W = Ops::kWidth;
  V acc[MR][NV];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = Ops::zero();
  for (int64_t k = 0; k < kc; ++k) {
    V bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) bv[v] = Ops::load(b + v * W);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      V av = Ops::broadcast(a + i);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[i][v] = Ops::fma(av, bv[v], acc[i][v]);
    }
    a += MR;
    b += NV * W;
  }
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      auto* p = c + i * ldc + v * W;
      Ops::store(p, accumulate ? Ops::add(acc[i][v], Ops::load(p)) : acc[i][v]);
    }
}

}  // namespace

MicroKernel<float> avx2_kernel_f32() { return {6, 16, 256, 144, 512, &tile<F32Ops, 6, 2>}; }
MicroKernel<double> avx2_kernel_f64() { return {6, 8, 256, 72, 256, &tile<F64Ops, 6, 2>}; }

}  // namespace vt::cpu_gemm
#endif
