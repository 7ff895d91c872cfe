// CUDA kernels of vt::_flash_attention and its backward (model and fallbacks in ../attention.h), float16 and
// bfloat16, head dims up to 128 (padded to 32, 64 or 128 with zeros, which change no product); float32 runs
// flash_attention_f32.cu and flash_attention_f32_bwd.cu. The tensor-core pieces are in flash_tiles.cuh.
//
// Forward (one block of four warps per 64 query rows of one (batch, head)): the query tile stays in registers as
// mma.sync A fragments; key and value tiles of 64 stream through shared memory, the next one copied while the
// current one is used (Note [Forward pipeline]). Each warp owns 16 query rows and keeps, per row, the running
// maximum m and denominator l of the online softmax: a new tile's scores raise m, rescale l and the output
// accumulator by exp2(m_old - m_new), and add their own exp2(s - m_new). The probabilities go from the scores'
// accumulator registers straight into the next product's A fragments (Note [Accumulator as operand]). The
// scores never reach memory; each row's log-sum-exp is written for the backward.
//
// Backward (one block per 64 keys): the block's key and value tiles stay in shared memory; query tiles stream
// through. Per tile it rebuilds P^T = exp(K Q^T * scale - lse) from the saved lse, then dV += P^T dO,
// dP^T = V dO^T, dS^T = P^T (dP^T - delta) with delta = rowsum(dO * O) from a first small kernel, dK += dS^T Q,
// and dQ += dS K, which several key blocks add to, as float32 atomics into a scratch that is then cast.
// Causal blocks skip the tiles above the diagonal.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <atomic>
#include <cmath>
#include <type_traits>

#include "../attention.h"
#include "flash_tiles.cuh"
#include "vt/core/dispatcher.h"
#include "vt/core/ops.h"
#include "vt/cuda/check.h"
#include "vt/cuda/guard.h"
#include "vt/cuda/stream.h"

namespace vt::attention {
namespace {
using namespace b16;

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

// Note [Forward pipeline]: the key and value tiles are double-buffered: while a block computes on tile i, the
// copies of tile i + 1 are in flight (cp.async), so global latency hides behind the tensor-core work instead of
// stalling every tile. Both stay row-major; the B fragments of S = Q K^T come from K by ldmatrix and those of
// O += P V from V by ldmatrix.trans (four 8x8 tiles, two mma's worth, per instruction).
// Resident forward blocks per SM the registers must allow: shared memory allows 2 at ED 128 (85 KiB a block), 4
// or more below. Without the bound ptxas took 137 registers at ED 64 (3 blocks); bounds above 4 spill at ED 32.
template <int ED> constexpr int kFwdBlocksPerSm = ED == 128 ? 2 : 4;
template <typename Tag, int ED>
__global__ void __launch_bounds__(kThreads, kFwdBlocksPerSm<ED>) flash_fwd_kernel(FwdArgs a) {
  extern __shared__ __align__(16) uint16_t smem[];
  constexpr int LD = ED + kPad, kStage = 2 * kTile * LD;
  uint16_t* Qs = smem;               // [64][LD]
  uint16_t* KV = Qs + kTile * LD;    // two stages of K [64][LD] then V [64][LD]
  const int bh = blockIdx.x, b = bh / a.H, h = bh % a.H;
  // Causal blocks with more key tiles (the later query tiles) are scheduled first.
  const int m0 = (a.causal ? gridDim.y - 1 - blockIdx.y : blockIdx.y) * kTile;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, g = lane / 4, t = lane % 4, r0 = warp * 16;
  const uint16_t* q = a.q + base(a.qs, b, h);
  const uint16_t* k = a.k + base(a.ks, b, h);
  const uint16_t* v = a.v + base(a.vs, b, h);
  auto stage = [&](int n0, int buf) {  // tile n0's keys and values into stage buf, as one cp.async group
    uint16_t* Kb = KV + buf * kStage;
    if (a.vec) {
      load_tile_async<ED, kTile>(Kb, LD, k, a.ks.row, n0, a.S, a.E);
      load_tile_async<ED, kTile>(Kb + kTile * LD, LD, v, a.vs.row, n0, a.S, a.E);
    } else {
      load_tile<ED, kTile>(Kb, LD, nullptr, 0, k, a.ks.row, n0, a.S, a.E, false);
      load_tile<ED, kTile>(Kb + kTile * LD, LD, nullptr, 0, v, a.vs.row, n0, a.S, a.E, false);
    }
    cuda::smem::commit_async();
  };
  const int n_end = a.causal ? min(a.S, m0 + kTile) : a.S;
  const int tiles = (n_end + kTile - 1) / kTile;
  if (tiles > 0) stage(0, 0);

  load_tile<ED, kTile>(Qs, LD, nullptr, 0, q, a.qs.row, m0, a.L, a.E, a.vec);
  __syncthreads();
  uint32_t qf[ED / 16][4];
#pragma unroll
  for (int kk = 0; kk < ED / 16; ++kk) load_a(qf[kk], Qs, LD, r0, kk * 16);

  float o[ED / 8][4] = {};
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};
  for (int it = 0; it < tiles; ++it) {
    const int n0 = it * kTile;
    if (it + 1 < tiles) {
      stage(n0 + kTile, (it + 1) & 1);  // its buffer's last readers passed the previous iteration's end barrier
      cuda::smem::wait_async<1>();
    } else {
      cuda::smem::wait_async<0>();
    }
    __syncthreads();  // tile it has landed, whichever thread copied each part
    const uint16_t* Kb = KV + (it & 1) * kStage;
    const uint16_t* Vb = Kb + kTile * LD;

    float s[kTile / 8][4] = {};
#pragma unroll
    for (int kk = 0; kk < ED / 16; ++kk)
#pragma unroll
      for (int j = 0; j < kTile / 8; j += 2) {
        uint32_t bf[4];  // keys j*8.. and (j+1)*8.., head dims kk*16.. and +8
        cuda::smem::ldmatrix_x4(bf, Kb + (j * 8 + (lane / 16) * 8 + lane % 8) * LD + kk * 16 + (lane / 8 % 2) * 8);
        mma<Tag>(s[j], qf[kk], bf[0], bf[1]);
        mma<Tag>(s[j + 1], qf[kk], bf[2], bf[3]);
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
      for (int n = 0; n < ED / 8; n += 2) {
        uint32_t bf[4];  // keys kk*16.. and +8, head dims n*8.. and (n+1)*8..
        cuda::smem::ldmatrix_x4_trans(bf, Vb + (kk * 16 + (lane / 8 % 2) * 8 + lane % 8) * LD + n * 8 +
                                              (lane / 16) * 8);
        mma<Tag>(o[n], pa, bf[0], bf[1]);
        mma<Tag>(o[n + 1], pa, bf[2], bf[3]);
      }
    }
    __syncthreads();  // every warp is done with this stage before the next iteration refills it
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
      size_t smem = size_t(5 * kTile * (ED + kPad)) * 2;  // Q and two stages of K and V (Note [Forward pipeline])
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
