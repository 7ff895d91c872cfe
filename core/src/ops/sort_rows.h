#pragma once
// The row view shared by the CPU and CUDA sorts (sort.cpp, cuda/sort.cu): self with the sorted dim moved last,
// contiguous, as `rows` rows of `n` keys; results come back in that layout and restore() puts `dim` back.
#include "vt/core/ivalue.h"

namespace vt::sort_rows {

struct Rows {
  Tensor keys;           // contiguous [..., n]: self with `dim` last (a 0-dim self is one row of one key)
  DimVector shape_last;  // keys' sizes
  int64_t dim = 0, ndim = 0, rows = 0, n = 0;
};

Rows rows_of(const Tensor& self, int64_t dim);
Tensor restore(const Rows& r, const Tensor& t);  // t laid out like keys -> the caller's layout, contiguous

}  // namespace vt::sort_rows
