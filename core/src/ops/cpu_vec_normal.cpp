// The CPU's normal draws (randn, normal_, the normal initialisers) many at a time: NormalGen's sequence
// (core/src/ops/factories_impl.h: Philox4x32-10 blocks, 53-bit uniforms, Box-Muller in double) computed in
// vector lanes, instead of one block of four per call through libm's scalar log1p, cos and sin, which took
// 27 ms per million float32 draws on one core, five times torch's time.
//
// Note [Vector Box-Muller]: a block pair gives uniforms u1, u2 twice; each pair gives rad = sqrt(-2 log(1 - u1))
// (1 - u1 is exact for a 53-bit uniform, so this is log1p(-u1)), th = 2 pi u2 rounded to double, and the normals
// rad cos th, rad sin th. log, sin and cos are fdlibm's double algorithms written branch-free: log from
// s = f / (2 + f) with f = m - 1 for the significand m in [sqrt(1/2), sqrt(2)) and fdlibm's degree-14 polynomial;
// sin and cos from th - n pi/2 (pi/2 in three parts, each product exact, so the reduced argument is within an
// ulp) and fdlibm's kernels on [-pi/4, pi/4]. Each is within 1 ulp of the exact value, as libm's (the
// scalar NormalGen on the host) and CUDA's (the same NormalGen on the GPU) are, so the three agree to the last
// bits of a double and, after rounding to float32, in all but about one draw in ten million (tested against
// numpy's libm-based formula). This file is compiled without floating-point contraction: every instruction set
// computes the same bits, so a seed gives the same draws on every CPU.
#include <bit>
#include <cmath>

#include "cpu_vec_lanes.h"
#include "vt/core/cpu_vec_math.h"
#include "vt/core/philox.h"

namespace vt::cpu_math {
namespace lanes {
namespace {

constexpr double kTwoPi = 6.283185307179586;   // NormalGen's constant: th is the same double on every path
constexpr double kTwo52 = 4503599627370496.0;  // 2^52: an integer below it sits in a double's significand bits

// A uint32 as a double through the significand bits (the conversion vectorises without AVX-512's unsigned one).
VT_LANE double u32_to_double(uint32_t x) {
  return std::bit_cast<double>(0x4330000000000000ull | uint64_t(x)) - kTwo52;
}

// uniform_double(hi, lo) = ((hi << 21) | (lo >> 11)) 2^-53: the two parts occupy disjoint bits, so their sum
// in double is exact and equal.
VT_LANE double uniform_lane(uint32_t hi, uint32_t lo) {
  return u32_to_double(hi) * 0x1p-32 + u32_to_double(lo >> 11) * 0x1p-53;
}

// fdlibm's __ieee754_log for a normal positive x (here 1 - u1, in [2^-53, 1]).
VT_LANE double log_lane(double x) {
  const uint64_t bits = std::bit_cast<uint64_t>(x);
  // the significand scaled into [sqrt(1/2), sqrt(2)): high word of the significand above 0x6a09e is past sqrt(2)
  const uint32_t hx = uint32_t(bits >> 32) & 0x000fffffu;
  const uint64_t low = (hx + 0x95f64u) & 0x100000u;  // set when the significand is >= sqrt(2)
  const double f = std::bit_cast<double>((bits & 0x000fffffffffffffull) | (uint64_t(low ^ 0x3ff00000u) << 32)) - 1.0;
  const double k = double(int32_t(bits >> 52) - 1023 + int32_t(low >> 20));
  const double s = f / (2.0 + f), z = s * s, w = z * z;
  const double t1 = w * (3.999999999940941908e-01 + w * (2.222219843214978396e-01 + w * 1.531383769920937332e-01));
  const double t2 = z * (6.666666666666735130e-01 + w * (2.857142874366239149e-01 +
                         w * (1.818357216161805012e-01 + w * 1.479819860511658591e-01)));
  const double r = t2 + t1, hfsq = 0.5 * f * f;
  constexpr double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;
  // fdlibm takes the hfsq form where |f| is largest (x's own significand high word in [0x6147a, 0x6b851])
  const bool far = (int32_t(hx - 0x6147au) | int32_t(0x6b851u - hx)) > 0;
  const double far_v = k * ln2_hi - ((hfsq - (s * (hfsq + r) + k * ln2_lo)) - f);
  const double near_v = k * ln2_hi - ((s * (f - r) - k * ln2_lo) - f);
  return far ? far_v : near_v;
}

// fdlibm's __kernel_sin and __kernel_cos with no tail (|x| <= pi/4).
VT_LANE double sin_kernel(double x) {
  const double z = x * x, v = z * x;
  const double r = 8.33333333332248946124e-03 + z * (-1.98412698298579493134e-04 + z * (2.75573137070700676789e-06 +
                   z * (-2.50507602534068634195e-08 + z * 1.58969099521155010221e-10)));
  return x + v * (-1.66666666666666324348e-01 + z * r);
}
VT_LANE double cos_kernel(double x) {
  const double z = x * x;
  const double r = z * (4.16666666666666019037e-02 + z * (-1.38888888888741095749e-03 + z * (2.48015872894767294178e-05 +
                   z * (-2.75573143513906633035e-07 + z * (2.08757232129817482790e-09 + z * -1.13596475577881948265e-11)))));
  const double hz = 0.5 * z, w = 1.0 - hz;
  return w + (((1.0 - w) - hz) + z * r);
}

// The two normals of one uniform pair (u1 from words hi1/lo1, u2 from hi2/lo2): rad cos th and rad sin th.
VT_LANE void box_muller_lane(uint32_t hi1, uint32_t lo1, uint32_t hi2, uint32_t lo2, double& zc, double& zs) {
  const double rad = std::sqrt(-2.0 * log_lane(1.0 - uniform_lane(hi1, lo1)));
  const double th = kTwoPi * uniform_lane(hi2, lo2);                      // [0, 2 pi): the quadrant n is 0..4
  const double t = th * 6.36619772367581382433e-01 + 6755399441055744.0;  // round(th 2/pi) by 1.5 * 2^52
  const double n = t - 6755399441055744.0;
  const int64_t q = std::bit_cast<int64_t>(t) & 3;
  // pi/2 = p1 + p2 + p3, p1 and p2 of 33 bits: n p1 and n p2 are exact, th - n p1 too (Sterbenz)
  const double x = ((th - n * 1.57079632673412561417e+00) - n * 6.07710050630396597660e-11) -
                   n * 2.02226624879595063154e-21;
  const double s = sin_kernel(x), c = cos_kernel(x);
  zs = rad * (q == 0 ? s : q == 1 ? c : q == 2 ? -s : -c);
  zc = rad * (q == 0 ? c : q == 1 ? -s : q == 2 ? -c : s);
}

#define VT_NORMAL_FAMILY(NS, TARGET, W)                                                                       \
  namespace NS {                                                                                              \
  TARGET void standard_normals(uint64_t seed, uint64_t offset, int64_t blk0, int64_t blocks, double* z0,      \
                               double* z1, double* z2, double* z3) {                                          \
    for (int64_t j = 0; j < blocks; ++j) { /* NormalGen's order: pair 0's cos and sin, then pair 1's */       \
      uint32_t a[4], b[4];                                                                                    \
      Philox4x32::block(seed, offset + uint64_t(blk0 + j) * 2, 0, a);                                         \
      Philox4x32::block(seed, offset + uint64_t(blk0 + j) * 2 + 1, 0, b);                                     \
      box_muller_lane(a[0], b[0], a[1], b[1], z0[j], z1[j]);                                                  \
      box_muller_lane(a[2], b[2], a[3], b[3], z2[j], z3[j]);                                                  \
    }                                                                                                         \
  }                                                                                                           \
  }
VT_CPU_MATH_FAMILIES(VT_NORMAL_FAMILY)

}  // namespace
}  // namespace lanes

using namespace lanes;

void standard_normals(uint64_t seed, uint64_t offset, int64_t blk0, int64_t blocks, double* z0, double* z1, double* z2,
                      double* z3) {
  VT_CPU_MATH_CALL(standard_normals(seed, offset, blk0, blocks, z0, z1, z2, z3))
}

}  // namespace vt::cpu_math
