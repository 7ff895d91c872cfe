#pragma once
// Kernels that only move elements (gathers, flips and rolls, triangles, nearest resampling, embedding rows) are
// built once per element size, not once per dtype: with_word(bytes, f) calls f(W{}) with W the unsigned word of
// that size, so a caller writes `using W = decltype(w)` and one kernel serves every dtype of that width.
#include <cstdint>

#include "vt/core/error.h"

namespace vt {

template <typename F> decltype(auto) with_word(int64_t bytes, F&& f) {
  switch (bytes) {
    case 1: return f(uint8_t{});
    case 2: return f(uint16_t{});
    case 4: return f(uint32_t{});
    default: VT_INTERNAL_ASSERT(bytes == 8, "element size ", bytes); return f(uint64_t{});
  }
}

}  // namespace vt
