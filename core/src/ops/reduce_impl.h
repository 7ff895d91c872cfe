#pragma once
// Reductions for one backend. sum/prod/amax/amin/all/any fold any set of dims through a reduction
// TensorIterator (the accumulator has stride 0 on reduced dims and a wide dtype: float64 for floating inputs,
// int64 for integers); max/min/argmax/argmin over one dim and cumsum/cumprod use lane loops. `Backend`
// provides reduce<S, MayWiden>(it, init, combine) and lanes(...) (CpuReduce in cpu_reduce.h, CudaReduce in
// cuda/reduce.cuh); shapes, dtypes and errors are decided here, once for both.
#include <algorithm>
#include <limits>
#include <optional>
#include <vector>

#include "reduce_functors.h"
#include "vt/core/dispatcher.h"
#include "vt/core/ops.h"
#include "vt/core/tensor_iterator.h"

namespace vt::reduce {

// Which dims are reduced: all when `dim` is absent or empty (torch treats sum(dim=[]) as a full reduction).
// in_order: each dim's range and repetition checked in turn (torch's var, std and norm); otherwise every dim's
// range first (sum, mean, the arithmetic reductions): torch's two orders, which decide the exception's kind.
inline std::vector<bool> reduced_mask(const Tensor& self, OptionalIntArrayRef dim, const char* name,
                                      bool in_order = false) {
  int64_t nd = self.dim();
  std::vector<bool> mask(size_t(std::max<int64_t>(nd, 1)), dim.has_value() && !dim->empty() ? false : true);
  if (dim && !dim->empty()) {
    if (!in_order)
      for (int64_t d : *dim) wrap_dim(d, nd);
    for (int64_t d : *dim) {
      int64_t w = wrap_dim(d, nd);
      VT_CHECK(!mask[size_t(w)], name, ": dim ", w, " appears multiple times in the list of dims");
      mask[size_t(w)] = true;
    }
  }
  return mask;
}

inline DimVector keepdim_shape(const Tensor& self, const std::vector<bool>& mask) {
  DimVector s(self.sizes());
  for (int64_t d = 0; d < self.dim(); ++d)
    if (mask[size_t(d)]) s[size_t(d)] = 1;
  return s;
}

inline Tensor finish(const Tensor& acc, const Tensor& self, const std::vector<bool>& mask, bool keepdim, ScalarType out) {
  DimVector s;
  for (int64_t d = 0; d < self.dim(); ++d)
    if (keepdim || !mask[size_t(d)]) s.push_back(keepdim && mask[size_t(d)] ? 1 : self.size(d));
  if (acc.numel() == 1 && acc.device().is_cpu()) {  // CPU full reductions: convert the one value directly
    Tensor r = cast_scalar(ops::view(acc, DimVector{}), out);
    r.impl()->set_wrapped_number(false);
    return s.empty() ? r : ops::view(r, s);
  }
  Tensor r = acc.dtype() == out ? acc : ops::to_dtype(acc, out);
  return (keepdim || self.dim() == 0) ? r : ops::view(r, s);
}

// Folds `self` into an accumulator of dtype acc_dtype: acc = combine(acc, x) starting from `init`. Backends
// that can store the result in the input's dtype (out_dtype) skip the separate conversion.
// Note [Reduce output dtypes]: such a backend writes the result in the input's dtype or the accumulator's, a
// kernel each. MayWiden says whether the accumulator's can happen: only where out_dtype can differ from the
// input's (integer sum and prod, whose result is int64, and all/any, whose uint8 result is not their bool
// input). Floating sum and prod cast the input to the result dtype first (but for an exact widening on the CPU,
// which never stores in the input's dtype), and amax/amin keep it, so their results are always in the input's
// dtype, and their widening kernels would never run.
template <typename Backend, bool MayWiden, typename AccT, typename C>
Tensor fold(const Tensor& self, const std::vector<bool>& mask, ScalarType acc_dtype, AccT init, C combine,
            ScalarType out_dtype) {
  bool direct = Backend::kStoresInputDtype && out_dtype == self.dtype();
  Tensor acc = empty_tensor(keepdim_shape(self, mask), direct ? out_dtype : acc_dtype, self.device());
  if (acc.numel() == 0) return acc;
  if constexpr (std::is_arithmetic_v<AccT>) {
    if (self.numel() == 0) return ops::fill_(acc, Scalar(init));  // empty sums and logic reductions
  } else {
    VT_INTERNAL_ASSERT(self.numel() > 0, "reduce: a state accumulator folds at least one element");
  }
  TensorIterator it = TensorIteratorConfig()
                          .add_output(acc)
                          .add_input(self)
                          .is_reduction(true)
                          .check_all_same_dtype(false)
                          .enforce_safe_casting_to_output(false)
                          .cast_inputs(false)
                          .common_dtype(self.dtype())
                          .check_mem_overlap(false)
                          .name("reduce")
                          .build();
  // Only the input dtypes each accumulator meets are instantiated (callers cast first): floating inputs fold into
  // float64 (or a state of float64s, Note [Welford states]), integers into int64, and the logic reductions see
  // bool. This keeps the kernel count (and the CUDA build time) down.
  if constexpr (std::is_same_v<C, LogicC<true>> || std::is_same_v<C, LogicC<false>>) {
    VT_INTERNAL_ASSERT(self.dtype() == ScalarType::Bool, "logic reductions fold bool inputs");
    Backend::template reduce<bool, MayWiden>(it, init, combine);
  } else if constexpr (!std::is_integral_v<AccT>) {
    VT_DISPATCH_FLOATING(self.dtype(), "reduce",
                         [&] { Backend::template reduce<scalar_t, MayWiden>(it, init, combine); });
  } else {
    VT_DISPATCH_INTEGRAL(self.dtype(), "reduce",
                         [&] { Backend::template reduce<scalar_t, MayWiden>(it, init, combine); });
  }
  return acc;
}

inline ScalarType sum_dtype(const Tensor& self, std::optional<ScalarType> dtype) {
  if (dtype) return *dtype;
  return is_floating(self.dtype()) ? self.dtype() : ScalarType::Int64;
}

// Note [Host full folds]: a CPU fold of every element of a contiguous tensor (x.sum(), x.max(), x.any()) needs no
// iterator and no accumulator tensor: the backend folds the data straight into a value, and the result is made
// from it as finish() makes it from a one-element accumulator (the same fold, so the same bits). The setup was
// most of a tiny sum's time. Empty when the backend does not fold on the host or the layout needs the iterator.
template <typename Backend, typename C>
std::optional<Tensor> host_full_fold(const Tensor& self, const std::vector<bool>& mask, bool keepdim, ScalarType out,
                                     double finit, int64_t iinit) {
  if constexpr (!Backend::kFoldsOnHost) {
    return std::nullopt;
  } else {
    if (self.numel() == 0 || !self.device().is_cpu() || !self.is_contiguous() ||
        std::find(mask.begin(), mask.end(), false) != mask.end())
      return std::nullopt;
    // The dtypes fold() meets: the logic reductions a bool input, a floating result a floating input folded
    // into float64, any other result an integer or bool input folded into int64 (the callers cast the input first
    // where none of these holds).
    Scalar value;
    if constexpr (std::is_same_v<C, LogicC<true>> || std::is_same_v<C, LogicC<false>>) {
      VT_INTERNAL_ASSERT(self.dtype() == ScalarType::Bool, "logic reductions fold bool inputs");
      value = Scalar(Backend::template fold_all<bool>(self, iinit, C{}));
    } else if (is_floating(out)) {
      value = VT_DISPATCH_FLOATING(self.dtype(), "reduce",
                                   [&] { return Scalar(Backend::template fold_all<scalar_t>(self, finit, C{})); });
    } else {
      value = VT_DISPATCH_INTEGRAL(self.dtype(), "reduce",
                                   [&] { return Scalar(Backend::template fold_all<scalar_t>(self, iinit, C{})); });
    }
    Tensor r = scalar_to_tensor(value, out);
    r.impl()->set_wrapped_number(false);
    return keepdim && self.dim() > 0 ? ops::view(r, keepdim_shape(self, mask)) : r;
  }
}

template <typename Backend, typename C>
Tensor arith_reduce(const Tensor& self_in, OptionalIntArrayRef dim, bool keepdim, std::optional<ScalarType> dtype,
                    const char* name, double finit, int64_t iinit) {
  ScalarType out = sum_dtype(self_in, dtype);
  // A floating input widened exactly (16-bit to float32/64, float32 to float64) folds as it is on the CPU: it
  // accumulates in float64 either way, and the copy cost more than the sum (mean of a bfloat16 tensor, 3x torch).
  const ScalarType in = self_in.dtype();
  const bool exact_widening = ((in == ScalarType::Float16 || in == ScalarType::BFloat16) &&
                               (out == ScalarType::Float32 || out == ScalarType::Float64)) ||
                              (in == ScalarType::Float32 && out == ScalarType::Float64);
  const bool cast = dtype && in != *dtype && !(exact_widening && self_in.device().is_cpu());
  Tensor self = cast ? ops::to_dtype(self_in, *dtype) : self_in;
  auto mask = reduced_mask(self, dim, name);
  if (auto r = host_full_fold<Backend, C>(self, mask, keepdim, out, finit, iinit)) return *r;
  Tensor acc = is_floating(out) ? fold<Backend, false>(self, mask, ScalarType::Float64, finit, C{}, out)
                                : fold<Backend, true>(self, mask, ScalarType::Int64, iinit, C{}, out);
  return finish(acc, self, mask, keepdim, out);
}
template <typename Backend>
Tensor sum(const Tensor& self, OptionalIntArrayRef dim, bool keepdim, std::optional<ScalarType> dtype) {
  return arith_reduce<Backend, SumC>(self, dim, keepdim, dtype, "sum", 0.0, 0);
}
template <typename Backend>
Tensor prod(const Tensor& self, OptionalIntArrayRef dim, bool keepdim, std::optional<ScalarType> dtype) {
  return arith_reduce<Backend, ProdC>(self, dim, keepdim, dtype, "prod", 1.0, 1);
}

template <typename Backend, bool IsMax>
Tensor minmax_reduce(const Tensor& self, OptionalIntArrayRef dim, bool keepdim, const char* name) {
  if (self.numel() == 0 && dim)  // each listed dim in turn, before any repeat is looked for (torch's order)
    for (int64_t d : *dim) {
      const int64_t w = wrap_dim(d, self.dim());
      VT_CHECK_INDEX(self.size(w) != 0, name, "(): Expected reduction dim ", w, " to have non-zero size.");
    }
  auto mask = reduced_mask(self, dim, name);
  VT_CHECK(self.numel() > 0 || (dim && !dim->empty()), name,
           "(): Expected reduction dim to be specified for input.numel() == 0. Specify the reduction dim with the "
           "'dim' argument.");
  VT_CHECK(self.numel() > 0 || self.dim() > 0, name, "(): Expected reduction dim to be specified for input.numel() == 0.");
  const double finit = IsMax ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
  const int64_t iinit = IsMax ? std::numeric_limits<int64_t>::min() : std::numeric_limits<int64_t>::max();
  if (auto r = host_full_fold<Backend, PickC<IsMax>>(self, mask, keepdim, self.dtype(), finit, iinit)) return *r;
  Tensor acc = is_floating(self.dtype())
                   ? fold<Backend, false>(self, mask, ScalarType::Float64, finit, PickC<IsMax>{}, self.dtype())
                   : fold<Backend, false>(self, mask, ScalarType::Int64, iinit, PickC<IsMax>{}, self.dtype());
  return finish(acc, self, mask, keepdim, self.dtype());
}
template <typename Backend, bool IsMax> Tensor amax_amin(const Tensor& self, OptionalIntArrayRef dim, bool keepdim) {
  return minmax_reduce<Backend, IsMax>(self, dim, keepdim, IsMax ? "amax" : "amin");
}
template <typename Backend, bool IsMax> Tensor max_min_all(const Tensor& self) {
  VT_CHECK(self.numel() > 0, IsMax ? "max" : "min", "(): Expected reduction dim to be specified for input.numel() == 0. "
           "Specify the reduction dim with the 'dim' argument.");
  return minmax_reduce<Backend, IsMax>(self, std::nullopt, false, IsMax ? "max" : "min");
}

template <typename Backend, bool IsAll> Tensor all_any(const Tensor& self_in, OptionalIntArrayRef dim, bool keepdim) {
  // Truthiness first: folding 0.5 into an integer accumulator would read it as 0.
  Tensor self = self_in.dtype() == ScalarType::Bool
                    ? self_in
                    : ops::binary("vt::ne", self_in, scalar_to_tensor(Scalar(int64_t(0)), ScalarType::Int64));
  // torch keeps uint8 for uint8 inputs (a legacy of byte masks); bool otherwise.
  ScalarType out = self_in.dtype() == ScalarType::UInt8 ? ScalarType::UInt8 : ScalarType::Bool;
  if (dim && dim->empty()) return ops::to_dtype(self, out);  // all/any(dim=[]) reduce nothing, unlike sum (torch)
  auto mask = reduced_mask(self, dim, IsAll ? "all" : "any");
  if (auto r = host_full_fold<Backend, LogicC<IsAll>>(self, mask, keepdim, out, 0.0, int64_t(IsAll ? 1 : 0))) return *r;
  Tensor acc = fold<Backend, true>(self, mask, ScalarType::Int64, int64_t(IsAll ? 1 : 0), LogicC<IsAll>{}, out);
  return finish(acc, self, mask, keepdim, out);
}

// ---- max/min/argmax/argmin over one dim: lanes ----
template <typename Backend, bool IsMax>
std::tuple<Tensor, Tensor> minmax_dim(const Tensor& self_in, int64_t dim, bool keepdim, const char* name) {
  Tensor self = self_in.dim() == 0 ? ops::view(self_in, DimVector{1}) : self_in;
  dim = wrap_dim(dim, self_in.dim());
  int64_t n = self.size(dim);
  VT_CHECK_INDEX(n > 0, name, "(): Expected reduction dim ", dim, " to have non-zero size.");
  DimVector kshape(self.sizes());
  kshape[size_t(dim)] = 1;
  Tensor values = empty_tensor(kshape, self.dtype(), self.device());
  Tensor indices = empty_tensor(kshape, ScalarType::Int64, self.device());
  VT_DISPATCH_ALL(self.dtype(), name, [&] {
    Backend::lanes({values, indices, self}, 2, dim, n, MinMaxLane<IsMax, scalar_t>{});
  });
  if (!keepdim || self_in.dim() == 0) {
    DimVector s(self_in.sizes());
    if (self_in.dim() > 0) s.erase(size_t(dim));
    values = ops::view(values, s);
    indices = ops::view(indices, s);
  }
  return {values, indices};
}
template <typename Backend, bool IsMax>
std::tuple<Tensor, Tensor> max_min_dim(const Tensor& self, int64_t dim, bool keepdim) {
  return minmax_dim<Backend, IsMax>(self, dim, keepdim, IsMax ? "max" : "min");
}
template <typename Backend, bool IsMax> Tensor arg_extreme(const Tensor& self, std::optional<int64_t> dim, bool keepdim) {
  const char* name = IsMax ? "argmax" : "argmin";
  VT_CHECK(self.dtype() != ScalarType::Bool, name, "(): does not support bool input");
  if (!dim) {
    VT_CHECK_INDEX(self.numel() > 0, name, "(): Expected reduction dim to be specified for input.numel() == 0.");
    Tensor flat = ops::reshape(self, DimVector{-1});
    Tensor idx = std::get<1>(minmax_dim<Backend, IsMax>(flat, 0, false, name));
    if (keepdim) return ops::reshape(idx, DimVector(size_t(self.dim()), 1));
    return idx;
  }
  return std::get<1>(minmax_dim<Backend, IsMax>(self, *dim, keepdim, name));
}

// ---- cumulative ops ----
template <typename Backend, bool IsSum>
Tensor cumulative(const Tensor& self_in, int64_t dim, std::optional<ScalarType> dtype) {
  ScalarType out_t = sum_dtype(self_in, dtype);
  Tensor self = self_in.dtype() != out_t ? ops::to_dtype(self_in, out_t) : self_in;
  dim = wrap_dim(dim, self.dim());
  Tensor out = empty_tensor(self.sizes(), out_t, self.device());
  if (self.dim() == 0) return ops::copy_(out, self);
  int64_t n = self.size(dim);
  if (out.numel() == 0) return out;
  VT_DISPATCH_NUMERIC(out_t, IsSum ? "cumsum" : "cumprod", [&] {
    Backend::lanes({out, self}, 1, dim, n, CumulativeLane<IsSum, scalar_t>{});
  });
  return out;
}

template <typename Backend> void register_reduce(Library& m, DispatchKey key) {
  m.impl("sum", key, &sum<Backend>);
  m.impl("prod", key, &prod<Backend>);
  m.impl("amax", key, &amax_amin<Backend, true>);
  m.impl("amin", key, &amax_amin<Backend, false>);
  m.impl("max", key, &max_min_all<Backend, true>);
  m.impl("min", key, &max_min_all<Backend, false>);
  m.impl("max_dim", key, &max_min_dim<Backend, true>);
  m.impl("min_dim", key, &max_min_dim<Backend, false>);
  m.impl("argmax", key, &arg_extreme<Backend, true>);
  m.impl("argmin", key, &arg_extreme<Backend, false>);
  m.impl("all", key, &all_any<Backend, true>);
  m.impl("any", key, &all_any<Backend, false>);
  m.impl("cumsum", key, &cumulative<Backend, true>);
  m.impl("cumprod", key, &cumulative<Backend, false>);
}

}  // namespace vt::reduce
