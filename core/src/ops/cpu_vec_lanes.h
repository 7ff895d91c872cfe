#pragma once
// The lane arithmetic of the CPU vector math (vt/core/cpu_vec_math.h): branch-free functions of one element -
// selects instead of branches, bit casts instead of ldexp/rint - that GCC vectorises once inlined into a loop,
// the GCC vector types the reductions accumulate in, and the per-instruction-set families. Included only by
// cpu_vec_math.cpp (elementwise functions) and cpu_vec_rows.cpp (row passes and sums), which are compiled alone
// (not in a unity batch) with floating-point contraction on: the lanes' polynomials are written for FMA.
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string_view>
#include <type_traits>

#include "vt/core/dtype.h"
#include "vt/core/half.h"

// The lane helpers that return GCC vector types are always inlined into one family's functions, so no call ever
// passes such a vector across the ABI that -Wpsabi warns about.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace vt::cpu_math::lanes {

#define VT_LANE __attribute__((always_inline)) static inline

// ---- instruction-set families ----

// The families, widest first; one is active for the process (cpu_vec_math.cpp holds it, set_isa changes it).
enum class Isa { Avx512, Avx2, Generic };
Isa active_isa();

// FAMILY(ns, target, W) once per family: W floats fill one vector register of that instruction set.
#if defined(__x86_64__)
#define VT_CPU_MATH_FAMILIES(FAMILY)                                                                   \
  FAMILY(generic, , 4)                                                                                 \
  FAMILY(avx2, __attribute__((target("avx2,fma,f16c"))), 8)                                            \
  FAMILY(avx512, __attribute__((target("avx512f,avx2,fma,f16c,prefer-vector-width=512"))), 16)
#define VT_CPU_MATH_CALL(CALL)                   \
  switch (::vt::cpu_math::lanes::active_isa()) { \
    case ::vt::cpu_math::lanes::Isa::Avx512:     \
      return avx512::CALL;                       \
    case ::vt::cpu_math::lanes::Isa::Avx2:       \
      return avx2::CALL;                         \
    default:                                     \
      return generic::CALL;                      \
  }
#else
#define VT_CPU_MATH_FAMILIES(FAMILY) FAMILY(generic, , 4)
#define VT_CPU_MATH_CALL(CALL) return generic::CALL;
#endif

// ---- elementwise lanes ----

// Note [Vector exp]: Cephes' expf. n = round(x log2 e) through the 1.5 * 2^23 rounding constant (no rint call),
// r = x - n ln 2 with ln 2 split in two (C1 has 9 significant bits, so n * C1 is exact for |n| <= 150), a
// degree-7 polynomial for e^r on [-ln2/2, ln2/2], and 2^n applied as two factors 2^(n/2) 2^(n - n/2), each a
// normal float, so results that are subnormal round once, correctly, and n = 128 (results just under FLT_MAX)
// does not overflow the exponent field. x is clamped to [-104, 88.8] first: below, the result rounds to 0;
// above, the product overflows to inf as it should. A NaN passes through the final select.
constexpr float kRound = 12582912.0f;  // 1.5 * 2^23
constexpr float kLog2e = 1.44269504088896341f;
constexpr float kC1 = 0.693359375f, kC2 = -2.12194440e-4f;

VT_LANE float pow2i(int32_t n) { return std::bit_cast<float>(uint32_t(n + 127) << 23); }

VT_LANE float exp_lane(float x) {
  const float xc = x < -104.0f ? -104.0f : (x > 88.8f ? 88.8f : x);
  const float t = xc * kLog2e + kRound;
  const float n = t - kRound;
  const int32_t ni = std::bit_cast<int32_t>(t) - std::bit_cast<int32_t>(kRound);
  float r = xc - n * kC1;
  r = r - n * kC2;
  const float z = r * r;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * z + r + 1.0f;
  const int32_t n1 = ni >> 1;
  const float e = p * pow2i(n1) * pow2i(ni - n1);
  return x != x ? x : e;
}

// Note [Vector log]: Cephes' logf. x = m 2^e with m in [sqrt(1/2), sqrt(2)) read from the bits (a subnormal x is
// scaled by 2^23 first), a degree-9 polynomial in m - 1, and e ln 2 added in two parts as in exp. x = 0 gives
// -inf, a negative x or NaN gives NaN, +inf gives +inf, through the final selects.
VT_LANE float log_lane(float x) {
  const bool sub = x < 1.17549435e-38f;  // subnormal (or zero, negative, handled below)
  const float xs = sub ? x * 8388608.0f : x;
  const uint32_t bits = std::bit_cast<uint32_t>(xs);
  float e = float(int32_t((bits >> 23) & 0xffu) - 126 - (sub ? 23 : 0));
  float m = std::bit_cast<float>((bits & 0x007fffffu) | 0x3f000000u);  // [0.5, 1)
  const bool low = m < 0.707106781186547524f;
  e = low ? e - 1.0f : e;
  m = low ? m + m - 1.0f : m - 1.0f;
  const float z = m * m;
  float p = 7.0376836292e-2f;
  p = p * m - 1.1514610310e-1f;
  p = p * m + 1.1676998740e-1f;
  p = p * m - 1.2420140846e-1f;
  p = p * m + 1.4249322787e-1f;
  p = p * m - 1.6668057665e-1f;
  p = p * m + 2.0000714765e-1f;
  p = p * m - 2.4999993993e-1f;
  p = p * m + 3.3333331174e-1f;
  float y = p * m * z;
  y = y + e * kC2;
  y = y - 0.5f * z;
  const float r = (m + y) + e * kC1;
  const float inf = std::numeric_limits<float>::infinity();
  return x > 0.0f ? (x == inf ? inf : r) : (x == 0.0f ? -inf : std::numeric_limits<float>::quiet_NaN());
}

// log1p and expm1 by Kahan's corrections over the rounded 1 + x and exp(x): log(u) x / (u - 1) and
// (u - 1) x / log(u) cancel the rounding of u, so small arguments keep their relative accuracy.
VT_LANE float log1p_lane(float x) {
  const float u = 1.0f + x;
  const float r = log_lane(u) * (x / (u - 1.0f));
  return u == 1.0f ? x : (u == std::numeric_limits<float>::infinity() ? u : r);
}
VT_LANE float expm1_lane(float x) {
  const float u = exp_lane(x);
  const float r = (u - 1.0f) * (x / log_lane(u));
  return u == 1.0f ? x : (u - 1.0f == -1.0f ? -1.0f : (u == std::numeric_limits<float>::infinity() ? u : r));
}

VT_LANE float sigmoid_lane(float x) { return 1.0f / (1.0f + exp_lane(-x)); }
VT_LANE float silu_lane(float x) { return x / (1.0f + exp_lane(-x)); }
// log(sigmoid(x)) = min(x, 0) - log1p(exp(-|x|)): LogSigmoidF's two branches as one expression.
VT_LANE float logsigmoid_lane(float x) {
  const float ax = std::bit_cast<float>(std::bit_cast<uint32_t>(x) & 0x7fffffffu);
  return (x < 0.0f ? x : 0.0f) - log1p_lane(exp_lane(-ax));
}

// Cephes' tanhf on |x|: an odd polynomial below 0.625, 1 - 2 / (e^{2|x|} + 1) above (exactly 1 once
// e^{2|x|} > 2^25, and for an infinite |x|), then the sign of x put back, so tanh(-0) = -0.
VT_LANE float tanh_lane(float x) {
  constexpr uint32_t kSign = 0x80000000u;
  const uint32_t sign = std::bit_cast<uint32_t>(x) & kSign;
  const float ax = std::bit_cast<float>(std::bit_cast<uint32_t>(x) & ~kSign);
  const float z = ax * ax;
  float p = -5.70498872745e-3f;
  p = p * z + 2.06390887954e-2f;
  p = p * z - 5.37397155531e-2f;
  p = p * z + 1.33314422036e-1f;
  p = p * z - 3.33332819422e-1f;
  const float small = ax + ax * z * p;
  const float large = 1.0f - 2.0f / (exp_lane(ax + ax) + 1.0f);
  const float mag = ax < 0.625f ? small : large;
  return std::bit_cast<float>(std::bit_cast<uint32_t>(mag) | sign);
}

// softplus (SoftplusF: x past the threshold, else log1p(exp(beta x)) / beta) and elu (EluF: alpha expm1(x) for
// x < 0, else x, so a NaN or +-0 stays itself).
VT_LANE float softplus_lane(float x, float beta, float threshold) {
  const float bx = x * beta;
  const float sp = log1p_lane(exp_lane(bx)) / beta;
  return bx > threshold ? x : sp;
}
VT_LANE float elu_lane(float x, float alpha) {
  const float e = alpha * expm1_lane(x);
  return x < 0.0f ? e : x;
}

// mish = x tanh(softplus(x)), softplus with torch's threshold of 20 (MishF).
VT_LANE float mish_lane(float x) { return x * tanh_lane(x > 20.0f ? x : log1p_lane(exp_lane(x))); }

// Note [Vector sin and cos]: Cephes' sinf and cosf polynomials. j = the octant of |x| (rounded up to even); |x| is
// reduced by j pi/4 in double, with pi/4 split in three (C1 and C2 of 30 significant bits, so j C1 and j C2 are
// exact for j < 2^23): Cephes' float reduction left errors near 2e-11, which are 100+ ulp of the results near
// the zeros of sin and cos; the double one keeps them within 1 ulp there. The sine or cosine polynomial of the
// reduced argument is picked by j, with the sign from j and (for sin) from x. An array holding an |x| past 8192
// (or an infinity) is computed with libm's sinf/cosf instead (sin_cos_array below).
constexpr float kSinCosLimit = 8192.0f;
constexpr float kFourOverPi = 1.27323954473516f;
constexpr double kPio4C1 = 0.7853981629014015, kPio4C2 = 4.960467895817611e-10, kPio4C3 = 2.5850914908970526e-19;
template <bool Cos> VT_LANE float sin_cos_lane(float x) {
  const uint32_t xb = std::bit_cast<uint32_t>(x);
  const float ax = std::bit_cast<float>(xb & 0x7fffffffu);
  const float octant = ax * kFourOverPi;
  int32_t j = int32_t(octant < 16384.0f ? octant : 0.0f);  // a NaN lane converts 0, not an undefined int
  j = (j + 1) & ~1;
  const float yj = float(j);
  j &= 7;
  const double yd = double(yj);
  const float r = float(((double(ax) - yd * kPio4C1) - yd * kPio4C2) - yd * kPio4C3);
  const float z = r * r;
  const float sin_p = ((-1.9515295891e-4f * z + 8.3321608736e-3f) * z - 1.6666654611e-1f) * z * r + r;
  const float cos_p = ((2.443315711809948e-5f * z - 1.388731625493765e-3f) * z + 4.166664568298827e-2f) * z * z -
                      0.5f * z + 1.0f;
  const int32_t q = j >> 1;  // |x| = r + q pi/2 (mod 2 pi)
  float v;
  uint32_t neg;
  if constexpr (Cos) {
    v = (q & 1) ? sin_p : cos_p;
    neg = uint32_t(((q + 1) >> 1) & 1) << 31;  // cos(r + q pi/2): cos r, -sin r, -cos r, sin r
  } else {
    v = (q & 1) ? cos_p : sin_p;
    neg = (uint32_t((q >> 1) & 1) << 31) ^ (xb & 0x80000000u);  // sin r, cos r, -sin r, -cos r; odd in x
  }
  return std::bit_cast<float>(std::bit_cast<uint32_t>(v) ^ neg);
}

// Note [Vector erf]: erf(x) = sign(x) e(|x|) from two fits made for these lanes (least squares on Chebyshev nodes
// against 30-digit references, coefficients rounded to float): below 0.875, e(a) = a + a Q(a^2) with Q a degree-6
// fit of erf(a) / a - 1 (the leading a is exact, so tiny inputs are exact too); from 0.875 to 4, e(a) = 1 -
// exp(-a^2) R(a - 2.4375) with R a degree-12 fit of erfc(a) exp(a^2) (relative error 2e-8); from 4 on, 1 (erf
// rounds to 1 in float past 3.92). Both branches are computed and one selected. Within 1 ulp of the float64 erf
// over the inputs the tests sweep; libm's erff per element took 8x torch's time.
constexpr float kErfQ[] = {0.12837916612625122f,  -0.37612634897232056f, 0.11283735930919647f, -0.02686174027621746f,
                           0.005207134876400232f, -0.0008215564885176718f, 8.694671851117164e-05f};
constexpr float kErfR[] = {0.21555247902870178f,    -0.07756081223487854f,   0.026497934013605118f,
                           -0.008648294024169445f,  0.0027092969976365566f,  -0.0008169854409061372f,
                           0.00023830220743548125f, -6.856047548353672e-05f, 1.8886072211898863e-05f,
                           -4.2469614527362864e-06f, 1.0897011861743522e-06f, -5.405926231105695e-07f,
                           1.3654285169195646e-07f};
VT_LANE float erf_lane(float x) {
  constexpr uint32_t kSign = 0x80000000u;
  const float a = std::bit_cast<float>(std::bit_cast<uint32_t>(x) & ~kSign);
  const float z = a * a;
  float q = kErfQ[6];
  for (int k = 5; k >= 0; --k) q = q * z + kErfQ[k];
  const float small = a + a * q;
  const float t = a - 2.4375f;
  float r = kErfR[12];
  for (int k = 11; k >= 0; --k) r = r * t + kErfR[k];
  const float large = 1.0f - exp_lane(-z) * r;
  const float e = a < 0.875f ? small : (a < 4.0f ? large : 1.0f);
  const float signed_e = std::bit_cast<float>(std::bit_cast<uint32_t>(e) | (std::bit_cast<uint32_t>(x) & kSign));
  return x != x ? x : signed_e;
}

// Exact gelu and its gradient in the operation order of GeluF and act_backward's GeluBwdF, over erf_lane (the
// 16-bit tensors' path; float32 rounds as torch's oneDNN kernel does, cpu_gelu.h).
VT_LANE float gelu_lane(float x) { return 0.5f * x * (1.0f + erf_lane(x * 0.70710678118654752440f)); }
VT_LANE float gelu_backward_lane(float g, float x) {
  const float cdf = 0.5f * (1.0f + erf_lane(x * 0.70710678118654752440f));
  const float pdf = exp_lane(-0.5f * x * x) * 0.39894228040143267794f;
  return g * (cdf + x * pdf);
}

// The tanh-approximated gelu and its gradient, and silu's gradient, in the operation order of GeluTanhF and of
// act_backward's GeluTanhBwdF and SiluBwdF (so the CPU's vector lanes and the other kernels agree up to tanh's
// and exp's own rounding).
constexpr float kGeluK = 0.7978845608028654f, kGeluA = 0.044715f;
VT_LANE float gelu_tanh_lane(float x) { return 0.5f * x * (1.0f + tanh_lane(kGeluK * (x + kGeluA * x * x * x))); }
VT_LANE float gelu_tanh_backward_lane(float g, float x) {
  const float x2 = x * x;
  const float t = tanh_lane(kGeluK * (x + kGeluA * x2 * x));
  const float right = 0.5f * x * (1.0f - t * t) * (kGeluK * (1.0f + 3.0f * kGeluA * x2));
  return g * (0.5f * (1.0f + t) + right);
}
VT_LANE float silu_backward_lane(float g, float x) {
  const float s = 1.0f / (1.0f + exp_lane(-x));
  return g * s * (1.0f + x * (1.0f - s));
}

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr int kLanes = 16;  // independent accumulators: one AVX-512 register, two AVX2 ones

template <typename F> VT_LANE void map(const float* x, float* y, int64_t n, F f) {
#pragma GCC ivdep
  for (int64_t i = 0; i < n; ++i) y[i] = f(x[i]);
}
template <typename F> VT_LANE void map2(const float* a, const float* b, float* y, int64_t n, F f) {
#pragma GCC ivdep
  for (int64_t i = 0; i < n; ++i) y[i] = f(a[i], b[i]);
}

// ---- vector types ----

template <int W> struct LanesOf;  // (a vector_size that depends on a template parameter is not applied)
template <> struct LanesOf<2> { typedef float type __attribute__((vector_size(8))); };
template <> struct LanesOf<4> { typedef float type __attribute__((vector_size(16))); };
template <> struct LanesOf<8> { typedef float type __attribute__((vector_size(32))); };
template <> struct LanesOf<16> { typedef float type __attribute__((vector_size(64))); };

// Doubles take vectors of half a family's float width: one register each (a wider GCC vector type is kept in
// memory, a store and a load per add).
template <int W> struct DoubleLanesOf;
template <> struct DoubleLanesOf<2> { typedef double type __attribute__((vector_size(16))); };
template <> struct DoubleLanesOf<4> { typedef double type __attribute__((vector_size(32))); };
template <> struct DoubleLanesOf<8> { typedef double type __attribute__((vector_size(64))); };

// The sum of a double register's lanes as a tree of halves (3 dependent adds for 8 lanes instead of a chain of
// 8): on short rows the chain was most of the time (a [65536, 64] row sum took 1.8x torch's).
template <typename D> VT_LANE double lane_total(D t) {
  constexpr int H = int(sizeof(D) / sizeof(double));
  if constexpr (H == 8) {
    return lane_total(__builtin_shufflevector(t, t, 0, 1, 2, 3) + __builtin_shufflevector(t, t, 4, 5, 6, 7));
  } else if constexpr (H == 4) {
    return lane_total(__builtin_shufflevector(t, t, 0, 1) + __builtin_shufflevector(t, t, 2, 3));
  } else {
    static_assert(H == 2, "double registers hold 2, 4 or 8 lanes");
    return t[0] + t[1];
  }
}

// W / 2 elements of x from j (float32 or bfloat16) as floats, half a register. bfloat16 widens to float in the
// register (its bits are a float's upper half), so its sums read the input once instead of through a buffer.
template <int W, typename T> VT_LANE typename LanesOf<W / 2>::type load_half_floats(const T* x, int64_t j) {
  typename LanesOf<W / 2>::type v;
  if constexpr (std::is_same_v<T, vt::BFloat16>) {
    uint16_t h[W / 2];
    uint32_t u[W / 2];
    __builtin_memcpy(h, x + j, sizeof(h));
    for (int l = 0; l < W / 2; ++l) u[l] = uint32_t(h[l]) << 16;  // one widening move and a shift
    __builtin_memcpy(&v, u, sizeof(v));
  } else {
    __builtin_memcpy(&v, x + j, sizeof(v));
  }
  return v;
}

// W / 2 floats as doubles (one register).
template <int W> VT_LANE typename DoubleLanesOf<W / 2>::type widen(typename LanesOf<W / 2>::type v) {
  using D = typename DoubleLanesOf<W / 2>::type;
  if constexpr (W == 16) {
    // GCC 12 converts 8 floats to 8 doubles as two 4-lane conversions and an insert (1.5x slower sums); the
    // one instruction, as asm: an intrinsic cannot be inlined here, outside the family's target attribute.
    D d;
    asm("vcvtps2pd %1, %0" : "=v"(d) : "v"(v));
    return d;
  } else {
    return __builtin_convertvector(v, D);
  }
}

// W / 2 elements of x from j, as doubles (one register).
template <int W, typename T> VT_LANE typename DoubleLanesOf<W / 2>::type load_doubles(const T* x, int64_t j) {
  if constexpr (std::is_same_v<T, float> || std::is_same_v<T, vt::BFloat16>) {
    return widen<W>(load_half_floats<W>(x, j));
  } else {
    typename DoubleLanesOf<W / 2>::type v;
    __builtin_memcpy(&v, x + j, sizeof(v));
    return v;
  }
}

}  // namespace vt::cpu_math::lanes
