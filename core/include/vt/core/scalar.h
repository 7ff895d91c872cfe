#pragma once
// Scalar: a Python number carried into an op (alpha, fill values, the `1` in `x + 1`). It remembers its kind
// (bool, integer, floating) because type promotion treats a Python scalar by kind only: int tensor + 2.5 gives
// the default float dtype, float16 tensor + 2.5 stays float16.
#include <cstdint>

#include "vt/core/dtype.h"

namespace vt {

class Scalar {
 public:
  enum class Kind : uint8_t { Bool, Int, Float };
  Scalar() : Scalar(int64_t(0)) {}
  Scalar(bool b) : kind_(Kind::Bool), i_(b) {}
  Scalar(int v) : kind_(Kind::Int), i_(v) {}
  Scalar(int64_t v) : kind_(Kind::Int), i_(v) {}
  Scalar(double v) : kind_(Kind::Float), d_(v) {}

  Kind kind() const { return kind_; }
  bool is_floating() const { return kind_ == Kind::Float; }
  bool is_integral() const { return kind_ == Kind::Int; }
  bool is_bool() const { return kind_ == Kind::Bool; }
  double to_double() const { return kind_ == Kind::Float ? d_ : double(i_); }
  int64_t to_int() const { return kind_ == Kind::Float ? int64_t(d_) : i_; }
  bool to_bool() const { return kind_ == Kind::Float ? d_ != 0.0 : i_ != 0; }
  template <typename T> T to() const {
    if constexpr (std::is_same_v<T, bool>) return to_bool();
    else if constexpr (std::is_integral_v<T>) return kind_ == Kind::Float ? T(int64_t(d_)) : T(i_);
    else return T(kind_ == Kind::Float ? d_ : double(i_));
  }
  // The dtype a 0-dim tensor holding this value gets: bool, int64 or float64 (promotion then uses its kind).
  ScalarType natural_dtype() const {
    return kind_ == Kind::Bool ? ScalarType::Bool : kind_ == Kind::Int ? ScalarType::Int64 : ScalarType::Float64;
  }

 private:
  Kind kind_;
  union {
    int64_t i_;
    double d_;
  };
};

// RuntimeError when `v` cannot be stored in `t` ("value cannot be converted to type int8 without overflow").
void check_scalar_fits(const Scalar& v, ScalarType t);

}  // namespace vt
