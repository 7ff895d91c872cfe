#pragma once
// CPU float32 exact gelu and gelu_backward computed as torch's oneDNN path rounds them (Note [gelu rounds as
// torch's oneDNN] in cpu_gelu_kernels.cpp). The array kernels take dense float arrays; cpu_gelu.cpp runs them
// over TensorIterator loops for the gelu and gelu_backward ops.
#include <cstdint>

namespace vt {
class Tensor;
}

namespace vt::cpu_gelu {

// The operation sequence being reproduced: oneDNN's AVX-512 minimax forward, its Abramowitz-Stegun forward
// (every ISA below AVX-512), or ATen's scalar formula with libm erff/expf. The backward is A&S under both oneDNN
// models. The default follows the CPU, as oneDNN's own choice does; tests pick each model in turn.
// Public names and selection by name: vt/core/cpu_gelu.h.
enum class Model { Minimax, AbramowitzStegun, Libm };
Model active_model();
bool try_set_model(Model m);  // false (and no change) where the CPU cannot run it: the oneDNN models need AVX2 + FMA

// y[i] = gelu(x[i]); y[i] = g[i] * gelu'(x[i]). Arrays may alias elementwise (y == x).
void forward(const float* x, float* y, int64_t n);
void backward(const float* g, const float* x, float* y, int64_t n);

// ATen's scalar formulas (its kernel for one-element tensors).
float scalar_forward(float x);
float scalar_backward(float g, float x);

// The ops on float32 CPU tensors (approximate='none'): cpu_gelu.cpp.
Tensor gelu(const Tensor& self);
Tensor gelu_backward(const Tensor& grad, const Tensor& self);

}  // namespace vt::cpu_gelu
