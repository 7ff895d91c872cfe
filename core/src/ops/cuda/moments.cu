// CUDA mean, var, std and the p-norms as one reduction launch each (Note [Lift and project] in reduce.cuh), as
// torch's: each element is lifted into a float64 accumulator (itself, its square, |x|^p, a Welford state), the
// folded accumulator projected (divided by the count, the root taken) and written in the result's dtype. The
// compositions of ../reduce.cpp did the same in four to nine launches (a float64 copy, a sum, a division, a
// cast; two passes for the variance); they remain the CPU's path and autograd's (var, std and norm record
// through them), and call these where they apply.
#include <algorithm>
#include <cmath>
#include <limits>

#include "../reduce_impl.h"
#include "reduce.cuh"

namespace vt::cuda {
namespace {

using reduce::finish;
using reduce::fold;
using reduce::keepdim_shape;
using reduce::reduced_mask;

int64_t reduced_count(const Tensor& self, const std::vector<bool>& mask) {
  int64_t count = 1;
  for (int64_t d = 0; d < self.dim(); ++d)
    if (mask[size_t(d)]) count *= self.size(d);
  return count;
}

struct MeanC {  // a sum divided by the number of elements each output folds, in float64 before the rounding
  double count;
  VT_HOST_DEVICE double operator()(double a, double b) const { return a + b; }
  VT_HOST_DEVICE double project(double a) const { return a / count; }
};

// Note [Welford states]
// The variance folds (mean, sum of squared deviations, count) states with Chan, Golub and LeVeque's pairwise
// combine, each element a state of count one: one pass in float64, as well conditioned as the two passes
// (subtract the mean, then sum the squares) it replaces, and deterministic, the fold order being the reduction
// kernels' fixed one. An inf element makes the mean inf and the next deviation NaN, as the two passes did.
struct Welford {
  double mean, m2, n;
};
struct WelfordC {
  double denom;  // count - correction, at least 0: torch's order (a correction past the count divides by 0)
  bool root;     // std: the root of the variance, taken in float64 before the rounding
  VT_HOST_DEVICE Welford lift(double x) const { return {x, 0.0, 1.0}; }
  VT_HOST_DEVICE Welford operator()(const Welford& a, const Welford& b) const {
    if (a.n == 0) return b;
    if (b.n == 0) return a;
    const double n = a.n + b.n, d = b.mean - a.mean, w = b.n / n;
    return {a.mean + d * w, a.m2 + b.m2 + d * d * a.n * w, n};
  }
  VT_HOST_DEVICE double project(const Welford& a) const {
    const double v = a.m2 / denom;
    return root ? sqrt(v) : v;
  }
};

// The p-norm of a finite order p != 0 over more than one element: (sum |x|^p)^(1/p), with the 1- and 2-norms as
// a sum of |x| and the root of a sum of squares (p is the same for every thread: the branches do not diverge).
struct PNormC {
  double p;
  VT_HOST_DEVICE double lift(double x) const { return p == 2 ? x * x : p == 1 ? fabs(x) : pow(fabs(x), p); }
  VT_HOST_DEVICE double operator()(double a, double b) const { return a + b; }
  VT_HOST_DEVICE double project(double s) const { return p == 2 ? sqrt(s) : p == 1 ? s : pow(s, 1.0 / p); }
};

Tensor mean_cuda(const Tensor& self_in, OptionalIntArrayRef dim, bool keepdim, std::optional<ScalarType> dtype) {
  const ScalarType t = dtype.value_or(self_in.dtype());
  VT_CHECK(is_floating(t), "mean(): could not infer output dtype. Input dtype must be either a floating point or "
           "complex dtype. Got: ", dtype_name(t));
  auto mask = reduced_mask(self_in, dim, "mean");
  const Tensor self = self_in.dtype() == t ? self_in : ops::to_dtype(self_in, t);
  Tensor acc;
  if (self.numel() == 0) {  // the mean of nothing is 0 / 0
    acc = empty_tensor(keepdim_shape(self, mask), t, self.device());
    if (acc.numel() > 0) ops::fill_(acc, Scalar(std::numeric_limits<double>::quiet_NaN()));
  } else {
    acc = fold<CudaReduce, false>(self, mask, ScalarType::Float64, 0.0, MeanC{double(reduced_count(self, mask))}, t);
  }
  return finish(acc, self, mask, keepdim, t);
}

// _var_welford(self, dim, correction, keepdim, root): var (root false) or std of a non-empty floating tensor.
Tensor var_welford_cuda(const Tensor& self, OptionalIntArrayRef dim, double correction, bool keepdim, bool root) {
  auto mask = reduced_mask(self, dim, root ? "std" : "var", /*in_order=*/true);
  VT_INTERNAL_ASSERT(is_floating(self.dtype()) && self.numel() > 0, "_var_welford: a non-empty floating tensor");
  const double denom = std::max(0.0, double(reduced_count(self, mask)) - correction);
  Tensor acc = fold<CudaReduce, false>(self, mask, ScalarType::Float64, Welford{0.0, 0.0, 0.0}, WelfordC{denom, root},
                                       self.dtype());
  return finish(acc, self, mask, keepdim, self.dtype());
}

// _pnorm(self, p, dim, keepdim): the p-norm of a floating tensor over more than one element each, for a finite
// p != 0 (norm's other cases have their own rules, in ../reduce.cpp).
Tensor pnorm_cuda(const Tensor& self, double p, OptionalIntArrayRef dim, bool keepdim) {
  auto mask = reduced_mask(self, dim, "norm", /*in_order=*/true);
  VT_INTERNAL_ASSERT(is_floating(self.dtype()) && p != 0 && !std::isinf(p) && reduced_count(self, mask) > 1,
                     "_pnorm: a finite order p != 0 over more than one element");
  Tensor acc = fold<CudaReduce, false>(self, mask, ScalarType::Float64, 0.0, PNormC{p}, self.dtype());
  return finish(acc, self, mask, keepdim, self.dtype());
}

}  // namespace
}  // namespace vt::cuda

VT_LIBRARY(vt, moments_cuda) {
  m.impl("mean", vt::DispatchKey::CUDA, &vt::cuda::mean_cuda);
  m.impl("_var_welford", vt::DispatchKey::CUDA, &vt::cuda::var_welford_cuda);
  m.impl("_pnorm", vt::DispatchKey::CUDA, &vt::cuda::pnorm_cuda);
}
