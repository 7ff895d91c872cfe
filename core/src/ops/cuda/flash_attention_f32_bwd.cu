// CUDA kernels of vt::_flash_attention's float32 backward, head dims up to 64 (padded to 64 with zeros, which
// change no product): the products on the tensor cores in three TF32 passes (Note [Three TF32 passes]), as
// torch's memory-efficient float32 backward runs them; softmax and the gradient algebra in float32.
//
// One block (8 warps) per 64 keys of one (batch, head); query tiles of 32 rows (kQ) stream past them. Per tile:
//   S^T  = K Q^T, dP^T = V dO^T        [64 keys x 32 queries], reduced over the head dim
//   P^T  = exp(S^T scale - lse), dS^T = P^T (dP^T - delta) scale, in the accumulators
//   dV  += P^T dO, dK += dS^T Q        [64 keys x 64], reduced over the tile's queries; registers across tiles
//   dQ  += dS K                        [32 queries x 64], reduced over the block's keys; float32 atomics (every
//                                      key block adds to the same query rows)
// delta = rowsum(dO * O) comes from a kernel of its own first. Causal blocks skip the query tiles before their
// first key, and mask the rest top-left aligned.
//
// Note [Three TF32 passes]: a float32 x splits into big = tf32(x) (11 significant bits, rounded) and small =
// tf32(x - big) (the next 11), and a b ~ big_a big_b + big_a small_b + small_a big_b: the dropped small_a small_b
// is below 2^-22 |a b|, and products of TF32 operands are exact in the float32 accumulators. The small terms go in
// first so they are not rounded away against the big one. The result carries float32-level error (the tests hold
// it to the float32 kernels' bound) at tensor-core rate.
//
// Note [Fragment-friendly layouts]: mma.sync m16n8k8 gives lane (g = lane / 4, t = lane % 4) the operand elements
// at non-reduction index g (+ 8) and reduction index t (+ 4). An operand stored with its reduction index minor
// (s[i * ld + x]) is read by a warp without bank conflicts when ld = 4 (mod 8); stored reduction-major
// (s[x * ld + i]), when ld = 8 (mod 16). All tiles arrive row-major; K, Q and dO are each read both ways by
// different products, so they are kept twice, once per stride (dS^T too); the copies of Q and dO that feed only
// the score products are overwritten by P^T and dS^T once those are done.
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

using f32::fetch4;
using f32::kLog2e;
using f32::kT;
using f32::Strides;
using f32::strides_of;
using f32::vec_ok;

constexpr int kThreads = 256;  // 8 warps
constexpr int kQ = 32;         // query rows per tile
constexpr int kLdMinor = kT + 4, kLdMajor = kT + 8;  // [rows][64] tiles: Note [Fragment-friendly layouts]
constexpr int kLdPMinor = kQ + 4, kLdPMajor = kQ + 8;  // [64 keys][32 queries] tiles
// Shared arrays, in floats: K twice, V, Q and dO twice, dS^T's second copy, lse and delta. P^T and dS^T
// ([64][kLdPMinor]) overwrite the reduction-minor copies of Q and dO ([32][kLdMinor]), so those slots hold either.
constexpr int kSlotQ = kT * kLdPMinor > kQ * kLdMinor ? kT * kLdPMinor : kQ * kLdMinor;
constexpr int kSmemFloats = kT * kLdMinor * 2 + kT * kLdMajor + 2 * kSlotQ + 2 * kQ * kLdMajor + kT * kLdPMajor + 2 * kQ;
constexpr size_t kBwdSmem = kSmemFloats * sizeof(float);
static_assert(2 * kBwdSmem <= 227 * 1024, "two blocks share an SM: one's loads overlap the other's products");

struct Split {
  uint32_t big, small;
};
// Note [Three TF32 passes]
__device__ __forceinline__ Split split_tf32(float x) {
  Split s;
  asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(s.big) : "f"(x));
  const float rest = x - __uint_as_float(s.big);
  asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(s.small) : "f"(rest));
  return s;
}
__device__ __forceinline__ void mma_tf32(float (&c)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                                         uint32_t b0, uint32_t b1) {
  asm("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
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
      mma_tf32(acc[j], a0.small, a1.small, a2.small, a3.small, b0.big, b1.big);
      mma_tf32(acc[j], a0.big, a1.big, a2.big, a3.big, b0.small, b1.small);
      mma_tf32(acc[j], a0.big, a1.big, a2.big, a3.big, b0.big, b1.big);
    }
  }
}

// Rows [row0, row0 + ROWS) x the 64 padded columns of a global [rows, E] matrix into one or two shared copies
// (row-major, strides ld1 and ld2; ld2 = 0 for none).
template <int ROWS>
__device__ void load_rows(float* s1, int ld1, float* s2, int ld2, const float* g, int64_t rs, int64_t row0,
                          int64_t rows, int E, bool vec) {
  for (int i = threadIdx.x; i < ROWS * (kT / 4); i += kThreads) {
    const int r = i / (kT / 4), c = (i % (kT / 4)) * 4;
    const float4 v = fetch4(g, rs, row0, rows, E, vec, r, c);
    *reinterpret_cast<float4*>(s1 + r * ld1 + c) = v;
    if (ld2) *reinterpret_cast<float4*>(s2 + r * ld2 + c) = v;
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

__global__ void __launch_bounds__(kThreads, 2) flash_bwd_f32_kernel(BwdArgs a) {
  extern __shared__ float4 smem4[];
  float* Kmin = reinterpret_cast<float*>(smem4);  // K [k][e], for S^T
  float* Vmin = Kmin + kT * kLdMinor;             // V [k][e], for dP^T
  float* Kmaj = Vmin + kT * kLdMinor;             // K [k][e], for dQ
  float* Qmin = Kmaj + kT * kLdMajor;             // Q [q][e] for S^T, then P^T [k][q] for dV
  float* Omin = Qmin + kSlotQ;                    // dO [q][e] for dP^T, then dS^T [k][q] for dK
  float* Qmaj = Omin + kSlotQ;                    // Q [q][e], for dK
  float* Omaj = Qmaj + kQ * kLdMajor;             // dO [q][e], for dV
  float* Dmaj = Omaj + kQ * kLdMajor;             // dS^T [k][q], for dQ
  float* lse_s = Dmaj + kT * kLdPMajor;           // [q], in base 2
  float* delta_s = lse_s + kQ;                    // [q]
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  // Each warp's share of the three result shapes: scores 16 keys x 16 queries, dK/dV 16 keys x 32 head dims,
  // dQ 16 queries x 16 head dims.
  const int sk = 16 * (warp % 4), sq = 16 * (warp / 4);
  const int gk = 16 * (warp % 4), ge = 32 * (warp / 4);
  const int qq = 16 * (warp % 2), qe = 16 * (warp / 2);
  const int bh = blockIdx.x, b = bh / a.H, h = bh % a.H;
  const int64_t k0 = int64_t(blockIdx.y) * kT;
  const float* qg = a.q + b * a.qs.batch + h * a.qs.head;
  const float* og = a.dout + b * a.gs.batch + h * a.gs.head;
  load_rows<kT>(Kmin, kLdMinor, Kmaj, kLdMajor, a.k + b * a.ks.batch + h * a.ks.head, a.ks.row, k0, a.S, a.E, a.vec);
  load_rows<kT>(Vmin, kLdMinor, nullptr, 0, a.v + b * a.vs.batch + h * a.vs.head, a.vs.row, k0, a.S, a.E, a.vec);

  float dv[4][4] = {}, dk[4][4] = {};
  float* dqg = a.dq + b * a.dqs.batch + h * a.dqs.head;
  for (int64_t q0 = a.causal ? k0 : 0; q0 < a.L; q0 += kQ) {
    __syncthreads();  // the previous tile's readers are done
    load_rows<kQ>(Qmin, kLdMinor, Qmaj, kLdMajor, qg, a.qs.row, q0, a.L, a.E, a.vec);
    load_rows<kQ>(Omin, kLdMinor, Omaj, kLdMajor, og, a.gs.row, q0, a.L, a.E, a.dout_vec);
    for (int r = threadIdx.x; r < kQ; r += kThreads) {
      const bool in = q0 + r < a.L;
      lse_s[r] = in ? a.lse[int64_t(bh) * a.L + q0 + r] * kLog2e : 0.f;
      delta_s[r] = in ? a.delta[int64_t(bh) * a.L + q0 + r] : 0.f;
    }
    __syncthreads();
    float p[2][4] = {}, ds[2][4] = {};  // keys sk + g (+ 8), queries sq + 8 j + 2 t (+ 1)
    warp_product<kT, 2, false, false>(p, Kmin, kLdMinor, sk, Qmin, kLdMinor, sq);
    warp_product<kT, 2, false, false>(ds, Vmin, kLdMinor, sk, Omin, kLdMinor, sq);
#pragma unroll
    for (int j = 0; j < 2; ++j)
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        const int kr = sk + g + 8 * (r / 2), qc = sq + 8 * j + 2 * t + r % 2;
        const int64_t kj = k0 + kr, qi = q0 + qc;
        const bool live = kj < a.S && qi < a.L && (!a.causal || kj <= qi);
        p[j][r] = live ? exp2f(p[j][r] * a.scale_log2 - lse_s[qc]) : 0.f;
        ds[j][r] = p[j][r] * (ds[j][r] - delta_s[qc]) * a.scale;
      }
    __syncthreads();  // every warp is done with the score products' Q and dO
#pragma unroll
    for (int j = 0; j < 2; ++j)
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const int kr = sk + g + 8 * half, qc = sq + 8 * j + 2 * t;
        const float2 pv = make_float2(p[j][2 * half], p[j][2 * half + 1]);
        const float2 dv2 = make_float2(ds[j][2 * half], ds[j][2 * half + 1]);
        *reinterpret_cast<float2*>(Qmin + kr * kLdPMinor + qc) = pv;
        *reinterpret_cast<float2*>(Omin + kr * kLdPMinor + qc) = dv2;
        *reinterpret_cast<float2*>(Dmaj + kr * kLdPMajor + qc) = dv2;
      }
    __syncthreads();
    warp_product<kQ, 4, false, true>(dv, Qmin, kLdPMinor, gk, Omaj, kLdMajor, ge);  // P^T [k][q] . dO [q][e]
    warp_product<kQ, 4, false, true>(dk, Omin, kLdPMinor, gk, Qmaj, kLdMajor, ge);  // dS^T [k][q] . Q [q][e]
    float dq[2][4] = {};
    warp_product<kT, 2, true, true>(dq, Dmaj, kLdPMajor, qq, Kmaj, kLdMajor, qe);   // dS [q][k] . K [k][e]
#pragma unroll
    for (int j = 0; j < 2; ++j)
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        const int64_t qi = q0 + qq + g + 8 * (r / 2);
        const int e = qe + 8 * j + 2 * t + r % 2;
        if (qi < a.L && e < a.E) atomicAdd(dqg + qi * a.dqs.row + e, dq[j][r]);
      }
  }
  float* dkg = a.dk + b * a.dks.batch + h * a.dks.head;
  float* dvg = a.dv + b * a.dvs.batch + h * a.dvs.head;
#pragma unroll
  for (int j = 0; j < 4; ++j)
#pragma unroll
    for (int r = 0; r < 4; ++r) {
      const int64_t kj = k0 + gk + g + 8 * (r / 2);
      const int e = ge + 8 * j + 2 * t + r % 2;
      if (kj < a.S && e < a.E) dkg[kj * a.dks.row + e] = dk[j][r], dvg[kj * a.dvs.row + e] = dv[j][r];
    }
}

}  // namespace

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
  f32::allow_smem<flash_bwd_f32_kernel>(kBwdSmem, dev);
  dim3 grid(unsigned(B * H), unsigned((S + kT - 1) / kT));
  flash_bwd_f32_kernel<<<grid, kThreads, kBwdSmem, stream>>>(a);
  VT_CUDA_CHECK(cudaGetLastError());
}

}  // namespace vt::attention
