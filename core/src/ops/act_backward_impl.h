#pragma once
// Activation backward kernels, one elementwise pass each: the input gradient of gelu (exact and tanh) and silu
// from the upstream gradient and the saved input, of tanh and sigmoid from the saved output. Autograd's formulas call them when no graph of the backward
// is wanted (a composite of differentiable ops otherwise, for second order). Shared by both backends, like
// binary_impl.h: `Launch` is cpu::CpuLaunch or cuda::CudaLaunch.
#include <cmath>
#include <string>

#include "act_backward_functors.h"
#include "binary_impl.h"
#include "cpu_gelu.h"

namespace vt::act_backward {

template <typename Launch, typename F> Tensor run(const char* name, const Tensor& grad, const Tensor& self, F f) {
  TensorIterator it = binary::make_iter(name, Tensor(), grad, self, binary::Kind::Float);
  VT_DISPATCH_FLOATING(it.common_dtype(), name, [&] { Launch::kernel(it, binary::ArithOp<scalar_t, F>{f}); });
  return it.output();
}

template <typename Launch> Tensor gelu_backward(const Tensor& grad, const Tensor& self, std::string approximate) {
  VT_CHECK(approximate == "none" || approximate == "tanh",
           "gelu_backward: approximate argument must be either none or tanh, got '", approximate, "'");
  if constexpr (Launch::kHost) {  // float32 rounds as torch's oneDNN gelu does (Note [gelu rounds as torch's oneDNN])
    if (approximate == "none" && grad.dtype() == ScalarType::Float32 && self.dtype() == ScalarType::Float32)
      return cpu_gelu::gelu_backward(grad, self);
  }
  return approximate == "tanh" ? run<Launch>("gelu_backward", grad, self, GeluTanhBwdF{})
                               : run<Launch>("gelu_backward", grad, self, GeluBwdF{});
}
template <typename Launch> Tensor silu_backward(const Tensor& grad, const Tensor& self) {
  return run<Launch>("silu_backward", grad, self, SiluBwdF{});
}
template <typename Launch> Tensor tanh_backward(const Tensor& grad, const Tensor& output) {
  return run<Launch>("tanh_backward", grad, output, TanhBwdF{});
}
template <typename Launch> Tensor sigmoid_backward(const Tensor& grad, const Tensor& output) {
  return run<Launch>("sigmoid_backward", grad, output, SigmoidBwdF{});
}

template <typename Launch> void register_act_backward(Library& m, DispatchKey key) {
  m.impl("gelu_backward", key, &gelu_backward<Launch>);
  m.impl("silu_backward", key, &silu_backward<Launch>);
  m.impl("tanh_backward", key, &tanh_backward<Launch>);
  m.impl("sigmoid_backward", key, &sigmoid_backward<Launch>);
}

}  // namespace vt::act_backward
