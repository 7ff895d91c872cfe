// Backward formulas of gather, the scatter family, sort/topk and im2col/col2im (Note [Autograd kernels]).
// gather and the scatters are each other's adjoints: gather's gradient is a scatter_add of the gradient into
// zeros, a scatter's src gradient is a gather of the gradient. sort and topk send each value's gradient back
// to the position it came from. im2col and col2im are adjoint linear maps. All are built from differentiable
// ops, so create_graph works through them. scatter_reduce's "prod" has no formula (its backward raises).
#include "formula_helpers.h"

namespace vt::autograd {
namespace {
using namespace fx;

using ScatterOp = TypedOp<Tensor(const Tensor&, int64_t, const Tensor&, const Tensor&)>;
const ScatterOp scatter_add_op("vt::scatter_add"), scatter_op("vt::scatter");
const TypedOp<Tensor(const Tensor&, int64_t, const Tensor&)> gather_op("vt::gather");

Tensor ones_shaped(IntArrayRef sizes, const Tensor& like) {
  return ops::full(sizes, Scalar(int64_t(1)), like.dtype(), like.device());
}

// t (index's shape) placed at the front corner of zeros of `sizes` (a scatter's src may be larger than index).
Tensor fit_to(const Tensor& t, IntArrayRef sizes) {
  if (std::equal(sizes.begin(), sizes.end(), t.sizes().begin(), t.sizes().end())) return t;
  if (t.dim() != int64_t(sizes.size())) {  // a 0-dim src beside a 1-d index of one or no element, as torch allows
    return t.numel() == 0 ? zeros(sizes, t) : ops::reshape(t, sizes);
  }
  Tensor z = zeros(sizes, t), corner = z;
  for (int64_t d = 0; d < t.dim(); ++d) corner = ops::narrow(corner, d, 0, t.size(d));
  ops::copy_(corner, t);
  return z;
}
// The leading corner of t of index's shape (the src elements a scatter reads).
Tensor corner_of(const Tensor& t, IntArrayRef sizes) {
  Tensor c = t;
  for (int64_t d = 0; d < c.dim(); ++d) c = ops::narrow(c, d, 0, sizes[size_t(d)]);
  return c;
}

// gather(self, dim, index): each read element's gradient goes back where it was read (repeats add up).
void gather_backward(BackwardContext& c) {
  c.set(0, scatter_add_op(zeros(c.input_sizes(0), c.grad()), c.int_arg(1), c.saved(2), c.grad()));
}

// scatter(self, dim, index, src): overwritten positions of self get no gradient; src gets it from there.
void scatter_backward(BackwardContext& c) {
  Tensor index = c.saved(2);
  if (c.needs(0)) c.set(0, scatter_op(c.grad(), c.int_arg(1), index, zeros(index.sizes(), c.grad())));
  if (c.needs(3)) c.set(3, fit_to(gather_op(c.grad(), c.int_arg(1), index), c.input_sizes(3)));
}

// scatter_add(self, dim, index, src): self passes the gradient through; src reads it from its targets.
void scatter_add_backward(BackwardContext& c) {
  if (c.needs(0)) c.set(0, c.grad());
  if (c.needs(3)) c.set(3, fit_to(gather_op(c.grad(), c.int_arg(1), c.saved(2)), c.input_sizes(3)));
}

// scatter_reduce(self, dim, index, src, reduce, include_self).
//   sum:  as scatter_add; without include_self the scattered positions of self were replaced, so get none.
//   mean: as sum, divided by the number of values averaged at each position.
//   amax/amin: the values equal to the result share its gradient evenly (torch's rule), among self and the src
//   elements scattered there; without include_self the scattered positions of self get none.
void scatter_reduce_backward(BackwardContext& c) {
  std::string reduce = std::get<std::string>(c.arg(4));
  if (reduce == "max" || reduce == "min") reduce = "a" + reduce;  // the old names of amax / amin
  const bool include_self = std::get<bool>(c.arg(5));
  const int64_t dim = c.int_arg(1);
  Tensor index = c.saved(2), g = c.grad();
  Tensor scattered = scatter_op(zeros(c.input_sizes(0), g), dim, index, ones_shaped(index.sizes(), g));  // 1 where written
  Tensor untouched = bin("vt::eq", scattered, num(0.0));
  if (reduce == "sum" || reduce == "mean") {
    Tensor share = g;
    if (reduce == "mean") {
      Tensor count = scatter_add_op(ops::full(c.input_sizes(0), Scalar(int64_t(include_self ? 1 : 0)), g.dtype(), g.device()),
                                    dim, index, ones_shaped(index.sizes(), g));
      share = div(g, ops::binary("vt::maximum", count, num(1.0)));
    }
    if (c.needs(0)) c.set(0, include_self ? share : where_or_zero(untouched, g));
    if (c.needs(3)) c.set(3, fit_to(gather_op(share, dim, index), c.input_sizes(3)));
    return;
  }
  VT_CHECK(reduce == "amax" || reduce == "amin", "the derivative for 'vt::scatter_reduce' with reduce='", reduce,
           "' is not implemented");
  Tensor self = c.saved(0), result = c.result();
  Tensor src = corner_of(c.saved(3), index.sizes());
  // Without include_self, torch still counts a self value equal to the result among the ties (it only zeroes
  // self's gradient at the scattered positions afterwards), so the src elements get 1/3 each, not 1/2, when one
  // self value ties with two of them: counted the same way here.
  Tensor self_is = bin("vt::eq", self, result);
  Tensor src_is = bin("vt::eq", src, gather_op(result, dim, index));
  Tensor self_w = ops::to_dtype(self_is, g.dtype()), src_w = ops::to_dtype(src_is, g.dtype());
  Tensor count = scatter_add_op(self_w, dim, index, src_w);
  Tensor share = div(g, ops::binary("vt::maximum", count, num(1.0)));
  if (c.needs(0)) c.set(0, include_self ? mul(share, self_w) : where_or_zero(untouched, mul(share, self_w)));
  if (c.needs(3)) c.set(3, fit_to(mul(gather_op(share, dim, index), src_w), c.input_sizes(3)));
}

// sort / topk: values[j] = self[indices[j]] along dim, so the gradient is scattered back to the indices.
void sorted_backward(BackwardContext& c, int64_t dim) {
  c.set(0, scatter_add_op(zeros(c.input_sizes(0), c.grad()), dim, c.result(1), c.grad()));
}
void sort_backward(BackwardContext& c) { sorted_backward(c, c.int_arg(1)); }
void topk_backward(BackwardContext& c) { sorted_backward(c, c.int_arg(2)); }

using IntList = std::vector<int64_t>;
const IntList& ints(const BackwardContext& c, size_t i) { return std::get<IntList>(c.arg(i)); }

// im2col(self, kernel, dilation, padding, stride) and col2im(self, output_size, kernel, ...) are adjoints.
void im2col_backward(BackwardContext& c) {
  static const TypedOp<Tensor(const Tensor&, IntArrayRef, IntArrayRef, IntArrayRef, IntArrayRef, IntArrayRef)> col2im("vt::col2im");
  IntArrayRef in = c.input_sizes(0);  // [N, C, H, W] or unbatched [C, H, W]
  IntList hw{in[in.size() - 2], in[in.size() - 1]};
  c.set(0, col2im(c.grad(), hw, ints(c, 1), ints(c, 2), ints(c, 3), ints(c, 4)));
}
void col2im_backward(BackwardContext& c) {
  static const TypedOp<Tensor(const Tensor&, IntArrayRef, IntArrayRef, IntArrayRef, IntArrayRef)> im2col("vt::im2col");
  c.set(0, im2col(c.grad(), ints(c, 2), ints(c, 3), ints(c, 4), ints(c, 5)));
}

// _embedding_rows(weight, indices): each picked row's gradient adds into its row of zeros shaped like the weight
// (rows picked twice add up), as torch's embedding_dense_backward; the indices take none.
void embedding_rows_backward(BackwardContext& c) {
  static const TypedOp<Tensor(const Tensor&, TensorList, const Tensor&, bool)> index_put("vt::index_put_");
  const IntArrayRef w = c.input_sizes(0);
  Tensor idx = ops::reshape(c.saved(1), DimVector{-1});
  if (idx.dtype() != ScalarType::Int64) idx = ops::to_dtype(idx, ScalarType::Int64);
  Tensor g = ops::reshape(c.grad(), DimVector{idx.numel(), w[1]});
  // 16-bit gradients add up in float32 (the node rounds the sum once), as torch's: a row picked many times
  // otherwise rounds after every add.
  if (g.dtype() == ScalarType::Float16 || g.dtype() == ScalarType::BFloat16) g = ops::to_dtype(g, ScalarType::Float32);
  Tensor zeros = ops::full(w, Scalar(int64_t(0)), g.dtype(), g.device());
  c.set(0, index_put(zeros, TensorList(&idx, 1), g, true));
}

// _resample(input, indices, weights, adjoint_indices, adjoint_weights): the gradient goes back through the
// adjoint resampling, each output's gradient added into the input rows it read (Note [Resampling plans] in
// ops/resample.h): by the adjoint plans where the call gave them (Note [Adjoint plans]; their own gradient is
// the forward, the plans swapping places), by _resample_backward otherwise. _resample_backward is linear in its
// gradient, so its own gradient is the forward resampling again (double backward).
using Tensors = std::vector<Tensor>;
const Tensors& tensors(const BackwardContext& c, size_t i) { return std::get<Tensors>(c.arg(i)); }
const TypedOp<Tensor(const Tensor&, TensorList, TensorList, TensorList, TensorList)>& resample_op() {
  static const TypedOp<Tensor(const Tensor&, TensorList, TensorList, TensorList, TensorList)> op("vt::_resample");
  return op;
}
void resample_backward(BackwardContext& c) {
  static const TypedOp<Tensor(const Tensor&, IntArrayRef, TensorList, TensorList)> adjoint("vt::_resample_backward");
  if (!tensors(c, 3).empty()) return c.set(0, resample_op()(c.grad(), tensors(c, 3), tensors(c, 4), tensors(c, 1),
                                                            tensors(c, 2)));
  c.set(0, adjoint(c.grad(), c.input_sizes(0), tensors(c, 1), tensors(c, 2)));
}
void resample_adjoint_backward(BackwardContext& c) {
  c.set(0, resample_op()(c.grad(), tensors(c, 2), tensors(c, 3), {}, {}));
}

const bool gather_formulas_registered = [] {
  Formula sort{"vt::sort", "SortBackward0", 0, false, sort_backward};
  sort.saves_other_results = true;
  sort.differentiable_outputs = 1u;
  Formula topk{"vt::topk", "TopkBackward0", 0, false, topk_backward};
  topk.saves_other_results = true;
  topk.differentiable_outputs = 1u;
  register_formulas({
      {"vt::gather", "GatherBackward0", 1u << 2, false, gather_backward},
      {"vt::scatter", "ScatterBackward0", 1u << 2, false, scatter_backward},
      {"vt::scatter_add", "ScatterAddBackward0", 1u << 2, false, scatter_add_backward},
      {"vt::scatter_reduce", "ScatterReduceBackward0", (1u << 0) | (1u << 2) | (1u << 3), true, scatter_reduce_backward},
      sort,
      topk,
      {"vt::im2col", "Im2ColBackward0", 0, false, im2col_backward},
      {"vt::col2im", "Col2ImBackward0", 0, false, col2im_backward},
      {"vt::_embedding_rows", "EmbeddingBackward0", 1u << 1, false, embedding_rows_backward},
      {"vt::_resample", "ResampleBackward0", 0, false, resample_backward},
      {"vt::_resample_backward", "ResampleBackwardBackward0", 0, false, resample_adjoint_backward},
  });
  return true;
}();

}  // namespace
}  // namespace vt::autograd
