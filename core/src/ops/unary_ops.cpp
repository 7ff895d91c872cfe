// Unary elementwise ops: their schemas, the CPU kernels (unary_impl.h over cpu_kernel) and the C++ entry
// points other kernels use. The CUDA kernels register from cuda/unary_ops.cu.
#include "cpu_loops.h"
#include "unary_impl.h"

namespace vt {
namespace {
// clamp with tensor bounds (torch's clamp.Tensor): minimum(maximum(self, min), max), bounds broadcasting. An op
// of its own, not the two calls, so that autograd sees clamp's rule at the bounds (Note [Autograd kernels]).
Tensor clamp_tensor_any(const Tensor& self, const Tensor& min, const Tensor& max) {
  VT_CHECK(min.defined() || max.defined(), "torch.clamp: At least one of 'min' or 'max' must not be None");
  // The result type of all three at once: a bool self with 0-dim float16 and bfloat16 bounds is float32, where
  // promoting pairwise would stop at float16.
  ResultTypeState promote;
  for (const Tensor* t : {&self, &min, &max})
    if (t->defined()) promote.update(*t);
  ScalarType rt = promote.result();
  Tensor out = self.dtype() == rt ? self : ops::to_dtype(self, rt);
  out = min.defined() ? ops::binary("vt::maximum", out, min) : out;
  return max.defined() ? ops::binary("vt::minimum", out, max) : out;
}
}  // namespace

VT_LIBRARY(vt, unary) {
#define VT_DEF(id, F, K) m.def(#id "(Tensor self) -> Tensor");
#define VT_DEF_INPLACE(id, F, K) VT_DEF(id, F, K) m.def(#id "_(Tensor self) -> Tensor");
  VT_UNARY_OPS_INPLACE(VT_DEF_INPLACE)
  VT_UNARY_OPS_FUNCTIONAL_ONLY(VT_DEF)
#undef VT_DEF_INPLACE
#undef VT_DEF
  m.def("bitwise_not(Tensor self) -> Tensor");
  m.def("bitwise_not_(Tensor self) -> Tensor");
  m.def("gelu(Tensor self, *, str approximate='none') -> Tensor");
  m.def("softplus(Tensor self, Scalar beta=1, Scalar threshold=20) -> Tensor");
  m.def("leaky_relu(Tensor self, Scalar negative_slope=0.01) -> Tensor");
  m.def("elu(Tensor self, Scalar alpha=1) -> Tensor");
  m.def("hardtanh(Tensor self, Scalar min_val=-1, Scalar max_val=1) -> Tensor");
  m.def("clamp(Tensor self, Scalar? min=None, Scalar? max=None) -> Tensor");
  m.def("clamp_(Tensor self, Scalar? min=None, Scalar? max=None) -> Tensor");
  m.def("clamp_tensor(Tensor self, Tensor? min=None, Tensor? max=None) -> Tensor");
  m.impl_any("clamp_tensor", &clamp_tensor_any);
  m.def("where(Tensor condition, Tensor self, Tensor other) -> Tensor");
  m.def("masked_fill_(Tensor self, Tensor mask, Tensor value) -> Tensor");
  unary::register_unary<cpu::CpuLaunch>(m, DispatchKey::CPU);
}

namespace ops {
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  static const TypedOp<Tensor(const Tensor&, const Tensor&, const Tensor&)> op("vt::where");
  return op(cond, a, b);
}
}  // namespace ops

}  // namespace vt
