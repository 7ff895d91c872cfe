// AVX-512F micro-kernels of the CPU GEMM (contract in cpu_gemm_kernels.h): 12 x 32 for float, 12 x 16 for
// double. The 12 x 2 accumulators take 24 of the 32 zmm registers; each k step loads two vectors of B,
// broadcasts twelve values of A and issues 24 FMAs. Only functions marked with the avx512f target use those
// instructions (Note [GEMM kernel selection]).
#if defined(__x86_64__)
#include <immintrin.h>

#include "cpu_gemm_kernels.h"

namespace vt::cpu_gemm {
namespace {

#define VT_AVX512 __attribute__((target("avx512f"), always_inline)) static inline

struct F32Ops {
  using T = float;
  using V = __m512;
  static constexpr int kWidth = 16;
  VT_AVX512 V zero() { return _mm512_setzero_ps(); }
  VT_AVX512 V load(const T* p) { return _mm512_loadu_ps(p); }
  VT_AVX512 V broadcast(const T* p) { return _mm512_set1_ps(*p); }
  VT_AVX512 V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  VT_AVX512 V add(V a, V b) { return _mm512_add_ps(a, b); }
  VT_AVX512 void store(T* p, V v) { _mm512_storeu_ps(p, v); }
};

struct F64Ops {
  using T = double;
  using V = __m512d;
  static constexpr int kWidth = 8;
  VT_AVX512 V zero() { return _mm512_setzero_pd(); }
  VT_AVX512 V load(const T* p) { return _mm512_loadu_pd(p); }
  VT_AVX512 V broadcast(const T* p) { return _mm512_set1_pd(*p); }
  VT_AVX512 V fma(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
  VT_AVX512 V add(V a, V b) { return _mm512_add_pd(a, b); }
  VT_AVX512 void store(T* p, V v) { _mm512_storeu_pd(p, v); }
};

#undef VT_AVX512

#define VT_GEMM_TARGET "avx512f"
#include "cpu_gemm_tile.inc"
#undef VT_GEMM_TARGET

}  // namespace

MicroKernel<float> avx512_kernel_f32() {
  // The family is only selected where AVX2 is present too (cpu_gemm.cpp), so it packs with the AVX2 code.
  // NC 512: a slab of B is then 512 KiB of L2 (1-2 MiB on AVX-512 parts) beside a 96 KiB block of A. At 256, a
  // ViT's qkv product ([8320, 192] @ [192, 576], 2 threads) took four slabs instead of two, each reading the
  // whole packed A from L3 again: 273 -> 299 GFLOP/s at 512 (2-core Xeon, best of three alternating runs).
  return {12, 32, 256, 96, 512, &tile<F32Ops, 12, 2>, avx2_pack_k_contiguous_f32(), edge_tiles<F32Ops, 12, 2>()};
}
MicroKernel<double> avx512_kernel_f64() {
  return {12, 16, 256, 96, 256, &tile<F64Ops, 12, 2>, avx2_pack_k_contiguous_f64(), edge_tiles<F64Ops, 12, 2>()};
}

}  // namespace vt::cpu_gemm
#endif
