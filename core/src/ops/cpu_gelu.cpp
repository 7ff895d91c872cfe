// The float32 CPU gelu and gelu_backward ops (approximate='none') over TensorIterator loops, with the lanes of
// cpu_gelu_kernels.cpp (Note [gelu rounds as torch's oneDNN]). Dense runs go to the array kernels as they are;
// strided or broadcast operands are gathered into a small buffer first, so every layout rounds alike.
#include "cpu_gelu.h"

#include <algorithm>

#include "binary_impl.h"
#include "unary_impl.h"
#include "vt/core/cpu_gelu.h"
#include "vt/core/error.h"

namespace vt::cpu_gelu {
namespace {

constexpr int64_t kChunk = 256;  // elements gathered at a time from strided operands
constexpr int64_t kF = int64_t(sizeof(float));

inline float load(const char* p, int64_t stride, int64_t k) { return *reinterpret_cast<const float*>(p + k * stride); }

// torch takes ATen's kernel, not oneDNN, for a tensor of at most one element (use_mkldnn in Activation.cpp).
bool aten_scalar(const Tensor& self) { return self.numel() <= 1; }

}  // namespace

Tensor gelu(const Tensor& self) {
  TensorIterator it = unary::make_iter("gelu", Tensor(), self, unary::Kind::Float);
  const bool scalar = aten_scalar(self);
  it.for_each([&](char** data, const int64_t* s, int64_t n0, int64_t n1) {
    float buf[kChunk];
    for (int64_t j = 0; j < n1; ++j) {
      char* out = data[0] + j * s[2];
      const char* in = data[1] + j * s[3];
      if (scalar) {
        for (int64_t k = 0; k < n0; ++k) *reinterpret_cast<float*>(out + k * s[0]) = scalar_forward(load(in, s[1], k));
      } else if (s[0] == kF && s[1] == kF) {
        forward(reinterpret_cast<const float*>(in), reinterpret_cast<float*>(out), n0);
      } else {
        for (int64_t k0 = 0; k0 < n0; k0 += kChunk) {
          const int64_t m = std::min(kChunk, n0 - k0);
          for (int64_t k = 0; k < m; ++k) buf[k] = load(in, s[1], k0 + k);
          forward(buf, buf, m);
          for (int64_t k = 0; k < m; ++k) *reinterpret_cast<float*>(out + (k0 + k) * s[0]) = buf[k];
        }
      }
    }
  });
  return it.output();
}

Tensor gelu_backward(const Tensor& grad, const Tensor& self) {
  TensorIterator it = binary::make_iter("gelu_backward", Tensor(), grad, self, binary::Kind::Float);
  VT_INTERNAL_ASSERT(it.common_dtype() == ScalarType::Float32, "cpu_gelu::gelu_backward: float32 only");
  const bool scalar = aten_scalar(self);
  it.for_each([&](char** data, const int64_t* s, int64_t n0, int64_t n1) {
    float gb[kChunk], xb[kChunk];
    for (int64_t j = 0; j < n1; ++j) {
      char* out = data[0] + j * s[3];
      const char* g = data[1] + j * s[4];
      const char* x = data[2] + j * s[5];
      if (scalar) {
        for (int64_t k = 0; k < n0; ++k)
          *reinterpret_cast<float*>(out + k * s[0]) = scalar_backward(load(g, s[1], k), load(x, s[2], k));
      } else if (s[0] == kF && s[1] == kF && s[2] == kF) {
        backward(reinterpret_cast<const float*>(g), reinterpret_cast<const float*>(x), reinterpret_cast<float*>(out), n0);
      } else {
        for (int64_t k0 = 0; k0 < n0; k0 += kChunk) {
          const int64_t m = std::min(kChunk, n0 - k0);
          for (int64_t k = 0; k < m; ++k) {
            gb[k] = load(g, s[1], k0 + k);
            xb[k] = load(x, s[2], k0 + k);
          }
          backward(gb, xb, xb, m);
          for (int64_t k = 0; k < m; ++k) *reinterpret_cast<float*>(out + (k0 + k) * s[0]) = xb[k];
        }
      }
    }
  });
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
