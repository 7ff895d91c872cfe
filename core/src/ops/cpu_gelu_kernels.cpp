// Float32 exact gelu and its gradient on the CPU, in AVX2 + FMA lanes, as oneDNN computes them for torch
// (Note [gelu rounds as torch's oneDNN]). Self-contained: no vibetensor headers, so the lane code can be checked
// on its own against torch bit for bit; cpu_gelu.cpp runs it over TensorIterator loops.
#include "cpu_gelu.h"

#include <cmath>
#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

// Note [gelu rounds as torch's oneDNN]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// torch's CPU gelu(approximate='none') and gelu_backward do not call erf for a contiguous float32 tensor of
// more than one element: with oneDNN enabled (the default) both go to oneDNN's eltwise_gelu_erf (Activation.cpp,
// use_mkldnn), whose JIT code is a fixed sequence of float operations, chosen by the CPU oneDNN finds:
//
//   avx512_core (AVX-512 F/BW/VL/DQ), forward: erf(x / sqrt2) from a table of 25 degree-5 polynomials in
//     |x| (index: the exponent and two mantissa bits of |x|, clamped to [1, 24], 23 past 5.54), then
//     gelu = x * (1 + erf) * 0.5. No exp, no division.
//   every x86 ISA below that (AVX2 here), forward: Abramowitz-Stegun 7.1.26 with oneDNN's own exp,
//     z = x / sqrt2 (a product with the float of 1/sqrt2), t = 1 / (1 + p |z|),
//     erf = sign(z) (1 - t P(t) exp(-z^2)), gelu = S + S erf with S = 0.5 x (one FMA).
//   backward, every ISA: the same erf, and d = (0.5 + z exp(-z^2) / sqrt(pi)) + 0.5 erf (one FMA),
//     times the incoming gradient.
//   exp (oneDNN's): clamp to [ln FLT_MIN, ln FLT_MAX], n = floor(v log2e + 0.5), r = v - n ln2 (FMA), a
//     degree-5 polynomial by Horner FMAs, times 2^(n-1) built from the exponent bits, times 2; inputs below
//     ln FLT_MIN give 0.
//
// A&S is only accurate to ~1.5e-7 absolutely, which is many float ulp where 1 + erf cancels (x < -2), and the
// minimax tables differ from A&S by a few ulp. tests/models/test_gpt.py's six-step AdamW comparison with torch
// is sensitive at that level (probably through gradients near zero, which Adam's normalisation turns into
// full-size steps): a float64-exact gelu and a cheaper ~2-ulp polynomial both moved the parameters past its
// tolerance. So the lanes below repeat oneDNN's operations one for one: the same float constants, the same
// order, an FMA exactly where oneDNN issues one and nowhere else (a separate multiply and add round twice, an
// FMA once, and that alone changes results; the file is built with -ffp-contract=off so the compiler cannot
// fuse them either), min/max with the x86 NaN rule (the second operand wins), ordered compares. The result is
// then torch's bit for bit, NaN and infinities included (gelu(-inf) is NaN: S + S erf is -inf + inf). Checked
// against torch 2.13 (oneDNN 3.12, AVX2) for all 2^32 float32 inputs, forward and backward with random
// gradients: no difference. The minimax forward (forward_minimax_avx512) was checked against torch 2.13 on an
// AVX-512 machine (AMD EPYC) for all 2^32 float32 inputs: no difference. tests/core/test_gelu_like_torch.py
// compares the two wherever it runs (a sweep of bit patterns, odd sizes, layouts).
//
// What this does not copy: torch's other gelu paths. For a non-contiguous input or a one-element tensor torch
// uses ATen's kernel instead (its own vectorised A&S with Sleef's exp in blocks of 16 and libm erff for the
// rest of a row), so torch's result depends on the layout and on where a row ends. vibetensor computes every
// layout with the lanes above (a strided input is gathered into a buffer), so gelu(x) does not depend on how x
// is laid out; only one-element tensors take ATen's scalar formula with libm, as torch does. A CPU without
// AVX2 + FMA keeps the libm formula (oneDNN's SSE4.1/AVX code rounds its unfused multiply-adds differently).
//
// The AVX-512 table is oneDNN's (Apache-2.0, src/cpu/x64/injectors/jit_uni_eltwise_injector.cpp, v3.12 as
// shipped with torch 2.13); it is data, needed as is for the rounding to agree. That path is emulated here
// with AVX2 gathers (the lanes' arithmetic is the same on either register width).

namespace vt::cpu_gelu {
namespace {

#if defined(__x86_64__)

// minimax table: kMinimax[d][i] is the degree-d coefficient of polynomial i (rows padded to 32).
constexpr uint32_t kMinimax[6][32] = {
    {0xa6f2cb94, 0x32827792, 0x3381cc0c, 0x34523d4a, 0x351ac44d, 0x35f36d88, 0x36ee8229, 0x37b8a3bb,
     0x3867a213, 0x3940033b, 0x3a2a5a1d, 0x3ae35863, 0x3b7828f2, 0x3c08b14b, 0x3c515ed3, 0xbb503236,
     0xbd8d8e5e, 0xbe8abcd9, 0xbf0c19a2, 0xbeccb328, 0x3e176ced, 0x3f470d99, 0x3f7abb28, 0x3f800000,
     0, 0, 0, 0, 0, 0, 0, 0},
    {0x3f4c422a, 0x3f4c421f, 0x3f4c4207, 0x3f4c41cb, 0x3f4c413b, 0x3f4c3fad, 0x3f4c3a2f, 0x3f4c2d40,
     0x3f4c146a, 0x3f4bc341, 0x3f4ad08c, 0x3f48f8cf, 0x3f45fac7, 0x3f404e07, 0x3f3b980f, 0x3f48dff3,
     0x3f78b21b, 0x3fbb0704, 0x40019c32, 0x3fe536d6, 0x3f81331e, 0x3e6c8684, 0x3c98f936, 0,
     0x3f800000, 0, 0, 0, 0, 0, 0, 0},
    {0xb62173f4, 0x3735e4cf, 0x37f2ff89, 0x388c23be, 0x3917535c, 0x39ab2ab0, 0x3a60fadb, 0x3af9b960,
     0x3b6e5491, 0x3c0a4ec5, 0x3ca5aa8c, 0x3d2138d9, 0x3d8737d4, 0x3ddfb660, 0x3e0f27ab, 0x3d94004b,
     0xbe0efdeb, 0xbf1d96c3, 0xbf89db58, 0xbf6d9897, 0xbef69fb8, 0xbdc4f8a8, 0xbbde6422, 0,
     0, 0, 0, 0, 0, 0, 0, 0},
    {0xbe081a19, 0xbe084570, 0xbe08639b, 0xbe089837, 0xbe08f409, 0xbe09ab95, 0xbe0b66d0, 0xbe0e400a,
     0xbe124df8, 0xbe1bde02, 0xbe2f19c9, 0xbe4931bf, 0xbe685fbc, 0xbe89c95f, 0xbe96cbca, 0xbe8044aa,
     0xbe0550f2, 0x3dcfd6a1, 0x3e94c826, 0x3e79345f, 0x3decec91, 0x3ca46568, 0x3aa1e00a, 0,
     0, 0, 0, 0, 0, 0, 0, 0},
    {0xba3d61db, 0x39f097a3, 0x3a5845dc, 0x3ab1fa35, 0x3b0cefb8, 0x3b653ab6, 0x3bcae527, 0x3c221712,
     0x3c6c5840, 0x3cc0a703, 0x3d1dcc19, 0x3d63656d, 0x3d955907, 0x3dbf9910, 0x3dd53f69, 0x3db7dcef,
     0x3d639ebe, 0xba6ede48, 0xbd22be69, 0xbd041cf1, 0xbc64f5ab, 0xbb097a32, 0xb8ebf380, 0,
     0, 0, 0, 0, 0, 0, 0, 0},
    {0x3cb7d80c, 0x3c9b6050, 0x3c978d11, 0x3c92e850, 0x3c8d058b, 0x3c848454, 0x3c6cd623, 0x3c4c824b,
     0x3c2a7935, 0x3be0b390, 0x3b0651ac, 0xbb232f53, 0xbbd42fa0, 0xbc2c5366, 0xbc492c9e, 0xbc2a7aa6,
     0xbbd55d04, 0xba823a76, 0x3b102aa8, 0x3ae25a7e, 0x3a31f792, 0x38b84375, 0x3689bb5a, 0,
     0, 0, 0, 0, 0, 0, 0, 0}};

#define VT_AVX2 __attribute__((target("avx2,fma"), always_inline)) static inline
#define VT_AVX2_FN __attribute__((target("avx2,fma")))

VT_AVX2 __m256 bits(uint32_t b) { return _mm256_castsi256_ps(_mm256_set1_epi32(int32_t(b))); }

constexpr uint32_t kOne = 0x3f800000, kHalf = 0x3f000000, kTwo = 0x40000000, kSign = 0x80000000,
                   kAbs = 0x7fffffff;
constexpr uint32_t kInvSqrt2 = 0x3f3504f3, kInvSqrtPi = 0x3f106eba;  // floats of 1/sqrt(2), 1/sqrt(pi)
constexpr uint32_t kAsP = 0x3ea7ba05;                                 // 0.3275911
constexpr uint32_t kAs[5] = {0x3e827906, 0xbe91a98e, 0x3fb5f0e3, 0xbfba00e3, 0x3f87dc22};  // a1..a5
constexpr uint32_t kLog2e = 0x3fb8aa3b, kLn2 = 0x3f317218, kLnFltMax = 0x42b17218, kLnFltMin = 0xc2aeac50;
constexpr uint32_t kExp[5] = {0x3f7ffffb, 0x3efffee3, 0x3e2aad40, 0x3d2b9d0d, 0x3c07cfce};  // c1..c5

// oneDNN's exp (Note [gelu rounds as torch's oneDNN]). A NaN input clamps to ln FLT_MAX (min keeps its second
// operand); the callers' results are NaN through their other operand anyway.
VT_AVX2 __m256 exp_lanes(__m256 v) {
  const __m256 lo = bits(kLnFltMin);
  __m256 under = _mm256_cmp_ps(v, lo, _CMP_LT_OS);
  v = _mm256_max_ps(_mm256_min_ps(v, bits(kLnFltMax)), lo);
  __m256 n = _mm256_floor_ps(_mm256_add_ps(_mm256_mul_ps(v, bits(kLog2e)), bits(kHalf)));  // no FMA here
  __m256 r = _mm256_fnmadd_ps(n, bits(kLn2), v);
  __m256i e = _mm256_cvtps_epi32(_mm256_sub_ps(n, bits(kOne)));  // 2^(n-1): n may be 128
  e = _mm256_slli_epi32(_mm256_add_epi32(e, _mm256_set1_epi32(127)), 23);
  e = _mm256_andnot_si256(_mm256_castps_si256(under), e);
  __m256 p = bits(kExp[4]);
  for (int k = 3; k >= 0; --k) p = _mm256_fmadd_ps(p, r, bits(kExp[k]));
  p = _mm256_fmadd_ps(p, r, bits(kOne));
  return _mm256_mul_ps(_mm256_mul_ps(p, _mm256_castsi256_ps(e)), bits(kTwo));
}

// A&S: 1 - t P(t) exp(-z^2) with the sign of z, from t and -exp(-z^2).
VT_AVX2 __m256 as_erf(__m256 t, __m256 neg_e, __m256 sign) {
  __m256 m = _mm256_mul_ps(neg_e, t);
  __m256 p = bits(kAs[4]);
  for (int k = 3; k >= 0; --k) p = _mm256_fmadd_ps(p, t, bits(kAs[k]));
  return _mm256_xor_ps(_mm256_fmadd_ps(m, p, bits(kOne)), sign);
}

VT_AVX2 __m256 as_t(__m256 z) {  // 1 / (1 + p |z|)
  __m256 den = _mm256_fmadd_ps(bits(kAsP), _mm256_and_ps(z, bits(kAbs)), bits(kOne));
  return _mm256_div_ps(bits(kOne), den);
}

VT_AVX2 __m256 gelu_as(__m256 x) {
  __m256 z = _mm256_mul_ps(x, bits(kInvSqrt2));
  __m256 t = as_t(z);
  __m256 neg_e = _mm256_xor_ps(exp_lanes(_mm256_xor_ps(_mm256_mul_ps(z, z), bits(kSign))), bits(kSign));
  __m256 erf = as_erf(t, neg_e, _mm256_and_ps(x, bits(kSign)));
  __m256 s = _mm256_mul_ps(x, bits(kHalf));
  return _mm256_fmadd_ps(erf, s, s);
}

VT_AVX2 __m256 gelu_minimax(__m256 x) {
  __m256 ax = _mm256_and_ps(x, bits(kAbs));
  // polynomial index: exponent and two mantissa bits of |x|, biased (an arithmetic shift keeps subnormals low)
  __m256i idx = _mm256_srai_epi32(_mm256_add_epi32(_mm256_castps_si256(ax), _mm256_set1_epi32(int32_t(0xc21fffff))), 21);
  idx = _mm256_min_epi32(_mm256_max_epi32(idx, _mm256_set1_epi32(1)), _mm256_set1_epi32(24));
  __m256 past = _mm256_cmp_ps(bits(0x40b15cee), ax, _CMP_LT_OS);  // |x| > 5.54: erf rounds to 1
  idx = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(idx), _mm256_castsi256_ps(_mm256_set1_epi32(23)), past));
  const float* table = reinterpret_cast<const float*>(&kMinimax[0][0]);
  __m256 p = _mm256_i32gather_ps(table + 5 * 32, idx, 4);
  for (int d = 4; d >= 0; --d) p = _mm256_fmadd_ps(p, ax, _mm256_i32gather_ps(table + d * 32, idx, 4));
  p = _mm256_add_ps(_mm256_xor_ps(p, _mm256_and_ps(x, bits(kSign))), bits(kOne));
  return _mm256_mul_ps(_mm256_mul_ps(x, p), bits(kHalf));
}

VT_AVX2 __m256 gelu_grad_as(__m256 x) {
  __m256 z = _mm256_mul_ps(x, bits(kInvSqrt2));
  __m256 e = exp_lanes(_mm256_xor_ps(_mm256_mul_ps(z, z), bits(kSign)));
  __m256 zpdf = _mm256_mul_ps(_mm256_mul_ps(z, bits(kInvSqrtPi)), e);
  __m256 t = as_t(z);
  __m256 erf = as_erf(t, _mm256_xor_ps(e, bits(kSign)), _mm256_and_ps(z, bits(kSign)));
  return _mm256_fmadd_ps(erf, bits(kHalf), _mm256_add_ps(zpdf, bits(kHalf)));
}

// Loads and stores of n < 8 lanes go through a zeroed buffer: lanes are independent, so the tail rounds as a
// full vector does.
template <Model M> VT_AVX2 __m256 fwd(__m256 x) {
  if constexpr (M == Model::Minimax) return gelu_minimax(x);
  else return gelu_as(x);
}

template <Model M> VT_AVX2_FN void forward_avx2(const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m256 a = fwd<M>(_mm256_loadu_ps(x + i)), b = fwd<M>(_mm256_loadu_ps(x + i + 8));
    _mm256_storeu_ps(y + i, a);
    _mm256_storeu_ps(y + i + 8, b);
  }
  for (; i < n; i += 8) {
    if (i + 8 <= n) {
      _mm256_storeu_ps(y + i, fwd<M>(_mm256_loadu_ps(x + i)));
      continue;
    }
    float buf[8] = {};
    std::memcpy(buf, x + i, size_t(n - i) * sizeof(float));
    _mm256_storeu_ps(buf, fwd<M>(_mm256_loadu_ps(buf)));
    std::memcpy(y + i, buf, size_t(n - i) * sizeof(float));
  }
}

VT_AVX2_FN void backward_avx2(const float* g, const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_mul_ps(gelu_grad_as(_mm256_loadu_ps(x + i)), _mm256_loadu_ps(g + i)));
  if (i < n) {
    float bx[8] = {}, bg[8] = {};
    std::memcpy(bx, x + i, size_t(n - i) * sizeof(float));
    std::memcpy(bg, g + i, size_t(n - i) * sizeof(float));
    _mm256_storeu_ps(bx, _mm256_mul_ps(gelu_grad_as(_mm256_loadu_ps(bx)), _mm256_loadu_ps(bg)));
    std::memcpy(y + i, bx, size_t(n - i) * sizeof(float));
  }
}

// The minimax forward on 16 lanes, for CPUs with AVX-512 (where the minimax model is the default): the operations
// of gelu_minimax, with each 32-entry coefficient row held in two registers and looked up with a two-register
// permute (as oneDNN's AVX-512 kernel does) instead of eight-lane gathers, which cost most of the AVX2 version's
// time (4.2 ms for 4M floats against torch's 1.1). Same values, same operations: the same bits.
#define VT_AVX512 __attribute__((target("avx512f"), always_inline)) static inline
#define VT_AVX512_FN __attribute__((target("avx512f")))
// GCC 12's AVX-512 intrinsics start their unmasked forms from _mm512_undefined_epi32(), which
// -Wmaybe-uninitialized reports once inlined; every lane is written, so the warning is silenced here.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

VT_AVX512 __m512i ibits16(uint32_t b) { return _mm512_set1_epi32(int32_t(b)); }

VT_AVX512 __m512 gelu_minimax16(__m512 x, const __m512* rows) {
  const __m512i xi = _mm512_castps_si512(x);
  const __m512i axi = _mm512_and_si512(xi, ibits16(kAbs));
  const __m512 ax = _mm512_castsi512_ps(axi);
  __m512i idx = _mm512_srai_epi32(_mm512_add_epi32(axi, ibits16(0xc21fffff)), 21);
  idx = _mm512_min_epi32(_mm512_max_epi32(idx, _mm512_set1_epi32(1)), _mm512_set1_epi32(24));
  const __mmask16 past = _mm512_cmp_ps_mask(_mm512_castsi512_ps(ibits16(0x40b15cee)), ax, _CMP_LT_OS);
  idx = _mm512_mask_mov_epi32(idx, past, _mm512_set1_epi32(23));
  __m512 p = _mm512_permutex2var_ps(rows[10], idx, rows[11]);
  for (int d = 4; d >= 0; --d) p = _mm512_fmadd_ps(p, ax, _mm512_permutex2var_ps(rows[2 * d], idx, rows[2 * d + 1]));
  const __m512i sign = _mm512_and_si512(xi, ibits16(kSign));
  p = _mm512_add_ps(_mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(p), sign)),
                    _mm512_castsi512_ps(ibits16(kOne)));
  return _mm512_mul_ps(_mm512_mul_ps(x, p), _mm512_castsi512_ps(ibits16(kHalf)));
}

VT_AVX512_FN void forward_minimax_avx512(const float* x, float* y, int64_t n) {
  const float* table = reinterpret_cast<const float*>(&kMinimax[0][0]);
  __m512 rows[12];
  for (int r = 0; r < 12; ++r) rows[r] = _mm512_loadu_ps(table + 16 * r);  // row d: rows[2d], rows[2d + 1]
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, gelu_minimax16(_mm512_loadu_ps(x + i), rows));
  if (i < n) {  // the tail in masked lanes (lanes are independent: the same bits as a full vector)
    const __mmask16 m = __mmask16((1u << (n - i)) - 1u);
    _mm512_mask_storeu_ps(y + i, m, gelu_minimax16(_mm512_maskz_loadu_ps(m, x + i), rows));
  }
}

#pragma GCC diagnostic pop

bool has_avx2_fma() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
// oneDNN's avx512_core: F, BW, VL and DQ.
bool has_avx512_core() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
}

#endif  // __x86_64__

// torch's ATen scalar formulas (one-element tensors, and CPUs without AVX2 + FMA): libm erff and expf.
void forward_libm(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = scalar_forward(x[i]);
}
void backward_libm(const float* g, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = scalar_backward(g[i], x[i]);
}

Model default_model() {
#if defined(__x86_64__)
  if (has_avx2_fma()) return has_avx512_core() ? Model::Minimax : Model::AbramowitzStegun;
#endif
  return Model::Libm;
}

Model& active() {
  static Model m = default_model();
  return m;
}

}  // namespace

float scalar_forward(float x) {
  const float k_alpha = float(M_SQRT1_2);
  return x * 0.5f * (1.f + std::erf(x * k_alpha));
}

float scalar_backward(float g, float x) {
  const float k_alpha = float(M_SQRT1_2);
  const float k_beta = float(M_2_SQRTPI * M_SQRT1_2 * 0.5);
  const float cdf = 0.5f * (1.f + std::erf(x * k_alpha));
  const float pdf = k_beta * std::exp(x * x * -0.5f);
  return g * (cdf + x * pdf);
}

Model active_model() { return active(); }

bool try_set_model(Model m) {
#if defined(__x86_64__)
  if (m != Model::Libm && !has_avx2_fma()) return false;
#else
  if (m != Model::Libm) return false;
#endif
  active() = m;
  return true;
}

void forward(const float* x, float* y, int64_t n) {
#if defined(__x86_64__)
  switch (active()) {
    case Model::Minimax: {
      static const bool avx512 = has_avx512_core();
      return avx512 ? forward_minimax_avx512(x, y, n) : forward_avx2<Model::Minimax>(x, y, n);
    }
    case Model::AbramowitzStegun:
      return forward_avx2<Model::AbramowitzStegun>(x, y, n);
    case Model::Libm:
      break;
  }
#endif
  forward_libm(x, y, n);
}

void backward(const float* g, const float* x, float* y, int64_t n) {
#if defined(__x86_64__)
  if (active() != Model::Libm) return backward_avx2(g, x, y, n);  // A&S under both forward models
#endif
  backward_libm(g, x, y, n);
}

}  // namespace vt::cpu_gelu
