#pragma once
// The activation backward functors (act_backward_impl.h runs them): elementwise input gradients from the upstream
// gradient g and the saved input x, in opmath. Shared by the CPU and CUDA kernels; on the CPU the float32 forms
// of GeluTanhBwdF and SiluBwdF run on vector lanes instead (cpu_vec_map.h), with the same formulas.
#include <cmath>

#include "vt/core/dtype.h"

namespace vt::act_backward {

template <typename T> inline constexpr T kInvSqrt2 = T(0.70710678118654752440);
template <typename T> inline constexpr T kInvSqrt2Pi = T(0.39894228040143267794);

// g * d/dx [x Phi(x)] = g * (Phi(x) + x phi(x)).
struct GeluBwdF {
  template <typename T> VT_HOST_DEVICE T operator()(T g, T x) const {
    T cdf = T(0.5) * (T(1) + std::erf(x * kInvSqrt2<T>));
    T pdf = std::exp(T(-0.5) * x * x) * kInvSqrt2Pi<T>;
    return g * (cdf + x * pdf);
  }
};
// g * d/dx [0.5 x (1 + tanh(k (x + a x^3)))].
struct GeluTanhBwdF {
  template <typename T> VT_HOST_DEVICE T operator()(T g, T x) const {
    const T k = T(0.7978845608028654), a = T(0.044715);
    T x2 = x * x;  // torch's order of operations, so the cancellation near 1 + tanh = 0 rounds alike
    T t = std::tanh(k * (x + a * x2 * x));
    T right = T(0.5) * x * (T(1) - t * t) * (k * (T(1) + T(3) * a * x2));
    return g * (T(0.5) * (T(1) + t) + right);
  }
};
// The gradients of tanh and sigmoid from their saved output y, as torch computes them (tanh_backward,
// sigmoid_backward): g (1 - y^2) with 1 - y^2 as one fused multiply-add (torch's vector kernels are contracted
// so; where |y| is near 1 a rounded y^2 would cancel away most of the digits), and g (1 - y) y. A fused
// multiply-add rounds once on every target, so every loop clone and the GPU give the same bits.
struct TanhBwdF {
  template <typename T> VT_HOST_DEVICE T operator()(T g, T y) const { return g * std::fma(-y, y, T(1)); }
};
struct SigmoidBwdF {
  template <typename T> VT_HOST_DEVICE T operator()(T g, T y) const { return g * (T(1) - y) * y; }
};
// g * d/dx [x sigmoid(x)] = g * s (1 + x (1 - s)).
struct SiluBwdF {
  template <typename T> VT_HOST_DEVICE T operator()(T g, T x) const {
    T s = T(1) / (T(1) + std::exp(-x));
    return g * s * (T(1) + x * (T(1) - s));
  }
};

}  // namespace vt::act_backward
