// Neural-network forward ops composed from the elementwise and reduction ops (device-agnostic, DispatchKey
// Any): softmax, log_softmax, layer_norm, rms_norm, embedding, dropout. Each is the numerically stable form
// (shift by the max; statistics in float32 or wider for 16-bit inputs) and is differential-tested against torch.
// Fused kernels and backward formulas come with the autograd engine.
#include <cmath>

#include "vt/autograd/grad_mode.h"
#include "vt/core/dispatcher.h"
#include "vt/core/ops.h"

namespace vt {
namespace {

Tensor num(double v) { return scalar_to_tensor(Scalar(v), ScalarType::Float64); }

// Statistics of 16-bit inputs are computed in float32, as torch does.
Tensor upcast(const Tensor& x) {
  return x.dtype() == ScalarType::Float16 || x.dtype() == ScalarType::BFloat16 ? ops::to_dtype(x, ScalarType::Float32) : x;
}

Tensor softmax_impl(const Tensor& self, int64_t dim, std::optional<ScalarType> dtype, bool log) {
  Tensor x = dtype ? ops::to_dtype(self, *dtype) : self;
  VT_CHECK_KIND(NotImplemented, is_floating(x.dtype()), "\"", log ? "log_softmax" : "softmax",
                "\" not implemented for '", dtype_name(x.dtype()), "'");
  if (x.dim() == 0) x = ops::unsqueeze(x, 0), dim = 0;
  else dim = wrap_dim(dim, x.dim());
  ScalarType out_t = x.dtype();
  Tensor xf = upcast(x);
  if (xf.numel() == 0) return ops::clone(x);
  DimVector d{dim};
  Tensor m;
  {
    // The shift is a constant for the gradient (softmax(x - c) = softmax(x)), so it records no history.
    autograd::GradModeGuard no_grad(false);
    m = ops::amax(xf, d, true);
    m = ops::where(ops::unary("vt::isinf", m), num(0.0), m);  // rows of -inf stay finite until the end
  }
  Tensor shifted = ops::sub(xf, m);
  Tensor e = ops::unary("vt::exp", shifted);
  Tensor s = ops::sum(e, d, true, std::nullopt);
  Tensor r = log ? ops::sub(shifted, ops::unary("vt::log", s)) : ops::div(e, s);
  r = r.dtype() == out_t ? r : ops::to_dtype(r, out_t);
  return self.dim() == 0 ? ops::reshape(r, DimVector{}) : r;
}
Tensor softmax_any(const Tensor& self, int64_t dim, std::optional<ScalarType> dtype) {
  return softmax_impl(self, dim, dtype, false);
}
Tensor log_softmax_any(const Tensor& self, int64_t dim, std::optional<ScalarType> dtype) {
  return softmax_impl(self, dim, dtype, true);
}

// The trailing dims that normalized_shape names, checked against the input.
DimVector norm_dims(const Tensor& x, IntArrayRef normalized_shape, const char* name) {
  int64_t k = int64_t(normalized_shape.size());
  VT_CHECK(k >= 1 && k <= x.dim(), name, ": normalized_shape ", shape_str(normalized_shape),
           " does not fit an input of shape ", shape_str(x.sizes()));
  DimVector dims;
  for (int64_t i = 0; i < k; ++i) {
    int64_t d = x.dim() - k + i;
    VT_CHECK(x.size(d) == normalized_shape[size_t(i)], name, ": expected input with shape [*, ",
             shape_str(normalized_shape).substr(1), ", but got input of size", shape_str(x.sizes()));
    dims.push_back(d);
  }
  return dims;
}

void check_affine(const Tensor& p, IntArrayRef normalized_shape, const char* what) {
  VT_CHECK(!p.defined() || DimVector(p.sizes()) == DimVector(normalized_shape), what, " of shape ",
           p.defined() ? shape_str(p.sizes()) : "", " does not match normalized_shape ", shape_str(normalized_shape));
}

Tensor layer_norm_any(const Tensor& input, IntArrayRef normalized_shape, const Tensor& weight, const Tensor& bias,
                      double eps) {
  VT_CHECK_KIND(NotImplemented, is_floating(input.dtype()), "\"layer_norm\" not implemented for '",
                dtype_name(input.dtype()), "'");
  DimVector dims = norm_dims(input, normalized_shape, "layer_norm");
  check_affine(weight, normalized_shape, "weight");
  check_affine(bias, normalized_shape, "bias");
  Tensor x = upcast(input);
  Tensor mu = ops::mean(x, dims, true, std::nullopt);
  Tensor c = ops::sub(x, mu);
  Tensor var = ops::mean(ops::mul(c, c), dims, true, std::nullopt);  // biased, as layer_norm uses
  Tensor y = ops::mul(c, ops::unary("vt::rsqrt", ops::add(var, num(eps))));
  if (weight.defined()) y = ops::mul(y, weight);
  if (bias.defined()) y = ops::add(y, bias);
  return y.dtype() == input.dtype() ? y : ops::to_dtype(y, input.dtype());
}

Tensor rms_norm_any(const Tensor& input, IntArrayRef normalized_shape, const Tensor& weight, std::optional<double> eps) {
  VT_CHECK_KIND(NotImplemented, is_floating(input.dtype()), "\"rms_norm\" not implemented for '",
                dtype_name(input.dtype()), "'");
  DimVector dims = norm_dims(input, normalized_shape, "rms_norm");
  check_affine(weight, normalized_shape, "weight");
  Tensor x = upcast(input);
  // torch's default eps is the machine epsilon of the input dtype.
  double e = eps ? *eps
                 : input.dtype() == ScalarType::Float64 ? 2.220446049250313e-16
                 : input.dtype() == ScalarType::Float16 ? 0.0009765625
                 : input.dtype() == ScalarType::BFloat16 ? 0.0078125
                                                         : 1.1920928955078125e-07;
  Tensor ms = ops::mean(ops::mul(x, x), dims, true, std::nullopt);
  Tensor y = ops::mul(x, ops::unary("vt::rsqrt", ops::add(ms, num(e))));
  if (weight.defined()) y = ops::mul(y, weight);
  return y.dtype() == input.dtype() ? y : ops::to_dtype(y, input.dtype());
}

Tensor embedding_any(const Tensor& weight, const Tensor& indices) {
  VT_CHECK(weight.dim() == 2, "embedding: weight must be 2-D, got shape ", shape_str(weight.sizes()));
  VT_CHECK_KIND(Index, indices.dtype() == ScalarType::Int64 || indices.dtype() == ScalarType::Int32,
                "Expected tensor for argument #1 'indices' to have one of the following scalar types: Long, Int; "
                "but got ", dtype_name(indices.dtype()), " instead");
  Tensor flat = ops::reshape(indices, DimVector{-1});
  Tensor rows = ops::index(weight, TensorList(&flat, 1));
  DimVector shape(indices.sizes());
  shape.push_back(weight.size(1));
  return ops::reshape(rows, shape);
}

Tensor dropout_any(const Tensor& input, double p, bool train) {
  VT_CHECK_VALUE(p >= 0 && p <= 1, "dropout probability has to be between 0 and 1, but got ", p);
  if (!train || p == 0) return input;
  if (p == 1) return ops::mul(input, num(0.0));
  Tensor u = ops::empty(input.sizes(), ScalarType::Float32, input.device());
  ops::uniform_(u, 0.0, 1.0);
  Tensor keep = ops::binary("vt::ge", u, num(p));  // kept with probability 1 - p
  Tensor scaled = ops::mul(input, num(1.0 / (1.0 - p)));
  return ops::where(keep, scaled, ops::mul(input, num(0.0)));
}

Tensor gather_rows(const Tensor& m, const Tensor& cols) {  // m[i, cols[i]] for every row i
  Tensor rows = ops::arange(Scalar(int64_t(0)), Scalar(m.size(0)), Scalar(int64_t(1)), ScalarType::Int64, m.device());
  Tensor idx[2] = {rows, cols};
  return ops::index(m, TensorList(idx, 2));
}

// [N, C, d1, ...] -> [N * d1 * ..., C] (classes last); a 1-D [C] input becomes [1, C].
Tensor classes_last(const Tensor& x) {
  if (x.dim() == 1) return ops::unsqueeze(x, 0);
  DimVector perm{0};
  for (int64_t d = 2; d < x.dim(); ++d) perm.push_back(d);
  perm.push_back(1);
  return ops::reshape(ops::permute(x, perm), DimVector{-1, x.size(1)});
}

// The shape of a per-position loss: the input's dims without the class dim.
DimVector loss_shape(const Tensor& input) {
  DimVector s;
  if (input.dim() == 1) return s;
  s.push_back(input.size(0));
  for (int64_t d = 2; d < input.dim(); ++d) s.push_back(input.size(d));
  return s;
}

// reduction: 0 none, 1 mean, 2 sum (torch's enum). Class-index targets (with ignore_index) or class
// probabilities; optional per-class weights; label smoothing mixes in the uniform distribution.
Tensor cross_entropy_any(const Tensor& input, const Tensor& target, const Tensor& weight, int64_t reduction,
                         int64_t ignore_index, double smoothing) {
  VT_CHECK_VALUE(reduction >= 0 && reduction <= 2, "cross_entropy: reduction must be 0 (none), 1 (mean) or 2 (sum)");
  VT_CHECK(smoothing >= 0 && smoothing <= 1, "label_smoothing must be between 0.0 and 1.0. Got: ", smoothing);
  VT_CHECK(input.dim() >= 1, "cross_entropy: input must have a class dimension, got a 0-dim tensor");
  int64_t cdim = input.dim() == 1 ? 0 : 1;
  int64_t C = input.size(cdim);
  VT_CHECK(!weight.defined() || (weight.dim() == 1 && weight.size(0) == C), "cross_entropy: weight of shape ",
           weight.defined() ? shape_str(weight.sizes()) : "", " does not match ", C, " classes");
  Tensor logp = softmax_impl(input, cdim, std::nullopt, true);
  // [M, C]: classes last, everything else flattened.
  Tensor lp = classes_last(logp);
  Tensor w = weight.defined() ? ops::to_dtype(weight, lp.dtype()) : Tensor();
  Tensor smooth_term = w.defined() ? ops::mul(lp, w) : lp;
  if (is_floating(target.dtype())) {  // class probabilities, same shape as input
    VT_CHECK(DimVector(target.sizes()) == DimVector(input.sizes()), "cross_entropy: probability target of shape ",
             shape_str(target.sizes()), " must match input ", shape_str(input.sizes()));
    Tensor tp = classes_last(target);
    if (smoothing > 0) tp = ops::add(ops::mul(tp, num(1 - smoothing)), num(smoothing / double(C)));
    Tensor loss = ops::unary("vt::neg", ops::sum(ops::mul(smooth_term, tp), DimVector{1}, false, std::nullopt));
    if (reduction == 0) return ops::reshape(loss, loss_shape(input));
    Tensor total = ops::sum(loss, std::nullopt, false, std::nullopt);
    return reduction == 2 ? total : ops::div(total, num(double(lp.size(0))));
  }
  VT_CHECK_KIND(Index, target.dtype() == ScalarType::Int64 || target.dtype() == ScalarType::Int32,
                "cross_entropy: expected target of dtype int64 (class indices) or floating (probabilities), got ",
                dtype_name(target.dtype()));
  Tensor t = ops::reshape(target, DimVector{-1});
  VT_CHECK(t.size(0) == lp.size(0), "cross_entropy: expected target of ", lp.size(0), " elements, got shape ",
           shape_str(target.sizes()));
  Tensor valid = ops::binary("vt::ne", t, scalar_to_tensor(Scalar(ignore_index), ScalarType::Int64));
  Tensor t_safe = ops::where(valid, t, scalar_to_tensor(Scalar(int64_t(0)), ScalarType::Int64));
  Tensor picked = ops::unary("vt::neg", gather_rows(lp, t_safe));
  Tensor wt = w.defined() ? ops::index(w, TensorList(&t_safe, 1))
                          : ops::to_dtype(valid, lp.dtype());
  if (w.defined()) picked = ops::mul(picked, wt), wt = ops::mul(wt, ops::to_dtype(valid, lp.dtype()));
  Tensor zero = num(0.0);
  Tensor loss = ops::where(valid, picked, zero);
  if (smoothing > 0) {
    Tensor smooth = ops::div(ops::unary("vt::neg", ops::sum(smooth_term, DimVector{1}, false, std::nullopt)), num(double(C)));
    loss = ops::add(ops::mul(loss, num(1 - smoothing)), ops::mul(ops::where(valid, smooth, zero), num(smoothing)));
  }
  if (reduction == 0) return ops::reshape(loss, target.sizes());
  Tensor total = ops::sum(loss, std::nullopt, false, std::nullopt);
  if (reduction == 2) return total;
  return ops::div(total, ops::sum(wt, std::nullopt, false, std::nullopt));
}

}  // namespace

VT_LIBRARY(vt, nn) {
  m.def("cross_entropy(Tensor input, Tensor target, Tensor? weight=None, int reduction=1, int ignore_index=-100, float label_smoothing=0.0) -> Tensor");
  m.impl_any("cross_entropy", &cross_entropy_any);
  m.def("softmax(Tensor self, int dim, ScalarType? dtype=None) -> Tensor");
  m.def("log_softmax(Tensor self, int dim, ScalarType? dtype=None) -> Tensor");
  m.def("layer_norm(Tensor input, int[] normalized_shape, Tensor? weight=None, Tensor? bias=None, float eps=1e-05) -> Tensor");
  m.def("rms_norm(Tensor input, int[] normalized_shape, Tensor? weight=None, float? eps=None) -> Tensor");
  m.def("embedding(Tensor weight, Tensor indices) -> Tensor");
  m.def("dropout(Tensor input, float p=0.5, bool train=True) -> Tensor");
  m.impl_any("softmax", &softmax_any);
  m.impl_any("log_softmax", &log_softmax_any);
  m.impl_any("layer_norm", &layer_norm_any);
  m.impl_any("rms_norm", &rms_norm_any);
  m.impl_any("embedding", &embedding_any);
  m.impl_any("dropout", &dropout_any);
}

}  // namespace vt
