#pragma once
// Autograd formulas: how each differentiable op computes its input gradients, and the generic autograd-layer
// kernel that records them.
//
// Note [Autograd kernels]
// Every op gets one boxed kernel in the dispatcher's autograd slot (installed by install_autograd_kernels()). It
// runs only past Note [Autograd layer gate], i.e. when grad mode is on and an input requires grad. It then:
//   * refuses in-place ops on leaves that require grad, and in-place ops on (or reads of modified) differentiable
//     views, which need history rebasing that is not implemented yet (NotImplementedError, never wrong grads);
//   * runs the backend with grad mode off, so kernels composed of other ops record nothing of their own;
//   * builds a FormulaNode: tensors the formula asked for are saved (SavedVariable, version-checked), the
//     other arguments are kept by value, and each floating output gets the node as grad_fn.
// An op without a formula gets a node whose backward raises "the derivative for 'vt::op' is not implemented":
// forward works, backward says what is missing. Formulas return gradients in whatever shape and dtype falls
// out of the math; FormulaNode sums broadcast dims away and casts to each input's dtype and device.
#include <optional>
#include <string>

#include "vt/autograd/node.h"
#include "vt/core/dispatcher.h"

namespace vt::autograd {

class FormulaNode;

// What a formula sees during backward. Argument positions are the op's schema positions.
class BackwardContext {
 public:
  BackwardContext(FormulaNode& node, std::vector<Tensor>&& grads) : node_(node), grads_(std::move(grads)) {}
  const Tensor& grad(size_t output = 0) const { return grads_.at(output); }
  size_t num_grads() const { return grads_.size(); }  // one per output (list outputs count each piece)
  Tensor saved(size_t arg) const;   // a tensor argument the formula asked to save
  Tensor saved_or_undefined(size_t arg) const;  // the same for a "Tensor?" argument, undefined when None
  Tensor result() const;            // output 0, when the formula asked to save it
  Tensor output(size_t i) const;    // output i, when the formula's saved_outputs names it
  const IValue& arg(size_t i) const;
  Scalar scalar(size_t i) const { return std::get<Scalar>(arg(i)); }
  int64_t int_arg(size_t i) const { return std::get<int64_t>(arg(i)); }
  IntArrayRef input_sizes(size_t arg) const;
  ScalarType input_dtype(size_t arg) const;
  bool needs(size_t arg) const;     // whether the tensor argument at `arg` takes a gradient
  void set(size_t arg, Tensor g);   // the gradient of the tensor argument at `arg`
  Tensor take(size_t arg) { return std::move(out_[arg]); }

 private:
  FormulaNode& node_;
  std::vector<Tensor> grads_;
  std::vector<Tensor> out_ = std::vector<Tensor>(8);
};

using BackwardFn = void (*)(BackwardContext&);

struct Formula {
  const char* op;               // "vt::mul"
  const char* node_name;        // "MulBackward0"
  uint32_t saved_args = 0;      // bitmask of tensor argument positions kept for backward
  bool saves_result = false;
  BackwardFn backward = nullptr;
  bool is_view = false;         // output aliases input 0 (Note [Autograd kernels])
  // Optional: a node name depending on the arguments (PowBackward0 for a number exponent, 1 for a tensor).
  const char* (*name_for)(const Stack& args) = nullptr;
  // Multi-output ops: outputs kept for backward (bit i = output i; statistics such as layer_norm's mean and
  // rstd), and which outputs carry gradients (the others get no grad_fn and read as constants).
  uint32_t saved_outputs = 0;
  uint32_t differentiable_outputs = ~0u;
};

// The formula table, defined across formulas_*.cpp; null when an op has none.
const Formula* find_formula(std::string_view op);
void register_formulas(std::vector<Formula> formulas);

// Puts the autograd kernel into every op's autograd slot (once; later calls are a cheap check).
void install_autograd_kernels();

}  // namespace vt::autograd
