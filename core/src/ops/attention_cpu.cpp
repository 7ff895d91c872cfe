// The CPU's tiled attention forward: vt::_flash_attention on the CPU for float32, float16 and bfloat16 (model in
// attention.h). Each task is 64 query rows of one (batch, head); it walks the keys in blocks of 128 with the
// online softmax of the CUDA kernels: S = Q K^T for the block (cpu_gemm, which reads q and k through their
// strides and converts 16-bit operands while packing), the row maxima raise each row's running max m and rescale
// its denominator l and output accumulator O by exp(m_old - m_new), then O += exp(S * scale - m) V. Only a
// [64 x 128] score block per thread is ever in memory (the composite writes all [L, S] scores), which is what
// long-context inference and training need. float64 keeps the composite (exact reference). The backward
// (tiled_backward_cpu, below) rebuilds the probabilities block by block from the forward's log-sum-exp.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "attention.h"
#include "vt/core/cpu_gemm.h"
#include "vt/core/cpu_vec_math.h"
#include "vt/core/half.h"
#include "vt/core/ops.h"
#include "vt/core/parallel.h"

namespace vt::attention {
namespace {

constexpr int64_t kRowsPerTask = 64, kKeysPerStep = 128;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

struct View {  // a [B, H, T, E] operand: base pointer and element strides
  const char* data;
  int64_t s0, s1, s2, s3;
  const char* at(int64_t b, int64_t h, int64_t t, int64_t esz) const { return data + (b * s0 + h * s1 + t * s2) * esz; }
};
View view_of(const Tensor& x) { return {x.data_ptr(), x.stride(0), x.stride(1), x.stride(2), x.stride(3)}; }

// Rows [0, n) of a [n, E] block read through (row, column) strides into dense floats.
template <typename T> void rows_to_float(const T* x, int64_t rs, int64_t cs, int64_t n, int64_t E, float* y) {
  for (int64_t r = 0; r < n; ++r) {
    const T* row = x + r * rs;
    if constexpr (!std::is_same_v<T, float>) {
      if (cs == 1) {
        cpu_math::to_float(row, y + r * E, E);
        continue;
      }
    }
    for (int64_t e = 0; e < E; ++e) y[r * E + e] = float(row[e * cs]);
  }
}

template <typename T>
void forward_task(const View& q, const View& k, const View& v, T* out, float* lse, int64_t b, int64_t h, int64_t H,
                  int64_t m0, int64_t rows, int64_t L, int64_t S, int64_t E, float scale, bool causal) {
  constexpr int64_t esz = sizeof(T);
  const ScalarType dt = std::is_same_v<T, float> ? ScalarType::Float32
                        : std::is_same_v<T, Half> ? ScalarType::Float16
                                                  : ScalarType::BFloat16;
  thread_local std::vector<float> buf;
  buf.resize(size_t(kRowsPerTask * kKeysPerStep + 2 * kRowsPerTask * E + kKeysPerStep * E));
  float* s = buf.data();                          // [rows, nk] scores, then probabilities
  float* o = s + kRowsPerTask * kKeysPerStep;     // [rows, E] output accumulator
  float* pv = o + kRowsPerTask * E;               // [rows, E] this block's P V
  float* vf = pv + kRowsPerTask * E;              // [nk, E] the value block in float (16-bit inputs)
  float m[kRowsPerTask], l[kRowsPerTask];
  std::fill(o, o + rows * E, 0.f);
  std::fill(m, m + rows, kNegInf);
  std::fill(l, l + rows, 0.f);
  const cpu_gemm::Operand qa{q.at(b, h, m0, esz), dt, 0, q.s2, q.s3};
  const int64_t n_end = causal ? std::min(S, m0 + rows) : S;
  for (int64_t n0 = 0; n0 < n_end; n0 += kKeysPerStep) {
    const int64_t nk = std::min(kKeysPerStep, n_end - n0);
    // B = K^T for the block: element (e, key) at key * s2 + e * s3.
    cpu_gemm::gemm(1, rows, nk, E, qa, cpu_gemm::Operand{k.at(b, h, n0, esz), dt, 0, k.s3, k.s2}, s);
    for (int64_t r = 0; r < rows; ++r) {
      float* srow = s + r * nk;
      const int64_t i = m0 + r;  // causal: keys past i are masked (top-left aligned)
      if (causal && n0 + nk - 1 > i) std::fill(srow + std::max<int64_t>(0, i - n0 + 1), srow + nk, kNegInf);
      const float mx = std::max(m[r], cpu_math::row_max(srow, nk, scale));
      const float shift = mx == kNegInf ? 0.f : mx;
      const float corr = std::exp(m[r] - shift);  // 0 while nothing was visible
      l[r] = l[r] * corr + cpu_math::exp_sum(srow, srow, nk, scale, shift);
      m[r] = mx;
      if (corr != 1.f) cpu_math::scale_by(o + r * E, E, corr);
    }
    const char* vb = v.at(b, h, n0, esz);
    cpu_gemm::Operand vo{vb, dt, 0, v.s2, v.s3};
    if constexpr (!std::is_same_v<T, float>) {
      rows_to_float(reinterpret_cast<const T*>(vb), v.s2, v.s3, nk, E, vf);
      vo = cpu_gemm::Operand{vf, ScalarType::Float32, 0, E, 1};
    }
    cpu_gemm::gemm(1, rows, E, nk, cpu_gemm::Operand{s, ScalarType::Float32, 0, nk, 1}, vo, pv);
    for (int64_t x = 0; x < rows * E; ++x) o[x] += pv[x];
  }
  const int64_t bh = b * H + h;
  for (int64_t r = 0; r < rows; ++r) {
    const float inv = 1.f / l[r];
    T* orow = out + (bh * L + m0 + r) * E;
    for (int64_t e = 0; e < E; ++e) orow[e] = T(o[r * E + e] * inv);
    lse[bh * L + m0 + r] = m[r] + std::log(l[r]);
  }
}

template <typename T>
void tiled_forward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse,
                   double scale, bool causal) {
  const int64_t B = q.size(0), H = q.size(1), L = q.size(2), S = k.size(2), E = q.size(3);
  const int64_t blocks = (L + kRowsPerTask - 1) / kRowsPerTask;
  const View qv = view_of(q), kv = view_of(k), vv = view_of(v);
  parallel_for(0, B * H * blocks, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t t = lo; t < hi; ++t) {
      const int64_t bh = t / blocks, m0 = (t % blocks) * kRowsPerTask;
      forward_task<T>(qv, kv, vv, out.data<T>(), lse.data<float>(), bh / H, bh % H, H, m0,
                      std::min(kRowsPerTask, L - m0), L, S, E, float(scale), causal);
    }
  });
}

// The backward of one (batch, head), FlashAttention-2's loops on the CPU: for each block of 128 keys (outer) and
// each block of 64 queries that can see it (inner), P = exp(S * scale - lse) from the forward's log-sum-exp,
// dV += P^T dO, dP = dO V^T, dS = P (dP - delta) with delta = rowsum(dO * O), dQ += scale dS K (a [L, E] float
// accumulator per task, so no two threads add to one), dK += scale dS^T Q. 16-bit q, k, v, dO and O are first
// widened to dense float rows (float32 ones are read in place), so every product is a float32 GEMM.
struct BackwardTask {
  int64_t L, S, E;
  float scale;
  bool causal;
};

// A [rows, E] float matrix read through its strides: a float32 operand in place, a 16-bit one widened into `buf`.
struct Rows {
  const float* p;
  int64_t rs, cs;
  const float* row(int64_t r) const { return p + r * rs; }
};
template <typename T> Rows float_rows(const View& x, int64_t b, int64_t h, int64_t rows, int64_t E, float* buf) {
  const T* base = reinterpret_cast<const T*>(x.at(b, h, 0, sizeof(T)));
  if constexpr (std::is_same_v<T, float>) {
    return {base, x.s2, x.s3};
  } else {
    rows_to_float(base, x.s2, x.s3, rows, E, buf);
    return {buf, E, 1};
  }
}

// Key blocks [kb0, kb1) of one (batch, head): their dK and dV rows written, their dQ terms (unscaled) added to dqf.
template <typename T>
void backward_task(const View& g, const View& q, const View& k, const View& v, const View& o, const float* lse,
                   float* dqf, T* dk, T* dv, int64_t b, int64_t h, int64_t kb0, int64_t kb1, const BackwardTask& a) {
  const int64_t L = a.L, S = a.S, E = a.E;
  thread_local std::vector<float> buf;
  const size_t whole = size_t(3 * L * E + 2 * S * E + L), block = size_t(kRowsPerTask * kKeysPerStep);
  buf.resize(whole + 2 * block + size_t(3 * kKeysPerStep * E));
  float *qb = buf.data(), *gb = qb + L * E, *ob = gb + L * E, *kb = ob + L * E;
  float *vb = kb + S * E, *delta = vb + S * E, *p = delta + L, *ds = p + block, *tmp = ds + block;
  float *dka = tmp + kKeysPerStep * E, *dva = dka + kKeysPerStep * E;
  const Rows qf = float_rows<T>(q, b, h, L, E, qb), gf = float_rows<T>(g, b, h, L, E, gb);
  const Rows of = float_rows<T>(o, b, h, L, E, ob), kf = float_rows<T>(k, b, h, S, E, kb);
  const Rows vf = float_rows<T>(v, b, h, S, E, vb);
  for (int64_t r = 0; r < L; ++r) {
    const float *gr = gf.row(r), *orow = of.row(r);
    double acc = 0.0;
    if (gf.cs == 1 && of.cs == 1) {
      acc = cpu_math::dot(gr, orow, E);
    } else {
      for (int64_t e = 0; e < E; ++e) acc += double(gr[e * gf.cs]) * double(orow[e * of.cs]);
    }
    delta[r] = float(acc);
  }
  using cpu_gemm::Operand;
  constexpr ScalarType f32 = ScalarType::Float32;
  auto rows_at = [](const Rows& m, int64_t r0) { return Operand{m.row(r0), f32, 0, m.rs, m.cs}; };
  auto cols_at = [](const Rows& m, int64_t r0) { return Operand{m.row(r0), f32, 0, m.cs, m.rs}; };  // transposed
  auto add_into = [](float* acc, const float* x, int64_t n) {
    for (int64_t i = 0; i < n; ++i) acc[i] += x[i];
  };
  for (int64_t n0 = kb0 * kKeysPerStep; n0 < std::min(S, kb1 * kKeysPerStep); n0 += kKeysPerStep) {
    const int64_t nk = std::min(kKeysPerStep, S - n0);
    std::fill(dka, dka + nk * E, 0.f);
    std::fill(dva, dva + nk * E, 0.f);
    for (int64_t m0 = a.causal ? n0 / kRowsPerTask * kRowsPerTask : 0; m0 < L; m0 += kRowsPerTask) {
      const int64_t rows = std::min(kRowsPerTask, L - m0);
      cpu_gemm::gemm(1, rows, nk, E, rows_at(qf, m0), cols_at(kf, n0), p);   // S = Q K^T
      cpu_gemm::gemm(1, rows, nk, E, rows_at(gf, m0), cols_at(vf, n0), ds);  // dP = dO V^T
      for (int64_t r = 0; r < rows; ++r) {
        float *prow = p + r * nk, *drow = ds + r * nk;
        const int64_t i = m0 + r;
        if (a.causal && n0 + nk - 1 > i) std::fill(prow + std::max<int64_t>(0, i - n0 + 1), prow + nk, kNegInf);
        cpu_math::exp_sum(prow, prow, nk, a.scale, lse[i]);  // P = exp(S * scale - lse), 0 where masked
        for (int64_t c = 0; c < nk; ++c) drow[c] = prow[c] * (drow[c] - delta[i]);  // dS
      }
      cpu_gemm::gemm(1, nk, E, rows, Operand{p, f32, 0, 1, nk}, rows_at(gf, m0), tmp);  // P^T dO
      add_into(dva, tmp, nk * E);
      cpu_gemm::gemm(1, nk, E, rows, Operand{ds, f32, 0, 1, nk}, rows_at(qf, m0), tmp);  // dS^T Q
      add_into(dka, tmp, nk * E);
      cpu_gemm::gemm(1, rows, E, nk, Operand{ds, f32, 0, nk, 1}, rows_at(kf, n0), tmp);  // dS K
      add_into(dqf + m0 * E, tmp, rows * E);
    }
    for (int64_t x = 0; x < nk * E; ++x) {
      dk[n0 * E + x] = T(dka[x] * a.scale);
      dv[n0 * E + x] = T(dva[x]);
    }
  }
}

template <typename T>
void tiled_backward(const Tensor& g, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                    const Tensor& lse, const Tensor& dq, const Tensor& dk, const Tensor& dv, double scale,
                    bool causal) {
  const int64_t B = q.size(0), H = q.size(1), L = q.size(2), S = k.size(2), E = q.size(3);
  const View gv = view_of(g), qv = view_of(q), kv = view_of(k), vv = view_of(v), ov = view_of(out);
  const BackwardTask task{L, S, E, float(scale), causal};
  // Fewer heads than threads (long-context work): each head's key blocks split into `splits` ranges, each with
  // its own dQ partial (at most about one [L, E] float buffer per thread), summed in range order afterwards so
  // the result does not depend on scheduling. Otherwise a task per head keeps its dQ in a thread's buffer.
  const int64_t heads = B * H, threads = num_threads(), kblocks = (S + kKeysPerStep - 1) / kKeysPerStep;
  const int64_t splits = heads >= threads ? 1 : std::min(kblocks, (threads + heads - 1) / heads);
  std::vector<float> parts(splits > 1 ? size_t(heads * splits * L * E) : 0, 0.f);
  auto finish_dq = [&](const float* acc, int64_t bh, int64_t nparts) {
    T* out = dq.data<T>() + bh * L * E;
    for (int64_t x = 0; x < L * E; ++x) {
      float sum = acc[x];
      for (int64_t p = 1; p < nparts; ++p) sum += acc[p * L * E + x];
      out[x] = T(sum * task.scale);
    }
  };
  parallel_for(0, heads * splits, 1, [&](int64_t lo, int64_t hi) {
    thread_local std::vector<float> own;
    for (int64_t t = lo; t < hi; ++t) {
      const int64_t bh = t / splits, part = t % splits;
      float* acc = parts.empty() ? (own.assign(size_t(L * E), 0.f), own.data()) : parts.data() + t * L * E;
      backward_task<T>(gv, qv, kv, vv, ov, lse.data<float>() + bh * L, acc, dk.data<T>() + bh * S * E,
                       dv.data<T>() + bh * S * E, bh / H, bh % H, part * kblocks / splits,
                       (part + 1) * kblocks / splits, task);
      if (parts.empty()) finish_dq(acc, bh, 1);
    }
  });
  if (!parts.empty())
    parallel_for(0, heads, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t bh = lo; bh < hi; ++bh) finish_dq(parts.data() + bh * splits * L * E, bh, splits);
    });
}

}  // namespace

std::tuple<Tensor, Tensor, Tensor> tiled_backward_cpu(const Tensor& grad_out, const Tensor& q, const Tensor& k,
                                                      const Tensor& v, const Tensor& out, const Tensor& lse,
                                                      double scale, bool causal) {
  VT_CHECK(lse.dim() == 3 && lse.dtype() == ScalarType::Float32 && lse.size(0) == q.size(0) &&
               lse.size(1) == q.size(1) && lse.size(2) == q.size(2),
           "_flash_attention_backward: lse must be float32 [batch, heads, length], got ", dtype_name(lse.dtype()),
           " ", shape_str(lse.sizes()));
  auto same = [&](const Tensor& t) { return t.dtype() == q.dtype() ? t : ops::to_dtype(t, q.dtype()); };
  Tensor g = same(grad_out), o = same(out), l = ops::contiguous(lse);
  Tensor dq = empty_tensor(q.sizes(), q.dtype(), q.device());
  Tensor dk = empty_tensor(k.sizes(), q.dtype(), q.device());
  Tensor dv = empty_tensor(v.sizes(), q.dtype(), q.device());
  if (q.numel() == 0 && k.numel() == 0) return {dq, dk, dv};
  if (q.dtype() == ScalarType::Float32)
    tiled_backward<float>(g, q, k, v, o, l, dq, dk, dv, scale, causal);
  else if (q.dtype() == ScalarType::Float16)
    tiled_backward<Half>(g, q, k, v, o, l, dq, dk, dv, scale, causal);
  else
    tiled_backward<BFloat16>(g, q, k, v, o, l, dq, dk, dv, scale, causal);
  return {dq, dk, dv};
}

bool tiled_forward_applies(const Tensor& q, const Tensor& k) {
  const ScalarType t = q.dtype();
  return (t == ScalarType::Float32 || t == ScalarType::Float16 || t == ScalarType::BFloat16) && q.size(3) > 0 &&
         k.size(2) > 0;
}

std::tuple<Tensor, Tensor> tiled_forward_cpu(const Tensor& q, const Tensor& k, const Tensor& v, double scale,
                                             bool causal) {
  Tensor out = empty_tensor(q.sizes(), q.dtype(), q.device());
  Tensor lse = empty_tensor(DimVector{q.size(0), q.size(1), q.size(2)}, ScalarType::Float32, q.device());
  if (out.numel() == 0) return {out, lse};
  if (q.dtype() == ScalarType::Float32)
    tiled_forward<float>(q, k, v, out, lse, scale, causal);
  else if (q.dtype() == ScalarType::Float16)
    tiled_forward<Half>(q, k, v, out, lse, scale, causal);
  else
    tiled_forward<BFloat16>(q, k, v, out, lse, scale, causal);
  return {out, lse};
}

}  // namespace vt::attention
