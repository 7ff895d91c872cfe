// Neural-network ops as composites (device-agnostic, DispatchKey Any): softmax, log_softmax, layer_norm and
// rms_norm are thin layers over the fused primitives of nn_native_impl.h (dtype handling, torch's defaults);
// embedding, dropout and cross_entropy compose elementwise, indexing and reduction ops. None has an autograd
// kernel of its own: the primitives they call record the graph (Note [Autograd kernels]).
#include <algorithm>
#include <cmath>

#include "nn_native_impl.h"
#include "vt/core/dispatcher.h"
#include "vt/core/ops.h"
#include "vt/cuda/kernel_errors.h"

namespace vt {
namespace {

Tensor num(double v) { return scalar_to_tensor(Scalar(v), ScalarType::Float64); }

// The composite: an optional cast, then the fused kernel (vt::_softmax), which is what autograd records.
Tensor softmax_impl(const Tensor& self, int64_t dim, std::optional<ScalarType> dtype, bool log) {
  wrap_dim(dim, std::max<int64_t>(self.dim(), 1));  // the dim first (IndexError), as torch checks it
  Tensor x = dtype ? ops::to_dtype(self, *dtype) : self;
  VT_CHECK_KIND(NotImplemented, is_floating(x.dtype()), "\"", log ? "log_softmax" : "softmax",
                "\" not implemented for '", dtype_name(x.dtype()), "'");
  return ops::softmax_fused(x, dim, log);
}
Tensor softmax_any(const Tensor& self, int64_t dim, std::optional<ScalarType> dtype) {
  return softmax_impl(self, dim, dtype, false);
}
Tensor log_softmax_any(const Tensor& self, int64_t dim, std::optional<ScalarType> dtype) {
  return softmax_impl(self, dim, dtype, true);
}

// Note [Norm check order]: torch's order, since the first failing check decides the exception's kind:
// normalized_shape not empty, the weight's (and bias') shape equal to it, the input's shape ending in it, and
// only then the input's dtype (a bool input of a shape that does not fit is told about its shape).
void check_norm_params(IntArrayRef normalized_shape, const Tensor& weight, const Tensor& bias) {
  VT_CHECK(!normalized_shape.empty(), "Expected normalized_shape to be at least 1-dimensional, i.e., containing at "
           "least one element, but got normalized_shape = []");
  for (const Tensor* p : {&weight, &bias})
    VT_CHECK(!p->defined() || DimVector(p->sizes()) == DimVector(normalized_shape), "Expected ",
             p == &weight ? "weight" : "bias", " to be of same shape as normalized_shape, but got ",
             p == &weight ? "weight" : "bias", " of shape ", shape_str(p->sizes()), " and normalized_shape = ",
             shape_str(normalized_shape));
}

Tensor layer_norm_any(const Tensor& input, IntArrayRef normalized_shape, const Tensor& weight, const Tensor& bias,
                      double eps) {
  check_norm_params(normalized_shape, weight, bias);  // Note [Norm check order]
  nn_native::norm_shape(input, normalized_shape, "layer_norm");
  VT_CHECK_KIND(NotImplemented, is_floating(input.dtype()), "\"layer_norm\" not implemented for '",
                dtype_name(input.dtype()), "'");
  return std::get<0>(ops::native_layer_norm(input, normalized_shape, weight, bias, eps));
}

Tensor rms_norm_any(const Tensor& input, IntArrayRef normalized_shape, const Tensor& weight, std::optional<double> eps) {
  check_norm_params(normalized_shape, weight, Tensor());  // Note [Norm check order]
  // as torch's rms_norm: a ValueError (its Python-level check) where layer_norm's is a RuntimeError
  int64_t least = std::max<int64_t>(1, int64_t(normalized_shape.size()));
  VT_CHECK_VALUE(input.dim() >= least, "Input tensor must have at least ", least, " dimensions, but got ", input.dim());
  nn_native::norm_shape(input, normalized_shape, "rms_norm");  // Note [Norm check order]
  VT_CHECK_KIND(NotImplemented, is_floating(input.dtype()), "\"rms_norm\" not implemented for '",
                dtype_name(input.dtype()), "'");
  // torch's default eps is the machine epsilon of the type it computes in: float64's for float64, float32's for
  // float32 and the 16-bit types (not float16's 2**-10, which moves rms_norm([0.38]) from 1 to 0.9966).
  double e = eps ? *eps : input.dtype() == ScalarType::Float64 ? 2.220446049250313e-16 : 1.1920928955078125e-07;
  return std::get<0>(ops::native_rms_norm(input, normalized_shape, weight, e));
}

// Class and row indices must lie in [0, n): `index` follows Python and reads -1 as the last row, which for an
// embedding or a class target is a silent wrong answer (torch raises IndexError). On the CPU the smallest
// index is checked here with a message naming it; on CUDA, where reading it would cost a host sync, negative
// indices are moved far out of range (kNegativeIndexMark), for the bounds check that `index` does on the
// device, which reports the user's index at the next synchronization (Note [Deferred kernel errors]).
Tensor nonnegative_indices(const Tensor& t, int64_t n, const char* what) {
  if (t.numel() == 0) return t;
  if (t.device().is_cpu()) {
    int64_t lowest = item_scalar(ops::amin(t, std::nullopt, false)).to_int();
    VT_CHECK_INDEX(lowest >= 0, what, " ", lowest, " is out of bounds (expected a value in [0, ", n, "))");
    return t;
  }
  Tensor wide = t.dtype() == ScalarType::Int64 ? t : ops::to_dtype(t, ScalarType::Int64);  // room for the mark
  Tensor negative = ops::binary("vt::lt", wide, scalar_to_tensor(Scalar(int64_t(0)), ScalarType::Int64));
  Tensor moved = ops::add(wide, scalar_to_tensor(Scalar(cuda::kNegativeIndexMark), ScalarType::Int64));
  return ops::where(negative, moved, wide);
}

Tensor embedding_any(const Tensor& weight, const Tensor& indices) {
  VT_CHECK(weight.dim() == 2, "embedding: weight must be 2-D, got shape ", shape_str(weight.sizes()));
  VT_CHECK(indices.dtype() == ScalarType::Int64 || indices.dtype() == ScalarType::Int32,
                "Expected tensor for argument #1 'indices' to have one of the following scalar types: Long, Int; "
                "but got ", dtype_name(indices.dtype()), " instead");
  VT_CHECK(weight.size(0) > 0 || indices.numel() == 0, "embedding: index_select(): self indexing axis dim should be positive");
  if (weight.device().is_cuda()) {  // one kernel that checks [0, rows) itself (cuda/embedding.cu)
    static const TypedOp<Tensor(const Tensor&, const Tensor&)> rows("vt::_embedding_rows");
    return rows(weight, indices);
  }
  Tensor flat = nonnegative_indices(ops::reshape(indices, DimVector{-1}), weight.size(0), "embedding: index");
  Tensor rows = ops::index(weight, TensorList(&flat, 1));
  DimVector shape(indices.sizes());
  shape.push_back(weight.size(1));
  return ops::reshape(rows, shape);
}

Tensor dropout_any(const Tensor& input, double p, bool train) {
  VT_CHECK_VALUE(!(p < 0 || p > 1), "dropout probability has to be between 0 and 1, but got ", p);
  VT_CHECK(!std::isnan(p), "dropout probability has to be between 0 and 1, but got ", p);  // torch: RuntimeError
  if (!train || p == 0 || input.numel() == 0) return input;
  // p == 1 multiplies by a zero of the input's dtype, so any dtype works (bool and integers too, as torch's);
  // other p scale by 1 / (1 - p), a float that only floating inputs can hold.
  if (p == 1) return ops::mul(input, scalar_to_tensor(Scalar(int64_t(0)), input.dtype()));
  VT_CHECK(is_floating(input.dtype()), "dropout: result type Float can't be cast to the desired output type ",
           dtype_name(input.dtype()));
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

// [N, C, d1, ...] -> [N * d1 * ..., C] (classes last); a 1-D [C] input becomes [1, C]. The row count is
// computed, not inferred (-1), so that C = 0 classes still has a shape.
Tensor classes_last(const Tensor& x) {
  if (x.dim() == 1) return ops::unsqueeze(x, 0);
  DimVector perm{0};
  int64_t rows = x.size(0);
  for (int64_t d = 2; d < x.dim(); ++d) perm.push_back(d), rows *= x.size(d);
  perm.push_back(1);
  return ops::reshape(ops::permute(x, perm), DimVector{rows, x.size(1)});
}

// The shape of a per-position loss: the input's dims without the class dim.
DimVector loss_shape(const Tensor& input) {
  DimVector s;
  if (input.dim() == 1) return s;
  s.push_back(input.size(0));
  for (int64_t d = 2; d < input.dim(); ++d) s.push_back(input.size(d));
  return s;
}

// Note [Indices read through copies]
// cross_entropy reads its class targets through tensors derived from them (the ignore_index mask, the targets
// with ignored entries replaced), so the version check of the index op's node (the kept index tensors of
// autograd_kernel.cpp) would not see an in-place write to the target itself. The loss therefore passes through
// _keep_versions(loss, [target]): an identity view whose node keeps the target and refuses, at backward, a
// target modified since, as torch refuses it.
Tensor keep_versions_any(const Tensor& self, TensorList) {
  return make_view(self, self.sizes(), self.strides(), self.storage_offset());
}

Tensor with_target_version(const Tensor& loss, const Tensor& target) {
  static const TypedOp<Tensor(const Tensor&, TensorList)> keep("vt::_keep_versions");
  if (!autograd::is_grad_enabled() || !loss.impl()->requires_grad()) return loss;
  return keep(loss, TensorList(&target, 1));
}

// torch's shapes of class-index targets: at most 1-D beside an input of 1 or 2 dims (one element beside a 1-D
// input, one per row beside a 2-D one), [N, d1, ...] beside [N, C, d1, ...]. Checked before the weight's dtype,
// as torch does.
void check_class_index_target(const Tensor& input, const Tensor& target) {
  if (input.dim() <= 2) {
    VT_CHECK(target.dim() <= 1, "0D or 1D target tensor expected, multi-target not supported");
    VT_CHECK_VALUE(input.dim() != 1 || target.dim() == 0 || target.size(0) == 1,
                   "For 1D input, 1D target must have size 1, but got target size: ",
                   target.dim() == 1 ? target.size(0) : 1);
  } else {
    DimVector expected{input.size(0)};
    for (int64_t d = 2; d < input.dim(); ++d) expected.push_back(input.size(d));
    VT_CHECK(DimVector(target.sizes()) == expected, "Expected target size ", shape_str(expected), ", got ",
             shape_str(target.sizes()));
  }
}

// reduction: 0 none, 1 mean, 2 sum (torch's enum). Class-index targets (with ignore_index) or class
// probabilities; optional per-class weights; label smoothing mixes in the uniform distribution.
Tensor class_index_loss(const Tensor& input, const Tensor& target, const Tensor& lp, const Tensor& w,
                        const Tensor& smooth_term, int64_t C, int64_t reduction, int64_t ignore_index, double smoothing);

// Class-index targets without class weights or smoothing, [N, C] or [C]: one fused kernel forward and one
// backward (cross_entropy_cpu.cpp, cuda/cross_entropy.cu; NllLossBackward0 in autograd/formulas_nn.cpp).
bool fused_cross_entropy_applies(const Tensor& input, bool probabilities, const Tensor& weight, double smoothing) {
  return !probabilities && !weight.defined() && smoothing == 0 && input.dim() <= 2;
}

Tensor cross_entropy_any(const Tensor& input, const Tensor& target, const Tensor& weight, int64_t reduction,
                         int64_t ignore_index, double smoothing) {
  VT_CHECK_VALUE(reduction >= 0 && reduction <= 2, "cross_entropy: reduction must be 0 (none), 1 (mean) or 2 (sum)");
  VT_CHECK(smoothing >= 0 && smoothing <= 1, "label_smoothing must be between 0.0 and 1.0. Got: ", smoothing);
  // torch reads a target of the input's shape as class probabilities and wants it floating, before anything
  // reads the class dim (a 0-dim input beside a 0-dim integer target included)
  const bool same_shape = DimVector(target.sizes()) == DimVector(input.sizes());
  const bool probabilities = is_floating(target.dtype());
  VT_CHECK(!same_shape || probabilities,
           "cross_entropy: expected a floating point target for class probabilities (a target of the input's shape ",
           shape_str(input.sizes()), "), got ", dtype_name(target.dtype()));
  VT_CHECK(!same_shape || !probabilities || ignore_index < 0,
           "ignore_index is not supported for floating point target");
  VT_CHECK_INDEX(input.dim() >= 1, "cross_entropy: Dimension specified as 1 but tensor has no dimensions");
  int64_t cdim = input.dim() == 1 ? 0 : 1;
  int64_t C = input.size(cdim);
  if (input.dim() >= 2) {  // torch checks the batch first
    int64_t target_batch = target.dim() == 0 ? 0 : target.size(0);
    VT_CHECK_VALUE(input.size(0) == target_batch, "Expected input batch_size (", input.size(0),
                   ") to match target batch_size (", target_batch, ").");
    // an empty batch beside a 0-dim target passes that check; torch's 2-D path then reads target.size(0),
    // before it looks at the weight or the input's dtype
    VT_CHECK_INDEX(input.dim() != 2 || target.dim() >= 1, "Dimension specified as 0 but tensor has no dimensions");
  }
  if (!probabilities) {  // torch checks class-index targets before the weight and before its log_softmax
    VT_CHECK(target.dtype() == ScalarType::Int64 || target.dtype() == ScalarType::Int32,
             "cross_entropy: expected target of dtype int64 (class indices) or floating (probabilities), got ",
             dtype_name(target.dtype()));
    check_class_index_target(input, target);
  }
  VT_CHECK(!weight.defined() || (weight.dim() == 1 && weight.size(0) == C), "cross_entropy: weight of shape ",
           weight.defined() ? shape_str(weight.sizes()) : "", " does not match ", C, " classes");
  if (fused_cross_entropy_applies(input, probabilities, weight, smoothing)) {
    static const TypedOp<std::tuple<Tensor, Tensor, Tensor>(const Tensor&, const Tensor&, int64_t, int64_t)> rows(
        "vt::_cross_entropy_rows");
    const Tensor x = input.dim() == 1 ? ops::unsqueeze(input, 0) : input;
    Tensor loss = std::get<0>(rows(x, ops::reshape(target, DimVector{-1}), ignore_index, reduction));
    return reduction == 0 ? ops::reshape(loss, target.sizes()) : loss;
  }
  Tensor logp = softmax_impl(input, cdim, std::nullopt, true);
  // [M, C]: classes last, everything else flattened.
  Tensor lp = classes_last(logp);
  Tensor w = weight.defined() ? ops::to_dtype(weight, lp.dtype()) : Tensor();
  Tensor smooth_term = w.defined() ? ops::mul(lp, w) : lp;
  if (probabilities) {  // class probabilities, same shape as input
    VT_CHECK(ignore_index < 0, "ignore_index is not supported for floating point target");
    VT_CHECK(same_shape, "cross_entropy: probability target of shape ",
             shape_str(target.sizes()), " must match input ", shape_str(input.sizes()));
    Tensor tp = classes_last(target);
    if (smoothing > 0) tp = ops::add(ops::mul(tp, num(1 - smoothing)), num(smoothing / double(C)));
    Tensor loss = ops::unary("vt::neg", ops::sum(ops::mul(smooth_term, tp), DimVector{1}, false, std::nullopt));
    if (reduction == 0) return ops::reshape(loss, loss_shape(input));
    Tensor total = ops::sum(loss, std::nullopt, false, std::nullopt);
    // torch's mean divides by input.numel() / C, which is 0 / 0 (NaN) when there are no classes
    return reduction == 2 ? total : ops::div(total, num(C > 0 ? double(lp.size(0)) : 0.0));
  }
  // torch's nll_loss takes the weight in the input's dtype only, and says so before it reads any target
  VT_CHECK(!weight.defined() || weight.dtype() == input.dtype(), "cross_entropy: expected a weight of dtype ",
           dtype_name(input.dtype()), " (the input's), got ", dtype_name(weight.dtype()));
  return with_target_version(class_index_loss(input, target, lp, w, smooth_term, C, reduction, ignore_index, smoothing),
                             target);
}

Tensor class_index_loss(const Tensor& input, const Tensor& target, const Tensor& lp, const Tensor& w,
                        const Tensor& smooth_term, int64_t C, int64_t reduction, int64_t ignore_index, double smoothing) {
  Tensor t = ops::reshape(target, DimVector{-1});
  VT_CHECK(t.size(0) == lp.size(0), "cross_entropy: expected target of ", lp.size(0), " elements, got shape ",
           shape_str(target.sizes()));
  Tensor valid = ops::binary("vt::ne", t, scalar_to_tensor(Scalar(ignore_index), ScalarType::Int64));
  Tensor t_safe = nonnegative_indices(ops::where(valid, t, scalar_to_tensor(Scalar(int64_t(0)), ScalarType::Int64)), C,
                                     "cross_entropy: target");
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
  m.def("cross_entropy(Tensor input, Tensor target, Tensor? weight=None, int reduction=1, int ignore_index=-100, float label_smoothing=0.0) -> Tensor", OpKind::Composite);
  m.impl_any("cross_entropy", &cross_entropy_any);
  m.def("_keep_versions(Tensor self, Tensor[] kept) -> Tensor");  // Note [Indices read through copies]
  // The fused kernels (cross_entropy_cpu.cpp, cuda/cross_entropy.cu): -> (loss, stats, count), the last two kept
  // for the backward.
  m.def("_cross_entropy_rows(Tensor input, Tensor target, int ignore_index, int reduction) -> (Tensor, Tensor, Tensor)");
  m.def("_cross_entropy_rows_backward(Tensor grad, Tensor input, Tensor target, Tensor stats, Tensor count, "
        "int ignore_index, int reduction) -> Tensor");
  m.impl_any("_keep_versions", &keep_versions_any);
  m.def("softmax(Tensor self, int dim, ScalarType? dtype=None) -> Tensor", OpKind::Composite);
  m.def("log_softmax(Tensor self, int dim, ScalarType? dtype=None) -> Tensor", OpKind::Composite);
  m.def("layer_norm(Tensor input, int[] normalized_shape, Tensor? weight=None, Tensor? bias=None, float eps=1e-05) -> Tensor", OpKind::Composite);
  m.def("rms_norm(Tensor input, int[] normalized_shape, Tensor? weight=None, float? eps=None) -> Tensor", OpKind::Composite);
  m.def("embedding(Tensor weight, Tensor indices) -> Tensor", OpKind::Composite);
  // CUDA only (cuda/embedding.cu): the rows, with a formula of its own (EmbeddingBackward0).
  m.def("_embedding_rows(Tensor weight, Tensor indices) -> Tensor");
  m.def("dropout(Tensor input, float p=0.5, bool train=True) -> Tensor", OpKind::Composite);
  m.impl_any("softmax", &softmax_any);
  m.impl_any("log_softmax", &log_softmax_any);
  m.impl_any("layer_norm", &layer_norm_any);
  m.impl_any("rms_norm", &rms_norm_any);
  m.impl_any("embedding", &embedding_any);
  m.impl_any("dropout", &dropout_any);
}

}  // namespace vt
