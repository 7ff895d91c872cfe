#pragma once
// The CPU elementwise functors that run on a vectorised float32 array kernel (vt/core/cpu_vec_math.h) instead of the
// generic per-element loop, and the loop that feeds one from a TensorIterator. float32 runs that are dense go to
// the kernel as they are; strided float32 runs, and 16-bit ones (computed in float, as torch's), pass through
// a small float buffer, so every layout and dtype gets the same lane arithmetic.
#include <algorithm>
#include <type_traits>

#include "vt/core/cpu_vec_math.h"
#include "unary_functors.h"
#include "vt/core/tensor_iterator.h"

namespace vt::cpu {

using ArrayFn = void (*)(const float*, float*, int64_t);

template <typename F> constexpr ArrayFn array_fn = nullptr;
template <> inline constexpr ArrayFn array_fn<unary::ExpF> = &cpu_math::exp;
template <> inline constexpr ArrayFn array_fn<unary::SigmoidF> = &cpu_math::sigmoid;
template <> inline constexpr ArrayFn array_fn<unary::SiluF> = &cpu_math::silu;
template <> inline constexpr ArrayFn array_fn<unary::TanhF> = &cpu_math::tanh;

template <typename S> void run_array_kernel(TensorIterator& it, ArrayFn fn) {
  constexpr int64_t kChunk = 256, kS = int64_t(sizeof(S));
  it.for_each([&](char** data, const int64_t* s, int64_t n0, int64_t n1) {
    float buf[kChunk];
    for (int64_t j = 0; j < n1; ++j) {
      char* out = data[0] + j * s[2];
      const char* in = data[1] + j * s[3];
      if (std::is_same_v<S, float> && s[0] == kS && s[1] == kS) {
        fn(reinterpret_cast<const float*>(in), reinterpret_cast<float*>(out), n0);
        continue;
      }
      for (int64_t k0 = 0; k0 < n0; k0 += kChunk) {
        const int64_t m = std::min(kChunk, n0 - k0);
        for (int64_t k = 0; k < m; ++k) buf[k] = float(*reinterpret_cast<const S*>(in + (k0 + k) * s[1]));
        fn(buf, buf, m);
        for (int64_t k = 0; k < m; ++k) *reinterpret_cast<S*>(out + (k0 + k) * s[0]) = S(buf[k]);
      }
    }
  });
}

// The array kernel of a storage-dtype op, for the dtypes computed in float (float32, float16, bfloat16): fn is
// null for every other op, which then runs the generic loop.
template <typename Op> struct ArrayKernel {
  static constexpr ArrayFn fn = nullptr;
};
template <typename S, typename F>
  requires std::is_same_v<opmath_t<S>, float>
struct ArrayKernel<unary::MapOp<S, F>> {
  static constexpr ArrayFn fn = array_fn<F>;
  static void run(TensorIterator& it) { run_array_kernel<S>(it, fn); }
};

}  // namespace vt::cpu
