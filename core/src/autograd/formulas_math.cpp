// Backward formulas of elementwise arithmetic, unary math and activations (Note [Autograd kernels]).
// Argument positions follow the schemas in core/src/ops/. Gradients come out in broadcast shape; FormulaNode
// sums them back to each input's shape.
#include "formula_helpers.h"

namespace vt::autograd {
namespace {
using namespace fx;

void add_backward(BackwardContext& c) {
  c.set(0, c.grad());
  if (c.needs(1)) {
    Scalar alpha = c.scalar(2);
    c.set(1, alpha.to_double() == 1.0 ? c.grad() : mul(c.grad(), num(alpha.to_double())));
  }
}
void sub_backward(BackwardContext& c) {
  c.set(0, c.grad());
  if (c.needs(1)) c.set(1, mul(c.grad(), num(-c.scalar(2).to_double())));
}
void mul_backward(BackwardContext& c) {
  if (c.needs(0)) c.set(0, mul(c.grad(), c.saved(1)));
  if (c.needs(1)) c.set(1, mul(c.grad(), c.saved(0)));
}
void div_backward(BackwardContext& c) {
  if (!std::holds_alternative<std::monostate>(c.arg(2))) {  // floor/trunc division is piecewise constant
    for (size_t i = 0; i < 2; ++i)
      if (c.needs(i)) c.set(i, zeros(c.input_sizes(i), c.grad()));
    return;
  }
  Tensor other = c.saved(1);
  if (c.needs(0)) c.set(0, div(c.grad(), other));
  // -grad * ((self / other) / other), torch's order: other * other over- or underflows long before the quotient
  // does (x / x at x = 3e38 has gradient 0, not 1 / x)
  if (c.needs(1)) c.set(1, neg(mul(c.grad(), div(div(c.saved(0), other), other))));
}
const char* div_name(const Stack& args) {
  return std::holds_alternative<std::monostate>(args.at(2)) ? "DivBackward0" : "DivBackward2";
}
void neg_backward(BackwardContext& c) { c.set(0, neg(c.grad())); }
void abs_backward(BackwardContext& c) { c.set(0, mul(c.grad(), un("vt::sign", c.saved(0)))); }

// d(x^e)/dx = e * x^(e-1), zero where e == 0 (so 0^0 does not give 0 * inf); d(x^e)/de = x^e * log(x), zero
// where x == 0 and e >= 0 (the limit), as torch.
void pow_backward(BackwardContext& c) {
  Tensor self = c.saved(0), exponent = c.saved(1);
  if (c.needs(0)) {
    // A Python-number exponent is a wrapped number, and so is num(1.0): their difference would take the default
    // dtype (float32) and round x**(1/3)'s gradient in float64 to float32; it is taken as a number instead.
    Tensor e_minus_1 = exponent.impl()->is_wrapped_number() ? num(item_scalar(exponent).to_double() - 1.0)
                                                            : sub(exponent, num(1.0));
    Tensor d = mul(exponent, bin("vt::pow", self, e_minus_1));
    Tensor g = mul(c.grad(), d);
    // torch's zero test is Scalar::equal(0.0), false for a bool scalar: x ** False at x = 0 gets 0 * inf = NaN
    const bool bool_number = exponent.impl()->is_wrapped_number() && exponent.dtype() == ScalarType::Bool;
    c.set(0, bool_number ? g : ops::where(bin("vt::eq", exponent, num(0.0)), num(0.0), g));
  }
  if (c.needs(1)) {
    // log in the result's precision: a Python-number base arrives as a wrapped tensor of its own dtype.
    // (and a wrapped number would make log() return the default dtype), so it is cast to a plain tensor first.
    bool plain = self.dtype() == c.grad().dtype() && !self.impl()->is_wrapped_number();
    Tensor base = plain ? self : ops::to_dtype(self, c.grad().dtype());
    Tensor g = mul(mul(c.grad(), c.result()), un("vt::log", base));
    Tensor limit = bin("vt::logical_and", bin("vt::eq", self, num(0.0)), bin("vt::ge", exponent, num(0.0)));
    c.set(1, ops::where(limit, num(0.0), g));
  }
}
const char* pow_name(const Stack& args) {
  auto* e = std::get_if<Tensor>(&args.at(1));
  return e && e->impl()->is_wrapped_number() ? "PowBackward0" : "PowBackward1";
}

void exp_backward(BackwardContext& c) { c.set(0, mul(c.grad(), c.result())); }
void log_backward(BackwardContext& c) { c.set(0, div(c.grad(), c.saved(0))); }
void sqrt_backward(BackwardContext& c) { c.set(0, div(c.grad(), mul(c.result(), num(2.0)))); }
// d/dx x^-1/2 = -1/2 x^-3/2 = -1/2 r^3 with r the result.
void rsqrt_backward(BackwardContext& c) {
  Tensor r = c.result();
  c.set(0, mul(c.grad(), mul(num(-0.5), mul(r, mul(r, r)))));
}
// tanh and sigmoid: one fused pass over the gradient and the saved result, as torch's tanh_backward and
// sigmoid_backward; a composite of differentiable ops when the backward's graph is wanted (second order).
void tanh_backward(BackwardContext& c) {
  Tensor r = c.result();
  if (!graph_wanted()) return c.set(0, ops::tanh_backward(c.grad(), r));
  c.set(0, mul(c.grad(), sub(num(1.0), mul(r, r))));
}
void sigmoid_backward(BackwardContext& c) {
  Tensor r = c.result();
  if (!graph_wanted()) return c.set(0, ops::sigmoid_backward(c.grad(), r));
  c.set(0, mul(mul(c.grad(), sub(num(1.0), r)), r));
}
// Second order through the fused kernels, torch's formulas in torch's order (derivatives.yaml): with
// z = g (1 - y^2), dz/dg is the kernel itself on the incoming gradient, and dz/dy = gg (-2 y g); with
// z = g (1 - y) y, dz/dg likewise and dz/dy = (gg g) (-2 y + 1). The kernel promotes mixed dtypes (a bool y
// included) and rounds once, as torch's.
void tanh_backward_backward(BackwardContext& c) {
  Tensor g = c.saved(0), y = c.saved(1);
  if (c.needs(0)) c.set(0, ops::tanh_backward(c.grad(), y));
  if (c.needs(1)) c.set(1, mul(c.grad(), mul(mul(num(-2.0), y), g)));
}
void sigmoid_backward_backward(BackwardContext& c) {
  Tensor g = c.saved(0), y = c.saved(1);
  if (c.needs(0)) c.set(0, ops::sigmoid_backward(c.grad(), y));
  if (c.needs(1)) c.set(1, mul(mul(c.grad(), g), add(mul(num(-2.0), y), num(1.0))));
}
// Zero where the result is <= 0, as torch's threshold_backward tests it: a NaN passes its gradient through
// (Note [Masks keep the input in the graph]).
void relu_backward(BackwardContext& c) {
  c.set(0, linked(ops::where(bin("vt::le", c.result(), num(0.0)), num(0.0), c.grad()), c.result()));
}

// addcmul(self, t1, t2, value) = self + value t1 t2, addcdiv = self + value t1 / t2, in torch's forms and order
// (the value multiplies as a Python number of its own kind would, so an integer tensor1 times an integer value
// wraps as torch's gradient does); lerp(self, end, w) = self + w (end - self).
Tensor value_number(const BackwardContext& c, size_t arg) {
  Tensor v = scalar_to_tensor(c.scalar(arg), c.scalar(arg).natural_dtype());
  v.impl()->set_wrapped_number(true);
  return v;
}
void addcmul_backward(BackwardContext& c) {
  c.set(0, c.grad());
  if (c.needs(1)) c.set(1, mul(c.grad(), mul(c.saved(2), value_number(c, 3))));
  if (c.needs(2)) c.set(2, mul(c.grad(), mul(c.saved(1), value_number(c, 3))));
}
void addcdiv_backward(BackwardContext& c) {
  Tensor t2 = c.saved(2);
  c.set(0, c.grad());
  if (c.needs(1)) c.set(1, mul(c.grad(), div(value_number(c, 3), t2)));
  if (c.needs(2)) c.set(2, mul(neg(c.grad()), div(div(mul(value_number(c, 3), c.saved(1)), t2), t2)));
}
void lerp_backward(BackwardContext& c) {
  const double w = c.scalar(2).to_double();
  if (c.needs(0)) c.set(0, mul(c.grad(), num(1.0 - w)));
  if (c.needs(1)) c.set(1, mul(c.grad(), num(w)));
}
constexpr uint32_t kTensors12 = 2u | 4u;

const bool math_formulas_registered = [] {
  register_formulas({
      {"vt::add", "AddBackward0", 0, false, add_backward},
      {"vt::add_", "AddBackward0", 0, false, add_backward},
      {"vt::sub", "SubBackward0", 0, false, sub_backward},
      {"vt::sub_", "SubBackward0", 0, false, sub_backward},
      // self is read only for other's gradient and other only for self's (x * 2.0 saves the 2.0, not x)
      {.op = "vt::mul", .node_name = "MulBackward0", .saved_args = kSelfOther, .backward = mul_backward,
       .saved_for = {2u, 1u}},
      {"vt::tanh_backward", "TanhBackwardBackward0", kSelfOther, false, tanh_backward_backward},
      {"vt::sigmoid_backward", "SigmoidBackwardBackward0", kSelfOther, false, sigmoid_backward_backward},
      {.op = "vt::div", .node_name = "DivBackward0", .saved_args = kSelfOther, .backward = div_backward,
       .name_for = div_name, .saved_for = {2u, 3u}},  // x / 2.0 keeps no x
      {"vt::neg", "NegBackward0", 0, false, neg_backward},
      {"vt::abs", "AbsBackward0", kSelf, false, abs_backward},
      {"vt::pow", "PowBackward0", kSelfOther, true, pow_backward, false, pow_name},
      {"vt::exp", "ExpBackward0", 0, true, exp_backward},
      {"vt::log", "LogBackward0", kSelf, false, log_backward},
      {"vt::sqrt", "SqrtBackward0", 0, true, sqrt_backward},
      {"vt::rsqrt", "RsqrtBackward0", 0, true, rsqrt_backward},
      {"vt::tanh", "TanhBackward0", 0, true, tanh_backward},
      {"vt::sigmoid", "SigmoidBackward0", 0, true, sigmoid_backward},
      {"vt::relu", "ReluBackward0", 0, true, relu_backward},
      {"vt::addcmul", "AddcmulBackward0", kTensors12, false, addcmul_backward},
      {"vt::addcdiv", "AddcdivBackward0", kTensors12, false, addcdiv_backward},
      {"vt::lerp", "LerpBackward0", 0, false, lerp_backward},
  });
  return true;
}();

}  // namespace
}  // namespace vt::autograd
