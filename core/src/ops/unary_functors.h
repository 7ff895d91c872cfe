#pragma once
// Unary elementwise functors, shared by the CPU and CUDA kernels: math functions, rounding, predicates and
// activations (parameterised ones carry their parameters as members). Each computes on opmath values; the
// adapters at the end convert from and to the storage dtype.
#include <bit>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "vt/core/dtype.h"

namespace vt::unary {

template <typename T> constexpr T kInvSqrt2 = T(0.70710678118654752440);

#define VT_UNARY_F(Name, expr) \
  struct Name { template <typename T> VT_HOST_DEVICE T operator()(T x) const { return expr; } };
VT_UNARY_F(ExpF, std::exp(x))
VT_UNARY_F(Exp2F, std::exp2(x))
VT_UNARY_F(Expm1F, std::expm1(x))
VT_UNARY_F(LogF, std::log(x))
VT_UNARY_F(Log2F, std::log2(x))
VT_UNARY_F(Log10F, std::log10(x))
VT_UNARY_F(Log1pF, std::log1p(x))
VT_UNARY_F(SqrtF, std::sqrt(x))
VT_UNARY_F(RsqrtF, T(1) / std::sqrt(x))
VT_UNARY_F(SinF, std::sin(x))
VT_UNARY_F(CosF, std::cos(x))
VT_UNARY_F(TanF, std::tan(x))
VT_UNARY_F(AsinF, std::asin(x))
VT_UNARY_F(AcosF, std::acos(x))
VT_UNARY_F(AtanF, std::atan(x))
VT_UNARY_F(SinhF, std::sinh(x))
VT_UNARY_F(CoshF, std::cosh(x))
VT_UNARY_F(TanhF, std::tanh(x))
VT_UNARY_F(ErfF, std::erf(x))
VT_UNARY_F(ErfcF, std::erfc(x))
VT_UNARY_F(ReciprocalF, T(1) / x)
VT_UNARY_F(SigmoidF, T(1) / (T(1) + std::exp(-x)))
VT_UNARY_F(LogSigmoidF, x < T(0) ? x - std::log1p(std::exp(x)) : -std::log1p(std::exp(-x)))
VT_UNARY_F(SiluF, x / (T(1) + std::exp(-x)))
VT_UNARY_F(MishF, x * std::tanh(x > T(20) ? x : std::log1p(std::exp(x))))
VT_UNARY_F(GeluF, T(0.5) * x * (T(1) + std::erf(x * kInvSqrt2<T>)))  // torch multiplies: its bits, no divide
VT_UNARY_F(GeluTanhF, T(0.5) * x * (T(1) + std::tanh(T(0.7978845608028654) * (x + T(0.044715) * x * x * x))))
VT_UNARY_F(FracF, x - std::trunc(x))
VT_UNARY_F(NegF, T(-x))
VT_UNARY_F(SquareF, T(x * x))
// Floats through fabs, which clears the sign bit: abs(-0.0) is +0.0 as in torch (x < 0 ? -x : x kept -0.0).
struct AbsF {
  template <typename T> VT_HOST_DEVICE T operator()(T x) const {
    if constexpr (std::is_floating_point_v<T>) return std::fabs(x);
    else return T(below_zero(x) ? -x : x);
  }
};
VT_UNARY_F(SignF, T(int(T(0) < x) - int(below_zero(x))))
VT_UNARY_F(ReluF, T(below_zero(x) ? T(0) : x))  // written so NaN passes through
#undef VT_UNARY_F
struct FloorF { template <typename T> VT_HOST_DEVICE T operator()(T x) const { if constexpr (std::is_floating_point_v<T>) return std::floor(x); else return x; } };
struct CeilF { template <typename T> VT_HOST_DEVICE T operator()(T x) const { if constexpr (std::is_floating_point_v<T>) return std::ceil(x); else return x; } };
struct TruncF { template <typename T> VT_HOST_DEVICE T operator()(T x) const { if constexpr (std::is_floating_point_v<T>) return std::trunc(x); else return x; } };
struct RoundF { template <typename T> VT_HOST_DEVICE T operator()(T x) const { if constexpr (std::is_floating_point_v<T>) return std::nearbyint(x); else return x; } };
struct IsNanF { template <typename T> VT_HOST_DEVICE bool operator()(T x) const { if constexpr (std::is_floating_point_v<T>) return std::isnan(x); else return false; } };
struct IsInfF { template <typename T> VT_HOST_DEVICE bool operator()(T x) const { if constexpr (std::is_floating_point_v<T>) return std::isinf(x); else return false; } };
struct IsFiniteF { template <typename T> VT_HOST_DEVICE bool operator()(T x) const { if constexpr (std::is_floating_point_v<T>) return std::isfinite(x); else return true; } };
struct LogicalNotF { template <typename T> VT_HOST_DEVICE bool operator()(T x) const { return x == T(0); } };

// Parameterised activations (torch defines them for floating dtypes only).
struct SoftplusF {
  double beta, threshold;
  template <typename T> VT_HOST_DEVICE T operator()(T x) const {
    T bx = x * T(beta);
    return bx > T(threshold) ? x : T(std::log1p(std::exp(bx)) / T(beta));
  }
};
struct LeakyReluF {
  double slope;
  template <typename T> VT_HOST_DEVICE T operator()(T x) const { return x > 0 ? x : x * T(slope); }
};
struct EluF {
  double alpha;
  // x itself at +-0 (and NaN), as torch: alpha * expm1(0) would be NaN for an infinite or NaN alpha
  template <typename T> VT_HOST_DEVICE T operator()(T x) const { return x < 0 ? T(alpha) * std::expm1(x) : x; }
};
struct HardtanhF {
  double lo, hi;
  // clamp's semantics (torch's hardtanh is clamp): a NaN input stays NaN, a NaN bound makes every element NaN
  template <typename T> VT_HOST_DEVICE T operator()(T x) const {
    if (x != x) return x;
    if (!(x >= T(lo))) x = T(lo);
    if (x != x) return x;
    return x <= T(hi) ? x : T(hi);
  }
};

// Storage-dtype adapters: the loops call these with the iterator's operand types.
template <typename S, typename F> struct MapOp {  // S -> S, computed in opmath
  F f;
  VT_HOST_DEVICE S operator()(S a) const { return S(f(opmath_t<S>(a))); }
};
// 16-bit floats: abs clears the sign bit without going through float and back (torch's CPU vector kernel does the
// same; NaN payloads pass through, where the float round trip made every NaN the canonical one). A plain AND,
// so the loop clones vectorise it: bfloat16 abs of 4M elements took 3x torch's time through float.
template <typename S>
  requires std::is_same_v<S, Half> || std::is_same_v<S, BFloat16>
struct MapOp<S, AbsF> {
  AbsF f;
  VT_HOST_DEVICE S operator()(S a) const { return S::from_bits(uint16_t(a.bits & 0x7fffu)); }
};
template <typename S, typename F> struct PredicateOp {  // S -> bool
  F f;
  VT_HOST_DEVICE bool operator()(S a) const { return f(opmath_t<S>(a)); }
};
struct BoolIdentityOp { VT_HOST_DEVICE bool operator()(bool a) const { return a; } };
template <typename S> struct BitNotOp {  // logical not for bool, as torch's bitwise_not
  VT_HOST_DEVICE S operator()(S a) const {
    if constexpr (std::is_same_v<S, bool>) return !a;
    else return S(~a);
  }
};

// clamp: negated comparisons, so a NaN bound makes the result NaN, as in torch; NaN inputs pass through.
template <typename S> struct ClampOp {
  using M = opmath_t<S>;
  M lo, hi;
  bool has_lo, has_hi;
  VT_HOST_DEVICE S operator()(S v) const {
    M x = M(v);
    if constexpr (std::is_floating_point_v<M>) {
      if (std::isnan(x)) return v;
    }
    if (has_lo && !(x >= lo)) x = lo;
    if constexpr (std::is_floating_point_v<M>) {
      if (std::isnan(x)) return S(x);  // a NaN min gives NaN whatever the max, as torch's clamp
    }
    if (has_hi && !(x <= hi)) x = hi;
    return S(x);
  }
};
// clamp on the CPU: ClampOp's answers as two selects against bounds that default to the dtype's extremes, so
// the loop vectorises; a NaN bound (which makes every element NaN) is a flag. The CUDA kernels keep ClampOp.
template <typename S> struct ClampSelectOp {
  using M = opmath_t<S>;
  M lo, hi;
  bool nan_bound;
  S operator()(S v) const {
    const M x = M(v);
    M r = x < lo ? lo : x;  // a NaN x fails both comparisons and stays NaN
    r = r > hi ? hi : r;
    if constexpr (std::is_floating_point_v<M>) return nan_bound ? S(lo + hi) : S(r);  // lo + hi: NaN then
    else return S(r);
  }
};
// c ? a : b. On the host, for 2-, 4- and 8-byte values, as a bit mask (all ones where c) so the loop vectorises:
// GCC kept `c ? a : b` over a bool array a branch, mispredicted on a random condition (where of 4M floats:
// 8.5 ms, as torch's). The bits are those of a or b unchanged, so NaN payloads and -0.0 pass as they are.
template <typename S> VT_HOST_DEVICE S select(bool c, S a, S b) {
#if !defined(__CUDA_ARCH__)
  if constexpr (sizeof(S) == 2 || sizeof(S) == 4 || sizeof(S) == 8) {
    using U = std::conditional_t<sizeof(S) == 2, uint16_t, std::conditional_t<sizeof(S) == 4, uint32_t, uint64_t>>;
    const U m = U(0) - U(c);
    return std::bit_cast<S>(U((std::bit_cast<U>(a) & m) | (std::bit_cast<U>(b) & U(~m))));
  }
#endif
  return c ? a : b;
}
template <typename S> struct WhereOp {
  VT_HOST_DEVICE S operator()(bool c, S x, S y) const { return select(c, x, y); }
};
// where with one branch a number carried by value (Note [Where with a number]): value where cond equals
// value_if_true, the other operand elsewhere.
template <typename S> struct WhereValueOp {
  S value;
  bool value_if_true;
  VT_HOST_DEVICE S operator()(bool c, S x) const { return select(c == value_if_true, value, x); }
};
template <typename S> struct MaskedFillOp {
  S value;
  VT_HOST_DEVICE S operator()(S x, bool m) const { return select(m, value, x); }
};

}  // namespace vt::unary
