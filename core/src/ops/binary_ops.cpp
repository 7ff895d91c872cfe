// Binary elementwise ops on the CPU: arithmetic, division modes, comparisons, logical and bitwise ops, each
// with an in-place variant. Every op is a functor over opmath values (float for 16-bit floats); the iterator
// does broadcasting, promotion and casting (vt/core/tensor_iterator.h).
#include <cmath>
#include <limits>
#include <unordered_map>

#include "cpu_loops.h"
#include "vt/core/dispatcher.h"
#include "vt/core/ops.h"

namespace vt {
namespace {

enum class Kind {
  Arith,        // result in the promoted dtype; bool allowed
  ArithNoBool,  // as Arith, but bool inputs are promoted to int64... torch rejects sub on bools (checked)
  Float,        // integer inputs promoted to float32 (true division, atan2)
  Compare,      // bool result
  Logical,      // bool result from truthiness
  Bitwise,      // integral and bool only
};

TensorIterator make_iter(const char* name, const Tensor& out, const Tensor& a, const Tensor& b, Kind kind) {
  TensorIteratorConfig cfg;
  cfg.add_output(out).add_input(a).add_input(b).promote_inputs_to_common_dtype(true).name(name);
  if (kind == Kind::Float) cfg.promote_integer_inputs_to_float(true);
  if (kind == Kind::Compare || kind == Kind::Logical) cfg.output_dtype(ScalarType::Bool);
  if (kind == Kind::Compare || kind == Kind::Logical) cfg.enforce_safe_casting_to_output(false);
  return cfg.build();
}

// Integer division and remainder by zero would trap; torch raises instead.
[[noreturn]] void zero_division() { VT_FAIL("ZeroDivisionError: integer division or modulo by zero"); }

template <typename T> bool any_zero(const TensorIterator& it) {
  if constexpr (std::is_integral_v<T>) {
    bool found = false;
    const_cast<TensorIterator&>(it).serial_for_each(
        [&](char** data, const int64_t* strides, int64_t n0, int64_t n1) {
          for (int64_t j = 0; j < n1; ++j)
            for (int64_t k = 0; k < n0; ++k)
              found |= *reinterpret_cast<T*>(data[2] + j * strides[5] + k * strides[2]) == T(0);
        },
        0, it.numel());
    return found;
  }
  return false;
}

template <typename T> bool any_negative(const TensorIterator& it) {
  bool found = false;
  const_cast<TensorIterator&>(it).serial_for_each(
      [&](char** data, const int64_t* strides, int64_t n0, int64_t n1) {
        for (int64_t j = 0; j < n1; ++j)
          for (int64_t k = 0; k < n0; ++k)
            found |= *reinterpret_cast<T*>(data[2] + j * strides[5] + k * strides[2]) < T(0);
      },
      0, it.numel());
  return found;
}

// INT_MIN / -1 traps on x86; torch wraps to INT_MIN (and the remainder is 0).
template <typename T> constexpr bool is_neg_one(T b) {
  if constexpr (std::is_signed_v<T> && std::is_integral_v<T>) return b == T(-1);
  else return false;
}
template <typename T> T wrapping_neg(T a) { return T(-static_cast<std::make_unsigned_t<T>>(a)); }

// ---- functors: operate on opmath values ----
struct AddF { template <typename T> T operator()(T a, T b) const { return a + b; } };
struct SubF { template <typename T> T operator()(T a, T b) const { return a - b; } };
struct MulF { template <typename T> T operator()(T a, T b) const {
  if constexpr (std::is_same_v<T, bool>) return a && b; else return a * b; } };
struct DivF { template <typename T> T operator()(T a, T b) const { return a / b; } };
struct DivTruncF { template <typename T> T operator()(T a, T b) const {
  if constexpr (std::is_floating_point_v<T>) return std::trunc(a / b);
  else return is_neg_one(b) ? wrapping_neg(a) : T(a / b); } };
struct DivFloorF { template <typename T> T operator()(T a, T b) const {
  if constexpr (std::is_floating_point_v<T>) {
    if (b == 0) return a / b;
    T mod = std::fmod(a, b);
    T div = (a - mod) / b;
    if (mod != 0 && ((b < 0) != (mod < 0))) div -= T(1);
    if (div == 0) return std::copysign(T(0), a / b);
    T fl = std::floor(div);
    if (div - fl > T(0.5)) fl += T(1);
    return fl;
  } else {
    if (is_neg_one(b)) return wrapping_neg(a);
    T q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
    return q;
  }
} };
struct RemainderF { template <typename T> T operator()(T a, T b) const {
  if constexpr (std::is_floating_point_v<T>) {
    T m = std::fmod(a, b);
    if (m != 0 && ((b < 0) != (m < 0))) m += b;
    return m;
  } else {
    if (is_neg_one(b)) return T(0);
    T m = a % b;
    if (m != 0 && ((b < 0) != (m < 0))) m += b;
    return m;
  }
} };
struct FmodF { template <typename T> T operator()(T a, T b) const {
  if constexpr (std::is_floating_point_v<T>) return std::fmod(a, b);
  else return is_neg_one(b) ? T(0) : T(a % b); } };
struct PowF { template <typename T> T operator()(T a, T b) const {
  if constexpr (std::is_floating_point_v<T>) {
    return std::pow(a, b);
  } else if constexpr (std::is_same_v<T, bool>) {
    return a || !b;
  } else {
    if (b < 0) return a == 1 ? T(1) : a == T(-1) ? ((b % 2) ? T(-1) : T(1)) : T(0);
    T r = 1;
    for (T base = a, e = b; e; e >>= 1, base = T(base * base))
      if (e & 1) r = T(r * base);
    return r;
  }
} };
struct MaxF { template <typename T> T operator()(T a, T b) const {
  if constexpr (std::is_floating_point_v<T>) { if (std::isnan(a) || std::isnan(b)) return a + b; }
  return a > b ? a : b; } };
struct MinF { template <typename T> T operator()(T a, T b) const {
  if constexpr (std::is_floating_point_v<T>) { if (std::isnan(a) || std::isnan(b)) return a + b; }
  return a < b ? a : b; } };
struct Atan2F { template <typename T> T operator()(T a, T b) const { return std::atan2(a, b); } };
struct BitAndF { template <typename T> T operator()(T a, T b) const { return T(a & b); } };
struct BitOrF { template <typename T> T operator()(T a, T b) const { return T(a | b); } };
struct BitXorF { template <typename T> T operator()(T a, T b) const { return T(a ^ b); } };
struct EqF { template <typename T> bool operator()(T a, T b) const { return a == b; } };
struct NeF { template <typename T> bool operator()(T a, T b) const { return a != b; } };
struct LtF { template <typename T> bool operator()(T a, T b) const { return a < b; } };
struct LeF { template <typename T> bool operator()(T a, T b) const { return a <= b; } };
struct GtF { template <typename T> bool operator()(T a, T b) const { return a > b; } };
struct GeF { template <typename T> bool operator()(T a, T b) const { return a >= b; } };
struct LAndF { template <typename T> bool operator()(T a, T b) const { return (a != T(0)) && (b != T(0)); } };
struct LOrF { template <typename T> bool operator()(T a, T b) const { return (a != T(0)) || (b != T(0)); } };
struct LXorF { template <typename T> bool operator()(T a, T b) const { return (a != T(0)) != (b != T(0)); } };

template <typename F, Kind K> constexpr bool int_division = std::is_same_v<F, DivTruncF> ||
    std::is_same_v<F, DivFloorF> || std::is_same_v<F, RemainderF> || std::is_same_v<F, FmodF>;

template <typename F, Kind K>
void run(TensorIterator& it, const char* name) {
  F f;
  ScalarType t = it.common_dtype();
  if constexpr (K == Kind::Compare || K == Kind::Logical) {
    VT_DISPATCH_ALL(t, name, [&] {
      using M = opmath_t<scalar_t>;
      cpu::cpu_kernel(it, [f](scalar_t a, scalar_t b) -> bool { return f(M(a), M(b)); });
    });
  } else if constexpr (K == Kind::Bitwise) {
    VT_CHECK_KIND(NotImplemented, !is_floating(t), "\"", name, "\" not implemented for '", dtype_name(t), "'");
    VT_DISPATCH_INTEGRAL(t, name, [&] {
      cpu::cpu_kernel(it, [f](scalar_t a, scalar_t b) -> scalar_t { return f(a, b); });
    });
  } else {
    auto body = [&]<typename scalar_t>() {
      using M = opmath_t<scalar_t>;
      if constexpr (int_division<F, K>) {
        if (any_zero<scalar_t>(it)) zero_division();
      }
      if constexpr (std::is_same_v<F, PowF> && std::is_integral_v<scalar_t>) {
        // Only a negative Python-number exponent is an error; read it before the cast to the base's dtype.
        bool negative = false;
        if (it.input_is_wrapped_number(1)) {
          const Tensor& e = it.input_original(1);
          negative = e.dtype() == ScalarType::Int64 && *e.data<int64_t>() < 0;
        }
        VT_CHECK(!negative, "Integers to negative integer powers are not allowed.");
      }
      cpu::cpu_kernel(it, [f](scalar_t a, scalar_t b) -> scalar_t { return scalar_t(f(M(a), M(b))); });
    };
    if constexpr (!int_division<F, K>) {
      // pow(bool, bool tensor) is rejected by torch; a Python-number exponent is fine.
      if (t == ScalarType::Bool && (!std::is_same_v<F, PowF> || it.input_is_wrapped_number(1)))
        return body.template operator()<bool>();
    }
    VT_DISPATCH_NUMERIC(t, name, [&] { body.template operator()<scalar_t>(); });
  }
}

template <typename F, Kind K>
Tensor binary_out(const char* name, const Tensor& out, const Tensor& a, const Tensor& b) {
  TensorIterator it = make_iter(name, out, a, b, K);
  if (out.defined()) out.bump_version();
  run<F, K>(it, name);
  return it.output();
}

// One functional and one in-place kernel per op, as plain functions the dispatcher can hold.
template <typename F, Kind K, const char* Name>
Tensor functional(const Tensor& a, const Tensor& b) { return binary_out<F, K>(Name, Tensor(), a, b); }
template <typename F, Kind K, const char* Name>
Tensor inplace(const Tensor& self, const Tensor& b) { return binary_out<F, K>(Name, self, self, b); }

// ---- add / sub with alpha ----
// other * alpha, in the dtype the op will compute in, so alpha never changes the result type.
Tensor scaled(const Tensor& a, const Tensor& b, const Scalar& alpha, const char* name) {
  ScalarType rt = result_type({a, b});
  VT_CHECK(!alpha.is_bool() || rt == ScalarType::Bool, name, ": Boolean alpha only supported for Boolean results.");
  VT_CHECK(!(alpha.is_floating() && !is_floating(rt)), name,
           ": for integral input tensors, argument alpha must not be a floating point number.");
  if (!alpha.is_floating() && alpha.to_int() == 1) return b;
  Tensor s = binary_out<MulF, Kind::Arith>("mul", Tensor(), b, scalar_to_tensor(alpha, alpha.natural_dtype()));
  if (s.dtype() != rt) s = ops::to_dtype(s, rt);
  if (b.impl()->is_wrapped_number()) s.impl()->set_wrapped_number(true);
  return s;
}
void check_sub(const Tensor& a, const Tensor& b) {
  VT_CHECK(!(a.dtype() == ScalarType::Bool && b.dtype() == ScalarType::Bool),
           "Subtraction, the `-` operator, with two bool tensors is not supported. Use the `^` or `logical_xor()` "
           "operator instead.");
  VT_CHECK(!(a.dtype() == ScalarType::Bool || b.dtype() == ScalarType::Bool),
           "Subtraction, the `-` operator, with a bool tensor is not supported. If you are trying to invert a mask, "
           "use the `~` or `logical_not()` operator instead.");
}
Tensor add_cpu(const Tensor& a, const Tensor& b, const Scalar& alpha) {
  return binary_out<AddF, Kind::Arith>("add", Tensor(), a, scaled(a, b, alpha, "add"));
}
Tensor add_cpu_(const Tensor& a, const Tensor& b, const Scalar& alpha) {
  return binary_out<AddF, Kind::Arith>("add_", a, a, scaled(a, b, alpha, "add_"));
}
Tensor sub_cpu(const Tensor& a, const Tensor& b, const Scalar& alpha) {
  check_sub(a, b);
  return binary_out<SubF, Kind::Arith>("sub", Tensor(), a, scaled(a, b, alpha, "sub"));
}
Tensor sub_cpu_(const Tensor& a, const Tensor& b, const Scalar& alpha) {
  check_sub(a, b);
  return binary_out<SubF, Kind::Arith>("sub_", a, a, scaled(a, b, alpha, "sub_"));
}

// ---- div with rounding modes ----
Tensor div_impl(const Tensor& out, const Tensor& a, const Tensor& b, const std::optional<std::string>& mode) {
  if (!mode) return binary_out<DivF, Kind::Float>("div", out, a, b);
  if (*mode == "trunc") return binary_out<DivTruncF, Kind::Arith>("div", out, a, b);
  if (*mode == "floor") return binary_out<DivFloorF, Kind::Arith>("div", out, a, b);
  VT_FAIL("div expected rounding_mode to be one of None, 'trunc', or 'floor' but found '", *mode, "'");
}
Tensor div_cpu(const Tensor& a, const Tensor& b, std::optional<std::string> mode) {
  return div_impl(Tensor(), a, b, mode);
}
Tensor div_cpu_(const Tensor& a, const Tensor& b, std::optional<std::string> mode) {
  return div_impl(a, a, b, mode);
}

#define VT_NAME(id) constexpr char k_##id[] = #id;
VT_NAME(mul) VT_NAME(floor_divide) VT_NAME(remainder) VT_NAME(fmod) VT_NAME(pow) VT_NAME(maximum)
VT_NAME(minimum) VT_NAME(atan2) VT_NAME(bitwise_and) VT_NAME(bitwise_or) VT_NAME(bitwise_xor) VT_NAME(eq)
VT_NAME(ne) VT_NAME(lt) VT_NAME(le) VT_NAME(gt) VT_NAME(ge) VT_NAME(logical_and) VT_NAME(logical_or)
VT_NAME(logical_xor)
#undef VT_NAME

}  // namespace

VT_LIBRARY(vt, binary) {
  m.def("add(Tensor self, Tensor other, *, Scalar alpha=1) -> Tensor");
  m.def("add_(Tensor self, Tensor other, *, Scalar alpha=1) -> Tensor");
  m.def("sub(Tensor self, Tensor other, *, Scalar alpha=1) -> Tensor");
  m.def("sub_(Tensor self, Tensor other, *, Scalar alpha=1) -> Tensor");
  m.def("div(Tensor self, Tensor other, *, str? rounding_mode=None) -> Tensor");
  m.def("div_(Tensor self, Tensor other, *, str? rounding_mode=None) -> Tensor");
  m.impl("add", DispatchKey::CPU, &add_cpu);
  m.impl("add_", DispatchKey::CPU, &add_cpu_);
  m.impl("sub", DispatchKey::CPU, &sub_cpu);
  m.impl("sub_", DispatchKey::CPU, &sub_cpu_);
  m.impl("div", DispatchKey::CPU, &div_cpu);
  m.impl("div_", DispatchKey::CPU, &div_cpu_);
#define VT_BINARY(id, F, K)                                                       \
  m.def(#id "(Tensor self, Tensor other) -> Tensor");                           \
  m.def(#id "_(Tensor self, Tensor other) -> Tensor");                          \
  m.impl(#id, DispatchKey::CPU, &functional<F, Kind::K, k_##id>);               \
  m.impl(#id "_", DispatchKey::CPU, &inplace<F, Kind::K, k_##id>);
  VT_BINARY(mul, MulF, Arith)
  VT_BINARY(floor_divide, DivFloorF, Arith)
  VT_BINARY(remainder, RemainderF, Arith)
  VT_BINARY(fmod, FmodF, Arith)
  VT_BINARY(pow, PowF, Arith)
  VT_BINARY(maximum, MaxF, Arith)
  VT_BINARY(minimum, MinF, Arith)
  VT_BINARY(atan2, Atan2F, Float)
  VT_BINARY(bitwise_and, BitAndF, Bitwise)
  VT_BINARY(bitwise_or, BitOrF, Bitwise)
  VT_BINARY(bitwise_xor, BitXorF, Bitwise)
  VT_BINARY(eq, EqF, Compare)
  VT_BINARY(ne, NeF, Compare)
  VT_BINARY(lt, LtF, Compare)
  VT_BINARY(le, LeF, Compare)
  VT_BINARY(gt, GtF, Compare)
  VT_BINARY(ge, GeF, Compare)
  VT_BINARY(logical_and, LAndF, Logical)
  VT_BINARY(logical_or, LOrF, Logical)
  VT_BINARY(logical_xor, LXorF, Logical)
#undef VT_BINARY
}

namespace ops {
Tensor add(const Tensor& a, const Tensor& b, const Scalar& alpha) {
  static const TypedOp<Tensor(const Tensor&, const Tensor&, const Scalar&)> op("vt::add");
  return op(a, b, alpha);
}
Tensor sub(const Tensor& a, const Tensor& b, const Scalar& alpha) {
  static const TypedOp<Tensor(const Tensor&, const Tensor&, const Scalar&)> op("vt::sub");
  return op(a, b, alpha);
}
Tensor mul(const Tensor& a, const Tensor& b) { return binary("vt::mul", a, b); }
Tensor div(const Tensor& a, const Tensor& b) {
  static const TypedOp<Tensor(const Tensor&, const Tensor&, std::optional<std::string>)> op("vt::div");
  return op(a, b, std::nullopt);
}
// Entries looked up by name once per thread and call site (callers pass string literals), so composite ops
// never take the dispatcher's registration lock on the call path (Note [Dispatcher locking]).
static OperatorEntry& cached_entry(const char* qualname) {
  thread_local std::unordered_map<const char*, OperatorEntry*> cache;
  OperatorEntry*& e = cache[qualname];
  if (!e) e = &Dispatcher::get().entry(qualname);
  return *e;
}
Tensor binary(const char* qualname, const Tensor& a, const Tensor& b) {
  return cached_entry(qualname).call<Tensor, const Tensor&, const Tensor&>(Layer::Python, a, b);
}
Tensor unary(const char* qualname, const Tensor& a) {
  return cached_entry(qualname).call<Tensor, const Tensor&>(Layer::Python, a);
}
}  // namespace ops

}  // namespace vt
