// The bfloat16 micro-kernel of the CPU GEMM for CPUs with AVX512_BF16 (Note [Bfloat16 pairs] in
// cpu_gemm_kernels.h) and the packing that feeds it. The tile is the float AVX-512 kernel's, 12 x 32: 24 zmm
// accumulators, and each packed step loads two vectors of B pairs, broadcasts twelve A pairs and issues 24
// vdpbf16ps, each worth two float FMAs. Only functions marked with these targets use the instructions (Note
// [GEMM kernel selection]).
#if defined(__x86_64__)
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "cpu_gemm_kernels.h"

namespace vt::cpu_gemm {
namespace {

// acc[MR][NV] over panels of PMR rows and PNV vectors (an edge kernel computes the first MR rows and NV vectors:
// Note [Edge tiles]).
template <int MR, int NV, int PMR = MR, int PNV = NV>
__attribute__((target("avx512f,avx512bf16"))) void tile(int64_t kc, const Bf16Pair* a, const Bf16Pair* b, float* c,
                                                       int64_t ldc, bool accumulate) {
  constexpr int W = 16;
  __m512 acc[MR][NV];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_setzero_ps();
  for (int64_t k = 0; k < kc; ++k) {
    __m512bh bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) bv[v] = (__m512bh)_mm512_loadu_si512(b + v * W);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const __m512bh av = (__m512bh)_mm512_set1_epi32(int(a[i]));
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_dpbf16_ps(acc[i][v], av, bv[v]);
    }
    a += PMR;
    b += PNV * W;
  }
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      float* p = c + i * ldc + v * W;
      _mm512_storeu_ps(p, accumulate ? _mm512_add_ps(acc[i][v], _mm512_loadu_ps(p)) : acc[i][v]);
    }
}

// PackFn (cpu_gemm_kernels.h) from bfloat16 bits: step u of lane l is (k = 2u, k = 2u + 1) of that lane, the
// second zero past k_elems. The two layouts mirror cpu_gemm.cpp's pack_panels: lanes adjacent in memory
// interleave two source rows of k; lanes apart go through a small L1 tile of whole runs of k per lane, so
// power-of-two lane strides do not thrash one L1 set.
__attribute__((target("avx512f,avx512bw"))) void pack_pairs(const void* src_v, int64_t lane_stride, int64_t k_stride,
                                                           int64_t lanes, int w, int64_t kc, int64_t k_elems,
                                                           Bf16Pair* dst) {
  const uint16_t* src = static_cast<const uint16_t*>(src_v);
  const int64_t panels = (lanes + w - 1) / w;
  if (lane_stride == 1) {
    constexpr int64_t kAhead = 2, kLine = 32;  // bfloat16 per cache line
    for (int64_t u = 0; u < kc; ++u) {
      const uint16_t* lo = src + 2 * u * k_stride;
      const uint16_t* hi = 2 * u + 1 < k_elems ? lo + k_stride : nullptr;
      if (u + kAhead < kc)
        for (int64_t l = 0; l < lanes; l += kLine) {
          __builtin_prefetch(lo + 2 * kAhead * k_stride + l);
          __builtin_prefetch(lo + (2 * kAhead + 1) * k_stride + l);
        }
      for (int64_t p = 0; p < panels; ++p) {
        Bf16Pair* d = dst + p * kc * w + u * w;
        const int n = int(std::min<int64_t>(w, lanes - p * w));
        const uint16_t* l0 = lo + p * w;
        if (hi) {
          const uint16_t* h0 = hi + p * w;
          for (int l = 0; l < n; ++l) d[l] = Bf16Pair(l0[l]) | Bf16Pair(h0[l]) << 16;
        } else {
          for (int l = 0; l < n; ++l) d[l] = l0[l];
        }
        for (int l = n; l < w; ++l) d[l] = 0;
      }
    }
    return;
  }
  if (k_stride == 1 && lane_stride % 2 == 0 && 2 * kc <= k_elems) {
    // k contiguous and every pair whole: lane l's pairs are a run of 32-bit words, lane_stride / 2 words apart,
    // so packing them is the float transpose of the AVX2 family (it moves bits, never computes on them).
    avx2_pack_k_contiguous_f32()(reinterpret_cast<const float*>(src), lane_stride / 2, lanes, w, kc,
                                 reinterpret_cast<float*>(dst));
    return;
  }
  constexpr int kb = 16;  // packed steps per run: 32 k, one cache line of each lane
  Bf16Pair tile[kb * 32];
  for (int64_t p = 0; p < panels; ++p) {
    Bf16Pair* d = dst + p * kc * w;
    const uint16_t* s = src + p * w * lane_stride;
    const int n = int(std::min<int64_t>(w, lanes - p * w));
    for (int64_t u0 = 0; u0 < kc; u0 += kb) {
      const int m = int(std::min<int64_t>(kb, kc - u0));
      const bool whole = 2 * (u0 + m) <= k_elems;  // every pair of the run has its high half
      for (int l = 0; l < n; ++l) {
        const uint16_t* sl = s + l * lane_stride + 2 * u0 * k_stride;
        Bf16Pair* t = tile + l * kb;
        if (k_stride == 1 && whole) {
          __builtin_prefetch(sl + 4 * 2 * kb);
          std::memcpy(t, sl, size_t(m) * sizeof(Bf16Pair));  // little-endian: the even k lands in the low half
        } else {
          for (int u = 0; u < m; ++u) {
            const int64_t k = 2 * (u0 + u);
            const Bf16Pair high = k + 1 < k_elems ? sl[(2 * u + 1) * k_stride] : 0;
            t[u] = Bf16Pair(sl[2 * u * k_stride]) | high << 16;
          }
        }
      }
      for (int u = 0; u < m; ++u) {
        for (int l = 0; l < n; ++l) d[l] = tile[l * kb + u];
        for (int l = n; l < w; ++l) d[l] = 0;
        d += w;
      }
    }
  }
}

}  // namespace

Bf16PairFamily avx512bf16_kernel() {
  const EdgeKernels<Bf16Pair, float> edge{{{&tile<4, 1, 12, 2>, &tile<4, 2, 12, 2>},
                                           {&tile<8, 1, 12, 2>, &tile<8, 2, 12, 2>},
                                           {&tile<12, 1, 12, 2>, &tile<12, 2, 12, 2>}}};
  return {{12, 32, 256, 96, 256, &tile<12, 2>, nullptr, edge}, &pack_pairs};
}

}  // namespace vt::cpu_gemm
#endif
