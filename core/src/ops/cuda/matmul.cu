// mm and bmm on CUDA through cuBLAS. A row-major product C = A @ B is the column-major product
// C^T = B^T @ A^T, so each operand is handed to cuBLAS as it lies in memory: a row-major matrix read
// column-major is its transpose (op N), a column-major one (a transposed view) gets op T. Operands with any
// other layout are made contiguous first. Accumulation is in float32 (float64 for double), without TF32, as
// torch's default. Integer and bool products are not implemented on CUDA, as in torch.
#include "../matmul_checks.h"
#include "vt/core/dispatcher.h"
#include "vt/core/ops.h"
#include "vt/cuda/cublas.h"
#include "vt/cuda/guard.h"

namespace vt::cuda {
namespace {

struct Operand {
  Tensor t;
  blas::Op op = blas::Op::N;  // as read column-major: N gives the transpose of the row-major matrix
  int64_t ld = 1;
};

// Matrix [rows, cols] as the last two dims of t.
Operand as_operand(const Tensor& t, int64_t rows, int64_t cols) {
  int64_t s_row = t.stride(t.dim() - 2), s_col = t.stride(t.dim() - 1);
  if (s_col == 1 && s_row >= std::max<int64_t>(1, cols)) return {t, blas::Op::N, s_row};
  if (s_row == 1 && s_col >= std::max<int64_t>(1, rows)) return {t, blas::Op::T, s_col};
  Tensor c = ops::contiguous(t);
  return {c, blas::Op::N, std::max<int64_t>(1, cols)};
}

cudaDataType data_type(ScalarType t) {
  switch (t) {
    case ScalarType::Float32: return CUDA_R_32F;
    case ScalarType::Float64: return CUDA_R_64F;
    case ScalarType::Float16: return CUDA_R_16F;
    case ScalarType::BFloat16: return CUDA_R_16BF;
    default:
      VT_FAIL_KIND(NotImplemented, "\"addmm_cuda\" not implemented for '", dtype_name(t), "'");
  }
}

int checked_int(int64_t v, const char* what) {
  VT_CHECK(v <= INT32_MAX, "bmm: ", what, " of ", v, " exceeds cuBLAS's 32-bit limit");
  return int(v);
}

Tensor bmm_cuda_impl(const Tensor& a_in, const Tensor& b_in, const char* name) {
  matmul::check_bmm_shapes(a_in, b_in, name);
  int64_t B = a_in.size(0), M = a_in.size(1), K = a_in.size(2), N = b_in.size(2);
  Tensor c = empty_tensor(DimVector{B, M, N}, a_in.dtype(), a_in.device());
  // Empty products need no kernel, so torch returns them for every dtype; check the dtype only after.
  if (c.numel() == 0) return c;
  if (K == 0) return ops::fill_(c, Scalar(int64_t(0)));
  cudaDataType dt = data_type(a_in.dtype());
  DeviceGuard guard(a_in.device().index);
  Operand a = as_operand(a_in, M, K), b = as_operand(b_in, K, N);
  blas::Compute compute = a_in.dtype() == ScalarType::Float64 ? blas::Compute::F64 : blas::Compute::F32;
  // C^T [N, M] = B^T [N, K] @ A^T [K, M]: cuBLAS's A is our b, its B is our a.
  blas::gemm_strided_batched(b.op, a.op, checked_int(N, "size"), checked_int(M, "size"), checked_int(K, "size"),
                             b.t.data_ptr(), dt, checked_int(b.ld, "leading dimension"), b.t.stride(0), a.t.data_ptr(),
                             dt, checked_int(a.ld, "leading dimension"), a.t.stride(0), c.data_ptr(), dt, int(N), M * N,
                             checked_int(B, "batch"), compute);
  return c;
}

Tensor bmm_cuda(const Tensor& a, const Tensor& b) {
  matmul::check_operands(a, b, "bmm", 3);
  return bmm_cuda_impl(a, b, "bmm");
}

Tensor mm_cuda(const Tensor& a, const Tensor& b) {
  matmul::check_mm(a, b);
  return ops::squeeze(bmm_cuda_impl(ops::unsqueeze(a, 0), ops::unsqueeze(b, 0), "mm"), DimVector{0});
}

}  // namespace
}  // namespace vt::cuda

VT_LIBRARY(vt, matmul_cuda) {
  m.impl("mm", vt::DispatchKey::CUDA, &vt::cuda::mm_cuda);
  m.impl("bmm", vt::DispatchKey::CUDA, &vt::cuda::bmm_cuda);
}
