#pragma once
// 16-bit floating types stored as raw bits. Arithmetic happens in float: every op converts in, computes, and
// rounds back with round-to-nearest-even, which is what PyTorch's CPU kernels do for float16 and bfloat16.
//
// Note [Conversion instructions]: device code converts with the GPU's cvt instructions (cvt.rn.f16.f32,
// cvt.f32.f16, and cvt.rn.bf16.f32 from sm_80), one instruction each, where the host's branch-free bit arithmetic
// below takes a dozen; both round to nearest even and agree on every finite value, infinity and zero (a NaN stays a
// NaN; its payload bits may differ). With the bit arithmetic on the device, 16-bit kernels were bound by the
// conversions: a float16 exp or multiply by a scalar took 1.4-1.5x torch's time at 512 MiB on an H100, bfloat16
// gelu's gradient 1.43x, and the float16 kernels were the largest part of the elementwise files' device code.
#include <bit>
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define VT_HOST_DEVICE __host__ __device__
#else
#define VT_HOST_DEVICE
#endif

namespace vt {

namespace detail {
VT_HOST_DEVICE inline uint32_t f32_bits(float f) {
  uint32_t u;
  __builtin_memcpy(&u, &f, 4);
  return u;
}
VT_HOST_DEVICE inline float f32_from_bits(uint32_t u) {
  float f;
  __builtin_memcpy(&f, &u, 4);
  return f;
}

// On the host both conversions compute every case and select one (no branch), so the CPU's element loops vectorise
// them (Note [Loop clones]): a float16 a + b of 4M elements took 5.4 ms with the branches, torch 0.3.
VT_HOST_DEVICE inline uint16_t f32_to_f16_bits(float f) {
#if defined(__CUDA_ARCH__)  // Note [Conversion instructions]
  uint16_t h;
  asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
  return h;
#else
  const uint32_t x = f32_bits(f);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t ax = x & 0x7fffffffu;
  // Normal halves: rebias the exponent (127 -> 15) and round half to even.
  const uint32_t normal = (ax + 0xc8000fffu + ((ax >> 13) & 1u)) >> 13;
  // Below the smallest normal half (2^-14): adding 0.5f puts the value where one float ulp is 2^-24, the half
  // subnormal step, so the FPU's own round-to-nearest-even does the rounding.
  const uint32_t subnormal = f32_bits(f32_from_bits(ax) + 0.5f) - 0x3f000000u;
  uint32_t r = ax < 0x38800000u ? subnormal : normal;
  r = ax >= 0x477ff000u ? 0x7c00u : r;                                 // rounds past 65504: overflow to inf
  r = ax >= 0x7f800000u ? (ax > 0x7f800000u ? 0x7e00u : 0x7c00u) : r;  // nan / inf
  return uint16_t(sign | (r & 0x7fffu));
#endif
}

VT_HOST_DEVICE inline float f16_bits_to_f32(uint16_t h) {
#if defined(__CUDA_ARCH__)
  float f;
  asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
  return f;
#else
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  const uint32_t subnormal = f32_bits(float(mant) * 5.9604644775390625e-08f);  // mant * 2^-24
  const uint32_t normal = ((exp + 112u) << 23) | (mant << 13);
  const uint32_t r = exp == 0 ? subnormal : (exp == 31 ? 0x7f800000u | (mant << 13) : normal);
  return f32_from_bits(sign | r);
#endif
}

VT_HOST_DEVICE inline uint16_t f32_to_bf16_bits(float f) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  uint16_t b;
  asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(b) : "f"(f));
  return b;
#else
  uint32_t x = f32_bits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return uint16_t(((x >> 16) & 0x8000u) | 0x7fc0u);
  uint32_t bias = 0x7fffu + ((x >> 16) & 1u);
  return uint16_t((x + bias) >> 16);
#endif
}

VT_HOST_DEVICE inline float bf16_bits_to_f32(uint16_t b) { return f32_from_bits(uint32_t(b) << 16); }
}  // namespace detail

struct Half {
  uint16_t bits = 0;
  Half() = default;
  VT_HOST_DEVICE Half(float f) : bits(detail::f32_to_f16_bits(f)) {}
  VT_HOST_DEVICE operator float() const { return detail::f16_bits_to_f32(bits); }
  VT_HOST_DEVICE static Half from_bits(uint16_t b) {
    Half h;
    h.bits = b;
    return h;
  }
};

struct BFloat16 {
  uint16_t bits = 0;
  BFloat16() = default;
  VT_HOST_DEVICE BFloat16(float f) : bits(detail::f32_to_bf16_bits(f)) {}
  VT_HOST_DEVICE operator float() const { return detail::bf16_bits_to_f32(bits); }
  VT_HOST_DEVICE static BFloat16 from_bits(uint16_t b) {
    BFloat16 h;
    h.bits = b;
    return h;
  }
};

}  // namespace vt
