#pragma once
// Binary elementwise functors, shared by the CPU and CUDA kernels. Each computes on opmath values (float for
// 16-bit floats); the *Op adapters below convert from and to the storage dtype the iterator hands the loops.
#include <atomic>
#include <cmath>
#include <type_traits>

#include "vt/core/dtype.h"

namespace vt::binary {

// INT_MIN / -1 traps on x86; torch wraps to INT_MIN (and the remainder is 0).
template <typename T> VT_HOST_DEVICE constexpr bool is_neg_one(T b) {
  if constexpr (std::is_signed_v<T> && std::is_integral_v<T>) return b == T(-1);
  else return false;
}
template <typename T> VT_HOST_DEVICE T wrapping_neg(T a) { return T(-static_cast<std::make_unsigned_t<T>>(a)); }

// Note [Wrapping integer arithmetic]: integer tensors wrap on overflow (two's complement), as torch's kernels do
// in practice; but signed overflow is undefined in C++ (and int16 * int16 promotes to int, where it can overflow
// too), and UBSan found it in add, sub, mul and add-with-alpha. So integers are added, subtracted and multiplied
// as unsigned values of at least int's width and converted back, modular since C++20: the same instructions,
// without the undefined behaviour an optimiser may assume away. Floating types pass through unchanged.
template <typename T>
using wrap_uint_t = std::make_unsigned_t<std::common_type_t<T, unsigned>>;
template <typename T> VT_HOST_DEVICE constexpr bool wraps() {
  return std::is_integral_v<T> && !std::is_same_v<T, bool>;
}
template <typename T> VT_HOST_DEVICE T wrapping_add(T a, T b) {
  if constexpr (wraps<T>()) return T(wrap_uint_t<T>(a) + wrap_uint_t<T>(b));
  else return a + b;
}
template <typename T> VT_HOST_DEVICE T wrapping_sub(T a, T b) {
  if constexpr (wraps<T>()) return T(wrap_uint_t<T>(a) - wrap_uint_t<T>(b));
  else return a - b;
}
template <typename T> VT_HOST_DEVICE T wrapping_mul(T a, T b) {
  if constexpr (wraps<T>()) return T(wrap_uint_t<T>(a) * wrap_uint_t<T>(b));
  else return a * b;
}

#define VT_BINARY_FUNCTOR(Name, R, body) \
  struct Name { template <typename T> VT_HOST_DEVICE R operator()(T a, T b) const { body } };

VT_BINARY_FUNCTOR(AddF, T, if constexpr (std::is_same_v<T, bool>) return a + b; else return wrapping_add(a, b);)
VT_BINARY_FUNCTOR(SubF, T, return wrapping_sub(a, b);)
VT_BINARY_FUNCTOR(MulF, T, if constexpr (std::is_same_v<T, bool>) return a && b; else return wrapping_mul(a, b);)
VT_BINARY_FUNCTOR(DivF, T, return a / b;)
VT_BINARY_FUNCTOR(DivTruncF, T,
  if constexpr (std::is_floating_point_v<T>) return std::trunc(a / b);
  else return is_neg_one(b) ? wrapping_neg(a) : T(a / b);)
VT_BINARY_FUNCTOR(DivFloorF, T,
  if constexpr (std::is_floating_point_v<T>) {
    if (b == 0) return a / b;
    T mod = std::fmod(a, b);
    T div = (a - mod) / b;
    if (mod != 0 && ((b < 0) != (mod < 0))) div -= T(1);
    if (div == 0) return std::copysign(T(0), a / b);
    T fl = std::floor(div);
    if (div - fl > T(0.5)) fl += T(1);
    return fl;
  } else {
    if (is_neg_one(b)) return wrapping_neg(a);
    T q = a / b;
    if ((a % b != 0) && (below_zero(a) != below_zero(b))) --q;
    return q;
  })
VT_BINARY_FUNCTOR(RemainderF, T,
  if constexpr (std::is_floating_point_v<T>) {
    T m = std::fmod(a, b);
    if (m != 0 && ((b < 0) != (m < 0))) m += b;
    return m;
  } else {
    if (is_neg_one(b)) return T(0);
    T m = a % b;
    if (m != 0 && (below_zero(b) != below_zero(m))) m += b;
    return m;
  })
VT_BINARY_FUNCTOR(FmodF, T,
  if constexpr (std::is_floating_point_v<T>) return std::fmod(a, b);
  else return is_neg_one(b) ? T(0) : T(a % b);)
VT_BINARY_FUNCTOR(PowF, T,
  if constexpr (std::is_floating_point_v<T>) {
    return std::pow(a, b);
  } else if constexpr (std::is_same_v<T, bool>) {
    return a || !b;
  } else {
    if (below_zero(b)) return a == 1 ? T(1) : a == T(-1) ? ((b % 2) ? T(-1) : T(1)) : T(0);
    T r = 1;
    for (T base = a, e = b; e; e >>= 1, base = T(base * base))
      if (e & 1) r = T(r * base);
    return r;
  })
// Note [Small powers]: x ** e for a Python-number e in {2, 3, -1, -2, 0.5, -0.5} on the CPU is computed as torch's
// CPU kernel computes it - x * x, x * x * x, 1 / x, 1 / (x * x), sqrt(x), 1 / sqrt(x) - rather than through
// std::pow (a libm call per element: x ** 2 took 50x torch's time, and x ** 3 rounded differently). The results
// are torch's bit for bit, except that sqrt here is correctly rounded where torch's vector sqrt can be an ulp
// off. The exponent operand (a broadcast scalar) is ignored; the exponent is a template argument, so each loop
// is straight-line code that vectorises (chosen per element, the bfloat16 loop did not: 8x x * x's time).
enum class SmallPow { Square, Cube, Reciprocal, InverseSquare, Sqrt, Rsqrt };
template <typename S, SmallPow E> struct SmallPowOp {
  using M = opmath_t<S>;
  S operator()(S a, S) const {
    const M x = M(a);
    if constexpr (E == SmallPow::Square) return S(x * x);
    else if constexpr (E == SmallPow::Cube) return S(x * x * x);
    else if constexpr (E == SmallPow::Reciprocal) return S(M(1) / x);
    else if constexpr (E == SmallPow::InverseSquare) return S(M(1) / (x * x));
    else if constexpr (E == SmallPow::Sqrt) return S(std::sqrt(x));
    else return S(M(1) / std::sqrt(x));
  }
};
VT_BINARY_FUNCTOR(MaxF, T,
  if constexpr (std::is_floating_point_v<T>) { if (std::isnan(a) || std::isnan(b)) return a + b; }
  return a > b ? a : b;)
VT_BINARY_FUNCTOR(MinF, T,
  if constexpr (std::is_floating_point_v<T>) { if (std::isnan(a) || std::isnan(b)) return a + b; }
  return a < b ? a : b;)
VT_BINARY_FUNCTOR(Atan2F, T, return std::atan2(a, b);)
VT_BINARY_FUNCTOR(BitAndF, T, return T(a & b);)
VT_BINARY_FUNCTOR(BitOrF, T, return T(a | b);)
VT_BINARY_FUNCTOR(BitXorF, T, return T(a ^ b);)
VT_BINARY_FUNCTOR(EqF, bool, return a == b;)
VT_BINARY_FUNCTOR(NeF, bool, return a != b;)
VT_BINARY_FUNCTOR(LtF, bool, return a < b;)
VT_BINARY_FUNCTOR(LeF, bool, return a <= b;)
VT_BINARY_FUNCTOR(GtF, bool, return a > b;)
VT_BINARY_FUNCTOR(GeF, bool, return a >= b;)
VT_BINARY_FUNCTOR(LAndF, bool, return (a != T(0)) && (b != T(0));)
VT_BINARY_FUNCTOR(LOrF, bool, return (a != T(0)) || (b != T(0));)
VT_BINARY_FUNCTOR(LXorF, bool, return (a != T(0)) != (b != T(0));)
#undef VT_BINARY_FUNCTOR

// Storage-dtype adapters: the loops call these with the iterator's operand types.
template <typename S, typename F> struct ArithOp {  // S op S -> S, computed in opmath
  F f;
  VT_HOST_DEVICE S operator()(S a, S b) const { return S(f(opmath_t<S>(a), opmath_t<S>(b))); }
};
// Integer division on the host with every divisor checked as it is read (Note [Divisors read mid-kernel]):
// a zero sets *zero and gives 0 instead of trapping.
template <typename S, typename F> struct CheckedIntDivOp {
  F f;
  std::atomic<bool>* zero;
  S operator()(S a, S b) const {
    if (b == S(0)) {
      zero->store(true, std::memory_order_relaxed);
      return S(0);
    }
    return S(f(opmath_t<S>(a), opmath_t<S>(b)));
  }
};
template <typename S, typename F> struct ScalarRightOp {  // S op scalar -> S; the scalar already in opmath
  opmath_t<S> b;
  F f;
  VT_HOST_DEVICE S operator()(S a, S /*the operand's 16-bit rounding, unused*/) const {
    return S(f(opmath_t<S>(a), b));
  }
};
template <typename S, typename F> struct PredicateOp {  // S op S -> bool
  F f;
  VT_HOST_DEVICE bool operator()(S a, S b) const { return f(opmath_t<S>(a), opmath_t<S>(b)); }
};

}  // namespace vt::binary
