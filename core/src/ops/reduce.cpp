// Reductions: their schemas, the CPU kernels (reduce_impl.h over cpu_reduce.h) and the compositions that are
// the same on every device (mean, var, std, norm, logsumexp). The CUDA kernels register from cuda/reduce_ops.cu
// (mean, var, std and the p-norms of one launch each from cuda/moments.cu).
#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "cpu_reduce.h"
#include "vt/autograd/grad_mode.h"
#include "vt/core/cpu_vec_math.h"
#include "vt/core/parallel.h"
#include "reduce_impl.h"

namespace vt {
namespace {

using reduce::reduced_mask;

// ---- compositions ----
Tensor mean_any(const Tensor& self, OptionalIntArrayRef dim, bool keepdim, std::optional<ScalarType> dtype) {
  ScalarType t = dtype.value_or(self.dtype());
  VT_CHECK(is_floating(t), "mean(): could not infer output dtype. Input dtype must be either a floating point or "
           "complex dtype. Got: ", dtype_name(t));
  auto mask = reduced_mask(self, dim, "mean");
  int64_t count = 1;
  for (int64_t d = 0; d < self.dim(); ++d)
    if (mask[size_t(d)]) count *= self.size(d);
  // float32 and float64 on the CPU: the sum (accumulated in float64, rounded to the dtype) divided in the dtype,
  // as torch's mean, without a float64 copy of the input. 16-bit inputs: sum and divide in float64 (the sum of a
  // 16-bit tensor may overflow its dtype), then round once. (CUDA has a kernel of its own: cuda/moments.cu.)
  if ((t == ScalarType::Float32 || t == ScalarType::Float64) && self.dtype() == t && self.device().is_cpu())
    return ops::div(ops::sum(self, dim, keepdim, std::nullopt), scalar_to_tensor(Scalar(double(count)), t));
  Tensor s = ops::sum(self, dim, keepdim, ScalarType::Float64);
  Tensor m = ops::div(s, scalar_to_tensor(Scalar(double(count)), ScalarType::Float64));
  return t == ScalarType::Float64 ? m : ops::to_dtype(m, t);
}

// The variance in float64, for var to round and std to take the root of first (a float16 variance of 1e9
// is inf; its root, 32752, is not).
Tensor var_f64(const Tensor& self, OptionalIntArrayRef dim, std::optional<Scalar> correction, bool keepdim,
               const char* name) {
  VT_CHECK(is_floating(self.dtype()), name, "(): input dtype should be floating point, got ", dtype_name(self.dtype()));
  auto mask = reduced_mask(self, dim, name, /*in_order=*/true);
  int64_t count = 1;
  for (int64_t d = 0; d < self.dim(); ++d)
    if (mask[size_t(d)]) count *= self.size(d);
  double corr = correction ? correction->to_double() : 1.0;
  // Two passes in float64: subtracting the mean first keeps the sum of squares well conditioned.
  Tensor x = ops::to_dtype(self, ScalarType::Float64);
  Tensor mu = ops::mean(x, dim, true, std::nullopt);
  Tensor d = ops::sub(x, mu);
  Tensor ss = ops::sum(ops::mul(d, d), dim, keepdim, std::nullopt);
  double denom = std::max(0.0, double(count) - corr);  // in torch's order: a NaN correction gives 0 (inf), not NaN
  Tensor v = ops::div(ss, scalar_to_tensor(Scalar(denom), ScalarType::Float64));
  if (count == 0) v = ops::mul(v, scalar_to_tensor(Scalar(std::nan("")), ScalarType::Float64));  // as torch's
  return v;
}

// Whether autograd records through `self`: the CPU's var and std, and the norms of orders other than 2, then
// run as the compositions above and below (their gradients those of the parts).
bool recording(const Tensor& self) { return autograd::is_grad_enabled() && self.impl()->requires_grad(); }

// var and std of a non-empty floating CUDA tensor: one Welford reduction (Note [Welford states] in
// cuda/moments.cu), differentiated by torch's formulas (VarBackward0 / StdBackward0 in
// autograd/formulas_reduce.cpp); the composition's nine launches otherwise.
bool welford_applies(const Tensor& self) {
  return self.device().is_cuda() && is_floating(self.dtype()) && self.numel() > 0;
}
Tensor var_welford(const Tensor& self, OptionalIntArrayRef dim, std::optional<Scalar> correction, bool keepdim,
                   bool root) {
  static const TypedOp<Tensor(const Tensor&, OptionalIntArrayRef, double, bool, bool)> op("vt::_var_welford");
  return op(self, dim, correction ? correction->to_double() : 1.0, keepdim, root);
}

Tensor var_any(const Tensor& self, OptionalIntArrayRef dim, std::optional<Scalar> correction, bool keepdim) {
  if (welford_applies(self)) return var_welford(self, dim, correction, keepdim, false);
  return ops::to_dtype(var_f64(self, dim, correction, keepdim, "var"), self.dtype());
}
// Note [Zero-safe roots]
// std = sqrt(var) and the p-norms are roots of sums, whose derivative is infinite where the sum is 0: the chain
// rule then multiplies inf by the inner derivative, 0, and gives NaN where torch defines the gradient as 0
// (ones(4).std(), zeros(3).norm()). When autograd records, such a function is applied through
// where(s == 0, f(0), f(where(s == 0, 1, s))): the same values, and the gradient at 0 is exactly 0 because
// the branch that is not taken gets a zero gradient. f(0) is the caller's: 0 for a root, but inf for the power
// of a negative order (0 ** -1), which is how a zero element makes norm(p < 0) zero (a fixed 0 there made
// norm([0, 1, 2], p=-1) 0.667 under autograd instead of 0).
template <typename F>
Tensor zero_safe(const Tensor& s, const Tensor& self, F f, double f_at_zero) {
  if (!recording(self)) return f(s);
  Tensor zero = ops::binary("vt::eq", s, scalar_to_tensor(Scalar(0.0), ScalarType::Float64));
  Tensor safe = ops::where(zero, scalar_to_tensor(Scalar(1.0), s.dtype()), s);
  return ops::where(zero, scalar_to_tensor(Scalar(f_at_zero), s.dtype()), f(safe));
}

Tensor std_any(const Tensor& self, OptionalIntArrayRef dim, std::optional<Scalar> correction, bool keepdim) {
  if (welford_applies(self)) return var_welford(self, dim, correction, keepdim, true);
  Tensor s = zero_safe(var_f64(self, dim, correction, keepdim, "std"), self,
                       [](const Tensor& v) { return ops::unary("vt::sqrt", v); }, 0.0);
  return ops::to_dtype(s, self.dtype());
}

Tensor norm_any(const Tensor& self, std::optional<Scalar> p_s, OptionalIntArrayRef dim, bool keepdim) {
  VT_CHECK(is_floating(self.dtype()), "linalg.vector_norm: Expected a floating point tensor as input. Got ",
           dtype_name(self.dtype()));
  double p = p_s ? p_s->to_double() : 2.0;  // None is the 2-norm, as aten::norm.ScalarOpt_dim reads it
  auto mask = reduced_mask(self, dim, "norm", /*in_order=*/true);
  int64_t count = 1;
  for (int64_t d = 0; d < self.dim(); ++d)
    if (mask[size_t(d)]) count *= self.size(d);
  // The 2-norm of a whole dense float32 (or 16-bit) CPU tensor outside autograd (what gradient clipping asks of
  // every parameter's gradient): one pass of cpu_math's double-accumulated dot, instead of abs, a float64 copy,
  // a square and a sum (10x torch's time); 16-bit values through float32 buffers.
  const bool every_dim = std::all_of(mask.begin(), mask.begin() + self.dim(), [](bool m) { return m; });
  const ScalarType st = self.dtype();
  if (p == 2 && every_dim && count > 1 && self.device().is_cpu() &&
      (st == ScalarType::Float32 || st == ScalarType::Float16 || st == ScalarType::BFloat16) && self.is_contiguous() &&
      !recording(self)) {
    const int64_t n = self.numel(), chunks = std::clamp<int64_t>(n / 65536, 1, 64);  // depends on n alone
    std::array<double, 64> part{};  // no allocation per call (clipping calls this once per parameter)
    auto squares = [](const auto* d, int64_t b, int64_t e) {  // sum of d[b..e)^2 in double
      return cpu::fold_floats(d + b, e - b, [](const float* f, int64_t m) { return cpu_math::dot(f, f, m); });
    };
    parallel_for(0, chunks, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t c = lo; c < hi; ++c) {
        const int64_t b = n * c / chunks, e = n * (c + 1) / chunks;
        part[size_t(c)] = st == ScalarType::Float32 ? squares(self.data<float>(), b, e)
                          : st == ScalarType::Float16 ? squares(self.data<Half>(), b, e)
                                                      : squares(self.data<BFloat16>(), b, e);
      }
    });
    double ss = 0.0;
    for (int64_t c = 0; c < chunks; ++c) ss += part[size_t(c)];  // in chunk order: the same on any thread count
    Tensor r = scalar_to_tensor(Scalar(std::sqrt(ss)), st);
    r.impl()->set_wrapped_number(false);
    return keepdim ? ops::reshape(r, DimVector(size_t(self.dim()), 1)) : r;
  }
  // One lifted sum on CUDA (cuda/moments.cu) for the orders with no rule of their own below; under autograd only
  // the 2-norm, whose gradient has a formula (LinalgVectorNormBackward0 in autograd/formulas_reduce.cpp).
  if (self.device().is_cuda() && count > 1 && p != 0 && !std::isinf(p) && (p == 2 || !recording(self))) {
    static const TypedOp<Tensor(const Tensor&, double, OptionalIntArrayRef, bool)> pnorm("vt::_pnorm");
    return pnorm(self, p, dim, keepdim);
  }
  Tensor a = ops::unary("vt::abs", self);
  // The norm of one element is its absolute value for every p but 0, as torch returns it: computed as a power
  // and a root it would overflow or underflow for a large |p| (0.377 to the 2**31 - 1 is 0 even in float64).
  if (count == 1 && p != 0) return ops::amax(a, dim, keepdim);
  // No elements: 0 for every finite order but a negative one, a NaN order included (torch's identity; the
  // power and root below would make 0 ** (1 / NaN) = NaN). The inf norms have no identity: amax raises below.
  // Order 0 counts nonzeros below, which has no gradient (torch leaves the input's grad None) also when empty.
  if (count == 0 && p != 0 && !(p < 0) && !std::isinf(p)) return ops::sum(a, dim, keepdim, std::nullopt);
  if (std::isinf(p)) return p > 0 ? ops::amax(a, dim, keepdim) : ops::amin(a, dim, keepdim);
  if (p == 0) return ops::sum(ops::to_dtype(ops::binary("vt::ne", a, scalar_to_tensor(Scalar(0.0), ScalarType::Float64)),
                                            self.dtype()), dim, keepdim, std::nullopt);
  Tensor x = ops::to_dtype(a, ScalarType::Float64);
  Tensor r;
  auto power = [&](double e) {
    return [e](const Tensor& t) { return ops::binary("vt::pow", t, scalar_to_tensor(Scalar(e), ScalarType::Float64)); };
  };
  if (p == 1) r = ops::sum(x, dim, keepdim, std::nullopt);
  else if (p == 2) {
    r = zero_safe(ops::sum(ops::mul(x, x), dim, keepdim, std::nullopt), self,
                  [](const Tensor& t) { return ops::unary("vt::sqrt", t); }, 0.0);
  } else {  // Note [Zero-safe roots]: |x|^p also has an infinite derivative at 0 when p < 1
    Tensor s = ops::sum(zero_safe(x, self, power(p), std::pow(0.0, p)), dim, keepdim, std::nullopt);
    r = zero_safe(s, self, power(1.0 / p), std::pow(0.0, 1.0 / p));
  }
  return ops::to_dtype(r, self.dtype());
}

// logsumexp over the last dim of a dense float32 (or 16-bit, through a float32 row buffer) CPU tensor: per row,
// the softmax lanes' max and sum of exp(x - max) (a shift of 0 where the max is infinite, as below), in one
// parallel pass instead of five ops (2x torch).
template <typename T> void logsumexp_rows_of(const Tensor& self, const Tensor& out) {
  const int64_t n = self.size(-1), rows = self.numel() / n;
  const T* x = self.data<T>();
  T* y = out.data<T>();
  parallel_for(0, rows, std::max<int64_t>(1, kDefaultGrain / n), [&](int64_t lo, int64_t hi) {
    std::vector<float> scratch = cpu::row_scratch<T>(1, n);  // Note [16-bit rows in float]
    for (int64_t r = lo; r < hi; ++r) {
      const float* row = cpu::float_row(x + r * n, n, scratch.data());
      const float m = cpu_math::row_max(row, n, 1.0f);  // skips NaN, which then makes the sum NaN
      const float shift = std::isinf(m) ? 0.0f : m;
      y[r] = T(std::log(cpu_math::sum_exp(row, n, 1.0f, shift)) + shift);
    }
  });
}
Tensor logsumexp_rows(const Tensor& self, bool keepdim) {
  DimVector shape;
  for (int64_t d = 0; d + 1 < self.dim(); ++d) shape.push_back(self.size(d));
  if (keepdim) shape.push_back(1);
  Tensor out = ops::empty(shape, self.dtype(), self.device());
  switch (self.dtype()) {
    case ScalarType::Float16: logsumexp_rows_of<Half>(self, out); break;
    case ScalarType::BFloat16: logsumexp_rows_of<BFloat16>(self, out); break;
    default: logsumexp_rows_of<float>(self, out);
  }
  return out;
}

Tensor logsumexp_any(const Tensor& self_in, IntArrayRef dim, bool keepdim) {
  Tensor self = is_floating(self_in.dtype()) ? self_in : ops::to_dtype(self_in, ScalarType::Float32);
  const ScalarType st = self.dtype();
  if (self.device().is_cpu() && (st == ScalarType::Float32 || st == ScalarType::Float16 || st == ScalarType::BFloat16) &&
      self.dim() >= 1 && self.numel() > 0 &&
      self.size(-1) > 0 && dim.size() == 1 && wrap_dim(dim[0], self.dim()) == self.dim() - 1 && self.is_contiguous())
    return logsumexp_rows(self, keepdim);
  if (self.numel() == 0) return ops::unary("vt::log", ops::sum(ops::unary("vt::exp", self), dim, keepdim, std::nullopt));
  Tensor m;
  {
    // The shift cancels in the result, so it is a constant for the gradient and records no history.
    autograd::GradModeGuard no_grad(false);
    m = ops::amax(self, dim, true);
    // Infinite maxima would give inf - inf = nan; shift by 0 there instead.
    Tensor zero = scalar_to_tensor(Scalar(0.0), ScalarType::Float64);
    m = ops::where(ops::unary("vt::isinf", m), zero, m);
  }
  Tensor s = ops::sum(ops::unary("vt::exp", ops::sub(self, m)), dim, keepdim, std::nullopt);  // m: no history
  Tensor mm = keepdim ? m : ops::squeeze(m, dim.empty() ? OptionalIntArrayRef() : OptionalIntArrayRef(dim));
  if (!keepdim && dim.empty()) mm = ops::reshape(m, DimVector{});
  return ops::add(ops::unary("vt::log", s), mm);
}

}  // namespace

VT_LIBRARY(vt, reduce) {
  m.def("sum(Tensor self, int[]? dim=None, bool keepdim=False, *, ScalarType? dtype=None) -> Tensor");
  m.def("prod(Tensor self, int[]? dim=None, bool keepdim=False, *, ScalarType? dtype=None) -> Tensor");
  m.def("mean(Tensor self, int[]? dim=None, bool keepdim=False, *, ScalarType? dtype=None) -> Tensor");
  m.def("amax(Tensor self, int[]? dim=None, bool keepdim=False) -> Tensor");
  m.def("amin(Tensor self, int[]? dim=None, bool keepdim=False) -> Tensor");
  m.def("max(Tensor self) -> Tensor");
  m.def("min(Tensor self) -> Tensor");
  m.def("max_dim(Tensor self, int dim, bool keepdim=False) -> (Tensor, Tensor)");
  m.def("min_dim(Tensor self, int dim, bool keepdim=False) -> (Tensor, Tensor)");
  m.def("argmax(Tensor self, int? dim=None, bool keepdim=False) -> Tensor");
  m.def("argmin(Tensor self, int? dim=None, bool keepdim=False) -> Tensor");
  m.def("all(Tensor self, int[]? dim=None, bool keepdim=False) -> Tensor");
  m.def("any(Tensor self, int[]? dim=None, bool keepdim=False) -> Tensor");
  m.def("cumsum(Tensor self, int dim, *, ScalarType? dtype=None) -> Tensor");
  m.def("cumprod(Tensor self, int dim, *, ScalarType? dtype=None) -> Tensor");
  m.def("var(Tensor self, int[]? dim=None, *, Scalar? correction=None, bool keepdim=False) -> Tensor", OpKind::Composite);
  m.def("std(Tensor self, int[]? dim=None, *, Scalar? correction=None, bool keepdim=False) -> Tensor", OpKind::Composite);
  m.def("norm(Tensor self, Scalar? p=2, int[]? dim=None, bool keepdim=False) -> Tensor", OpKind::Composite);
  // CUDA kernels of var/std and norm outside autograd (cuda/moments.cu); the CPU runs the compositions.
  m.def("_var_welford(Tensor self, int[]? dim, float correction, bool keepdim, bool root) -> Tensor");
  m.def("_pnorm(Tensor self, float p, int[]? dim, bool keepdim) -> Tensor");
  // Its gradient is torch's formula (LogsumexpBackward0 in autograd/formulas_reduce.cpp), not the composite's.
  m.def("logsumexp(Tensor self, int[] dim, bool keepdim=False) -> Tensor");
  reduce::register_reduce<cpu::CpuReduce>(m, DispatchKey::CPU);
  m.impl_any("mean", &mean_any);
  m.impl_any("var", &var_any);
  m.impl_any("std", &std_any);
  m.impl_any("norm", &norm_any);
  m.impl_any("logsumexp", &logsumexp_any);
}

namespace ops {
Tensor sum(const Tensor& self, OptionalIntArrayRef dim, bool keepdim, OptDtype dtype) {
  static const TypedOp<Tensor(const Tensor&, OptionalIntArrayRef, bool, OptDtype)> op("vt::sum");
  return op(self, dim, keepdim, dtype);
}
Tensor mean(const Tensor& self, OptionalIntArrayRef dim, bool keepdim, OptDtype dtype) {
  static const TypedOp<Tensor(const Tensor&, OptionalIntArrayRef, bool, OptDtype)> op("vt::mean");
  return op(self, dim, keepdim, dtype);
}
Tensor amax(const Tensor& self, OptionalIntArrayRef dim, bool keepdim) {
  static const TypedOp<Tensor(const Tensor&, OptionalIntArrayRef, bool)> op("vt::amax");
  return op(self, dim, keepdim);
}
Tensor amin(const Tensor& self, OptionalIntArrayRef dim, bool keepdim) {
  static const TypedOp<Tensor(const Tensor&, OptionalIntArrayRef, bool)> op("vt::amin");
  return op(self, dim, keepdim);
}
}  // namespace ops

}  // namespace vt
