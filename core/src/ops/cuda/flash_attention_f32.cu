// CUDA kernel of vt::_flash_attention's float32 forward, head dims up to 64 (padded to 64 with zeros, which
// change no product): the products on the tensor cores in three TF32 passes (Note [Three TF32 passes]), as
// torch's memory-efficient float32 forward runs them; the online softmax in float32. The [L, S] scores never
// reach memory. The backward is flash_attention_f32_bwd.cu.
//
// One block (4 warps) per 64 query rows of one (batch, head); each warp owns 16 of the rows, so a row's softmax
// stays inside its warp (four lanes hold a row: maxima by two shuffles, sums per lane until the end). Per 64-key
// tile: S = Q K^T in the accumulators, the online softmax on them, O += P V with P taken from the accumulators as
// they stand.
//
// Note [Forward operands]: Q and K are read reduction-minor (Note [Fragment-friendly layouts], ld = 68). The score
// accumulators give lane (g, t) keys 2 t and 2 t + 1 of each 8-key block, where an A fragment wants reduction
// indices t and t + 4; a sum does not care about order, so within each block the product relabels key 2 t as t and
// 2 t + 1 as t + 4 and reads V's rows in the same order (rows 2 t and 2 t + 1: still conflict-free at ld = 68).
// P never goes through shared memory.
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

constexpr int kWarps = 4;                 // each owns 16 query rows of the block's 64
constexpr int kThreads = 32 * kWarps;
constexpr int kLd = kT + 4;               // Note [Forward operands]
constexpr size_t kFwdSmem = 3 * kT * kLd * sizeof(float);

struct FwdArgs {
  const float *q, *k, *v;
  float* out;  // [B, H, L, E], unit head-dim stride (Note [Sequence-major output])
  float* lse;  // [B, H, L]
  Strides qs, ks, vs, os;
  int H, L, S, E;
  float scale_log2;  // scale * log2(e): the kernel works in base 2
  bool causal, vec;
};

// Rows [row0, row0 + 64) x the 64 padded columns of a global [rows, E] matrix into shared memory (row-major, ld).
__device__ void load_tile(float* s, const float* g, int64_t rs, int64_t row0, int64_t rows, int E, bool vec) {
  for (int i = threadIdx.x; i < kT * (kT / 4); i += kThreads) {
    const int r = i / (kT / 4), c = (i % (kT / 4)) * 4;
    *reinterpret_cast<float4*>(s + r * kLd + c) = f32::fetch4(g, rs, row0, rows, E, vec, r, c);
  }
}

__global__ void __launch_bounds__(kThreads) flash_fwd_f32_kernel(FwdArgs a) {
  extern __shared__ float4 smem4[];
  float* Qs = reinterpret_cast<float*>(smem4);  // [q][e]
  float* Ks = Qs + kT * kLd;                    // [k][e]
  float* Vs = Ks + kT * kLd;                    // [k][e]
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const int bh = blockIdx.x, b = bh / a.H, h = bh % a.H;
  const int64_t q0 = int64_t(blockIdx.y) * kT;
  const int64_t row[2] = {q0 + 16 * warp + g, q0 + 16 * warp + g + 8};  // this lane's two query rows
  load_tile(Qs, a.q + b * a.qs.batch + h * a.qs.head, a.qs.row, q0, a.L, a.E, a.vec);
  const float* kg = a.k + b * a.ks.batch + h * a.ks.head;
  const float* vg = a.v + b * a.vs.batch + h * a.vs.head;

  float o[8][4] = {};             // rows row[r / 2], head dims 8 n + 2 t + r % 2
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};  // l: this lane's share of the row sums
  // Causal rows end at their own index (top-left aligned): this block's last row is q0 + 63.
  const int64_t kend = a.causal ? min(int64_t(a.S), q0 + kT) : int64_t(a.S);
  for (int64_t k0 = 0; k0 < kend; k0 += kT) {
    __syncthreads();  // every warp is done with the previous K and V
    load_tile(Ks, kg, a.ks.row, k0, a.S, a.E, a.vec);
    load_tile(Vs, vg, a.vs.row, k0, a.S, a.E, a.vec);
    __syncthreads();
    float s[8][4] = {};  // rows row[r / 2], keys k0 + 8 j + 2 t + r % 2
    f32::warp_product<kT, 8, false, false>(s, Qs, kLd, 16 * warp, Ks, kLd, 0);
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      float mx = -INFINITY;
#pragma unroll
      for (int j = 0; j < 8; ++j)
#pragma unroll
        for (int c = 0; c < 2; ++c) {
          const int64_t key = k0 + 8 * j + 2 * t + c;
          float& x = s[j][2 * half + c];
          x = key < a.S && (!a.causal || key <= row[half]) ? x * a.scale_log2 : -INFINITY;
          mx = fmaxf(mx, x);
        }
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));  // the row's four lanes
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const float mnew = fmaxf(m[half], mx);
      // A row's first key is in the first tile, so mnew is finite from there on; the guard keeps a fully masked
      // row's exponentials at zero rather than NaN all the same.
      const float base = mnew == -INFINITY ? 0.f : mnew;
      const float alpha = exp2f(m[half] - base);
      float sum = 0.f;
#pragma unroll
      for (int j = 0; j < 8; ++j)
#pragma unroll
        for (int c = 0; c < 2; ++c) {
          float& x = s[j][2 * half + c];
          x = exp2f(x - base);
          sum += x;
        }
      l[half] = l[half] * alpha + sum;
      m[half] = mnew;
#pragma unroll
      for (int n = 0; n < 8; ++n) o[n][2 * half] *= alpha, o[n][2 * half + 1] *= alpha;
    }
    // O += P V, P straight from the score accumulators (Note [Forward operands]).
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const f32::Split a0 = f32::split_tf32(s[j][0]), a1 = f32::split_tf32(s[j][2]);
      const f32::Split a2 = f32::split_tf32(s[j][1]), a3 = f32::split_tf32(s[j][3]);
      const float* v0 = Vs + (8 * j + 2 * t) * kLd + g;
#pragma unroll
      for (int n = 0; n < 8; ++n) {
        const f32::Split b0 = f32::split_tf32(v0[8 * n]), b1 = f32::split_tf32(v0[kLd + 8 * n]);
        f32::mma_3xtf32(o[n], a0, a1, a2, a3, b0, b1);
      }
    }
  }
  float* og = a.out + b * a.os.batch + h * a.os.head;
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    float lsum = l[half];
    lsum += __shfl_xor_sync(0xffffffffu, lsum, 1);
    lsum += __shfl_xor_sync(0xffffffffu, lsum, 2);
    if (row[half] >= a.L) continue;
    const float inv = 1.f / lsum;
#pragma unroll
    for (int n = 0; n < 8; ++n)
#pragma unroll
      for (int c = 0; c < 2; ++c) {
        const int e = 8 * n + 2 * t + c;
        if (e < a.E) og[row[half] * a.os.row + e] = o[n][2 * half + c] * inv;
      }
    if (t == 0) a.lse[int64_t(bh) * a.L + row[half]] = (m[half] + log2f(lsum)) * kLn2;
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
