// Backward formula of vt::_flash_attention(q, k, v, scale, causal) -> (out, lse) (core/src/ops/attention.h).
//
// Plain backward calls the fused backward op with the saved out and lse (the CUDA kernels rebuild the
// probabilities tile by tile from them). When the gradient's own graph is wanted (create_graph), out and lse
// cannot stand in for q and k - their dependence on q and k would be lost - so the composite recomputes the
// probabilities from q and k with recorded ops.
#include "../ops/attention.h"
#include "formula_helpers.h"

namespace vt::autograd {
namespace {

using namespace fx;

void flash_attention_backward(BackwardContext& c) {
  double scale = std::get<double>(c.arg(3));
  bool causal = std::get<bool>(c.arg(4));
  Tensor q = c.saved(0), k = c.saved(1), v = c.saved(2);
  auto [dq, dk, dv] = graph_wanted()
                          ? attention::backward_composite(c.grad(), q, k, v, scale, causal)
                          : attention::flash_attention_backward(c.grad(), q, k, v, c.result(), c.output(1), scale,
                                                                causal);
  c.set(0, dq);
  c.set(1, dk);
  c.set(2, dv);
}

const bool attention_formulas_registered = [] {
  Formula flash{"vt::_flash_attention", "ScaledDotProductFlashAttentionBackward0", kAll3, true,
                flash_attention_backward};
  flash.saved_outputs = 2u;  // lse
  flash.differentiable_outputs = 1u;
  register_formulas({flash});
  return true;
}();

}  // namespace
}  // namespace vt::autograd
