// Schemas and CPU kernels of the fused nn ops (glue in nn_native_impl.h). Rows are independent, so the kernels
// run rows in parallel; softmax along an inner dim walks each column with stride `inner`. The affine
// gradients of the norms sum over rows: each chunk of rows sums into its own partial row, and the partials are
// added in chunk order, so results do not depend on the thread count's timing.
#include <cmath>
#include <limits>
#include <vector>

#include "act_backward_impl.h"
#include "cpu_float_rows.h"
#include "cpu_loops.h"
#include "nn_native_impl.h"
#include "vt/core/cpu_vec_math.h"
#include "vt/core/parallel.h"

namespace vt::nn_native {

using cpu::float_out;
using cpu::float_row;
using cpu::kLaneRow;
using cpu::row_scratch;
using cpu::store_row;

NormShape norm_shape(const Tensor& x, IntArrayRef normalized_shape, const char* name) {
  int64_t k = int64_t(normalized_shape.size());
  VT_CHECK(k >= 1 && k <= x.dim(), name, ": normalized_shape ", shape_str(normalized_shape),
           " does not fit an input of shape ", shape_str(x.sizes()));
  NormShape s;
  s.stats_sizes = DimVector(x.sizes());
  for (int64_t i = 0; i < k; ++i) {
    int64_t d = x.dim() - k + i;
    VT_CHECK(x.size(d) == normalized_shape[size_t(i)], name, ": expected input with shape [*, ",
             shape_str(normalized_shape).substr(1), ", but got input of size", shape_str(x.sizes()));
    s.N *= x.size(d);
    s.stats_sizes[size_t(d)] = 1;
  }
  for (int64_t d = 0; d < x.dim() - k; ++d) s.M *= x.size(d);
  return s;
}

Tensor dense_affine(const Tensor& p, IntArrayRef normalized_shape, const Tensor& x, const char* what) {
  if (!p.defined()) return p;
  VT_CHECK(DimVector(p.sizes()) == DimVector(normalized_shape), what, " of shape ", shape_str(p.sizes()),
           " does not match normalized_shape ", shape_str(normalized_shape));
  VT_CHECK(p.device() == x.device(), "layer norm: ", what, " is on ", p.device().str(), " but the input is on ",
           x.device().str());
  return ops::contiguous(p.dtype() == x.dtype() ? p : ops::to_dtype(p, x.dtype()));
}

namespace {

template <typename T> using Acc = opmath_t<T>;

// Note [Row sums in double]: a row of a norm, or a softmax backward's dot, is summed in double for every
// dtype. A float sum taken in order gains an error that grows with the row (about sqrt(N) ulp: 2e-6 relative
// at N = 1500, which failed differential tests), where torch's cascaded sums do not; the scalar loop costs the
// same in double.
using RowSum = double;

// Note [Lane sums]: a row sum taken in one accumulator is a chain of dependent adds (4 cycles each), which made
// layer_norm 6x torch's time on the CPU. kSumLanes independent accumulators break the chain (and the compiler
// keeps them in vector registers); they are added in a fixed order at the end, so a row's sum is the same every
// run and on every thread count.
constexpr int kSumLanes = 8;
template <typename F> RowSum lane_sum(int64_t n, F term) {
  RowSum lane[kSumLanes] = {};
  int64_t j = 0;
  for (; j + kSumLanes <= n; j += kSumLanes)
    for (int l = 0; l < kSumLanes; ++l) lane[l] += RowSum(term(j + l));
  RowSum s = 0;
  for (int l = 0; l < kSumLanes; ++l) s += lane[l];
  for (; j < n; ++j) s += RowSum(term(j));
  return s;
}

// Max and sum of exp(v - max) over one strided row, of the first `n` entries, in one pass (online softmax). The
// sum stays in the accumulate type, unlike Note [Row sums in double]: tests/models/test_gpt.py follows torch
// through six AdamW steps, and a double sum here moved one update by 1% (Adam amplifies tiny gradients); the
// rounding error it leaves (a few ulp of log(sum) at N = 1300) is what the softmax tests tolerate.
template <typename T> std::pair<Acc<T>, Acc<T>> row_stats(const T* x, int64_t n, int64_t stride, Acc<T> scale) {
  using A = Acc<T>;
  A m = -std::numeric_limits<A>::infinity(), s = 0;
  for (int64_t j = 0; j < n; ++j) {
    A v = A(x[j * stride]) * scale;
    if (v == -std::numeric_limits<A>::infinity()) continue;  // weight 0; a row of only -inf keeps s = 0 (NaN out)
    if (v > m) {
      // exp(-inf) = 0 on the first finite value; the new max's own term is exp(v - v): 1, or NaN for v = +inf
      // (as torch's exp(inf - inf), which makes the whole row NaN)
      s = s * std::exp(m - v) + std::exp(v - v);
      m = v;
    } else {
      s += std::exp(v - m);
    }
  }
  return {m, s};
}

// A norm's weight or bias (n elements, or null) as float32, converted once per call where it is 16-bit (null
// for the other dtypes, which do not take the lanes).
template <typename T> struct FloatParam {
  std::vector<float> copy;
  const float* ptr = nullptr;
  FloatParam(const T* p, int64_t n) {
    if constexpr (kLaneRow<T>) {
      if (!p) return;
      if constexpr (!std::is_same_v<T, float>) copy.resize(size_t(n));
      ptr = float_row(p, n, copy.data());
    }
  }
};

struct CpuNnKernels {
  static void softmax_forward(const Tensor& x, const Tensor& y, Rows r, const SoftmaxOpts& o) {
    VT_DISPATCH_FLOATING(x.dtype(), "softmax", [&] {
      using A = Acc<scalar_t>;
      const scalar_t* xp = x.data<scalar_t>();
      scalar_t* yp = y.data<scalar_t>();
      A scale = A(o.scale);
      parallel_for(0, r.outer * r.inner, std::max<int64_t>(1, kDefaultGrain / r.size), [&](int64_t lo, int64_t hi) {
        std::vector<float> scratch = row_scratch<scalar_t>(r.inner == 1 ? 2 : 0, r.size);  // Note [16-bit rows in float]
        for (int64_t row = lo; row < hi; ++row) {
          int64_t base = (row / r.inner) * r.size * r.inner + row % r.inner;
          // Causal: row i of each [L, S] matrix sees columns 0..i; the rest is exp(-inf) = 0.
          int64_t n = o.causal_rows ? std::min(r.size, (row % o.causal_rows) + 1) : r.size;
          if constexpr (kLaneRow<scalar_t>) if (r.inner == 1) {
            // Note [One exp per element]: a dense float row takes its max, then (softmax) writes exp(v - max)
            // once while summing it and scales by 1 / sum, as torch's vectorised kernel; log_softmax sums the
            // exps without writing them. The passes are cpu_math's vector lanes. NaN is skipped by the max and
            // makes the sum (so the row) NaN; a row of only -inf sums to 0 (NaN out) and a +inf gives
            // exp(inf - inf) = NaN: the online pass's answers below, and torch's.
            const float* in = float_row(xp + base, n, scratch.data());
            float* out = float_out(yp + base, scratch.data() + r.size);
            const float fs = float(scale);
            const float m = cpu_math::row_max(in, n, fs);
            if (o.log) {
              const float logs = std::log(cpu_math::sum_exp(in, n, fs, m));
              cpu_math::log_softmax_row(in, out, n, fs, m, logs);
              for (int64_t j = n; j < r.size; ++j) out[j] = -std::numeric_limits<float>::infinity();
            } else {
              cpu_math::scale_by(out, n, 1.0f / cpu_math::exp_sum(in, out, n, fs, m));
              for (int64_t j = n; j < r.size; ++j) out[j] = 0.0f;
            }
            store_row(out, yp + base, r.size);
            continue;
          }
          auto [m, s] = row_stats(xp + base, n, r.inner, scale);
          // A row that is all -inf: softmax is NaN there, as torch's (exp(-inf - -inf)).
          A shift = m, logs = std::log(s);
          for (int64_t j = 0; j < r.size; ++j) {
            A v = A(xp[base + j * r.inner]) * scale - shift;
            A out = j >= n ? (o.log ? -std::numeric_limits<A>::infinity() : A(0)) : o.log ? v - logs : std::exp(v) / s;
            yp[base + j * r.inner] = scalar_t(out);
          }
        }
      });
    });
  }

  static void softmax_backward(const Tensor& g, const Tensor& y, const Tensor& gx, Rows r, bool log, double scale) {
    VT_DISPATCH_FLOATING(y.dtype(), "softmax backward", [&] {
      using A = Acc<scalar_t>;
      const scalar_t* gp = g.data<scalar_t>();
      const scalar_t* yp = y.data<scalar_t>();
      scalar_t* op = gx.data<scalar_t>();
      A sc = A(scale);
      parallel_for(0, r.outer * r.inner, std::max<int64_t>(1, kDefaultGrain / r.size), [&](int64_t lo, int64_t hi) {
        std::vector<float> scratch = row_scratch<scalar_t>(r.inner == 1 ? 3 : 0, r.size);  // Note [16-bit rows in float]
        for (int64_t row = lo; row < hi; ++row) {
          int64_t base = (row / r.inner) * r.size * r.inner + row % r.inner;
          if constexpr (kLaneRow<scalar_t>) if (r.inner == 1) {  // dense rows: cpu_math's vector lanes
            const float* gr = float_row(gp + base, r.size, scratch.data());
            const float* yr = float_row(yp + base, r.size, scratch.data() + r.size);
            float* out = float_out(op + base, scratch.data() + 2 * r.size);
            const float d = float(log ? cpu_math::sum(gr, r.size) : cpu_math::dot(gr, yr, r.size));  // in double
            if (log) cpu_math::log_softmax_backward_row(gr, yr, out, r.size, d, float(sc));
            else cpu_math::softmax_backward_row(gr, yr, out, r.size, d, float(sc));
            store_row(out, op + base, r.size);
            continue;
          }
          A dot = A(lane_sum(r.size, [&](int64_t j) {  // Note [Lane sums]
            int64_t i = base + j * r.inner;
            return log ? A(gp[i]) : A(gp[i]) * A(yp[i]);
          }));
          for (int64_t j = 0; j < r.size; ++j) {
            int64_t i = base + j * r.inner;
            A out = log ? A(gp[i]) - std::exp(A(yp[i])) * dot : A(yp[i]) * (A(gp[i]) - dot);
            op[i] = scalar_t(sc * out);
          }
        }
      });
    });
  }

  static void norm_forward(const NormArgs& a, const Tensor& y, const Tensor& mean, const Tensor& rstd) {
    VT_DISPATCH_FLOATING(a.x.dtype(), a.rms ? "rms_norm" : "layer_norm", [&] {
      using A = Acc<scalar_t>;
      const scalar_t* xp = a.x.data<scalar_t>();
      const scalar_t* wp = a.weight.defined() ? a.weight.data<scalar_t>() : nullptr;
      const scalar_t* bp = a.bias.defined() ? a.bias.data<scalar_t>() : nullptr;
      scalar_t* yp = y.data<scalar_t>();
      A* mp = a.rms ? nullptr : mean.data<A>();
      A* rp = rstd.data<A>();
      int64_t N = a.N;
      const FloatParam<scalar_t> wf(wp, N), bf(bp, N);  // Note [16-bit rows in float]
      parallel_for(0, a.M, std::max<int64_t>(1, kDefaultGrain / N), [&](int64_t lo, int64_t hi) {
        std::vector<float> scratch = row_scratch<scalar_t>(2, N);
        for (int64_t i = lo; i < hi; ++i) {
          const scalar_t* row = xp + i * N;
          if constexpr (kLaneRow<scalar_t>) {  // cpu_math's vector lanes, the same formula
            float mu, rs;
            float* out = float_out(yp + i * N, scratch.data() + N);
            cpu_math::norm_forward_row(float_row(row, N, scratch.data()), wf.ptr, bf.ptr, out, N, a.eps, a.rms, &mu,
                                       &rs);
            store_row(out, yp + i * N, N);
            if (mp) mp[i] = A(mu);
            rp[i] = A(rs);
            continue;
          }
          RowSum mean_sum = a.rms ? RowSum(0) : lane_sum(N, [&](int64_t j) { return A(row[j]); });
          A mu = A(mean_sum / RowSum(N));
          // two passes over a row in cache: no cancellation from E[x^2] - E[x]^2 (Note [Lane sums])
          RowSum var = lane_sum(N, [&](int64_t j) { return RowSum(A(row[j]) - mu) * RowSum(A(row[j]) - mu); });
          A rs = A(1.0 / std::sqrt(var / RowSum(N) + a.eps));
          if (mp) mp[i] = mu;
          rp[i] = rs;
          scalar_t* out = yp + i * N;
          if (wp && bp) {  // the usual affine norm: a branch-free loop the compiler vectorises
            for (int64_t j = 0; j < N; ++j) out[j] = scalar_t((A(row[j]) - mu) * rs * A(wp[j]) + A(bp[j]));
          } else {
            for (int64_t j = 0; j < N; ++j) {
              A v = (A(row[j]) - mu) * rs;
              if (wp) v *= A(wp[j]);
              if (bp) v += A(bp[j]);
              out[j] = scalar_t(v);
            }
          }
        }
      });
    });
  }

  // The input gradient, then the affine ones (each tensor may be undefined; M, N > 0).
  static void norm_backward(const NormArgs& a, const Tensor& g, const Tensor& mean, const Tensor& rstd,
                            const Tensor& gx, const Tensor& gw, const Tensor& gb) {
    if (gx.defined()) norm_backward_input(a, g, mean, rstd, gx);
    if (gw.defined() || gb.defined()) norm_backward_affine(a, g, mean, rstd, gw, gb);
  }

  // dx = rstd * (g w - mean(g w) - xhat * mean(g w xhat)); rms drops the mean(g w) term (no centring).
  static void norm_backward_input(const NormArgs& a, const Tensor& g, const Tensor& mean, const Tensor& rstd,
                                  const Tensor& gx) {
    VT_DISPATCH_FLOATING(a.x.dtype(), "norm backward", [&] {
      using A = Acc<scalar_t>;
      const scalar_t* xp = a.x.data<scalar_t>();
      const scalar_t* gp = g.data<scalar_t>();
      const scalar_t* wp = a.weight.defined() ? a.weight.data<scalar_t>() : nullptr;
      const A* mp = a.rms ? nullptr : mean.data<A>();
      const A* rp = rstd.data<A>();
      scalar_t* op = gx.data<scalar_t>();
      int64_t N = a.N;
      const FloatParam<scalar_t> wf(wp, N);  // Note [16-bit rows in float]
      parallel_for(0, a.M, std::max<int64_t>(1, kDefaultGrain / N), [&](int64_t lo, int64_t hi) {
        std::vector<float> scratch = row_scratch<scalar_t>(3, N);
        for (int64_t i = lo; i < hi; ++i) {
          A mu = mp ? mp[i] : A(0), rs = rp[i];
          if constexpr (kLaneRow<scalar_t>) {  // cpu_math's vector lanes, the same formula
            float* out = float_out(op + i * N, scratch.data() + 2 * N);
            cpu_math::norm_backward_row(float_row(gp + i * N, N, scratch.data()),
                                        float_row(xp + i * N, N, scratch.data() + N), wf.ptr, out, N, float(mu),
                                        float(rs), a.rms);
            store_row(out, op + i * N, N);
            continue;
          }
          auto gw_at = [&](int64_t j) { return A(gp[i * N + j]) * (wp ? A(wp[j]) : A(1)); };
          RowSum sum_gw = a.rms ? RowSum(0) : lane_sum(N, gw_at);  // Note [Lane sums]
          RowSum sum_gwx = lane_sum(N, [&](int64_t j) { return gw_at(j) * (A(xp[i * N + j]) - mu) * rs; });
          A c1 = a.rms ? A(0) : A(sum_gw / RowSum(N)), c2 = A(sum_gwx / RowSum(N));
          for (int64_t j = 0; j < N; ++j) {
            A gw = A(gp[i * N + j]) * (wp ? A(wp[j]) : A(1));
            A xhat = (A(xp[i * N + j]) - mu) * rs;
            op[i * N + j] = scalar_t(rs * (gw - c1 - xhat * c2));
          }
        }
      });
    });
  }

  // gw = sum over rows of g * xhat, gb = sum over rows of g.
  static void norm_backward_affine(const NormArgs& a, const Tensor& g, const Tensor& mean, const Tensor& rstd,
                                   const Tensor& gw, const Tensor& gb) {
    VT_DISPATCH_FLOATING(a.x.dtype(), "norm backward", [&] {
      using A = Acc<scalar_t>;
      const scalar_t* xp = a.x.data<scalar_t>();
      const scalar_t* gp = g.data<scalar_t>();
      const A* mp = a.rms ? nullptr : mean.data<A>();
      const A* rp = rstd.data<A>();
      int64_t M = a.M, N = a.N;
      int64_t chunks = std::min<int64_t>(M, std::max<int64_t>(1, int64_t(num_threads()) * 4));
      std::vector<A> pw(gw.defined() ? size_t(chunks * N) : 0), pb(gb.defined() ? size_t(chunks * N) : 0);
      parallel_for(0, chunks, 1, [&](int64_t lo, int64_t hi) {
        std::vector<float> scratch = row_scratch<scalar_t>(2, N);  // Note [16-bit rows in float]
        for (int64_t c = lo; c < hi; ++c) {
          for (int64_t i = M * c / chunks; i < M * (c + 1) / chunks; ++i) {
            A mu = mp ? mp[i] : A(0), rs = rp[i];
            if constexpr (kLaneRow<scalar_t>) {  // cpu_math's vector lanes (A is float for these dtypes)
              auto f = [](auto* p) { return reinterpret_cast<float*>(p); };
              cpu_math::norm_affine_row(float_row(gp + i * N, N, scratch.data()),
                                        float_row(xp + i * N, N, scratch.data() + N),
                                        pw.empty() ? nullptr : f(&pw[size_t(c * N)]),
                                        pb.empty() ? nullptr : f(&pb[size_t(c * N)]), N, float(mu), float(rs));
              continue;
            }
            for (int64_t j = 0; j < N; ++j) {
              A gv = A(gp[i * N + j]);
              if (!pw.empty()) pw[size_t(c * N + j)] += gv * (A(xp[i * N + j]) - mu) * rs;
              if (!pb.empty()) pb[size_t(c * N + j)] += gv;
            }
          }
        }
      });
      auto combine = [&](const std::vector<A>& part, const Tensor& out) {
        scalar_t* o = out.data<scalar_t>();
        for (int64_t j = 0; j < N; ++j) {
          A s = 0;
          for (int64_t c = 0; c < chunks; ++c) s += part[size_t(c * N + j)];
          o[j] = scalar_t(s);
        }
      };
      if (gw.defined()) combine(pw, gw);
      if (gb.defined()) combine(pb, gb);
    });
  }
};

}  // namespace

VT_LIBRARY(vt, nn_native) {
  m.def("_softmax(Tensor self, int dim, bool log) -> Tensor");
  m.def("_attention_softmax(Tensor scores, float scale, bool causal) -> Tensor");
  m.def("_softmax_backward(Tensor grad_output, Tensor output, int dim, bool log, float scale=1.0) -> Tensor");
  m.def("native_layer_norm(Tensor input, int[] normalized_shape, Tensor? weight, Tensor? bias, float eps) -> (Tensor, Tensor, Tensor)");
  m.def("native_layer_norm_backward(Tensor grad_out, Tensor input, int[] normalized_shape, Tensor mean, Tensor rstd, Tensor? weight, int output_mask) -> (Tensor, Tensor, Tensor)");
  m.def("native_rms_norm(Tensor input, int[] normalized_shape, Tensor? weight, float eps) -> (Tensor, Tensor)");
  m.def("native_rms_norm_backward(Tensor grad_out, Tensor input, int[] normalized_shape, Tensor rstd, Tensor? weight, int output_mask) -> (Tensor, Tensor)");
  m.def("gelu_backward(Tensor grad_output, Tensor self, *, str approximate='none') -> Tensor");
  m.def("silu_backward(Tensor grad_output, Tensor self) -> Tensor");
  m.def("tanh_backward(Tensor grad_output, Tensor output) -> Tensor");
  m.def("sigmoid_backward(Tensor grad_output, Tensor output) -> Tensor");
  register_nn_native<CpuNnKernels>(m, DispatchKey::CPU);
  act_backward::register_act_backward<cpu::CpuLaunch>(m, DispatchKey::CPU);
}

}  // namespace vt::nn_native

namespace vt::ops {
Tensor softmax_fused(const Tensor& self, int64_t dim, bool log) {
  static const TypedOp<Tensor(const Tensor&, int64_t, bool)> op("vt::_softmax");
  return op(self, dim, log);
}
Tensor attention_softmax(const Tensor& scores, double scale, bool causal) {
  static const TypedOp<Tensor(const Tensor&, double, bool)> op("vt::_attention_softmax");
  return op(scores, scale, causal);
}
Tensor softmax_backward(const Tensor& grad, const Tensor& output, int64_t dim, bool log, double scale) {
  static const TypedOp<Tensor(const Tensor&, const Tensor&, int64_t, bool, double)> op("vt::_softmax_backward");
  return op(grad, output, dim, log, scale);
}
std::tuple<Tensor, Tensor, Tensor> native_layer_norm(const Tensor& input, IntArrayRef shape, const Tensor& weight,
                                                     const Tensor& bias, double eps) {
  static const TypedOp<std::tuple<Tensor, Tensor, Tensor>(const Tensor&, IntArrayRef, const Tensor&, const Tensor&, double)>
      op("vt::native_layer_norm");
  return op(input, shape, weight, bias, eps);
}
std::tuple<Tensor, Tensor, Tensor> native_layer_norm_backward(const Tensor& grad, const Tensor& input, IntArrayRef shape,
                                                              const Tensor& mean, const Tensor& rstd,
                                                              const Tensor& weight, int64_t output_mask) {
  static const TypedOp<std::tuple<Tensor, Tensor, Tensor>(const Tensor&, const Tensor&, IntArrayRef, const Tensor&,
                                                          const Tensor&, const Tensor&, int64_t)>
      op("vt::native_layer_norm_backward");
  return op(grad, input, shape, mean, rstd, weight, output_mask);
}
std::tuple<Tensor, Tensor> native_rms_norm(const Tensor& input, IntArrayRef shape, const Tensor& weight, double eps) {
  static const TypedOp<std::tuple<Tensor, Tensor>(const Tensor&, IntArrayRef, const Tensor&, double)> op(
      "vt::native_rms_norm");
  return op(input, shape, weight, eps);
}
std::tuple<Tensor, Tensor> native_rms_norm_backward(const Tensor& grad, const Tensor& input, IntArrayRef shape,
                                                    const Tensor& rstd, const Tensor& weight, int64_t output_mask) {
  static const TypedOp<std::tuple<Tensor, Tensor>(const Tensor&, const Tensor&, IntArrayRef, const Tensor&,
                                                  const Tensor&, int64_t)>
      op("vt::native_rms_norm_backward");
  return op(grad, input, shape, rstd, weight, output_mask);
}
Tensor gelu_backward(const Tensor& grad, const Tensor& self, const std::string& approximate) {
  static const TypedOp<Tensor(const Tensor&, const Tensor&, std::string)> op("vt::gelu_backward");
  return op(grad, self, approximate);
}
Tensor silu_backward(const Tensor& grad, const Tensor& self) { return binary("vt::silu_backward", grad, self); }
Tensor tanh_backward(const Tensor& grad, const Tensor& output) { return binary("vt::tanh_backward", grad, output); }
Tensor sigmoid_backward(const Tensor& grad, const Tensor& output) {
  return binary("vt::sigmoid_backward", grad, output);
}
}  // namespace vt::ops
