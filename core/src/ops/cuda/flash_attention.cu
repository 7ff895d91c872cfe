// CUDA kernels of vt::_flash_attention and its backward (model and fallbacks in ../attention.h), float16 and
// bfloat16, head dims up to 128 (padded to 32, 64 or 128 with zeros, which change no product); float32 runs
// flash_attention_f32.cu and flash_attention_f32_bwd.cu.
//
// Forward (one block of four warps per 64 query rows of one (batch, head)): the query tile stays in registers as
// mma.sync A fragments; key tiles of 64 stream through shared memory (values stored transposed, so that every
// fragment is one 32-bit shared load). Each warp owns 16 query rows and keeps, per row, the running maximum m
// and denominator l of the online softmax: a new tile's scores raise m, rescale l and the output accumulator by
// exp2(m_old - m_new), and add their own exp2(s - m_new). The probabilities go from the scores' accumulator
// registers straight into the next product's A fragments (Note [Accumulator as operand]). The scores never
// reach memory; each row's log-sum-exp is written for the backward.
//
// Backward (one block per 64 keys): the block's key and value tiles stay in shared memory; query tiles stream
// through. Per tile it rebuilds P^T = exp(K Q^T * scale - lse) from the saved lse, then dV += P^T dO,
// dP^T = V dO^T, dS^T = P^T (dP^T - delta) with delta = rowsum(dO * O) from a first small kernel, dK += dS^T Q,
// and dQ += dS K, which several key blocks add to, as float32 atomics into a scratch that is then cast.
// Causal blocks skip the tiles above the diagonal.
//
// Note [Accumulator as operand]: the m16n8k16 accumulator layout of two adjacent 8-column tiles (thread lane
// holds rows lane/4 and lane/4 + 8, columns 2(lane%4) and +1 of each) is exactly the A-operand layout of one
// 16-column k step, so a [16 x 64] product becomes the next product's [16 x 64] A operand by packing pairs of
// floats, with no shuffle and no shared-memory round trip.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <atomic>
#include <cmath>
#include <type_traits>

#include "../attention.h"
#include "vt/core/dispatcher.h"
#include "vt/core/ops.h"
#include "vt/cuda/check.h"
#include "vt/cuda/guard.h"
#include "vt/cuda/stream.h"

namespace vt::attention {
namespace {

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

struct Strides {
  int64_t batch, head, row;
};
__device__ __forceinline__ int64_t base(const Strides& s, int b, int h) { return b * s.batch + h * s.head; }

struct FwdArgs {
  const uint16_t *q, *k, *v;
  uint16_t* out;  // [B, H, L, E] dense
  float* lse;     // [B, H, L]
  Strides qs, ks, vs;
  int H, L, S, E;
  float scale_log2;  // scale * log2(e): the kernels work in base 2
  bool causal, vec;
};

template <typename Tag, int ED> __global__ void __launch_bounds__(kThreads) flash_fwd_kernel(FwdArgs a) {
  extern __shared__ __align__(16) uint16_t smem[];
  constexpr int LD = ED + kPad, LDT = kTile + kPad;
  uint16_t* Qs = smem;              // [64][LD]
  uint16_t* Ks = Qs + kTile * LD;   // [64][LD]
  uint16_t* Vt = Ks + kTile * LD;   // [ED][LDT]: V transposed
  const int bh = blockIdx.x, b = bh / a.H, h = bh % a.H;
  // Causal blocks with more key tiles (the later query tiles) are scheduled first.
  const int m0 = (a.causal ? gridDim.y - 1 - blockIdx.y : blockIdx.y) * kTile;
  const int warp = threadIdx.x / 32, g = (threadIdx.x % 32) / 4, t = threadIdx.x % 4, r0 = warp * 16;
  const uint16_t* q = a.q + base(a.qs, b, h);
  const uint16_t* k = a.k + base(a.ks, b, h);
  const uint16_t* v = a.v + base(a.vs, b, h);

  load_tile<ED, kTile>(Qs, LD, nullptr, 0, q, a.qs.row, m0, a.L, a.E, a.vec);
  __syncthreads();
  uint32_t qf[ED / 16][4];
#pragma unroll
  for (int kk = 0; kk < ED / 16; ++kk) load_a(qf[kk], Qs, LD, r0, kk * 16);

  float o[ED / 8][4] = {};
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};
  const int n_end = a.causal ? min(a.S, m0 + kTile) : a.S;
  for (int n0 = 0; n0 < n_end; n0 += kTile) {
    __syncthreads();  // the previous tile's readers are done
    load_tile<ED, kTile>(Ks, LD, nullptr, 0, k, a.ks.row, n0, a.S, a.E, a.vec);
    load_tile<ED, kTile>(nullptr, 0, Vt, LDT, v, a.vs.row, n0, a.S, a.E, a.vec);
    __syncthreads();

    float s[kTile / 8][4] = {};
#pragma unroll
    for (int kk = 0; kk < ED / 16; ++kk)
#pragma unroll
      for (int j = 0; j < kTile / 8; ++j) {
        uint32_t b0, b1;
        load_b(b0, b1, Ks, LD, j * 8, kk * 16);
        mma<Tag>(s[j], qf[kk], b0, b1);
      }
    const bool edge = n0 + kTile > a.S || (a.causal && n0 + kTile - 1 > m0 + r0);
    float mx[2] = {m[0], m[1]};
#pragma unroll
    for (int j = 0; j < kTile / 8; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        float x = s[j][e] * a.scale_log2;
        if (edge) {
          int key = n0 + j * 8 + 2 * t + (e & 1), row = m0 + r0 + g + (e >> 1) * 8;
          if (key >= a.S || (a.causal && key > row)) x = -INFINITY;
        }
        s[j][e] = x;
        mx[e >> 1] = fmaxf(mx[e >> 1], x);
      }
    float shift[2];
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], 1));
      mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], 2));
      shift[i] = mx[i] == -INFINITY ? 0.f : mx[i];  // a row with nothing visible yet stays at zero, not NaN
      float corr = exp2f(m[i] - shift[i]);
      m[i] = mx[i];
      l[i] *= corr;
#pragma unroll
      for (int n = 0; n < ED / 8; ++n) o[n][2 * i] *= corr, o[n][2 * i + 1] *= corr;
    }
#pragma unroll
    for (int j = 0; j < kTile / 8; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        float p = exp2f(s[j][e] - shift[e >> 1]);
        s[j][e] = p;
        l[e >> 1] += p;  // this thread's columns; the quad's partial sums are added once at the end
      }
#pragma unroll
    for (int kk = 0; kk < kTile / 16; ++kk) {
      uint32_t pa[4];
      acc_to_a<Tag>(pa, s, kk);
#pragma unroll
      for (int n = 0; n < ED / 8; ++n) {
        uint32_t b0, b1;
        load_b(b0, b1, Vt, LDT, n * 8, kk * 16);
        mma<Tag>(o[n], pa, b0, b1);
      }
    }
  }

#pragma unroll
  for (int i = 0; i < 2; ++i) {
    l[i] += __shfl_xor_sync(0xffffffffu, l[i], 1);
    l[i] += __shfl_xor_sync(0xffffffffu, l[i], 2);
    int row = m0 + r0 + g + i * 8;
    if (row >= a.L) continue;
    float inv = 1.f / l[i];
    uint16_t* orow = a.out + (int64_t(bh) * a.L + row) * a.E;
#pragma unroll
    for (int n = 0; n < ED / 8; ++n) {
      int col = n * 8 + 2 * t;
      if (col < a.E) orow[col] = to_bits<Tag>(o[n][2 * i] * inv);
      if (col + 1 < a.E) orow[col + 1] = to_bits<Tag>(o[n][2 * i + 1] * inv);
    }
    if (t == 0) a.lse[int64_t(bh) * a.L + row] = (m[i] + log2f(l[i])) * kLn2;
  }
}

// delta[row] = sum over the head dim of dO * O, float32; one warp per row, which also zeroes the row of the
// float32 dQ scratch the backward kernel adds into (one launch fewer than a separate fill).
template <typename Tag>
__global__ void flash_delta_kernel(const uint16_t* dout, const uint16_t* out, float* delta, float* dq, int64_t rows,
                                   int E) {
  int64_t row = int64_t(blockIdx.x) * (kThreads / 32) + threadIdx.x / 32;
  if (row >= rows) return;
  float acc = 0.f;
  for (int c = threadIdx.x % 32; c < E; c += 32)
    acc += from_bits<Tag>(dout[row * E + c]) * from_bits<Tag>(out[row * E + c]), dq[row * E + c] = 0.f;
#pragma unroll
  for (int off = 16; off > 0; off /= 2) acc += __shfl_xor_sync(0xffffffffu, acc, off);
  if (threadIdx.x % 32 == 0) delta[row] = acc;
}

struct BwdArgs {
  const uint16_t *q, *k, *v, *dout;  // dout: [B, H, L, E] dense
  const float *lse, *delta;          // [B, H, L]
  float* dq;                         // [B, H, L, E] float32, zeroed by flash_delta_kernel
  uint16_t *dk, *dv;                 // [B, H, S, E], unit head-dim stride (Note [Packed attention gradients])
  Strides qs, ks, vs, dks, dvs;
  int H, L, S, E;
  float scale, scale_log2;
  bool causal, vec, dout_vec;  // dout_vec: dout's rows can be read as 16-byte chunks
};

template <int ED, int BM> constexpr size_t bwd_smem_halves() {
  return size_t(2 * kTile * (ED + kPad) + ED * (kTile + kPad) + 2 * BM * (ED + kPad) + 2 * ED * (BM + kPad) +
                BM * (kTile + kPad) + 2 * BM * 2);  // + lse and delta as floats
}

template <typename Tag, int ED, int BM> __global__ void __launch_bounds__(kThreads) flash_bwd_kernel(BwdArgs a) {
  extern __shared__ __align__(16) uint16_t smem[];
  constexpr int LD = ED + kPad, LDK = kTile + kPad, LDM = BM + kPad;
  uint16_t* Ks = smem;            // [64][LD]
  uint16_t* Vs = Ks + kTile * LD;  // [64][LD]
  uint16_t* Kt = Vs + kTile * LD;  // [ED][LDK]
  uint16_t* Qs = Kt + ED * LDK;    // [BM][LD]
  uint16_t* dOs = Qs + BM * LD;    // [BM][LD]
  uint16_t* Qt = dOs + BM * LD;    // [ED][LDM]
  uint16_t* dOt = Qt + ED * LDM;   // [ED][LDM]
  uint16_t* dSs = dOt + ED * LDM;  // [BM][LDK]: dS, query-major
  float* lse_s = reinterpret_cast<float*>(dSs + BM * LDK);
  float* delta_s = lse_s + BM;
  const int bh = blockIdx.x, b = bh / a.H, h = bh % a.H, n0 = blockIdx.y * kTile;
  const int warp = threadIdx.x / 32, g = (threadIdx.x % 32) / 4, t = threadIdx.x % 4, kr = warp * 16;
  const uint16_t* q = a.q + base(a.qs, b, h);
  const uint16_t* dout = a.dout + int64_t(bh) * a.L * a.E;

  load_tile<ED, kTile>(Ks, LD, Kt, LDK, a.k + base(a.ks, b, h), a.ks.row, n0, a.S, a.E, a.vec);
  load_tile<ED, kTile>(Vs, LD, nullptr, 0, a.v + base(a.vs, b, h), a.vs.row, n0, a.S, a.E, a.vec);

  float dk[ED / 8][4] = {}, dv[ED / 8][4] = {};
  // dQ's [BM x ED] tile split over the four warps: BM / 16 row groups x (4 / (BM / 16)) column groups.
  constexpr int kRowGroups = BM / 16, kColW = ED / (4 / kRowGroups);
  const int qg = warp % kRowGroups, qc = (warp / kRowGroups) * kColW;
  // One barrier after a tile's loads and one before dQ's reads of dS suffice: Qs/Qt/dOs/dOt, lse and delta are
  // last read before the dS barrier, which every warp has passed before any of them loads the next tile, and dS
  // is written only after the next tile's load barrier, which every warp reaches after its dQ reads.
  for (int m0 = a.causal ? n0 / BM * BM : 0; m0 < a.L; m0 += BM) {
    load_tile<ED, BM>(Qs, LD, Qt, LDM, q, a.qs.row, m0, a.L, a.E, a.vec);
    load_tile<ED, BM>(dOs, LD, dOt, LDM, dout, a.E, m0, a.L, a.E, a.dout_vec);
    for (int i = threadIdx.x; i < BM; i += kThreads) {
      bool in = m0 + i < a.L;
      lse_s[i] = in ? a.lse[int64_t(bh) * a.L + m0 + i] * kLog2e : INFINITY;  // padding rows: P = 0
      delta_s[i] = in ? a.delta[int64_t(bh) * a.L + m0 + i] : 0.f;
    }
    __syncthreads();

    float p[BM / 8][4] = {}, ds[BM / 8][4] = {};  // P^T and dP^T, then dS^T: rows = this warp's 16 keys
#pragma unroll
    for (int kk = 0; kk < ED / 16; ++kk) {
      uint32_t ka[4], va[4];
      load_a(ka, Ks, LD, kr, kk * 16);
      load_a(va, Vs, LD, kr, kk * 16);
#pragma unroll
      for (int j = 0; j < BM / 8; ++j) {
        uint32_t b0, b1;
        load_b(b0, b1, Qs, LD, j * 8, kk * 16);
        mma<Tag>(p[j], ka, b0, b1);
        load_b(b0, b1, dOs, LD, j * 8, kk * 16);
        mma<Tag>(ds[j], va, b0, b1);
      }
    }
#pragma unroll
    for (int j = 0; j < BM / 8; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        int col = j * 8 + 2 * t + (e & 1), key = n0 + kr + g + (e >> 1) * 8, query = m0 + col;
        float pe = exp2f(p[j][e] * a.scale_log2 - lse_s[col]);
        if (key >= a.S || (a.causal && key > query)) pe = 0.f;
        p[j][e] = pe;
        ds[j][e] = pe * (ds[j][e] - delta_s[col]);
      }
    // dV += P^T dO and dK += dS^T Q (the scale is applied once at the end), with P^T and dS^T as A operands.
#pragma unroll
    for (int kk = 0; kk < BM / 16; ++kk) {
      uint32_t pa[4], sa[4];
      acc_to_a<Tag>(pa, p, kk);
      acc_to_a<Tag>(sa, ds, kk);
#pragma unroll
      for (int n = 0; n < ED / 8; ++n) {
        uint32_t b0, b1;
        load_b(b0, b1, dOt, LDM, n * 8, kk * 16);
        mma<Tag>(dv[n], pa, b0, b1);
        load_b(b0, b1, Qt, LDM, n * 8, kk * 16);
        mma<Tag>(dk[n], sa, b0, b1);
      }
    }
    // dS to shared memory, query-major, for dQ = dS K across the block's 64 keys.
#pragma unroll
    for (int j = 0; j < BM / 8; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) dSs[(j * 8 + 2 * t + (e & 1)) * LDK + kr + g + (e >> 1) * 8] = to_bits<Tag>(ds[j][e]);
    __syncthreads();
    float dq[kColW / 8][4] = {};
#pragma unroll
    for (int kk = 0; kk < kTile / 16; ++kk) {
      uint32_t sa[4];
      load_a(sa, dSs, LDK, qg * 16, kk * 16);
#pragma unroll
      for (int n = 0; n < kColW / 8; ++n) {
        uint32_t b0, b1;
        load_b(b0, b1, Kt, LDK, qc + n * 8, kk * 16);
        mma<Tag>(dq[n], sa, b0, b1);
      }
    }
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      int row = m0 + qg * 16 + g + i * 8;
      if (row >= a.L) continue;
      float* dqrow = a.dq + (int64_t(bh) * a.L + row) * a.E;
#pragma unroll
      for (int n = 0; n < kColW / 8; ++n) {
        int col = qc + n * 8 + 2 * t;
        if (col < a.E) atomicAdd(dqrow + col, dq[n][2 * i] * a.scale);
        if (col + 1 < a.E) atomicAdd(dqrow + col + 1, dq[n][2 * i + 1] * a.scale);
      }
    }
  }

#pragma unroll
  for (int i = 0; i < 2; ++i) {
    int key = n0 + kr + g + i * 8;
    if (key >= a.S) continue;
    uint16_t* dkrow = a.dk + b * a.dks.batch + h * a.dks.head + key * a.dks.row;
    uint16_t* dvrow = a.dv + b * a.dvs.batch + h * a.dvs.head + key * a.dvs.row;
#pragma unroll
    for (int n = 0; n < ED / 8; ++n)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        int col = n * 8 + 2 * t + e;
        if (col >= a.E) continue;
        dkrow[col] = to_bits<Tag>(dk[n][2 * i + e] * a.scale);
        dvrow[col] = to_bits<Tag>(dv[n][2 * i + e]);
      }
  }
}

// ---- host side ----

// Blocks: x = (batch, head), y = 64-row tiles; the delta kernel: a block per four rows of B * H * L.
void check_grid(int64_t B, int64_t H, int64_t L, int64_t S) {
  VT_CHECK(B * H <= INT32_MAX && L <= 65535 * kTile && S <= 65535 * kTile && B * H * L / 4 < INT32_MAX,
           "_flash_attention: ", B * H, " heads in all, query length ", L, " or key length ", S,
           " is past the kernels' grid");
}

// mma.sync with bf16/fp16 operands needs sm_80; asked of q's device (under its guard: a logical device maps to
// its physical one), cached per device.
bool device_has_mma(int device) {
  static std::atomic<uint64_t> known{0}, capable{0};
  uint64_t bit = uint64_t(1) << (device % 64);
  if (known.load(std::memory_order_relaxed) & bit) return capable.load(std::memory_order_relaxed) & bit;
  cuda::DeviceGuard guard(device);
  int dev = 0, major = 0;
  VT_CUDA_CHECK(cudaGetDevice(&dev));
  VT_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
  if (major >= 8) capable.fetch_or(bit, std::memory_order_relaxed);
  known.fetch_or(bit, std::memory_order_relaxed);
  return major >= 8;
}

// float32 (flash_attention_f32.cu, flash_attention_f32_bwd.cu) runs TF32 tensor-core products, also sm_80's, so
// the same device test serves.
bool flash_supported(const Tensor& q, const Tensor& k) {
  bool half = q.dtype() == ScalarType::Float16 || q.dtype() == ScalarType::BFloat16;
  int64_t widest = half ? 128 : q.dtype() == ScalarType::Float32 ? 64 : 0;
  return q.size(-1) > 0 && q.size(-1) <= widest && k.size(-2) > 0 && device_has_mma(q.device().index);
}

Strides strides_of(const Tensor& x) { return {x.stride(0), x.stride(1), x.stride(2)}; }
bool vec_ok(const Tensor& x) {
  return x.size(3) % 8 == 0 && x.stride(0) % 8 == 0 && x.stride(1) % 8 == 0 && x.stride(2) % 8 == 0 &&
         reinterpret_cast<uintptr_t>(x.data_ptr()) % 16 == 0;
}
// The kernels read rows through their strides; only the head dim must be unit-stride.
Tensor unit_last(const Tensor& x) { return x.stride(3) == 1 ? x : ops::contiguous(x); }
int padded_dim(int64_t E) { return E <= 32 ? 32 : E <= 64 ? 64 : 128; }

// Dynamic shared memory past 48 KiB needs the kernel's opt-in, once per (kernel, device).
template <auto Kernel> void allow_smem(size_t bytes, int device) {
  static std::atomic<uint64_t> done{0};
  uint64_t bit = uint64_t(1) << (device % 64);
  if (bytes <= 48 * 1024 || (done.load(std::memory_order_relaxed) & bit)) return;
  VT_CUDA_CHECK(cudaFuncSetAttribute(Kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
  done.fetch_or(bit, std::memory_order_relaxed);
}

template <typename F> void with_tag(ScalarType t, F&& f) {
  if (t == ScalarType::BFloat16) f(Bf16{});
  else f(F16{});
}
template <typename F> void with_dim(int ed, F&& f) {
  if (ed == 32) f(std::integral_constant<int, 32>{});
  else if (ed == 64) f(std::integral_constant<int, 64>{});
  else f(std::integral_constant<int, 128>{});
}

std::tuple<Tensor, Tensor> flash_attention_cuda(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in,
                                                double scale, bool causal) {
  check_qkv(q_in, k_in, v_in, "_flash_attention");
  if (!flash_supported(q_in, k_in)) return forward_composite(q_in, k_in, v_in, scale, causal);
  Tensor q = unit_last(q_in), k = unit_last(k_in), v = unit_last(v_in);
  int64_t B = q.size(0), H = q.size(1), L = q.size(2), S = k.size(2), E = q.size(3);
  const bool f32 = q.dtype() == ScalarType::Float32;
  // Note [Sequence-major output]: float32's [B, H, L, E] lives in [B, L, H, E] storage
  Tensor out = f32 ? ops::permute(empty_tensor(DimVector{B, L, H, E}, q.dtype(), q.device()), DimVector{0, 2, 1, 3})
                   : empty_tensor(q.sizes(), q.dtype(), q.device());
  Tensor lse = empty_tensor(DimVector{B, H, L}, ScalarType::Float32, q.device());
  if (out.numel() == 0) return {out, lse};
  check_grid(B, H, L, S);
  if (f32) {
    flash_forward_f32(q, k, v, scale, causal, out, lse);
    return {out, lse};
  }
  int dev = q.device().index;
  cuda::DeviceGuard guard(dev);
  auto stream = reinterpret_cast<cudaStream_t>(cuda::current_stream(dev));
  FwdArgs a{q.data<uint16_t>(), k.data<uint16_t>(), v.data<uint16_t>(), out.data<uint16_t>(), lse.data<float>(),
            strides_of(q), strides_of(k), strides_of(v), int(H), int(L), int(S), int(E),
            float(scale * double(kLog2e)), causal, vec_ok(q) && vec_ok(k) && vec_ok(v)};
  dim3 grid(unsigned(B * H), unsigned((L + kTile - 1) / kTile));
  with_tag(q.dtype(), [&](auto tag) {
    with_dim(padded_dim(E), [&](auto ed) {
      constexpr int ED = decltype(ed)::value;
      constexpr auto kernel = flash_fwd_kernel<decltype(tag), ED>;
      size_t smem = size_t(2 * kTile * (ED + kPad) + ED * (kTile + kPad)) * 2;
      allow_smem<kernel>(smem, dev);
      kernel<<<grid, kThreads, smem, stream>>>(a);
    });
  });
  VT_CUDA_CHECK(cudaGetLastError());
  return {out, lse};
}

std::tuple<Tensor, Tensor, Tensor> flash_attention_backward_cuda(const Tensor& grad_out, const Tensor& q_in,
                                                                 const Tensor& k_in, const Tensor& v_in,
                                                                 const Tensor& out, const Tensor& lse, double scale,
                                                                 bool causal) {
  check_qkv(q_in, k_in, v_in, "_flash_attention_backward");
  VT_CHECK(DimVector(grad_out.sizes()) == DimVector(q_in.sizes()) &&
               DimVector(out.sizes()) == DimVector(q_in.sizes()),
           "_flash_attention_backward: grad_out ", shape_str(grad_out.sizes()), " and out ", shape_str(out.sizes()),
           " must match query ", shape_str(q_in.sizes()));
  if (!flash_supported(q_in, k_in)) return backward_composite(grad_out, q_in, k_in, v_in, scale, causal);
  VT_CHECK(lse.dim() == 3 && lse.dtype() == ScalarType::Float32 && lse.size(0) == q_in.size(0) &&
               lse.size(1) == q_in.size(1) && lse.size(2) == q_in.size(2),
           "_flash_attention_backward: lse must be float32 [batch, heads, length], got ", dtype_name(lse.dtype()),
           " ", shape_str(lse.sizes()));
  Tensor q = unit_last(q_in), k = unit_last(k_in), v = unit_last(v_in);
  // The float32 kernels read dO and O through their strides (Note [Sequence-major output]); the 16-bit ones dense.
  const bool f32 = q.dtype() == ScalarType::Float32;
  auto layout = [&](const Tensor& x) { return f32 ? unit_last(x) : ops::contiguous(x); };
  Tensor g = layout(grad_out.dtype() == q.dtype() ? grad_out : ops::to_dtype(grad_out, q.dtype()));
  Tensor o = layout(out.dtype() == q.dtype() ? out : ops::to_dtype(out, q.dtype()));
  Tensor lse_c = ops::contiguous(lse);
  int64_t B = q.size(0), H = q.size(1), L = q.size(2), S = k.size(2), E = q.size(3);
  std::optional<PackedGrads> packed = packed_grads(q_in, k_in, v_in);
  Tensor dk = packed ? packed->dk : empty_tensor(k.sizes(), q.dtype(), q.device());
  Tensor dv = packed ? packed->dv : empty_tensor(v.sizes(), q.dtype(), q.device());
  // dQ accumulates (atomics) in place for float32, in a float32 scratch cast at the end for 16-bit; the kernels
  // that compute delta zero it first
  Tensor dq_acc = f32 && packed ? packed->dq : empty_tensor(q.sizes(), ScalarType::Float32, q.device());
  auto dq_out = [&] { return packed && !f32 ? ops::copy_(packed->dq, dq_acc) : ops::to_dtype(dq_acc, q.dtype()); };
  if (B * H == 0) return {dq_out(), dk, dv};
  check_grid(B, H, L, S);
  if (f32) {
    flash_backward_f32(g, q, k, v, o, lse_c, scale, causal, dq_acc, dk, dv);
    return {dq_acc, dk, dv};
  }
  Tensor delta = empty_tensor(DimVector{B, H, L}, ScalarType::Float32, q.device());
  int dev = q.device().index;
  cuda::DeviceGuard guard(dev);
  auto stream = reinterpret_cast<cudaStream_t>(cuda::current_stream(dev));
  BwdArgs a{q.data<uint16_t>(), k.data<uint16_t>(), v.data<uint16_t>(), g.data<uint16_t>(), lse_c.data<float>(),
            delta.data<float>(), dq_acc.data<float>(), dk.data<uint16_t>(), dv.data<uint16_t>(), strides_of(q),
            strides_of(k), strides_of(v), strides_of(dk), strides_of(dv), int(H), int(L), int(S), int(E),
            float(scale), float(scale * double(kLog2e)),
            causal, vec_ok(q) && vec_ok(k) && vec_ok(v),
            E % 8 == 0 && reinterpret_cast<uintptr_t>(g.data_ptr()) % 16 == 0};
  with_tag(q.dtype(), [&](auto tag) {
    using Tag = decltype(tag);
    int64_t rows = B * H * L;
    if (rows > 0) {
      unsigned blocks = unsigned((rows + kThreads / 32 - 1) / (kThreads / 32));
      flash_delta_kernel<Tag><<<blocks, kThreads, 0, stream>>>(g.data<uint16_t>(), o.data<uint16_t>(),
                                                               delta.data<float>(), dq_acc.data<float>(), rows, int(E));
      VT_CUDA_CHECK(cudaGetLastError());
    }
    if (S == 0) return;
    with_dim(padded_dim(E), [&](auto ed) {
      constexpr int ED = decltype(ed)::value, BM = ED <= 64 ? 64 : 32;
      constexpr auto kernel = flash_bwd_kernel<Tag, ED, BM>;
      size_t smem = bwd_smem_halves<ED, BM>() * 2;
      allow_smem<kernel>(smem, dev);
      dim3 grid(unsigned(B * H), unsigned((S + kTile - 1) / kTile));
      kernel<<<grid, kThreads, smem, stream>>>(a);
    });
  });
  VT_CUDA_CHECK(cudaGetLastError());
  return {dq_out(), dk, dv};
}

}  // namespace
}  // namespace vt::attention

VT_LIBRARY(vt, attention_cuda) {
  m.impl("_flash_attention", vt::DispatchKey::CUDA, &vt::attention::flash_attention_cuda);
  m.impl("_flash_attention_backward", vt::DispatchKey::CUDA, &vt::attention::flash_attention_backward_cuda);
}
