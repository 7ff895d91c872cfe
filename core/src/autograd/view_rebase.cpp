// CopySlices, regenerated view history and as_strided's gradient (Note [View rebasing] in view_rebase.h).
#include "view_rebase.h"

#include <algorithm>

#include "formula_helpers.h"

namespace vt::autograd {
namespace {
using namespace fx;

bool is_empty(const StridedLayout& l) { return prod(l.sizes) == 0; }
int64_t max_index(const StridedLayout& l) {
  int64_t m = l.offset;
  for (size_t d = 0; d < l.sizes.size(); ++d) m += (l.sizes[d] - 1) * l.strides[d];
  return m;
}
StridedLayout shifted(StridedLayout l, int64_t by) {
  l.offset += by;
  return l;
}

// Whether two elements of `l` may share memory (torch's _maybe_overlapping_memory): sorted by stride, every
// stride must step past the extent of the dims inside it.
bool may_overlap(const StridedLayout& l) {
  std::vector<std::pair<int64_t, int64_t>> dims;  // (stride, size) of the dims that are walked
  for (size_t d = 0; d < l.sizes.size(); ++d)
    if (l.sizes[d] > 1) dims.emplace_back(l.strides[d], l.sizes[d]);
  std::sort(dims.begin(), dims.end());
  int64_t extent = 0;
  for (auto [stride, size] : dims) {
    if (stride <= extent) return true;
    extent += stride * (size - 1);
  }
  return false;
}

// Adds `values` (l's sizes) into the zeros `flat` at the positions `l` addresses; returns flat.
Tensor scatter_into_zeros(const Tensor& flat, StridedLayout l, Tensor values) {
  // A broadcast dim (stride 0) addresses one element: its values sum there.
  std::vector<int64_t> broadcast;
  for (size_t d = 0; d < l.sizes.size(); ++d)
    if (l.strides[d] == 0 && l.sizes[d] > 1) broadcast.push_back(int64_t(d));
  if (!broadcast.empty()) {
    values = ops::sum(values, broadcast, /*keepdim=*/true, std::nullopt);
    for (int64_t d : broadcast) l.sizes[size_t(d)] = 1;
  }
  if (!may_overlap(l)) {
    ops::copy_(ops::as_strided(flat, l.sizes, l.strides, l.offset), values);
    return flat;
  }
  // Still overlapping (a stride inside another dim's extent): accumulate through linear indices.
  Tensor idx = scalar_to_tensor(Scalar(l.offset), ScalarType::Int64);
  for (size_t d = 0; d < l.sizes.size(); ++d) {
    DimVector shape(l.sizes.size(), 1);
    shape[d] = l.sizes[d];
    Tensor steps = ops::arange(Scalar(int64_t(0)), Scalar(l.sizes[d]), Scalar(int64_t(1)), ScalarType::Int64, flat.device());
    idx = ops::add(idx, ops::view(ops::mul(steps, scalar_to_tensor(Scalar(l.strides[d]), ScalarType::Int64)), shape));
  }
  static const TypedOp<Tensor(const Tensor&, TensorList, const Tensor&, bool)> index_put("vt::index_put_");
  std::vector<Tensor> indices{ops::reshape(idx, DimVector{-1})};
  return index_put(flat, indices, ops::reshape(values, DimVector{-1}), true);
}

// A copy of `g` laid out as `l` (offset 0), so that layouts relative to l's offset address it.
Tensor copy_with_layout(const Tensor& g, const StridedLayout& l) {
  if (DimVector(l.strides) == contiguous_strides(l.sizes)) return ops::clone(g);
  Tensor buf = ops::empty(DimVector{is_empty(l) ? 0 : max_index(shifted(l, -l.offset)) + 1}, g.dtype(), g.device());
  Tensor out = ops::as_strided(buf, l.sizes, l.strides, 0);
  ops::copy_(out, g);
  return out;
}

// The base's grad_fn after an in-place op on one of its views.
class CopySlices final : public Node {
 public:
  CopySlices(const Tensor& base, const Tensor& view, std::shared_ptr<Node> fn, int self_edge)
      : base_(base), view_(view), fn_(std::move(fn)), self_edge_(self_edge) {}
  std::string name() const override { return "CopySlices"; }
  void release_variables() override { fn_->release_variables(); }

  std::vector<Tensor> apply(std::vector<Tensor>&& grads) override {
    std::vector<Tensor> out(next_edges().size());
    const Tensor& g = grads.at(0);
    if (!g.defined()) return out;
    Tensor result = copy_with_layout(g, base_);
    Tensor slice = ops::as_strided(result, view_.sizes, view_.strides, view_.offset - base_.offset);
    std::vector<Tensor> res = fn_->apply({ops::clone(slice)});
    if (next_edges()[0].valid()) {
      if (self_edge_ >= 0 && res[size_t(self_edge_)].defined()) ops::copy_(slice, res[size_t(self_edge_)]);
      else ops::fill_(slice, Scalar(int64_t(0)));  // no gradient for self: the op replaced those elements
      out[0] = std::move(result);
    }
    for (size_t i = 0; i < fn_edge_.size(); ++i) out[i + 1] = std::move(res[fn_edge_[i]]);
    return out;
  }

  StridedLayout base_, view_;
  std::shared_ptr<Node> fn_;
  int self_edge_;
  std::vector<size_t> fn_edge_;  // next edge i + 1 carries fn's gradient fn_edge_[i]
};

// The grad_fn of a view regenerated from its base.
class AsStridedNode final : public Node {
 public:
  AsStridedNode(const Tensor& base, const Tensor& view) : base_(base), view_(view) {}
  std::string name() const override { return "AsStridedBackward0"; }
  std::vector<Tensor> apply(std::vector<Tensor>&& grads) override {
    if (!grads.at(0).defined()) return {Tensor()};
    return {as_strided_backward(grads[0], base_, view_)};
  }

 private:
  StridedLayout base_, view_;
};

}  // namespace

Tensor as_strided_backward(const Tensor& grad, const StridedLayout& input, const StridedLayout& output) {
  if (is_empty(input)) return zeros(input.sizes, grad);
  int64_t lo = input.offset, hi = max_index(input);
  if (!is_empty(output)) {
    lo = std::min(lo, output.offset);
    hi = std::max(hi, max_index(output));
  }
  Tensor flat = zeros(DimVector{hi - lo + 1}, grad);
  if (!is_empty(output)) flat = scatter_into_zeros(flat, shifted(output, -lo), grad);
  StridedLayout in = shifted(input, -lo);
  if (may_overlap(in)) {
    // Input elements sharing memory share its gradient evenly.
    Tensor ones = ops::full(in.sizes, Scalar(int64_t(1)), grad.dtype(), grad.device());
    Tensor count = scatter_into_zeros(zeros(DimVector{hi - lo + 1}, grad), in, ones);
    flat = div(flat, ops::where(bin("vt::gt", count, num(0.0)), count, num(1.0)));
  }
  return ops::as_strided(flat, in.sizes, in.strides, in.offset);
}

void mark_view(const Tensor& out, const Tensor& input) {
  out.impl()->set_view_base(input.impl_ptr());
  meta(out).view_version = out.storage()->version();
}

void refresh_view_history(const Tensor& t) {
  const std::shared_ptr<TensorImpl>& b = t.impl()->view_base();
  if (!b || !b->requires_grad()) return;
  AutogradMeta* m = meta_if(t);
  uint32_t now = t.storage()->version();
  if (m && m->grad_fn && m->view_version == now) return;
  Tensor base(b);
  auto node = std::make_shared<AsStridedNode>(base, t);
  node->next_edges().push_back(gradient_edge(base));
  set_history(t, node);
  meta(t).view_version = now;
}

void rebase_view_history(const Tensor& view, const std::shared_ptr<Node>& fn, int self_edge) {
  Tensor base(view.impl()->view_base());
  auto cs = std::make_shared<CopySlices>(base, view, fn, self_edge);
  cs->next_edges().push_back(gradient_edge(base));  // the base's history before the write
  for (size_t i = 0; i < fn->next_edges().size(); ++i) {
    if (int(i) == self_edge) continue;  // self's old history is the base's: CopySlices routes it
    cs->fn_edge_.push_back(i);
    cs->next_edges().push_back(fn->next_edges()[i]);
  }
  fn->add_output(view);  // fn's output is the view (a saved result unpacks with fn as its grad_fn)
  set_history(base, cs);
  if (AutogradMeta* m = meta_if(view)) m->grad_fn = nullptr;  // regenerated from the base on next use
}

}  // namespace vt::autograd
