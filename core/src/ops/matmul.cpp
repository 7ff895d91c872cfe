// mm and bmm on the CPU: C[M,N] = A[M,K] @ B[K,N], per batch for bmm. Floating types go to the packed GEMM
// (cpu_gemm.h), which reads both operands through their strides, so transposed and sliced views are not copied;
// float16/bfloat16 accumulate in a float32 result that is rounded once at the end (after the bias of
// _linear_bias), float32 in float, float64 in double, as torch's CPU kernels do. Integers keep a simple row loop accumulating in int64. A cuBLAS path
// arrives with the CUDA kernels.
#include <vector>

#include "vt/core/cpu_gemm.h"
#include "matmul_checks.h"
#include "vt/core/dispatcher.h"
#include "vt/core/ops.h"
#include "vt/core/parallel.h"

namespace vt {
namespace {

using matmul::check_bmm_shapes;
using matmul::check_mm;
using matmul::check_operands;

constexpr int64_t kKBlock = 256;

// Integer products, rows [row_begin, row_end) of dense C from dense A and B. Four rows of A share each pass over
// a row of B (four accumulator rows); the j loop is contiguous and vectorises.
template <typename T>
void int_gemm_rows(const T* a, const T* b, T* c, int64_t K, int64_t N, int64_t row_begin, int64_t row_end) {
  constexpr int64_t R = 4;
  std::vector<int64_t> acc(static_cast<size_t>(R * N));
  for (int64_t i0 = row_begin; i0 < row_end; i0 += R) {
    int64_t rows = std::min(R, row_end - i0);
    std::fill(acc.begin(), acc.end(), int64_t(0));
    for (int64_t k0 = 0; k0 < K; k0 += kKBlock) {
      for (int64_t k = k0; k < std::min(K, k0 + kKBlock); ++k) {
        const T* __restrict__ brow = b + k * N;
        int64_t av[R];
        for (int64_t r = 0; r < R; ++r) av[r] = r < rows ? int64_t(a[(i0 + r) * K + k]) : 0;
        int64_t* __restrict__ c0 = acc.data();
        int64_t* __restrict__ c1 = c0 + N;
        int64_t* __restrict__ c2 = c1 + N;
        int64_t* __restrict__ c3 = c2 + N;
        for (int64_t j = 0; j < N; ++j) {
          int64_t x = brow[j];
          c0[j] += av[0] * x;
          c1[j] += av[1] * x;
          c2[j] += av[2] * x;
          c3[j] += av[3] * x;
        }
      }
    }
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < N; ++j) c[(i0 + r) * N + j] = T(acc[size_t(r * N + j)]);
  }
}

Tensor bmm_integral(const Tensor& a_in, const Tensor& b_in, const char* name) {
  int64_t B = a_in.size(0), M = a_in.size(1), K = a_in.size(2), N = b_in.size(2);
  Tensor a = ops::contiguous(a_in), b = ops::contiguous(b_in);
  Tensor c = empty_tensor(DimVector{B, M, N}, a.dtype(), kCPU);
  if (c.numel() == 0) return c;
  auto run = [&]<typename T>(T*) {
    const T* ap = a.data<T>();
    const T* bp = b.data<T>();
    T* cp = c.data<T>();
    // Parallel over all (batch, row) pairs; a grain of rows worth ~32k multiply-adds.
    int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(K * N, 1));
    parallel_for(0, B * M, grain, [&](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi;) {
        int64_t batch = r / M, row = r % M, end = std::min(hi, (batch + 1) * M);
        int_gemm_rows(ap + batch * M * K, bp + batch * K * N, cp + batch * M * N, K, N, row, row + (end - r));
        r = end;
      }
    });
  };
  switch (a.dtype()) {
    case ScalarType::UInt8: run(static_cast<uint8_t*>(nullptr)); break;
    case ScalarType::Int8: run(static_cast<int8_t*>(nullptr)); break;
    case ScalarType::Int16: run(static_cast<int16_t*>(nullptr)); break;
    case ScalarType::Int32: run(static_cast<int32_t*>(nullptr)); break;
    case ScalarType::Int64: run(static_cast<int64_t*>(nullptr)); break;
    default: VT_FAIL_KIND(NotImplemented, "\"", name, "\" not implemented for '", dtype_name(a.dtype()), "'");
  }
  return c;
}

// The floating product [B, M, N] in its accumulation type (float for float32 and the 16-bit types, double for
// float64), plus `bias` ([N] of that type, or undefined) on every row, not yet rounded to the operands' dtype.
Tensor bmm_accumulator(const Tensor& a, const Tensor& b, const Tensor& bias = Tensor()) {
  ScalarType dtype = a.dtype();
  int64_t B = a.size(0), M = a.size(1), K = a.size(2), N = b.size(2);
  ScalarType acc = dtype == ScalarType::Float64 ? ScalarType::Float64 : ScalarType::Float32;
  Tensor c = empty_tensor(DimVector{B, M, N}, acc, kCPU);
  cpu_gemm::Operand oa{a.data_ptr(), dtype, a.stride(0), a.stride(1), a.stride(2)};
  cpu_gemm::Operand ob{b.data_ptr(), dtype, b.stride(0), b.stride(1), b.stride(2)};
  const void* bias_ptr = bias.defined() ? bias.data_ptr() : nullptr;
  if (B > 1 && b.stride(0) == 0 && a.stride(0) == M * a.stride(1)) {
    // One B for every batch entry (matmul broadcasting a weight) over rows of A that stack evenly: a single
    // (B*M) x K product packs B once.
    cpu_gemm::gemm(1, B * M, N, K, oa, ob, c.data_ptr(), bias_ptr);
  } else {
    cpu_gemm::gemm(B, M, N, K, oa, ob, c.data_ptr(), bias_ptr);
  }
  return c;
}

Tensor bmm_impl(const Tensor& a, const Tensor& b, const char* name) {
  check_bmm_shapes(a, b, name);
  if (!is_floating(a.dtype())) return bmm_integral(a, b, name);
  Tensor c = bmm_accumulator(a, b);
  return c.dtype() == a.dtype() ? c : ops::to_dtype(c, a.dtype());
}

Tensor mm_cpu(const Tensor& a, const Tensor& b) {
  check_mm(a, b);
  Tensor c = bmm_impl(ops::unsqueeze(a, 0), ops::unsqueeze(b, 0), "mm");
  return ops::squeeze(c, DimVector{0});
}

Tensor bmm_cpu(const Tensor& a, const Tensor& b) {
  check_operands(a, b, "bmm", 3);
  return bmm_impl(a, b, "bmm");
}

// Whether the batch dims (all but the last two) of t step through memory by one stride, so that folding them
// into one dim is a view.
bool batch_dims_fold(const Tensor& t) {
  for (int64_t d = 0; d + 3 < t.dim(); ++d)
    if (t.size(d) != 1 && t.size(d + 1) != 1 && t.stride(d) != t.stride(d + 1) * t.size(d + 1)) return false;
  return true;
}

// Each batch entry's element offset (batch dims in row-major order).
std::vector<int64_t> batch_offsets(const Tensor& t, int64_t nb) {
  const int64_t nd = t.dim() - 2;
  std::vector<int64_t> offsets(static_cast<size_t>(nb)), index(static_cast<size_t>(nd), 0);
  int64_t off = 0;
  for (int64_t b = 0; b < nb; ++b) {
    offsets[size_t(b)] = off;
    for (int64_t d = nd - 1; d >= 0; --d) {  // odometer step
      off += t.stride(d);
      if (++index[size_t(d)] < t.size(d)) break;
      off -= t.stride(d) * t.size(d);
      index[size_t(d)] = 0;
    }
  }
  return offsets;
}

// [..., M, K] @ [..., K, N]. Batch dims that fold into one are a bmm over views; otherwise the GEMM reads each
// batch entry at its own offset, so permuted heads (q, k and v viewed out of a fused qkv) are not copied first.
Tensor bmm_nd_cpu(const Tensor& a, const Tensor& b) {
  matmul::check_bmm_nd(a, b);
  int64_t M = a.size(-2), K = a.size(-1), N = b.size(-1), nb = 1;
  for (int64_t d = 0; d < a.dim() - 2; ++d) nb *= a.size(d);
  const DimVector out_sizes = matmul::bmm_nd_sizes(a, b);
  if (!is_floating(a.dtype()) || (batch_dims_fold(a) && batch_dims_fold(b))) {
    Tensor c = bmm_impl(ops::reshape(a, DimVector{nb, M, K}), ops::reshape(b, DimVector{nb, K, N}), "bmm");
    return ops::reshape(c, out_sizes);
  }
  const std::vector<int64_t> a_off = batch_offsets(a, nb), b_off = batch_offsets(b, nb);
  cpu_gemm::Operand oa{a.data_ptr(), a.dtype(), 0, a.stride(-2), a.stride(-1), a_off.data()};
  cpu_gemm::Operand ob{b.data_ptr(), b.dtype(), 0, b.stride(-2), b.stride(-1), b_off.data()};
  const ScalarType acc = a.dtype() == ScalarType::Float64 ? ScalarType::Float64 : ScalarType::Float32;
  Tensor c = empty_tensor(out_sizes, acc, kCPU);
  cpu_gemm::gemm(nb, M, N, K, oa, ob, c.data_ptr());
  return c.dtype() == a.dtype() ? c : ops::to_dtype(c, a.dtype());
}

// x W^T + b with the bias added to the product's accumulator by the GEMM (to each tile of C while it is in
// cache), so a 16-bit result is rounded once, as torch's CPU addmm does (a product rounded to bfloat16 and then
// summed with the bias rounds twice: about one result in eight differed in the last bit), and no second pass
// reads and writes the whole result.
Tensor linear_bias_cpu(const Tensor& x, const Tensor& w, const Tensor& b) {
  matmul::check_linear_bias(x, w, b);
  if (!is_floating(x.dtype())) return matmul::linear_bias_composite(x, w, b);
  const int64_t rows = matmul::linear_rows(x), K = x.size(-1), N = w.size(0);
  const ScalarType acc = x.dtype() == ScalarType::Float64 ? ScalarType::Float64 : ScalarType::Float32;
  Tensor bias = ops::contiguous(ops::to_dtype(ops::expand(b, DimVector{N}), acc));
  Tensor x2 = ops::reshape(x, DimVector{rows, K});
  Tensor c = bmm_accumulator(ops::unsqueeze(x2, 0), ops::unsqueeze(ops::transpose(w, 0, 1), 0), bias);
  if (c.dtype() != x.dtype()) c = ops::to_dtype(c, x.dtype());
  return ops::reshape(c, matmul::linear_sizes(x, N));
}

std::tuple<Tensor, Tensor> linear_weight_bias_grad_cpu(const Tensor& g, const Tensor& x) {
  matmul::check_linear_weight_bias_grad(g, x);
  return matmul::linear_weight_bias_grad_composite(g, x);
}

}  // namespace

VT_LIBRARY(vt, matmul) {
  m.def("mm(Tensor self, Tensor mat2) -> Tensor");
  m.def("bmm(Tensor self, Tensor mat2) -> Tensor");
  // matmul's batched product over any number of batch dims, without folding them into one first (on CUDA that
  // would copy operands whose batch dims do not collapse, e.g. attention heads viewed out of a fused qkv).
  m.def("_bmm_nd(Tensor self, Tensor mat2) -> Tensor");
  // F.linear with a bias: input [..., K] @ weight[N, K]^T + bias, one op so that CUDA can add the bias in the GEMM's
  // epilogue (cuBLASLt) instead of a second pass over the product.
  m.def("_linear_bias(Tensor input, Tensor weight, Tensor bias) -> Tensor");
  // Its backward's weight and bias gradients, (grad^T @ input, grad summed over rows): one GEMM on CUDA, whose
  // BGRADB epilogue sums the bias gradient while it reads grad.
  m.def("_linear_weight_bias_grad(Tensor grad, Tensor input) -> (Tensor, Tensor)");
  m.impl("_bmm_nd", DispatchKey::CPU, &bmm_nd_cpu);
  m.impl("_linear_bias", DispatchKey::CPU, &linear_bias_cpu);
  m.impl("_linear_weight_bias_grad", DispatchKey::CPU, &linear_weight_bias_grad_cpu);
  m.impl("mm", DispatchKey::CPU, &mm_cpu);
  m.impl("bmm", DispatchKey::CPU, &bmm_cpu);
}

}  // namespace vt
