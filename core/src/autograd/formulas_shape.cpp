// Backward formulas of views, casts and copies, reductions, matrix products and selection ops
// (Note [Autograd kernels]). A view's gradient is the incoming gradient put back into the input's geometry:
// reshaped, permuted back, or scattered into zeros at the viewed positions.
#include <algorithm>
#include <optional>

#include "formula_helpers.h"
#include "vt/core/memory_overlap.h"
#include "vt/autograd/grad_mode.h"

namespace vt::autograd {
namespace {
using namespace fx;

void reshape_backward(BackwardContext& c) { c.set(0, ops::reshape(c.grad(), c.input_sizes(0))); }
void permute_backward(BackwardContext& c) {
  const auto& dims = std::get<std::vector<int64_t>>(c.arg(1));
  std::vector<int64_t> inverse(dims.size());
  for (size_t i = 0; i < dims.size(); ++i) inverse[size_t(wrap_dim(dims[i], int64_t(dims.size())))] = int64_t(i);
  c.set(0, ops::permute(c.grad(), inverse));
}
void transpose_backward(BackwardContext& c) { c.set(0, ops::transpose(c.grad(), c.int_arg(1), c.int_arg(2))); }
void expand_backward(BackwardContext& c) { c.set(0, sum_to(c.grad(), c.input_sizes(0))); }

// Scatters the gradient of a strided sub-view back into zeros of the input's shape. `view_of` re-applies the
// forward view to the zeros. Under create_graph the copy_ is recorded as an in-place op on a view of the zeros
// (Note [View rebasing]), so the result differentiates again.
template <typename ViewFn>
void scatter_backward(BackwardContext& c, ViewFn view_of) {
  Tensor z = zeros(c.input_sizes(0), c.grad());
  ops::copy_(view_of(z), c.grad());
  c.set(0, z);
}
void select_backward(BackwardContext& c) {
  scatter_backward(c, [&](const Tensor& z) { return ops::select(z, c.int_arg(1), c.int_arg(2)); });
}
void slice_backward(BackwardContext& c) {
  scatter_backward(c, [&](const Tensor& z) {
    return ops::slice(z, c.int_arg(1), opt_int(c.arg(2)), opt_int(c.arg(3)), c.int_arg(4));
  });
}
void narrow_backward(BackwardContext& c) {
  scatter_backward(c, [&](const Tensor& z) { return ops::narrow(z, c.int_arg(1), c.int_arg(2), c.int_arg(3)); });
}

// unbind / split_with_sizes: the pieces' gradients joined in one cat (a missing one reads as zeros).
Tensor cat(const std::vector<Tensor>& parts, int64_t dim) {
  static const TypedOp<Tensor(TensorList, int64_t)> op("vt::cat");
  return op(TensorList(parts), dim);
}

// Note [Adjacent gradient pieces]
// The pieces of an unbind or a split often get gradients that already lie side by side in one buffer: the
// attention backward writes q, k and v's into one when they are views of one projection (Note [Packed attention
// gradients]). Their join is then a view of that buffer, as the pieces were views of the input, rather than a
// copy. Taken only outside create_graph (where the join must be a differentiable op), when every piece is
// defined and they share storage, dtype and strides, each starts where the one before it ends along the joined
// dim (stacked: at one positive step), and the joined view is non-overlapping and dense. An unbind's stack and
// a split's cat of anything else copy as before.
std::optional<Tensor> adjacent_join(const std::vector<Tensor>& parts, int64_t dim, bool stacked) {
  if (parts.size() < 2 || graph_wanted()) return std::nullopt;
  const Tensor& first = parts[0];
  for (const Tensor& p : parts)
    if (!p.defined() || p.storage() != first.storage() || p.dtype() != first.dtype() || p.dim() != first.dim() ||
        DimVector(p.strides()) != DimVector(first.strides()))
      return std::nullopt;
  DimVector sizes(first.sizes()), strides(first.strides());
  const int64_t step = stacked ? parts[1].storage_offset() - first.storage_offset() : 0;
  if (stacked && step <= 0) return std::nullopt;
  int64_t next = first.storage_offset(), joined = 0;
  for (const Tensor& p : parts) {
    for (int64_t d = 0; d < p.dim(); ++d)
      if (d != dim || stacked)
        if (p.size(d) != first.size(d)) return std::nullopt;
    if (p.storage_offset() != next) return std::nullopt;
    next += stacked ? step : p.size(dim) * p.stride(dim);
    joined += stacked ? 1 : p.size(dim);
  }
  if (stacked) {
    sizes.insert(size_t(dim), joined);
    strides.insert(size_t(dim), step);
  } else {
    sizes[size_t(dim)] = joined;
  }
  Tensor view = ops::as_strided(first, sizes, strides, first.storage_offset());
  if (!is_non_overlapping_and_dense(view)) return std::nullopt;
  return view;
}

void unbind_backward(BackwardContext& c) {
  int64_t dim = wrap_dim(c.int_arg(1), int64_t(c.input_sizes(0).size()));
  std::vector<Tensor> grads, parts;
  for (size_t i = 0; i < c.num_grads(); ++i) grads.push_back(c.grad(i));
  if (auto joined = adjacent_join(grads, dim, /*stacked=*/true)) return c.set(0, *joined);
  for (const Tensor& g : grads) parts.push_back(g.defined() ? ops::unsqueeze(g, dim) : g);
  c.set(0, cat(parts, dim));
}
void split_backward(BackwardContext& c) {
  int64_t dim = wrap_dim(c.int_arg(2), int64_t(c.input_sizes(0).size()));
  std::vector<Tensor> parts;
  for (size_t i = 0; i < c.num_grads(); ++i) parts.push_back(c.grad(i));
  if (auto joined = adjacent_join(parts, dim, /*stacked=*/false)) return c.set(0, *joined);
  c.set(0, cat(parts, dim));
}

// copy_(self, src): self is overwritten, so its old value gets a zero gradient (a defined one, as torch's: the
// leaves behind it get a grad of zeros, not None) and src the whole gradient (cast and moved to its dtype/device).
void copy_backward(BackwardContext& c) {
  if (c.needs(0)) c.set(0, zeros(c.input_sizes(0), c.grad()));
  c.set(1, c.grad());
}

// sum/mean: the gradient of each output element goes to every input element it reduced.
Tensor expand_reduced(const Tensor& g, IntArrayRef in_sizes, const IValue& dim_arg, bool keepdim) {
  auto dims = opt_ints(dim_arg);
  Tensor out = g;
  int64_t nd = int64_t(in_sizes.size());
  if (!keepdim && dims && !dims->empty() && nd > 0) {
    std::vector<int64_t> sorted;
    for (int64_t d : *dims) sorted.push_back(wrap_dim(d, nd));
    std::sort(sorted.begin(), sorted.end());
    for (int64_t d : sorted) out = ops::unsqueeze(out, d);
  } else if (!keepdim && nd > 0) {
    out = ops::reshape(out, std::vector<int64_t>(size_t(nd), 1));
  }
  return ops::expand(out, in_sizes);
}
void sum_backward(BackwardContext& c) {
  c.set(0, expand_reduced(c.grad(), c.input_sizes(0), c.arg(1), std::get<bool>(c.arg(2))));
}
void mean_backward(BackwardContext& c) {
  int64_t in = prod(c.input_sizes(0)), out = c.grad().numel();
  Tensor g = div(c.grad(), num(double(out == 0 ? 1 : in / std::max<int64_t>(out, 1))));
  c.set(0, expand_reduced(g, c.input_sizes(0), c.arg(1), std::get<bool>(c.arg(2))));
}
const char* sum_name(const Stack& args) {
  return std::holds_alternative<std::monostate>(args.at(1)) ? "SumBackward0" : "SumBackward1";
}
const char* mean_name(const Stack& args) {
  return std::holds_alternative<std::monostate>(args.at(1)) ? "MeanBackward0" : "MeanBackward1";
}

// Whether a 2-D matrix is stored column-major (a transposed view of a dense matrix, weight.t() in linear).
bool column_major(const Tensor& t) { return t.size(0) > 1 && t.stride(0) == 1 && t.stride(1) == t.size(0); }

// mm: dA = dC B^T, dB = A^T dC; bmm the same per batch. As in torch, the gradient of a column-major operand is
// computed transposed (dB = (dC^T A)^T), so it comes out in the operand's own layout: linear's weight.t() then
// hands the weight a dense gradient through TransposeBackward, which AccumulateGrad keeps without a copy.
void mm_backward(BackwardContext& c) {
  const Tensor& a = c.saved(0);
  const Tensor& b = c.saved(1);
  if (c.needs(0))
    c.set(0, column_major(a) ? ops::transpose(ops::binary("vt::mm", b, ops::transpose(c.grad(), 0, 1)), 0, 1)
                             : ops::binary("vt::mm", c.grad(), ops::transpose(b, 0, 1)));
  if (c.needs(1))
    c.set(1, column_major(b) ? ops::transpose(ops::binary("vt::mm", ops::transpose(c.grad(), 0, 1), a), 0, 1)
                             : ops::binary("vt::mm", ops::transpose(a, 0, 1), c.grad()));
}
// _linear_bias(x [..., K], w [N, K], b) = x w^T + b over the folded rows of x: dx = g w, dw = g^T x (in the
// weight's own [N, K] layout), db = g summed over the rows (a one-element b takes the sum of that).
void linear_bias_backward(BackwardContext& c) {
  const Tensor& x = c.saved(0);
  const Tensor& w = c.saved(1);
  int64_t rows = 1, k = x.size(-1), n = w.size(0);
  for (int64_t d = 0; d + 1 < x.dim(); ++d) rows *= x.size(d);
  Tensor g = ops::reshape(c.grad(), DimVector{rows, n});
  if (c.needs(0)) c.set(0, ops::reshape(ops::binary("vt::mm", g, w), DimVector(x.sizes())));
  // Both from one GEMM on CUDA (its BGRADB epilogue sums db); not under create_graph, whose ops must record.
  if (c.needs(1) && c.needs(2) && !is_grad_enabled()) {
    static const TypedOp<std::tuple<Tensor, Tensor>(const Tensor&, const Tensor&)> both(
        "vt::_linear_weight_bias_grad");
    auto [dw, db] = both(g, ops::reshape(x, DimVector{rows, k}));
    c.set(1, dw);
    return c.set(2, db);
  }
  if (c.needs(1)) c.set(1, ops::binary("vt::mm", ops::transpose(g, 0, 1), ops::reshape(x, DimVector{rows, k})));
  if (c.needs(2)) c.set(2, ops::sum(g, DimVector{0}, false, std::nullopt));
}
const char* linear_bias_name(const Stack& args) {
  const Tensor* x = std::get_if<Tensor>(&args.at(0));
  return x && x->dim() != 2 ? "LinearBackward0" : "AddmmBackward0";  // torch's node for a 2-D input
}
void bmm_backward(BackwardContext& c) {
  if (c.needs(0)) c.set(0, ops::binary("vt::bmm", c.grad(), ops::transpose(c.saved(1), 1, 2)));
  if (c.needs(1)) c.set(1, ops::binary("vt::bmm", ops::transpose(c.saved(0), 1, 2), c.grad()));
}
void bmm_nd_backward(BackwardContext& c) {
  if (c.needs(0)) c.set(0, ops::binary("vt::_bmm_nd", c.grad(), ops::transpose(c.saved(1), -2, -1)));
  if (c.needs(1)) c.set(1, ops::binary("vt::_bmm_nd", ops::transpose(c.saved(0), -2, -1), c.grad()));
}

// where(cond, self, other) and masked_fill_(self, mask, value): the gradient follows the element chosen.
void where_backward(BackwardContext& c) {
  Tensor cond = c.saved(0);
  if (c.needs(1)) c.set(1, where_or_zero(cond, c.grad()));
  if (c.needs(2)) c.set(2, ops::where(cond, num(0.0), c.grad()));
}
void masked_fill_backward(BackwardContext& c) {
  Tensor mask = c.saved(1);
  if (c.needs(0)) c.set(0, ops::where(mask, num(0.0), c.grad()));
  if (c.needs(2)) c.set(2, where_or_zero(mask, c.grad()));
}

// tril / triu keep one triangle and zero the rest: the gradient keeps the same triangle.
void triangle_backward(BackwardContext& c, const char* op) {
  c.set(0, TypedOp<Tensor(const Tensor&, int64_t)>(op)(c.grad(), c.int_arg(1)));
}
void tril_backward(BackwardContext& c) { triangle_backward(c, "vt::tril"); }
void triu_backward(BackwardContext& c) { triangle_backward(c, "vt::triu"); }

// Advanced indexing: the gradient lands at the indexed positions of zeros shaped like the input, duplicate
// indices adding up (embedding rows used twice, cross_entropy's gathers). The accumulating index_put_ has a
// formula of its own, so this differentiates again.
void index_backward(BackwardContext& c) {
  static const TypedOp<Tensor(const Tensor&, TensorList, const Tensor&, bool)> index_put("vt::index_put_");
  const auto& indices = std::get<std::vector<Tensor>>(c.arg(1));
  Tensor zeros = ops::full(c.input_sizes(0), Scalar(int64_t(0)), c.grad().dtype(), c.grad().device());
  c.set(0, index_put(zeros, TensorList(indices), c.grad(), true));
}

// flip(self, dims): the gradient flipped back; roll(self, shifts, dims): rolled back by the negated shifts.
void flip_backward(BackwardContext& c) {
  static const TypedOp<Tensor(const Tensor&, IntArrayRef)> flip("vt::flip");
  c.set(0, flip(c.grad(), std::get<std::vector<int64_t>>(c.arg(1))));
}
void roll_backward(BackwardContext& c) {
  static const TypedOp<Tensor(const Tensor&, IntArrayRef, OptionalIntArrayRef)> roll("vt::roll");
  std::vector<int64_t> back = std::get<std::vector<int64_t>>(c.arg(1));
  for (int64_t& s : back) s = -s;
  const auto* dims = std::get_if<std::vector<int64_t>>(&c.arg(2));  // None: the flattened tensor
  c.set(0, roll(c.grad(), back, dims ? OptionalIntArrayRef(IntArrayRef(*dims)) : OptionalIntArrayRef()));
}

constexpr uint32_t kArg0 = 1u, kArg1 = 2u, kArgs01 = 3u;

const bool shape_formulas_registered = [] {
  auto view = [](const char* op, const char* name, BackwardFn fn) { return Formula{op, name, 0, false, fn, true}; };
  register_formulas({
      view("vt::view", "ViewBackward0", reshape_backward),
      view("vt::reshape", "ViewBackward0", reshape_backward),
      view("vt::flatten", "ViewBackward0", reshape_backward),
      view("vt::unsqueeze", "UnsqueezeBackward0", reshape_backward),
      view("vt::squeeze", "SqueezeBackward0", reshape_backward),
      view("vt::permute", "PermuteBackward0", permute_backward),
      view("vt::transpose", "TransposeBackward0", transpose_backward),
      view("vt::expand", "ExpandBackward0", expand_backward),
      view("vt::select", "SelectBackward0", select_backward),
      view("vt::slice", "SliceBackward0", slice_backward),
      view("vt::narrow", "SliceBackward0", narrow_backward),
      view("vt::unbind", "UnbindBackward0", unbind_backward),
      view("vt::split_with_sizes", "SplitWithSizesBackward0", split_backward),
      {"vt::to_dtype", "ToCopyBackward0", 0, false, identity_backward},
      {"vt::clone", "CloneBackward0", 0, false, identity_backward},
      {"vt::contiguous", "CloneBackward0", 0, false, identity_backward},
      {"vt::copy_", "CopyBackwards", 0, false, copy_backward},
      {"vt::sum", "SumBackward0", 0, false, sum_backward, false, sum_name},
      {"vt::mean", "MeanBackward0", 0, false, mean_backward, false, mean_name},
      {"vt::mm", "MmBackward0", kArgs01, false, mm_backward},
      {"vt::_linear_bias", "AddmmBackward0", kArgs01, false, linear_bias_backward, false, linear_bias_name},
      {"vt::bmm", "BmmBackward0", kArgs01, false, bmm_backward},
      {"vt::_bmm_nd", "BmmBackward0", kArgs01, false, bmm_nd_backward},
      {"vt::where", "WhereBackward0", kArg0, false, where_backward},
      {"vt::masked_fill_", "MaskedFillBackward0", kArg1, false, masked_fill_backward},
      {"vt::index", "IndexBackward0", 0, false, index_backward},
      {"vt::flip", "FlipBackward0", 0, false, flip_backward},
      {"vt::roll", "RollBackward0", 0, false, roll_backward},
      {"vt::tril", "TrilBackward0", 0, false, tril_backward},
      {"vt::triu", "TriuBackward0", 0, false, triu_backward},
  });
  return true;
}();

}  // namespace
}  // namespace vt::autograd
