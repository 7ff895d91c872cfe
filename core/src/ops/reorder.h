#pragma once
// flip and roll as one gather each (reorder.cpp for the schemas and the CPU kernel, cuda/reorder.cu for CUDA):
// every output element reads one input element, whose coordinate along each dim is the output's, reversed
// (flip) or moved cyclically (roll). The result is a new dense tensor of the input's shape, as torch's.
#include <cstdint>

#include "vt/core/tensor.h"

namespace vt::reorder {

inline constexpr int64_t kFlipped = -1;

// Note [Reorder plans]: out[c] = in[sum_d source_d(c_d) * stride_d] over the output's coordinates c
// (outermost dim first), with source_d(c) = size_d - 1 - c for a flipped dim (shift_d = kFlipped) and
// (c + shift_d) mod size_d otherwise (shift_d in [0, size_d): 0 leaves the dim as it is; a roll by s is a shift
// of size - s mod size). Dims of size 1 and dims that neither flip nor roll still take part: the plan keeps the
// input's strides, so any layout reads in place, and the two kernels share the arithmetic.
struct Plan {
  int ndim = 0;
  int64_t size[kMaxDims] = {};
  int64_t stride[kMaxDims] = {};
  int64_t shift[kMaxDims] = {};
};

#if defined(__CUDACC__)
#define VT_REORDER_HD __host__ __device__
#else
#define VT_REORDER_HD
#endif

VT_REORDER_HD inline int64_t source(const Plan& p, int d, int64_t c) {
  const int64_t s = p.shift[d];
  if (s == kFlipped) return p.size[d] - 1 - c;
  const int64_t r = c + s;
  return r >= p.size[d] ? r - p.size[d] : r;
}

// The plans of flip(self, dims) and roll(self, shifts, dims), checked as torch checks the arguments; roll with
// no dims rolls the flattened tensor (the plan then reads a dense copy as one dim, `flat` set to that copy).
Plan flip_plan(const Tensor& self, IntArrayRef dims);
Plan roll_plan(const Tensor& self, IntArrayRef shifts, IntArrayRef dims, Tensor& flat);

}  // namespace vt::reorder
