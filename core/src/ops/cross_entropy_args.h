#pragma once
// The fused cross entropy's argument contract (_cross_entropy_rows, described in cuda/cross_entropy.cu), shared by
// its CPU kernels (cross_entropy_cpu.cpp) and its CUDA kernels: the checks, and the layouts both read.
#include "vt/core/ops.h"

namespace vt::xent {

inline void check_rows_args(const Tensor& input, const Tensor& target, int64_t reduction) {
  VT_CHECK(input.dim() == 2 && target.dim() == 1 && target.size(0) == input.size(0),
           "_cross_entropy_rows: input [M, C] and target [M], got ", shape_str(input.sizes()), " and ",
           shape_str(target.sizes()));
  VT_CHECK(is_floating(input.dtype()), "_cross_entropy_rows: a floating input, got ", dtype_name(input.dtype()));
  VT_CHECK_VALUE(reduction >= 0 && reduction <= 2, "_cross_entropy_rows: reduction 0, 1 or 2");
}

// Rows whose classes are adjacent (the kernels read a row as one run).
inline Tensor class_rows(const Tensor& input) { return input.stride(1) == 1 ? input : ops::contiguous(input); }

inline Tensor dense_targets(const Tensor& target) {
  Tensor t = target.dtype() == ScalarType::Int64 ? target : ops::to_dtype(target, ScalarType::Int64);
  return t.is_contiguous() ? t : ops::contiguous(t);
}

}  // namespace vt::xent
