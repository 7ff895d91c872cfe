#pragma once
// tril / triu: a batch of matrices with the elements off one side of a diagonal zeroed. tril keeps (r, c) where
// c - r <= diagonal, triu where c - r >= diagonal, so each row keeps one run of columns: a prefix for tril, a
// suffix for triu (kept_columns). The CPU copies and clears those runs per row (triangle.cpp), the CUDA kernel
// decides per element (cuda/triangle.cu); both move bytes by element size, so one loop serves every dtype
// (a zero of every dtype is all-zero bits: +0.0, 0, false).
//
// Note [Triangle layouts]
// The kernels see self as [batch, rows, cols] with element strides, the batch dims folded into one where they
// collapse (collapsed_batch_stride). Where they do not (a permuted batch), the out-of-place op reads a contiguous
// copy and the in-place op writes the out-of-place result back with copy_. The out-of-place result is
// contiguous, as torch's.
#include <algorithm>
#include <cstdint>

#include "vt/core/half.h"
#include "vt/core/tensor.h"

namespace vt::triangle {

struct Plan {
  int64_t batch, rows, cols;
  int64_t diagonal;    // clamped to [-rows, cols]: the same kept sets, and no overflow in kept_columns
  bool lower;          // tril
  bool in_place;       // write only the cleared elements; `in` is `out`
  int64_t in[3], out[3];  // element strides as [batch, rows, cols]
  int64_t itemsize;
};

// The kept columns of row r: [begin, end).
VT_HOST_DEVICE inline void kept_columns(const Plan& p, int64_t r, int64_t& begin, int64_t& end) {
  const int64_t edge = r + p.diagonal;  // the diagonal's column in row r
  if (p.lower) {
    begin = 0;
    end = edge + 1 < 0 ? 0 : (edge + 1 > p.cols ? p.cols : edge + 1);
  } else {
    begin = edge < 0 ? 0 : (edge > p.cols ? p.cols : edge);
    end = p.cols;
  }
}

VT_HOST_DEVICE inline bool keeps(const Plan& p, int64_t r, int64_t c) {
  return p.lower ? c - r <= p.diagonal : c - r >= p.diagonal;
}

// The common element stride of t's batch dims (all but the last two) when they fold into one dim, -1 when
// they do not (Note [Triangle layouts]).
inline int64_t collapsed_batch_stride(const Tensor& t) {
  int64_t stride = 0, next = -1;  // next: the stride the next outer dim must have
  for (int64_t d = t.dim() - 3; d >= 0; --d) {
    if (t.size(d) == 1) continue;
    if (next >= 0 && t.stride(d) != next) return -1;
    if (next < 0) stride = t.stride(d);
    next = t.stride(d) * t.size(d);
  }
  return stride;
}

inline Plan make_plan(const Tensor& self, const Tensor& out, int64_t diagonal, bool lower, bool in_place) {
  Plan p{};
  const int64_t n = self.dim();
  p.rows = self.size(n - 2), p.cols = self.size(n - 1);
  p.batch = p.rows * p.cols == 0 ? 0 : self.numel() / (p.rows * p.cols);
  p.diagonal = std::clamp<int64_t>(diagonal, -p.rows, p.cols);
  p.lower = lower;
  p.in_place = in_place;
  p.in[0] = collapsed_batch_stride(self), p.in[1] = self.stride(n - 2), p.in[2] = self.stride(n - 1);
  p.out[0] = collapsed_batch_stride(out), p.out[1] = out.stride(n - 2), p.out[2] = out.stride(n - 1);
  p.itemsize = self.element_size();
  return p;
}

// A backend's kernel: every element of out = the triangle of in (only the cleared ones when in place).
using Kernel = void (*)(const Plan& p, const Tensor& in, const Tensor& out);

// The op on one backend: torch's checks, the layouts of Note [Triangle layouts], then `kernel` (in triangle.cpp).
Tensor run(const Tensor& self, int64_t diagonal, bool lower, bool in_place, Kernel kernel);

}  // namespace vt::triangle
