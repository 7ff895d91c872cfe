#pragma once
// History of views under in-place writes (torch's CopySlices and view regeneration).
//
// Note [View rebasing]
// A view and its base share memory, so a write through one changes the other. Autograd keeps the history of the
// memory on the base (Note [View base] in vt/core/tensor.h); a view's history is derived from it:
//   * An in-place op on a view records its node `fn` as usual, but the node becomes the inner function of a
//     CopySlices node that is the base's new grad_fn. CopySlices takes the base's gradient, hands the view's
//     region of it to fn, writes fn's gradient for self back into that region (zeros when fn gives none: copy_
//     overwrites), and passes the rest of the base's gradient to the base's previous history. fn's gradients for
//     the op's other inputs go to their own edges.
//   * A view whose storage was written since its grad_fn was set (the storage version moved) gets a new grad_fn
//     when autograd next looks at it: AsStridedBackward0 from the base, with the view's sizes, strides and
//     storage offset (torch without view replay). Views made with grad mode off have no base: they are plain
//     aliases and never rebased.
// A view of a leaf that requires grad cannot be written in place (its base has no history to rebase), as torch.
// Not handled: torch's refusals for views made under no_grad and for outputs of multi-view ops (split here is
// narrow per piece, so each piece is an ordinary view).
#include <memory>

#include "vt/autograd/node.h"

namespace vt::autograd {

// Sizes, strides and storage offset of a tensor, in its storage's coordinates.
struct StridedLayout {
  DimVector sizes, strides;
  int64_t offset = 0;
  StridedLayout() = default;
  explicit StridedLayout(const Tensor& t) : sizes(t.sizes()), strides(t.strides()), offset(t.storage_offset()) {}
};

// The gradient of as_strided from `input` to `output` (both in one storage's coordinates): `grad` (output's
// sizes) is scattered into the memory both address, summing where output elements overlap, and read back with
// the input's layout, shared evenly where input elements overlap (torch's as_strided_backward).
Tensor as_strided_backward(const Tensor& grad, const StridedLayout& input, const StridedLayout& output);

inline bool is_view(const Tensor& t) { return t.impl()->view_base() != nullptr; }
// A view op's output: remembers its base and the storage version its history matches.
void mark_view(const Tensor& out, const Tensor& input);
// Regenerates a view's grad_fn from its base when the storage was written since it was set.
void refresh_view_history(const Tensor& t);
// After an in-place op on `view` recorded as `fn` (self's gradient on fn's next edge `self_edge`, -1 if none):
// the base's grad_fn becomes CopySlices(fn), and the view's is regenerated on next use.
void rebase_view_history(const Tensor& view, const std::shared_ptr<Node>& fn, int self_edge);

}  // namespace vt::autograd
