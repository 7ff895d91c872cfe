// CUDA kernels of vt::_flash_attention and its backward for float32, head dims up to 64 (padded to 64 with
// zeros, which change no product): the same tiled algorithm as the 16-bit kernels (flash_attention.cu), on the
// FP32 cores, as torch's memory-efficient float32 kernels are. Nothing is rounded below float32, so results
// match the composed path's to float32 accuracy; the [L, S] scores never reach memory.
//
// Every product is a 64 x 64 x 64 tile product between two shared arrays stored "reduction-major": acc[i][j] +=
// sum over x of A[x][4 ty + i] * B[x][4 tx + j] (Note [Reduction-major tiles]). A block is 256 threads as a
// 16 x 16 grid (tx = thread % 16, ty = thread / 16); each thread owns a 4 x 4 patch of every 64 x 64 result.
//
// Forward (one block per 64 query rows of one (batch, head)): S = Q K^T from Q^T and K^T, the online softmax on
// the patch (row maxima and sums over the 16 threads of a row by shuffles), P^T into shared memory, O += P V.
// Backward (one block per 64 keys): per query tile, S^T and dP^T = V dO^T in registers, P^T = exp(S^T scale -
// lse), dS^T = P^T (dP^T - delta); then dV += P^T dO, dK += dS^T Q and dQ += dS K (float32 atomics: several key
// blocks add to one query row). Causal blocks skip the tiles above the diagonal.
//
// Note [Reduction-major tiles]: with both operands stored so that the reduction index picks the row, a thread
// reads its four A values and four B values of one step as two 16-byte loads (the sixteen threads of a row read
// 256 consecutive bytes; the two rows of a warp read one address each), so each step is 2 loads for 16 FMAs.
// Operands arrive row-major from global memory; those needed reduction-major are transposed on the way into
// shared memory, and results are written out transposed where the next product needs them so.
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

// Rows [row0, row0 + 64) x columns [0, 64) of a global [rows, E] matrix (row stride rs, unit columns) into
// shared memory, zeros past `rows` and E: row-major (s[r * kLd + c]) or transposed (s[c * kLd + r]). vec: E, rs
// and the base are multiples of 4 floats / 16 bytes, so each 4-column chunk is one load.
template <bool kTransposed>
__device__ void load_tile(float* s, const float* g, int64_t rs, int64_t row0, int64_t rows, int E, bool vec) {
  for (int i = threadIdx.x; i < kT * (kT / 4); i += kThreads) {
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
      s[c * kLd + r] = v.x;
      s[(c + 1) * kLd + r] = v.y;
      s[(c + 2) * kLd + r] = v.z;
      s[(c + 3) * kLd + r] = v.w;
    } else {
      *reinterpret_cast<float4*>(s + r * kLd + c) = v;
    }
  }
}

// acc[i][j] += sum over x < 64 of A[x][4 ty + i] * B[x][4 tx + j]: Note [Reduction-major tiles].
__device__ __forceinline__ void tile_product(float (&acc)[4][4], const float* A, const float* B) {
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
#pragma unroll 8
  for (int x = 0; x < kT; ++x) {
    float4 a4 = *reinterpret_cast<const float4*>(A + x * kLd + 4 * ty);
    float4 b4 = *reinterpret_cast<const float4*>(B + x * kLd + 4 * tx);
    const float a[4] = {a4.x, a4.y, a4.z, a4.w}, b[4] = {b4.x, b4.y, b4.z, b4.w};
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
  }
}

// The patch written transposed: s[(4 tx + j) * kLd + 4 ty + i] = acc[i][j], one 16-byte store per j.
__device__ __forceinline__ void store_transposed(float* s, const float (&acc)[4][4]) {
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
#pragma unroll
  for (int j = 0; j < 4; ++j)
    *reinterpret_cast<float4*>(s + (4 * tx + j) * kLd + 4 * ty) =
        make_float4(acc[0][j], acc[1][j], acc[2][j], acc[3][j]);
}
// The patch as it stands: s[(4 ty + i) * kLd + 4 tx + j] = acc[i][j].
__device__ __forceinline__ void store_direct(float* s, const float (&acc)[4][4]) {
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
#pragma unroll
  for (int i = 0; i < 4; ++i)
    *reinterpret_cast<float4*>(s + (4 * ty + i) * kLd + 4 * tx) =
        make_float4(acc[i][0], acc[i][1], acc[i][2], acc[i][3]);
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
  float* out;  // [B, H, L, E] dense
  float* lse;  // [B, H, L]
  Strides qs, ks, vs;
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
  load_tile<true>(Qt, qg, a.qs.row, q0, a.L, a.E, a.vec);

  float o[4][4] = {}, m[4], l[4];
#pragma unroll
  for (int i = 0; i < 4; ++i) m[i] = -INFINITY, l[i] = 0.f;
  // Causal rows end at their own index (top-left aligned): this block's last row is q0 + 63.
  const int64_t kend = a.causal ? min(int64_t(a.S), q0 + kT) : int64_t(a.S);
  for (int64_t k0 = 0; k0 < kend; k0 += kT) {
    __syncthreads();  // the previous tile's readers are done with Kt, Vs and Pt
    load_tile<true>(Kt, kg, a.ks.row, k0, a.S, a.E, a.vec);
    load_tile<false>(Vs, vg, a.vs.row, k0, a.S, a.E, a.vec);
    __syncthreads();
    float s[4][4] = {};
    tile_product(s, Qt, Kt);
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
    store_transposed(Pt, s);
    __syncthreads();
    tile_product(o, Pt, Vs);
  }
  float* og = a.out + int64_t(bh) * a.L * a.E;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int64_t qi = q0 + 4 * ty + i;
    if (qi >= a.L) continue;
    const float inv = 1.f / l[i];
#pragma unroll
    for (int j = 0; j < 4; ++j)
      if (4 * tx + j < a.E) og[qi * a.E + 4 * tx + j] = o[i][j] * inv;
    if (tx == 0) a.lse[int64_t(bh) * a.L + qi] = (m[i] + log2f(l[i])) * kLn2;
  }
}

// delta[row] = sum over the head dim of dO * O; one warp per row.
__global__ void flash_delta_f32_kernel(const float* dout, const float* out, float* delta, int64_t rows, int E) {
  int64_t row = int64_t(blockIdx.x) * (kThreads / 32) + threadIdx.x / 32;
  if (row >= rows) return;
  float acc = 0.f;
  for (int c = threadIdx.x % 32; c < E; c += 32) acc += dout[row * E + c] * out[row * E + c];
#pragma unroll
  for (int off = 16; off > 0; off /= 2) acc += __shfl_xor_sync(0xffffffffu, acc, off);
  if (threadIdx.x % 32 == 0) delta[row] = acc;
}

struct BwdArgs {
  const float *q, *k, *v, *dout;  // dout: [B, H, L, E] dense
  const float *lse, *delta;       // [B, H, L]
  float *dq, *dk, *dv;            // dq [B, H, L, E] zeroed (atomics); dk, dv [B, H, S, E] dense
  Strides qs, ks, vs;
  int H, L, S, E;
  float scale, scale_log2;
  bool causal, vec, dout_vec;
};

// Shared arrays of the backward, in tiles of kTileFloats: the block's keys (K^T, K, V^T) stay; per query tile
// Q^T and dO^T feed the score products and are then overwritten by P and dS (scaled), which feed dV and dK
// beside Q and dO; dS^T feeds dQ.
constexpr int kBwdTiles = 8;
constexpr size_t kBwdSmem = (kBwdTiles * kTileFloats + 2 * kT) * sizeof(float);
constexpr size_t kFwdSmem = 4 * kTileFloats * sizeof(float);

__global__ void __launch_bounds__(kThreads) flash_bwd_f32_kernel(BwdArgs a) {
  extern __shared__ float4 smem4[];
  float* Kt = reinterpret_cast<float*>(smem4);  // [E][k]
  float* Ks = Kt + kTileFloats;                 // [k][E]
  float* Vt = Ks + kTileFloats;                 // [E][k]
  float* Qt = Vt + kTileFloats;                 // [E][q], then P [q][k]
  float* Ot = Qt + kTileFloats;                 // dO^T [E][q], then dS * scale [q][k]
  float* Qs = Ot + kTileFloats;                 // [q][E]
  float* Os = Qs + kTileFloats;                 // dO [q][E]
  float* Dt = Os + kTileFloats;                 // dS^T * scale [k][q]
  float* lse_s = Dt + kTileFloats;              // [q], in base 2
  float* delta_s = lse_s + kT;                  // [q]
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const int bh = blockIdx.x, b = bh / a.H, h = bh % a.H;
  const int64_t k0 = int64_t(blockIdx.y) * kT;
  const float* qg = a.q + b * a.qs.batch + h * a.qs.head;
  const float* kg = a.k + b * a.ks.batch + h * a.ks.head;
  const float* vg = a.v + b * a.vs.batch + h * a.vs.head;
  const float* og = a.dout + int64_t(bh) * a.L * a.E;
  load_tile<true>(Kt, kg, a.ks.row, k0, a.S, a.E, a.vec);
  load_tile<false>(Ks, kg, a.ks.row, k0, a.S, a.E, a.vec);
  load_tile<true>(Vt, vg, a.vs.row, k0, a.S, a.E, a.vec);

  float dv[4][4] = {}, dk[4][4] = {};
  // Causal: query rows before k0 see none of these keys.
  for (int64_t q0 = a.causal ? k0 : 0; q0 < a.L; q0 += kT) {
    __syncthreads();  // the previous tile's readers are done
    load_tile<true>(Qt, qg, a.qs.row, q0, a.L, a.E, a.vec);
    load_tile<false>(Qs, qg, a.qs.row, q0, a.L, a.E, a.vec);
    load_tile<true>(Ot, og, a.E, q0, a.L, a.E, a.dout_vec);
    load_tile<false>(Os, og, a.E, q0, a.L, a.E, a.dout_vec);
    for (int r = threadIdx.x; r < kT; r += kThreads) {
      const bool in = q0 + r < a.L;
      lse_s[r] = in ? a.lse[int64_t(bh) * a.L + q0 + r] * kLog2e : 0.f;
      delta_s[r] = in ? a.delta[int64_t(bh) * a.L + q0 + r] : 0.f;
    }
    __syncthreads();
    float p[4][4] = {}, ds[4][4] = {};  // transposed patches: rows are keys 4 ty + i, columns queries 4 tx + j
    tile_product(p, Kt, Qt);
    tile_product(ds, Vt, Ot);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int64_t kj = k0 + 4 * ty + i;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int64_t qi = q0 + 4 * tx + j;
        const bool live = kj < a.S && qi < a.L && (!a.causal || kj <= qi);
        p[i][j] = live ? exp2f(p[i][j] * a.scale_log2 - lse_s[4 * tx + j]) : 0.f;
        ds[i][j] = p[i][j] * (ds[i][j] - delta_s[4 * tx + j]) * a.scale;
      }
    }
    __syncthreads();  // everyone is done reading Q^T and dO^T
    store_transposed(Qt, p);   // P [q][k]
    store_transposed(Ot, ds);  // dS [q][k]
    store_direct(Dt, ds);      // dS^T [k][q]
    __syncthreads();
    tile_product(dv, Qt, Os);  // dV[k][e] += sum over q of P[q][k] dO[q][e]
    tile_product(dk, Ot, Qs);  // dK[k][e] += sum over q of dS[q][k] Q[q][e]
    float dq[4][4] = {};
    tile_product(dq, Dt, Ks);  // dQ[q][e] = sum over k of dS^T[k][q] K[k][e]
    float* dqg = a.dq + int64_t(bh) * a.L * a.E;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int64_t qi = q0 + 4 * ty + i;
      if (qi >= a.L) continue;
#pragma unroll
      for (int j = 0; j < 4; ++j)
        if (4 * tx + j < a.E) atomicAdd(dqg + qi * a.E + 4 * tx + j, dq[i][j]);
    }
  }
  float* dkg = a.dk + int64_t(bh) * a.S * a.E;
  float* dvg = a.dv + int64_t(bh) * a.S * a.E;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int64_t kj = k0 + 4 * ty + i;
    if (kj >= a.S) continue;
#pragma unroll
    for (int j = 0; j < 4; ++j)
      if (4 * tx + j < a.E) dkg[kj * a.E + 4 * tx + j] = dk[i][j], dvg[kj * a.E + 4 * tx + j] = dv[i][j];
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
            strides_of(q), strides_of(k), strides_of(v), int(H), int(L), int(S), int(E),
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
    flash_delta_f32_kernel<<<blocks, kThreads, 0, stream>>>(g.data<float>(), out.data<float>(), delta.data<float>(),
                                                            rows, int(E));
    VT_CUDA_CHECK(cudaGetLastError());
  }
  BwdArgs a{q.data<float>(), k.data<float>(), v.data<float>(), g.data<float>(), lse.data<float>(),
            delta.data<float>(), dq.data<float>(), dk.data<float>(), dv.data<float>(), strides_of(q),
            strides_of(k), strides_of(v), int(H), int(L), int(S), int(E), float(scale),
            float(scale * double(kLog2e)), causal, vec_ok(q) && vec_ok(k) && vec_ok(v),
            E % 4 == 0 && reinterpret_cast<uintptr_t>(g.data_ptr()) % 16 == 0};
  allow_smem<flash_bwd_f32_kernel>(kBwdSmem, dev);
  dim3 grid(unsigned(B * H), unsigned((S + kT - 1) / kT));
  flash_bwd_f32_kernel<<<grid, kThreads, kBwdSmem, stream>>>(a);
  VT_CUDA_CHECK(cudaGetLastError());
}

}  // namespace vt::attention
