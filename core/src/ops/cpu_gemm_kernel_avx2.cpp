// AVX2 + FMA micro-kernels of the CPU GEMM (contract in cpu_gemm_kernels.h): 6 x 16 for float, 6 x 8 for
// double. The 6 x 2 accumulators fill 12 of the 16 ymm registers; each k step loads two vectors of B, broadcasts
// six values of A and issues twelve FMAs, enough independent chains to cover FMA latency on two FMA pipes.
// Only functions marked with the avx2/fma target use those instructions (Note [GEMM kernel selection]).
#if defined(__x86_64__)
#include <immintrin.h>

#include <algorithm>

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

#define VT_GEMM_TARGET "avx2,fma"
#include "cpu_gemm_tile.inc"
#undef VT_GEMM_TARGET

// The transposes of the packing below: r[0..W) holds W lanes of W consecutive k each, and becomes W k of W
// lanes each.
__attribute__((target("avx2,fma"), always_inline)) inline void transpose(__m256 r[8]) {
  __m256 t[8], u[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 2; ++i) {
    u[4 * i + 0] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    u[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    u[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    u[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int i = 0; i < 4; ++i) {
    r[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
    r[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
  }
}
__attribute__((target("avx2,fma"), always_inline)) inline void transpose(__m256d r[4]) {
  __m256d t0 = _mm256_unpacklo_pd(r[0], r[1]), t1 = _mm256_unpackhi_pd(r[0], r[1]);
  __m256d t2 = _mm256_unpacklo_pd(r[2], r[3]), t3 = _mm256_unpackhi_pd(r[2], r[3]);
  r[0] = _mm256_permute2f128_pd(t0, t2, 0x20);
  r[1] = _mm256_permute2f128_pd(t1, t3, 0x20);
  r[2] = _mm256_permute2f128_pd(t0, t2, 0x31);
  r[3] = _mm256_permute2f128_pd(t1, t3, 0x31);
}
// Stores the first n (< W) values of v.
__attribute__((target("avx2,fma"), always_inline)) inline void store_first(float* p, __m256 v, int n) {
  _mm256_maskstore_ps(p, _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)), v);
}
__attribute__((target("avx2,fma"), always_inline)) inline void store_first(double* p, __m256d v, int n) {
  _mm256_maskstore_pd(p, _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), _mm256_setr_epi64x(0, 1, 2, 3)), v);
}

// TransposePackFn (cpu_gemm_kernels.h): W lanes x W k blocks through registers. A group of W lanes walks all
// of kc before the next group starts, so its W source lines stay in L1 while the k steps consume them; a
// prefetch runs 4 cache lines ahead in each lane.
template <class Ops>
__attribute__((target("avx2,fma"))) void pack_k_contiguous(const typename Ops::T* src, int64_t lane_stride,
                                                           int64_t lanes, int w, int64_t kc, typename Ops::T* dst) {
  using T = typename Ops::T;
  using V = typename Ops::V;
  constexpr int W = Ops::kWidth, kLine = 64 / sizeof(T);
  const int64_t kcw = kc / W * W;
  for (int64_t p0 = 0; p0 < lanes; p0 += w, dst += kc * w) {
    for (int l0 = 0; l0 < w; l0 += W) {
      const int64_t valid = std::min<int64_t>(W, std::max<int64_t>(0, lanes - p0 - l0));  // source lanes here
      const int width = std::min(W, w - l0);                                          // panel lanes here
      const T* s = src + (p0 + l0) * lane_stride;
      for (int64_t k0 = 0; k0 < kcw; k0 += W) {
        V r[W];
        for (int i = 0; i < W; ++i) {
          if (i < valid) {
            if (k0 % kLine == 0) _mm_prefetch(reinterpret_cast<const char*>(s + i * lane_stride + k0 + 4 * kLine), _MM_HINT_T0);
            r[i] = Ops::load(s + i * lane_stride + k0);
          } else {
            r[i] = Ops::zero();
          }
        }
        transpose(r);
        T* d = dst + k0 * w + l0;
        for (int i = 0; i < W; ++i) {
          if (width == W)
            Ops::store(d + i * w, r[i]);
          else
            store_first(d + i * w, r[i], width);
        }
      }
      for (int64_t k = kcw; k < kc; ++k)
        for (int i = 0; i < width; ++i) dst[k * w + l0 + i] = i < valid ? s[i * lane_stride + k] : T(0);
    }
  }
}

}  // namespace

TransposePackFn<float> avx2_pack_k_contiguous_f32() { return &pack_k_contiguous<F32Ops>; }
TransposePackFn<double> avx2_pack_k_contiguous_f64() { return &pack_k_contiguous<F64Ops>; }

MicroKernel<float> avx2_kernel_f32() {
  return {6, 16, 256, 144, 512, &tile<F32Ops, 6, 2>, &pack_k_contiguous<F32Ops>, edge_tiles<F32Ops, 6, 2>()};
}
MicroKernel<double> avx2_kernel_f64() {
  return {6, 8, 256, 72, 256, &tile<F64Ops, 6, 2>, &pack_k_contiguous<F64Ops>, edge_tiles<F64Ops, 6, 2>()};
}

}  // namespace vt::cpu_gemm
#endif
