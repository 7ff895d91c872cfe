#pragma once
// Element conversion with the semantics of a torch cast: to bool is "!= 0", 16-bit floats go through float.
#include <type_traits>

#include "vt/core/dtype.h"

namespace vt::cpu {

template <typename To, typename From>
VT_HOST_DEVICE inline To convert(From v) {
  if constexpr (std::is_same_v<To, From>) {
    return v;
  } else if constexpr (std::is_same_v<To, bool>) {
    return static_cast<opmath_t<From>>(v) != opmath_t<From>(0);
  } else if constexpr (std::is_same_v<To, Half> || std::is_same_v<To, BFloat16>) {
    return To(static_cast<float>(static_cast<opmath_t<From>>(v)));
  } else if constexpr (std::is_integral_v<To> && !std::is_integral_v<opmath_t<From>> && sizeof(To) < 8) {
    // Float to a narrow integer goes through int64, so out-of-range values wrap the same way on the CPU and
    // the GPU (a direct conversion is undefined in C++ and saturates on NVIDIA GPUs).
    return static_cast<To>(static_cast<int64_t>(static_cast<opmath_t<From>>(v)));
  } else {
    return static_cast<To>(static_cast<opmath_t<From>>(v));
  }
}

}  // namespace vt::cpu
