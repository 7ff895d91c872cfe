#pragma once
// Branch-free float exp and normal CDF for the CPU elementwise loops. glibc's expf and erff are scalar calls, so
// a loop that calls them runs one element at a time; these are straight-line polynomials over compares and
// selects, which the compiler vectorises in cpu_loops.h's contiguous loop. Used where one pass is dominated by
// them (gelu and its backward: erff alone was 5% of a MiniGPT step on the devbox). Float only: double keeps
// libm.
//
// Note [fast float exp/cdf accuracy]: exp is a Cody-Waite reduction to [-ln2/2, ln2/2] and a degree-6
// polynomial, within 2 ulp of expf over [-87.3, 88.7]; below -87.3 (where expf goes subnormal) it returns 0,
// above 88.7 +inf, and NaN stays NaN. normal_cdf uses the Numerical Recipes erfc fit (relative error < 1.2e-7
// over the whole line) on |x|, so gelu keeps its relative accuracy in the left tail, where 1 + erff cancels;
// at -inf it is exactly 0 and at +inf exactly 1, so gelu(+-inf) and its gradient are what libm gives.
#include <bit>
#include <cstdint>

namespace vt::cpu_math {

inline float exp(float x) {
  const float lo = -87.33654f, hi = 88.72283f;
  float c = x < lo ? lo : (x > hi ? hi : x);
  // n = round(c / ln2) by the 1.5 * 2^23 trick (exact for |c / ln2| < 2^22), then c - n ln2 in two parts.
  float n = (c * 1.44269504088896341f + 12582912.f) - 12582912.f;
  float r = c - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.f;
  // 2^n as a float: n in [-126, 128) here; n == 128 (c at hi) is split in two so the exponent stays finite.
  int32_t ni = int32_t(n);
  int32_t n1 = ni >> 1, n2 = ni - n1;
  float s1 = std::bit_cast<float>((n1 + 127) << 23), s2 = std::bit_cast<float>((n2 + 127) << 23);
  float y = p * s1 * s2;
  y = x < lo ? 0.f : y;
  y = x > hi ? __builtin_inff() : y;
  return x != x ? x : y;
}

// Phi(x) = P(N(0,1) <= x) = erfc(-x / sqrt2) / 2, from erfc of |x| / sqrt2 so both tails keep their relative
// accuracy (1 + erf(x) cancels in the left tail, where gelu needs Phi(x) for x down to -10).
inline float normal_cdf(float x) {
  float z = (x < 0.f ? -x : x) * 0.70710678118654752f;
  float t = 1.f / (1.f + 0.5f * z);
  float p = 0.17087277f;
  p = p * t + -0.82215223f;
  p = p * t + 1.48851587f;
  p = p * t + -1.13520398f;
  p = p * t + 0.27886807f;
  p = p * t + -0.18628806f;
  p = p * t + 0.09678418f;
  p = p * t + 0.37409196f;
  p = p * t + 1.00002368f;
  float half_erfc = 0.5f * t * exp(p * t - 1.26551223f - z * z);  // erfc(z) / 2
  return x < 0.f ? half_erfc : 1.f - half_erfc;
}

}  // namespace vt::cpu_math
