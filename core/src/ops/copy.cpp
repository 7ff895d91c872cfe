// copy_ (with dtype conversion and broadcasting of src), to_dtype, fill_, contiguous and clone on the CPU.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "cpu_loops.h"
#include "convert.h"
#include "copy_iterator.h"
#include "vt/core/cpu_vec_math.h"
#include "vt/core/dispatcher.h"
#include "vt/core/memory_overlap.h"
#include "vt/core/ops.h"

namespace vt {
namespace {

// Note [CPU blocked transpose]
// A copy whose destination runs along iterator dim 0 and whose source runs along dim 1 (a transpose, of one
// dtype) reads one element per cache line when walked in destination order, and the line is gone from L1
// before the walk comes back for its neighbours (4096 floats of a row apart). Walking kBlock x kBlock squares
// instead keeps the kBlock source lines of a square in L1 while all their elements are used. Elements move
// as raw bits of their size; 4-byte ones (float32, int32) move as 8 x 8 squares transposed in AVX2 registers
// where the CPU has them (one element at a time, a [8320, 768] float32 transpose took 1.5x torch's time).
constexpr int64_t kTransposeBlock = 16;

#if defined(__x86_64__)
#define VT_AVX2 __attribute__((target("avx2")))
// dst[b * dst_b + a] = src[a * src_a + b] for the 8 x 8 square at (a0, b0); strides in elements.
VT_AVX2 inline void transpose8x8(const uint32_t* src, int64_t src_a, uint32_t* dst, int64_t dst_b) {
  __m256 r[8], t[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(reinterpret_cast<const float*>(src + i * src_a));
  for (int i = 0; i < 8; i += 2) {  // pairs of rows interleaved
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {  // then pairs of pairs: each 128-bit lane holds a 4 x 4 square's column
    r[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
    r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int i = 0; i < 4; ++i) {  // and the lanes of rows 0-3 and 4-7 put together
    t[i] = _mm256_permute2f128_ps(r[i], r[i + 4], 0x20);
    t[i + 4] = _mm256_permute2f128_ps(r[i], r[i + 4], 0x31);
  }
  for (int i = 0; i < 8; ++i) _mm256_storeu_ps(reinterpret_cast<float*>(dst + i * dst_b), t[i]);
}

VT_AVX2 void blocked_transpose_4byte_avx2(char** data, const int64_t* strides, int64_t n0, int64_t n1) {
  const int64_t src_a = strides[1] / 4, dst_b = strides[2] / 4;
  const uint32_t* src = reinterpret_cast<const uint32_t*>(data[1]);
  uint32_t* dst = reinterpret_cast<uint32_t*>(data[0]);
  for (int64_t b0 = 0; b0 < n1; b0 += kTransposeBlock) {
    const int64_t b1 = std::min(n1, b0 + kTransposeBlock);
    for (int64_t a0 = 0; a0 < n0; a0 += kTransposeBlock) {
      const int64_t a1 = std::min(n0, a0 + kTransposeBlock);
      int64_t a8 = a0 + (a1 - a0) / 8 * 8, b8 = b0 + (b1 - b0) / 8 * 8;
      for (int64_t b = b0; b < b8; b += 8)
        for (int64_t a = a0; a < a8; a += 8) transpose8x8(src + a * src_a + b, src_a, dst + b * dst_b + a, dst_b);
      for (int64_t b = b0; b < b1; ++b)  // the square's ragged edges
        for (int64_t a = b < b8 ? a8 : a0; a < a1; ++a) dst[b * dst_b + a] = src[a * src_a + b];
    }
  }
}
#undef VT_AVX2
#endif

template <typename T> void blocked_transpose(TensorIterator& it) {
#if defined(__x86_64__)
  if constexpr (sizeof(T) == 4) {
    static const bool avx2 = __builtin_cpu_supports("avx2");
    if (avx2) {  // byte strides of 4-byte elements: whole elements
      it.for_each(&blocked_transpose_4byte_avx2);
      return;
    }
  }
#endif
  it.for_each([](char** data, const int64_t* strides, int64_t n0, int64_t n1) {
    // strides: [dst dim 0, src dim 0, dst dim 1, src dim 1]; dst dim 0 and src dim 1 are sizeof(T)
    const int64_t src_a = strides[1], dst_b = strides[2];
    for (int64_t b0 = 0; b0 < n1; b0 += kTransposeBlock) {
      const int64_t b1 = std::min(n1, b0 + kTransposeBlock);
      for (int64_t a0 = 0; a0 < n0; a0 += kTransposeBlock) {
        const int64_t a1 = std::min(n0, a0 + kTransposeBlock);
        for (int64_t b = b0; b < b1; ++b) {
          T* d = reinterpret_cast<T*>(data[0] + b * dst_b);
          const char* s = data[1] + b * int64_t(sizeof(T));
          for (int64_t a = a0; a < a1; ++a) d[a] = *reinterpret_cast<const T*>(s + a * src_a);
        }
      }
    }
  });
}

bool try_blocked_transpose(TensorIterator& it) {
  if (transposed_source_dim(it, 16) != 1) return false;  // for_each hands out dims 0 and 1 together
  switch (it.operand(0).element_size()) {
    case 1: blocked_transpose<uint8_t>(it); return true;
    case 2: blocked_transpose<uint16_t>(it); return true;
    case 4: blocked_transpose<uint32_t>(it); return true;
    case 8: blocked_transpose<uint64_t>(it); return true;
    default: return false;
  }
}

// Dense float32 -> float16 casts of one shape go through cpu_math::from_float in parallel chunks (F16C on the
// avx2 and avx512 families, Note [F16C conversions]): the elementwise loop's branch-free bit conversion took a
// cast of [4096, 1024] to 2x torch's time on the devbox. Values and rounding are the loop's; a NaN keeps its
// payload's top bits as torch's vector cast does. The other direction stays on the loop, which keeps a
// signalling NaN's payload exactly (F16C would quiet it), as NumPy's conversion does.
bool try_dense_half_cast(const Tensor& self, const Tensor& src) {
  if (self.dtype() != ScalarType::Float16 || src.dtype() != ScalarType::Float32 || !self.is_contiguous() ||
      !src.is_contiguous() || DimVector(self.sizes()) != DimVector(src.sizes()) ||
      overlap_status(self, src) != MemOverlap::No)
    return false;
  parallel_for(0, self.numel(), kDefaultGrain, [&](int64_t b, int64_t e) {
    cpu_math::from_float(src.data<float>() + b, self.data<Half>() + b, e - b);
  });
  return true;
}

Tensor copy_cpu(const Tensor& self, const Tensor& src, bool /*non_blocking: CPU copies are synchronous*/) {
  VT_CHECK_KIND(NotImplemented, self.device().is_cpu() && src.device().is_cpu(), "copy_ from ",
                src.device().str(), " to ", self.device().str(), " needs the CUDA runtime, which is not built yet");
  VT_CHECK(DimVector(broadcast_shapes(self.sizes(), src.sizes())) == DimVector(self.sizes()),
           "copy_: source of shape ", shape_str(src.sizes()), " cannot be broadcast to destination shape ",
           shape_str(self.sizes()));  // empty ones too: [0] <- [0, 0] is refused, as torch's
  if (self.numel() == 0) return self;
  self.bump_version();
  if (self.dtype() == src.dtype() && self.is_contiguous() && src.is_contiguous() &&
      DimVector(self.sizes()) == DimVector(src.sizes())) {
    if (self.data_ptr() != src.data_ptr()) std::memmove(self.data_ptr(), src.data_ptr(), size_t(self.nbytes()));
    return self;
  }
  if (try_dense_half_cast(self, src)) return self;
  TensorIterator it = copy_iterator(self, src);
  if (try_blocked_transpose(it)) return self;
  VT_DISPATCH_ALL(self.dtype(), "copy_", [&] {
    using dst_t = scalar_t;
    VT_DISPATCH_ALL(src.dtype(), "copy_", [&] {
      cpu::cpu_kernel(it, [](scalar_t v) -> dst_t { return cpu::convert<dst_t>(v); });
    });
  });
  return self;
}

Tensor to_dtype_any(const Tensor& self, ScalarType dtype) {
  Tensor out = empty_tensor(self.sizes(), dtype, self.device());
  return ops::copy_(out, self);
}

// torch refuses values a dtype cannot hold ("value cannot be converted to type int8_t without overflow").
}  // namespace

void check_scalar_fits(const Scalar& v, ScalarType t) {
  if (t == ScalarType::Bool || t == ScalarType::Float64) return;
  double x = v.to_double();
  double lo = 0, hi = 0;
  switch (t) {
    case ScalarType::UInt8: lo = v.is_floating() ? 0 : -255, hi = 255; break;  // negative ints wrap, as in torch
    case ScalarType::Int8: lo = -128, hi = 127; break;
    case ScalarType::Int16: lo = -32768, hi = 32767; break;
    case ScalarType::Int32: lo = -2147483648.0, hi = 2147483647.0; break;
    case ScalarType::Int64:
      if (!v.is_floating()) return;
      lo = -9223372036854775808.0, hi = 9223372036854775807.0;
      break;
    case ScalarType::Float16: lo = -65504, hi = 65504; break;
    // bfloat16's largest finite value is below float32's (torch refuses 3.39e38 for bfloat16)
    case ScalarType::BFloat16: lo = -3.3895313892515355e38, hi = 3.3895313892515355e38; break;
    case ScalarType::Float32: lo = -3.4028234663852886e38, hi = 3.4028234663852886e38; break;
    default: return;
  }
  if (is_floating(t) && !std::isfinite(x)) return;  // inf and nan are representable
  VT_CHECK(x >= lo && x <= hi, "value cannot be converted to type ", dtype_name(t), " without overflow: ",
           v.is_floating() ? std::to_string(x) : std::to_string(v.to_int()));
}

namespace {

// A dense run of n elements set to v: memset where v's bytes are all zero (zeros, zero_grad), else a loop cloned
// for the CPU's vector width (Note [Loop clones]): the baseline's 16-byte stores filled at a third of torch's rate.
template <typename T> VT_LOOP_CLONES void fill_run(T* q, int64_t n, T v) {
  for (int64_t k = 0; k < n; ++k) q[k] = v;
}
template <typename T> void fill_dense(T* q, int64_t n, T v) {
  unsigned char bytes[sizeof(T)];
  std::memcpy(bytes, &v, sizeof(T));
  if (std::all_of(bytes, bytes + sizeof(T), [](unsigned char b) { return b == 0; })) std::memset(q, 0, size_t(n) * sizeof(T));
  else fill_run(q, n, v);
}

Tensor fill_cpu(const Tensor& self, const Scalar& value) {
  check_scalar_fits(value, self.dtype());
  self.bump_version();
  TensorIterator it = TensorIteratorConfig().add_output(self).check_mem_overlap(false).name("fill_").build();
  VT_DISPATCH_ALL(self.dtype(), "fill_", [&] {
    scalar_t v = value.to<scalar_t>();
    it.for_each([&](char** data, const int64_t* strides, int64_t n0, int64_t n1) {
      for (int64_t j = 0; j < n1; ++j) {
        char* p = data[0] + j * strides[1];
        if (strides[0] == int64_t(sizeof(scalar_t))) {
          fill_dense(reinterpret_cast<scalar_t*>(p), n0, v);
        } else {
          for (int64_t k = 0; k < n0; ++k) *reinterpret_cast<scalar_t*>(p + k * strides[0]) = v;
        }
      }
    });
  });
  return self;
}

Tensor clone_any(const Tensor& self) {
  Tensor out = empty_tensor(self.sizes(), self.dtype(), self.device());
  return ops::copy_(out, self);
}

Tensor contiguous_any(const Tensor& self) { return self.is_contiguous() ? self : ops::clone(self); }

}  // namespace

VT_LIBRARY(vt, copy) {
  m.def("copy_(Tensor self, Tensor src, bool non_blocking=False) -> Tensor", DevicePolicy::AnyDevice);
  m.def("to_dtype(Tensor self, ScalarType dtype) -> Tensor");
  m.def("fill_(Tensor self, Scalar value) -> Tensor");
  m.def("clone(Tensor self) -> Tensor");
  m.def("contiguous(Tensor self) -> Tensor");
  m.impl("copy_", DispatchKey::CPU, &copy_cpu);
  m.impl("fill_", DispatchKey::CPU, &fill_cpu);
  m.impl_any("to_dtype", &to_dtype_any);
  m.impl_any("clone", &clone_any);
  m.impl_any("contiguous", &contiguous_any);
}

namespace ops {
Tensor copy_(const Tensor& self, const Tensor& src, bool non_blocking) {
  static const TypedOp<Tensor(const Tensor&, const Tensor&, bool)> op("vt::copy_");
  return op(self, src, non_blocking);
}
Tensor to_dtype(const Tensor& self, ScalarType dtype) {
  static const TypedOp<Tensor(const Tensor&, ScalarType)> op("vt::to_dtype");
  return op(self, dtype);
}
Tensor fill_(const Tensor& self, const Scalar& value) {
  static const TypedOp<Tensor(const Tensor&, const Scalar&)> op("vt::fill_");
  return op(self, value);
}
Tensor clone(const Tensor& self) {
  static const TypedOp<Tensor(const Tensor&)> op("vt::clone");
  return op(self);
}
Tensor contiguous(const Tensor& self) {
  static const TypedOp<Tensor(const Tensor&)> op("vt::contiguous");
  return op(self);
}
}  // namespace ops

}  // namespace vt
