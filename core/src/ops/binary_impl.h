#pragma once
// Binary elementwise ops for one backend: arithmetic, division modes, comparisons, logical and bitwise ops,
// each with an in-place variant. `Launch` runs a functor over a TensorIterator (CpuLaunch in cpu_loops.h,
// CudaLaunch in cuda/loops.cuh); everything else - promotion, checks, alpha, rounding modes - is shared, so the
// CPU and CUDA kernels cannot drift apart. register_binary() registers every kernel under one dispatch key.
#include <limits>
#include <optional>
#include <string>

#include "binary_functors.h"
#include "vt/core/dispatcher.h"
#include "vt/core/ops.h"
#include "vt/core/tensor_iterator.h"

namespace vt::binary {

enum class Kind {
  Arith,    // result in the promoted dtype; bool allowed
  Float,    // integer inputs promoted to float32 (true division, atan2)
  Compare,  // bool result
  Logical,  // bool result from truthiness
  Bitwise,  // integral and bool only
};

inline TensorIterator make_iter(const char* name, const Tensor& out, const Tensor& a, const Tensor& b, Kind kind) {
  TensorIteratorConfig cfg;
  cfg.add_output(out).add_input(a).add_input(b).promote_inputs_to_common_dtype(true).name(name);
  if (kind == Kind::Float) cfg.promote_integer_inputs_to_float(true);
  if (kind == Kind::Compare || kind == Kind::Logical) {
    cfg.output_dtype(ScalarType::Bool);
    cfg.enforce_safe_casting_to_output(false);
  }
  return cfg.build();
}

// Integer division and remainder by zero would trap on the CPU; torch raises instead. (On the GPU they do
// not trap, and checking would need a host sync, so CUDA kernels skip the check as torch's do.)
template <typename T> bool any_zero_divisor(TensorIterator& it) {
  bool found = false;
  it.serial_for_each(
      [&](char** data, const int64_t* strides, int64_t n0, int64_t n1) {
        for (int64_t j = 0; j < n1; ++j)
          for (int64_t k = 0; k < n0; ++k) found |= *reinterpret_cast<T*>(data[2] + j * strides[5] + k * strides[2]) == T(0);
      },
      0, it.numel());
  return found;
}

template <typename F> constexpr bool int_division = std::is_same_v<F, DivTruncF> || std::is_same_v<F, DivFloorF> ||
                                                    std::is_same_v<F, RemainderF> || std::is_same_v<F, FmodF>;

// Note [Divisors read mid-kernel]: the scan above runs before any element is written, but a divisor that
// shares memory with the output in a way the overlap check cannot decide (x[..., ::2].remainder_(x[0]) of a
// strided x, which torch also allows) is rewritten while the kernel runs, and can become 0 there (x[0] % x[0]).
// So the host kernel checks each divisor again as it reads it and raises after the loop, as torch's kernel
// raises from inside: elements before the zero are written, as in torch, and nothing traps.
template <typename F, Kind K, typename Launch, typename S> void run_arith(TensorIterator& it) {
  if constexpr (int_division<F> && std::is_integral_v<S> && Launch::kHost) {
    VT_CHECK(!any_zero_divisor<S>(it), "ZeroDivisionError: integer division or modulo by zero");
    std::atomic<bool> zero{false};
    Launch::kernel(it, CheckedIntDivOp<S, F>{F{}, &zero});
    VT_CHECK(!zero.load(), "ZeroDivisionError: integer division or modulo by zero");
    return;
  }
  if constexpr (std::is_same_v<F, PowF>) {
    // A Python-number exponent is cast to the base's dtype, so it must fit it (as torch: uint8 ** 2**31 and
    // float16 ** 2**31 are refused); for integers only a negative one is an error, read before that cast.
    bool negative = false;
    if (it.input_is_wrapped_number(1)) {
      const Tensor& e = it.input_original(1);
      negative = std::is_integral_v<S> && e.dtype() == ScalarType::Int64 && *e.data<int64_t>() < 0;
      if (!negative) check_scalar_fits(item_scalar(e), it.common_dtype());
    }
    VT_CHECK(!negative, "Integers to negative integer powers are not allowed.");
    if constexpr (Launch::kHost && std::is_floating_point_v<opmath_t<S>>) {
      if (it.input_is_wrapped_number(1)) {
        const double e = item_scalar(it.input_original(1)).to_double();
        if (e == 2) return Launch::kernel(it, SmallPowOp<S, SmallPow::Square>{});
        if (e == 3) return Launch::kernel(it, SmallPowOp<S, SmallPow::Cube>{});
        if (e == -1) return Launch::kernel(it, SmallPowOp<S, SmallPow::Reciprocal>{});
        if (e == -2) return Launch::kernel(it, SmallPowOp<S, SmallPow::InverseSquare>{});
        if (e == 0.5) return Launch::kernel(it, SmallPowOp<S, SmallPow::Sqrt>{});
        if (e == -0.5) return Launch::kernel(it, SmallPowOp<S, SmallPow::Rsqrt>{});
      }
    }
  }
  if constexpr ((std::is_same_v<F, MulF> || std::is_same_v<F, DivF> || std::is_same_v<F, DivTruncF> ||
                 std::is_same_v<F, DivFloorF>) && (std::is_same_v<S, Half> || std::is_same_v<S, BFloat16>)) {
    // Note [Opmath scalars]: a CPU scalar right operand of a 16-bit mul or division (true, trunc, floor) is
    // read in opmath from the value the caller gave, not from its 16-bit rounding, as torch does: x * 70000 for
    // a float16 x of 0.5 is 35008, not 0.5 * inf (70000 is past float16's range), 0 * 70000 is 0, not NaN, and
    // 3 // 3.0009765625 is 0, not 3 // 3 = 1. remainder and fmod take the rounded operand, as torch's do. A
    // scalar is any one-element CPU tensor, whatever its dims (torch's is_scalar: an operand broadcast along
    // every dim; fuzz seed 188: a float16 zero times an int32 [[[2**31 - 1]]] is 0 in torch, not 0 * inf).
    if (const Tensor& b = it.input_original(1); b.numel() == 1 && b.device().is_cpu()) {
      return Launch::kernel(it, ScalarRightOp<S, F>{item_scalar(b).to<opmath_t<S>>(), F{}});
    }
  }
  Launch::kernel(it, ArithOp<S, F>{});
}

// Note [Dtypes each op meets]: every case of a dtype switch is a kernel per backend (two on CUDA), so the
// switches below list only the dtypes that can reach them: Float ops (true division, atan2) see floating
// common dtypes only, since the iterator promoted integers and bool to float32; sub never sees bool, since
// check_sub refused bool operands before the iterator was built; the integer divisions reject bool (the
// switch's NotImplemented). A dtype that could not reach its switch would fail there with NotImplemented,
// never compute with the wrong kernel.
template <typename F> constexpr bool meets_bool = !int_division<F> && !std::is_same_v<F, SubF>;

template <typename F, Kind K, typename Launch> void run(TensorIterator& it, const char* name) {
  ScalarType t = it.common_dtype();
  if constexpr (K == Kind::Compare || K == Kind::Logical) {
    VT_DISPATCH_ALL(t, name, [&] { Launch::kernel(it, PredicateOp<scalar_t, F>{}); });
  } else if constexpr (K == Kind::Bitwise) {
    VT_CHECK_KIND(NotImplemented, !is_floating(t), "\"", name, "\" not implemented for '", dtype_name(t), "'");
    VT_DISPATCH_INTEGRAL(t, name, [&] { Launch::kernel(it, ArithOp<scalar_t, F>{}); });
  } else if constexpr (K == Kind::Float) {
    VT_DISPATCH_FLOATING(t, name, [&] { run_arith<F, K, Launch, scalar_t>(it); });
  } else {
    if constexpr (meets_bool<F>) {
      // pow(bool, bool tensor) is rejected by torch; a Python-number exponent is fine.
      if (t == ScalarType::Bool && (!std::is_same_v<F, PowF> || it.input_is_wrapped_number(1)))
        return run_arith<F, K, Launch, bool>(it);
    }
    VT_DISPATCH_NUMERIC(t, name, [&] { run_arith<F, K, Launch, scalar_t>(it); });
  }
}

template <typename F, Kind K, typename Launch>
Tensor binary_out(const char* name, const Tensor& out, const Tensor& a, const Tensor& b) {
  TensorIterator it = make_iter(name, out, a, b, K);
  if (out.defined()) out.bump_version();
  run<F, K, Launch>(it, name);
  return it.output();
}

// One functional and one in-place kernel per op, as plain functions the dispatcher can hold.
template <typename F, Kind K, typename Launch, const char* Name>
Tensor functional(const Tensor& a, const Tensor& b) { return binary_out<F, K, Launch>(Name, Tensor(), a, b); }
template <typename F, Kind K, typename Launch, const char* Name>
Tensor inplace(const Tensor& self, const Tensor& b) { return binary_out<F, K, Launch>(Name, self, self, b); }

// ---- add / sub with alpha ----
// a + alpha * b in one kernel, computed in opmath and rounded once, as torch does; alpha never changes the
// result type. Subtraction negates alpha (wrapping for unsigned types, like the subtraction itself).
template <typename S> struct AddScaledOp {
  opmath_t<S> alpha;
  VT_HOST_DEVICE S operator()(S a, S b) const {
    if constexpr (wraps<opmath_t<S>>())  // Note [Wrapping integer arithmetic]
      return S(wrapping_add(opmath_t<S>(a), wrapping_mul(alpha, opmath_t<S>(b))));
    else
      return S(opmath_t<S>(a) + alpha * opmath_t<S>(b));
  }
};
inline void check_sub(const Tensor& a, const Tensor& b) {
  VT_CHECK(!(a.dtype() == ScalarType::Bool && b.dtype() == ScalarType::Bool),
           "Subtraction, the `-` operator, with two bool tensors is not supported. Use the `^` or `logical_xor()` "
           "operator instead.");
  VT_CHECK(!(a.dtype() == ScalarType::Bool || b.dtype() == ScalarType::Bool),
           "Subtraction, the `-` operator, with a bool tensor is not supported. If you are trying to invert a mask, "
           "use the `~` or `logical_not()` operator instead.");
}
template <typename F, bool InPlace, typename Launch>
Tensor add_sub(const Tensor& a, const Tensor& b, const Scalar& alpha) {
  constexpr bool is_sub = std::is_same_v<F, SubF>;
  const char* name = is_sub ? (InPlace ? "sub_" : "sub") : (InPlace ? "add_" : "add");
  if (is_sub) check_sub(a, b);
  ScalarType rt = result_type({a, b});
  VT_CHECK(!alpha.is_bool() || rt == ScalarType::Bool, name, ": Boolean alpha only supported for Boolean results.");
  VT_CHECK(!(alpha.is_floating() && !is_floating(rt)), name,
           ": for integral input tensors, argument alpha must not be a floating point number.");
  check_scalar_fits(alpha, rt);  // as torch: alpha must fit the result dtype
  // sub negates alpha first, and torch checks the negation too (sub(int32, alpha=-2**31) is refused); -2**63
  // wraps to itself in torch's int64 negation, so it stays accepted
  if (is_sub && alpha.is_integral() && alpha.to_int() != std::numeric_limits<int64_t>::min())
    check_scalar_fits(Scalar(-alpha.to_int()), rt);
  Tensor out = InPlace ? a : Tensor();
  if (!alpha.is_floating() && alpha.to_int() == 1) return binary_out<F, Kind::Arith, Launch>(name, out, a, b);
  TensorIterator it = make_iter(name, out, a, b, Kind::Arith);
  if (InPlace) a.bump_version();
  auto launch = [&]<typename S>() {
    using M = opmath_t<S>;
    M al = alpha.to<M>();
    Launch::kernel(it, AddScaledOp<S>{is_sub ? M(-al) : al});
  };
  if (it.common_dtype() == ScalarType::Bool) {
    VT_INTERNAL_ASSERT(!is_sub, "sub: bool operands are refused before dispatch");
    if constexpr (!is_sub) launch.template operator()<bool>();  // Note [Dtypes each op meets]
  } else {
    VT_DISPATCH_NUMERIC(it.common_dtype(), name, [&] { launch.template operator()<scalar_t>(); });
  }
  return it.output();
}

// ---- div with rounding modes ----
template <bool InPlace, typename Launch>
Tensor div(const Tensor& a, const Tensor& b, std::optional<std::string> mode) {
  Tensor out = InPlace ? a : Tensor();
  if (!mode) return binary_out<DivF, Kind::Float, Launch>("div", out, a, b);
  if (*mode == "trunc") return binary_out<DivTruncF, Kind::Arith, Launch>("div", out, a, b);
  if (*mode == "floor") return binary_out<DivFloorF, Kind::Arith, Launch>("div", out, a, b);
  VT_FAIL("div expected rounding_mode to be one of None, 'trunc', or 'floor' but found '", *mode, "'");
}

#define VT_NAME(id) inline constexpr char k_##id[] = #id;
VT_NAME(mul) VT_NAME(floor_divide) VT_NAME(remainder) VT_NAME(fmod) VT_NAME(pow) VT_NAME(maximum)
VT_NAME(minimum) VT_NAME(atan2) VT_NAME(bitwise_and) VT_NAME(bitwise_or) VT_NAME(bitwise_xor) VT_NAME(eq)
VT_NAME(ne) VT_NAME(lt) VT_NAME(le) VT_NAME(gt) VT_NAME(ge) VT_NAME(logical_and) VT_NAME(logical_or)
VT_NAME(logical_xor)
#undef VT_NAME

template <typename Launch> void register_binary(Library& m, DispatchKey key) {
  m.impl("add", key, &add_sub<AddF, false, Launch>);
  m.impl("add_", key, &add_sub<AddF, true, Launch>);
  m.impl("sub", key, &add_sub<SubF, false, Launch>);
  m.impl("sub_", key, &add_sub<SubF, true, Launch>);
  m.impl("div", key, &div<false, Launch>);
  m.impl("div_", key, &div<true, Launch>);
#define VT_BINARY(id, F, K)                                             \
  m.impl(#id, key, &functional<F, Kind::K, Launch, k_##id>);            \
  m.impl(#id "_", key, &inplace<F, Kind::K, Launch, k_##id>);
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

}  // namespace vt::binary
