#pragma once
// Operand checks shared by the CPU and CUDA matrix products, so both raise the same errors.
#include "vt/core/tensor.h"

namespace vt::matmul {

inline void check_operands(const Tensor& a, const Tensor& b, const char* name, int64_t rank) {
  VT_CHECK(a.dim() == rank, name, ": self must be a ", rank, "D tensor, got ", a.dim(), "D with shape ",
           shape_str(a.sizes()));
  VT_CHECK(b.dim() == rank, name, ": mat2 must be a ", rank, "D tensor, got ", b.dim(), "D with shape ",
           shape_str(b.sizes()));
  VT_CHECK(a.dtype() == b.dtype(), name, ": expected m1 and m2 to have the same dtype, but got: ",
           dtype_name(a.dtype()), " != ", dtype_name(b.dtype()));
  VT_CHECK_KIND(NotImplemented, a.dtype() != ScalarType::Bool, "\"", name, "\" not implemented for 'bool'");
}

inline void check_mm(const Tensor& a, const Tensor& b) {
  check_operands(a, b, "mm", 2);
  VT_CHECK(a.size(1) == b.size(0), "mat1 and mat2 shapes cannot be multiplied (", a.size(0), "x", a.size(1), " and ",
           b.size(0), "x", b.size(1), ")");
}

inline void check_bmm_shapes(const Tensor& a, const Tensor& b, const char* name) {
  VT_CHECK(b.size(0) == a.size(0) && b.size(1) == a.size(2), name, ": shapes ", shape_str(a.sizes()), " and ",
           shape_str(b.sizes()), " cannot be multiplied (batch ", a.size(0), " vs ", b.size(0), ", inner ", a.size(2),
           " vs ", b.size(1), ")");
}

// _bmm_nd: [..., M, K] @ [..., K, N] with the same batch dims (broadcasting is the caller's expand).
inline void check_bmm_nd(const Tensor& a, const Tensor& b) {
  VT_CHECK(a.dim() >= 3 && a.dim() == b.dim(), "_bmm_nd: expected operands of the same rank >= 3, got shapes ",
           shape_str(a.sizes()), " and ", shape_str(b.sizes()));
  VT_CHECK(a.dtype() == b.dtype(), "_bmm_nd: expected m1 and m2 to have the same dtype, but got: ",
           dtype_name(a.dtype()), " != ", dtype_name(b.dtype()));
  bool same_batch = true;
  for (int64_t d = 0; d < a.dim() - 2; ++d) same_batch = same_batch && a.size(d) == b.size(d);
  VT_CHECK(same_batch && a.size(-1) == b.size(-2), "_bmm_nd: shapes ", shape_str(a.sizes()), " and ",
           shape_str(b.sizes()), " cannot be multiplied");
}

// The result's sizes: the batch dims, then M and N.
inline DimVector bmm_nd_sizes(const Tensor& a, const Tensor& b) {
  DimVector s(a.sizes());
  s.back() = b.size(-1);
  return s;
}

}  // namespace vt::matmul
