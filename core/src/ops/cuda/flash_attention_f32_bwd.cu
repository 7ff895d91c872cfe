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
// Shared layouts (Note [Fragment-friendly layouts]): all tiles arrive row-major; K, Q and dO are each read both
// ways by different products, so they are kept twice, once per stride (dS^T too); the copies of Q and dO that feed
// only the score products are overwritten by P^T and dS^T once those are done.
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
using f32::warp_product;

constexpr int kThreads = 256;  // 8 warps
constexpr int kQ = 32;         // query rows per tile
constexpr int kLdMinor = kT + 4, kLdMajor = kT + 8;  // [rows][64] tiles: Note [Fragment-friendly layouts]
constexpr int kLdPMinor = kQ + 4, kLdPMajor = kQ + 8;  // [64 keys][32 queries] tiles
// Shared arrays, in floats: K twice, V, Q and dO twice, dS^T's second copy, lse and delta. P^T and dS^T
// ([64][kLdPMinor]) overwrite the reduction-minor copies of Q and dO ([32][kLdMinor]), so those slots hold either.
constexpr int kSlotQ = kT * kLdPMinor > kQ * kLdMinor ? kT * kLdPMinor : kQ * kLdMinor;
constexpr int kSmemFloats =
    kT * kLdMinor * 2 + kT * kLdMajor + 2 * kSlotQ + 2 * kQ * kLdMajor + kT * kLdPMajor + 2 * kQ;
constexpr size_t kBwdSmem = kSmemFloats * sizeof(float);
static_assert(2 * kBwdSmem <= 227 * 1024, "two blocks share an SM: one's loads overlap the other's products");

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

// delta[row] = sum over the head dim of dO * O: sixteen lanes per (batch, head, query) row, four columns each
// (E <= 64), both read through their strides (unit along the head dim); `vec`: every row starts 16-byte aligned and
// E is a multiple of 4, so each lane's four columns are one load. The lanes also zero the row's dQ, which the
// backward kernel then adds into: one launch fewer than a separate fill (dQ is often a strided piece of a packed
// q/k/v gradient).
__global__ void flash_delta_f32_kernel(const float* dout, Strides gs, const float* out, Strides os, float* delta,
                                       float* dq, Strides dqs, int64_t rows, int H, int L, int E, bool vec) {
  const int64_t row = (int64_t(blockIdx.x) * kThreads + threadIdx.x) / 16;
  const int c = threadIdx.x % 16 * 4;
  float acc = 0.f;
  if (row < rows && c < E) {  // no early return: the shuffles below want every lane of the warp
    const int64_t l = row % L, h = row / L % H, b = row / (int64_t(L) * H);
    const float* g = dout + b * gs.batch + h * gs.head + l * gs.row + c;
    const float* o = out + b * os.batch + h * os.head + l * os.row + c;
    float* z = dq + b * dqs.batch + h * dqs.head + l * dqs.row + c;
    if (vec) {
      const float4 gv = *reinterpret_cast<const float4*>(g), ov = *reinterpret_cast<const float4*>(o);
      acc = gv.x * ov.x + gv.y * ov.y + gv.z * ov.z + gv.w * ov.w;
      *reinterpret_cast<float4*>(z) = make_float4(0.f, 0.f, 0.f, 0.f);
    } else {
      for (int i = 0; i < 4 && c + i < E; ++i) acc += g[i] * o[i], z[i] = 0.f;
    }
  }
#pragma unroll
  for (int off = 8; off > 0; off /= 2) acc += __shfl_xor_sync(0xffffffffu, acc, off);
  if (row < rows && c == 0) delta[row] = acc;
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
  bool dq_pairs;  // dq's rows and columns pair up on 8-byte boundaries (E even)
};

// dQ[q][e] += the warp's dS K block: rows q (+ 8), columns e + 8 j (+ 1) per lane. Adjacent column pairs go as
// one 8-byte atomic where the layout allows (sm_90): a row's four lanes then cover one 32-byte sector.
__device__ __forceinline__ void add_dq(const BwdArgs& a, float* dqg, const float (&dq)[2][4], int64_t q, int e) {
#pragma unroll
  for (int j = 0; j < 2; ++j)
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int64_t qi = q + 8 * half;
      const int ej = e + 8 * j;
      if (qi >= a.L || ej >= a.E) continue;
      float* p = dqg + qi * a.dqs.row + ej;
#if __CUDA_ARCH__ >= 900
      if (a.dq_pairs) {
        atomicAdd(reinterpret_cast<float2*>(p), make_float2(dq[j][2 * half], dq[j][2 * half + 1]));
        continue;
      }
#endif
      atomicAdd(p, dq[j][2 * half]);
      if (ej + 1 < a.E) atomicAdd(p + 1, dq[j][2 * half + 1]);
    }
}

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
    add_dq(a, dqg, dq, q0 + qq + g, qe + 2 * t);
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
    const unsigned blocks = unsigned((rows + kThreads / 16 - 1) / (kThreads / 16));
    const bool vec = vec_ok(g) && vec_ok(out) && vec_ok(dq);
    flash_delta_f32_kernel<<<blocks, kThreads, 0, stream>>>(g.data<float>(), strides_of(g), out.data<float>(),
                                                            strides_of(out), delta.data<float>(), dq.data<float>(),
                                                            strides_of(dq), rows, int(H), int(L), int(E), vec);
    VT_CUDA_CHECK(cudaGetLastError());
  }
  BwdArgs a{q.data<float>(), k.data<float>(), v.data<float>(), g.data<float>(), lse.data<float>(),
            delta.data<float>(), dq.data<float>(), dk.data<float>(), dv.data<float>(), strides_of(q),
            strides_of(k), strides_of(v), strides_of(g), strides_of(dq), strides_of(dk), strides_of(dv), int(H),
            int(L), int(S), int(E), float(scale),
            float(scale * double(kLog2e)), causal, vec_ok(q) && vec_ok(k) && vec_ok(v), vec_ok(g),
            E % 2 == 0 && dq.stride(0) % 2 == 0 && dq.stride(1) % 2 == 0 && dq.stride(2) % 2 == 0 &&
                reinterpret_cast<uintptr_t>(dq.data_ptr()) % 8 == 0};
  f32::allow_smem<flash_bwd_f32_kernel>(kBwdSmem, dev);
  dim3 grid(unsigned(B * H), unsigned((S + kT - 1) / kT));
  flash_bwd_f32_kernel<<<grid, kThreads, kBwdSmem, stream>>>(a);
  VT_CUDA_CHECK(cudaGetLastError());
}

}  // namespace vt::attention
