// mm and bmm on CUDA through cuBLAS. A row-major product C = A @ B is the column-major product
// C^T = B^T @ A^T, so each operand is handed to cuBLAS as it lies in memory: a row-major matrix read
// column-major is its transpose (op N), a column-major one (a transposed view) gets op T. Operands with any
// other layout are made contiguous first. Accumulation is in float32 (float64 for double), without TF32, as
// torch's default. Integer and bool products are not implemented on CUDA, as in torch.
#include <optional>

#include "../matmul_checks.h"
#include "vt/core/dispatcher.h"
#include "vt/core/ops.h"
#include "vt/cuda/cublas.h"
#include "vt/cuda/cublaslt.h"
#include "vt/cuda/check.h"
#include "vt/cuda/guard.h"
#include "vt/cuda/stream.h"

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

// One stride that steps through all batch dims of t in row-major order (size-1 dims skipped), if there is one.
std::optional<int64_t> batch_stride(const Tensor& t, int64_t nbatch_dims) {
  std::optional<int64_t> step;
  int64_t inner = 1;  // elements of the batch dims inside d, in units of the step
  for (int64_t d = nbatch_dims - 1; d >= 0; --d) {
    if (t.size(d) == 1) continue;
    if (!step) step = t.stride(d);
    else if (t.stride(d) != *step * inner) return std::nullopt;
    inner *= t.size(d);
  }
  return step.value_or(0);
}

constexpr int kMaxBatchDims = 8;
// Where each batch's matrix starts, for the three operands: written on the device by batch_pointers_kernel.
struct BatchLayout {
  int ndim = 0;
  int64_t sizes[kMaxBatchDims];
  int64_t strides[3][kMaxBatchDims];  // bytes
  char* base[3];
};

__global__ void batch_pointers_kernel(BatchLayout l, int64_t nb, char** out) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < nb; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t rest = i, off[3] = {0, 0, 0};
    for (int d = l.ndim - 1; d >= 0; --d) {
      int64_t idx = rest % l.sizes[d];
      rest /= l.sizes[d];
      for (int k = 0; k < 3; ++k) off[k] += idx * l.strides[k][d];
    }
    for (int k = 0; k < 3; ++k) out[k * nb + i] = l.base[k] + off[k];
  }
}

// [..., M, K] @ [..., K, N]: a strided-batched GEMM when every operand's batch dims collapse to one stride,
// else a pointer-array GEMM whose pointers a small kernel computes on the device (no host copy, no sync).
// Callers check the operands (bmm, mm and _bmm_nd word their errors differently).
Tensor batched_gemm(const Tensor& a_in, const Tensor& b_in) {
  int64_t nd = a_in.dim() - 2, M = a_in.size(-2), K = a_in.size(-1), N = b_in.size(-1), nb = 1;
  for (int64_t d = 0; d < nd; ++d) nb *= a_in.size(d);
  Tensor c = empty_tensor(matmul::bmm_nd_sizes(a_in, b_in), a_in.dtype(), a_in.device());
  // Empty products need no kernel, so torch returns them for every dtype; check the dtype only after.
  if (c.numel() == 0) return c;
  if (K == 0) return ops::fill_(c, Scalar(int64_t(0)));
  cudaDataType dt = data_type(a_in.dtype());
  DeviceGuard guard(a_in.device().index);
  Operand a = as_operand(a_in, M, K), b = as_operand(b_in, K, N);
  blas::Compute compute = a_in.dtype() == ScalarType::Float64 ? blas::Compute::F64 : blas::Compute::F32;
  // C^T [N, M] = B^T [N, K] @ A^T [K, M]: cuBLAS's A is our b, its B is our a.
  int n = checked_int(N, "size"), m = checked_int(M, "size"), k = checked_int(K, "size");
  int lda = checked_int(a.ld, "leading dimension"), ldb = checked_int(b.ld, "leading dimension");
  auto sa = batch_stride(a.t, nd), sb = batch_stride(b.t, nd);
  if (sa && sb) {
    blas::gemm_strided_batched(b.op, a.op, n, m, k, b.t.data_ptr(), dt, ldb, *sb, a.t.data_ptr(), dt, lda, *sa,
                               c.data_ptr(), dt, n, M * N, checked_int(nb, "batch"), compute);
    return c;
  }
  VT_CHECK(nd <= kMaxBatchDims, "_bmm_nd: at most ", kMaxBatchDims, " batch dims, got ", nd);
  BatchLayout l;
  l.ndim = int(nd);
  const Tensor* ops3[3] = {&b.t, &a.t, &c};  // cuBLAS's A, B, C
  for (int kk = 0; kk < 3; ++kk) {
    l.base[kk] = ops3[kk]->data_ptr();
    for (int64_t d = 0; d < nd; ++d) l.strides[kk][d] = ops3[kk]->stride(d) * int64_t(c.element_size());
  }
  for (int64_t d = 0; d < nd; ++d) l.sizes[d] = a_in.size(d);
  Tensor ptrs = empty_tensor(DimVector{3 * nb}, ScalarType::Int64, c.device());
  auto stream = reinterpret_cast<cudaStream_t>(current_stream(c.device().index));
  char** p = reinterpret_cast<char**>(ptrs.data_ptr());
  batch_pointers_kernel<<<unsigned((nb + 255) / 256), 256, 0, stream>>>(l, nb, p);
  VT_CUDA_CHECK(cudaGetLastError());
  blas::gemm_batched(b.op, a.op, n, m, k, reinterpret_cast<const void* const*>(p), dt, ldb,
                     reinterpret_cast<const void* const*>(p + nb), dt, lda, reinterpret_cast<void* const*>(p + 2 * nb),
                     dt, n, checked_int(nb, "batch"), compute);
  return c;
}

Tensor bmm_nd_cuda(const Tensor& a, const Tensor& b) {
  matmul::check_bmm_nd(a, b);
  return batched_gemm(a, b);
}

Tensor bmm_cuda(const Tensor& a, const Tensor& b) {
  matmul::check_operands(a, b, "bmm", 3);
  matmul::check_bmm_shapes(a, b, "bmm");
  return batched_gemm(a, b);
}

Tensor mm_cuda(const Tensor& a, const Tensor& b) {
  matmul::check_mm(a, b);
  return ops::squeeze(batched_gemm(ops::unsqueeze(a, 0), ops::unsqueeze(b, 0)), DimVector{0});
}

// A product the cuBLASLt epilogue paths take: float32 or 16-bit, no empty dim, every dim an int.
bool lt_problem(ScalarType t, int64_t M, int64_t N, int64_t K) {
  bool lt_type = t == ScalarType::Float32 || t == ScalarType::Float16 || t == ScalarType::BFloat16;
  return lt_type && M > 0 && N > 0 && K > 0 && M <= INT32_MAX && N <= INT32_MAX && K <= INT32_MAX;
}

// input [..., K] @ weight[N, K]^T + bias[N] in one cuBLASLt GEMM whose epilogue adds the bias as each output tile
// is written (float32/16-bit operands, any row or column-major layout as_operand accepts); the composed mm + add
// where cuBLASLt has no algorithm, for float64, empty products and a broadcast one-element bias.
Tensor linear_bias_cuda(const Tensor& x_in, const Tensor& w, const Tensor& bias) {
  matmul::check_linear_bias(x_in, w, bias);
  int64_t M = matmul::linear_rows(x_in), K = x_in.size(-1), N = w.size(0);
  ScalarType t = x_in.dtype();
  if (!lt_problem(t, M, N, K) || bias.size(0) != N) return matmul::linear_bias_composite(x_in, w, bias);
  DeviceGuard guard(x_in.device().index);
  // C^T [N, M] = W [N, K] @ X^T [K, M] column-major, as in batched_gemm: cuBLAS's A is W^T read as stored.
  Operand a = as_operand(ops::reshape(x_in, DimVector{M, K}), M, K);
  Operand b = as_operand(ops::transpose(w, 0, 1), K, N);
  Tensor b_vec = bias.stride(0) == 1 ? bias : ops::contiguous(bias);
  Tensor c = empty_tensor(DimVector{M, N}, t, x_in.device());
  if (!blaslt::gemm(b.op, a.op, int(N), int(M), int(K), b.t.data_ptr(), checked_int(b.ld, "leading dimension"),
                    a.t.data_ptr(), checked_int(a.ld, "leading dimension"), c.data_ptr(), int(N), data_type(t),
                    blaslt::Epilogue::Bias, b_vec.data_ptr()))
    return matmul::linear_bias_composite(x_in, w, bias);
  return ops::reshape(c, matmul::linear_sizes(x_in, N));
}

// linear's weight and bias gradients in one GEMM: dW [N, K] = G^T X, with cuBLASLt's BGRADB epilogue summing the
// rows of G into dB as the product reads them (no second pass over G); composed mm + sum where it cannot. With
// the column tiles of the sum (Note [Column tiles] in reduce.cuh) mm + sum ran as fast on MiniGPT's step (H100:
// 7.51-7.53 ms of GPU time a step either way, the sums 25 kernels more): the epilogue stays, for fewer launches.
std::tuple<Tensor, Tensor> linear_weight_bias_grad_cuda(const Tensor& g_in, const Tensor& x_in) {
  matmul::check_linear_weight_bias_grad(g_in, x_in);
  int64_t M = matmul::linear_rows(x_in), K = x_in.size(-1), N = g_in.size(-1);
  ScalarType t = x_in.dtype();
  if (!lt_problem(t, M, N, K)) return matmul::linear_weight_bias_grad_composite(g_in, x_in);
  DeviceGuard guard(x_in.device().index);
  // dW^T [K, N] = X^T [K, M] @ G [M, N] column-major: cuBLAS's A is X read as stored (as_operand's op gives X^T),
  // its B is G, so G's op is the flip of the one that would give G^T.
  Operand x = as_operand(ops::reshape(x_in, DimVector{M, K}), M, K);
  Operand g = as_operand(ops::reshape(g_in, DimVector{M, N}), M, N);
  blas::Op g_op = g.op == blas::Op::N ? blas::Op::T : blas::Op::N;
  Tensor dw = empty_tensor(DimVector{N, K}, t, x_in.device());
  Tensor db = empty_tensor(DimVector{N}, t, x_in.device());
  if (!blaslt::gemm(x.op, g_op, int(K), int(N), int(M), x.t.data_ptr(), checked_int(x.ld, "leading dimension"),
                    g.t.data_ptr(), checked_int(g.ld, "leading dimension"), dw.data_ptr(), int(K), data_type(t),
                    blaslt::Epilogue::BGradB, db.data_ptr()))
    return matmul::linear_weight_bias_grad_composite(g_in, x_in);
  return {dw, db};
}

}  // namespace
}  // namespace vt::cuda

VT_LIBRARY(vt, matmul_cuda) {
  m.impl("mm", vt::DispatchKey::CUDA, &vt::cuda::mm_cuda);
  m.impl("bmm", vt::DispatchKey::CUDA, &vt::cuda::bmm_cuda);
  m.impl("_bmm_nd", vt::DispatchKey::CUDA, &vt::cuda::bmm_nd_cuda);
  m.impl("_linear_bias", vt::DispatchKey::CUDA, &vt::cuda::linear_bias_cuda);
  m.impl("_linear_weight_bias_grad", vt::DispatchKey::CUDA, &vt::cuda::linear_weight_bias_grad_cuda);
}
