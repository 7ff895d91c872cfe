// Vectorised float32 elementwise functions - exp, log, tanh and their kin, and two activation gradients
// (interface and accuracy in vt/core/cpu_vec_math.h; the lanes in cpu_vec_lanes.h) - and the instruction set
// every cpu_math function runs with. Each function is one loop over a lane function, compiled once per family
// (AVX-512, AVX2 + FMA, the baseline) with per-function target attributes, as the GEMM micro-kernels are (Note
// [GEMM kernel selection]); the widest family the CPU supports is picked once, and set_isa switches it for tests.
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "cpu_vec_lanes.h"
#include "cpu_vec_pow.h"
#include "vt/core/cpu_vec_math.h"
#include "vt/core/error.h"
#include "vt/core/half.h"

namespace vt::cpu_math {
namespace lanes {
namespace {

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

// The 16-bit floats to and from float32, rounding to nearest even (half.h's conversions, which select instead
// of branching, so these loops vectorise).
template <typename H> VT_LANE void to_float_impl(const H* __restrict x, float* __restrict y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = float(x[i]);
}
#if defined(__x86_64__)
// Note [F16C conversions]: float16 -> float32 in the avx2 and avx512 families is the F16C instruction, eight
// values at a time (exact: every half is a float; a signalling NaN comes out quiet, as from torch's vector
// conversion, so copy_'s cast keeps half.h's loop, which keeps it). half.h's branch-free bit conversion,
// vectorised, still took about ten operations a value: a float16 sum over the leading dims of [4096, 1024] ran
// 6x torch's time on the 2-core devbox. A function of its own, not inlined, carries the target: the generic
// family never calls it.
__attribute__((target("avx,f16c"))) int64_t f16c_to_float(const Half* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i))));
  return i;
}
// float32 -> float16 the same way, rounding to nearest even as half.h does (overflow to inf, subnormals
// rounded once); a NaN keeps its sign and the top of its payload, quiet, as torch's vector cast gives it
// (half.h's scalar conversion returns the canonical 0x7e00 instead).
__attribute__((target("avx,f16c"))) int64_t f16c_from_float(const float* x, Half* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
  return i;
}
#else
int64_t f16c_to_float(const Half*, float*, int64_t) { return 0; }
int64_t f16c_from_float(const float*, Half*, int64_t) { return 0; }
#endif
template <typename H> VT_LANE void from_float_impl(const float* __restrict x, H* __restrict y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = H(x[i]);
}

template <int W, bool Cos> VT_LANE void sin_cos_array(const float* x, float* y, int64_t n) {
  if (max_abs_impl<W>(x, n) <= kSinCosLimit) return map(x, y, n, sin_cos_lane<Cos>);  // NaN never wins the max
  for (int64_t i = 0; i < n; ++i) y[i] = Cos ? std::cos(x[i]) : std::sin(x[i]);
}


bool supports(Isa isa) {
#if defined(__x86_64__)
  __builtin_cpu_init();
  // the avx2 and avx512 families also convert float16 with F16C (Note [F16C conversions])
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
  if (isa == Isa::Avx512) return avx2 && __builtin_cpu_supports("avx512f");
  if (isa == Isa::Avx2) return avx2;
#endif
  return isa == Isa::Generic;
}

Isa& active() {
  static Isa isa = supports(Isa::Avx512) ? Isa::Avx512 : supports(Isa::Avx2) ? Isa::Avx2 : Isa::Generic;
  return isa;
}

// The elementwise entry points of one family.
#define VT_ELEMENTWISE_FAMILY(NS, TARGET, W)                                                                       \
  namespace NS {                                                                                                   \
  TARGET void exp(const float* x, float* y, int64_t n) { map(x, y, n, exp_lane); }                                 \
  TARGET void sigmoid(const float* x, float* y, int64_t n) { map(x, y, n, sigmoid_lane); }                         \
  TARGET void silu(const float* x, float* y, int64_t n) { map(x, y, n, silu_lane); }                               \
  TARGET void tanh(const float* x, float* y, int64_t n) { map(x, y, n, tanh_lane); }                               \
  TARGET void erf(const float* x, float* y, int64_t n) { map(x, y, n, erf_lane); }                                 \
  TARGET void gelu(const float* x, float* y, int64_t n) { map(x, y, n, gelu_lane); }                               \
  TARGET void gelu_backward(const float* g, const float* x, float* y, int64_t n) {                                 \
    map2(g, x, y, n, gelu_backward_lane);                                                                          \
  }                                                                                                                \
  TARGET void gelu_tanh(const float* x, float* y, int64_t n) { map(x, y, n, gelu_tanh_lane); }                     \
  TARGET void pow(const float* x, const float* e, float* y, int64_t n) { map2(x, e, y, n, pow_lane); }             \
  TARGET void log(const float* x, float* y, int64_t n) { map(x, y, n, log_lane); }                                 \
  TARGET void log1p(const float* x, float* y, int64_t n) { map(x, y, n, log1p_lane); }                             \
  TARGET void expm1(const float* x, float* y, int64_t n) { map(x, y, n, expm1_lane); }                             \
  TARGET void logsigmoid(const float* x, float* y, int64_t n) { map(x, y, n, logsigmoid_lane); }                   \
  TARGET void mish(const float* x, float* y, int64_t n) { map(x, y, n, mish_lane); }                               \
  TARGET void sin(const float* x, float* y, int64_t n) { sin_cos_array<W, false>(x, y, n); }                       \
  TARGET void cos(const float* x, float* y, int64_t n) { sin_cos_array<W, true>(x, y, n); }                        \
  TARGET void softplus(const float* x, float* y, int64_t n, float beta, float threshold) {                         \
    map(x, y, n, [=](float v) { return softplus_lane(v, beta, threshold); });                                      \
  }                                                                                                                \
  TARGET void elu(const float* x, float* y, int64_t n, float alpha) {                                              \
    map(x, y, n, [=](float v) { return elu_lane(v, alpha); });                                                     \
  }                                                                                                                \
  TARGET void gelu_tanh_backward(const float* g, const float* x, float* y, int64_t n) {                            \
    map2(g, x, y, n, gelu_tanh_backward_lane);                                                                     \
  }                                                                                                                \
  TARGET void silu_backward(const float* g, const float* x, float* y, int64_t n) {                                 \
    map2(g, x, y, n, silu_backward_lane);                                                                          \
  }                                                                                                                \
  TARGET void to_float(const Half* x, float* y, int64_t n) {                                                       \
    const int64_t done = W >= 8 ? f16c_to_float(x, y, n) : 0; /* Note [F16C conversions] */                       \
    to_float_impl(x + done, y + done, n - done);                                                                   \
  }                                                                                                                \
  TARGET void to_float(const BFloat16* x, float* y, int64_t n) { to_float_impl(x, y, n); }                         \
  TARGET void from_float(const float* x, Half* y, int64_t n) {                                                     \
    const int64_t done = W >= 8 ? f16c_from_float(x, y, n) : 0; /* Note [F16C conversions] */                     \
    from_float_impl(x + done, y + done, n - done);                                                                 \
  }                                                                                                                \
  TARGET void from_float(const float* x, BFloat16* y, int64_t n) { from_float_impl(x, y, n); }                     \
  }
VT_CPU_MATH_FAMILIES(VT_ELEMENTWISE_FAMILY)

}  // namespace

Isa active_isa() { return active(); }

}  // namespace lanes

using namespace lanes;

void exp(const float* x, float* y, int64_t n) { VT_CPU_MATH_CALL(exp(x, y, n)) }
void sigmoid(const float* x, float* y, int64_t n) { VT_CPU_MATH_CALL(sigmoid(x, y, n)) }
void silu(const float* x, float* y, int64_t n) { VT_CPU_MATH_CALL(silu(x, y, n)) }
void tanh(const float* x, float* y, int64_t n) { VT_CPU_MATH_CALL(tanh(x, y, n)) }
void erf(const float* x, float* y, int64_t n) { VT_CPU_MATH_CALL(erf(x, y, n)) }
void gelu(const float* x, float* y, int64_t n) { VT_CPU_MATH_CALL(gelu(x, y, n)) }
void gelu_backward(const float* g, const float* x, float* y, int64_t n) { VT_CPU_MATH_CALL(gelu_backward(g, x, y, n)) }
void gelu_tanh(const float* x, float* y, int64_t n) { VT_CPU_MATH_CALL(gelu_tanh(x, y, n)) }
void pow(const float* x, const float* e, float* y, int64_t n) { VT_CPU_MATH_CALL(pow(x, e, y, n)) }
void log(const float* x, float* y, int64_t n) { VT_CPU_MATH_CALL(log(x, y, n)) }
void log1p(const float* x, float* y, int64_t n) { VT_CPU_MATH_CALL(log1p(x, y, n)) }
void expm1(const float* x, float* y, int64_t n) { VT_CPU_MATH_CALL(expm1(x, y, n)) }
void logsigmoid(const float* x, float* y, int64_t n) { VT_CPU_MATH_CALL(logsigmoid(x, y, n)) }
void mish(const float* x, float* y, int64_t n) { VT_CPU_MATH_CALL(mish(x, y, n)) }
void sin(const float* x, float* y, int64_t n) { VT_CPU_MATH_CALL(sin(x, y, n)) }
void cos(const float* x, float* y, int64_t n) { VT_CPU_MATH_CALL(cos(x, y, n)) }
void softplus(const float* x, float* y, int64_t n, float beta, float threshold) {
  VT_CPU_MATH_CALL(softplus(x, y, n, beta, threshold))
}
void elu(const float* x, float* y, int64_t n, float alpha) { VT_CPU_MATH_CALL(elu(x, y, n, alpha)) }
void gelu_tanh_backward(const float* g, const float* x, float* y, int64_t n) {
  VT_CPU_MATH_CALL(gelu_tanh_backward(g, x, y, n))
}
void silu_backward(const float* g, const float* x, float* y, int64_t n) { VT_CPU_MATH_CALL(silu_backward(g, x, y, n)) }
void to_float(const Half* x, float* y, int64_t n) { VT_CPU_MATH_CALL(to_float(x, y, n)) }
void to_float(const BFloat16* x, float* y, int64_t n) { VT_CPU_MATH_CALL(to_float(x, y, n)) }
void from_float(const float* x, Half* y, int64_t n) { VT_CPU_MATH_CALL(from_float(x, y, n)) }
void from_float(const float* x, BFloat16* y, int64_t n) { VT_CPU_MATH_CALL(from_float(x, y, n)) }

const char* isa() {
  switch (active()) {
    case Isa::Avx512:
      return "avx512";
    case Isa::Avx2:
      return "avx2";
    case Isa::Generic:
      break;
  }
  return "generic";
}

void set_isa(std::string_view name) {
  VT_CHECK(name == "avx512" || name == "avx2" || name == "generic", "set_cpu_math_isa: unknown instruction set '",
           name, "' (expected generic, avx2 or avx512)");
  const Isa want = name == "avx512" ? Isa::Avx512 : name == "avx2" ? Isa::Avx2 : Isa::Generic;
  VT_CHECK_KIND(NotImplemented, supports(want), "set_cpu_math_isa: this CPU does not support ", name);
  active() = want;
}

}  // namespace vt::cpu_math
