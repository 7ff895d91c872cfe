#pragma once
// The geometry of gather and the scatter family along one dim, shared by the CPU and CUDA kernels.
//
// Both walk the index tensor: for each coordinate c of index (shape I), the position in self is c with c[dim]
// replaced by index[c]. gather reads self there into out[c]; a scatter writes (or reduces) src[c] into self
// there. torch's shape rules: index, self (and src) have the same number of dims; I[d] <= self.size(d) for
// d != dim, and I[d] <= src.size(d) for every d. A 0-dim tensor counts as one of shape [1].
//
// Note [Scatter op codes]
// The backend primitive vt::_scatter_into_(self, dim, index, src, op) writes src into self with op: 0 assign,
// 1 sum, 2 prod, 3 amax, 4 amin. Duplicate indices assign in an unspecified order (as torch's) and reduce
// in any order (exact for amax/amin and integer sums; floating sums may round differently on CUDA, where
// they are atomics). scatter_reduce's include_self=False and "mean" are composed over it (gather_scatter.cpp).
//
// Note [Gather and scatter check order]
// The checks run in torch's order, since the first failing one decides the exception's kind: the dim against
// self (IndexError), the index dtype (int32/int64), src's dtype against self's, the shapes, and last
// scatter_reduce's reduce name (RuntimeErrors). An empty index is no work: its dtype and shape go unchecked
// (gather returns an empty tensor of index's shape, a scatter returns self), as torch's. Overlaps of self with
// index or src are checked after all of these (check_scatter_overlap), as torch does.
#include "vt/core/ivalue.h"

namespace vt::scatter {

enum class Op : int64_t { Assign = 0, Sum = 1, Prod = 2, Max = 3, Min = 4 };

// Element strides of the three operands over index's shape; self's along `dim` is kept apart (self_dim_stride)
// and set to 0 in self_strides, since the index supplies that coordinate.
struct Geometry {
  int64_t ndim = 0, dim = 0, dim_size = 0, self_dim_stride = 0, numel = 0;
  int64_t sizes[kMaxDims] = {};
  int64_t self_strides[kMaxDims] = {}, index_strides[kMaxDims] = {}, other_strides[kMaxDims] = {};
};

// Checks torch's rules (RuntimeError naming the shapes) and builds the geometry; `other` is gather's output
// (index's shape) or a scatter's src (is_scatter: its sizes are checked too). `what` names the op in messages.
// `dim` is already wrapped (check_scatter / prepare_gather do that first).
Geometry plan(const Tensor& self, int64_t dim, const Tensor& index, const Tensor& other, bool is_scatter,
              const char* what);
// Every check of a scatter before its reduce name, in torch's order (Note [Gather and scatter check order]);
// returns the wrapped dim.
int64_t check_scatter(const Tensor& self, int64_t dim, const Tensor& index, const Tensor& src);
// Note [In-place overlap] for the scatters, which run it themselves after check_scatter: self may not overlap
// itself, index or src (not even fully: a scatter reads other elements than the one it writes).
void check_scatter_overlap(const Tensor& self, const Tensor& index, const Tensor& src, const char* what);
// index as int64 (int32 is accepted, as torch's); other integer or floating dtypes raise unless index is empty.
Tensor index_as_long(const Tensor& index, const char* what);

// The checked operands of one call: index as int64, `other` (gather: the new output of index's shape;
// scatter: src) and the geometry. prepare_scatter also checks dtypes and the op code and bumps self's version.
struct Prepared {
  Tensor index, other;
  Geometry g;
};
Prepared prepare_gather(const Tensor& self, int64_t dim, const Tensor& index);
Prepared prepare_scatter(const Tensor& self, int64_t dim, const Tensor& index, const Tensor& src, int64_t op);

}  // namespace vt::scatter
