// What the float32 attention kernels share (flash_attention_f32.cu's forward, flash_attention_f32_bwd.cu's
// backward): per-(batch, head) strides, the 64-row tile and padded head dim, the read of one 4-column chunk of a
// tile with zeros past the rows and the head dim (so that padded lanes change no product), and the warp-level
// tensor-core products in three TF32 passes.
//
// Note [Three TF32 passes]: a float32 x splits into big (its top 11 significant bits, truncated) and small (the
// rest, x - big, rounded to 11 bits), and a b ~ big_a big_b + big_a small_b + small_a big_b: each operand is carried
// to 2^-21 of itself and the dropped small_a small_b is below 2^-20 |a b|; products of TF32 operands are exact in
// the float32 accumulators. The small terms go in first so they are not rounded away against the big one. The
// result carries float32-level error (the tests hold it to the float32 kernels' bound) at tensor-core rate.
//
// Note [Fragment-friendly layouts]: mma.sync m16n8k8 gives lane (g = lane / 4, t = lane % 4) the operand elements
// at non-reduction index g (+ 8) and reduction index t (+ 4). An operand stored with its reduction index minor
// (s[i * ld + x]) is read by a warp without bank conflicts when ld = 4 (mod 8); stored reduction-major
// (s[x * ld + i]), when ld = 8 (mod 16).
#pragma once

#include <cuda_runtime.h>

#include <atomic>
#include <cstdint>

#include "vt/core/tensor.h"
#include "vt/cuda/check.h"

namespace vt::attention::f32 {

constexpr int kT = 64;  // tile rows and the padded head dim
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

struct Strides {
  int64_t batch, head, row;
};

// Row row0 + r, columns [c, c + 4) of a global [rows, E] matrix (row stride rs, unit columns); zeros past `rows`
// and E. vec: E, rs and the base are multiples of 4 floats / 16 bytes, so the chunk is one load.
__device__ __forceinline__ float4 fetch4(const float* g, int64_t rs, int64_t row0, int64_t rows, int E, bool vec,
                                         int r, int c) {
  float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
  if (row0 + r < rows && c < E) {
    const float* src = g + (row0 + r) * rs + c;
    if (vec) {
      v = *reinterpret_cast<const float4*>(src);
    } else {
      v.x = src[0];
      v.y = c + 1 < E ? src[1] : 0.f;
      v.z = c + 2 < E ? src[2] : 0.f;
      v.w = c + 3 < E ? src[3] : 0.f;
    }
  }
  return v;
}

struct Split {
  uint32_t big, small;
};
// Note [Three TF32 passes]. Three integer/float instructions, where cvt.rna.tf32.f32 expands to about six on sm_90:
// big keeps x's top 19 bits (exact truncation, no overflow near FLT_MAX), small = x - big is exact, and adding half
// of TF32's last place to small's bits makes the tensor core's own truncation of its low 13 bits a rounding.
__device__ __forceinline__ Split split_tf32(float x) {
  const uint32_t big = __float_as_uint(x) & 0xffffe000u;
  const float small = x - __uint_as_float(big);
  return {big, __float_as_uint(small) + 0x1000u};
}
__device__ __forceinline__ void mma_tf32(float (&c)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                                         uint32_t b0, uint32_t b1) {
  asm("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}
// c += A B for one m16n8k8 step from split operands (A: a0..a3 in the fragment's order, B: b0, b1), small terms
// first (Note [Three TF32 passes]).
__device__ __forceinline__ void mma_3xtf32(float (&c)[4], Split a0, Split a1, Split a2, Split a3, Split b0,
                                           Split b1) {
  mma_tf32(c, a0.small, a1.small, a2.small, a3.small, b0.big, b1.big);
  mma_tf32(c, a0.big, a1.big, a2.big, a3.big, b0.small, b1.small);
  mma_tf32(c, a0.big, a1.big, a2.big, a3.big, b0.big, b1.big);
}

// Element (i, x) of an operand with non-reduction index i and reduction index x, as stored.
template <bool kRedMajor> __device__ __forceinline__ float at(const float* s, int ld, int i, int x) {
  return kRedMajor ? s[x * ld + i] : s[i * ld + x];
}

// acc[j] += the 16 x 8 block at rows m0, columns n0 + 8 j of A B, summed over the reduction x < N (one warp):
// C[m][n] = sum_x A(m, x) B(n, x), each operand read through at<> in its layout.
template <int N, int NT, bool kAMajor, bool kBMajor>
__device__ __forceinline__ void warp_product(float (&acc)[NT][4], const float* A, int lda, int m0, const float* B,
                                             int ldb, int n0) {
  const int lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
#pragma unroll
  for (int x = 0; x < N; x += 8) {
    const Split a0 = split_tf32(at<kAMajor>(A, lda, m0 + g, x + t));
    const Split a1 = split_tf32(at<kAMajor>(A, lda, m0 + g + 8, x + t));
    const Split a2 = split_tf32(at<kAMajor>(A, lda, m0 + g, x + t + 4));
    const Split a3 = split_tf32(at<kAMajor>(A, lda, m0 + g + 8, x + t + 4));
#pragma unroll
    for (int j = 0; j < NT; ++j) {
      const Split b0 = split_tf32(at<kBMajor>(B, ldb, n0 + 8 * j + g, x + t));
      const Split b1 = split_tf32(at<kBMajor>(B, ldb, n0 + 8 * j + g, x + t + 4));
      mma_3xtf32(acc[j], a0, a1, a2, a3, b0, b1);
    }
  }
}

inline Strides strides_of(const Tensor& x) { return {x.stride(0), x.stride(1), x.stride(2)}; }
inline bool vec_ok(const Tensor& x) {
  return x.size(3) % 4 == 0 && x.stride(0) % 4 == 0 && x.stride(1) % 4 == 0 && x.stride(2) % 4 == 0 &&
         reinterpret_cast<uintptr_t>(x.data_ptr()) % 16 == 0;
}

// Dynamic shared memory past 48 KiB needs the kernel's opt-in, once per (kernel, device).
template <auto Kernel> void allow_smem(size_t bytes, int device) {
  static std::atomic<uint64_t> done{0};
  uint64_t bit = uint64_t(1) << (device % 64);
  if (done.load(std::memory_order_relaxed) & bit) return;
  VT_CUDA_CHECK(cudaFuncSetAttribute(Kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
  done.fetch_or(bit, std::memory_order_relaxed);
}

}  // namespace vt::attention::f32
