// The foreach ops (foreach.h): their schemas and the CPU kernel. _foreach_mul_ is the multi-tensor apply of the
// fused optimizers (cpu_multi_tensor.h); the norm folds fixed kChunk-element cells of the rows laid end to end
// over the thread pool, one partial per cell, and combines each row's partials in order (Note [Foreach norm
// order]). The CUDA kernel is in cuda/foreach.cu.
#include <algorithm>

#include "cpu_multi_tensor.h"
#include "foreach.h"

namespace vt::cpu {

struct CpuForeach : CpuMultiTensor {
  static constexpr bool kHost = true;
  static constexpr int64_t kChunk = 16384;  // elements per cell, so per partial

  // One cell in eight interleaved lanes (independent accumulators, which the compiler may keep in one vector),
  // then the lanes pairwise.
  template <typename T, typename S, typename Op> static T fold_cell(const S* p, int64_t n, const Op& op) {
    constexpr int L = 8;
    T a[L];
    for (int l = 0; l < L; ++l) a[l] = op.init();
    int64_t k = 0;
    for (; k + L <= n; k += L)
      for (int l = 0; l < L; ++l) a[l] = op.combine(a[l], op.elem(T(p[k + l])));
    for (; k < n; ++k) a[k % L] = op.combine(a[k % L], op.elem(T(p[k])));
    for (int w = L / 2; w > 0; w /= 2)
      for (int l = 0; l < w; ++l) a[l] = op.combine(a[l], a[l + w]);
    return a[0];
  }

  template <typename S, typename Op> static void norm(const optim::Rows& rows, const Op& op, const Tensor& out) {
    using T = opmath_t<S>;
    const size_t n = rows.rows();
    // Cell c: a chunk of row cell_row[c], starting at element cell_start[c] of all rows laid end to end.
    std::vector<int64_t> cell_start, row_start(n);
    std::vector<size_t> cell_row, first_cell(n + 1);
    int64_t total = 0;
    for (size_t i = 0; i < n; ++i) {
      first_cell[i] = cell_start.size();
      row_start[i] = total;
      const int64_t numel = rows.at(i, 0).numel();
      for (int64_t k = 0; k < numel; k += kChunk) cell_start.push_back(total + k), cell_row.push_back(i);
      total += numel;
    }
    first_cell[n] = cell_start.size();
    std::vector<T> partial(cell_start.size());
    // A range of the pool folds the cells that begin in it, whole: the cells fix the order, not the ranges.
    parallel_for(0, total, 2 * kChunk, [&](int64_t begin, int64_t end) {
      size_t c = size_t(std::lower_bound(cell_start.begin(), cell_start.end(), begin) - cell_start.begin());
      for (; c < cell_start.size() && cell_start[c] < end; ++c) {
        const Tensor& t = rows.at(cell_row[c], 0);
        const int64_t off = cell_start[c] - row_start[cell_row[c]];
        partial[c] = fold_cell<T>(t.data<S>() + off, std::min(kChunk, t.numel() - off), op);
      }
    });
    S* o = out.data<S>();
    for (size_t i = 0; i < n; ++i) {
      const Tensor& t = rows.at(i, 0);
      if (t.numel() == 1) {
        o[i] = S(op.single(T(*t.data<S>())));
        continue;
      }
      T acc = op.init();
      for (size_t c = first_cell[i]; c < first_cell[i + 1]; ++c) acc = op.combine(acc, partial[c]);
      o[i] = S(op.finish(acc));
    }
  }
};

}  // namespace vt::cpu

namespace vt {

VT_LIBRARY(vt, foreach) {
  m.def("_foreach_norm(Tensor[] self, Scalar ord=2, ScalarType? dtype=None) -> Tensor[]", DevicePolicy::AnyDevice);
  // other: a 0-dim tensor (clip_grad_norm_'s scale), on the CPU or on the device of the tensors it scales.
  m.def("_foreach_mul_(Tensor[] self, Tensor other) -> ()", DevicePolicy::AnyDevice);
  foreach::register_foreach<cpu::CpuForeach>(m, DispatchKey::CPU);
}

}  // namespace vt
