#pragma once
// Note [Vector pow]: float32 x ** y for two tensors, as one lane function the loop clones vectorise (it was
// libm's powf per element, 1.7x torch's time). |x| ** y = exp(y log|x|) evaluated in double: log|x| from the
// float's exponent and an atanh series for its mantissa in [sqrt(1/2), sqrt(2)) (relative error ~1e-14), exp by
// 2^k exp(r) with |r| <= ln2 / 2 and a degree-12 Taylor polynomial; the double result rounds once to float, so
// the answer is the correctly rounded one except where the exact power lies within ~1e-13 of a rounding
// boundary. The special cases take C's pow rules as selects: x ** 0 = 1 and 1 ** y = 1 (NaN included),
// (-1) ** +-inf = 1, NaN elsewhere for a NaN operand or a finite negative x with a non-integer y, the sign of x kept
// for odd integer y, zeros and infinities through log|x| = -inf / +inf.
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

#include "cpu_vec_lanes.h"

namespace vt::cpu_math::lanes {

VT_LANE double log_abs_double(float x) {
  const uint32_t ab = std::bit_cast<uint32_t>(x) & 0x7fffffffu;
  const bool sub = ab < 0x00800000u;  // subnormal (or zero): scaled by 2^23 into the normal range first
  const uint32_t sb = sub ? std::bit_cast<uint32_t>(std::bit_cast<float>(ab) * 8388608.0f) : ab;
  int32_t e = int32_t(sb >> 23) - 127 - (sub ? 23 : 0);
  double m = double(std::bit_cast<float>((sb & 0x7fffffu) | 0x3f800000u));  // [1, 2)
  const bool high = m > 1.4142135623730951;
  m = high ? m * 0.5 : m;
  e += high ? 1 : 0;
  const double s = (m - 1.0) / (m + 1.0), s2 = s * s;  // log m = 2 atanh(s), |s| <= 0.1716
  double p = 1.0 / 17;
  p = p * s2 + 1.0 / 15;
  p = p * s2 + 1.0 / 13;
  p = p * s2 + 1.0 / 11;
  p = p * s2 + 1.0 / 9;
  p = p * s2 + 1.0 / 7;
  p = p * s2 + 1.0 / 5;
  p = p * s2 + 1.0 / 3;
  p = p * s2 + 1.0;
  const double lg = double(e) * 0.69314718055994530942 + 2.0 * s * p;
  const double inf = std::numeric_limits<double>::infinity();
  return ab == 0 ? -inf : ab == 0x7f800000u ? inf : lg;
}

// exp(t) for the float range: 0 below e^-104 (under the smallest subnormal), +inf above e^89.
VT_LANE double exp_double(double t) {
  const double tc = t > 89.0 ? 89.0 : t < -104.0 ? -104.0 : t;
  const double k = std::nearbyint(tc * 1.4426950408889634074);
  const double r = (tc - k * 0.693147180369123816490) - k * 1.90821492927058770002e-10;  // ln2 in two parts
  double p = 1.0 / 479001600;
  p = p * r + 1.0 / 39916800;
  p = p * r + 1.0 / 3628800;
  p = p * r + 1.0 / 362880;
  p = p * r + 1.0 / 40320;
  p = p * r + 1.0 / 5040;
  p = p * r + 1.0 / 720;
  p = p * r + 1.0 / 120;
  p = p * r + 1.0 / 24;
  p = p * r + 1.0 / 6;
  p = p * r + 0.5;
  p = p * r + 1.0;
  p = p * r + 1.0;
  const double kk = k == k ? k : 0.0;  // a NaN t (0 * inf) converts no NaN to an integer; its result is replaced
  const double scale = std::bit_cast<double>(uint64_t(int64_t(int32_t(kk)) + 1023) << 52);
  const double v = p * scale;
  return t > 89.0 ? std::numeric_limits<double>::infinity() : t < -104.0 ? 0.0 : v;  // NaN falls through as v
}

VT_LANE float pow_lane(float x, float y) {
  const float magnitude = float(exp_double(double(y) * log_abs_double(x)));
  const float ay = std::fabs(y);
  const bool y_int = std::trunc(y) == y;  // infinities count as even integers, as in C's pow
  const bool y_odd = y_int && ay < 16777216.0f && (int32_t(ay < 16777216.0f ? y : 0.0f) & 1);
  const bool x_neg = std::bit_cast<int32_t>(x) < 0;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  float r = x_neg && y_odd ? -magnitude : magnitude;
  r = x < 0.0f && x != -std::numeric_limits<float>::infinity() && !y_int ? nan : r;  // (-inf) ** 0.5 = inf
  r = x != x || y != y ? nan : r;
  r = y == 0.0f || x == 1.0f || (x == -1.0f && ay == std::numeric_limits<float>::infinity()) ? 1.0f : r;
  return r;
}

}  // namespace vt::cpu_math::lanes
