#pragma once
// Autograd formulas: how each differentiable op computes its input gradients, and the generic autograd-layer
// kernel that records them.
//
// Note [Autograd kernels]
// Every op gets one boxed kernel in the dispatcher's autograd slot, installed by install_autograd_kernels() for
// the ops that exist at import and by a definition listener for ops defined later (vibetensor.library, plugins);
// composite ops (OpKind::Composite) without a formula get none, as the ops they call record the graph. A Python
// backward (vibetensor.library.register_autograd) replaces the kernel. It runs only past Note [Autograd layer
// gate], i.e. when grad mode is on and an input requires grad. It then:
//   * refuses in-place ops on leaves that require grad (and on views of such leaves);
//   * builds a FormulaNode before the backend runs: next edges, and the tensors the formula asked for saved
//     (SavedVariable, version-checked; an in-place op saves a clone of self as it was);
//   * runs the backend with grad mode off, so kernels composed of other ops record nothing of their own;
//   * keeps the other arguments by value and gives each floating output the node as grad_fn. An in-place op
//     on a view rebases the view's base instead (Note [View rebasing] in view_rebase.h).
// An op without a formula gets a node whose backward raises "the derivative for 'vt::op' is not implemented":
// forward works, backward says what is missing. Formulas return gradients in whatever shape and dtype falls
// out of the math; FormulaNode sums broadcast dims away and casts to each input's dtype and device.
#include <optional>
#include <string>

#include "vt/autograd/node.h"
#include "vt/core/dispatcher.h"

namespace vt::autograd {

class FormulaNode;

// What a formula sees during backward. Argument positions are the op's schema positions; an element of a
// Tensor[] argument (cat's inputs) is addressed by (argument, element).
class BackwardContext {
 public:
  BackwardContext(FormulaNode& node, std::vector<Tensor>&& grads);
  const Tensor& grad(size_t output = 0) const { return grads_.at(output); }
  size_t num_grads() const { return grads_.size(); }  // one per output (list outputs count each piece)
  Tensor saved(size_t arg) const;   // a tensor argument the formula asked to save
  Tensor saved_or_undefined(size_t arg) const;  // the same for a "Tensor?" argument, undefined when None
  Tensor result(size_t output = 0) const;  // an output, when the formula asked to save it (saves_other_results)
  Tensor output(size_t i) const;    // output i, when the formula's saved_outputs names it
  const IValue& arg(size_t i) const;
  Scalar scalar(size_t i) const { return std::get<Scalar>(arg(i)); }
  int64_t int_arg(size_t i) const { return std::get<int64_t>(arg(i)); }
  IntArrayRef input_sizes(size_t arg, int64_t elem = -1) const;
  ScalarType input_dtype(size_t arg, int64_t elem = -1) const;
  bool input_defined(size_t arg, int64_t elem = -1) const;  // false for None, and for list elements left out
  size_t list_size(size_t arg) const;                        // elements of a Tensor[] argument
  // Layout of self (argument 0), recorded for formulas with keeps_self_layout.
  IntArrayRef self_strides() const;
  int64_t self_storage_offset() const;
  bool needs(size_t arg, int64_t elem = -1) const;  // whether that tensor input takes a gradient
  void set(size_t arg, Tensor g) { set(arg, -1, std::move(g)); }
  void set(size_t arg, int64_t elem, Tensor g);     // the gradient of that tensor input
  Tensor take_input(size_t input) { return std::move(out_.at(input)); }

 private:
  FormulaNode& node_;
  std::vector<Tensor> grads_;
  std::vector<Tensor> out_;  // per tensor input of the node
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
  bool keeps_self_layout = false;    // record self's strides and storage offset (as_strided)
  // Also keep the outputs after the first, as plain tensors: only for non-floating ones (max_dim's indices), as
  // a saved floating output would own its own node.
  bool saves_other_results = false;
  // Multi-output ops: outputs kept for backward (bit i = output i; statistics such as layer_norm's mean and
  // rstd), and which outputs carry gradients (the others get no grad_fn and read as constants).
  uint32_t saved_outputs = 0;
  uint32_t differentiable_outputs = ~0u;
  // Which inputs' gradients read saved argument 0 and 1 (bit k: argument k): the argument is saved only when
  // one of them takes a gradient, as torch guards its saves (x * 2.0 keeps no x alive). ~0u: always saved.
  uint32_t saved_for[2] = {~0u, ~0u};
};

// The formula table, defined across formulas_*.cpp; null when an op has none. An in-place op "vt::x_" without
// an entry of its own uses the entry of "vt::x" (Note [In-place formulas] in autograd_kernel.cpp).
const Formula* find_formula(std::string_view op);
void register_formulas(std::vector<Formula> formulas);

// Puts the autograd kernel into every op's autograd slot, now and for ops defined later (once; later calls are a
// cheap check).
void install_autograd_kernels();

}  // namespace vt::autograd
