#pragma once
// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11): a counter-based
// generator. Output block i of stream (seed, offset) depends only on (seed, counter), so CPU threads and CUDA
// threads can each produce their own slice of one random sequence with no shared state. vibetensor's
// generator is (seed, offset): each op consumes a range of counters and advances the offset past it.
#include <cmath>
#include <cstdint>

#include "vt/core/half.h"

namespace vt {

struct Philox4x32 {
  static constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  static constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;

  VT_HOST_DEVICE static void round(uint32_t c[4], const uint32_t k[2]) {
    uint64_t p0 = uint64_t(kM0) * c[0];
    uint64_t p1 = uint64_t(kM1) * c[2];
    uint32_t hi0 = uint32_t(p0 >> 32), lo0 = uint32_t(p0);
    uint32_t hi1 = uint32_t(p1 >> 32), lo1 = uint32_t(p1);
    uint32_t n0 = hi1 ^ c[1] ^ k[0];
    uint32_t n2 = hi0 ^ c[3] ^ k[1];
    c[0] = n0;
    c[1] = lo1;
    c[2] = n2;
    c[3] = lo0;
  }
  // Four 32-bit outputs for counter (ctr_lo, ctr_hi) under key `seed`.
  VT_HOST_DEVICE static void block(uint64_t seed, uint64_t counter, uint64_t subsequence, uint32_t out[4]) {
    uint32_t c[4] = {uint32_t(counter), uint32_t(counter >> 32), uint32_t(subsequence), uint32_t(subsequence >> 32)};
    uint32_t k[2] = {uint32_t(seed), uint32_t(seed >> 32)};
    for (int r = 0; r < 10; ++r) {
      round(c, k);
      if (r < 9) k[0] += kW0, k[1] += kW1;
    }
    out[0] = c[0], out[1] = c[1], out[2] = c[2], out[3] = c[3];
  }
};

// Uniform in [0, 1) with 24 (float) or 53 (double) random bits.
VT_HOST_DEVICE inline float uniform_float(uint32_t x) { return float(x >> 8) * (1.0f / 16777216.0f); }
VT_HOST_DEVICE inline double uniform_double(uint32_t hi, uint32_t lo) {
  uint64_t v = (uint64_t(hi) << 21) ^ (uint64_t(lo) >> 11);
  return double(v & ((uint64_t(1) << 53) - 1)) * (1.0 / 9007199254740992.0);
}

}  // namespace vt
