// addcmul, addcdiv and lerp with a number as the weight: their schemas and the CPU kernels (pointwise_impl.h
// over cpu_kernel). The CUDA kernels register from cuda/pointwise_ops.cu; the gradients are in
// autograd/formulas_math.cpp. lerp with a tensor weight stays a composition (vibetensor.torch._composite_ops).
#include "cpu_loops.h"
#include "pointwise_impl.h"

VT_LIBRARY(vt, pointwise) {
  m.def("addcmul(Tensor self, Tensor tensor1, Tensor tensor2, *, Scalar value=1) -> Tensor");
  m.def("addcmul_(Tensor self, Tensor tensor1, Tensor tensor2, *, Scalar value=1) -> Tensor");
  m.def("addcdiv(Tensor self, Tensor tensor1, Tensor tensor2, *, Scalar value=1) -> Tensor");
  m.def("addcdiv_(Tensor self, Tensor tensor1, Tensor tensor2, *, Scalar value=1) -> Tensor");
  m.def("lerp(Tensor self, Tensor end, Scalar weight) -> Tensor");
  m.def("lerp_(Tensor self, Tensor end, Scalar weight) -> Tensor");
  vt::pointwise::register_pointwise<vt::cpu::CpuLaunch>(m, vt::DispatchKey::CPU);
}
