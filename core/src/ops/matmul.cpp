// mm and bmm on the CPU: C[M,N] = A[M,K] @ B[K,N], per batch for bmm. Both operands are made dense, then rows
// of C are computed in parallel; each row accumulates a[i,k] * B[k,:] over K in blocks of kKBlock rows of B,
// so the rows of B a block touches stay in cache while the inner loop runs over contiguous memory (which the
// compiler vectorises). 16-bit floats accumulate in float, float32 in float, float64 in double, integers in
// int64, as torch's CPU kernels do. A cuBLAS path arrives with the CUDA kernels.
#include <vector>

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

// Rows [row_begin, row_end) of C. Four rows of A share each pass over a row of B (four accumulator rows),
// which quarters the loads from B; the j loop is contiguous and vectorises.
template <typename T>
void gemm_rows(const T* a, const T* b, T* c, int64_t M, int64_t K, int64_t N, int64_t row_begin, int64_t row_end) {
  using Acc = std::conditional_t<std::is_integral_v<T>, int64_t, opmath_t<T>>;
  constexpr int64_t R = 4;
  std::vector<Acc> acc(static_cast<size_t>(R * N));
  std::vector<Acc> brow_buf(static_cast<size_t>(N));
  for (int64_t i0 = row_begin; i0 < row_end; i0 += R) {
    int64_t rows = std::min(R, row_end - i0);
    std::fill(acc.begin(), acc.end(), Acc(0));
    for (int64_t k0 = 0; k0 < K; k0 += kKBlock) {
      int64_t k1 = std::min(K, k0 + kKBlock);
      for (int64_t k = k0; k < k1; ++k) {
        const T* brow = b + k * N;
        const Acc* __restrict__ bv = brow_buf.data();
        if constexpr (std::is_same_v<T, Acc>) {
          bv = brow;
        } else {
          for (int64_t j = 0; j < N; ++j) brow_buf[size_t(j)] = Acc(opmath_t<T>(brow[j]));
        }
        Acc av[R];
        for (int64_t r = 0; r < R; ++r) av[r] = r < rows ? Acc(opmath_t<T>(a[(i0 + r) * K + k])) : Acc(0);
        Acc* __restrict__ c0 = acc.data();
        Acc* __restrict__ c1 = c0 + N;
        Acc* __restrict__ c2 = c1 + N;
        Acc* __restrict__ c3 = c2 + N;
        for (int64_t j = 0; j < N; ++j) {
          Acc x = bv[j];
          c0[j] += av[0] * x;
          c1[j] += av[1] * x;
          c2[j] += av[2] * x;
          c3[j] += av[3] * x;
        }
      }
    }
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < N; ++j) c[(i0 + r) * N + j] = T(opmath_t<T>(acc[size_t(r * N + j)]));
  }
}

Tensor bmm_impl(const Tensor& a_in, const Tensor& b_in, const char* name) {
  check_bmm_shapes(a_in, b_in, name);
  int64_t B = a_in.size(0), M = a_in.size(1), K = a_in.size(2), N = b_in.size(2);
  Tensor a = ops::contiguous(a_in), b = ops::contiguous(b_in);
  Tensor c = empty_tensor(DimVector{B, M, N}, a.dtype(), kCPU);
  if (c.numel() == 0) return c;
  if (K == 0) return ops::fill_(c, Scalar(int64_t(0)));
  VT_DISPATCH_NUMERIC(a.dtype(), name, [&] {
    const scalar_t* ap = a.data<scalar_t>();
    const scalar_t* bp = b.data<scalar_t>();
    scalar_t* cp = c.data<scalar_t>();
    // Parallel over all (batch, row) pairs; a grain of rows worth ~32k multiply-adds.
    int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(K * N, 1));
    parallel_for(0, B * M, grain, [&](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi;) {
        int64_t batch = r / M, row = r % M, end = std::min(hi, (batch + 1) * M);
        gemm_rows(ap + batch * M * K, bp + batch * K * N, cp + batch * M * N, M, K, N, row, row + (end - r));
        r = end;
      }
    });
  });
  return c;
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

// Batch dims folded into one (a copy where the layout does not allow a view), then bmm.
Tensor bmm_nd_cpu(const Tensor& a, const Tensor& b) {
  matmul::check_bmm_nd(a, b);
  int64_t M = a.size(-2), K = a.size(-1), N = b.size(-1), nb = 1;
  for (int64_t d = 0; d < a.dim() - 2; ++d) nb *= a.size(d);
  Tensor c = bmm_impl(ops::reshape(a, DimVector{nb, M, K}), ops::reshape(b, DimVector{nb, K, N}), "bmm");
  return ops::reshape(c, matmul::bmm_nd_sizes(a, b));
}

}  // namespace

VT_LIBRARY(vt, matmul) {
  m.def("mm(Tensor self, Tensor mat2) -> Tensor");
  m.def("bmm(Tensor self, Tensor mat2) -> Tensor");
  // matmul's batched product over any number of batch dims, without folding them into one first (on CUDA that
  // would copy operands whose batch dims do not collapse, e.g. attention heads viewed out of a fused qkv).
  m.def("_bmm_nd(Tensor self, Tensor mat2) -> Tensor");
  m.impl("_bmm_nd", DispatchKey::CPU, &bmm_nd_cpu);
  m.impl("mm", DispatchKey::CPU, &mm_cpu);
  m.impl("bmm", DispatchKey::CPU, &bmm_cpu);
}

}  // namespace vt
