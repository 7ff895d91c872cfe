// The CPU vector math's row passes and sums (interface in vt/core/cpu_vec_math.h, lanes in cpu_vec_lanes.h):
// softmax and log_softmax rows forward and backward, layer/rms norm rows forward and backward, and the floating
// sums of the reductions, accumulated in double. Compiled once per instruction-set family, as cpu_vec_math.cpp's
// functions are, and run with the family active there.
#include <type_traits>

#include "cpu_vec_lanes.h"
#include "vt/core/cpu_vec_math.h"
#include "vt/core/half.h"

namespace vt::cpu_math {
namespace lanes {
namespace {

// The max is taken on GCC vector types of the family's register width W: written on scalars, the select
// `v > m ? v : m` (NaN never wins, which is not what fmax does) stayed a chain of scalar compares, and a vector
// wider than the registers was split lane by lane.
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

// arg_extreme: the index of the first maximum (IsMax) or minimum of x[0..n), or of the first NaN if there is one
// (torch's max/min/argmax along a dim). One pass (extreme_pass: n >= 1) keeps per-lane extremes and a NaN flag; a
// second finds the first element equal to the extreme (the value returned is that element, so -0.0 and 0.0
// resolve as the scalar loop does). row_extreme is the first pass alone, NaN if one was seen (amax/amin: no index).
template <int W, bool IsMax> VT_LANE float extreme_pass(const float* x, int64_t n, bool& nan) {
  using Lanes = typename LanesOf<W>::type;
  using Mask = decltype(Lanes{} != Lanes{});
  int64_t j = 0;
  float best = x[0];
  nan = best != best;
  if (n >= W) {
    Lanes m;
    __builtin_memcpy(&m, x, sizeof(m));
    Mask any_nan = m != m;
    for (j = W; j + W <= n; j += W) {
      Lanes v;
      __builtin_memcpy(&v, x + j, sizeof(v));
      any_nan |= v != v;
      m = IsMax ? (v > m ? v : m) : (v < m ? v : m);
    }
    for (int l = 0; l < W; ++l) {
      nan |= any_nan[l] != 0;
      best = IsMax ? (m[l] > best ? m[l] : best) : (m[l] < best ? m[l] : best);
    }
  } else {
    j = 1;
  }
  for (; j < n; ++j) {
    nan |= x[j] != x[j];
    best = IsMax ? (x[j] > best ? x[j] : best) : (x[j] < best ? x[j] : best);
  }
  return best;
}
template <int W, bool IsMax> VT_LANE int64_t arg_extreme_impl(const float* x, int64_t n) {
  bool nan = false;
  const float best = extreme_pass<W, IsMax>(x, n, nan);
  for (int64_t i = 0; i < n; ++i)
    if (nan ? x[i] != x[i] : x[i] == best) return i;
  return 0;  // not reached: best is one of the elements
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

// Softmax backward rows: y = scale * out * (g - dot) (softmax) or scale * (g - exp(out) * dot) (log_softmax),
// with dot = sum(g * out) or sum(g) taken in double by the caller.
template <bool Log> VT_LANE void softmax_backward_impl(const float* g, const float* out, float* y, int64_t n,
                                                        float dot, float scale) {
#pragma GCC ivdep
  for (int64_t i = 0; i < n; ++i) y[i] = scale * (Log ? g[i] - exp_lane(out[i]) * dot : out[i] * (g[i] - dot));
}

// x[0] + ... + x[n-1] in double, in four accumulators of W / 2 lanes (so an add does not wait on the previous
// one), combined pairwise at the end: a fixed order, so the same input gives the same sum on every call.
// Note [bfloat16 sums in float fours]: a bfloat16 row first adds four values (H lanes from each quarter of a
// 16 H block) in float32, then widens once: a quarter of the conversions and double adds. A float32 sum of four
// bfloat16 values rounds at most twice, a few float32 ulps, far below the bfloat16 result's rounding; float32
// rows keep every value in double. Devbox, [4096, 1024] bfloat16, two threads, best of 15 rounds: sum(-1)
// 0.51 -> 0.24 ms (torch 0.13-0.16).
// float16 runs reach it as float32 buffers (sum_from_16bit, Fours set): a float16 sum() of [4096, 1024] 0.51 ->
// 0.20 ms (torch 0.11).
template <int W, typename T, bool Fours = std::is_same_v<T, BFloat16>> VT_LANE double sum_impl(const T* x, int64_t n) {
  constexpr int H = W / 2;
  using D = typename DoubleLanesOf<H>::type;
  D a0 = {}, a1 = {}, a2 = {}, a3 = {};  // named, not an array: an array stayed on the stack
  int64_t j = 0;
  if constexpr (Fours) {
    auto four = [&](int64_t k) {
      return widen<W>((load_half_floats<W>(x, k) + load_half_floats<W>(x, k + 4 * H)) +
                      (load_half_floats<W>(x, k + 8 * H) + load_half_floats<W>(x, k + 12 * H)));
    };
    for (; j + 16 * H <= n; j += 16 * H) {
      a0 += four(j);
      a1 += four(j + H);
      a2 += four(j + 2 * H);
      a3 += four(j + 3 * H);
    }
  }
  for (; j + 4 * H <= n; j += 4 * H) {
    a0 += load_doubles<W>(x, j);
    a1 += load_doubles<W>(x, j + H);
    a2 += load_doubles<W>(x, j + 2 * H);
    a3 += load_doubles<W>(x, j + 3 * H);
  }
  double r = lane_total((a0 + a1) + (a2 + a3));
  for (; j < n; ++j) r += double(vt::opmath_t<T>(x[j]));  // a bfloat16 through float; float, double as they are
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
  double r = lane_total((a0 + a1) + (a2 + a3));
  for (; j < n; ++j) r += double(a[j]) * double(b[j]);
  return r;
}

// A layer/rms norm row forward: mu = mean(x) (0 for rms) and var = mean((x - mu)^2) summed in double over the
// float differences (two passes over a row in cache: no cancellation from E[x^2] - E[x]^2), rs = 1 / sqrt(var +
// eps), then y = (x - mu) rs w + b, as the generic kernel computes them.
template <int W> VT_LANE void norm_forward_row_impl(const float* x, const float* w, const float* b, float* y,
                                                    int64_t n, double eps, bool rms, float* mu_out, float* rs_out) {
  constexpr int H = W / 2;
  using D = typename DoubleLanesOf<H>::type;
  using Fh = typename LanesOf<H>::type;
  const float mu = rms ? 0.0f : float(sum_impl<W>(x, n) / double(n));
  D v0 = {}, v1 = {};
  int64_t j = 0;
  for (; j + 2 * H <= n; j += 2 * H) {
    Fh u0, u1;
    __builtin_memcpy(&u0, x + j, sizeof(u0));
    __builtin_memcpy(&u1, x + j + H, sizeof(u1));
    const D d0 = __builtin_convertvector(u0 - mu, D), d1 = __builtin_convertvector(u1 - mu, D);
    v0 += d0 * d0;
    v1 += d1 * d1;
  }
  double var = lane_total(v0 + v1);
  for (; j < n; ++j) var += double(x[j] - mu) * double(x[j] - mu);
  const float rs = float(1.0 / std::sqrt(var / double(n) + eps));
  *mu_out = mu;
  *rs_out = rs;
  if (w && b) {
#pragma GCC ivdep
    for (int64_t i = 0; i < n; ++i) y[i] = (x[i] - mu) * rs * w[i] + b[i];
  } else {
#pragma GCC ivdep
    for (int64_t i = 0; i < n; ++i) y[i] = ((x[i] - mu) * rs * (w ? w[i] : 1.0f)) + (b ? b[i] : 0.0f);
  }
}

// The input gradient of a layer/rms norm row (Note [Row sums in double] for the two sums):
// y = rs (g w - c1 - xhat c2), xhat = (x - mu) rs, c1 = mean(g w) (0 for rms), c2 = mean(g w xhat).
template <int W> VT_LANE void norm_backward_row_impl(const float* g, const float* x, const float* w, float* y,
                                                     int64_t n, float mu, float rs, bool rms) {
  constexpr int H = W / 2;
  using D = typename DoubleLanesOf<H>::type;
  D s0 = {}, s1 = {}, t0 = {}, t1 = {};
  int64_t j = 0;
  for (; j + 2 * H <= n; j += 2 * H) {
    D gw0 = load_doubles<W>(g, j), gw1 = load_doubles<W>(g, j + H);
    if (w) {
      gw0 *= load_doubles<W>(w, j);
      gw1 *= load_doubles<W>(w, j + H);
    }
    s0 += gw0;
    s1 += gw1;
    t0 += gw0 * ((load_doubles<W>(x, j) - double(mu)) * double(rs));
    t1 += gw1 * ((load_doubles<W>(x, j + H) - double(mu)) * double(rs));
  }
  double sum_gw = lane_total(s0 + s1), sum_gwx = lane_total(t0 + t1);
  for (; j < n; ++j) {
    const double gw = double(g[j]) * (w ? double(w[j]) : 1.0);
    sum_gw += gw;
    sum_gwx += gw * ((double(x[j]) - double(mu)) * double(rs));
  }
  const float c1 = rms ? 0.0f : float(sum_gw / double(n)), c2 = float(sum_gwx / double(n));
#pragma GCC ivdep
  for (int64_t i = 0; i < n; ++i) {
    const float gw = g[i] * (w ? w[i] : 1.0f);
    const float xhat = (x[i] - mu) * rs;
    y[i] = rs * (gw - c1 - xhat * c2);
  }
}

// One row's share of the affine gradients: pw += g (x - mu) rs, pb += g (either may be null).
VT_LANE void norm_affine_row_impl(const float* g, const float* x, float* pw, float* pb, int64_t n, float mu,
                                  float rs) {
  if (pw) {
#pragma GCC ivdep
    for (int64_t i = 0; i < n; ++i) pw[i] += g[i] * (x[i] - mu) * rs;
  }
  if (pb) {
#pragma GCC ivdep
    for (int64_t i = 0; i < n; ++i) pb[i] += g[i];
  }
}

template <typename T> VT_LANE void accumulate_impl(double* __restrict acc, const T* __restrict x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) acc[i] += double(x[i]);
}
// Rows eight at a time, a pairwise tree of the eight added once: an eighth of the accumulator traffic of row by
// row (four at a time left a [8320, 192] column sum at 1.75x torch's time on one thread).
// Note [16-bit leading sums]: float16 and bfloat16 rows build the tree in float32 and add it to the double
// accumulator, where float32 and float64 rows build it in double. Converting every 16-bit value to double made
// the sum compute-bound (float16 sum(0) of [4096, 1024] 6x torch's time on the 2-core devbox, bfloat16 3.3x);
// a float32 tree of eight 16-bit values errs by at most three float32 roundings, far below the 16-bit result's.
// float16 rows reach it converted to float32 first, eight rows at a time by F16C (accumulate_rows_in_float;
// Note [F16C conversions]), bfloat16 rows directly (their conversion is a shift).
template <typename T, typename P = std::conditional_t<std::is_same_v<T, BFloat16>, float, double>>
VT_LANE void accumulate_rows_impl(double* __restrict acc, const T* __restrict x, int64_t rows, int64_t stride,
                                  int64_t n) {
  int64_t r = 0;
  for (; r + 8 <= rows; r += 8) {
    const T* x0 = x + r * stride;
    const T *x1 = x0 + stride, *x2 = x1 + stride, *x3 = x2 + stride, *x4 = x3 + stride, *x5 = x4 + stride;
    const T *x6 = x5 + stride, *x7 = x6 + stride;
    for (int64_t i = 0; i < n; ++i)
      acc[i] += double(((P(x0[i]) + P(x1[i])) + (P(x2[i]) + P(x3[i]))) +
                       ((P(x4[i]) + P(x5[i])) + (P(x6[i]) + P(x7[i]))));
  }
  for (; r + 4 <= rows; r += 4) {
    const T *x0 = x + r * stride, *x1 = x0 + stride, *x2 = x1 + stride, *x3 = x2 + stride;
    for (int64_t i = 0; i < n; ++i) acc[i] += double((P(x0[i]) + P(x1[i])) + (P(x2[i]) + P(x3[i])));
  }
  for (; r < rows; ++r) accumulate_impl(acc, x + r * stride, n);
}

// accumulate_rows for one input dtype (every family has the four of cpu_vec_math.h).
#define VT_ACCUMULATE_ROWS(TARGET, T)                                                                              \
  TARGET void accumulate_rows(double* acc, const T* x, int64_t rows, int64_t stride, int64_t n) {                  \
    accumulate_rows_impl(acc, x, rows, stride, n);                                                                 \
  }
// acc = extreme(acc, x) elementwise, NaN winning (selects, so the loop vectorises). Ties keep a, the earlier
// value, so the selection is associative: any grouping of a run picks its first extreme (or first NaN).
template <bool IsMax, typename T> VT_LANE T extreme_of(T a, T v) {
  const bool take = IsMax ? v > a : v < a;
  return a != a ? a : (take || v != v ? v : a);
}
template <bool IsMax>
VT_LANE void accumulate_extreme_impl(double* __restrict acc, const float* __restrict x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) acc[i] = extreme_of<IsMax>(acc[i], double(x[i]));
}
// rows x rows of stride `stride`: eight rows' extreme taken in float32 (exact, and by the associativity above
// the same value, sign of zero included), then one compare with the double accumulator. Comparing every row in
// double converted every value: the 16-bit amax(0) of [4096, 1024] ran at 2-3x torch's time on the devbox.
template <bool IsMax>
VT_LANE void accumulate_extreme_rows_impl(double* __restrict acc, const float* __restrict x, int64_t rows,
                                          int64_t stride, int64_t n) {
  auto e = [](float a, float v) { return extreme_of<IsMax>(a, v); };
  int64_t r = 0;
  for (; r + 8 <= rows; r += 8) {
    const float* x0 = x + r * stride;
    const float *x1 = x0 + stride, *x2 = x1 + stride, *x3 = x2 + stride, *x4 = x3 + stride, *x5 = x4 + stride;
    const float *x6 = x5 + stride, *x7 = x6 + stride;
    for (int64_t i = 0; i < n; ++i) {
      const float m = e(e(e(x0[i], x1[i]), e(x2[i], x3[i])), e(e(x4[i], x5[i]), e(x6[i], x7[i])));
      acc[i] = extreme_of<IsMax>(acc[i], double(m));
    }
  }
  for (; r + 4 <= rows; r += 4) {
    const float *x0 = x + r * stride, *x1 = x0 + stride, *x2 = x1 + stride, *x3 = x2 + stride;
    for (int64_t i = 0; i < n; ++i) acc[i] = extreme_of<IsMax>(acc[i], double(e(e(x0[i], x1[i]), e(x2[i], x3[i]))));
  }
  for (; r < rows; ++r) accumulate_extreme_impl<IsMax>(acc, x + r * stride, n);
}

// One more row k of an arg-extreme across rows: where the running extreme is not NaN and x beats it (or is NaN),
// x and k replace it; so the first extreme, or the first NaN, wins, as in MinMaxLane.
template <bool IsMax>
VT_LANE void arg_extreme_step_impl(float* __restrict best, int64_t* __restrict idx, const float* __restrict x,
                                   int64_t n, int64_t k) {
  for (int64_t i = 0; i < n; ++i) {
    const float b = best[i], v = x[i];
    const bool take = b == b && (v != v || (IsMax ? v > b : v < b));
    best[i] = take ? v : b;
    idx[i] = take ? k : idx[i];
  }
}

// Each row's sum_impl, the loop inside the family (one dispatch for many rows, not one per row).
#define VT_SUM_ROWS(TARGET, W, T)                                                                                  \
  TARGET void sum_rows(double* acc, int64_t acc_stride, const T* x, int64_t rows, int64_t stride, int64_t n) {     \
    for (int64_t r = 0; r < rows; ++r) acc[r * acc_stride] += sum_impl<W>(x + r * stride, n);                      \
  }

// The row entry points of one family.
#define VT_ROWS_FAMILY(NS, TARGET, W)                                                                              \
  namespace NS {                                                                                                   \
  TARGET float row_max(const float* x, int64_t n, float scale) { return row_max_impl<W>(x, n, scale); }            \
  TARGET int64_t arg_extreme(const float* x, int64_t n, bool is_max) {                                             \
    return is_max ? arg_extreme_impl<W, true>(x, n) : arg_extreme_impl<W, false>(x, n);                           \
  }                                                                                                                \
  TARGET void arg_extreme_step(float* best, int64_t* idx, const float* x, int64_t n, int64_t k, bool is_max) {       \
    return is_max ? arg_extreme_step_impl<true>(best, idx, x, n, k)                                                \
                  : arg_extreme_step_impl<false>(best, idx, x, n, k);                                              \
  }                                                                                                                \
  TARGET float row_extreme(const float* x, int64_t n, bool is_max) {                                               \
    bool nan = false;                                                                                              \
    const float best = is_max ? extreme_pass<W, true>(x, n, nan) : extreme_pass<W, false>(x, n, nan);              \
    return nan ? std::numeric_limits<float>::quiet_NaN() : best;                                                   \
  }                                                                                                                \
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
  TARGET double sum(const float* x, int64_t n) { return sum_impl<W>(x, n); }                                       \
  TARGET double sum(const double* x, int64_t n) { return sum_impl<W>(x, n); }                                      \
  TARGET double sum(const BFloat16* x, int64_t n) { return sum_impl<W>(x, n); }                                    \
  TARGET double sum_from_16bit(const float* x, int64_t n) { return sum_impl<W, float, true>(x, n); }               \
  TARGET void accumulate(double* acc, const float* x, int64_t n) { accumulate_impl(acc, x, n); }                   \
  TARGET void accumulate(double* acc, const double* x, int64_t n) { accumulate_impl(acc, x, n); }                  \
  TARGET void accumulate_extreme(double* acc, const float* x, int64_t n, bool is_max) {                            \
    return is_max ? accumulate_extreme_impl<true>(acc, x, n) : accumulate_extreme_impl<false>(acc, x, n);          \
  }                                                                                                                \
  TARGET void accumulate_extreme_rows(double* acc, const float* x, int64_t rows, int64_t stride, int64_t n,        \
                                      bool is_max) {                                                               \
    return is_max ? accumulate_extreme_rows_impl<true>(acc, x, rows, stride, n)                                    \
                  : accumulate_extreme_rows_impl<false>(acc, x, rows, stride, n);                                  \
  }                                                                                                                \
  VT_ACCUMULATE_ROWS(TARGET, float)                                                                                \
  VT_ACCUMULATE_ROWS(TARGET, double)                                                                               \
  VT_ACCUMULATE_ROWS(TARGET, BFloat16)                                                                             \
  TARGET void accumulate_rows_in_float(double* acc, const float* x, int64_t rows, int64_t stride, int64_t n) {     \
    accumulate_rows_impl<float, float>(acc, x, rows, stride, n);                                                   \
  }                                                                                                                \
  VT_SUM_ROWS(TARGET, W, float)                                                                                    \
  VT_SUM_ROWS(TARGET, W, double)                                                                                   \
  VT_SUM_ROWS(TARGET, W, BFloat16)                                                                                 \
  TARGET double dot(const float* a, const float* b, int64_t n) { return dot_impl<W>(a, b, n); }                    \
  TARGET void softmax_backward_row(const float* g, const float* out, float* y, int64_t n, float d, float scale) {  \
    softmax_backward_impl<false>(g, out, y, n, d, scale);                                                          \
  }                                                                                                                \
  TARGET void log_softmax_backward_row(const float* g, const float* out, float* y, int64_t n, float d,            \
                                       float scale) {                                                              \
    softmax_backward_impl<true>(g, out, y, n, d, scale);                                                           \
  }                                                                                                                \
  TARGET void norm_forward_row(const float* x, const float* w, const float* b, float* y, int64_t n, double eps,     \
                               bool rms, float* mu, float* rs) {                                                   \
    norm_forward_row_impl<W>(x, w, b, y, n, eps, rms, mu, rs);                                                     \
  }                                                                                                                \
  TARGET void norm_backward_row(const float* g, const float* x, const float* w, float* y, int64_t n, float mu,     \
                                float rs, bool rms) {                                                              \
    norm_backward_row_impl<W>(g, x, w, y, n, mu, rs, rms);                                                         \
  }                                                                                                                \
  TARGET void norm_affine_row(const float* g, const float* x, float* pw, float* pb, int64_t n, float mu,           \
                              float rs) {                                                                          \
    norm_affine_row_impl(g, x, pw, pb, n, mu, rs);                                                                 \
  }                                                                                                                \
  }
VT_CPU_MATH_FAMILIES(VT_ROWS_FAMILY)
#undef VT_ACCUMULATE_ROWS
#undef VT_SUM_ROWS

}  // namespace
}  // namespace lanes

using namespace lanes;

float row_max(const float* x, int64_t n, float scale) { VT_CPU_MATH_CALL(row_max(x, n, scale)) }
int64_t arg_extreme(const float* x, int64_t n, bool is_max) { VT_CPU_MATH_CALL(arg_extreme(x, n, is_max)) }
float row_extreme(const float* x, int64_t n, bool is_max) { VT_CPU_MATH_CALL(row_extreme(x, n, is_max)) }
void arg_extreme_step(float* best, int64_t* idx, const float* x, int64_t n, int64_t k, bool is_max) {
  VT_CPU_MATH_CALL(arg_extreme_step(best, idx, x, n, k, is_max))
}
float exp_sum(const float* x, float* y, int64_t n, float scale, float shift) {
  VT_CPU_MATH_CALL(exp_sum(x, y, n, scale, shift))
}
float sum_exp(const float* x, int64_t n, float scale, float shift) { VT_CPU_MATH_CALL(sum_exp(x, n, scale, shift)) }
void scale_by(float* y, int64_t n, float s) { VT_CPU_MATH_CALL(scale_by(y, n, s)) }
void log_softmax_row(const float* x, float* y, int64_t n, float scale, float shift, float log_sum) {
  VT_CPU_MATH_CALL(log_softmax_row(x, y, n, scale, shift, log_sum))
}
double sum(const float* x, int64_t n) { VT_CPU_MATH_CALL(sum(x, n)) }
double sum(const double* x, int64_t n) { VT_CPU_MATH_CALL(sum(x, n)) }
double sum(const BFloat16* x, int64_t n) { VT_CPU_MATH_CALL(sum(x, n)) }
double sum_from_16bit(const float* x, int64_t n) { VT_CPU_MATH_CALL(sum_from_16bit(x, n)) }
void accumulate(double* acc, const float* x, int64_t n) { VT_CPU_MATH_CALL(accumulate(acc, x, n)) }
void accumulate_extreme(double* acc, const float* x, int64_t n, bool is_max) {
  VT_CPU_MATH_CALL(accumulate_extreme(acc, x, n, is_max))
}
void accumulate_extreme_rows(double* acc, const float* x, int64_t rows, int64_t stride, int64_t n, bool is_max) {
  VT_CPU_MATH_CALL(accumulate_extreme_rows(acc, x, rows, stride, n, is_max))
}
void accumulate(double* acc, const double* x, int64_t n) { VT_CPU_MATH_CALL(accumulate(acc, x, n)) }
#define VT_ACCUMULATE_ROWS_CALL(T)                                                        \
  void accumulate_rows(double* acc, const T* x, int64_t rows, int64_t stride, int64_t n) { \
    VT_CPU_MATH_CALL(accumulate_rows(acc, x, rows, stride, n))                             \
  }
VT_ACCUMULATE_ROWS_CALL(float)
VT_ACCUMULATE_ROWS_CALL(double)
VT_ACCUMULATE_ROWS_CALL(BFloat16)
#undef VT_ACCUMULATE_ROWS_CALL
void accumulate_rows_in_float(double* acc, const float* x, int64_t rows, int64_t stride, int64_t n) {
  VT_CPU_MATH_CALL(accumulate_rows_in_float(acc, x, rows, stride, n))
}
#define VT_SUM_ROWS_CALL(T)                                                                                   \
  void sum_rows(double* acc, int64_t acc_stride, const T* x, int64_t rows, int64_t stride, int64_t n) {       \
    VT_CPU_MATH_CALL(sum_rows(acc, acc_stride, x, rows, stride, n))                                           \
  }
VT_SUM_ROWS_CALL(float)
VT_SUM_ROWS_CALL(double)
VT_SUM_ROWS_CALL(BFloat16)
#undef VT_SUM_ROWS_CALL
double dot(const float* a, const float* b, int64_t n) { VT_CPU_MATH_CALL(dot(a, b, n)) }
void softmax_backward_row(const float* g, const float* out, float* y, int64_t n, float d, float scale) {
  VT_CPU_MATH_CALL(softmax_backward_row(g, out, y, n, d, scale))
}
void log_softmax_backward_row(const float* g, const float* out, float* y, int64_t n, float d, float scale) {
  VT_CPU_MATH_CALL(log_softmax_backward_row(g, out, y, n, d, scale))
}
void norm_forward_row(const float* x, const float* w, const float* b, float* y, int64_t n, double eps, bool rms,
                      float* mu, float* rs) {
  VT_CPU_MATH_CALL(norm_forward_row(x, w, b, y, n, eps, rms, mu, rs))
}
void norm_backward_row(const float* g, const float* x, const float* w, float* y, int64_t n, float mu, float rs,
                       bool rms) {
  VT_CPU_MATH_CALL(norm_backward_row(g, x, w, y, n, mu, rs, rms))
}
void norm_affine_row(const float* g, const float* x, float* pw, float* pb, int64_t n, float mu, float rs) {
  VT_CPU_MATH_CALL(norm_affine_row(g, x, pw, pb, n, mu, rs))
}

}  // namespace vt::cpu_math
