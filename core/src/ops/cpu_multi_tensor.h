#pragma once
// The CPU multi-tensor launcher (the `Launch` of fused_optim.h, used by the fused optimizers and foreach.h): it
// lays the elements of all rows end to end and splits that one range over the thread pool, so an op over ~80
// tensors of very different sizes is a single parallel region with balanced chunks (small tensors share a
// chunk instead of each paying a region of its own).
#include <algorithm>
#include <vector>

#include "fused_optim.h"
#include "vt/core/parallel.h"

namespace vt::cpu {

struct CpuMultiTensor {
  // Elements per chunk of the thread pool: an AdamW element reads 4 and writes 3 values.
  static constexpr int64_t kGrain = 16384;

  template <typename S, typename Step>
  static void apply(const optim::Rows& rows, const std::vector<typename Step::Extra>& per_row, const Step& step) {
    constexpr int D = Step::kDepth;
    using T = opmath_t<S>;
    VT_INTERNAL_ASSERT(rows.depth == D, "multi-tensor apply: row depth");
    // start[i], start[i + 1]: row i's place in the concatenated element range (rows are never empty).
    std::vector<int64_t> start(rows.rows() + 1, 0);
    for (size_t i = 0; i < rows.rows(); ++i) start[i + 1] = start[i] + rows.at(i, 0).numel();
    parallel_for(0, start.back(), kGrain, [&](int64_t begin, int64_t end) {
      size_t i = size_t(std::upper_bound(start.begin(), start.end(), begin) - start.begin()) - 1;
      for (; i < rows.rows() && start[i] < end; ++i) {
        S* ptr[D];
        for (int d = 0; d < D; ++d) ptr[d] = rows.at(i, d).template data<S>();
        const auto f = step.elem(per_row[i]);
        const int64_t hi = std::min(end, start[i + 1]) - start[i];
        for (int64_t k = std::max(begin, start[i]) - start[i]; k < hi; ++k) {
          T r[D];
          for (int d = 0; d < D; ++d) r[d] = T(ptr[d][k]);
          f(r);
          for (int d = 0; d < D; ++d)
            if (d != 1) ptr[d][k] = S(r[d]);  // list 1, the gradient, is read-only
        }
      }
    });
  }
};

}  // namespace vt::cpu
