// Reductions on the CPU. sum/prod/mean/amax/amin/all/any reduce any set of dims through a reduction
// TensorIterator (the output has stride 0 on reduced dims, and accumulates in a wide type: float64 for
// floating inputs, int64 for integers); max/min/argmax/argmin over one dim and cumsum/cumprod use lane loops;
// var/std/norm/logsumexp are compositions of these.
#include <cmath>
#include <algorithm>
#include <limits>
#include <mutex>

#include "vt/core/parallel.h"

#include "cpu_loops.h"
#include "lanes.h"
#include "vt/core/dispatcher.h"
#include "vt/core/ops.h"

namespace vt {
namespace {

// Which dims are reduced: all when `dim` is absent or empty (torch treats sum(dim=[]) as a full reduction).
std::vector<bool> reduced_mask(const Tensor& self, OptionalIntArrayRef dim, const char* name) {
  int64_t nd = self.dim();
  std::vector<bool> mask(size_t(std::max<int64_t>(nd, 1)), dim.has_value() && !dim->empty() ? false : true);
  if (dim && !dim->empty()) {
    for (int64_t d : *dim) {
      int64_t w = wrap_dim(d, nd);
      VT_CHECK(!mask[size_t(w)], name, ": dim ", w, " appears multiple times in the list of dims");
      mask[size_t(w)] = true;
    }
  }
  return mask;
}

DimVector keepdim_shape(const Tensor& self, const std::vector<bool>& mask) {
  DimVector s(self.sizes());
  for (int64_t d = 0; d < self.dim(); ++d)
    if (mask[size_t(d)]) s[size_t(d)] = 1;
  return s;
}

Tensor finish(const Tensor& acc, const Tensor& self, const std::vector<bool>& mask, bool keepdim, ScalarType out) {
  DimVector s;
  for (int64_t d = 0; d < self.dim(); ++d)
    if (keepdim || !mask[size_t(d)]) s.push_back(keepdim && mask[size_t(d)] ? 1 : self.size(d));
  if (acc.numel() == 1) {  // full reductions: convert the one value directly, no dispatched cast
    Tensor r = cast_scalar(ops::view(acc, DimVector{}), out);
    r.impl()->set_wrapped_number(false);
    return s.empty() ? r : ops::view(r, s);
  }
  Tensor r = acc.dtype() == out ? acc : ops::to_dtype(acc, out);
  return (keepdim || self.dim() == 0) ? r : ops::view(r, s);
}

// Folds a contiguous run of n elements with four independent accumulators (which breaks the add latency
// chain) and combines them at the end; `combine` is associative for every reduction here.
template <typename AccT, typename scalar_t, typename Combine>
AccT fold_run(const scalar_t* p, int64_t n, AccT init, Combine combine) {
  AccT a[4] = {init, init, init, init};
  int64_t k = 0;
  for (; k + 4 <= n; k += 4)
    for (int l = 0; l < 4; ++l) a[l] = combine(a[l], AccT(opmath_t<scalar_t>(p[k + l])));
  for (; k < n; ++k) a[0] = combine(a[0], AccT(opmath_t<scalar_t>(p[k])));
  return combine(combine(a[0], a[1]), combine(a[2], a[3]));
}

// Full reduction of a contiguous tensor, in parallel chunks whose partial results combine in chunk order.
template <typename AccT, typename Combine>
AccT fold_contiguous(const Tensor& self, AccT init, Combine combine) {
  return VT_DISPATCH_ALL(self.dtype(), "reduce", [&]() -> AccT {
    const scalar_t* p = self.data<scalar_t>();
    int64_t n = self.numel();
    std::vector<std::pair<int64_t, AccT>> parts;
    std::mutex mu;
    parallel_for(0, n, kDefaultGrain, [&](int64_t b, int64_t e) {
      AccT r = fold_run<AccT>(p + b, e - b, init, combine);
      std::lock_guard<std::mutex> g(mu);
      parts.emplace_back(b, r);
    });
    std::sort(parts.begin(), parts.end(), [](auto& x, auto& y) { return x.first < y.first; });
    AccT r = init;
    for (auto& [b, v] : parts) r = combine(r, v);
    return r;
  });
}

// Folds `self` into an accumulator of dtype acc_dtype: acc = combine(acc, x) starting from `init`.
template <typename AccT, typename Combine>
Tensor fold(const Tensor& self, const std::vector<bool>& mask, ScalarType acc_dtype, AccT init, Combine combine) {
  Tensor acc = empty_tensor(keepdim_shape(self, mask), acc_dtype, kCPU);
  if (acc.numel() == 1 && self.is_contiguous() && self.device().is_cpu()) {
    *acc.data<AccT>() = fold_contiguous<AccT>(self, init, combine);
    return acc;
  }
  std::fill(acc.data<AccT>(), acc.data<AccT>() + acc.numel(), init);
  TensorIterator it = TensorIteratorConfig()
                          .add_output(acc)
                          .add_input(self)
                          .is_reduction(true)
                          .check_all_same_dtype(false)
                          .enforce_safe_casting_to_output(false)
                          .cast_inputs(false)
                          .common_dtype(self.dtype())
                          .check_mem_overlap(false)
                          .name("reduce")
                          .build();
  VT_DISPATCH_ALL(self.dtype(), "reduce", [&] {
    it.reduce_for_each([&](char** data, const int64_t* s, int64_t n0, int64_t n1) {
      for (int64_t j = 0; j < n1; ++j) {
        char* out = data[0] + j * s[2];
        const char* in = data[1] + j * s[3];
        if (s[0] == 0) {  // reducing along the inner dim: keep the accumulator in a register
          AccT a = *reinterpret_cast<AccT*>(out);
          for (int64_t k = 0; k < n0; ++k)
            a = combine(a, AccT(opmath_t<scalar_t>(*reinterpret_cast<const scalar_t*>(in + k * s[1]))));
          *reinterpret_cast<AccT*>(out) = a;
        } else {
          for (int64_t k = 0; k < n0; ++k) {
            AccT& o = *reinterpret_cast<AccT*>(out + k * s[0]);
            o = combine(o, AccT(opmath_t<scalar_t>(*reinterpret_cast<const scalar_t*>(in + k * s[1]))));
          }
        }
      }
    });
  });
  return acc;
}

ScalarType sum_dtype(const Tensor& self, std::optional<ScalarType> dtype) {
  if (dtype) return *dtype;
  return is_floating(self.dtype()) ? self.dtype() : ScalarType::Int64;
}

template <typename Combine>
Tensor arith_reduce(const Tensor& self_in, OptionalIntArrayRef dim, bool keepdim, std::optional<ScalarType> dtype,
                    const char* name, double finit, int64_t iinit, Combine combine) {
  ScalarType out = sum_dtype(self_in, dtype);
  Tensor self = dtype && self_in.dtype() != *dtype ? ops::to_dtype(self_in, *dtype) : self_in;
  auto mask = reduced_mask(self, dim, name);
  Tensor acc = is_floating(out) ? fold<double>(self, mask, ScalarType::Float64, finit, combine)
                                : fold<int64_t>(self, mask, ScalarType::Int64, iinit, combine);
  return finish(acc, self, mask, keepdim, out);
}

Tensor sum_cpu(const Tensor& self, OptionalIntArrayRef dim, bool keepdim, std::optional<ScalarType> dtype) {
  return arith_reduce(self, dim, keepdim, dtype, "sum", 0.0, 0, [](auto a, auto b) { return a + b; });
}
Tensor prod_cpu(const Tensor& self, OptionalIntArrayRef dim, bool keepdim, std::optional<ScalarType> dtype) {
  return arith_reduce(self, dim, keepdim, dtype, "prod", 1.0, 1, [](auto a, auto b) { return a * b; });
}
Tensor mean_any(const Tensor& self, OptionalIntArrayRef dim, bool keepdim, std::optional<ScalarType> dtype) {
  ScalarType t = dtype.value_or(self.dtype());
  VT_CHECK(is_floating(t), "mean(): could not infer output dtype. Input dtype must be either a floating point or "
           "complex dtype. Got: ", dtype_name(t));
  auto mask = reduced_mask(self, dim, "mean");
  int64_t count = 1;
  for (int64_t d = 0; d < self.dim(); ++d)
    if (mask[size_t(d)]) count *= self.size(d);
  // Sum and divide in float64 (the sum of a 16-bit tensor may overflow its dtype), then round once.
  Tensor s = ops::sum(self, dim, keepdim, ScalarType::Float64);
  Tensor m = ops::div(s, scalar_to_tensor(Scalar(double(count)), ScalarType::Float64));
  return t == ScalarType::Float64 ? m : ops::to_dtype(m, t);
}

template <bool IsMax>
Tensor minmax_reduce(const Tensor& self, OptionalIntArrayRef dim, bool keepdim, const char* name) {
  auto mask = reduced_mask(self, dim, name);
  for (int64_t d = 0; d < self.dim(); ++d)
    VT_CHECK_INDEX(!(dim && !dim->empty() && mask[size_t(d)] && self.size(d) == 0), name,
                   "(): Expected reduction dim ", d, " to have non-zero size.");
  VT_CHECK(self.numel() > 0 || (dim && !dim->empty()), name,
           "(): Expected reduction dim to be specified for input.numel() == 0. Specify the reduction dim with the "
           "'dim' argument.");
  VT_CHECK(self.numel() > 0 || self.dim() > 0, name, "(): Expected reduction dim to be specified for input.numel() == 0.");
  auto pick = [](auto a, auto b) {
    using T = decltype(a);
    if constexpr (std::is_floating_point_v<T>) {
      if (std::isnan(a)) return a;
      if (std::isnan(b)) return b;
    }
    return IsMax ? (a >= b ? a : b) : (a <= b ? a : b);
  };
  Tensor acc;
  if (is_floating(self.dtype())) {
    double init = IsMax ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
    acc = fold<double>(self, mask, ScalarType::Float64, init, pick);
  } else {
    int64_t init = IsMax ? std::numeric_limits<int64_t>::min() : std::numeric_limits<int64_t>::max();
    acc = fold<int64_t>(self, mask, ScalarType::Int64, init, pick);
  }
  return finish(acc, self, mask, keepdim, self.dtype());
}
Tensor amax_cpu(const Tensor& self, OptionalIntArrayRef dim, bool keepdim) {
  return minmax_reduce<true>(self, dim, keepdim, "amax");
}
Tensor amin_cpu(const Tensor& self, OptionalIntArrayRef dim, bool keepdim) {
  return minmax_reduce<false>(self, dim, keepdim, "amin");
}
Tensor max_all(const Tensor& self) {
  VT_CHECK(self.numel() > 0, "max(): Expected reduction dim to be specified for input.numel() == 0. Specify the "
           "reduction dim with the 'dim' argument.");
  return minmax_reduce<true>(self, std::nullopt, false, "max");
}
Tensor min_all(const Tensor& self) {
  VT_CHECK(self.numel() > 0, "min(): Expected reduction dim to be specified for input.numel() == 0. Specify the "
           "reduction dim with the 'dim' argument.");
  return minmax_reduce<false>(self, std::nullopt, false, "min");
}

template <bool IsAll>
Tensor logical_reduce(const Tensor& self_in, OptionalIntArrayRef dim, bool keepdim) {
  // Truthiness first: folding 0.5 into an integer accumulator would read it as 0.
  Tensor self = self_in.dtype() == ScalarType::Bool
                    ? self_in
                    : ops::binary("vt::ne", self_in, scalar_to_tensor(Scalar(int64_t(0)), ScalarType::Int64));
  auto mask = reduced_mask(self, dim, IsAll ? "all" : "any");
  Tensor acc = fold<int64_t>(self, mask, ScalarType::Int64, IsAll ? 1 : 0, [](int64_t a, int64_t b) -> int64_t {
    return IsAll ? (a && b) : (a || b);
  });
  // torch keeps uint8 for uint8 inputs (a legacy of byte masks); bool otherwise.
  return finish(acc, self, mask, keepdim, self_in.dtype() == ScalarType::UInt8 ? ScalarType::UInt8 : ScalarType::Bool);
}
Tensor all_cpu(const Tensor& self, OptionalIntArrayRef dim, bool keepdim) { return logical_reduce<true>(self, dim, keepdim); }
Tensor any_cpu(const Tensor& self, OptionalIntArrayRef dim, bool keepdim) { return logical_reduce<false>(self, dim, keepdim); }

// ---- max/min/argmax/argmin over one dim: lanes ----
template <bool IsMax>
std::tuple<Tensor, Tensor> minmax_dim(const Tensor& self_in, int64_t dim, bool keepdim, const char* name) {
  Tensor self = self_in.dim() == 0 ? ops::view(self_in, DimVector{1}) : self_in;
  dim = wrap_dim(dim, self_in.dim());
  int64_t n = self.size(dim);
  VT_CHECK_INDEX(n > 0, name, "(): Expected reduction dim ", dim, " to have non-zero size.");
  DimVector kshape(self.sizes());
  kshape[size_t(dim)] = 1;
  Tensor values = empty_tensor(kshape, self.dtype(), kCPU);
  Tensor indices = empty_tensor(kshape, ScalarType::Int64, kCPU);
  VT_DISPATCH_ALL(self.dtype(), name, [&] {
    using M = opmath_t<scalar_t>;
    cpu::lane_apply({values, indices, self}, 2, dim, n, [](char** p, const int64_t* st, int64_t len) {
      M best = M(*reinterpret_cast<const scalar_t*>(p[2]));
      int64_t bi = 0;
      for (int64_t k = 1; k < len; ++k) {
        M v = M(*reinterpret_cast<const scalar_t*>(p[2] + k * st[2]));
        if constexpr (std::is_floating_point_v<M>) {
          if (std::isnan(best)) break;
          if (std::isnan(v)) { best = v; bi = k; break; }
        }
        if (IsMax ? v > best : v < best) best = v, bi = k;
      }
      *reinterpret_cast<scalar_t*>(p[0]) = scalar_t(best);
      *reinterpret_cast<int64_t*>(p[1]) = bi;
    });
  });
  if (!keepdim || self_in.dim() == 0) {
    DimVector s(self_in.sizes());
    if (self_in.dim() > 0) s.erase(size_t(dim));
    values = ops::view(values, s);
    indices = ops::view(indices, s);
  }
  return {values, indices};
}
std::tuple<Tensor, Tensor> max_dim_cpu(const Tensor& self, int64_t dim, bool keepdim) {
  return minmax_dim<true>(self, dim, keepdim, "max");
}
std::tuple<Tensor, Tensor> min_dim_cpu(const Tensor& self, int64_t dim, bool keepdim) {
  return minmax_dim<false>(self, dim, keepdim, "min");
}
template <bool IsMax>
Tensor arg_extreme(const Tensor& self, std::optional<int64_t> dim, bool keepdim) {
  const char* name = IsMax ? "argmax" : "argmin";
  VT_CHECK(self.dtype() != ScalarType::Bool, name, "(): does not support bool input");
  if (!dim) {
    VT_CHECK_INDEX(self.numel() > 0, name, "(): Expected reduction dim to be specified for input.numel() == 0.");
    Tensor flat = ops::reshape(self, DimVector{-1});
    Tensor idx = std::get<1>(minmax_dim<IsMax>(flat, 0, false, name));
    if (keepdim) return ops::reshape(idx, DimVector(size_t(self.dim()), 1));
    return idx;
  }
  return std::get<1>(minmax_dim<IsMax>(self, *dim, keepdim, name));
}
Tensor argmax_cpu(const Tensor& self, std::optional<int64_t> dim, bool keepdim) { return arg_extreme<true>(self, dim, keepdim); }
Tensor argmin_cpu(const Tensor& self, std::optional<int64_t> dim, bool keepdim) { return arg_extreme<false>(self, dim, keepdim); }

// ---- cumulative ops ----
template <bool IsSum>
Tensor cumulative(const Tensor& self_in, int64_t dim, std::optional<ScalarType> dtype) {
  ScalarType out_t = sum_dtype(self_in, dtype);
  Tensor self = self_in.dtype() != out_t ? ops::to_dtype(self_in, out_t) : self_in;
  dim = wrap_dim(dim, self.dim());
  Tensor out = empty_tensor(self.sizes(), out_t, kCPU);
  if (self.dim() == 0) return ops::copy_(out, self);
  int64_t n = self.size(dim);
  if (out.numel() == 0) return out;
  VT_DISPATCH_NUMERIC(out_t, IsSum ? "cumsum" : "cumprod", [&] {
    using A = std::conditional_t<std::is_floating_point_v<opmath_t<scalar_t>>, double, int64_t>;
    cpu::lane_apply({out, self}, 1, dim, n, [](char** p, const int64_t* st, int64_t len) {
      A acc = IsSum ? A(0) : A(1);
      for (int64_t k = 0; k < len; ++k) {
        A v = A(opmath_t<scalar_t>(*reinterpret_cast<const scalar_t*>(p[1] + k * st[1])));
        acc = IsSum ? acc + v : acc * v;
        *reinterpret_cast<scalar_t*>(p[0] + k * st[0]) = scalar_t(opmath_t<scalar_t>(acc));
      }
    });
  });
  return out;
}
Tensor cumsum_cpu(const Tensor& self, int64_t dim, std::optional<ScalarType> dtype) { return cumulative<true>(self, dim, dtype); }
Tensor cumprod_cpu(const Tensor& self, int64_t dim, std::optional<ScalarType> dtype) { return cumulative<false>(self, dim, dtype); }

// ---- compositions ----
Tensor var_any(const Tensor& self, OptionalIntArrayRef dim, std::optional<Scalar> correction, bool keepdim) {
  VT_CHECK(is_floating(self.dtype()), "var(): input dtype should be floating point, got ", dtype_name(self.dtype()));
  auto mask = reduced_mask(self, dim, "var");
  int64_t count = 1;
  for (int64_t d = 0; d < self.dim(); ++d)
    if (mask[size_t(d)]) count *= self.size(d);
  double corr = correction ? correction->to_double() : 1.0;
  // Two passes in float64: subtracting the mean first keeps the sum of squares well conditioned.
  Tensor x = ops::to_dtype(self, ScalarType::Float64);
  Tensor mu = ops::mean(x, dim, true, std::nullopt);
  Tensor d = ops::sub(x, mu);
  Tensor ss = ops::sum(ops::mul(d, d), dim, keepdim, std::nullopt);
  double denom = std::max(double(count) - corr, 0.0);
  Tensor v = ops::div(ss, scalar_to_tensor(Scalar(denom), ScalarType::Float64));
  return ops::to_dtype(v, self.dtype());
}
Tensor std_any(const Tensor& self, OptionalIntArrayRef dim, std::optional<Scalar> correction, bool keepdim) {
  return ops::unary("vt::sqrt", var_any(self, dim, correction, keepdim));
}

Tensor norm_any(const Tensor& self, const Scalar& p_s, OptionalIntArrayRef dim, bool keepdim) {
  VT_CHECK(is_floating(self.dtype()), "linalg.vector_norm: Expected a floating point tensor as input. Got ",
           dtype_name(self.dtype()));
  double p = p_s.to_double();
  Tensor a = ops::unary("vt::abs", self);
  if (std::isinf(p)) return p > 0 ? ops::amax(a, dim, keepdim) : ops::amin(a, dim, keepdim);
  if (p == 0) return ops::sum(ops::to_dtype(ops::binary("vt::ne", a, scalar_to_tensor(Scalar(0.0), ScalarType::Float64)),
                                            self.dtype()), dim, keepdim, std::nullopt);
  Tensor x = ops::to_dtype(a, ScalarType::Float64);
  Tensor r;
  if (p == 1) r = ops::sum(x, dim, keepdim, std::nullopt);
  else if (p == 2) r = ops::unary("vt::sqrt", ops::sum(ops::mul(x, x), dim, keepdim, std::nullopt));
  else {
    Tensor s = ops::sum(ops::binary("vt::pow", x, scalar_to_tensor(Scalar(p), ScalarType::Float64)), dim, keepdim, std::nullopt);
    r = ops::binary("vt::pow", s, scalar_to_tensor(Scalar(1.0 / p), ScalarType::Float64));
  }
  return ops::to_dtype(r, self.dtype());
}

Tensor logsumexp_any(const Tensor& self_in, IntArrayRef dim, bool keepdim) {
  Tensor self = is_floating(self_in.dtype()) ? self_in : ops::to_dtype(self_in, ScalarType::Float32);
  if (self.numel() == 0) return ops::unary("vt::log", ops::sum(ops::unary("vt::exp", self), dim, keepdim, std::nullopt));
  Tensor m = ops::amax(self, dim, true);
  // Infinite maxima would give inf - inf = nan; shift by 0 there instead.
  Tensor zero = scalar_to_tensor(Scalar(0.0), ScalarType::Float64);
  m = ops::where(ops::unary("vt::isinf", m), zero, m);
  Tensor s = ops::sum(ops::unary("vt::exp", ops::sub(self, m)), dim, keepdim, std::nullopt);
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
  m.def("var(Tensor self, int[]? dim=None, *, Scalar? correction=None, bool keepdim=False) -> Tensor");
  m.def("std(Tensor self, int[]? dim=None, *, Scalar? correction=None, bool keepdim=False) -> Tensor");
  m.def("norm(Tensor self, Scalar p=2, int[]? dim=None, bool keepdim=False) -> Tensor");
  m.def("logsumexp(Tensor self, int[] dim, bool keepdim=False) -> Tensor");
  m.impl("sum", DispatchKey::CPU, &sum_cpu);
  m.impl("prod", DispatchKey::CPU, &prod_cpu);
  m.impl_any("mean", &mean_any);
  m.impl("amax", DispatchKey::CPU, &amax_cpu);
  m.impl("amin", DispatchKey::CPU, &amin_cpu);
  m.impl("max", DispatchKey::CPU, &max_all);
  m.impl("min", DispatchKey::CPU, &min_all);
  m.impl("max_dim", DispatchKey::CPU, &max_dim_cpu);
  m.impl("min_dim", DispatchKey::CPU, &min_dim_cpu);
  m.impl("argmax", DispatchKey::CPU, &argmax_cpu);
  m.impl("argmin", DispatchKey::CPU, &argmin_cpu);
  m.impl("all", DispatchKey::CPU, &all_cpu);
  m.impl("any", DispatchKey::CPU, &any_cpu);
  m.impl("cumsum", DispatchKey::CPU, &cumsum_cpu);
  m.impl("cumprod", DispatchKey::CPU, &cumprod_cpu);
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
