#pragma once
// Small math helpers for backward formulas. Everything goes through vt::ops (the dispatcher), so formulas run
// on any device and, under create_graph, record their own graph.
#include <cmath>

#include "vt/autograd/formula.h"
#include "vt/autograd/grad_mode.h"
#include "vt/core/ops.h"

namespace vt::autograd::fx {

// A Python-number-like 0-dim CPU tensor: joins tensors of any device and takes their dtype in promotion.
// A backward runs with grad mode on only when its own graph is wanted (create_graph, second order): then a formula
// must be a composite of differentiable ops; otherwise it may call a fused backward kernel.
inline bool graph_wanted() { return is_grad_enabled(); }
inline Tensor num(double v) { return scalar_to_tensor(Scalar(v), ScalarType::Float64); }
inline Tensor mul(const Tensor& a, const Tensor& b) { return ops::mul(a, b); }
inline Tensor div(const Tensor& a, const Tensor& b) { return ops::div(a, b); }
inline Tensor add(const Tensor& a, const Tensor& b) { return ops::add(a, b); }
inline Tensor sub(const Tensor& a, const Tensor& b) { return ops::sub(a, b); }
inline Tensor neg(const Tensor& a) { return ops::unary("vt::neg", a); }
inline Tensor un(const char* op, const Tensor& a) { return ops::unary(op, a); }
inline Tensor bin(const char* op, const Tensor& a, const Tensor& b) { return ops::binary(op, a, b); }
inline Tensor zeros(IntArrayRef sizes, const Tensor& like) {
  return ops::full(sizes, Scalar(int64_t(0)), like.dtype(), like.device());
}
// Note [Masks keep the input in the graph]: torch's backward of a piecewise-linear op (threshold_backward for
// relu, leaky_relu_backward, hardtanh_backward) is itself an op of the input, with a zero derivative for it, so
// under create_graph the first-order gradient stays in the input's graph: it requires grad, and a penalty on it
// (WGAN-GP, R1) gives a bias before the op a zero gradient, not None (which Adam would skip). A formula that reads
// x only through a mask returns linked(gradient, x): the same values, joined to x by where(true, 0, x), whose
// derivative for x is zero (and no NaN for an infinite x, unlike x * 0). Nothing is added outside create_graph.
inline Tensor linked(const Tensor& t, const Tensor& x) {
  if (!graph_wanted() || !x.defined() || !x.impl()->requires_grad()) return t;
  Tensor always = scalar_to_tensor(Scalar(true), ScalarType::Bool);
  return ops::add(t, ops::where(always, num(0.0), x));
}
// The gradient that flows where `mask` holds, zero elsewhere.
inline Tensor where_or_zero(const Tensor& mask, const Tensor& g) { return ops::where(mask, g, num(0.0)); }
inline std::optional<std::vector<int64_t>> opt_ints(const IValue& v) {
  if (auto* l = std::get_if<std::vector<int64_t>>(&v)) return *l;
  return std::nullopt;
}
inline std::optional<int64_t> opt_int(const IValue& v) {
  if (auto* i = std::get_if<int64_t>(&v)) return *i;
  return std::nullopt;
}

// Which inputs a formula may differentiate (Formula's input mask): bit i for input i.
inline constexpr uint32_t kSelf = 1u, kSelfOther = 3u, kAll3 = 7u;

// The gradient passes through unchanged (views that keep the shape, identities kept for their side effects).
inline void identity_backward(BackwardContext& c) { c.set(0, c.grad()); }

}  // namespace vt::autograd::fx
