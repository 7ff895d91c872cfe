#pragma once
// The CPU elementwise functors (unary ones, and the activation gradients) that run on a vectorised float32 array
// kernel (vt/core/cpu_vec_math.h) instead of the generic per-element loop, and the loops that feed one from a
// TensorIterator. float32 runs that are dense go to the kernel as they are; strided float32 runs, and 16-bit
// ones (computed in float, as torch's), pass through small float buffers, so every layout and dtype gets the
// same lane arithmetic.
#include <algorithm>
#include <type_traits>

#include "act_backward_functors.h"
#include "binary_functors.h"
#include "cpu_gelu.h"
#include "unary_functors.h"
#include "vt/core/cpu_vec_math.h"
#include "vt/core/tensor_iterator.h"

namespace vt::cpu {

using ArrayFn = void (*)(const float*, float*, int64_t);

template <typename F> constexpr ArrayFn array_fn = nullptr;
template <> inline constexpr ArrayFn array_fn<unary::ExpF> = &cpu_math::exp;
template <> inline constexpr ArrayFn array_fn<unary::SigmoidF> = &cpu_math::sigmoid;
template <> inline constexpr ArrayFn array_fn<unary::SiluF> = &cpu_math::silu;
template <> inline constexpr ArrayFn array_fn<unary::TanhF> = &cpu_math::tanh;
template <> inline constexpr ArrayFn array_fn<unary::ErfF> = &cpu_math::erf;
template <> inline constexpr ArrayFn array_fn<unary::GeluTanhF> = &cpu_math::gelu_tanh;
template <> inline constexpr ArrayFn array_fn<unary::LogF> = &cpu_math::log;
template <> inline constexpr ArrayFn array_fn<unary::Log1pF> = &cpu_math::log1p;
template <> inline constexpr ArrayFn array_fn<unary::Expm1F> = &cpu_math::expm1;
template <> inline constexpr ArrayFn array_fn<unary::LogSigmoidF> = &cpu_math::logsigmoid;
template <> inline constexpr ArrayFn array_fn<unary::MishF> = &cpu_math::mish;
template <> inline constexpr ArrayFn array_fn<unary::SinF> = &cpu_math::sin;
template <> inline constexpr ArrayFn array_fn<unary::CosF> = &cpu_math::cos;
// Exact gelu: float32 tensors take cpu_gelu's op directly; 16-bit ones come here (GeluF's formula over erf).
template <> inline constexpr ArrayFn array_fn<unary::GeluF> = &cpu_math::gelu;

using BinaryArrayFn = void (*)(const float*, const float*, float*, int64_t);
template <typename F> constexpr BinaryArrayFn binary_array_fn = nullptr;
template <> inline constexpr BinaryArrayFn binary_array_fn<act_backward::GeluTanhBwdF> = &cpu_math::gelu_tanh_backward;
template <> inline constexpr BinaryArrayFn binary_array_fn<act_backward::SiluBwdF> = &cpu_math::silu_backward;
template <> inline constexpr BinaryArrayFn binary_array_fn<binary::PowF> = &cpu_math::pow;  // Note [Vector pow]
template <> inline constexpr BinaryArrayFn binary_array_fn<act_backward::GeluBwdF> = &cpu_math::gelu_backward;

// m elements of S from p (byte stride st) into a float buffer, and back: dense 16-bit runs through cpu_math's
// vectorised conversions.
template <typename S> void load_floats(const char* p, int64_t st, float* buf, int64_t m) {
  if constexpr (!std::is_same_v<S, float>)
    if (st == int64_t(sizeof(S))) return cpu_math::to_float(reinterpret_cast<const S*>(p), buf, m);
  for (int64_t k = 0; k < m; ++k) buf[k] = float(*reinterpret_cast<const S*>(p + k * st));
}
template <typename S> void store_floats(const float* buf, char* p, int64_t st, int64_t m) {
  if constexpr (!std::is_same_v<S, float>)
    if (st == int64_t(sizeof(S))) return cpu_math::from_float(buf, reinterpret_cast<S*>(p), m);
  for (int64_t k = 0; k < m; ++k) *reinterpret_cast<S*>(p + k * st) = S(buf[k]);
}

// fn(x, y, n): an array function, or a lambda binding an op's parameters to one.
template <typename S, typename Fn> void run_array_kernel(TensorIterator& it, const Fn& fn) {
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
        load_floats<S>(in + k0 * s[1], s[1], buf, m);
        fn(buf, buf, m);
        store_floats<S>(buf, out + k0 * s[0], s[0], m);
      }
    }
  });
}

// fn(a, b, y, n): a binary array function, or a lambda.
template <typename S, typename Fn> void run_binary_array_kernel(TensorIterator& it, const Fn& fn) {
  constexpr int64_t kChunk = 256, kS = int64_t(sizeof(S));
  it.for_each([&](char** data, const int64_t* s, int64_t n0, int64_t n1) {
    float a[kChunk], b[kChunk];
    for (int64_t j = 0; j < n1; ++j) {
      char* out = data[0] + j * s[3];
      const char* in0 = data[1] + j * s[4];
      const char* in1 = data[2] + j * s[5];
      if (std::is_same_v<S, float> && s[0] == kS && s[1] == kS && s[2] == kS) {
        fn(reinterpret_cast<const float*>(in0), reinterpret_cast<const float*>(in1), reinterpret_cast<float*>(out), n0);
        continue;
      }
      for (int64_t k0 = 0; k0 < n0; k0 += kChunk) {
        const int64_t m = std::min(kChunk, n0 - k0);
        load_floats<S>(in0 + k0 * s[1], s[1], a, m);
        load_floats<S>(in1 + k0 * s[2], s[2], b, m);
        fn(a, b, a, m);
        store_floats<S>(a, out + k0 * s[0], s[0], m);
      }
    }
  });
}

// The array kernel of a storage-dtype op, for the dtypes computed in float (float32, float16, bfloat16): kHas is
// false for every other op, which then runs the generic loop. Parameterised functors (softplus, elu) pass their
// parameters, read in float as their functors compute.
template <typename Op> struct ArrayKernel {
  static constexpr bool kHas = false;
};
template <typename S, typename F>
  requires std::is_same_v<opmath_t<S>, float> && (array_fn<F> != nullptr)
struct ArrayKernel<unary::MapOp<S, F>> {
  static constexpr bool kHas = true;
  static void run(TensorIterator& it, const unary::MapOp<S, F>&) { run_array_kernel<S>(it, array_fn<F>); }
};
template <typename S>
  requires std::is_same_v<opmath_t<S>, float>
struct ArrayKernel<unary::MapOp<S, unary::SoftplusF>> {
  static constexpr bool kHas = true;
  static void run(TensorIterator& it, const unary::MapOp<S, unary::SoftplusF>& op) {
    const float beta = float(op.f.beta), threshold = float(op.f.threshold);
    run_array_kernel<S>(it, [&](const float* x, float* y, int64_t n) { cpu_math::softplus(x, y, n, beta, threshold); });
  }
};
template <typename S>
  requires std::is_same_v<opmath_t<S>, float>
struct ArrayKernel<unary::MapOp<S, unary::EluF>> {
  static constexpr bool kHas = true;
  static void run(TensorIterator& it, const unary::MapOp<S, unary::EluF>& op) {
    const float alpha = float(op.f.alpha);
    run_array_kernel<S>(it, [&](const float* x, float* y, int64_t n) { cpu_math::elu(x, y, n, alpha); });
  }
};
template <typename S, typename F>
  requires std::is_same_v<opmath_t<S>, float> && (binary_array_fn<F> != nullptr)
struct ArrayKernel<binary::ArithOp<S, F>> {
  static constexpr bool kHas = true;
  static void run(TensorIterator& it, const binary::ArithOp<S, F>&) {
    run_binary_array_kernel<S>(it, binary_array_fn<F>);
  }
};

// Note [bfloat16 gelu as torch's oneDNN]: where torch's CPU gelu is oneDNN's (AVX-512: the minimax model of
// cpu_gelu.h), torch sends bfloat16 there too, and oneDNN computes it in float32 and rounds once; so bfloat16 rows
// take the float32 kernels and match torch bit for bit over a million normal activations (through GeluF's
// formula over the erf lane 2.8% of them came out an ulp apart, at 2.5x the time), +inf -> NaN as torch's. In
// the far negative tail torch flushes subnormal results to zero and its gradient there rounds otherwise.
// float16, which torch computes with ATen's formula, and bfloat16 under the other models keep GeluF's formula.
inline bool bf16_gelu_is_onednn() { return cpu_gelu::active_model() == cpu_gelu::Model::Minimax; }
template <> struct ArrayKernel<unary::MapOp<BFloat16, unary::GeluF>> {
  static constexpr bool kHas = true;
  static void run(TensorIterator& it, const unary::MapOp<BFloat16, unary::GeluF>&) {
    run_array_kernel<BFloat16>(it, bf16_gelu_is_onednn() ? &cpu_gelu::forward : array_fn<unary::GeluF>);
  }
};
template <> struct ArrayKernel<binary::ArithOp<BFloat16, act_backward::GeluBwdF>> {
  static constexpr bool kHas = true;
  static void run(TensorIterator& it, const binary::ArithOp<BFloat16, act_backward::GeluBwdF>&) {
    run_binary_array_kernel<BFloat16>(
        it, bf16_gelu_is_onednn() ? &cpu_gelu::backward : binary_array_fn<act_backward::GeluBwdF>);
  }
};

}  // namespace vt::cpu
