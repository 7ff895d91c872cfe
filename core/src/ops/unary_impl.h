#pragma once
// Unary elementwise ops for one backend - math functions, rounding, predicates, activations - and the few
// ternary ones (where, clamp, masked_fill). `Launch` runs a functor over a TensorIterator (CpuLaunch or
// CudaLaunch); promotion and argument checks are shared, so the backends cannot drift apart. Floating
// functions promote integer inputs to float32, as torch does.
#include <cmath>
#include <limits>
#include <optional>
#include <string>

#include "cpu_gelu.h"
#include "unary_functors.h"
#include "vt/core/dispatcher.h"
#include "vt/core/ops.h"
#include "vt/core/tensor_iterator.h"

namespace vt::unary {

enum class Kind {
  Float,      // integer inputs become float32 (exp, sin, sigmoid...)
  FloatOnly,  // floating inputs only (silu, mish, logsigmoid), as in torch
  Same,       // result keeps the dtype; bool rejected (neg, abs, relu...)
  Rounding,   // identity on integers (floor, ceil, round, trunc)
  Predicate   // bool result (isnan...)
};

inline TensorIterator make_iter(const char* name, const Tensor& out, const Tensor& a, Kind kind) {
  TensorIteratorConfig cfg;
  cfg.add_output(out).add_input(a).promote_inputs_to_common_dtype(true).name(name);
  if (kind == Kind::Float) cfg.promote_integer_inputs_to_float(true);
  if (kind == Kind::Predicate) cfg.output_dtype(ScalarType::Bool).enforce_safe_casting_to_output(false);
  return cfg.build();
}

template <typename F, Kind K, typename Launch> void run(TensorIterator& it, const char* name) {
  ScalarType t = it.common_dtype();
  if constexpr (K == Kind::Predicate) {
    VT_DISPATCH_ALL(t, name, [&] { Launch::kernel(it, PredicateOp<scalar_t, F>{}); });
  } else if constexpr (K == Kind::Float || K == Kind::FloatOnly) {
    if constexpr (K == Kind::FloatOnly) {
      ScalarType in = it.operand(it.noutputs()).dtype();
      VT_CHECK_KIND(NotImplemented, is_floating(in), "\"", name, "\" not implemented for '", dtype_name(in), "'");
    }
    VT_DISPATCH_FLOATING(t, name, [&] { Launch::kernel(it, MapOp<scalar_t, F>{}); });
  } else {
    // torch: sign(bool) is the identity, and so is abs(bool) on CUDA (its CPU kernel rejects it); rounding,
    // neg, relu... reject bool.
    constexpr bool bool_identity = std::is_same_v<F, SignF> || (std::is_same_v<F, AbsF> && !Launch::kHost);
    VT_CHECK_KIND(NotImplemented, t != ScalarType::Bool || bool_identity, "\"", name, "\" not implemented for 'bool'");
    if (t == ScalarType::Bool) return Launch::kernel(it, BoolIdentityOp{});
    if constexpr (K == Kind::Rounding) {
      // Note [Rounding integers]: floor, ceil, trunc and round are the identity on integers (each functor
      // returns its integer argument), so the four share one kernel per integer dtype, TruncF's.
      if (is_floating(t)) return VT_DISPATCH_FLOATING(t, name, [&] { Launch::kernel(it, MapOp<scalar_t, F>{}); });
      [&] {
        switch (t) {
          VT_DISPATCH_INTEGRAL_CASES([&] { Launch::kernel(it, MapOp<scalar_t, TruncF>{}); })
          default: VT_INTERNAL_ASSERT(false, "rounding: integer dtype");
        }
      }();
    } else {
      VT_DISPATCH_NUMERIC(t, name, [&] { Launch::kernel(it, MapOp<scalar_t, F>{}); });
    }
  }
}

template <typename F, Kind K, typename Launch, const char* Name> Tensor functional(const Tensor& a) {
  TensorIterator it = make_iter(Name, Tensor(), a, K);
  run<F, K, Launch>(it, Name);
  return it.output();
}
template <typename F, Kind K, typename Launch, const char* Name> Tensor inplace(const Tensor& self) {
  TensorIterator it = make_iter(Name, self, self, K);
  self.bump_version();
  run<F, K, Launch>(it, Name);
  return self;
}

// ---- bitwise_not: integral and bool only ----
template <bool InPlace, typename Launch> Tensor bitwise_not(const Tensor& a) {
  VT_CHECK_KIND(NotImplemented, !is_floating(a.dtype()), "\"bitwise_not\" not implemented for '", dtype_name(a.dtype()), "'");
  if (InPlace) a.bump_version();
  TensorIterator it = make_iter("bitwise_not", InPlace ? a : Tensor(), a, Kind::Same);
  VT_DISPATCH_INTEGRAL(a.dtype(), "bitwise_not", [&] { Launch::kernel(it, BitNotOp<scalar_t>{}); });
  return it.output();
}

// ---- parameterised activations ----
template <typename Launch, typename G> Tensor float_map(const char* name, const Tensor& a, G g) {
  VT_CHECK_KIND(NotImplemented, is_floating(a.dtype()), "\"", name, "\" not implemented for '", dtype_name(a.dtype()), "'");
  TensorIterator it = make_iter(name, Tensor(), a, Kind::Float);
  VT_DISPATCH_FLOATING(it.common_dtype(), name, [&] { Launch::kernel(it, MapOp<scalar_t, G>{g}); });
  return it.output();
}
template <typename Launch> Tensor gelu(const Tensor& a, std::string approximate) {
  VT_CHECK(approximate == "none" || approximate == "tanh",
           "gelu: approximate argument must be either none or tanh, got '", approximate, "'");
  if constexpr (Launch::kHost) {  // float32 rounds as torch's oneDNN gelu does (Note [gelu rounds as torch's oneDNN])
    if (approximate == "none" && a.dtype() == ScalarType::Float32) return cpu_gelu::gelu(a);
  }
  return approximate == "tanh" ? float_map<Launch>("gelu", a, GeluTanhF{}) : float_map<Launch>("gelu", a, GeluF{});
}
template <typename Launch> Tensor softplus(const Tensor& a, const Scalar& beta, const Scalar& threshold) {
  return float_map<Launch>("softplus", a, SoftplusF{beta.to_double(), threshold.to_double()});
}
template <typename Launch> Tensor leaky_relu(const Tensor& a, const Scalar& slope) {
  return float_map<Launch>("leaky_relu", a, LeakyReluF{slope.to_double()});
}
template <typename Launch> Tensor elu(const Tensor& a, const Scalar& alpha) {
  return float_map<Launch>("elu", a, EluF{alpha.to_double()});
}
template <typename Launch> Tensor hardtanh(const Tensor& a, const Scalar& lo, const Scalar& hi) {
  VT_CHECK_VALUE(!(lo.to_double() > hi.to_double()), "min_val cannot be greater than max_val");  // NaN passes
  // hardtanh is clamp: the bounds must fit the dtype, as clamp's, unless one is NaN (every element is NaN then)
  if (!std::isnan(lo.to_double()) && !std::isnan(hi.to_double())) {
    check_scalar_fits(lo, a.dtype());
    check_scalar_fits(hi, a.dtype());
  }
  return float_map<Launch>("hardtanh", a, HardtanhF{lo.to_double(), hi.to_double()});
}

// ---- clamp ----
template <bool InPlace, typename Launch>
Tensor clamp(const Tensor& a, std::optional<Scalar> lo, std::optional<Scalar> hi) {
  VT_CHECK(lo || hi, "torch.clamp: At least one of 'min' or 'max' must not be None");
  // The bounds take part in type promotion like Python numbers: int tensor clamped to 0.5 becomes float.
  ResultTypeState st;
  st.update(a);
  if (lo) st.update(scalar_to_tensor(*lo, lo->natural_dtype()));
  if (hi) st.update(scalar_to_tensor(*hi, hi->natural_dtype()));
  ScalarType t = st.result();
  // As torch's clamp: with both bounds given and either NaN, every element is NaN and the other bound is never
  // converted (clamp_(min=nan, max=2**31 - 1) of float16 is NaN, not an overflow error).
  auto is_nan = [](const std::optional<Scalar>& b) { return b && b->is_floating() && std::isnan(b->to_double()); };
  const bool nan_fill = lo && hi && (is_nan(lo) || is_nan(hi));
  if (nan_fill) lo = hi = Scalar(std::numeric_limits<double>::quiet_NaN());  // ClampOp: NaN bounds give NaN
  if (lo) check_scalar_fits(*lo, t);  // as torch: an int8 tensor cannot be clamped to -2**63
  if (hi) check_scalar_fits(*hi, t);
  TensorIterator it =
      TensorIteratorConfig().add_output(InPlace ? a : Tensor()).add_input(a).common_dtype(t).name("clamp").build();
  if (InPlace) a.bump_version();
  VT_DISPATCH_NUMERIC(t, "clamp", [&] {
    using M = opmath_t<scalar_t>;
    if constexpr (Launch::kHost) {
      constexpr bool fp = std::is_floating_point_v<M>;
      const M low = fp ? -std::numeric_limits<M>::infinity() : std::numeric_limits<M>::lowest();
      const M high = fp ? std::numeric_limits<M>::infinity() : std::numeric_limits<M>::max();
      const M l = lo ? lo->to<M>() : low, h = hi ? hi->to<M>() : high;
      bool nan_bound = false;
      if constexpr (fp) nan_bound = std::isnan(l) || std::isnan(h);
      Launch::kernel(it, ClampSelectOp<scalar_t>{nan_bound ? std::numeric_limits<M>::quiet_NaN() : l, h, nan_bound});
    } else {
      Launch::kernel(it, ClampOp<scalar_t>{lo ? lo->to<M>() : M(0), hi ? hi->to<M>() : M(0), lo.has_value(),
                                           hi.has_value()});
    }
  });
  return it.output();
}

// ---- where / masked_fill ----
template <typename Launch> Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  VT_CHECK(cond.dtype() == ScalarType::Bool || cond.dtype() == ScalarType::UInt8,
           "where expected condition to be a boolean tensor, but got a tensor with dtype ", dtype_name(cond.dtype()));
  ScalarType t = result_type({a, b});
  for (const Tensor* x : {&a, &b}) {  // a Python number must fit the result dtype
    if (x->impl()->is_wrapped_number() && !is_floating(t)) check_scalar_fits(item_scalar(*x), t);
  }
  auto as = [](const Tensor& x, ScalarType dt) {
    if (x.dtype() == dt) return x;
    return x.impl()->is_wrapped_number() || (x.dim() == 0 && x.device().is_cpu()) ? cast_scalar(x, dt)
                                                                                     : ops::to_dtype(x, dt);
  };
  // cond, then the branches given, in the result dtype.
  auto iterator = [&](std::initializer_list<const Tensor*> branches) {
    TensorIteratorConfig config;
    config.add_output(Tensor()).add_input(as(cond, ScalarType::Bool));
    for (const Tensor* x : branches) config.add_input(as(*x, t));
    return config.check_all_same_dtype(false).cast_inputs(false).common_dtype(t).output_dtype(t).name("where").build();
  };
  // Note [Where with a number]: one branch a CPU 0-dim tensor (a Python number, a formula's constant) beside
  // device tensors reaches the kernel by value, as binary ops' numbers do (Note [Opmath scalars]). Handed to
  // the iterator it would be copied to the device from pageable memory on every call, which also makes the op
  // impossible to capture in a CUDA graph (embedding's and cross_entropy's index fix-ups in a training step).
  auto cpu_number = [](const Tensor& x) { return x.dim() == 0 && x.device().is_cpu(); };
  if (cpu_number(a) != cpu_number(b) && !(cond.device().is_cpu() && (cpu_number(a) ? b : a).device().is_cpu())) {
    bool value_if_true = cpu_number(a);
    Scalar value = item_scalar(cast_scalar(value_if_true ? a : b, t));
    TensorIterator it = iterator({&(value_if_true ? b : a)});
    VT_DISPATCH_ALL(t, "where", [&] {
      Launch::kernel(it, WhereValueOp<scalar_t>{value.to<scalar_t>(), value_if_true});
    });
    return it.output();
  }
  TensorIterator it = iterator({&a, &b});
  VT_DISPATCH_ALL(t, "where", [&] { Launch::kernel(it, WhereOp<scalar_t>{}); });
  return it.output();
}

template <typename Launch> Tensor masked_fill_(const Tensor& self, const Tensor& mask, const Tensor& value) {
  VT_CHECK(mask.dtype() == ScalarType::Bool, "masked_fill_ only supports boolean masks, but got mask with dtype ",
           dtype_name(mask.dtype()));
  VT_CHECK(value.dim() == 0, "masked_fill_ only supports a 0-dimensional value tensor, but got tensor with ",
           value.dim(), " dimension(s).");
  VT_CHECK(DimVector(broadcast_shapes(self.sizes(), mask.sizes())) == DimVector(self.sizes()),
           "masked_fill_: mask of shape ", shape_str(mask.sizes()), " does not broadcast to ", shape_str(self.sizes()));
  // The fill value travels to the kernel by value (as torch's .item(), a device value costs one sync).
  Tensor host = value.device().is_cpu() ? value : ops::copy_(empty_tensor(DimVector{}, value.dtype(), kCPU), value);
  check_scalar_fits(item_scalar(host), self.dtype());  // as fill_: uint8 cannot be filled with -32768
  Tensor v = cast_scalar(host, self.dtype());
  // Note [Masked fill of an expanded self]: torch allows masked_fill_ on a self whose elements share memory
  // (deprecated), and its CPU kernel writes only where the mask holds, so a shared location is filled when any
  // element on it is masked. A kernel that writes `mask ? value : self` everywhere races there on the GPU (the
  // unmasked writes of the old value can land last; seen by the fuzzer). So a self expanded along some dims is
  // filled through its first index of those dims with the mask reduced by `any` over them: one write per
  // location, the same answer on every backend.
  DimVector shared;
  for (int64_t d = 0; d < self.dim(); ++d)
    if (self.stride(d) == 0 && self.size(d) > 1) shared.push_back(d);
  if (!shared.empty()) {
    Tensor m = ops::amax(ops::expand(mask, self.sizes()), IntArrayRef(shared), /*keepdim=*/true);
    Tensor one = self;
    for (int64_t d : shared) one = ops::narrow(one, d, 0, 1);
    masked_fill_<Launch>(one, m, v);
    return self;
  }
  self.bump_version();
  TensorIterator it = TensorIteratorConfig()
                          .add_output(self)
                          .add_input(self)
                          .add_input(mask)
                          .check_all_same_dtype(false)
                          .cast_inputs(false)
                          .common_dtype(self.dtype())
                          .output_dtype(self.dtype())
                          .check_mem_overlap(false)
                          .name("masked_fill_")
                          .build();
  VT_DISPATCH_ALL(self.dtype(), "masked_fill_", [&] { Launch::kernel(it, MaskedFillOp<scalar_t>{*v.data<scalar_t>()}); });
  return self;
}

#define VT_NAME(id) inline constexpr char k_##id[] = #id;
VT_NAME(exp) VT_NAME(exp2) VT_NAME(expm1) VT_NAME(log) VT_NAME(log2) VT_NAME(log10) VT_NAME(log1p) VT_NAME(sqrt)
VT_NAME(rsqrt) VT_NAME(sin) VT_NAME(cos) VT_NAME(tan) VT_NAME(asin) VT_NAME(acos) VT_NAME(atan) VT_NAME(sinh)
VT_NAME(cosh) VT_NAME(tanh) VT_NAME(erf) VT_NAME(erfc) VT_NAME(reciprocal) VT_NAME(sigmoid) VT_NAME(logsigmoid)
VT_NAME(silu) VT_NAME(mish) VT_NAME(frac) VT_NAME(neg) VT_NAME(square) VT_NAME(abs) VT_NAME(sign) VT_NAME(relu)
VT_NAME(floor) VT_NAME(ceil) VT_NAME(trunc) VT_NAME(round) VT_NAME(isnan) VT_NAME(isinf) VT_NAME(isfinite)
VT_NAME(logical_not)
#undef VT_NAME

// Ops with an in-place variant: (name, functor, kind); logsigmoid and the predicates have none.
#define VT_UNARY_OPS_INPLACE(X)                                                                             \
  X(exp, ExpF, Float) X(exp2, Exp2F, Float) X(expm1, Expm1F, Float) X(log, LogF, Float) X(log2, Log2F, Float) \
  X(log10, Log10F, Float) X(log1p, Log1pF, Float) X(sqrt, SqrtF, Float) X(rsqrt, RsqrtF, Float)             \
  X(sin, SinF, Float) X(cos, CosF, Float) X(tan, TanF, Float) X(asin, AsinF, Float) X(acos, AcosF, Float)   \
  X(atan, AtanF, Float) X(sinh, SinhF, Float) X(cosh, CoshF, Float) X(tanh, TanhF, Float)                    \
  X(erf, ErfF, Float) X(erfc, ErfcF, Float) X(reciprocal, ReciprocalF, Float) X(sigmoid, SigmoidF, Float)   \
  X(silu, SiluF, FloatOnly) X(mish, MishF, FloatOnly) X(frac, FracF, FloatOnly) X(neg, NegF, Same)          \
  X(square, SquareF, Same) X(abs, AbsF, Same) X(sign, SignF, Same) X(relu, ReluF, Same)                     \
  X(floor, FloorF, Rounding) X(ceil, CeilF, Rounding) X(trunc, TruncF, Rounding) X(round, RoundF, Rounding)
#define VT_UNARY_OPS_FUNCTIONAL_ONLY(X)                                                                     \
  X(logsigmoid, LogSigmoidF, FloatOnly) X(isnan, IsNanF, Predicate) X(isinf, IsInfF, Predicate)             \
  X(isfinite, IsFiniteF, Predicate) X(logical_not, LogicalNotF, Predicate)

template <typename Launch> void register_unary(Library& m, DispatchKey key) {
#define VT_REG(id, F, K) m.impl(#id, key, &functional<F, Kind::K, Launch, k_##id>);
#define VT_REG_INPLACE(id, F, K) VT_REG(id, F, K) m.impl(#id "_", key, &inplace<F, Kind::K, Launch, k_##id>);
  VT_UNARY_OPS_INPLACE(VT_REG_INPLACE)
  VT_UNARY_OPS_FUNCTIONAL_ONLY(VT_REG)
#undef VT_REG_INPLACE
#undef VT_REG
  m.impl("bitwise_not", key, &bitwise_not<false, Launch>);
  m.impl("bitwise_not_", key, &bitwise_not<true, Launch>);
  m.impl("gelu", key, &gelu<Launch>);
  m.impl("softplus", key, &softplus<Launch>);
  m.impl("leaky_relu", key, &leaky_relu<Launch>);
  m.impl("elu", key, &elu<Launch>);
  m.impl("hardtanh", key, &hardtanh<Launch>);
  m.impl("clamp", key, &clamp<false, Launch>);
  m.impl("clamp_", key, &clamp<true, Launch>);
  m.impl("where", key, &where<Launch>);
  m.impl("masked_fill_", key, &masked_fill_<Launch>);
}

}  // namespace vt::unary
