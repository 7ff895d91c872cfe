// Backward formulas of the remaining elementwise ops: unary math, activations with parameters, clamp with number
// or tensor bounds, and binary ops beyond arithmetic (Note [Autograd kernels]). Each follows torch's
// derivatives.yaml, including its choice at the kinks: hardtanh passes no gradient at its bounds, clamp passes
// it at them, maximum/minimum split it evenly between equal inputs. In-place variants use these formulas
// (Note [In-place formulas]).
#include "formula_helpers.h"

namespace vt::autograd {
namespace {
using namespace fx;

Tensor x0(BackwardContext& c) { return c.saved(0); }
double sc(BackwardContext& c, size_t i) { return c.scalar(i).to_double(); }
void grad_times(BackwardContext& c, const Tensor& d) { c.set(0, mul(c.grad(), d)); }
void zero_grads(BackwardContext& c) {
  for (size_t i = 0; i < 2; ++i)
    if (c.needs(i)) c.set(i, zeros(c.input_sizes(i), c.grad()));
}

// ---- unary math ----
void exp2_backward(BackwardContext& c) { grad_times(c, mul(c.result(), num(M_LN2))); }
void expm1_backward(BackwardContext& c) { grad_times(c, add(c.result(), num(1.0))); }
void log2_backward(BackwardContext& c) { c.set(0, div(c.grad(), mul(x0(c), num(M_LN2)))); }
void log10_backward(BackwardContext& c) { c.set(0, div(c.grad(), mul(x0(c), num(M_LN10)))); }
void log1p_backward(BackwardContext& c) { c.set(0, div(c.grad(), add(x0(c), num(1.0)))); }
void sin_backward(BackwardContext& c) { grad_times(c, un("vt::cos", x0(c))); }
void cos_backward(BackwardContext& c) { grad_times(c, neg(un("vt::sin", x0(c)))); }
void tan_backward(BackwardContext& c) {
  Tensor r = c.result();
  grad_times(c, add(num(1.0), mul(r, r)));
}
Tensor one_minus_sq(const Tensor& x) { return sub(num(1.0), mul(x, x)); }
void asin_backward(BackwardContext& c) { c.set(0, div(c.grad(), un("vt::sqrt", one_minus_sq(x0(c))))); }
void acos_backward(BackwardContext& c) { c.set(0, neg(div(c.grad(), un("vt::sqrt", one_minus_sq(x0(c)))))); }
void atan_backward(BackwardContext& c) {
  Tensor x = x0(c);
  c.set(0, div(c.grad(), add(num(1.0), mul(x, x))));
}
void sinh_backward(BackwardContext& c) { grad_times(c, un("vt::cosh", x0(c))); }
void cosh_backward(BackwardContext& c) { grad_times(c, un("vt::sinh", x0(c))); }
Tensor erf_slope(const Tensor& x) { return mul(num(M_2_SQRTPI), un("vt::exp", neg(mul(x, x)))); }
void erf_backward(BackwardContext& c) { grad_times(c, erf_slope(x0(c))); }
void erfc_backward(BackwardContext& c) { grad_times(c, neg(erf_slope(x0(c)))); }
void reciprocal_backward(BackwardContext& c) {
  Tensor r = c.result();
  c.set(0, neg(mul(c.grad(), mul(r, r))));
}
void square_backward(BackwardContext& c) { grad_times(c, mul(x0(c), num(2.0))); }
void frac_backward(BackwardContext& c) { c.set(0, c.grad()); }
// sign, floor, ceil, trunc, round: piecewise constant, zero almost everywhere (torch returns zeros).
void zero_backward(BackwardContext& c) { zero_grads(c); }

// ---- activations ----
// d/dx log(sigmoid(x)) = 1 - sigmoid(x) = sigmoid(-x), which stays accurate for large |x|.
void logsigmoid_backward(BackwardContext& c) { grad_times(c, un("vt::sigmoid", neg(x0(c)))); }
Tensor softplus_op(const Tensor& x, double beta, double threshold) {
  static const TypedOp<Tensor(const Tensor&, const Scalar&, const Scalar&)> op("vt::softplus");
  return op(x, Scalar(beta), Scalar(threshold));
}
// mish(x) = x tanh(softplus(x)): derivative tanh(sp) + x sigmoid(x) (1 - tanh(sp)^2).
void mish_backward(BackwardContext& c) {
  Tensor x = x0(c);
  Tensor t = un("vt::tanh", softplus_op(x, 1.0, 20.0));
  grad_times(c, add(t, mul(mul(x, un("vt::sigmoid", x)), one_minus_sq(t))));
}
// softplus(x) = log(1 + exp(beta x)) / beta, linear above the threshold: derivative sigmoid(beta x) or 1.
// beta x and the threshold test are in float for a 16-bit x, as torch's kernel computes them (Note [Opmath
// scalars]): rounded to 16 bits, beta x past the format's range became -inf and failed a test it passes.
void softplus_backward(BackwardContext& c) {
  Tensor x = x0(c);
  if (x.dtype() == ScalarType::Float16 || x.dtype() == ScalarType::BFloat16)
    x = ops::to_dtype(x, ScalarType::Float32);
  Tensor z = mul(x, num(sc(c, 1)));
  grad_times(c, ops::where(bin("vt::gt", z, num(sc(c, 2))), num(1.0), un("vt::sigmoid", z)));
}
void leaky_relu_backward(BackwardContext& c) {  // (Note [Masks keep the input in the graph])
  Tensor g = c.grad();
  c.set(0, linked(ops::where(bin("vt::gt", x0(c), num(0.0)), g, mul(g, num(sc(c, 1)))), x0(c)));
}
// elu(x) = x above 0, alpha (exp(x) - 1) at or below it; the test is x <= 0, as torch's, so a NaN takes the
// linear branch (gradient 1). alpha is the right operand, so a 16-bit x reads it in float (Note [Opmath
// scalars]): an alpha past float16's range times exp(-65504) = 0 is 0, not inf * 0 = NaN (seen by the fuzzer).
void elu_backward(BackwardContext& c) {
  Tensor x = x0(c), g = c.grad();
  c.set(0, ops::where(bin("vt::le", x, num(0.0)), mul(g, mul(un("vt::exp", x), num(sc(c, 1)))), g));
}
// No gradient at or beyond the bounds (torch: self <= min || self >= max).
void hardtanh_backward(BackwardContext& c) {
  Tensor x = x0(c);
  Tensor out = bin("vt::logical_or", bin("vt::le", x, num(sc(c, 1))), bin("vt::ge", x, num(sc(c, 2))));
  c.set(0, linked(ops::where(out, num(0.0), c.grad()), x));  // (Note [Masks keep the input in the graph])
}

// ---- clamp ----
// The gradient passes where min <= x <= max (bounds included, as torch's clamp_backward; NaN passes none).
void clamp_backward(BackwardContext& c) {
  Tensor x = x0(c);
  Tensor keep;
  auto both = [&](const Tensor& m) { keep = keep.defined() ? bin("vt::logical_and", keep, m) : m; };
  if (auto* lo = std::get_if<Scalar>(&c.arg(1))) both(bin("vt::ge", x, num(lo->to_double())));
  if (auto* hi = std::get_if<Scalar>(&c.arg(2))) both(bin("vt::le", x, num(hi->to_double())));
  c.set(0, keep.defined() ? where_or_zero(keep, c.grad()) : c.grad());
}
// clamp_tensor(self, min, max) = minimum(maximum(self, min), max). min takes the gradient where it won
// (x < min, and min < max when both are given); max where it won (x > max, or max < min).
void clamp_tensor_backward(BackwardContext& c) {
  Tensor x = x0(c), g = c.grad();
  Tensor lo = c.input_defined(1) ? c.saved(1) : Tensor(), hi = c.input_defined(2) ? c.saved(2) : Tensor();
  if (c.needs(0)) {
    Tensor keep;
    if (lo.defined()) keep = bin("vt::ge", x, lo);
    if (hi.defined()) keep = keep.defined() ? bin("vt::logical_and", keep, bin("vt::le", x, hi)) : bin("vt::le", x, hi);
    c.set(0, where_or_zero(keep, g));
  }
  if (c.needs(1)) {
    Tensor won = bin("vt::lt", x, lo);
    if (hi.defined()) won = bin("vt::logical_and", won, bin("vt::lt", lo, hi));
    c.set(1, where_or_zero(won, g));
  }
  if (c.needs(2)) {
    Tensor won = bin("vt::gt", x, hi);
    if (lo.defined()) won = bin("vt::logical_or", won, bin("vt::lt", hi, lo));
    c.set(2, where_or_zero(won, g));
  }
}

// ---- binary ----
// maximum/minimum: the larger (smaller) input takes the gradient; equal inputs take half each.
template <bool kMax>
void extremum_backward(BackwardContext& c) {
  Tensor a = c.saved(0), b = c.saved(1), g = c.grad();
  Tensor shared = ops::where(bin("vt::eq", a, b), mul(g, num(0.5)), g);
  const char* a_loses = kMax ? "vt::lt" : "vt::gt";
  if (c.needs(0)) c.set(0, ops::where(bin(a_loses, a, b), num(0.0), shared));
  if (c.needs(1)) c.set(1, ops::where(bin(a_loses, b, a), num(0.0), shared));
}
// At (0, 0) atan2 is not differentiable; torch defines both gradients as 0 there, not 0/0.
// Note [atan2's integer operand]: an integer operand is squared in the gradient's floating dtype. torch squares it
// in its own dtype, which wraps past 46340 for int32: its gradient of atan2(1.0, int32 50000) is -2.8e-5 where
// x / (x^2 + y^2) is 2.0e-5. Floating operands keep their dtype (a float32 operand's gradient stays float32-exact
// beside a float16 result).
void atan2_backward(BackwardContext& c) {
  const ScalarType t = c.grad().dtype();
  Tensor a = c.saved(0), b = c.saved(1);
  if (!is_floating(a.dtype())) a = ops::to_dtype(a, t);
  if (!is_floating(b.dtype())) b = ops::to_dtype(b, t);
  Tensor denom = add(mul(a, a), mul(b, b));
  Tensor at_origin = bin("vt::eq", denom, num(0.0));
  Tensor scale = ops::where(at_origin, num(0.0), div(c.grad(), ops::where(at_origin, num(1.0), denom)));
  if (c.needs(0)) c.set(0, mul(scale, b));
  if (c.needs(1)) c.set(1, mul(scale, neg(a)));
}
// remainder(a, b) = a - b floor(a / b) and fmod(a, b) = a - b trunc(a / b): the quotient is locally constant.
Tensor div_rounded(const Tensor& a, const Tensor& b, const char* mode) {
  static const TypedOp<Tensor(const Tensor&, const Tensor&, std::optional<std::string>)> op("vt::div");
  return op(a, b, std::string(mode));
}
template <const char* kMode>
void remainder_backward(BackwardContext& c) {
  c.set(0, c.grad());
  if (c.needs(1)) c.set(1, neg(mul(c.grad(), div_rounded(c.saved(0), c.saved(1), kMode))));
}
constexpr char kFloor[] = "floor", kTrunc[] = "trunc";

// torch names a node ...Backward0 when the other operand is a Python number, ...Backward1 for a tensor.
template <const char* kName0, const char* kName1>
const char* by_other(const Stack& args) {
  auto* o = std::get_if<Tensor>(&args.at(1));
  return o && o->impl()->is_wrapped_number() ? kName0 : kName1;
}
#define VT_NAMES(op) constexpr char k##op##0[] = #op "Backward0", k##op##1[] = #op "Backward1";
VT_NAMES(Remainder) VT_NAMES(Fmod) VT_NAMES(Eq) VT_NAMES(Ne) VT_NAMES(Lt) VT_NAMES(Le) VT_NAMES(Gt) VT_NAMES(Ge)
#undef VT_NAMES

const bool more_formulas_registered = [] {
  auto self = [](const char* op, const char* name, BackwardFn fn) { return Formula{op, name, kSelf, false, fn}; };
  auto result = [](const char* op, const char* name, BackwardFn fn) { return Formula{op, name, 0, true, fn}; };
  auto none = [](const char* op, const char* name, BackwardFn fn) { return Formula{op, name, 0, false, fn}; };
  auto cmp = [](const char* op, const char* (*name)(const Stack&)) {
    return Formula{op, "EqBackward1", 0, false, zero_backward, false, name};
  };
  register_formulas({
      result("vt::exp2", "Exp2Backward0", exp2_backward),
      result("vt::expm1", "Expm1Backward0", expm1_backward),
      self("vt::log2", "Log2Backward0", log2_backward),
      self("vt::log10", "Log10Backward0", log10_backward),
      self("vt::log1p", "Log1PBackward0", log1p_backward),
      self("vt::sin", "SinBackward0", sin_backward),
      self("vt::cos", "CosBackward0", cos_backward),
      result("vt::tan", "TanBackward0", tan_backward),
      self("vt::asin", "AsinBackward0", asin_backward),
      self("vt::acos", "AcosBackward0", acos_backward),
      self("vt::atan", "AtanBackward0", atan_backward),
      self("vt::sinh", "SinhBackward0", sinh_backward),
      self("vt::cosh", "CoshBackward0", cosh_backward),
      self("vt::erf", "ErfBackward0", erf_backward),
      self("vt::erfc", "ErfcBackward0", erfc_backward),
      result("vt::reciprocal", "ReciprocalBackward0", reciprocal_backward),
      self("vt::square", "PowBackward0", square_backward),
      none("vt::frac", "FracBackward0", frac_backward),
      none("vt::sign", "SignBackward0", zero_backward),
      none("vt::floor", "FloorBackward0", zero_backward),
      none("vt::ceil", "CeilBackward0", zero_backward),
      none("vt::trunc", "TruncBackward0", zero_backward),
      none("vt::round", "RoundBackward0", zero_backward),
      self("vt::logsigmoid", "LogSigmoidBackward0", logsigmoid_backward),
      self("vt::mish", "MishBackward0", mish_backward),
      self("vt::softplus", "SoftplusBackward0", softplus_backward),
      self("vt::leaky_relu", "LeakyReluBackward0", leaky_relu_backward),
      self("vt::elu", "EluBackward0", elu_backward),
      self("vt::hardtanh", "HardtanhBackward0", hardtanh_backward),
      self("vt::clamp", "ClampBackward1", clamp_backward),
      Formula{"vt::clamp_tensor", "ClampBackward0", kAll3, false, clamp_tensor_backward},
      Formula{"vt::maximum", "MaximumBackward0", kSelfOther, false, extremum_backward<true>},
      Formula{"vt::minimum", "MinimumBackward0", kSelfOther, false, extremum_backward<false>},
      Formula{"vt::atan2", "Atan2Backward0", kSelfOther, false, atan2_backward},
      Formula{"vt::remainder", "RemainderBackward1", kSelfOther, false, remainder_backward<kFloor>, false,
              by_other<kRemainder0, kRemainder1>},
      Formula{"vt::fmod", "FmodBackward1", kSelfOther, false, remainder_backward<kTrunc>, false,
              by_other<kFmod0, kFmod1>},
      // In-place comparisons write 0/1 into a floating self: a constant, so no gradient flows anywhere.
      cmp("vt::eq_", by_other<kEq0, kEq1>), cmp("vt::ne_", by_other<kNe0, kNe1>),
      cmp("vt::lt_", by_other<kLt0, kLt1>), cmp("vt::le_", by_other<kLe0, kLe1>),
      cmp("vt::gt_", by_other<kGt0, kGt1>), cmp("vt::ge_", by_other<kGe0, kGe1>),
  });
  return true;
}();

}  // namespace
}  // namespace vt::autograd
