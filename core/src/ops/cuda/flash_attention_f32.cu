// CUDA kernels of vt::_flash_attention and its backward for float32, head dims up to 64 (padded to 64 with
// zeros, which change no product): the same tiled algorithm as the 16-bit kernels (flash_attention.cu), on the
// FP32 cores, as torch's memory-efficient float32 kernels are. Nothing is rounded below float32, so results
// match the composed path's to float32 accuracy; the [L, S] scores never reach memory.
//
// Every product is a tile product between two shared arrays stored "reduction-major": acc[i][j] += sum over x of
// A[x][RI ty + i] * B[x][RJ tx + j] (Note [Reduction-major tiles]). A block is 256 threads as a 16 x 16 grid
// (tx = thread % 16, ty = thread / 16); each thread owns a 4 x 4 patch of a 64 x 64 result (4 x 2 or 2 x 4 of
// the backward's 64 x 32 and 32 x 64 ones).
//
// Forward (one block per 64 query rows of one (batch, head)): S = Q K^T from Q^T and K^T, the online softmax on
// the patch (row maxima and sums over the 16 threads of a row by shuffles), P^T into shared memory, O += P V.
// Backward (one block per 64 keys, query tiles of 32): per query tile, S^T and dP^T = V dO^T in registers,
// P^T = exp(S^T scale - lse), dS^T = P^T (dP^T - delta); then dV += P^T dO, dK += dS^T Q and dQ += dS K (float32
// atomics: several key blocks add to one query row). Causal blocks skip the tiles above the diagonal.
//
// Note [Reduction-major tiles]: with both operands stored so that the reduction index picks the row, a thread
// reads its four A values and four B values of one step as two 16-byte loads (the sixteen threads of a row read
// 256 consecutive bytes; the two rows of a warp read one address each), so each step is 2 loads for 16 FMAs
// (8-byte loads for the two-wide sides of the backward's patches).
// Operands arrive row-major from global memory; those needed reduction-major are transposed on the way into
// shared memory, and results are written out transposed where the next product needs them so.
//
// Note [Sequence-major output]: the forward's output [B, H, L, E] is a permuted view of [B, L, H, E] storage, the
// layout torch's memory-efficient kernels return. Model code's next step, out.transpose(1, 2).reshape(B, L, H E),
// is then a view instead of a copy, and the gradient that comes back through it (a [B, H, L, E] view of
// [B, L, H, E] storage) is read in place by the backward, dO and O through their strides, instead of being
// copied dense first: two fewer copies of the attention output per layer and step.
#include <cuda_runtime.h>

#include <atomic>
#include <cmath>
#include <cstdint>

#include "../attention.h"
#include "vt/core/ops.h"
#include "vt/cuda/check.h"
#include "vt/cuda/guard.h"
#include "vt/cuda/stream.h"

namespace vt::attention {
namespace {

constexpr int kT = 64;         // tile rows and the padded head dim
constexpr int kLd = kT + 4;    // shared row stride in floats: rows stay 16-byte aligned
constexpr int kThreads = 256;  // a 16 x 16 grid of 4 x 4 patches
constexpr int kTileFloats = kT * kLd;
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

struct Strides {
  int64_t batch, head, row;
};

// Rows [row0, row0 + ROWS) x columns [0, 64) of a global [rows, E] matrix (row stride rs, unit columns) into
// shared memory with leading dim ld, zeros past `rows` and E: row-major (s[r * ld + c]) or transposed
// (s[c * ld + r]). vec: E, rs and the base are multiples of 4 floats / 16 bytes, so each 4-column chunk is one
// load.
template <bool kTransposed, int ROWS>
__device__ void load_tile(float* s, int ld, const float* g, int64_t rs, int64_t row0, int64_t rows, int E,
                          bool vec) {
  for (int i = threadIdx.x; i < ROWS * (kT / 4); i += kThreads) {
    int r = i / (kT / 4), c = (i % (kT / 4)) * 4;
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
    if constexpr (kTransposed) {
      s[c * ld + r] = v.x;
      s[(c + 1) * ld + r] = v.y;
      s[(c + 2) * ld + r] = v.z;
      s[(c + 3) * ld + r] = v.w;
    } else {
      *reinterpret_cast<float4*>(s + r * ld + c) = v;
    }
  }
}

// R consecutive floats (R = 2 or 4) as one aligned shared load.
template <int R> __device__ __forceinline__ void load_vec(float (&out)[R], const float* p) {
  if constexpr (R == 4) {
    float4 v = *reinterpret_cast<const float4*>(p);
    out[0] = v.x, out[1] = v.y, out[2] = v.z, out[3] = v.w;
  } else {
    float2 v = *reinterpret_cast<const float2*>(p);
    out[0] = v.x, out[1] = v.y;
  }
}
template <int R> __device__ __forceinline__ void store_vec(float* p, const float (&in)[R]) {
  if constexpr (R == 4) *reinterpret_cast<float4*>(p) = make_float4(in[0], in[1], in[2], in[3]);
  else *reinterpret_cast<float2*>(p) = make_float2(in[0], in[1]);
}

// acc[i][j] += sum over x < N of A[x][RI ty + i] * B[x][RJ tx + j]: Note [Reduction-major tiles].
template <int N, int RI, int RJ>
__device__ __forceinline__ void tile_product(float (&acc)[RI][RJ], const float* A, int lda, const float* B, int ldb) {
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
#pragma unroll 8
  for (int x = 0; x < N; ++x) {
    float a[RI], b[RJ];
    load_vec<RI>(a, A + x * lda + RI * ty);
    load_vec<RJ>(b, B + x * ldb + RJ * tx);
#pragma unroll
    for (int i = 0; i < RI; ++i)
#pragma unroll
      for (int j = 0; j < RJ; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
  }
}

// The patch written transposed: s[(RJ tx + j) * ld + RI ty + i] = acc[i][j].
template <int RI, int RJ>
__device__ __forceinline__ void store_transposed(float* s, int ld, const float (&acc)[RI][RJ]) {
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
#pragma unroll
  for (int j = 0; j < RJ; ++j) {
    float col[RI];
#pragma unroll
    for (int i = 0; i < RI; ++i) col[i] = acc[i][j];
    store_vec<RI>(s + (RJ * tx + j) * ld + RI * ty, col);
  }
}
// The patch as it stands: s[(RI ty + i) * ld + RJ tx + j] = acc[i][j].
template <int RI, int RJ>
__device__ __forceinline__ void store_direct(float* s, int ld, const float (&acc)[RI][RJ]) {
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
#pragma unroll
  for (int i = 0; i < RI; ++i) store_vec<RJ>(s + (RI * ty + i) * ld + RJ * tx, acc[i]);
}

// Over the sixteen threads of one patch row (lanes differing in their low four bits).
__device__ __forceinline__ float row_max(float x) {
#pragma unroll
  for (int off = 8; off > 0; off /= 2) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, off));
  return x;
}
__device__ __forceinline__ float row_sum(float x) {
#pragma unroll
  for (int off = 8; off > 0; off /= 2) x += __shfl_xor_sync(0xffffffffu, x, off);
  return x;
}

struct FwdArgs {
  const float *q, *k, *v;
  float* out;  // [B, H, L, E], unit head-dim stride (Note [Sequence-major output])
  float* lse;  // [B, H, L]
  Strides qs, ks, vs, os;
  int H, L, S, E;
  float scale_log2;  // scale * log2(e): the kernels work in base 2
  bool causal, vec;
};

__global__ void __launch_bounds__(kThreads) flash_fwd_f32_kernel(FwdArgs a) {
  extern __shared__ float4 smem4[];
  float* Qt = reinterpret_cast<float*>(smem4);  // [E][q]
  float* Kt = Qt + kTileFloats;                 // [E][k]
  float* Vs = Kt + kTileFloats;                 // [k][E]
  float* Pt = Vs + kTileFloats;                 // [k][q]
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const int bh = blockIdx.x, b = bh / a.H, h = bh % a.H;
  const int64_t q0 = int64_t(blockIdx.y) * kT;
  const float* qg = a.q + b * a.qs.batch + h * a.qs.head;
  const float* kg = a.k + b * a.ks.batch + h * a.ks.head;
  const float* vg = a.v + b * a.vs.batch + h * a.vs.head;
  load_tile<true, kT>(Qt, kLd, qg, a.qs.row, q0, a.L, a.E, a.vec);

  float o[4][4] = {}, m[4], l[4];
#pragma unroll
  for (int i = 0; i < 4; ++i) m[i] = -INFINITY, l[i] = 0.f;
  // Causal rows end at their own index (top-left aligned): this block's last row is q0 + 63.
  const int64_t kend = a.causal ? min(int64_t(a.S), q0 + kT) : int64_t(a.S);
  for (int64_t k0 = 0; k0 < kend; k0 += kT) {
    __syncthreads();  // the previous tile's readers are done with Kt, Vs and Pt
    load_tile<true, kT>(Kt, kLd, kg, a.ks.row, k0, a.S, a.E, a.vec);
    load_tile<false, kT>(Vs, kLd, vg, a.vs.row, k0, a.S, a.E, a.vec);
    __syncthreads();
    float s[4][4] = {};
    tile_product<kT>(s, Qt, kLd, Kt, kLd);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int64_t qi = q0 + 4 * ty + i;
      float mx = -INFINITY;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int64_t kj = k0 + 4 * tx + j;
        s[i][j] = kj < a.S && (!a.causal || kj <= qi) ? s[i][j] * a.scale_log2 : -INFINITY;
        mx = fmaxf(mx, s[i][j]);
      }
      const float mnew = fmaxf(m[i], row_max(mx));
      // Row 0's key is in the first tile, so mnew is finite from there on; the guard keeps a fully masked
      // row's exponentials at zero rather than NaN all the same.
      const float base = mnew == -INFINITY ? 0.f : mnew;
      const float alpha = exp2f(m[i] - base);
      float sum = 0.f;
#pragma unroll
      for (int j = 0; j < 4; ++j) s[i][j] = exp2f(s[i][j] - base), sum += s[i][j];
      l[i] = l[i] * alpha + row_sum(sum);
      m[i] = mnew;
#pragma unroll
      for (int j = 0; j < 4; ++j) o[i][j] *= alpha;
    }
    store_transposed(Pt, kLd, s);
    __syncthreads();
    tile_product<kT>(o, Pt, kLd, Vs, kLd);
  }
  float* og = a.out + b * a.os.batch + h * a.os.head;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int64_t qi = q0 + 4 * ty + i;
    if (qi >= a.L) continue;
    const float inv = 1.f / l[i];
#pragma unroll
    for (int j = 0; j < 4; ++j)
      if (4 * tx + j < a.E) og[qi * a.os.row + 4 * tx + j] = o[i][j] * inv;
    if (tx == 0) a.lse[int64_t(bh) * a.L + qi] = (m[i] + log2f(l[i])) * kLn2;
  }
}

// delta[row] = sum over the head dim of dO * O; one warp per (batch, head, query) row, both read through their
// strides (unit along the head dim). The warp also zeroes the row's dQ, which the backward kernel then adds into:
// one launch fewer than a separate fill (dQ is often a strided piece of a packed q/k/v gradient).
__global__ void flash_delta_f32_kernel(const float* dout, Strides gs, const float* out, Strides os, float* delta,
                                       float* dq, Strides dqs, int64_t rows, int H, int L, int E) {
  int64_t row = int64_t(blockIdx.x) * (kThreads / 32) + threadIdx.x / 32;
  if (row >= rows) return;
  const int64_t l = row % L, h = row / L % H, b = row / (int64_t(L) * H);
  const float* g = dout + b * gs.batch + h * gs.head + l * gs.row;
  const float* o = out + b * os.batch + h * os.head + l * os.row;
  float* z = dq + b * dqs.batch + h * dqs.head + l * dqs.row;
  float acc = 0.f;
  for (int c = threadIdx.x % 32; c < E; c += 32) acc += g[c] * o[c], z[c] = 0.f;
#pragma unroll
  for (int off = 16; off > 0; off /= 2) acc += __shfl_xor_sync(0xffffffffu, acc, off);
  if (threadIdx.x % 32 == 0) delta[row] = acc;
}

struct BwdArgs {
  const float *q, *k, *v, *dout;  // dout: [B, H, L, E], unit head-dim stride
  const float *lse, *delta;       // [B, H, L]
  float *dq, *dk, *dv;            // dq zeroed (atomics) by the delta kernel; unit head-dim strides (Note [Packed
                                  // attention gradients])
  Strides qs, ks, vs, gs, dqs, dks, dvs;
  int H, L, S, E;
  float scale, scale_log2;
  bool causal, vec, dout_vec;
};

// The backward streams query tiles of 32 rows (kQ) past a block's 64 keys, so that its shared arrays (95 KiB)
// let two blocks share an SM: one block's loads then overlap the other's products. The key side stays: K^T,
// K and V^T, [64][kLd]. Per query tile: Q^T and dO^T ([64][kLdQ]) feed the score products and are then
// overwritten by P and dS * scale ([32][kLd], which fit), which feed dV and dK beside Q and dO ([32][kLd]);
// dS^T * scale ([64][kLdQ]) feeds dQ.
constexpr int kQ = 32;
constexpr int kLdQ = kQ + 4;
constexpr int kQTileFloats = kT * kLdQ;  // >= kQ * kLd: P and dS fit where Q^T and dO^T were
static_assert(kQTileFloats >= kQ * kLd);
constexpr size_t kBwdSmem = (3 * kTileFloats + 3 * kQTileFloats + 2 * kQ * kLd + 2 * kQ) * sizeof(float);
constexpr size_t kFwdSmem = 4 * kTileFloats * sizeof(float);

__global__ void __launch_bounds__(kThreads, 2) flash_bwd_f32_kernel(BwdArgs a) {
  extern __shared__ float4 smem4[];
  float* Kt = reinterpret_cast<float*>(smem4);  // [E][k]
  float* Ks = Kt + kTileFloats;                 // [k][E]
  float* Vt = Ks + kTileFloats;                 // [E][k]
  float* Qt = Vt + kTileFloats;                 // [E][q] (kLdQ), then P [q][k] (kLd)
  float* Ot = Qt + kQTileFloats;                // dO^T [E][q] (kLdQ), then dS * scale [q][k] (kLd)
  float* Dt = Ot + kQTileFloats;                // dS^T * scale [k][q] (kLdQ)
  float* Qs = Dt + kQTileFloats;                // [q][E]
  float* Os = Qs + kQ * kLd;                    // dO [q][E]
  float* lse_s = Os + kQ * kLd;                 // [q], in base 2
  float* delta_s = lse_s + kQ;                  // [q]
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const int bh = blockIdx.x, b = bh / a.H, h = bh % a.H;
  const int64_t k0 = int64_t(blockIdx.y) * kT;
  const float* qg = a.q + b * a.qs.batch + h * a.qs.head;
  const float* kg = a.k + b * a.ks.batch + h * a.ks.head;
  const float* vg = a.v + b * a.vs.batch + h * a.vs.head;
  const float* og = a.dout + b * a.gs.batch + h * a.gs.head;
  load_tile<true, kT>(Kt, kLd, kg, a.ks.row, k0, a.S, a.E, a.vec);
  load_tile<false, kT>(Ks, kLd, kg, a.ks.row, k0, a.S, a.E, a.vec);
  load_tile<true, kT>(Vt, kLd, vg, a.vs.row, k0, a.S, a.E, a.vec);

  float dv[4][4] = {}, dk[4][4] = {};
  // Causal: query rows before k0 see none of these keys.
  for (int64_t q0 = a.causal ? k0 : 0; q0 < a.L; q0 += kQ) {
    __syncthreads();  // the previous tile's readers are done
    load_tile<true, kQ>(Qt, kLdQ, qg, a.qs.row, q0, a.L, a.E, a.vec);
    load_tile<false, kQ>(Qs, kLd, qg, a.qs.row, q0, a.L, a.E, a.vec);
    load_tile<true, kQ>(Ot, kLdQ, og, a.gs.row, q0, a.L, a.E, a.dout_vec);
    load_tile<false, kQ>(Os, kLd, og, a.gs.row, q0, a.L, a.E, a.dout_vec);
    for (int r = threadIdx.x; r < kQ; r += kThreads) {
      const bool in = q0 + r < a.L;
      lse_s[r] = in ? a.lse[int64_t(bh) * a.L + q0 + r] * kLog2e : 0.f;
      delta_s[r] = in ? a.delta[int64_t(bh) * a.L + q0 + r] : 0.f;
    }
    __syncthreads();
    float p[4][2] = {}, ds[4][2] = {};  // transposed patches: rows are keys 4 ty + i, columns queries 2 tx + j
    tile_product<kT>(p, Kt, kLd, Qt, kLdQ);
    tile_product<kT>(ds, Vt, kLd, Ot, kLdQ);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int64_t kj = k0 + 4 * ty + i;
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        const int64_t qi = q0 + 2 * tx + j;
        const bool live = kj < a.S && qi < a.L && (!a.causal || kj <= qi);
        p[i][j] = live ? exp2f(p[i][j] * a.scale_log2 - lse_s[2 * tx + j]) : 0.f;
        ds[i][j] = p[i][j] * (ds[i][j] - delta_s[2 * tx + j]) * a.scale;
      }
    }
    __syncthreads();  // everyone is done reading Q^T and dO^T
    store_transposed(Qt, kLd, p);    // P [q][k]
    store_transposed(Ot, kLd, ds);   // dS [q][k]
    store_direct(Dt, kLdQ, ds);      // dS^T [k][q]
    __syncthreads();
    tile_product<kQ>(dv, Qt, kLd, Os, kLd);  // dV[k][e] += sum over q of P[q][k] dO[q][e]
    tile_product<kQ>(dk, Ot, kLd, Qs, kLd);  // dK[k][e] += sum over q of dS[q][k] Q[q][e]
    float dq[2][4] = {};
    tile_product<kT>(dq, Dt, kLdQ, Ks, kLd);  // dQ[q][e] = sum over k of dS^T[k][q] K[k][e]
    float* dqg = a.dq + b * a.dqs.batch + h * a.dqs.head;
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const int64_t qi = q0 + 2 * ty + i;
      if (qi >= a.L) continue;
#pragma unroll
      for (int j = 0; j < 4; ++j)
        if (4 * tx + j < a.E) atomicAdd(dqg + qi * a.dqs.row + 4 * tx + j, dq[i][j]);
    }
  }
  float* dkg = a.dk + b * a.dks.batch + h * a.dks.head;
  float* dvg = a.dv + b * a.dvs.batch + h * a.dvs.head;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int64_t kj = k0 + 4 * ty + i;
    if (kj >= a.S) continue;
#pragma unroll
    for (int j = 0; j < 4; ++j)
      if (4 * tx + j < a.E) dkg[kj * a.dks.row + 4 * tx + j] = dk[i][j], dvg[kj * a.dvs.row + 4 * tx + j] = dv[i][j];
  }
}

Strides strides_of(const Tensor& x) { return {x.stride(0), x.stride(1), x.stride(2)}; }
bool vec_ok(const Tensor& x) {
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

}  // namespace

void flash_forward_f32(const Tensor& q, const Tensor& k, const Tensor& v, double scale, bool causal,
                       const Tensor& out, const Tensor& lse) {
  int64_t B = q.size(0), H = q.size(1), L = q.size(2), S = k.size(2), E = q.size(3);
  int dev = q.device().index;
  cuda::DeviceGuard guard(dev);
  auto stream = reinterpret_cast<cudaStream_t>(cuda::current_stream(dev));
  FwdArgs a{q.data<float>(), k.data<float>(), v.data<float>(), out.data<float>(), lse.data<float>(),
            strides_of(q), strides_of(k), strides_of(v), strides_of(out), int(H), int(L), int(S), int(E),
            float(scale * double(kLog2e)), causal, vec_ok(q) && vec_ok(k) && vec_ok(v)};
  allow_smem<flash_fwd_f32_kernel>(kFwdSmem, dev);
  dim3 grid(unsigned(B * H), unsigned((L + kT - 1) / kT));
  flash_fwd_f32_kernel<<<grid, kThreads, kFwdSmem, stream>>>(a);
  VT_CUDA_CHECK(cudaGetLastError());
}

void flash_backward_f32(const Tensor& g, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                        const Tensor& lse, double scale, bool causal, const Tensor& dq, const Tensor& dk,
                        const Tensor& dv) {
  int64_t B = q.size(0), H = q.size(1), L = q.size(2), S = k.size(2), E = q.size(3);
  int dev = q.device().index;
  cuda::DeviceGuard guard(dev);
  auto stream = reinterpret_cast<cudaStream_t>(cuda::current_stream(dev));
  Tensor delta = empty_tensor(DimVector{B, H, L}, ScalarType::Float32, q.device());
  int64_t rows = B * H * L;
  if (rows > 0) {
    unsigned blocks = unsigned((rows + kThreads / 32 - 1) / (kThreads / 32));
    flash_delta_f32_kernel<<<blocks, kThreads, 0, stream>>>(g.data<float>(), strides_of(g), out.data<float>(),
                                                            strides_of(out), delta.data<float>(), dq.data<float>(),
                                                            strides_of(dq), rows, int(H), int(L), int(E));
    VT_CUDA_CHECK(cudaGetLastError());
  }
  BwdArgs a{q.data<float>(), k.data<float>(), v.data<float>(), g.data<float>(), lse.data<float>(),
            delta.data<float>(), dq.data<float>(), dk.data<float>(), dv.data<float>(), strides_of(q),
            strides_of(k), strides_of(v), strides_of(g), strides_of(dq), strides_of(dk), strides_of(dv), int(H),
            int(L), int(S), int(E), float(scale),
            float(scale * double(kLog2e)), causal, vec_ok(q) && vec_ok(k) && vec_ok(v), vec_ok(g)};
  allow_smem<flash_bwd_f32_kernel>(kBwdSmem, dev);
  dim3 grid(unsigned(B * H), unsigned((S + kT - 1) / kT));
  flash_bwd_f32_kernel<<<grid, kThreads, kBwdSmem, stream>>>(a);
  VT_CUDA_CHECK(cudaGetLastError());
}

}  // namespace vt::attention
