#pragma once
// ScalarType: the ten element types of a tensor, their sizes and names, PyTorch's type-promotion lattice, and
// the VT_DISPATCH_* switches that turn a runtime dtype into a compile-time `scalar_t` for kernels.
#include <complex>
#include <cstdint>
#include <string_view>
#include <type_traits>

#include "vt/core/error.h"
#include "vt/core/half.h"

namespace vt {

enum class ScalarType : int8_t {
  Bool,
  UInt8,
  Int8,
  Int16,
  Int32,
  Int64,
  Float16,
  BFloat16,
  Float32,
  Float64,
};
inline constexpr int kNumScalarTypes = 10;

constexpr int64_t itemsize(ScalarType t) {
  constexpr int64_t sizes[] = {1, 1, 1, 2, 4, 8, 2, 2, 4, 8};
  return sizes[int(t)];
}
// The name torch gives the dtype ("float32", "int64", ...).
std::string_view dtype_name(ScalarType t);
// Accepts torch's names and aliases ("float", "half", "long", "bf16" is not one of them). Throws TypeError.
ScalarType parse_dtype(std::string_view name);

constexpr bool is_floating(ScalarType t) { return t >= ScalarType::Float16; }
constexpr bool is_integral(ScalarType t, bool include_bool) {
  return (t >= ScalarType::UInt8 && t <= ScalarType::Int64) || (include_bool && t == ScalarType::Bool);
}

// PyTorch's promote_types: bool < integers < floating; uint8 with a signed type widens to at least int16;
// float16 with bfloat16 meets at float32.
ScalarType promote_types(ScalarType a, ScalarType b);
// Whether a value of type `from` may be written to `to` without a kind change torch forbids (e.g. float -> int
// in an in-place op).
bool can_cast(ScalarType from, ScalarType to);

template <typename T> struct CppTypeToScalarType;
#define VT_MAP_TYPE(cpp, st) \
  template <> struct CppTypeToScalarType<cpp> { static constexpr ScalarType value = ScalarType::st; };
VT_MAP_TYPE(bool, Bool)
VT_MAP_TYPE(uint8_t, UInt8)
VT_MAP_TYPE(int8_t, Int8)
VT_MAP_TYPE(int16_t, Int16)
VT_MAP_TYPE(int32_t, Int32)
VT_MAP_TYPE(int64_t, Int64)
VT_MAP_TYPE(Half, Float16)
VT_MAP_TYPE(BFloat16, BFloat16)
VT_MAP_TYPE(float, Float32)
VT_MAP_TYPE(double, Float64)
#undef VT_MAP_TYPE
template <typename T> inline constexpr ScalarType scalar_type_of = CppTypeToScalarType<T>::value;

// The type arithmetic on T is carried out in: float for the 16-bit floats, T itself otherwise.
template <typename T> struct OpMath { using type = T; };
template <> struct OpMath<Half> { using type = float; };
template <> struct OpMath<BFloat16> { using type = float; };
template <typename T> using opmath_t = typename OpMath<T>::type;

// x < 0, not compared for unsigned T (always false there, and nvcc warns that the comparison is pointless).
template <typename T> VT_HOST_DEVICE constexpr bool below_zero(T x) {
  if constexpr (std::is_unsigned_v<T>) return false; else return x < T(0);
}

}  // namespace vt

#define VT_DTYPE_CASE(st, cpp, ...) \
  case ::vt::ScalarType::st: {      \
    using scalar_t = cpp;           \
    return __VA_ARGS__();           \
  }

#define VT_DISPATCH_FLOATING(dtype, opname, ...)                                               \
  [&] {                                                                                        \
    switch (dtype) {                                                                           \
      VT_DTYPE_CASE(Float32, float, __VA_ARGS__)                                               \
      VT_DTYPE_CASE(Float64, double, __VA_ARGS__)                                              \
      VT_DTYPE_CASE(Float16, ::vt::Half, __VA_ARGS__)                                          \
      VT_DTYPE_CASE(BFloat16, ::vt::BFloat16, __VA_ARGS__)                                     \
      default:                                                                                 \
        VT_FAIL_KIND(NotImplemented, "\"", opname, "\" not implemented for '", ::vt::dtype_name(dtype), "'");   \
    }                                                                                          \
  }()

#define VT_DISPATCH_INTEGRAL_CASES(...)            \
  VT_DTYPE_CASE(UInt8, uint8_t, __VA_ARGS__)       \
  VT_DTYPE_CASE(Int8, int8_t, __VA_ARGS__)         \
  VT_DTYPE_CASE(Int16, int16_t, __VA_ARGS__)       \
  VT_DTYPE_CASE(Int32, int32_t, __VA_ARGS__)       \
  VT_DTYPE_CASE(Int64, int64_t, __VA_ARGS__)

#define VT_DISPATCH_INTEGRAL(dtype, opname, ...)                                               \
  [&] {                                                                                        \
    switch (dtype) {                                                                           \
      VT_DISPATCH_INTEGRAL_CASES(__VA_ARGS__)                                                  \
      VT_DTYPE_CASE(Bool, bool, __VA_ARGS__)                                                   \
      default:                                                                                 \
        VT_FAIL_KIND(NotImplemented, "\"", opname, "\" not implemented for '", ::vt::dtype_name(dtype), "'");   \
    }                                                                                          \
  }()

// Every dtype except bool (arithmetic on bool is promoted or rejected before a kernel runs).
#define VT_DISPATCH_NUMERIC(dtype, opname, ...)                                                \
  [&] {                                                                                        \
    switch (dtype) {                                                                           \
      VT_DISPATCH_INTEGRAL_CASES(__VA_ARGS__)                                                  \
      VT_DTYPE_CASE(Float32, float, __VA_ARGS__)                                               \
      VT_DTYPE_CASE(Float64, double, __VA_ARGS__)                                              \
      VT_DTYPE_CASE(Float16, ::vt::Half, __VA_ARGS__)                                          \
      VT_DTYPE_CASE(BFloat16, ::vt::BFloat16, __VA_ARGS__)                                     \
      default:                                                                                 \
        VT_FAIL_KIND(NotImplemented, "\"", opname, "\" not implemented for '", ::vt::dtype_name(dtype), "'");   \
    }                                                                                          \
  }()

#define VT_DISPATCH_ALL(dtype, opname, ...)                                                    \
  [&] {                                                                                        \
    switch (dtype) {                                                                           \
      VT_DISPATCH_INTEGRAL_CASES(__VA_ARGS__)                                                  \
      VT_DTYPE_CASE(Bool, bool, __VA_ARGS__)                                                   \
      VT_DTYPE_CASE(Float32, float, __VA_ARGS__)                                               \
      VT_DTYPE_CASE(Float64, double, __VA_ARGS__)                                              \
      VT_DTYPE_CASE(Float16, ::vt::Half, __VA_ARGS__)                                          \
      VT_DTYPE_CASE(BFloat16, ::vt::BFloat16, __VA_ARGS__)                                     \
    }                                                                                          \
    VT_INTERNAL_ASSERT(false, "bad dtype");                                                    \
  }()
