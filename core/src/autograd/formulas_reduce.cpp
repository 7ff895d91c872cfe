// Backward formulas of the selecting and multiplying reductions and the scans: amax/amin, max/min (whole tensor
// and along a dim), prod, logsumexp, cumsum, cumprod (Note [Autograd kernels]); and of CUDA's one-launch var,
// std and 2-norm. Ties follow torch: amax/amin and the
// whole-tensor max/min share the gradient evenly among equal extremes, max/min along a dim give it all to the
// index they returned. Zeros in prod and cumprod are handled exactly (no division by them) and without a host
// sync; every formula is built from differentiable ops, so create_graph works through all of them (with a term
// that is zero in value, added only under create_graph, to get second derivatives right at two zeros).
#include <algorithm>

#include "formula_helpers.h"

namespace vt::autograd {
namespace {
using namespace fx;

// The dims a reduction argument `int[]? dim` names, wrapped and sorted; none or empty means all of them.
std::vector<int64_t> reduced_dims(const IValue& dim_arg, int64_t nd) {
  std::vector<int64_t> dims;
  auto given = opt_ints(dim_arg);
  if (given && !given->empty()) {
    for (int64_t d : *given) dims.push_back(wrap_dim(d, std::max<int64_t>(nd, 1)));
  } else {
    for (int64_t d = 0; d < nd; ++d) dims.push_back(d);
  }
  std::sort(dims.begin(), dims.end());
  dims.erase(std::unique(dims.begin(), dims.end()), dims.end());
  if (nd == 0) dims.clear();
  return dims;
}
// A reduction's output (or its gradient) with the reduced dims back as size 1, so it broadcasts to the input.
Tensor with_kept_dims(Tensor t, const std::vector<int64_t>& dims, bool keepdim) {
  if (keepdim) return t;
  for (int64_t d : dims) t = ops::unsqueeze(t, d);
  return t;
}
Tensor as_dtype_of(const Tensor& t, const Tensor& like) { return t.dtype() == like.dtype() ? t : ops::to_dtype(t, like.dtype()); }

// grad * mask / count(mask): the reduced gradient shared evenly among the positions in `mask`.
Tensor share_evenly(const Tensor& g, const Tensor& mask, const std::vector<int64_t>& dims) {
  Tensor m = as_dtype_of(mask, g);
  Tensor count = dims.empty() ? m : ops::sum(m, dims, /*keepdim=*/true, std::nullopt);
  return mul(div(g, count), m);
}

// amax/amin(self, dim, keepdim): the positions equal to the result share its gradient.
void amax_backward(BackwardContext& c) {
  Tensor x = c.saved(0);
  auto dims = reduced_dims(c.arg(1), x.dim());
  bool keepdim = std::get<bool>(c.arg(2));
  Tensor r = with_kept_dims(c.result(), dims, keepdim), g = with_kept_dims(c.grad(), dims, keepdim);
  c.set(0, share_evenly(g, bin("vt::eq", x, r), dims));
}
// logsumexp(self, dim, keepdim): torch's formula, grad * exp(self - result), with the result as the forward
// returned it. Differentiating the composite (exp(self - max) / sum) instead gave the exact softmax, which
// differs from torch's where the result rounds (two float16 maxima of 65504: 0.5 each against torch's 1, the
// result 65504.69 being stored as 65504) or is inf ([65504, inf]: NaN for both against torch's [0, NaN]).
void logsumexp_backward(BackwardContext& c) {
  Tensor x = c.saved(0);
  auto dims = reduced_dims(c.arg(1), x.dim());
  bool keepdim = std::get<bool>(c.arg(2));
  Tensor r = with_kept_dims(c.result(), dims, keepdim), g = with_kept_dims(c.grad(), dims, keepdim);
  c.set(0, mul(g, un("vt::exp", sub(x, r))));
}
// _var_welford(self, dim, correction, keepdim, root), the one-launch var / std of CUDA tensors: torch's
// var_backward, grad * (2 / (n - correction)) * (self - mean(self)), and std_backward, var_backward of
// grad / (2 * result), zero where the result is 0 (a constant row: torch's gradient there is 0, not NaN).
void var_welford_backward(BackwardContext& c) {
  Tensor x = c.saved(0);
  auto dims = reduced_dims(c.arg(1), x.dim());
  const double correction = std::get<double>(c.arg(2));
  const bool keepdim = std::get<bool>(c.arg(3)), root = std::get<bool>(c.arg(4));
  int64_t n = 1;
  for (int64_t d : dims) n *= x.size(d);
  Tensor g = with_kept_dims(c.grad(), dims, keepdim);
  if (root) {
    Tensor r = with_kept_dims(c.result(), dims, keepdim);
    g = ops::where(bin("vt::eq", r, num(0.0)), num(0.0), div(g, mul(r, num(2.0))));
  }
  Tensor centred = sub(x, ops::mean(x, dims, /*keepdim=*/true, std::nullopt));
  c.set(0, mul(mul(g, num(2.0 / (double(n) - correction))), centred));
}
const char* var_welford_name(const Stack& args) {
  return std::get<bool>(args.at(4)) ? "StdBackward0" : "VarBackward0";
}
// _pnorm(self, p, dim, keepdim), the one-launch p-norm of CUDA tensors, differentiated for p = 2 only (the other
// orders record their compositions): torch's norm_backward, self * grad / result, zero where the result is 0.
void pnorm_backward(BackwardContext& c) {
  Tensor x = c.saved(0);
  VT_INTERNAL_ASSERT(std::get<double>(c.arg(1)) == 2.0, "_pnorm's gradient is the 2-norm's");
  auto dims = reduced_dims(c.arg(2), x.dim());
  const bool keepdim = std::get<bool>(c.arg(3));
  Tensor r = with_kept_dims(c.result(), dims, keepdim), g = with_kept_dims(c.grad(), dims, keepdim);
  c.set(0, mul(x, ops::where(bin("vt::eq", r, num(0.0)), num(0.0), div(g, r))));
}
// max/min(self) over everything: the same, with NaN results matching NaN inputs (torch's
// evenly_distribute_backward).
void max_all_backward(BackwardContext& c) {
  Tensor x = c.saved(0), r = c.result();
  Tensor mask = bin("vt::logical_or", bin("vt::eq", x, r),
                    bin("vt::logical_and", un("vt::isnan", x), un("vt::isnan", r)));
  std::vector<int64_t> all;
  for (int64_t d = 0; d < x.dim(); ++d) all.push_back(d);
  c.set(0, share_evenly(c.grad(), mask, all));
}
// max_dim/min_dim(self, dim, keepdim) -> (values, indices): the gradient of each value goes to its index, as a
// comparison with positions along the dim (differentiable, unlike an in-place scatter).
void max_dim_backward(BackwardContext& c) {
  IntArrayRef sizes = c.input_sizes(0);
  int64_t nd = int64_t(sizes.size());
  if (nd == 0) return c.set(0, c.grad());
  int64_t dim = wrap_dim(c.int_arg(1), nd);
  bool keepdim = std::get<bool>(c.arg(2));
  Tensor g = with_kept_dims(c.grad(), {dim}, keepdim), idx = with_kept_dims(c.result(1), {dim}, keepdim);
  DimVector pos_shape(size_t(nd), 1);
  pos_shape[size_t(dim)] = sizes[size_t(dim)];
  Tensor pos = ops::view(ops::arange(Scalar(int64_t(0)), Scalar(sizes[size_t(dim)]), Scalar(int64_t(1)),
                                     ScalarType::Int64, idx.device()), pos_shape);
  c.set(0, where_or_zero(bin("vt::eq", pos, idx), g));
}

// prod(self, dim, keepdim, dtype): d prod / d x_i is the product of the others. Where x_i != 0 that is
// result / x_i (zero when another element is zero); where x_i == 0 it is the product of the non-zero others if
// x_i is the only zero of its slice, else zero.
Tensor prod_op(const Tensor& x, const std::vector<int64_t>& dims) {
  static const TypedOp<Tensor(const Tensor&, OptionalIntArrayRef, bool, std::optional<ScalarType>)> op("vt::prod");
  return op(x, IntArrayRef(dims), true, std::nullopt);
}
void prod_backward(BackwardContext& c) {
  Tensor x = c.saved(0);
  if (x.dim() == 0) return c.set(0, c.grad());
  // With dtype= the product was taken in the result's dtype: so is its gradient (torch casts self to it too;
  // a float64 input reduced in float32 gets the float32 quotients, not more precise ones).
  if (x.dtype() != c.result().dtype()) x = ops::to_dtype(x, c.result().dtype());
  auto dims = reduced_dims(c.arg(1), x.dim());
  bool keepdim = std::get<bool>(c.arg(2));
  Tensor r = with_kept_dims(c.result(), dims, keepdim), g = with_kept_dims(c.grad(), dims, keepdim);
  Tensor zero = bin("vt::eq", x, num(0.0));
  Tensor x_or_one = ops::where(zero, num(1.0), x);
  Tensor zeros_in_slice = ops::sum(zero, dims, /*keepdim=*/true, std::nullopt);
  Tensor others = prod_op(x_or_one, dims);
  Tensor at_zero = where_or_zero(bin("vt::eq", zeros_in_slice, num(1.0)), others);
  if (is_grad_enabled()) {
    // create_graph: at one of exactly two zeros the gradient is zero but moves with the other zero. Writing it
    // as (the other zero's value) * product of the non-zeros keeps the value and gives that derivative.
    Tensor other_zero = sub(ops::sum(where_or_zero(zero, x), dims, /*keepdim=*/true, std::nullopt), x);
    at_zero = add(at_zero, where_or_zero(bin("vt::eq", zeros_in_slice, num(2.0)), mul(other_zero, others)));
  }
  c.set(0, mul(g, ops::where(zero, at_zero, div(r, x_or_one))));
}
const char* prod_name(const Stack& args) {
  return std::holds_alternative<std::monostate>(args.at(1)) ? "ProdBackward0" : "ProdBackward1";
}

// Reversal along `dim` (advanced indexing with a descending arange, differentiable).
Tensor flip(const Tensor& t, int64_t dim) {
  int64_t n = t.sizes()[size_t(dim)];
  std::vector<Tensor> index(size_t(dim) + 1);
  index[size_t(dim)] = ops::arange(Scalar(n - 1), Scalar(int64_t(-1)), Scalar(int64_t(-1)), ScalarType::Int64, t.device());
  return ops::index(t, index);
}
Tensor cumsum_op(const Tensor& t, int64_t dim) {
  static const TypedOp<Tensor(const Tensor&, int64_t, std::optional<ScalarType>)> op("vt::cumsum");
  return op(t, dim, std::nullopt);
}
// sum over k >= i of t_k along dim.
Tensor reverse_cumsum(const Tensor& t, int64_t dim) { return flip(cumsum_op(flip(t, dim), dim), dim); }

// cumsum(self, dim, dtype): each input feeds every output at or after it.
void cumsum_backward(BackwardContext& c) {
  const Tensor& g = c.grad();
  if (g.dim() == 0 || g.numel() == 0) return c.set(0, g);
  c.set(0, reverse_cumsum(g, wrap_dim(c.int_arg(1), g.dim())));
}

// cumprod(self, dim, dtype): grad_i = sum_{k >= i} g_k prod_{j <= k, j != i} x_j. Where x_i != 0 this is
// reverse_cumsum(g * out)_i / x_i. At the first zero z of a line it is reverse_cumsum(g * cumprod(x'))_z, x'
// being x with that zero replaced by one; at later zeros every term holds the first zero, so it is zero.
void cumprod_backward(BackwardContext& c) {
  Tensor x = c.saved(0), g = c.grad();
  // One element: the identity's gradient, as torch returns it (the quotient below is inf / inf = NaN at x = inf)
  if (x.numel() <= 1) return c.set(0, g);
  int64_t dim = wrap_dim(c.int_arg(1), x.dim());
  static const TypedOp<Tensor(const Tensor&, int64_t, std::optional<ScalarType>)> cumprod("vt::cumprod");
  Tensor zero = bin("vt::eq", x, num(0.0));
  Tensor x_or_one = ops::where(zero, num(1.0), x);
  Tensor nonzero_part = div(reverse_cumsum(mul(g, c.result()), dim), x_or_one);
  Tensor zeros_so_far = cumsum_op(ops::to_dtype(zero, ScalarType::Int64), dim);
  Tensor first_zero = bin("vt::logical_and", zero, bin("vt::eq", zeros_so_far, num(1.0)));
  Tensor x_first_one = ops::where(first_zero, num(1.0), x);
  Tensor at_first_zero = reverse_cumsum(mul(g, cumprod(x_first_one, dim, std::nullopt)), dim);
  Tensor at_later_zeros = num(0.0);
  if (is_grad_enabled()) {
    // create_graph: at the second zero the gradient is x_z1 * reverse_cumsum(g * cumprod(x''))_z2 (x'' with both
    // zeros replaced by one): zero, but it moves with the first zero. Later zeros have two zeros in every term.
    Tensor second_zero = bin("vt::logical_and", zero, bin("vt::eq", zeros_so_far, num(2.0)));
    Tensor x_two_ones = ops::where(bin("vt::logical_and", zero, bin("vt::le", zeros_so_far, num(2.0))), num(1.0), x);
    Tensor first_value = ops::sum(where_or_zero(first_zero, x), DimVector{dim}, /*keepdim=*/true, std::nullopt);
    Tensor rest = reverse_cumsum(mul(g, cumprod(x_two_ones, dim, std::nullopt)), dim);
    at_later_zeros = where_or_zero(second_zero, mul(first_value, rest));
  }
  c.set(0, ops::where(zero, ops::where(first_zero, at_first_zero, at_later_zeros), nonzero_part));
}

const bool reduce_formulas_registered = [] {
  Formula max_dim{"vt::max_dim", "MaxBackward0", 0, false, max_dim_backward};
  max_dim.saves_other_results = true;
  Formula min_dim = max_dim;
  min_dim.op = "vt::min_dim";
  min_dim.node_name = "MinBackward0";
  register_formulas({
      {"vt::amax", "AmaxBackward0", kSelf, true, amax_backward},
      {"vt::amin", "AminBackward0", kSelf, true, amax_backward},
      {"vt::max", "MaxBackward1", kSelf, true, max_all_backward},
      {"vt::min", "MinBackward1", kSelf, true, max_all_backward},
      max_dim,
      min_dim,
      {"vt::prod", "ProdBackward0", kSelf, true, prod_backward, false, prod_name},
      {"vt::logsumexp", "LogsumexpBackward0", kSelf, true, logsumexp_backward},
      {"vt::_var_welford", "VarBackward0", kSelf, true, var_welford_backward, false, var_welford_name},
      {"vt::_pnorm", "LinalgVectorNormBackward0", kSelf, true, pnorm_backward},
      {"vt::cumsum", "CumsumBackward0", 0, false, cumsum_backward},
      {"vt::cumprod", "CumprodBackward0", kSelf, true, cumprod_backward},
  });
  return true;
}();

}  // namespace
}  // namespace vt::autograd
