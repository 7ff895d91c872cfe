// The float32 CPU gelu and gelu_backward ops (approximate='none') over TensorIterator loops, with the lanes of
// cpu_gelu_kernels.cpp (Note [gelu rounds as torch's oneDNN]). The array loops of cpu_vec_map.h feed them: dense
// runs go to the array kernels as they are; strided or broadcast operands are gathered into a small buffer first,
// so every layout rounds alike.
#include "cpu_gelu.h"

#include "binary_impl.h"
#include "cpu_vec_map.h"
#include "unary_impl.h"
#include "vt/core/cpu_gelu.h"
#include "vt/core/error.h"

namespace vt::cpu_gelu {
namespace {

// torch takes ATen's kernel, not oneDNN, for a tensor of at most one element (use_mkldnn in Activation.cpp).
bool aten_scalar(const Tensor& self) { return self.numel() <= 1; }

}  // namespace

Tensor gelu(const Tensor& self) {
  TensorIterator it = unary::make_iter("gelu", Tensor(), self, unary::Kind::Float);
  if (aten_scalar(self)) {
    cpu::run_array_kernel<float>(it, [](const float* x, float* y, int64_t n) {
      for (int64_t k = 0; k < n; ++k) y[k] = scalar_forward(x[k]);
    });
  } else {
    cpu::run_array_kernel<float>(it, &forward);
  }
  return it.output();
}

Tensor gelu_backward(const Tensor& grad, const Tensor& self) {
  TensorIterator it = binary::make_iter("gelu_backward", Tensor(), grad, self, binary::Kind::Float);
  VT_INTERNAL_ASSERT(it.common_dtype() == ScalarType::Float32, "cpu_gelu::gelu_backward: float32 only");
  if (aten_scalar(self)) {
    cpu::run_binary_array_kernel<float>(it, [](const float* g, const float* x, float* y, int64_t n) {
      for (int64_t k = 0; k < n; ++k) y[k] = scalar_backward(g[k], x[k]);
    });
  } else {
    cpu::run_binary_array_kernel<float>(it, &backward);
  }
  return it.output();
}

std::string_view model_name() {
  switch (active_model()) {
    case Model::Minimax:
      return "minimax";
    case Model::AbramowitzStegun:
      return "abramowitz_stegun";
    case Model::Libm:
      break;
  }
  return "libm";
}

void set_model(std::string_view name) {
  Model m;
  if (name == "minimax")
    m = Model::Minimax;
  else if (name == "abramowitz_stegun")
    m = Model::AbramowitzStegun;
  else if (name == "libm")
    m = Model::Libm;
  else
    VT_FAIL("set_cpu_gelu_model: unknown model '", name, "' (expected minimax, abramowitz_stegun or libm)");
  VT_CHECK_KIND(NotImplemented, try_set_model(m), "set_cpu_gelu_model: this CPU does not support ", name,
                " (it needs AVX2 and FMA)");
}

}  // namespace vt::cpu_gelu
