// Unary elementwise ops on the CPU: math functions, rounding, predicates, activations, and the few ternary
// ones (where, clamp, masked_fill). Floating functions promote integer inputs to float32, as torch does.
#include <cmath>

#include "cpu_loops.h"
#include "vt/core/dispatcher.h"
#include "vt/core/ops.h"

namespace vt {
namespace {

enum class Kind {
  Float,     // integer inputs become float32 (exp, sin, sigmoid...)
  FloatOnly, // floating inputs only (silu, mish, logsigmoid), as in torch
  Same,      // result keeps the dtype; bool rejected (neg, abs, relu...)
  Rounding,  // identity on integers (floor, ceil, round, trunc)
  Predicate  // bool result (isnan...)
};

TensorIterator make_iter(const char* name, const Tensor& out, const Tensor& a, Kind kind) {
  TensorIteratorConfig cfg;
  cfg.add_output(out).add_input(a).promote_inputs_to_common_dtype(true).name(name);
  if (kind == Kind::Float) cfg.promote_integer_inputs_to_float(true);
  if (kind == Kind::Predicate) cfg.output_dtype(ScalarType::Bool).enforce_safe_casting_to_output(false);
  return cfg.build();
}

template <typename T> constexpr T kSqrt2 = T(1.41421356237309504880);

#define VT_UNARY_F(Name, expr) \
  struct Name { template <typename T> T operator()(T x) const { return expr; } };
VT_UNARY_F(ExpF, std::exp(x))
VT_UNARY_F(Exp2F, std::exp2(x))
VT_UNARY_F(Expm1F, std::expm1(x))
VT_UNARY_F(LogF, std::log(x))
VT_UNARY_F(Log2F, std::log2(x))
VT_UNARY_F(Log10F, std::log10(x))
VT_UNARY_F(Log1pF, std::log1p(x))
VT_UNARY_F(SqrtF, std::sqrt(x))
VT_UNARY_F(RsqrtF, T(1) / std::sqrt(x))
VT_UNARY_F(SinF, std::sin(x))
VT_UNARY_F(CosF, std::cos(x))
VT_UNARY_F(TanF, std::tan(x))
VT_UNARY_F(AsinF, std::asin(x))
VT_UNARY_F(AcosF, std::acos(x))
VT_UNARY_F(AtanF, std::atan(x))
VT_UNARY_F(SinhF, std::sinh(x))
VT_UNARY_F(CoshF, std::cosh(x))
VT_UNARY_F(TanhF, std::tanh(x))
VT_UNARY_F(ErfF, std::erf(x))
VT_UNARY_F(ErfcF, std::erfc(x))
VT_UNARY_F(ReciprocalF, T(1) / x)
VT_UNARY_F(SigmoidF, T(1) / (T(1) + std::exp(-x)))
VT_UNARY_F(LogSigmoidF, x < T(0) ? x - std::log1p(std::exp(x)) : -std::log1p(std::exp(-x)))
VT_UNARY_F(SiluF, x / (T(1) + std::exp(-x)))
VT_UNARY_F(MishF, x * std::tanh(x > T(20) ? x : std::log1p(std::exp(x))))
VT_UNARY_F(GeluF, T(0.5) * x * (T(1) + std::erf(x / kSqrt2<T>)))
VT_UNARY_F(GeluTanhF, T(0.5) * x * (T(1) + std::tanh(T(0.7978845608028654) * (x + T(0.044715) * x * x * x))))
VT_UNARY_F(FracF, x - std::trunc(x))
VT_UNARY_F(NegF, T(-x))
VT_UNARY_F(SquareF, T(x * x))
VT_UNARY_F(AbsF, T(x < T(0) ? -x : x))
VT_UNARY_F(SignF, T((T(0) < x) - (x < T(0))))
VT_UNARY_F(ReluF, T(x < T(0) ? T(0) : x))  // written so NaN passes through
#undef VT_UNARY_F
struct FloorF { template <typename T> T operator()(T x) const { if constexpr (std::is_floating_point_v<T>) return std::floor(x); else return x; } };
struct CeilF { template <typename T> T operator()(T x) const { if constexpr (std::is_floating_point_v<T>) return std::ceil(x); else return x; } };
struct TruncF { template <typename T> T operator()(T x) const { if constexpr (std::is_floating_point_v<T>) return std::trunc(x); else return x; } };
struct RoundF { template <typename T> T operator()(T x) const { if constexpr (std::is_floating_point_v<T>) return std::nearbyint(x); else return x; } };
struct IsNanF { template <typename T> bool operator()(T x) const { if constexpr (std::is_floating_point_v<T>) return std::isnan(x); else return false; } };
struct IsInfF { template <typename T> bool operator()(T x) const { if constexpr (std::is_floating_point_v<T>) return std::isinf(x); else return false; } };
struct IsFiniteF { template <typename T> bool operator()(T x) const { if constexpr (std::is_floating_point_v<T>) return std::isfinite(x); else return true; } };
struct LogicalNotF { template <typename T> bool operator()(T x) const { return x == T(0); } };

template <typename F, Kind K>
void run(TensorIterator& it, const char* name) {
  F f;
  ScalarType t = it.common_dtype();
  if constexpr (K == Kind::Predicate) {
    VT_DISPATCH_ALL(t, name, [&] {
      using M = opmath_t<scalar_t>;
      cpu::cpu_kernel(it, [f](scalar_t a) -> bool { return f(M(a)); });
    });
  } else if constexpr (K == Kind::Float || K == Kind::FloatOnly) {
    if constexpr (K == Kind::FloatOnly) {
      VT_CHECK_KIND(NotImplemented, is_floating(it.operand(it.noutputs()).dtype()), "\"", name,
                    "\" not implemented for '", dtype_name(it.operand(it.noutputs()).dtype()), "'");
    }
    VT_DISPATCH_FLOATING(t, name, [&] {
      using M = opmath_t<scalar_t>;
      cpu::cpu_kernel(it, [f](scalar_t a) -> scalar_t { return scalar_t(f(M(a))); });
    });
  } else {
    // torch: sign(bool) is the identity; rounding, abs, neg, relu... reject bool.
    constexpr bool bool_identity = std::is_same_v<F, SignF>;
    VT_CHECK_KIND(NotImplemented, t != ScalarType::Bool || bool_identity, "\"", name, "\" not implemented for 'bool'");
    if (t == ScalarType::Bool) {
      cpu::cpu_kernel(it, [](bool a) -> bool { return a; });
      return;
    }
    VT_DISPATCH_NUMERIC(t, name, [&] {
      using M = opmath_t<scalar_t>;
      cpu::cpu_kernel(it, [f](scalar_t a) -> scalar_t { return scalar_t(f(M(a))); });
    });
  }
}

template <typename F, Kind K, const char* Name>
Tensor functional(const Tensor& a) {
  TensorIterator it = make_iter(Name, Tensor(), a, K);
  run<F, K>(it, Name);
  return it.output();
}
template <typename F, Kind K, const char* Name>
Tensor inplace(const Tensor& self) {
  TensorIterator it = make_iter(Name, self, self, K);
  self.bump_version();
  run<F, K>(it, Name);
  return self;
}

// ---- bitwise_not: integral and bool only ----
Tensor bitwise_not_impl(const Tensor& out, const Tensor& a) {
  VT_CHECK_KIND(NotImplemented, !is_floating(a.dtype()), "\"bitwise_not\" not implemented for '", dtype_name(a.dtype()), "'");
  TensorIterator it = make_iter("bitwise_not", out, a, Kind::Same);
  if (a.dtype() == ScalarType::Bool) {
    cpu::cpu_kernel(it, [](bool x) -> bool { return !x; });
  } else {
    VT_DISPATCH_INTEGRAL(a.dtype(), "bitwise_not", [&] {
      cpu::cpu_kernel(it, [](scalar_t x) -> scalar_t { return scalar_t(~x); });
    });
  }
  return it.output();
}
Tensor bitwise_not_cpu(const Tensor& a) { return bitwise_not_impl(Tensor(), a); }
Tensor bitwise_not_cpu_(const Tensor& a) { a.bump_version(); return bitwise_not_impl(a, a); }

// ---- parameterised activations ----
template <typename G>
Tensor float_map(const char* name, const Tensor& out, const Tensor& a, G g) {
  // torch implements these activations for floating dtypes only.
  VT_CHECK_KIND(NotImplemented, is_floating(a.dtype()), "\"", name, "\" not implemented for '", dtype_name(a.dtype()), "'");
  TensorIterator it = make_iter(name, out, a, Kind::Float);
  if (out.defined()) out.bump_version();
  VT_DISPATCH_FLOATING(it.common_dtype(), name, [&] {
    using M = opmath_t<scalar_t>;
    cpu::cpu_kernel(it, [g](scalar_t x) -> scalar_t { return scalar_t(g(M(x))); });
  });
  return it.output();
}
Tensor gelu_cpu(const Tensor& a, std::string approximate) {
  VT_CHECK(approximate == "none" || approximate == "tanh", "gelu: approximate argument must be either none or tanh, got '",
                 approximate, "'");
  if (approximate == "tanh") return float_map("gelu", Tensor(), a, [](auto x) { return GeluTanhF{}(x); });
  return float_map("gelu", Tensor(), a, [](auto x) { return GeluF{}(x); });
}
Tensor softplus_cpu(const Tensor& a, const Scalar& beta_s, const Scalar& threshold_s) {
  double beta = beta_s.to_double(), threshold = threshold_s.to_double();
  return float_map("softplus", Tensor(), a, [=](auto x) {
    using T = decltype(x);
    T bx = x * T(beta);
    return bx > T(threshold) ? x : T(std::log1p(std::exp(bx)) / T(beta));
  });
}
Tensor leaky_relu_cpu(const Tensor& a, const Scalar& slope_s) {
  double slope = slope_s.to_double();
  return float_map("leaky_relu", Tensor(), a, [=](auto x) { return x > 0 ? x : x * decltype(x)(slope); });
}
Tensor elu_cpu(const Tensor& a, const Scalar& alpha_s) {
  double alpha = alpha_s.to_double();
  return float_map("elu", Tensor(), a, [=](auto x) { return x > 0 ? x : decltype(x)(alpha) * std::expm1(x); });
}
Tensor hardtanh_cpu(const Tensor& a, const Scalar& lo_s, const Scalar& hi_s) {
  double lo = lo_s.to_double(), hi = hi_s.to_double();
  return float_map("hardtanh", Tensor(), a, [=](auto x) {
    using T = decltype(x);
    return x < T(lo) ? T(lo) : x > T(hi) ? T(hi) : x;
  });
}

// ---- clamp ----
Tensor clamp_impl(const Tensor& out, const Tensor& a, const std::optional<Scalar>& lo, const std::optional<Scalar>& hi) {
  VT_CHECK(lo || hi, "torch.clamp: At least one of 'min' or 'max' must not be None");
  // The bounds take part in type promotion like Python numbers: int tensor clamped to 0.5 becomes float.
  ResultTypeState st;
  st.update(a);
  if (lo) st.update(scalar_to_tensor(*lo, lo->natural_dtype()));
  if (hi) st.update(scalar_to_tensor(*hi, hi->natural_dtype()));
  ScalarType t = st.result();
  TensorIterator it = TensorIteratorConfig()
                          .add_output(out)
                          .add_input(a)
                          .common_dtype(t)
                          .name("clamp")
                          .build();
  if (out.defined()) out.bump_version();
  VT_DISPATCH_NUMERIC(t, "clamp", [&] {
    using M = opmath_t<scalar_t>;
    bool has_lo = lo.has_value(), has_hi = hi.has_value();
    M l = has_lo ? lo->to<M>() : M(0), h = has_hi ? hi->to<M>() : M(0);
    cpu::cpu_kernel(it, [=](scalar_t v) -> scalar_t {
      M x = M(v);
      if constexpr (std::is_floating_point_v<M>) {
        if (std::isnan(x)) return v;
      }
      // Negated comparisons: a NaN bound makes the result NaN, as in torch.
      if (has_lo && !(x >= l)) x = l;
      if (has_hi && !(x <= h)) x = h;
      return scalar_t(x);
    });
  });
  return it.output();
}
Tensor clamp_cpu(const Tensor& a, std::optional<Scalar> lo, std::optional<Scalar> hi) {
  return clamp_impl(Tensor(), a, lo, hi);
}
Tensor clamp_cpu_(const Tensor& a, std::optional<Scalar> lo, std::optional<Scalar> hi) {
  return clamp_impl(a, a, lo, hi);
}

// ---- where / masked_fill ----
Tensor where_cpu(const Tensor& cond, const Tensor& a, const Tensor& b) {
  VT_CHECK(cond.dtype() == ScalarType::Bool || cond.dtype() == ScalarType::UInt8,
                "where expected condition to be a boolean tensor, but got a tensor with dtype ",
                dtype_name(cond.dtype()));
  ScalarType t = result_type({a, b});
  for (const Tensor* x : {&a, &b}) {  // a Python number must fit the result dtype
    if (x->impl()->is_wrapped_number() && !is_floating(t)) check_scalar_fits(item_scalar(*x), t);
  }
  Tensor c = cond.dtype() == ScalarType::Bool ? cond : ops::to_dtype(cond, ScalarType::Bool);
  Tensor ac = a.dtype() == t ? a : ops::to_dtype(a, t);
  Tensor bc = b.dtype() == t ? b : ops::to_dtype(b, t);
  TensorIterator it = TensorIteratorConfig()
                          .add_output(Tensor())
                          .add_input(c)
                          .add_input(ac)
                          .add_input(bc)
                          .check_all_same_dtype(false)
                          .cast_inputs(false)
                          .common_dtype(t)
                          .output_dtype(t)
                          .name("where")
                          .build();
  VT_DISPATCH_ALL(t, "where", [&] {
    cpu::cpu_kernel(it, [](bool c, scalar_t x, scalar_t y) -> scalar_t { return c ? x : y; });
  });
  return it.output();
}

Tensor masked_fill_cpu_(const Tensor& self, const Tensor& mask, const Tensor& value) {
  VT_CHECK(mask.dtype() == ScalarType::Bool, "masked_fill_ only supports boolean masks, but got mask with dtype ",
                dtype_name(mask.dtype()));
  VT_CHECK(value.dim() == 0, "masked_fill_ only supports a 0-dimensional value tensor, but got tensor with ",
           value.dim(), " dimension(s).");
  VT_CHECK(DimVector(broadcast_shapes(self.sizes(), mask.sizes())) == DimVector(self.sizes()),
           "masked_fill_: mask of shape ", shape_str(mask.sizes()), " does not broadcast to ", shape_str(self.sizes()));
  self.bump_version();
  TensorIterator it = TensorIteratorConfig()
                          .add_output(self)
                          .add_input(self)
                          .add_input(mask)
                          .check_all_same_dtype(false)
                          .cast_inputs(false)
                          .common_dtype(self.dtype())
                          .output_dtype(self.dtype())
                          .check_mem_overlap(false)
                          .name("masked_fill_")
                          .build();
  VT_DISPATCH_ALL(self.dtype(), "masked_fill_", [&] {
    Tensor vt = ops::to_dtype(value, self.dtype());
    scalar_t v = *vt.data<scalar_t>();
    cpu::cpu_kernel(it, [v](scalar_t x, bool m) -> scalar_t { return m ? v : x; });
  });
  return self;
}

#define VT_NAME(id) constexpr char k_##id[] = #id;
VT_NAME(exp) VT_NAME(exp2) VT_NAME(expm1) VT_NAME(log) VT_NAME(log2) VT_NAME(log10) VT_NAME(log1p) VT_NAME(sqrt)
VT_NAME(rsqrt) VT_NAME(sin) VT_NAME(cos) VT_NAME(tan) VT_NAME(asin) VT_NAME(acos) VT_NAME(atan) VT_NAME(sinh)
VT_NAME(cosh) VT_NAME(tanh) VT_NAME(erf) VT_NAME(erfc) VT_NAME(reciprocal) VT_NAME(sigmoid) VT_NAME(logsigmoid)
VT_NAME(silu) VT_NAME(mish) VT_NAME(frac) VT_NAME(neg) VT_NAME(square) VT_NAME(abs) VT_NAME(sign) VT_NAME(relu)
VT_NAME(floor) VT_NAME(ceil) VT_NAME(trunc) VT_NAME(round) VT_NAME(isnan) VT_NAME(isinf) VT_NAME(isfinite)
VT_NAME(logical_not)
#undef VT_NAME

}  // namespace

VT_LIBRARY(vt, unary) {
#define VT_UNARY(id, F, K)                                                \
  m.def(#id "(Tensor self) -> Tensor");                                 \
  m.impl(#id, DispatchKey::CPU, &functional<F, Kind::K, k_##id>);
#define VT_UNARY_INPLACE(id, F, K)                                        \
  VT_UNARY(id, F, K)                                                      \
  m.def(#id "_(Tensor self) -> Tensor");                                \
  m.impl(#id "_", DispatchKey::CPU, &inplace<F, Kind::K, k_##id>);
  VT_UNARY_INPLACE(exp, ExpF, Float)
  VT_UNARY_INPLACE(exp2, Exp2F, Float)
  VT_UNARY_INPLACE(expm1, Expm1F, Float)
  VT_UNARY_INPLACE(log, LogF, Float)
  VT_UNARY_INPLACE(log2, Log2F, Float)
  VT_UNARY_INPLACE(log10, Log10F, Float)
  VT_UNARY_INPLACE(log1p, Log1pF, Float)
  VT_UNARY_INPLACE(sqrt, SqrtF, Float)
  VT_UNARY_INPLACE(rsqrt, RsqrtF, Float)
  VT_UNARY_INPLACE(sin, SinF, Float)
  VT_UNARY_INPLACE(cos, CosF, Float)
  VT_UNARY_INPLACE(tan, TanF, Float)
  VT_UNARY_INPLACE(asin, AsinF, Float)
  VT_UNARY_INPLACE(acos, AcosF, Float)
  VT_UNARY_INPLACE(atan, AtanF, Float)
  VT_UNARY_INPLACE(sinh, SinhF, Float)
  VT_UNARY_INPLACE(cosh, CoshF, Float)
  VT_UNARY_INPLACE(tanh, TanhF, Float)
  VT_UNARY_INPLACE(erf, ErfF, Float)
  VT_UNARY_INPLACE(erfc, ErfcF, Float)
  VT_UNARY_INPLACE(reciprocal, ReciprocalF, Float)
  VT_UNARY_INPLACE(sigmoid, SigmoidF, Float)
  VT_UNARY(logsigmoid, LogSigmoidF, FloatOnly)
  VT_UNARY_INPLACE(silu, SiluF, FloatOnly)
  VT_UNARY_INPLACE(mish, MishF, FloatOnly)
  VT_UNARY_INPLACE(frac, FracF, FloatOnly)
  VT_UNARY_INPLACE(neg, NegF, Same)
  VT_UNARY_INPLACE(square, SquareF, Same)
  VT_UNARY_INPLACE(abs, AbsF, Same)
  VT_UNARY_INPLACE(sign, SignF, Same)
  VT_UNARY_INPLACE(relu, ReluF, Same)
  VT_UNARY_INPLACE(floor, FloorF, Rounding)
  VT_UNARY_INPLACE(ceil, CeilF, Rounding)
  VT_UNARY_INPLACE(trunc, TruncF, Rounding)
  VT_UNARY_INPLACE(round, RoundF, Rounding)
  VT_UNARY(isnan, IsNanF, Predicate)
  VT_UNARY(isinf, IsInfF, Predicate)
  VT_UNARY(isfinite, IsFiniteF, Predicate)
  VT_UNARY(logical_not, LogicalNotF, Predicate)
#undef VT_UNARY_INPLACE
#undef VT_UNARY
  m.def("bitwise_not(Tensor self) -> Tensor");
  m.def("bitwise_not_(Tensor self) -> Tensor");
  m.impl("bitwise_not", DispatchKey::CPU, &bitwise_not_cpu);
  m.impl("bitwise_not_", DispatchKey::CPU, &bitwise_not_cpu_);
  m.def("gelu(Tensor self, *, str approximate='none') -> Tensor");
  m.def("softplus(Tensor self, Scalar beta=1, Scalar threshold=20) -> Tensor");
  m.def("leaky_relu(Tensor self, Scalar negative_slope=0.01) -> Tensor");
  m.def("elu(Tensor self, Scalar alpha=1) -> Tensor");
  m.def("hardtanh(Tensor self, Scalar min_val=-1, Scalar max_val=1) -> Tensor");
  m.def("clamp(Tensor self, Scalar? min=None, Scalar? max=None) -> Tensor");
  m.def("clamp_(Tensor self, Scalar? min=None, Scalar? max=None) -> Tensor");
  m.def("where(Tensor condition, Tensor self, Tensor other) -> Tensor");
  m.def("masked_fill_(Tensor self, Tensor mask, Tensor value) -> Tensor");
  m.impl("gelu", DispatchKey::CPU, &gelu_cpu);
  m.impl("softplus", DispatchKey::CPU, &softplus_cpu);
  m.impl("leaky_relu", DispatchKey::CPU, &leaky_relu_cpu);
  m.impl("elu", DispatchKey::CPU, &elu_cpu);
  m.impl("hardtanh", DispatchKey::CPU, &hardtanh_cpu);
  m.impl("clamp", DispatchKey::CPU, &clamp_cpu);
  m.impl("clamp_", DispatchKey::CPU, &clamp_cpu_);
  m.impl("where", DispatchKey::CPU, &where_cpu);
  m.impl("masked_fill_", DispatchKey::CPU, &masked_fill_cpu_);
}

namespace ops {
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  static const TypedOp<Tensor(const Tensor&, const Tensor&, const Tensor&)> op("vt::where");
  return op(cond, a, b);
}
}  // namespace ops

}  // namespace vt
