#pragma once
// Factories that compute values (arange, linspace) and the Philox random fills, for one backend. Element i
// of a random op uses word i % 4 of Philox blocks 2*(i/4) and 2*(i/4)+1 past the op's offset (two 32-bit
// words per element give 53-bit uniforms and 64-bit integers), so the CPU and the GPU produce the same values
// from the same seed. `Backend` provides index_fill(out, f) (out[i] = f(i) over a contiguous tensor) and
// random_fill(out, blocks, gen, seed, offset) (gen(p, n, block, seed, offset) per block of four elements).
#include <cmath>
#include <limits>
#include <type_traits>

#include "vt/core/dispatcher.h"
#include "vt/core/ops.h"
#include "vt/core/philox.h"
#include "vt/core/random.h"

namespace vt::factories {

template <typename T> constexpr bool is_float_like =
    std::is_floating_point_v<T> || std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>;

// Floating values are start + i * step in M: double on the CPU, the dtype's opmath type on CUDA (each
// matching torch's kernel on that device).
template <typename S, typename M> struct ArangeF {
  int64_t istart, istep;
  M start, step;
  VT_HOST_DEVICE S operator()(int64_t i) const {
    if constexpr (std::is_integral_v<S>) return S(istart + i * istep);
    else return S(start + M(i) * step);
  }
};
// a * b + c rounded once (torch's linspace kernels are compiled with contraction, so their float and double
// `start + step * i` is a fused multiply-add on the CPU and the GPU alike).
template <typename M> VT_HOST_DEVICE M fused_multiply_add(M a, M b, M c) {
#if defined(__CUDA_ARCH__)
  if constexpr (std::is_same_v<M, float>) return fmaf(a, b, c); else return fma(a, b, c);
#else
  return std::fma(a, b, c);
#endif
}

// Note [Linspace arithmetic]: values fill symmetrically from both ends, as torch does, so the last element is
// exactly `end`: start + step * i below steps / 2, end - step * (steps - 1 - i) from there, computed as torch's
// kernel computes them so that every element is torch's bit for bit: float and double in their own type with a
// fused multiply-add (step = (end - start) / (steps - 1) in that type); float16 and bfloat16 with every
// operation rounded to the 16-bit type (c10's Half/BFloat16 operators: step, the product and the sum each
// round); integral dtypes in double (a fused multiply-add), truncated.
template <typename S> struct LinspaceF {
  static constexpr bool k16 = std::is_same_v<S, Half> || std::is_same_v<S, BFloat16>;
  using M = std::conditional_t<std::is_floating_point_v<S>, S, std::conditional_t<k16, float, double>>;
  M a, b, step;
  int64_t steps;
  // float arithmetic rounded to S, as a c10 16-bit operator's result is
  VT_HOST_DEVICE static float r16(float x) { return float(S(x)); }
  LinspaceF(double start, double end, int64_t n) : steps(n) {
    if constexpr (k16) {
      a = r16(float(start)), b = r16(float(end));
      step = r16(r16(b - a) / r16(float(n - 1)));
    } else {
      a = M(start), b = M(end);
      step = (b - a) / M(n - 1);
    }
  }
  VT_HOST_DEVICE S operator()(int64_t i) const {
    if constexpr (k16)
      return S(i < steps / 2 ? a + r16(step * r16(float(i))) : b - r16(step * r16(float(steps - 1 - i))));
    else
      return S(i < steps / 2 ? fused_multiply_add(step, M(i), a) : fused_multiply_add(-step, M(steps - 1 - i), b));
  }
};

VT_HOST_DEVICE inline void two_blocks(uint64_t seed, uint64_t off, int64_t blk, uint32_t r[4], uint32_t r2[4]) {
  Philox4x32::block(seed, off + uint64_t(blk) * 2, 0, r);
  Philox4x32::block(seed, off + uint64_t(blk) * 2 + 1, 0, r2);
}

struct UniformGen {
  double from, to;
  template <typename T> VT_HOST_DEVICE void operator()(T* p, int64_t n, int64_t blk, uint64_t seed, uint64_t off) const {
    uint32_t r[4], r2[4];
    two_blocks(seed, off, blk, r, r2);
    for (int j = 0; j < 4 && blk * 4 + j < n; ++j) {
      double v = from + (to - from) * uniform_double(r[j], r2[j]);
      if constexpr (is_float_like<T>) {
        T x = T(v);
        // Rounding to a narrow type can land exactly on `to`; the range is half-open.
        if (!(opmath_t<T>(x) < to) && to > from) x = T(from);
        p[blk * 4 + j] = x;
      }
    }
  }
};

struct NormalGen {
  double mean, std;
  template <typename T> VT_HOST_DEVICE void operator()(T* p, int64_t n, int64_t blk, uint64_t seed, uint64_t off) const {
    uint32_t r[4], r2[4];
    two_blocks(seed, off, blk, r, r2);
    // Box-Muller on two pairs of 53-bit uniforms: four normals per block pair.
    for (int pair = 0; pair < 2; ++pair) {
      double u1 = uniform_double(r[2 * pair], r2[2 * pair]);
      double u2 = uniform_double(r[2 * pair + 1], r2[2 * pair + 1]);
      double rad = std::sqrt(-2.0 * std::log1p(-u1));  // 1 - u1 in (0, 1]: never log(0)
      double th = 6.283185307179586 * u2;
      double z[2] = {rad * std::cos(th), rad * std::sin(th)};
      for (int q = 0; q < 2; ++q) {
        int64_t i = blk * 4 + pair * 2 + q;
        if constexpr (is_float_like<T>) {
          if (i < n) p[i] = T(mean + std * z[q]);
        }
      }
    }
  }
};

struct RandomGen {
  int64_t from;
  uint64_t range;
  template <typename T> VT_HOST_DEVICE void operator()(T* p, int64_t n, int64_t blk, uint64_t seed, uint64_t off) const {
    uint32_t r[4], r2[4];
    two_blocks(seed, off, blk, r, r2);
    for (int j = 0; j < 4 && blk * 4 + j < n; ++j) {
      uint64_t v = (uint64_t(r[j]) << 32) | r2[j];
      int64_t x = int64_t(uint64_t(from) + v % range);  // 64 random bits: modulo bias below 2^-32 for ranges under 2^32
      if constexpr (std::is_same_v<T, bool>) p[blk * 4 + j] = x != 0;
      else if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) p[blk * 4 + j] = T(float(x));
      else p[blk * 4 + j] = T(x);
    }
  }
};

template <typename Backend>
Tensor arange(const Scalar& start, const Scalar& end, const Scalar& step, std::optional<ScalarType> dtype,
              std::optional<Device> device) {
  bool any_float = start.is_floating() || end.is_floating() || step.is_floating();
  ScalarType t = dtype.value_or(any_float ? ScalarType::Float32 : ScalarType::Int64);
  double s = start.to_double(), e = end.to_double(), st = step.to_double();
  VT_CHECK(std::isfinite(s) && std::isfinite(e), "arange: unsupported range: ", s, " -> ", e);
  // Note [Integral arange bounds]: torch counts an int64 arange from the bounds and step converted to int64
  // first (truncated: arange(-1.5, 0, dtype=int64) is [-1], a step of 0.5 is zero and refused), and the other
  // integral dtypes from the doubles (arange(-1.5, 0, dtype=int32) is [-1, 0], a step of 0.5 repeats the
  // start); all step from the truncated start, and the bounds' order is checked on the doubles.
  const bool int64_bounds = t == ScalarType::Int64;
  VT_CHECK(is_floating(t) || std::fabs(st) < 9223372036854775808.0, "arange: step ", st, " does not fit int64");
  VT_CHECK(st != 0, "arange: step must be nonzero");
  auto fits_int64 = [](const Scalar& v) { return !v.is_floating() || std::fabs(v.to_double()) < 9223372036854775808.0; };
  // Every integral dtype's bounds must fit int64, as torch converts them (arange(1e30, 1e30, dtype=int32) raises)
  VT_CHECK(is_floating(t) || (fits_int64(start) && fits_int64(end)), "arange: bounds ", s, " -> ", e,
           " do not fit int64");
  VT_CHECK((st > 0 && e >= s) || (st < 0 && e <= s), "arange: upper bound and lower bound inconsistent with step sign");
  // torch checks the truncated int64 step after the bounds' order (arange(0, -1.5, 0.5, dtype=int64) is the
  // bounds' RuntimeError, arange(0, 1.5, 0.5, dtype=int64) this ValueError)
  VT_CHECK_VALUE(!int64_bounds || step.to_int() != 0, "arange: step must be nonzero");
  // The element count is computed wide (double, or 128-bit integers for integral ranges) and refused when it
  // does not fit int64: arange(0, -2**63, -1) holds 2**63 elements, and the int64 arithmetic would overflow
  // into INT64_MIN / -1, which traps.
  int64_t n = 0;
  if (!int64_bounds) {  // Note [Integral arange bounds]: the other dtypes count from the doubles
    const double count = std::ceil((e - s) / st);
    VT_CHECK(count < 9223372036854775808.0, "arange: invalid size, possible overflow? (", count, " elements)");
    n = int64_t(count);
  } else {
    const __int128 a = start.to_int(), b = end.to_int(), d = step.to_int();
    const __int128 count = (b - a + d - (d > 0 ? 1 : -1)) / d;
    VT_CHECK(count <= std::numeric_limits<int64_t>::max(), "arange: invalid size, possible overflow? (",
             start.to_int(), " -> ", end.to_int(), " by ", step.to_int(), ")");
    n = int64_t(count);
  }
  Tensor out = empty_tensor(DimVector{std::max<int64_t>(n, 0)}, t, device.value_or(kCPU));
  VT_DISPATCH_NUMERIC(t, "arange", [&] {
    using M = std::conditional_t<Backend::kHost, double, opmath_t<scalar_t>>;
    Backend::index_fill(out, ArangeF<scalar_t, M>{start.to_int(), step.to_int(), M(s), M(st)});
  });
  return out;
}

template <typename Backend>
Tensor linspace(const Scalar& start, const Scalar& end, int64_t steps, std::optional<ScalarType> dtype,
                std::optional<Device> device) {
  VT_CHECK(steps >= 0, "linspace: number of steps must be non-negative, got ", steps);
  ScalarType t = dtype.value_or(ScalarType::Float32);
  // As torch: linspace(0, 1000, 2, dtype=int8) cannot end at 1000; only the values used are checked (the
  // start for one step, none for zero).
  if (steps >= 1) check_scalar_fits(start, t);
  if (steps >= 2) check_scalar_fits(end, t);
  Tensor out = empty_tensor(DimVector{steps}, t, device.value_or(kCPU));
  if (steps == 1) return ops::fill_(out, start);  // exactly start, not start through a double (2**63 - 1 is not one)
  VT_DISPATCH_NUMERIC(t, "linspace", [&] {
    // Integral results run between the endpoints converted to the dtype, as torch's: truncated, and wrapped
    // where the dtype wraps (linspace(0, -1, 3, dtype=uint8) runs from 0 to 255: [0, 127, 255]).
    double a = is_floating(t) ? start.to_double() : double(scalar_t(start.to_int()));
    double b = is_floating(t) ? end.to_double() : double(scalar_t(end.to_int()));
    Backend::index_fill(out, LinspaceF<scalar_t>(a, b, steps));  // Note [Linspace arithmetic]
  });
  return out;
}

// Fills self (through a contiguous temporary when it is not contiguous) from `gen`, reserving the counters.
template <typename Backend, typename Gen> void fill_random(const Tensor& self, Gen gen) {
  self.bump_version();  // before any write (Note [Inference tensors])
  Tensor c = self.is_contiguous() ? self : empty_tensor(self.sizes(), self.dtype(), self.device());
  int64_t blocks = (c.numel() + 3) / 4;
  auto [seed, offset] = random::reserve(uint64_t(blocks) * 2);
  VT_DISPATCH_ALL(c.dtype(), "random", [&] { Backend::template random_fill<scalar_t>(c, blocks, gen, seed, offset); });
  if (!c.is_same(self)) ops::copy_(self, c);
}

template <typename Backend> Tensor uniform_(const Tensor& self, double from, double to) {
  VT_CHECK(is_floating(self.dtype()), "uniform_ expects a floating point tensor, got ", dtype_name(self.dtype()));
  VT_CHECK(from <= to, "uniform_ expects to return a [from, to) range, but found from=", from, " > to=", to);
  check_scalar_fits(Scalar(from), self.dtype());  // as torch: the bounds and their distance must fit the dtype
  check_scalar_fits(Scalar(to), self.dtype());
  check_scalar_fits(Scalar(to - from), self.dtype());
  fill_random<Backend>(self, UniformGen{from, to});
  return self;
}
template <typename Backend> Tensor normal_(const Tensor& self, double mean, double std) {
  VT_CHECK(std >= 0, "normal expects std >= 0.0, but found std ", std);
  if (self.numel() == 0) return self;  // nothing drawn, so no dtype to draw in either (torch's order)
  VT_CHECK_KIND(NotImplemented, is_floating(self.dtype()), "\"normal_\" not implemented for '",
                dtype_name(self.dtype()), "': it draws floating point values");
  fill_random<Backend>(self, NormalGen{mean, std});
  return self;
}
// The values random_ may draw into a dtype: [from, to - 1] must be representable, or a randint into int8 would
// wrap to negatives and one into float16 overflow to inf (torch's check_from_to_in_range).
inline void check_random_range(ScalarType t, int64_t from, int64_t to) {
  double lo = 0, hi = 0;
  switch (t) {
    case ScalarType::Bool: lo = 0, hi = 1; break;
    case ScalarType::UInt8: lo = 0, hi = 255; break;
    case ScalarType::Int8: lo = -128, hi = 127; break;
    case ScalarType::Int16: lo = -32768, hi = 32767; break;
    case ScalarType::Int32: lo = -2147483648.0, hi = 2147483647.0; break;
    case ScalarType::Float16: lo = -65504, hi = 65504; break;
    case ScalarType::BFloat16: case ScalarType::Float32: lo = -3.4028234663852886e38, hi = 3.4028234663852886e38; break;
    default: return;  // int64 and float64 hold every int64 bound
  }
  VT_CHECK(double(from) >= lo && double(from) <= hi, "random_: from is out of bounds for ", dtype_name(t), ": from=", from);
  VT_CHECK(double(to - 1) >= lo && double(to - 1) <= hi, "random_: to - 1 is out of bounds for ", dtype_name(t),
           ": to=", to);
}

template <typename Backend> Tensor random_(const Tensor& self, int64_t from, int64_t to) {
  VT_CHECK(from < to, "random_ expects 'from' to be less than 'to', but got from=", from, " >= to=", to);
  check_random_range(self.dtype(), from, to);
  fill_random<Backend>(self, RandomGen{from, uint64_t(to) - uint64_t(from)});
  return self;
}

template <typename Backend> void register_factories(Library& m, DispatchKey key) {
  m.impl("arange", key, &arange<Backend>);
  m.impl("linspace", key, &linspace<Backend>);
  m.impl("uniform_", key, &uniform_<Backend>);
  m.impl("normal_", key, &normal_<Backend>);
  m.impl("random_", key, &random_<Backend>);
}

}  // namespace vt::factories
