#pragma once
// addcmul, addcdiv and lerp (with a number as the weight) for one backend: one elementwise kernel each, computed
// in opmath and rounded once, as torch's (the compositions they replace rounded the product or the difference to
// the dtype first and took two or three kernels, three and a copy for lerp_'s far side). `Launch` is CpuLaunch
// or CudaLaunch; the promotion, the checks and the value's conversion are shared here, as in binary_impl.h.
//
// Note [Pointwise value conversion]: the value (weight) is converted as torch converts it: to the opmath type of
// the common dtype (float for the 16-bit types), refused if it overflows that type, and truncated toward zero
// for an integral dtype (addcmul(int, int, int, value=0.5) multiplies by 0, as torch's does).
#include <cmath>
#include <string>

#include "binary_functors.h"
#include "vt/core/dispatcher.h"
#include "vt/core/ops.h"
#include "vt/core/tensor_iterator.h"

namespace vt::pointwise {

template <typename S> struct AddcmulOp {  // self + (value * t1) * t2, torch's order
  opmath_t<S> value;
  VT_HOST_DEVICE S operator()(S x, S a, S b) const {
    using M = opmath_t<S>;
    return S(binary::wrapping_add(M(x), binary::wrapping_mul(binary::wrapping_mul(value, M(a)), M(b))));
  }
};
template <typename S> struct AddcdivOp {  // self + (value * t1) / t2
  opmath_t<S> value;
  VT_HOST_DEVICE S operator()(S x, S a, S b) const {
    using M = opmath_t<S>;
    return S(M(x) + (value * M(a)) / M(b));
  }
};
template <typename S> struct LerpOp {  // torch's two-sided form: exact at weight 0 and 1
  opmath_t<S> w;
  VT_HOST_DEVICE S operator()(S self, S end) const {
    using M = opmath_t<S>;
    const M a = M(self), b = M(end);
    return S((w < M(0.5) && w > M(-0.5)) ? a + w * (b - a) : b - (b - a) * (M(1) - w));
  }
};

// Note [Pointwise value conversion]
template <typename S> opmath_t<S> converted_value(const Scalar& v, ScalarType t) {
  check_scalar_fits(v, t == ScalarType::Float16 || t == ScalarType::BFloat16 ? ScalarType::Float32 : t);
  return v.to<opmath_t<S>>();
}

inline TensorIterator ternary_iter(const char* name, const Tensor& out, const Tensor& self, const Tensor& a,
                                   const Tensor& b) {
  TensorIteratorConfig cfg;
  cfg.add_output(out).add_input(self).add_input(a).add_input(b).promote_inputs_to_common_dtype(true).name(name);
  return cfg.build();
}

template <typename Launch, bool InPlace>
Tensor addcmul(const Tensor& self, const Tensor& t1, const Tensor& t2, const Scalar& value) {
  const char* name = InPlace ? "addcmul_" : "addcmul";
  TensorIterator it = ternary_iter(name, InPlace ? self : Tensor(), self, t1, t2);
  const ScalarType t = it.common_dtype();
  VT_CHECK_KIND(NotImplemented, t != ScalarType::Bool, "\"addcmul_cpu_out\" not implemented for 'Bool'");
  if (InPlace) self.bump_version();
  VT_DISPATCH_NUMERIC(t, name, [&] { Launch::kernel(it, AddcmulOp<scalar_t>{converted_value<scalar_t>(value, t)}); });
  return it.output();
}

template <typename Launch, bool InPlace>
Tensor addcdiv(const Tensor& self, const Tensor& t1, const Tensor& t2, const Scalar& value) {
  const char* name = InPlace ? "addcdiv_" : "addcdiv";
  VT_CHECK(is_floating(t1.dtype()) || is_floating(t2.dtype()),
           "Integer division with addcdiv is no longer supported, and in a future  release addcdiv will perform a "
           "true division of tensor1 and tensor2. The historic addcdiv behavior can be implemented as "
           "(input + value * torch.trunc(tensor1 / tensor2)).to(input.dtype) for integer inputs and as (input + "
           "value * tensor1 / tensor2) for float inputs. The future addcdiv behavior is just the latter "
           "implementation: (input + value * tensor1 / tensor2), for all dtypes.");
  TensorIterator it = ternary_iter(name, InPlace ? self : Tensor(), self, t1, t2);
  const ScalarType t = it.common_dtype();
  if (InPlace) self.bump_version();
  VT_DISPATCH_FLOATING(t, name, [&] { Launch::kernel(it, AddcdivOp<scalar_t>{converted_value<scalar_t>(value, t)}); });
  return it.output();
}

template <typename Launch, bool InPlace> Tensor lerp(const Tensor& self, const Tensor& end, const Scalar& weight) {
  const char* name = InPlace ? "lerp_" : "lerp";
  VT_CHECK(self.dtype() == end.dtype(), "expected dtype ", dtype_name(self.dtype()), " for `end` but got dtype ",
           dtype_name(end.dtype()));
  VT_CHECK_KIND(NotImplemented, is_floating(self.dtype()), "\"lerp_kernel_scalar\" not implemented for '",
                dtype_name(self.dtype()), "'");
  TensorIteratorConfig cfg;
  cfg.add_output(InPlace ? self : Tensor()).add_input(self).add_input(end).name(name);
  TensorIterator it = cfg.build();
  const ScalarType t = self.dtype();
  if (InPlace) self.bump_version();
  VT_DISPATCH_FLOATING(t, name, [&] { Launch::kernel(it, LerpOp<scalar_t>{converted_value<scalar_t>(weight, t)}); });
  return it.output();
}

template <typename Launch> void register_pointwise(Library& m, DispatchKey key) {
  m.impl("addcmul", key, &addcmul<Launch, false>);
  m.impl("addcmul_", key, &addcmul<Launch, true>);
  m.impl("addcdiv", key, &addcdiv<Launch, false>);
  m.impl("addcdiv_", key, &addcdiv<Launch, true>);
  m.impl("lerp", key, &lerp<Launch, false>);
  m.impl("lerp_", key, &lerp<Launch, true>);
}

}  // namespace vt::pointwise
