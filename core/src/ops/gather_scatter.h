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
Geometry plan(const Tensor& self, int64_t dim, const Tensor& index, const Tensor& other, bool is_scatter,
              const char* what);
// index as int64 (int32 is accepted, as torch's); other integer or floating dtypes raise.
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
