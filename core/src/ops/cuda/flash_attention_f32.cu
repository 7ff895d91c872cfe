// CUDA kernel of vt::_flash_attention's float32 forward, head dims up to 64 (padded to 64 with zeros, which
// change no product): the same tiled algorithm as the 16-bit kernels (flash_attention.cu), on the FP32 cores (torch's
// memory-efficient float32 kernels run three TF32 passes on the tensor cores, as the backward here does, and take
// about this kernel's time). Nothing is rounded below float32, so results match the composed path's to float32
// accuracy; the [L, S] scores never reach memory. The backward is flash_attention_f32_bwd.cu.
//
// Every product is a tile product between two shared arrays stored "reduction-major": acc[i][j] += sum over x of
// A[x][4 ty + i] * B[x][4 tx + j] (Note [Reduction-major tiles]). A block is 256 threads as a 16 x 16 grid
// (tx = thread % 16, ty = thread / 16); each thread owns a 4 x 4 patch of a 64 x 64 result.
//
// One block per 64 query rows of one (batch, head): S = Q K^T from Q^T and K^T, the online softmax on the patch
// (row maxima and sums over the 16 threads of a row by shuffles), P^T into shared memory, O += P V.
//
// Note [Reduction-major tiles]: with both operands stored so that the reduction index picks the row, a thread
// reads its four A values and four B values of one step as two 16-byte loads (the sixteen threads of a row read
// 256 consecutive bytes; the two rows of a warp read one address each), so each step is 2 loads for 16 FMAs.
// Operands arrive row-major from global memory; those needed reduction-major are transposed on the way into
// shared memory, and P is written out transposed for the second product.
//
// Note [Sequence-major output]: the forward's output [B, H, L, E] is a permuted view of [B, L, H, E] storage, the
// layout torch's memory-efficient kernels return. Model code's next step, out.transpose(1, 2).reshape(B, L, H E),
// is then a view instead of a copy, and the gradient that comes back through it (a [B, H, L, E] view of
// [B, L, H, E] storage) is read in place by the backward, dO and O through their strides, instead of being
// copied dense first: two fewer copies of the attention output per layer and step.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "../attention.h"
#include "flash_f32_common.cuh"
#include "vt/core/ops.h"
#include "vt/cuda/check.h"
#include "vt/cuda/guard.h"
#include "vt/cuda/stream.h"

namespace vt::attention {
namespace {

using f32::kLn2;
using f32::kLog2e;
using f32::kT;
using f32::Strides;
using f32::strides_of;
using f32::vec_ok;

constexpr int kLd = kT + 4;    // shared row stride in floats: rows stay 16-byte aligned
constexpr int kThreads = 256;  // a 16 x 16 grid of 4 x 4 patches
constexpr int kTileFloats = kT * kLd;
constexpr size_t kFwdSmem = 4 * kTileFloats * sizeof(float);

// Rows [row0, row0 + ROWS) x columns [0, 64) of a global [rows, E] matrix (row stride rs, unit columns) into
// shared memory with leading dim ld, zeros past `rows` and E: row-major (s[r * ld + c]) or transposed
// (s[c * ld + r]).
template <bool kTransposed, int ROWS>
__device__ void load_tile(float* s, int ld, const float* g, int64_t rs, int64_t row0, int64_t rows, int E,
                          bool vec) {
  for (int i = threadIdx.x; i < ROWS * (kT / 4); i += kThreads) {
    int r = i / (kT / 4), c = (i % (kT / 4)) * 4;
    float4 v = f32::fetch4(g, rs, row0, rows, E, vec, r, c);
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
  f32::allow_smem<flash_fwd_f32_kernel>(kFwdSmem, dev);
  dim3 grid(unsigned(B * H), unsigned((L + kT - 1) / kT));
  flash_fwd_f32_kernel<<<grid, kThreads, kFwdSmem, stream>>>(a);
  VT_CUDA_CHECK(cudaGetLastError());
}

}  // namespace vt::attention
