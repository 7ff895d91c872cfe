// Factories (empty, full, arange, linspace, eye) and the seeded Philox generator behind rand/randn/randint.
#include <atomic>
#include <cmath>

#include "cpu_loops.h"
#include "vt/core/dispatcher.h"
#include "vt/core/ops.h"
#include "vt/core/parallel.h"
#include "vt/core/philox.h"
#include "vt/core/random.h"

namespace vt {
namespace {

Tensor empty_any(IntArrayRef size, std::optional<ScalarType> dtype, std::optional<Device> device) {
  return empty_tensor(size, dtype.value_or(ScalarType::Float32), device.value_or(kCPU));
}

Tensor full_any(IntArrayRef size, const Scalar& value, std::optional<ScalarType> dtype, std::optional<Device> device) {
  ScalarType t = dtype ? *dtype
                       : value.is_floating() ? ScalarType::Float32
                       : value.is_bool()     ? ScalarType::Bool
                                             : ScalarType::Int64;
  return ops::fill_(empty_tensor(size, t, device.value_or(kCPU)), value);
}

Tensor arange_cpu(const Scalar& start, const Scalar& end, const Scalar& step, std::optional<ScalarType> dtype,
                  std::optional<Device> device) {
  bool any_float = start.is_floating() || end.is_floating() || step.is_floating();
  ScalarType t = dtype.value_or(any_float ? ScalarType::Float32 : ScalarType::Int64);
  double s = start.to_double(), e = end.to_double(), st = step.to_double();
  VT_CHECK(st != 0, "arange: step must be nonzero");
  VT_CHECK(std::isfinite(s) && std::isfinite(e), "arange: unsupported range: ", s, " -> ", e);
  VT_CHECK((st > 0 && e >= s) || (st < 0 && e <= s), "arange: upper bound and larger bound inconsistent with step sign");
  int64_t n = any_float || is_floating(t) ? int64_t(std::ceil((e - s) / st))
                                          : (end.to_int() - start.to_int() + step.to_int() - (st > 0 ? 1 : -1)) / step.to_int();
  Tensor out = empty_tensor(DimVector{std::max<int64_t>(n, 0)}, t, device.value_or(kCPU));
  VT_DISPATCH_NUMERIC(t, "arange", [&] {
    scalar_t* p = out.data<scalar_t>();
    if constexpr (std::is_integral_v<scalar_t>) {
      int64_t s0 = start.to_int(), d = step.to_int();
      for (int64_t i = 0; i < n; ++i) p[i] = scalar_t(s0 + i * d);
    } else {
      for (int64_t i = 0; i < n; ++i) p[i] = scalar_t(s + double(i) * st);
    }
  });
  return out;
}

Tensor linspace_cpu(const Scalar& start, const Scalar& end, int64_t steps, std::optional<ScalarType> dtype,
                    std::optional<Device> device) {
  VT_CHECK(steps >= 0, "linspace: number of steps must be non-negative, got ", steps);
  ScalarType t = dtype.value_or(ScalarType::Float32);
  Tensor out = empty_tensor(DimVector{steps}, t, device.value_or(kCPU));
  // Integral results start from integral endpoints (torch truncates start and end first).
  double a = is_floating(t) ? start.to_double() : double(start.to_int());
  double b = is_floating(t) ? end.to_double() : double(end.to_int());
  double step = steps > 1 ? (b - a) / double(steps - 1) : 0.0;
  int64_t half = steps / 2;
  VT_DISPATCH_NUMERIC(t, "linspace", [&] {
    scalar_t* p = out.data<scalar_t>();
    // Symmetric fill from both ends, as torch does, so the last element is exactly `end`.
    for (int64_t i = 0; i < steps; ++i)
      p[i] = scalar_t(steps == 1 ? a : i < half ? a + step * double(i) : b - step * double(steps - 1 - i));
  });
  return out;
}

Tensor eye_cpu(int64_t n, std::optional<int64_t> m_opt, std::optional<ScalarType> dtype, std::optional<Device> device) {
  int64_t m = m_opt.value_or(n);
  VT_CHECK(n >= 0 && m >= 0, "eye: n and m must be non-negative, got ", n, " and ", m);
  Tensor out = ops::fill_(empty_tensor(DimVector{n, m}, dtype.value_or(ScalarType::Float32), device.value_or(kCPU)),
                          Scalar(int64_t(0)));
  ops::fill_(ops::diagonal(out, 0, 0, 1), Scalar(int64_t(1)));
  return out;
}

// ---- random ----

// Element i of an op's output uses word i % 4 of Philox blocks 2*(i/4) and 2*(i/4)+1 past the op's offset:
// two 32-bit words per element give 53-bit uniforms and 64-bit integers.
void two_blocks(uint64_t seed, uint64_t off, int64_t blk, uint32_t r[4], uint32_t r2[4]) {
  Philox4x32::block(seed, off + uint64_t(blk) * 2, 0, r);
  Philox4x32::block(seed, off + uint64_t(blk) * 2 + 1, 0, r2);
}

template <typename Gen>
void fill_random(const Tensor& self, uint64_t blocks_per_4, Gen gen) {
  Tensor c = self.is_contiguous() ? self : empty_tensor(self.sizes(), self.dtype(), kCPU);
  int64_t n = c.numel();
  auto [seed, offset] = random::reserve(uint64_t((n + 3) / 4) * blocks_per_4);
  VT_DISPATCH_ALL(c.dtype(), "random", [&] {
    scalar_t* p = c.data<scalar_t>();
    parallel_for(0, (n + 3) / 4, 4096, [&](int64_t b, int64_t e) {
      for (int64_t blk = b; blk < e; ++blk) gen(p, n, blk, seed, offset);
    });
  });
  if (!c.is_same(self)) ops::copy_(self, c);
  self.bump_version();
}

Tensor uniform_cpu_(const Tensor& self, double from, double to) {
  VT_CHECK(is_floating(self.dtype()), "uniform_ expects a floating point tensor, got ", dtype_name(self.dtype()));
  VT_CHECK(from <= to, "uniform_ expects to return a [from, to) range, but found from=", from, " > to=", to);
  fill_random(self, 2, [=](auto* p, int64_t n, int64_t blk, uint64_t seed, uint64_t off) {
    using T = std::remove_pointer_t<decltype(p)>;
    uint32_t r[4], r2[4];
    two_blocks(seed, off, blk, r, r2);
    for (int j = 0; j < 4 && blk * 4 + j < n; ++j) {
      double u = uniform_double(r[j], r2[j]);
      double v = from + (to - from) * u;
      if constexpr (std::is_floating_point_v<T> || std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) {
        T x = T(v);
        // Rounding to a narrow type can land exactly on `to`; the range is half-open.
        if (!(opmath_t<T>(x) < to) && to > from) x = T(from);
        p[blk * 4 + j] = x;
      }
    }
  });
  return self;
}

Tensor normal_cpu_(const Tensor& self, double mean, double std) {
  VT_CHECK(is_floating(self.dtype()), "normal_ expects a floating point tensor, got ", dtype_name(self.dtype()));
  VT_CHECK(std >= 0, "normal expects std >= 0.0, but found std ", std);
  fill_random(self, 2, [=](auto* p, int64_t n, int64_t blk, uint64_t seed, uint64_t off) {
    using T = std::remove_pointer_t<decltype(p)>;
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
        if constexpr (std::is_floating_point_v<T> || std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) {
          if (i < n) p[i] = T(mean + std * z[q]);
        }
      }
    }
  });
  return self;
}

Tensor random_cpu_(const Tensor& self, int64_t from, int64_t to) {
  VT_CHECK(from < to, "random_ expects 'from' to be less than 'to', but got from=", from, " >= to=", to);
  uint64_t range = uint64_t(to - from);
  fill_random(self, 2, [=](auto* p, int64_t n, int64_t blk, uint64_t seed, uint64_t off) {
    using T = std::remove_pointer_t<decltype(p)>;
    uint32_t r[4], r2[4];
    two_blocks(seed, off, blk, r, r2);
    for (int j = 0; j < 4 && blk * 4 + j < n; ++j) {
      uint64_t v = (uint64_t(r[j]) << 32) | r2[j];
      int64_t x = from + int64_t(v % range);  // 64 random bits: modulo bias below 2^-32 for ranges under 2^32
      if constexpr (std::is_same_v<T, bool>) p[blk * 4 + j] = x != 0;
      else if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) p[blk * 4 + j] = T(float(x));
      else p[blk * 4 + j] = T(x);
    }
  });
  return self;
}

}  // namespace

namespace random {
namespace {
std::atomic<uint64_t> g_seed{67280421310721ull};
std::atomic<uint64_t> g_offset{0};
}  // namespace
void manual_seed(uint64_t seed) {
  g_seed.store(seed);
  g_offset.store(0);
}
uint64_t initial_seed() { return g_seed.load(); }
std::pair<uint64_t, uint64_t> reserve(uint64_t blocks) {
  return {g_seed.load(), g_offset.fetch_add(blocks)};
}
std::pair<uint64_t, uint64_t> get_state() { return {g_seed.load(), g_offset.load()}; }
void set_state(uint64_t seed, uint64_t offset) {
  g_seed.store(seed);
  g_offset.store(offset);
}
}  // namespace random

VT_LIBRARY(vt, factories) {
  m.def("empty(int[] size, *, ScalarType? dtype=None, Device? device=None) -> Tensor");
  m.def("full(int[] size, Scalar fill_value, *, ScalarType? dtype=None, Device? device=None) -> Tensor");
  m.def("arange(Scalar start, Scalar end, Scalar step=1, *, ScalarType? dtype=None, Device? device=None) -> Tensor");
  m.def("linspace(Scalar start, Scalar end, int steps, *, ScalarType? dtype=None, Device? device=None) -> Tensor");
  m.def("eye(int n, int? m=None, *, ScalarType? dtype=None, Device? device=None) -> Tensor");
  m.def("uniform_(Tensor self, float from=0, float to=1) -> Tensor");
  m.def("normal_(Tensor self, float mean=0, float std=1) -> Tensor");
  m.def("random_(Tensor self, int from, int to) -> Tensor");
  m.impl_any("empty", &empty_any);
  m.impl_any("full", &full_any);
  m.impl("arange", DispatchKey::CPU, &arange_cpu);
  m.impl("linspace", DispatchKey::CPU, &linspace_cpu);
  m.impl("eye", DispatchKey::CPU, &eye_cpu);
  m.impl("uniform_", DispatchKey::CPU, &uniform_cpu_);
  m.impl("normal_", DispatchKey::CPU, &normal_cpu_);
  m.impl("random_", DispatchKey::CPU, &random_cpu_);
}

namespace ops {
Tensor uniform_(const Tensor& self, double from, double to) {
  static const TypedOp<Tensor(const Tensor&, double, double)> op("vt::uniform_");
  return op(self, from, to);
}
Tensor arange(const Scalar& start, const Scalar& end, const Scalar& step, OptDtype dtype, OptDevice device) {
  static const TypedOp<Tensor(const Scalar&, const Scalar&, const Scalar&, OptDtype, OptDevice)> op("vt::arange");
  return op(start, end, step, dtype, device);
}
Tensor empty(IntArrayRef size, OptDtype dtype, OptDevice device) {
  static const TypedOp<Tensor(IntArrayRef, OptDtype, OptDevice)> op("vt::empty");
  return op(size, dtype, device);
}
Tensor full(IntArrayRef size, const Scalar& value, OptDtype dtype, OptDevice device) {
  static const TypedOp<Tensor(IntArrayRef, const Scalar&, OptDtype, OptDevice)> op("vt::full");
  return op(size, value, dtype, device);
}
}  // namespace ops

}  // namespace vt
