// The 16-bit tensor-core pieces of the flash attention kernels (flash_attention.cu): mma.sync m16n8k16 with
// float32 accumulators, its operand fragments read from shared memory, and tiles of a [rows, E] matrix staged
// into shared memory (synchronously, optionally transposed, or by cp.async). Included by flash_attention.cu only.
//
// Note [Accumulator as operand]: the m16n8k16 accumulator layout of two adjacent 8-column tiles (thread lane
// holds rows lane/4 and lane/4 + 8, columns 2(lane%4) and +1 of each) is exactly the A-operand layout of one
// 16-column k step, so a [16 x 64] product becomes the next product's [16 x 64] A operand by packing pairs of
// floats, with no shuffle and no shared-memory round trip.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "smem_pipeline.cuh"

namespace vt::attention::b16 {

constexpr int kThreads = 128;  // four warps
constexpr int kTile = 64;      // query rows of a forward block, keys of a backward block, keys of a forward step
constexpr int kPad = 8;        // halves of padding per shared row: conflict-free fragment loads, 16-byte rows
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

struct Bf16 {};
struct F16 {};

template <typename Tag> __device__ __forceinline__ uint32_t pack2(float lo, float hi) {
  uint32_t r;
  if constexpr (std::is_same_v<Tag, Bf16>) {
    __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
    memcpy(&r, &h, 4);
  } else {
    __half2 h = __floats2half2_rn(lo, hi);
    memcpy(&r, &h, 4);
  }
  return r;
}
template <typename Tag> __device__ __forceinline__ uint16_t to_bits(float x) {
  if constexpr (std::is_same_v<Tag, Bf16>) return __bfloat16_as_ushort(__float2bfloat16_rn(x));
  else return __half_as_ushort(__float2half_rn(x));
}
template <typename Tag> __device__ __forceinline__ float from_bits(uint16_t x) {
  if constexpr (std::is_same_v<Tag, Bf16>) return __bfloat162float(__ushort_as_bfloat16(x));
  else return __half2float(__ushort_as_half(x));
}

// c += a b for one m16n8k16 tile: a row-major [16 x 16], b column-major [16 x 8], float accumulators.
template <typename Tag>
__device__ __forceinline__ void mma(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  if constexpr (std::is_same_v<Tag, Bf16>)
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  else
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#else
  __trap();  // the host never launches these kernels below sm_80 (flash_supported)
#endif
}

// The A fragment of k step kk (columns [16 kk, 16 kk + 16)) of a [16 x 8N] accumulator: Note [Accumulator as
// operand].
template <typename Tag, int N>
__device__ __forceinline__ void acc_to_a(uint32_t (&a)[4], const float (&c)[N][4], int kk) {
  a[0] = pack2<Tag>(c[2 * kk][0], c[2 * kk][1]);
  a[1] = pack2<Tag>(c[2 * kk][2], c[2 * kk][3]);
  a[2] = pack2<Tag>(c[2 * kk + 1][0], c[2 * kk + 1][1]);
  a[3] = pack2<Tag>(c[2 * kk + 1][2], c[2 * kk + 1][3]);
}

__device__ __forceinline__ uint32_t lds32(const uint16_t* p) { return *reinterpret_cast<const uint32_t*>(p); }

// The A fragment of rows [r, r + 16) and columns [c, c + 16) of a row-major shared array with leading dim ld.
__device__ __forceinline__ void load_a(uint32_t (&a)[4], const uint16_t* s, int ld, int r, int c) {
  int g = (threadIdx.x % 32) / 4, t = threadIdx.x % 4;
  a[0] = lds32(s + (r + g) * ld + c + 2 * t);
  a[1] = lds32(s + (r + g + 8) * ld + c + 2 * t);
  a[2] = lds32(s + (r + g) * ld + c + 2 * t + 8);
  a[3] = lds32(s + (r + g + 8) * ld + c + 2 * t + 8);
}
// c += A [16 x 16 at (ar, ac) of sa] times B [16 x 8], B read from sb as its transpose: row n of sb holds column
// n of B, i.e. B's (k, n) element is sb[(n0 + n) * ldb + k0 + k].
__device__ __forceinline__ void load_b(uint32_t& b0, uint32_t& b1, const uint16_t* sb, int ldb, int n0, int k0) {
  int g = (threadIdx.x % 32) / 4, t = threadIdx.x % 4;
  b0 = lds32(sb + (n0 + g) * ldb + k0 + 2 * t);
  b1 = lds32(sb + (n0 + g) * ldb + k0 + 2 * t + 8);
}

// Rows [row0, row0 + ROWS) x columns [0, ED) of a global [rows, E] matrix (row stride rs, unit column stride) into
// shared memory, zeros past `rows` and E: row-major into s (leading dim ld) and/or transposed into st (st[c * ldt
// + r]). vec: E, rs and the base are multiples of 8 elements / 16 bytes, so each 8-column chunk is one load.
template <int ED, int ROWS>
__device__ void load_tile(uint16_t* s, int ld, uint16_t* st, int ldt, const uint16_t* gm, int64_t rs, int64_t row0,
                          int64_t rows, int E, bool vec) {
  constexpr int kChunks = ROWS * (ED / 8);
  for (int i = threadIdx.x; i < kChunks; i += kThreads) {
    // Consecutive threads take consecutive rows when only the transposed copy is wanted (its stores then fall in
    // consecutive halves), consecutive chunks of a row otherwise (coalesced loads).
    int r = s ? i / (ED / 8) : i % ROWS;
    int c = s ? (i % (ED / 8)) * 8 : (i / ROWS) * 8;
    uint4 val = make_uint4(0, 0, 0, 0);
    if (row0 + r < rows) {
      const uint16_t* src = gm + (row0 + r) * rs + c;
      if (vec) {
        if (c < E) val = *reinterpret_cast<const uint4*>(src);
      } else {
        uint16_t tmp[8];
#pragma unroll
        for (int j = 0; j < 8; ++j) tmp[j] = c + j < E ? src[j] : uint16_t(0);
        memcpy(&val, tmp, 16);
      }
    }
    if (s) *reinterpret_cast<uint4*>(s + r * ld + c) = val;
    if (st) {
      uint16_t tmp[8];
      memcpy(tmp, &val, 16);
#pragma unroll
      for (int j = 0; j < 8; ++j) st[(c + j) * ldt + r] = tmp[j];
    }
  }
}

// Rows [row0, row0 + ROWS) x columns [0, ED) of a global [rows, E] matrix into shared memory (row-major, leading
// dim ld) by cp.async, zeros past `rows` and E (Note [Zero-filled copies]); for operands whose rows are 16-byte
// chunks (vec). The copies join the calling thread's current cp.async group.
template <int ED, int ROWS>
__device__ void load_tile_async(uint16_t* s, int ld, const uint16_t* gm, int64_t rs, int64_t row0, int64_t rows,
                                int E) {
  for (int i = threadIdx.x; i < ROWS * (ED / 8); i += kThreads) {
    int r = i / (ED / 8), c = (i % (ED / 8)) * 8;
    bool full = row0 + r < rows && c < E;
    cuda::smem::copy16_async(s + r * ld + c, full ? gm + (row0 + r) * rs + c : gm, full);
  }
}

}  // namespace vt::attention::b16
