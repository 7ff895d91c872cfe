#pragma once
// Reduction functors shared by the CPU and CUDA kernels: how accumulators combine (sum, prod, NaN-propagating
// max/min, all/any) and the per-lane kernels of ops whose result depends on position along one dim
// (max/min with indices, cumulative sum/product). Accumulators are wide: float64 for floating inputs, int64
// for integers, as in torch's CPU kernels.
#include <cmath>
#include <type_traits>

#include "vt/core/dtype.h"

namespace vt::reduce {

struct SumC { template <typename A> VT_HOST_DEVICE A operator()(A a, A b) const { return a + b; } };
struct ProdC { template <typename A> VT_HOST_DEVICE A operator()(A a, A b) const { return a * b; } };
template <bool IsMax> struct PickC {  // NaN wins, so max/min of anything with a NaN is NaN
  template <typename A> VT_HOST_DEVICE A operator()(A a, A b) const {
    if constexpr (std::is_floating_point_v<A>) {
      if (std::isnan(a)) return a;
      if (std::isnan(b)) return b;
    }
    return IsMax ? (a >= b ? a : b) : (a <= b ? a : b);
  }
};
template <bool IsAll> struct LogicC {
  VT_HOST_DEVICE int64_t operator()(int64_t a, int64_t b) const { return IsAll ? (a && b) : (a || b); }
};

// Lane kernels: p[i] points at the lane's first element in tensor i (outputs first), st[i] is its byte stride
// along the lane, len the lane length.
template <bool IsMax, typename S> struct MinMaxLane {  // p: values, indices, input
  static constexpr int kTensors = 3;
  VT_HOST_DEVICE void operator()(char* const* p, const int64_t* st, int64_t len) const {
    using M = opmath_t<S>;
    M best = M(*reinterpret_cast<const S*>(p[2]));
    int64_t bi = 0;
    for (int64_t k = 1; k < len; ++k) {
      M v = M(*reinterpret_cast<const S*>(p[2] + k * st[2]));
      if constexpr (std::is_floating_point_v<M>) {
        if (std::isnan(best)) break;
        if (std::isnan(v)) {
          best = v, bi = k;
          break;
        }
      }
      if (IsMax ? v > best : v < best) best = v, bi = k;
    }
    *reinterpret_cast<S*>(p[0]) = S(best);
    *reinterpret_cast<int64_t*>(p[1]) = bi;
  }
};
template <bool IsSum, typename S> struct CumulativeLane {  // p: output, input
  using scalar_type = S;
  static constexpr int kTensors = 2;
  VT_HOST_DEVICE void operator()(char* const* p, const int64_t* st, int64_t len) const {
    using A = std::conditional_t<std::is_floating_point_v<opmath_t<S>>, double, int64_t>;
    A acc = IsSum ? A(0) : A(1);
    for (int64_t k = 0; k < len; ++k) {
      A v = A(opmath_t<S>(*reinterpret_cast<const S*>(p[1] + k * st[1])));
      acc = IsSum ? acc + v : acc * v;
      *reinterpret_cast<S*>(p[0] + k * st[0]) = S(opmath_t<S>(acc));
    }
  }
};

}  // namespace vt::reduce
