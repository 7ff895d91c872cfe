// Vectorised float32 exp, sigmoid, silu, tanh, softmax row passes and the float sums (interface and accuracy in
// vt/core/cpu_vec_math.h). Each function is one loop over a branch-free lane function - selects instead of branches,
// bit casts instead of ldexp/rint - which GCC vectorises; the loops are compiled three times, for AVX-512,
// AVX2 + FMA and the baseline, with per-function target attributes (as the GEMM micro-kernels are, Note [GEMM
// kernel selection]), and the widest the CPU supports is picked once. This file is compiled alone (not in a
// unity batch), since its lanes must be inlined into each target's loops.
#include "vt/core/cpu_vec_math.h"

#include <bit>
#include <cmath>
#include <limits>
#include <string_view>
#include <type_traits>

#include "vt/core/error.h"

// The lane helpers that return GCC vector types are always inlined into one family's functions, so no call ever
// passes such a vector across the ABI that -Wpsabi warns about.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace vt::cpu_math {
namespace {

#define VT_LANE __attribute__((always_inline)) static inline

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
  int32_t j = int32_t(ax * kFourOverPi);
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

// Softmax backward rows: y = scale * out * (g - dot) (softmax) or scale * (g - exp(out) * dot) (log_softmax),
// with dot = sum(g * out) or sum(g) taken in double by the caller.
template <bool Log> VT_LANE void softmax_backward_impl(const float* g, const float* out, float* y, int64_t n,
                                                        float dot, float scale) {
#pragma GCC ivdep
  for (int64_t i = 0; i < n; ++i) y[i] = scale * (Log ? g[i] - exp_lane(out[i]) * dot : out[i] * (g[i] - dot));
}

// The max is taken on GCC vector types of the family's register width W: written on scalars, the select
// `v > m ? v : m` (NaN never wins, which is not what fmax does) stayed a chain of scalar compares, and a vector
// wider than the registers was split lane by lane.
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

// W / 2 elements of x from j, as doubles (one register).
template <int W, typename T> VT_LANE typename DoubleLanesOf<W / 2>::type load_doubles(const T* x, int64_t j) {
  using D = typename DoubleLanesOf<W / 2>::type;
  if constexpr (std::is_same_v<T, float>) {
    typename LanesOf<W / 2>::type v;
    __builtin_memcpy(&v, x + j, sizeof(v));
    return __builtin_convertvector(v, D);
  } else {
    D v;
    __builtin_memcpy(&v, x + j, sizeof(v));
    return v;
  }
}

// x[0] + ... + x[n-1] in double, in four accumulators of W / 2 lanes (so an add does not wait on the previous
// one), combined pairwise at the end: a fixed order, so the same input gives the same sum on every call.
template <int W, typename T> VT_LANE double sum_impl(const T* x, int64_t n) {
  constexpr int H = W / 2;
  using D = typename DoubleLanesOf<H>::type;
  D a0 = {}, a1 = {}, a2 = {}, a3 = {};  // named, not an array: an array stayed on the stack
  int64_t j = 0;
  for (; j + 4 * H <= n; j += 4 * H) {
    a0 += load_doubles<W>(x, j);
    a1 += load_doubles<W>(x, j + H);
    a2 += load_doubles<W>(x, j + 2 * H);
    a3 += load_doubles<W>(x, j + 3 * H);
  }
  const D t = (a0 + a1) + (a2 + a3);
  double r = 0.0;
  for (int l = 0; l < H; ++l) r += t[l];
  for (; j < n; ++j) r += double(x[j]);
  return r;
}

// sum(a * b) in double, in the lanes and order of sum_impl.
template <int W> VT_LANE double dot_impl(const float* a, const float* b, int64_t n) {
  constexpr int H = W / 2;
  using D = typename DoubleLanesOf<H>::type;
  D a0 = {}, a1 = {}, a2 = {}, a3 = {};
  int64_t j = 0;
  for (; j + 4 * H <= n; j += 4 * H) {
    a0 += load_doubles<W>(a, j) * load_doubles<W>(b, j);
    a1 += load_doubles<W>(a, j + H) * load_doubles<W>(b, j + H);
    a2 += load_doubles<W>(a, j + 2 * H) * load_doubles<W>(b, j + 2 * H);
    a3 += load_doubles<W>(a, j + 3 * H) * load_doubles<W>(b, j + 3 * H);
  }
  const D t = (a0 + a1) + (a2 + a3);
  double r = 0.0;
  for (int l = 0; l < H; ++l) r += t[l];
  for (; j < n; ++j) r += double(a[j]) * double(b[j]);
  return r;
}

template <typename T> VT_LANE void accumulate_impl(double* __restrict acc, const T* __restrict x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) acc[i] += double(x[i]);
}

template <int W> VT_LANE float max_abs_impl(const float* x, int64_t n) {
  using Lanes = typename LanesOf<W>::type;
  Lanes m = {};
  int64_t j = 0;
  for (; j + W <= n; j += W) {
    Lanes v;
    __builtin_memcpy(&v, x + j, sizeof(v));
    v = v < 0 ? -v : v;
    m = v > m ? v : m;
  }
  float r = 0.0f;
  for (int l = 0; l < W; ++l) r = m[l] > r ? m[l] : r;
  for (; j < n; ++j) r = std::abs(x[j]) > r ? std::abs(x[j]) : r;
  return r;
}

template <int W, bool Cos> VT_LANE void sin_cos_array(const float* x, float* y, int64_t n) {
  if (max_abs_impl<W>(x, n) <= kSinCosLimit) return map(x, y, n, sin_cos_lane<Cos>);  // NaN never wins the max
  for (int64_t i = 0; i < n; ++i) y[i] = Cos ? std::cos(x[i]) : std::sin(x[i]);
}

template <int W> VT_LANE float row_max_impl(const float* x, int64_t n, float scale) {
  using Lanes = typename LanesOf<W>::type;
  Lanes m;
  for (int l = 0; l < W; ++l) m[l] = kNegInf;
  int64_t j = 0;
  for (; j + W <= n; j += W) {
    Lanes v;
    __builtin_memcpy(&v, x + j, sizeof(v));
    v *= scale;
    m = v > m ? v : m;  // NaN never wins
  }
  float r = kNegInf;
  for (int l = 0; l < W; ++l) r = m[l] > r ? m[l] : r;
  for (; j < n; ++j) r = x[j] * scale > r ? x[j] * scale : r;
  return r;
}

// exp(v - shift), 0 for v = -inf (whatever the shift). The exp is computed either way, and selected (Note [Kernel
// math flags] in core/CMakeLists.txt lets GCC do so with everything else in a lane).
VT_LANE float exp_term(float v, float shift) {
  const float e = exp_lane(v - shift);
  return v == kNegInf ? 0.0f : e;
}

template <bool Store> VT_LANE float exp_sum_impl(const float* x, float* y, int64_t n, float scale, float shift) {
  float s[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
#pragma GCC ivdep
    for (int l = 0; l < kLanes; ++l) {
      const float e = exp_term(x[j + l] * scale, shift);
      if constexpr (Store) y[j + l] = e;
      s[l] += e;
    }
  float r = 0.0f;
  for (int l = 0; l < kLanes; ++l) r += s[l];
  for (; j < n; ++j) {
    const float e = exp_term(x[j] * scale, shift);
    if constexpr (Store) y[j] = e;
    r += e;
  }
  return r;
}

VT_LANE void scale_impl(float* y, int64_t n, float s) {
  for (int64_t i = 0; i < n; ++i) y[i] *= s;
}

VT_LANE void log_softmax_impl(const float* x, float* y, int64_t n, float scale, float shift, float log_sum) {
#pragma GCC ivdep
  for (int64_t i = 0; i < n; ++i) y[i] = (x[i] * scale - shift) - log_sum;
}

struct Family {
  const char* isa;
  void (*exp)(const float*, float*, int64_t);
  void (*sigmoid)(const float*, float*, int64_t);
  void (*silu)(const float*, float*, int64_t);
  void (*tanh)(const float*, float*, int64_t);
  float (*row_max)(const float*, int64_t, float);
  float (*exp_sum)(const float*, float*, int64_t, float, float);
  float (*sum_exp)(const float*, int64_t, float, float);
  void (*scale_by)(float*, int64_t, float);
  void (*log_softmax_row)(const float*, float*, int64_t, float, float, float);
  double (*sum_f32)(const float*, int64_t);
  double (*sum_f64)(const double*, int64_t);
  void (*accumulate_f32)(double*, const float*, int64_t);
  void (*accumulate_f64)(double*, const double*, int64_t);
  void (*gelu_tanh)(const float*, float*, int64_t);
  void (*log)(const float*, float*, int64_t);
  void (*log1p)(const float*, float*, int64_t);
  void (*expm1)(const float*, float*, int64_t);
  void (*logsigmoid)(const float*, float*, int64_t);
  void (*mish)(const float*, float*, int64_t);
  void (*sin)(const float*, float*, int64_t);
  void (*cos)(const float*, float*, int64_t);
  void (*softplus)(const float*, float*, int64_t, float, float);
  void (*elu)(const float*, float*, int64_t, float);
  void (*gelu_tanh_backward)(const float*, const float*, float*, int64_t);
  void (*silu_backward)(const float*, const float*, float*, int64_t);
  double (*dot)(const float*, const float*, int64_t);
  void (*softmax_backward_row)(const float*, const float*, float*, int64_t, float, float);
  void (*log_softmax_backward_row)(const float*, const float*, float*, int64_t, float, float);
};

// One family of entry points compiled for TARGET (an attribute, or nothing for the baseline), whose vector
// registers hold W floats.
#define VT_MATH_FAMILY(NS, NAME, TARGET, W)                                                                         \
  namespace NS {                                                                                                   \
  TARGET void exp(const float* x, float* y, int64_t n) { map(x, y, n, exp_lane); }                                 \
  TARGET void sigmoid(const float* x, float* y, int64_t n) { map(x, y, n, sigmoid_lane); }                         \
  TARGET void silu(const float* x, float* y, int64_t n) { map(x, y, n, silu_lane); }                               \
  TARGET void tanh(const float* x, float* y, int64_t n) { map(x, y, n, tanh_lane); }                               \
  TARGET float row_max(const float* x, int64_t n, float scale) { return row_max_impl<W>(x, n, scale); }            \
  TARGET float exp_sum(const float* x, float* y, int64_t n, float scale, float shift) {                            \
    return exp_sum_impl<true>(x, y, n, scale, shift);                                                              \
  }                                                                                                                \
  TARGET float sum_exp(const float* x, int64_t n, float scale, float shift) {                                      \
    return exp_sum_impl<false>(x, nullptr, n, scale, shift);                                                       \
  }                                                                                                                \
  TARGET void scale_by(float* y, int64_t n, float s) { scale_impl(y, n, s); }                                      \
  TARGET void log_softmax_row(const float* x, float* y, int64_t n, float scale, float shift, float log_sum) {       \
    log_softmax_impl(x, y, n, scale, shift, log_sum);                                                              \
  }                                                                                                                \
  TARGET double sum_f32(const float* x, int64_t n) { return sum_impl<W>(x, n); }                                  \
  TARGET double sum_f64(const double* x, int64_t n) { return sum_impl<W>(x, n); }                                 \
  TARGET void accumulate_f32(double* acc, const float* x, int64_t n) { accumulate_impl(acc, x, n); }              \
  TARGET void accumulate_f64(double* acc, const double* x, int64_t n) { accumulate_impl(acc, x, n); }             \
  TARGET void gelu_tanh(const float* x, float* y, int64_t n) { map(x, y, n, gelu_tanh_lane); }                     \
  TARGET void log(const float* x, float* y, int64_t n) { map(x, y, n, log_lane); }                                 \
  TARGET void log1p(const float* x, float* y, int64_t n) { map(x, y, n, log1p_lane); }                             \
  TARGET void expm1(const float* x, float* y, int64_t n) { map(x, y, n, expm1_lane); }                             \
  TARGET void logsigmoid(const float* x, float* y, int64_t n) { map(x, y, n, logsigmoid_lane); }                   \
  TARGET void mish(const float* x, float* y, int64_t n) { map(x, y, n, mish_lane); }                               \
  TARGET void sin(const float* x, float* y, int64_t n) { sin_cos_array<W, false>(x, y, n); }                        \
  TARGET void cos(const float* x, float* y, int64_t n) { sin_cos_array<W, true>(x, y, n); }                         \
  TARGET void softplus(const float* x, float* y, int64_t n, float beta, float threshold) {                         \
    map(x, y, n, [=](float v) { return softplus_lane(v, beta, threshold); });                                      \
  }                                                                                                                \
  TARGET void elu(const float* x, float* y, int64_t n, float alpha) {                                              \
    map(x, y, n, [=](float v) { return elu_lane(v, alpha); });                                                     \
  }                                                                                                                \
  TARGET void gelu_tanh_backward(const float* g, const float* x, float* y, int64_t n) {                             \
    map2(g, x, y, n, gelu_tanh_backward_lane);                                                                     \
  }                                                                                                                \
  TARGET void silu_backward(const float* g, const float* x, float* y, int64_t n) {                                  \
    map2(g, x, y, n, silu_backward_lane);                                                                          \
  }                                                                                                                \
  TARGET double dot(const float* a, const float* b, int64_t n) { return dot_impl<W>(a, b, n); }                     \
  TARGET void softmax_backward_row(const float* g, const float* out, float* y, int64_t n, float dot, float scale) {  \
    softmax_backward_impl<false>(g, out, y, n, dot, scale);                                                        \
  }                                                                                                                \
  TARGET void log_softmax_backward_row(const float* g, const float* out, float* y, int64_t n, float dot,           \
                                       float scale) {                                                              \
    softmax_backward_impl<true>(g, out, y, n, dot, scale);                                                         \
  }                                                                                                                \
  Family family() {                                                                                                \
    return {NAME,    exp,      sigmoid,         silu,    tanh,    row_max,        exp_sum,                          \
            sum_exp, scale_by, log_softmax_row, sum_f32, sum_f64, accumulate_f32, accumulate_f64,                   \
            gelu_tanh, log,     log1p,   expm1,          logsigmoid,     mish,           sin,        cos,           \
            softplus,  elu,                                                                                        \
            gelu_tanh_backward, silu_backward, dot, softmax_backward_row, log_softmax_backward_row};               \
  }                                                                                                                \
  }

VT_MATH_FAMILY(generic, "generic", , 4)
#if defined(__x86_64__)
VT_MATH_FAMILY(avx2, "avx2", __attribute__((target("avx2,fma"))), 8)
VT_MATH_FAMILY(avx512, "avx512", __attribute__((target("avx512f,avx2,fma,prefer-vector-width=512"))), 16)
#endif

bool supports(std::string_view isa) {
#if defined(__x86_64__)
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (isa == "avx512") return avx2 && __builtin_cpu_supports("avx512f");
  if (isa == "avx2") return avx2;
#endif
  return isa == "generic";
}

Family pick(std::string_view isa) {
#if defined(__x86_64__)
  if (isa == "avx512") return avx512::family();
  if (isa == "avx2") return avx2::family();
#endif
  return generic::family();
}

Family& active() {
  static Family f = pick(supports("avx512") ? "avx512" : supports("avx2") ? "avx2" : "generic");
  return f;
}

}  // namespace

void exp(const float* x, float* y, int64_t n) { active().exp(x, y, n); }
void sigmoid(const float* x, float* y, int64_t n) { active().sigmoid(x, y, n); }
void silu(const float* x, float* y, int64_t n) { active().silu(x, y, n); }
void tanh(const float* x, float* y, int64_t n) { active().tanh(x, y, n); }
float row_max(const float* x, int64_t n, float scale) { return active().row_max(x, n, scale); }
float exp_sum(const float* x, float* y, int64_t n, float scale, float shift) {
  return active().exp_sum(x, y, n, scale, shift);
}
float sum_exp(const float* x, int64_t n, float scale, float shift) { return active().sum_exp(x, n, scale, shift); }
void scale_by(float* y, int64_t n, float s) { active().scale_by(y, n, s); }
void log_softmax_row(const float* x, float* y, int64_t n, float scale, float shift, float log_sum) {
  active().log_softmax_row(x, y, n, scale, shift, log_sum);
}

double sum(const float* x, int64_t n) { return active().sum_f32(x, n); }
double sum(const double* x, int64_t n) { return active().sum_f64(x, n); }
void accumulate(double* acc, const float* x, int64_t n) { active().accumulate_f32(acc, x, n); }
void accumulate(double* acc, const double* x, int64_t n) { active().accumulate_f64(acc, x, n); }

void gelu_tanh(const float* x, float* y, int64_t n) { active().gelu_tanh(x, y, n); }
void log(const float* x, float* y, int64_t n) { active().log(x, y, n); }
void log1p(const float* x, float* y, int64_t n) { active().log1p(x, y, n); }
void expm1(const float* x, float* y, int64_t n) { active().expm1(x, y, n); }
void logsigmoid(const float* x, float* y, int64_t n) { active().logsigmoid(x, y, n); }
void mish(const float* x, float* y, int64_t n) { active().mish(x, y, n); }
void sin(const float* x, float* y, int64_t n) { active().sin(x, y, n); }
void cos(const float* x, float* y, int64_t n) { active().cos(x, y, n); }
void softplus(const float* x, float* y, int64_t n, float beta, float threshold) {
  active().softplus(x, y, n, beta, threshold);
}
void elu(const float* x, float* y, int64_t n, float alpha) { active().elu(x, y, n, alpha); }
void gelu_tanh_backward(const float* g, const float* x, float* y, int64_t n) { active().gelu_tanh_backward(g, x, y, n); }
void silu_backward(const float* g, const float* x, float* y, int64_t n) { active().silu_backward(g, x, y, n); }
double dot(const float* a, const float* b, int64_t n) { return active().dot(a, b, n); }
void softmax_backward_row(const float* g, const float* out, float* y, int64_t n, float dot, float scale) {
  active().softmax_backward_row(g, out, y, n, dot, scale);
}
void log_softmax_backward_row(const float* g, const float* out, float* y, int64_t n, float dot, float scale) {
  active().log_softmax_backward_row(g, out, y, n, dot, scale);
}

const char* isa() { return active().isa; }

void set_isa(std::string_view name) {
  VT_CHECK(name == "avx512" || name == "avx2" || name == "generic", "set_cpu_math_isa: unknown instruction set '",
           name, "' (expected generic, avx2 or avx512)");
  VT_CHECK_KIND(NotImplemented, supports(name), "set_cpu_math_isa: this CPU does not support ", name);
  active() = pick(name);
}

}  // namespace vt::cpu_math
