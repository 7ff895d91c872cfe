#pragma once
// Note [16-bit rows in float]: float16 and bfloat16 rows take the float32 lanes of vt/core/cpu_vec_math.h too:
// a row (or a run) is converted into a float32 buffer, computed there, and a result rounded back once. torch's
// CPU kernels compute 16-bit rows in float as well; the generic per-element loops (libm's exp, scalar
// conversions) took 10x torch's time (a bfloat16 softmax of 4096 x 1024: 14 ms, torch 1.3). float32 rows pass
// through untouched. Users: the softmax and norm rows (nn_native_cpu.cpp), the sums, max/argmax lanes and
// logsumexp and 2-norm of the reductions (cpu_reduce.h, reduce.cpp).
#include <algorithm>
#include <type_traits>
#include <vector>

#include "vt/core/cpu_vec_math.h"
#include "vt/core/half.h"

namespace vt::cpu {

template <typename T> constexpr bool kLaneRow =
    std::is_same_v<T, float> || std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>;

// The float32 view of n elements at p: p itself for float32, else a converted copy in `scratch` (n floats).
template <typename T> const float* float_row(const T* p, int64_t n, float* scratch) {
  if constexpr (std::is_same_v<T, float>) return p;
  else return cpu_math::to_float(p, scratch, n), scratch;
}
// Where a float32 row result for dst goes: dst itself for float32, else `scratch`, rounded into dst by store_row.
template <typename T> float* float_out(T* dst, float* scratch) {
  if constexpr (std::is_same_v<T, float>) return dst;
  else return scratch;
}
template <typename T> void store_row(const float* result, T* dst, int64_t n) {
  if constexpr (!std::is_same_v<T, float>) cpu_math::from_float(result, dst, n);
}
// Scratch rows for a parallel chunk: `rows` rows of n floats (none for float32).
template <typename T> std::vector<float> row_scratch(int rows, int64_t n) {
  return std::vector<float>(std::is_same_v<T, float> ? 0 : size_t(rows) * size_t(n));
}

// fold(floats, m) -> double summed over a dense run of n values: one call on a float32 run, else one per
// 1024-value float32 chunk (converted on the stack), added in chunk order.
template <typename T, typename Fold> double fold_floats(const T* p, int64_t n, const Fold& fold) {
  if constexpr (std::is_same_v<T, float>) {
    return fold(p, n);
  } else {
    constexpr int64_t kChunk = 1024;
    float buf[kChunk];
    double r = 0.0;
    for (int64_t k = 0; k < n; k += kChunk) {
      const int64_t m = std::min(kChunk, n - k);
      cpu_math::to_float(p + k, buf, m);
      r += fold(buf, m);
    }
    return r;
  }
}

}  // namespace vt::cpu
