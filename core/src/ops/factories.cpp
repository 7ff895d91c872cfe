// Factories (empty, full, arange, linspace, eye) and the seeded Philox generator behind rand/randn/randint.
#include <algorithm>
#include <atomic>
#include <cmath>

#include "factories_impl.h"
#include "fn_traits.h"
#include "vt/core/cpu_vec_math.h"
#include "vt/core/parallel.h"

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

Tensor eye_any(int64_t n, std::optional<int64_t> m_opt, std::optional<ScalarType> dtype, std::optional<Device> device) {
  int64_t m = m_opt.value_or(n);
  VT_CHECK(n >= 0 && m >= 0, "eye: n and m must be non-negative, got ", n, " and ", m);
  Tensor out = ops::fill_(empty_tensor(DimVector{n, m}, dtype.value_or(ScalarType::Float32), device.value_or(kCPU)),
                          Scalar(int64_t(0)));
  ops::fill_(ops::diagonal(out, 0, 0, 1), Scalar(int64_t(1)));
  return out;
}

// The CPU backend of factories_impl.h.
struct CpuFactories {
  static constexpr bool kHost = true;
  template <typename F> static void index_fill(const Tensor& out, const F& f) {
    using S = typename fn_traits<F>::result;
    S* p = out.data<S>();
    parallel_for(0, out.numel(), kDefaultGrain, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) p[i] = f(i);
    });
  }
  template <typename S, typename Gen>
  static void random_fill(const Tensor& c, int64_t blocks, const Gen& gen, uint64_t seed, uint64_t offset) {
    S* p = c.data<S>();
    int64_t n = c.numel();
    if constexpr (std::is_same_v<Gen, factories::NormalGen> && factories::is_float_like<S>) {
      return normal_fill(p, n, blocks, gen, seed, offset);
    }
    parallel_for(0, blocks, 4096, [&](int64_t b, int64_t e) {
      for (int64_t blk = b; blk < e; ++blk) gen(p, n, blk, seed, offset);
    });
  }
  // NormalGen's draws, computed by cpu_math's vector Box-Muller 256 block pairs at a time (Note [Vector
  // Box-Muller]); the mean and std are applied here as NormalGen applies them.
  template <typename S>
  static void normal_fill(S* p, int64_t n, int64_t blocks, const factories::NormalGen& gen, uint64_t seed,
                          uint64_t offset) {
    constexpr int64_t kChunk = 256;
    parallel_for(0, blocks, 4096, [&](int64_t b, int64_t e) {
      double z[4][kChunk];
      for (int64_t c0 = b; c0 < e; c0 += kChunk) {
        const int64_t m = std::min(kChunk, e - c0);
        cpu_math::standard_normals(seed, offset, c0, m, z[0], z[1], z[2], z[3]);
        S* q = p + c0 * 4;
        const double mean = gen.mean, std = gen.std;
        if ((c0 + m) * 4 <= n) {  // whole blocks: no bounds test, so the loop vectorises
          for (int64_t j = 0; j < m; ++j)
            for (int k = 0; k < 4; ++k) q[j * 4 + k] = S(mean + std * z[k][j]);
          continue;
        }
        for (int64_t j = 0; j < m; ++j)
          for (int k = 0; k < 4; ++k)
            if ((c0 + j) * 4 + k < n) q[j * 4 + k] = S(mean + std * z[k][j]);
      }
    });
  }
};

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
  m.impl_any("eye", &eye_any);
  factories::register_factories<CpuFactories>(m, DispatchKey::CPU);
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
