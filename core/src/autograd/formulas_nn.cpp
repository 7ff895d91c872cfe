// Backward formulas of the fused nn primitives (core/src/ops/nn_native_impl.h) and of gelu/silu.
//
// Each formula has two forms. Plain backward (grad mode off, the usual case) calls the fused backward kernel:
// one pass instead of the dozen elementwise ops the math takes. Under create_graph the gradient must itself be
// differentiable, so the formula writes the same math with differentiable ops (and, for the norms, recomputes
// the statistics from the input so that their dependence on it is part of the graph).
#include <cmath>

#include "formula_helpers.h"

namespace vt::autograd {
namespace {

using namespace fx;

Tensor sum_keep(const Tensor& t, int64_t dim) { return ops::sum(t, DimVector{dim}, true, std::nullopt); }

// _softmax(self, dim, log): y = softmax(x) -> y (g - sum(g y)); y = log_softmax(x) -> g - exp(y) sum(g).
void softmax_backward(BackwardContext& c) {
  Tensor y = c.result();
  int64_t dim = c.int_arg(1);
  bool log = std::get<bool>(c.arg(2));
  if (!graph_wanted()) return c.set(0, ops::softmax_backward(c.grad(), y, dim, log, 1.0));
  int64_t d = y.dim() == 0 ? 0 : wrap_dim(dim, y.dim());
  const Tensor& g = c.grad();
  c.set(0, log ? sub(g, mul(un("vt::exp", y), sum_keep(g, d))) : mul(y, sub(g, sum_keep(mul(g, y), d))));
}

// _attention_softmax(scores, scale, causal): y = softmax(scale * masked(scores)) -> scale * y (g - sum(g y));
// masked entries have y = 0, so they get no gradient.
void attention_softmax_backward(BackwardContext& c) {
  Tensor y = c.result();
  double scale = std::get<double>(c.arg(1));
  if (!graph_wanted()) return c.set(0, ops::softmax_backward(c.grad(), y, -1, false, scale));
  const Tensor& g = c.grad();
  c.set(0, mul(num(scale), mul(y, sub(g, sum_keep(mul(g, y), y.dim() - 1)))));
}

std::vector<int64_t> norm_dims(const Tensor& x, size_t k) {
  std::vector<int64_t> dims;
  for (int64_t d = x.dim() - int64_t(k); d < x.dim(); ++d) dims.push_back(d);
  return dims;
}
std::vector<int64_t> lead_dims(const Tensor& x, size_t k) {
  std::vector<int64_t> dims;
  for (int64_t d = 0; d < x.dim() - int64_t(k); ++d) dims.push_back(d);
  return dims;
}

// The differentiable form of both norms' backward: xhat and rstd recomputed from x with recorded ops, so the
// gradient's own graph sees how they depend on x. (x may be 16-bit: the math runs in its dtype here.)
void norm_backward_composite(BackwardContext& c, bool rms, double eps, const Tensor& weight) {
  Tensor x = c.saved(0);
  const Tensor& g = c.grad();
  auto shape = std::get<std::vector<int64_t>>(c.arg(1));
  std::vector<int64_t> dims = norm_dims(x, shape.size());
  auto mean = [&](const Tensor& t) { return ops::mean(t, dims, true, std::nullopt); };
  Tensor centred = rms ? x : sub(x, mean(x));
  Tensor rstd = un("vt::rsqrt", add(mean(mul(centred, centred)), num(eps)));
  Tensor xhat = mul(centred, rstd);
  Tensor gw = weight.defined() ? mul(g, weight) : g;
  if (c.needs(0)) {
    Tensor inner = sub(gw, mul(xhat, mean(mul(gw, xhat))));
    if (!rms) inner = sub(inner, mean(gw));
    c.set(0, mul(rstd, inner));
  }
  std::vector<int64_t> lead = lead_dims(x, shape.size());
  auto sum_rows = [&](const Tensor& t) { return lead.empty() ? t : ops::sum(t, lead, false, std::nullopt); };
  if (weight.defined() && c.needs(2)) c.set(2, sum_rows(mul(g, xhat)));
  if (!rms && c.needs(3)) c.set(3, sum_rows(g));
}

// native_layer_norm(input, normalized_shape, weight, bias, eps) -> (y, mean, rstd)
void layer_norm_backward(BackwardContext& c) {
  Tensor weight = c.saved_or_undefined(2);
  if (graph_wanted()) return norm_backward_composite(c, false, std::get<double>(c.arg(4)), weight);
  int64_t mask = (c.needs(0) ? 1 : 0) | (c.needs(2) ? 2 : 0) | (c.needs(3) ? 4 : 0);
  auto shape = std::get<std::vector<int64_t>>(c.arg(1));
  auto [gx, gw, gb] = ops::native_layer_norm_backward(c.grad(), c.saved(0), shape, c.output(1), c.output(2), weight, mask);
  c.set(0, gx);
  c.set(2, gw);
  c.set(3, gb);
}

// native_rms_norm(input, normalized_shape, weight, eps) -> (y, rstd)
void rms_norm_backward(BackwardContext& c) {
  Tensor weight = c.saved_or_undefined(2);
  if (graph_wanted()) return norm_backward_composite(c, true, std::get<double>(c.arg(3)), weight);
  int64_t mask = (c.needs(0) ? 1 : 0) | (c.needs(2) ? 2 : 0);
  auto shape = std::get<std::vector<int64_t>>(c.arg(1));
  auto [gx, gw] = ops::native_rms_norm_backward(c.grad(), c.saved(0), shape, c.output(1), weight, mask);
  c.set(0, gx);
  c.set(2, gw);
}

// gelu(x) = x Phi(x): Phi(x) + x phi(x); approximate='tanh': the derivative of 0.5 x (1 + tanh(k (x + a x^3))).
void gelu_backward(BackwardContext& c) {
  Tensor x = c.saved(0);
  const auto& approximate = std::get<std::string>(c.arg(1));
  if (!graph_wanted()) return c.set(0, ops::gelu_backward(c.grad(), x, approximate));
  Tensor d;
  if (approximate == "tanh") {
    const double k = std::sqrt(2.0 / M_PI), a = 0.044715;
    Tensor x2 = mul(x, x);
    Tensor t = un("vt::tanh", mul(num(k), add(x, mul(num(a), mul(x2, x)))));
    Tensor dinner = mul(num(k), add(num(1.0), mul(num(3.0 * a), x2)));
    d = add(mul(num(0.5), add(num(1.0), t)), mul(mul(num(0.5), x), mul(sub(num(1.0), mul(t, t)), dinner)));
  } else {
    Tensor cdf = mul(num(0.5), add(num(1.0), un("vt::erf", mul(x, num(M_SQRT1_2)))));
    Tensor pdf = mul(un("vt::exp", mul(mul(x, x), num(-0.5))), num(0.5 * M_2_SQRTPI * M_SQRT1_2));
    d = add(cdf, mul(x, pdf));
  }
  c.set(0, mul(c.grad(), d));
}

// silu(x) = x s(x): s (1 + x (1 - s)).
void silu_backward(BackwardContext& c) {
  Tensor x = c.saved(0);
  if (!graph_wanted()) return c.set(0, ops::silu_backward(c.grad(), x));
  Tensor s = un("vt::sigmoid", x);
  c.set(0, mul(c.grad(), mul(s, add(num(1.0), mul(x, sub(num(1.0), s))))));
}

// _cross_entropy_rows(input, target, ignore_index, reduction) -> (loss, stats, count): the input's gradient is
// scale * (softmax(input) - onehot(target)) on rows not ignored, scale the loss's gradient (divided by the count
// for a mean). One kernel (cuda/cross_entropy.cu); under create_graph the same in differentiable ops.
void cross_entropy_rows_backward(BackwardContext& c) {
  static const TypedOp<Tensor(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, int64_t,
                              int64_t)> kernel("vt::_cross_entropy_rows_backward");
  static const TypedOp<Tensor(const Tensor&, int64_t, std::optional<ScalarType>)> softmax("vt::softmax");
  Tensor x = c.saved(0), t = c.saved(1);
  const int64_t ignore = c.int_arg(2), reduction = c.int_arg(3);
  if (!graph_wanted()) return c.set(0, kernel(c.grad(), x, t, c.output(1), c.output(2), ignore, reduction));
  Tensor valid = bin("vt::ne", t, scalar_to_tensor(Scalar(ignore), ScalarType::Int64));
  Tensor safe = ops::unsqueeze(ops::where(valid, t, scalar_to_tensor(Scalar(int64_t(0)), ScalarType::Int64)), 1);
  Tensor classes = ops::arange(Scalar(int64_t(0)), Scalar(x.size(1)), Scalar(int64_t(1)), ScalarType::Int64,
                               x.device());
  Tensor onehot = ops::to_dtype(bin("vt::eq", ops::unsqueeze(classes, 0), safe), x.dtype());
  Tensor d = mul(sub(softmax(x, 1, std::nullopt), onehot), ops::unsqueeze(ops::to_dtype(valid, x.dtype()), 1));
  Tensor g = reduction == 0 ? ops::unsqueeze(c.grad(), 1) : c.grad();
  if (reduction == 1) g = div(g, c.output(2));
  c.set(0, mul(g, d));
}

constexpr uint32_t kInput = 1u, kInputWeight = 1u | 4u;

const bool nn_formulas_registered = [] {
  Formula layer_norm{"vt::native_layer_norm", "NativeLayerNormBackward0", kInputWeight, false, layer_norm_backward};
  layer_norm.saved_outputs = 2u | 4u;  // mean, rstd
  layer_norm.differentiable_outputs = 1u;
  Formula rms_norm{"vt::native_rms_norm", "RmsNormBackward0", kInputWeight, false, rms_norm_backward};
  rms_norm.saved_outputs = 2u;  // rstd
  rms_norm.differentiable_outputs = 1u;
  Formula cross_entropy{"vt::_cross_entropy_rows", "NllLossBackward0", 1u | 2u, false, cross_entropy_rows_backward};
  cross_entropy.saved_outputs = 2u | 4u;  // stats, count
  cross_entropy.differentiable_outputs = 1u;
  register_formulas({
      cross_entropy,
      {"vt::_softmax", "SoftmaxBackward0", 0, true, softmax_backward, false,
       [](const Stack& args) { return std::get<bool>(args[2]) ? "LogSoftmaxBackward0" : "SoftmaxBackward0"; }},
      {"vt::_attention_softmax", "AttentionSoftmaxBackward0", 0, true, attention_softmax_backward},
      layer_norm,
      rms_norm,
      {"vt::gelu", "GeluBackward0", kInput, false, gelu_backward},
      {"vt::silu", "SiluBackward0", kInput, false, silu_backward},
  });
  return true;
}();

}  // namespace
}  // namespace vt::autograd
