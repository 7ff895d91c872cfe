// sort and topk along one dim, torch's semantics: values and int64 indices; NaN sorts above every number
// (last ascending, first descending); equal keys keep their order when stable=True (this implementation is
// always stable, which stable=False allows). topk returns the k largest (or smallest) in sorted order.
//
// The backends sort rows: self is viewed with `dim` last and made contiguous as [rows, n]; each row is sorted
// (CPU: std::stable_sort of positions, rows in parallel; CUDA: a segmented radix sort, cuda/sort.cu), and the
// results are viewed back with `dim` in place. topk on the CPU is a partial sort of each row (O(n log k)); on CUDA
// a radix select of each row's k, then a sort of those k (Note [Top-k by radix select] in cuda/topk.cu).
#include <algorithm>
#include <cmath>
#include <numeric>

#include "sort_rows.h"
#include "vt/core/dispatcher.h"
#include "vt/core/ops.h"
#include "vt/core/parallel.h"

namespace vt {
namespace sort_rows {

Rows rows_of(const Tensor& self, int64_t dim_in) {
  Rows r;
  r.ndim = self.dim();
  r.dim = wrap_dim(dim_in, std::max<int64_t>(self.dim(), 1));
  Tensor last = self.dim() == 0 ? ops::reshape(self, DimVector{1}) : ops::transpose(self, r.dim, -1);
  r.n = last.dim() == 0 ? 1 : last.size(-1);
  r.rows = r.n == 0 ? 0 : last.numel() / r.n;
  r.keys = ops::contiguous(last);
  r.shape_last = DimVector(last.sizes());
  return r;
}

// [.., n] results with `dim` last -> the caller's layout (contiguous, as torch returns them).
Tensor restore(const Rows& r, const Tensor& t) {
  if (r.ndim == 0) return ops::reshape(t, DimVector{});
  return ops::contiguous(ops::transpose(t, r.dim, -1));
}

}  // namespace sort_rows

namespace {

template <typename T> bool is_nan(T v) {
  if constexpr (std::is_floating_point_v<opmath_t<T>>) return std::isnan(opmath_t<T>(v));
  else return false;
}

// Whether row position i sorts before position j: a strict order with NaN as the largest value. Equal keys are
// equivalent; the stable sort keeps them in position order, and topk's partial sort breaks the tie that way.
template <typename T> struct Before {
  const T* k;
  bool descending;
  bool operator()(int64_t i, int64_t j) const {
    const bool ni = is_nan(k[i]), nj = is_nan(k[j]);
    if (ni || nj) return descending ? (ni && !nj) : (!ni && nj);
    using M = opmath_t<T>;
    return descending ? M(k[i]) > M(k[j]) : M(k[i]) < M(k[j]);
  }
};

std::tuple<Tensor, Tensor> sort_cpu(const Tensor& self, int64_t dim, bool descending, bool stable) {
  sort_rows::Rows r = sort_rows::rows_of(self, dim);
  Tensor values = empty_tensor(r.keys.sizes(), self.dtype(), kCPU);
  Tensor indices = empty_tensor(r.keys.sizes(), ScalarType::Int64, kCPU);
  const int64_t n = r.n;
  VT_DISPATCH_ALL(self.dtype(), "sort", [&] {
    const scalar_t* in = r.keys.data<scalar_t>();
    scalar_t* out = values.data<scalar_t>();
    int64_t* idx = indices.data<int64_t>();
    parallel_for(0, r.rows, std::max<int64_t>(1, kDefaultGrain / std::max<int64_t>(n, 1)), [&](int64_t b, int64_t e) {
      for (int64_t row = b; row < e; ++row) {
        const scalar_t* k = in + row * n;
        int64_t* p = idx + row * n;
        std::iota(p, p + n, int64_t(0));
        std::stable_sort(p, p + n, Before<scalar_t>{k, descending});
        for (int64_t j = 0; j < n; ++j) out[row * n + j] = k[p[j]];
      }
    });
  });
  (void)stable;
  return {sort_rows::restore(r, values), sort_rows::restore(r, indices)};
}

std::tuple<Tensor, Tensor> topk_any(const Tensor& self, int64_t k, int64_t dim_in, bool largest, bool sorted) {
  int64_t dim = wrap_dim(dim_in, std::max<int64_t>(self.dim(), 1));
  int64_t n = self.dim() == 0 ? 1 : self.size(dim);
  VT_CHECK(k >= 0 && k <= n, "selected index k out of range");
  static const TypedOp<std::tuple<Tensor, Tensor>(const Tensor&, int64_t, bool, bool)> sort("vt::sort");
  auto [values, indices] = sort(self, dim, largest, true);
  (void)sorted;
  if (self.dim() == 0) return {values, indices};
  return {ops::contiguous(ops::narrow(values, dim, 0, k)), ops::contiguous(ops::narrow(indices, dim, 0, k))};
}

// topk on the CPU: a partial sort of each row's positions, O(n log k) where sorting the row was O(n log n) - a
// 50,257-wide row (a vocabulary's logits), k = 50: 4.6 ms that way, torch 0.09 ms. Equal keys order by position,
// so the k results are the stable sort's first k, as topk_any (the CUDA path) gives them.
std::tuple<Tensor, Tensor> topk_cpu(const Tensor& self, int64_t k, int64_t dim_in, bool largest, bool sorted) {
  if (self.dim() == 0) return topk_any(self, k, dim_in, largest, sorted);
  const int64_t n = self.size(wrap_dim(dim_in, self.dim()));
  VT_CHECK(k >= 0 && k <= n, "selected index k out of range");
  sort_rows::Rows r = sort_rows::rows_of(self, dim_in);
  DimVector shape = r.shape_last;
  shape.back() = k;
  Tensor values = empty_tensor(shape, self.dtype(), kCPU);
  Tensor indices = empty_tensor(shape, ScalarType::Int64, kCPU);
  VT_DISPATCH_ALL(self.dtype(), "topk", [&] {
    const scalar_t* in = r.keys.data<scalar_t>();
    scalar_t* out = values.data<scalar_t>();
    int64_t* idx = indices.data<int64_t>();
    parallel_for(0, r.rows, std::max<int64_t>(1, kDefaultGrain / std::max<int64_t>(n, 1)), [&](int64_t b, int64_t e) {
      std::vector<int64_t> p(static_cast<size_t>(n));
      for (int64_t row = b; row < e; ++row) {
        const scalar_t* key = in + row * n;
        const Before<scalar_t> before{key, largest};
        std::iota(p.begin(), p.end(), int64_t(0));
        std::partial_sort(p.begin(), p.begin() + k, p.end(),
                          [&](int64_t i, int64_t j) { return before(i, j) || (!before(j, i) && i < j); });
        for (int64_t j = 0; j < k; ++j) {
          out[row * k + j] = key[p[size_t(j)]];
          idx[row * k + j] = p[size_t(j)];
        }
      }
    });
  });
  return {sort_rows::restore(r, values), sort_rows::restore(r, indices)};
}

}  // namespace

VT_LIBRARY(vt, sort) {
  m.def("sort(Tensor self, int dim=-1, bool descending=False, *, bool stable=False) -> (Tensor, Tensor)");
  m.def("topk(Tensor self, int k, int dim=-1, bool largest=True, bool sorted=True) -> (Tensor, Tensor)");
  m.impl("sort", DispatchKey::CPU, &sort_cpu);
  m.impl("topk", DispatchKey::CPU, &topk_cpu);
  m.impl_any("topk", &topk_any);  // other backends: the sort, then the first k
}

}  // namespace vt
