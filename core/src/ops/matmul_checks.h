#pragma once
// Operand checks shared by the CPU and CUDA matrix products, so both raise the same errors, and linear's
// composed form, which both backends fall back to.
#include <tuple>

#include "vt/core/ops.h"
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

// The rows of linear's input: the product of its leading dims.
inline int64_t linear_rows(const Tensor& x) {
  int64_t rows = 1;
  for (int64_t d = 0; d + 1 < x.dim(); ++d) rows *= x.size(d);
  return rows;
}

// _linear_bias(input [..., K], weight [N, K], bias [N] or [1]): the operands agree in dtype and device.
inline void check_linear_bias(const Tensor& x, const Tensor& w, const Tensor& b) {
  VT_CHECK(x.dim() >= 2 && w.dim() == 2 && b.dim() == 1, "_linear_bias: expected input of rank >= 2, a 2-D weight ",
           "and a 1-D bias, got shapes ", shape_str(x.sizes()), ", ", shape_str(w.sizes()), " and ",
           shape_str(b.sizes()));
  VT_CHECK(x.size(-1) == w.size(1), "mat1 and mat2 shapes cannot be multiplied (", linear_rows(x), "x", x.size(-1),
           " and ", w.size(1), "x", w.size(0), ")");
  VT_CHECK(b.size(0) == w.size(0) || b.size(0) == 1, "linear: the bias has ", b.size(0), " elements but the weight ",
           shape_str(w.sizes()), " gives ", w.size(0), " output features");
  VT_CHECK(x.dtype() == w.dtype() && x.dtype() == b.dtype(), "linear: input, weight and bias must have the same ",
           "dtype, but got ", dtype_name(x.dtype()), ", ", dtype_name(w.dtype()), " and ", dtype_name(b.dtype()));
  VT_CHECK(x.device() == w.device() && x.device() == b.device(), "Expected all tensors to be on the same device, ",
           "but found at least two devices: input on ", x.device().str(), ", weight on ", w.device().str(),
           ", bias on ", b.device().str());
}

// input's leading dims with the last replaced by n.
inline DimVector linear_sizes(const Tensor& x, int64_t n) {
  DimVector s(x.sizes());
  s.back() = n;
  return s;
}

// x W^T + b composed of mm and add over the folded rows (a view of the input where its layout allows).
inline Tensor linear_bias_composite(const Tensor& x, const Tensor& w, const Tensor& b) {
  int64_t rows = linear_rows(x), k = x.size(-1);
  Tensor prod = ops::binary("vt::mm", ops::reshape(x, DimVector{rows, k}), ops::transpose(w, 0, 1));
  return ops::reshape(ops::add(prod, b), linear_sizes(x, w.size(0)));
}

// _linear_weight_bias_grad(grad [..., N], input [..., K]): the same leading dims, dtype and device.
inline void check_linear_weight_bias_grad(const Tensor& g, const Tensor& x) {
  bool same_lead = g.dim() == x.dim() && g.dim() >= 1;
  for (int64_t d = 0; same_lead && d + 1 < g.dim(); ++d) same_lead = g.size(d) == x.size(d);
  VT_CHECK(same_lead, "_linear_weight_bias_grad: grad ", shape_str(g.sizes()), " and input ", shape_str(x.sizes()),
           " must share their leading dims");
  VT_CHECK(g.dtype() == x.dtype() && g.device() == x.device(), "_linear_weight_bias_grad: grad (",
           dtype_name(g.dtype()), " on ", g.device().str(), ") and input (", dtype_name(x.dtype()), " on ",
           x.device().str(), ") must agree in dtype and device");
}

// (G^T X, G summed over its rows) over the folded rows, composed of mm and sum.
inline std::tuple<Tensor, Tensor> linear_weight_bias_grad_composite(const Tensor& g_in, const Tensor& x_in) {
  int64_t rows = linear_rows(x_in);
  Tensor g = ops::reshape(g_in, DimVector{rows, g_in.size(-1)});
  Tensor x = ops::reshape(x_in, DimVector{rows, x_in.size(-1)});
  return {ops::binary("vt::mm", ops::transpose(g, 0, 1), x), ops::sum(g, DimVector{0}, false, std::nullopt)};
}

}  // namespace vt::matmul
