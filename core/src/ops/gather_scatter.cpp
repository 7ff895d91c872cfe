// gather and the scatter family (scatter, scatter_add, scatter_reduce; out of place and in place), torch's
// semantics along one dim (geometry in gather_scatter.h). Two backend primitives carry the work, CPU kernels
// here and CUDA ones in cuda/gather_scatter.cu:
//   vt::gather(self, dim, index)                 out[c] = self[c with c[dim] = index[c]]
//   vt::_scatter_into_(self, dim, index, src, op) self[c with c[dim] = index[c]] op= src[c]  (Note [Scatter op codes])
// The public scatters are device-agnostic compositions over the primitive (DispatchKey Any): a clone for the
// out-of-place forms, identity fills for include_self=False, a count for "mean". Backward formulas live in
// autograd/formulas_gather.cpp.
#include <cmath>
#include <limits>

#include "gather_scatter.h"
#include "vt/core/dispatcher.h"
#include "vt/core/memory_overlap.h"
#include "vt/core/ops.h"
#include "vt/core/parallel.h"

namespace vt {
namespace scatter {

Tensor index_as_long(const Tensor& index, const char* what) {
  if (index.numel() == 0) return empty_tensor(index.sizes(), ScalarType::Int64, index.device());
  VT_CHECK(index.dtype() == ScalarType::Int64 || index.dtype() == ScalarType::Int32, what,
           "(): Expected dtype int32/int64 for index, got ", dtype_name(index.dtype()));
  return index.dtype() == ScalarType::Int64 ? index : ops::to_dtype(index, ScalarType::Int64);
}

Geometry plan(const Tensor& self, int64_t dim, const Tensor& index, const Tensor& other, bool is_scatter,
              const char* what) {
  const int64_t nd = std::max<int64_t>(self.dim(), 1);
  Geometry g;
  g.dim = dim;
  g.numel = index.numel();
  if (g.numel == 0) return g;  // Note [Gather and scatter check order]
  auto size = [](const Tensor& t, int64_t d) { return t.dim() == 0 ? int64_t(1) : t.size(d); };
  auto stride = [](const Tensor& t, int64_t d) { return t.dim() == 0 ? int64_t(1) : t.stride(d); };
  VT_CHECK(std::max<int64_t>(index.dim(), 1) == nd, "Index tensor must have the same number of dimensions as ",
           is_scatter ? "self" : "input", " tensor");
  auto too_large = [&] {
    VT_FAIL("Expected index ", shape_str(index.sizes()), " to be no larger than self ", shape_str(self.sizes()),
            " apart from dimension ", g.dim, " and to be no larger size than src ", shape_str(other.sizes()));
  };
  for (int64_t d = 0; d < nd; ++d) {
    bool fits_self = d == g.dim || size(index, d) <= size(self, d);
    if (!is_scatter) {
      VT_CHECK(fits_self, "Size does not match at dimension ", d, " expected index ", shape_str(index.sizes()),
               " to be no larger than self ", shape_str(self.sizes()), " apart from dimension ", g.dim);
    } else if (!fits_self) {
      too_large();
    }
  }
  if (is_scatter) {  // src's sizes over self's dims (an IndexError where src has fewer dims), then its rank
    for (int64_t d = 0; d < nd; ++d)
      if (size(index, d) > (other.dim() == 0 ? 1 : other.size(wrap_dim(d, other.dim())))) too_large();
    VT_CHECK(std::max<int64_t>(other.dim(), 1) == nd, "Index tensor must have the same number of dimensions as src tensor");
  }
  g.ndim = nd;
  g.dim_size = size(self, g.dim);
  g.self_dim_stride = stride(self, g.dim);
  for (int64_t d = 0; d < nd; ++d) {
    g.sizes[d] = size(index, d);
    g.self_strides[d] = d == g.dim ? 0 : stride(self, d);
    g.index_strides[d] = stride(index, d);
    g.other_strides[d] = stride(other, d);
  }
  return g;
}

Prepared prepare_gather(const Tensor& self, int64_t dim, const Tensor& index) {
  Prepared p;
  dim = wrap_dim(dim, std::max<int64_t>(self.dim(), 1));  // Note [Gather and scatter check order]
  p.index = index_as_long(index, "gather");
  p.other = empty_tensor(p.index.sizes(), self.dtype(), self.device());
  p.g = plan(self, dim, p.index, p.other, false, "gather");
  return p;
}

int64_t check_scatter(const Tensor& self, int64_t dim, const Tensor& index, const Tensor& src) {
  dim = wrap_dim(dim, std::max<int64_t>(self.dim(), 1));  // Note [Gather and scatter check order]
  VT_CHECK(index.numel() == 0 || index.dtype() == ScalarType::Int64 || index.dtype() == ScalarType::Int32,
           "scatter(): Expected dtype int32/int64 for index, got ", dtype_name(index.dtype()));
  VT_CHECK(src.dtype() == self.dtype(), "scatter(): Expected self.dtype to be equal to src.dtype, got ",
           dtype_name(self.dtype()), " and ", dtype_name(src.dtype()));
  plan(self, dim, index, src, true, "scatter");
  return dim;
}

void check_scatter_overlap(const Tensor& self, const Tensor& index, const Tensor& src, const char* what) {
  assert_no_internal_overlap(self, what);  // Note [In-place overlap]: after the argument checks, as torch's
  assert_no_overlap(self, index, what);
  assert_no_overlap(self, src, what);
}

Prepared prepare_scatter(const Tensor& self, int64_t dim, const Tensor& index, const Tensor& src, int64_t op) {
  Prepared p;
  dim = check_scatter(self, dim, index, src);
  VT_CHECK(op >= 0 && op <= int64_t(Op::Min), "_scatter_into_: unknown op code ", op);
  check_scatter_overlap(self, index, src, "scatter");
  p.index = index_as_long(index, "scatter");
  p.other = src;
  p.g = plan(self, dim, p.index, src, true, "scatter");
  self.bump_version();
  return p;
}

}  // namespace scatter

namespace {
using scatter::Geometry;
using scatter::Op;

// Visits index positions [begin, end) in row-major order with the three element offsets kept incrementally.
template <typename F>
void walk(const Geometry& g, int64_t begin, int64_t end, F&& f) {
  int64_t coord[kMaxDims] = {}, o_self = 0, o_index = 0, o_other = 0;
  for (int64_t d = g.ndim - 1, rest = begin; d >= 0; --d) {
    coord[d] = rest % g.sizes[d];
    rest /= g.sizes[d];
    o_self += coord[d] * g.self_strides[d];
    o_index += coord[d] * g.index_strides[d];
    o_other += coord[d] * g.other_strides[d];
  }
  for (int64_t i = begin; i < end; ++i) {
    f(o_self, o_index, o_other);
    for (int64_t d = g.ndim - 1; d >= 0; --d) {  // odometer step
      o_self += g.self_strides[d];
      o_index += g.index_strides[d];
      o_other += g.other_strides[d];
      if (++coord[d] < g.sizes[d]) break;
      o_self -= coord[d] * g.self_strides[d];
      o_index -= coord[d] * g.index_strides[d];
      o_other -= coord[d] * g.other_strides[d];
      coord[d] = 0;
    }
  }
}

int64_t checked(const Geometry& g, int64_t v) {
  VT_CHECK(v >= 0 && v < g.dim_size, "index ", v, " is out of bounds for dimension ", g.dim, " with size ", g.dim_size);
  return v;
}

Tensor gather_cpu(const Tensor& self, int64_t dim, const Tensor& index) {
  const scatter::Prepared p = scatter::prepare_gather(self, dim, index);
  const Tensor& out = p.other;
  const Geometry& g = p.g;
  if (g.numel == 0) return out;
  const int64_t* ix = p.index.data<int64_t>();
  VT_DISPATCH_ALL(self.dtype(), "gather", [&] {
    const scalar_t* src = self.data<scalar_t>();
    scalar_t* dst = out.data<scalar_t>();
    parallel_for(0, g.numel, kDefaultGrain / 4, [&](int64_t b, int64_t e) {
      walk(g, b, e, [&](int64_t os, int64_t oi, int64_t oo) {
        dst[oo] = src[os + checked(g, ix[oi]) * g.self_dim_stride];
      });
    });
  });
  return out;
}

template <typename T> T combine(Op op, T a, T b) {
  using M = opmath_t<T>;
  M x = M(a), y = M(b);
  switch (op) {
    case Op::Sum: return T(x + y);
    case Op::Prod: return T(x * y);
    case Op::Max: if constexpr (std::is_floating_point_v<M>) { if (std::isnan(y)) return b; } return y > x ? b : a;
    case Op::Min: if constexpr (std::is_floating_point_v<M>) { if (std::isnan(y)) return b; } return y < x ? b : a;
    default: return b;
  }
}

// Serial, so duplicate indices reduce in index order (deterministic).
Tensor scatter_into_cpu(const Tensor& self, int64_t dim, const Tensor& index, const Tensor& src, int64_t op) {
  const scatter::Prepared p = scatter::prepare_scatter(self, dim, index, src, op);
  const Geometry& g = p.g;
  if (g.numel == 0) return self;
  const int64_t* ix = p.index.data<int64_t>();
  VT_DISPATCH_ALL(self.dtype(), "scatter", [&] {
    scalar_t* dst = self.data<scalar_t>();
    const scalar_t* s = src.data<scalar_t>();
    walk(g, 0, g.numel, [&](int64_t os, int64_t oi, int64_t oo) {
      scalar_t& d = dst[os + checked(g, ix[oi]) * g.self_dim_stride];
      d = combine(Op(op), d, s[oo]);
    });
  });
  return self;
}

// ---- the public scatters, composed over the primitive (any device) ----
const TypedOp<Tensor(const Tensor&, int64_t, const Tensor&, const Tensor&, int64_t)> scatter_into("vt::_scatter_into_");

// A Python number as src is torch's scatter(self, dim, index, value): every indexed position gets the value in
// self's dtype (no dtype or shape rule for src).
Tensor value_as_src(const Tensor& self, int64_t dim, const Tensor& index, const Tensor& src) {
  if (!src.impl()->is_wrapped_number()) return src;
  // dim, index and shapes are checked before the value is cast to self's dtype (torch's order)
  scatter::check_scatter(self, dim, index, ops::expand(scalar_to_tensor(Scalar(int64_t(0)), self.dtype()),
                                                       index.sizes()));
  return ops::full(index.sizes(), item_scalar(src), self.dtype(), self.device());
}
Tensor scatter_inplace(const Tensor& self, int64_t dim, const Tensor& index, const Tensor& src) {
  return scatter_into(self, dim, index, value_as_src(self, dim, index, src), int64_t(Op::Assign));
}
Tensor scatter_out(const Tensor& self, int64_t dim, const Tensor& index, const Tensor& src) {
  return scatter_inplace(ops::clone(self), dim, index, src);
}
Tensor scatter_add_inplace(const Tensor& self, int64_t dim, const Tensor& index, const Tensor& src) {
  return scatter_into(self, dim, index, src, int64_t(Op::Sum));
}
Tensor scatter_add_out(const Tensor& self, int64_t dim, const Tensor& index, const Tensor& src) {
  return scatter_add_inplace(ops::clone(self), dim, index, src);
}

Op parse_reduce(const std::string& reduce) {
  if (reduce == "sum") return Op::Sum;
  if (reduce == "prod") return Op::Prod;
  if (reduce == "amax" || reduce == "max") return Op::Max;  // torch still takes the old names max / min
  if (reduce == "amin" || reduce == "min") return Op::Min;
  VT_FAIL("reduce argument must be either sum, prod, mean, amax or amin, got ", reduce);
}

// The value a reduction starts from: 0 for sums, 1 for products, the dtype's lowest / highest for amax / amin.
Scalar identity(Op op, ScalarType t) {
  if (op == Op::Prod) return Scalar(int64_t(1));
  if (op != Op::Max && op != Op::Min) return Scalar(int64_t(0));
  const bool highest = op == Op::Min;
  if (is_floating(t)) return Scalar(highest ? std::numeric_limits<double>::infinity() : -std::numeric_limits<double>::infinity());
  if (t == ScalarType::Bool) return Scalar(int64_t(highest ? 1 : 0));
  return VT_DISPATCH_INTEGRAL(t, "scatter_reduce", [&] {
    return Scalar(int64_t(highest ? std::numeric_limits<scalar_t>::max() : std::numeric_limits<scalar_t>::lowest()));
  });
}

Tensor full_like(const Tensor& t, const Scalar& v) { return ops::full(t.sizes(), v, t.dtype(), t.device()); }

Tensor scatter_reduce_inplace(const Tensor& self, int64_t dim, const Tensor& index, const Tensor& src,
                              std::string reduce, bool include_self) {
  scatter::check_scatter(self, dim, index, src);  // before the reduce name (Note [Gather and scatter check order])
  const bool mean = reduce == "mean";
  Op op = mean ? Op::Sum : parse_reduce(reduce);
  scatter::check_scatter_overlap(self, index, src, "scatter_reduce_");  // before the identity fill writes self
  if (!include_self)  // the scattered positions start from the reduction's identity instead of self
    scatter_into(self, dim, index, full_like(src, identity(op, self.dtype())), int64_t(Op::Assign));
  scatter_into(self, dim, index, src, int64_t(op));
  if (mean) {
    Tensor count = full_like(self, Scalar(int64_t(include_self ? 1 : 0)));
    scatter_into(count, dim, index, full_like(src, Scalar(int64_t(1))), int64_t(Op::Sum));
    count = ops::binary("vt::maximum", count, scalar_to_tensor(Scalar(int64_t(1)), ScalarType::Int64));
    static const TypedOp<Tensor(const Tensor&, const Tensor&, std::optional<std::string>)> div("vt::div");
    ops::copy_(self, div(self, count, is_floating(self.dtype()) ? std::nullopt : std::optional<std::string>("floor")));
  }
  return self;
}
Tensor scatter_reduce_out(const Tensor& self, int64_t dim, const Tensor& index, const Tensor& src, std::string reduce,
                          bool include_self) {
  return scatter_reduce_inplace(ops::clone(self), dim, index, src, std::move(reduce), include_self);
}

}  // namespace

VT_LIBRARY(vt, gather_scatter) {
  m.def("gather(Tensor self, int dim, Tensor index) -> Tensor");
  m.def("_scatter_into_(Tensor self, int dim, Tensor index, Tensor src, int op) -> Tensor");
  m.def("scatter(Tensor self, int dim, Tensor index, Tensor src) -> Tensor");
  m.def("scatter_(Tensor self, int dim, Tensor index, Tensor src) -> Tensor");
  m.def("scatter_add(Tensor self, int dim, Tensor index, Tensor src) -> Tensor");
  m.def("scatter_add_(Tensor self, int dim, Tensor index, Tensor src) -> Tensor");
  m.def("scatter_reduce(Tensor self, int dim, Tensor index, Tensor src, str reduce, *, bool include_self=True) -> Tensor");
  m.def("scatter_reduce_(Tensor self, int dim, Tensor index, Tensor src, str reduce, *, bool include_self=True) -> Tensor");
  m.impl("gather", DispatchKey::CPU, &gather_cpu);
  m.impl("_scatter_into_", DispatchKey::CPU, &scatter_into_cpu);
  m.impl_any("scatter", &scatter_out);
  m.impl_any("scatter_", &scatter_inplace);
  m.impl_any("scatter_add", &scatter_add_out);
  m.impl_any("scatter_add_", &scatter_add_inplace);
  m.impl_any("scatter_reduce", &scatter_reduce_out);
  m.impl_any("scatter_reduce_", &scatter_reduce_inplace);
}

}  // namespace vt
