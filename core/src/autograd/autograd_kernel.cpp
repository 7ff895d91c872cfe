// The generic autograd-layer kernel and FormulaNode (Note [Autograd kernels] in vt/autograd/formula.h).
#include <mutex>
#include <unordered_map>

#include "vt/autograd/formula.h"
#include "vt/autograd/grad_mode.h"
#include "vt/core/ops.h"

namespace vt::autograd {

// The node of one op call: the formula, the op's arguments (tensors only as saved or as geometry), and which
// argument each next edge belongs to.
class FormulaNode final : public Node {
 public:
  FormulaNode(const Formula* f, std::string op, std::string name) : formula_(f), op_(std::move(op)), name_(std::move(name)) {}
  std::string name() const override { return name_; }
  void release_variables() override {
    for (SavedVariable& s : saved_) s.reset();
    for (SavedVariable& s : saved_outputs_) s.reset();
    result_.reset();
  }
  std::vector<Tensor> apply(std::vector<Tensor>&& grads) override;

  const Formula* formula_;
  std::string op_, name_;
  Stack args_;                              // non-tensor arguments by value; tensor slots are empty
  std::vector<std::optional<TensorGeometry>> geometry_;  // per argument position, for tensor arguments
  std::vector<SavedVariable> saved_;        // per argument position
  SavedVariable result_;
  std::vector<SavedVariable> saved_outputs_;  // per output position (Formula::saved_outputs)
  std::vector<uint32_t> edge_arg_;          // next edge i carries the gradient of argument edge_arg_[i]
  std::vector<bool> arg_needs_grad_;
};

Tensor BackwardContext::saved(size_t arg) const {
  VT_INTERNAL_ASSERT(arg < node_.saved_.size() && node_.saved_[arg].defined(), "node ", node_.name(), " did not save argument ", arg);
  return node_.saved_[arg].unpack(node_.shared_from_this());
}
Tensor BackwardContext::saved_or_undefined(size_t arg) const {
  if (arg >= node_.saved_.size() || !node_.saved_[arg].defined()) return Tensor();
  return node_.saved_[arg].unpack(node_.shared_from_this());
}
Tensor BackwardContext::result() const { return node_.result_.unpack(node_.shared_from_this()); }
Tensor BackwardContext::output(size_t i) const {
  VT_INTERNAL_ASSERT(i < node_.saved_outputs_.size() && node_.saved_outputs_[i].defined(), "node ", node_.name(),
                     " did not save output ", i);
  return node_.saved_outputs_[i].unpack(node_.shared_from_this());
}
const IValue& BackwardContext::arg(size_t i) const { return node_.args_.at(i); }
IntArrayRef BackwardContext::input_sizes(size_t arg) const { return node_.geometry_.at(arg)->sizes; }
ScalarType BackwardContext::input_dtype(size_t arg) const { return node_.geometry_.at(arg)->dtype; }
bool BackwardContext::needs(size_t arg) const { return arg < node_.arg_needs_grad_.size() && node_.arg_needs_grad_[arg]; }
void BackwardContext::set(size_t arg, Tensor g) {
  if (needs(arg)) out_.at(arg) = std::move(g);
}

std::vector<Tensor> FormulaNode::apply(std::vector<Tensor>&& grads) {
  if (!formula_ || !formula_->backward) not_implemented_derivative(op_);
  for (size_t i = 0; i < grads.size(); ++i) {
    // A missing output gradient (another output of a multi-output op was used) reads as zeros.
    if (!grads[i].defined() && i < num_outputs()) {
      const TensorGeometry& g = output_geometry(uint32_t(i));
      grads[i] = ops::full(g.sizes, Scalar(int64_t(0)), g.dtype, g.device);
    }
  }
  BackwardContext ctx(*this, std::move(grads));
  formula_->backward(ctx);
  std::vector<Tensor> out(edge_arg_.size());
  for (size_t i = 0; i < edge_arg_.size(); ++i) {
    Tensor g = ctx.take(edge_arg_[i]);
    if (!g.defined()) continue;
    const TensorGeometry& geo = *geometry_[edge_arg_[i]];
    g = sum_to(g, geo.sizes);
    if (g.dtype() != geo.dtype) g = ops::to_dtype(g, geo.dtype);
    if (g.device() != geo.device) g = ops::copy_(ops::empty(geo.sizes, geo.dtype, geo.device), g);
    out[i] = std::move(g);
  }
  return out;
}

namespace {

bool is_inplace_op(const std::string& name) { return !name.empty() && name.back() == '_'; }

void check_inputs(const OperatorEntry& entry, const Stack& s, bool inplace) {
  for (size_t i = 0; i < s.size(); ++i) {
    auto* t = std::get_if<Tensor>(&s[i]);
    if (!t || !requires_grad(*t)) continue;
    AutogradMeta* m = meta_if(*t);
    if (m && m->is_differentiable_view && (inplace && i == 0 || t->storage()->version() != m->view_version)) {
      VT_FAIL_KIND(NotImplemented, entry.name(), ": ",
                   inplace && i == 0 ? "in-place modification of a view of a tensor that requires grad"
                                     : "using a view whose base was modified in place",
                   " is not supported by autograd yet (view history rebasing); clone() the view first");
    }
  }
  if (!inplace) return;
  auto* self = std::get_if<Tensor>(&s[0]);
  if (self && requires_grad(*self) && is_leaf(*self)) {
    VT_FAIL("a leaf Variable that requires grad is being used in an in-place operation.");
  }
  // Another tensor viewing the same memory would see the write without the history that explains it (its
  // grad_fn is not rebased), so its gradients would be silently wrong.
  AutogradMeta* self_meta = self ? meta_if(*self) : nullptr;
  if (self && self->storage().use_count() - (self_meta ? self_meta->saved_aliases : 0) > 1) {
    VT_FAIL_KIND(NotImplemented, entry.name(), ": in-place op under autograd on a tensor whose memory other ",
                 "tensors view is not supported yet (view history rebasing); clone() it first");
  }
}

void record(const OperatorEntry& entry, const Formula* f, Stack& args, Stack& results) {
  bool inplace = is_inplace_op(entry.name());
  std::string name = f ? (f->name_for ? f->name_for(args) : f->node_name) : entry.name() + " (no derivative)";
  auto node = std::make_shared<FormulaNode>(f, entry.name(), std::move(name));
  node->geometry_.resize(args.size());
  node->saved_.resize(args.size());
  node->arg_needs_grad_.resize(args.size());
  for (size_t i = 0; i < args.size(); ++i) {
    auto* t = std::get_if<Tensor>(&args[i]);
    if (!t) continue;
    node->geometry_[i] = TensorGeometry(*t);
    if (requires_grad(*t)) {
      node->arg_needs_grad_[i] = true;
      node->next_edges().push_back(gradient_edge(*t));  // taken before an in-place op rebases self
      node->edge_arg_.push_back(uint32_t(i));
    }
  }
  for (size_t i = 0; f && i < args.size(); ++i) {
    if (!(f->saved_args >> i & 1) || !std::holds_alternative<Tensor>(args[i])) continue;  // None stays unsaved
    VT_INTERNAL_ASSERT(!(inplace && i == 0), "node ", f->node_name, " cannot save self of an in-place op");
    node->saved_[i] = SavedVariable(std::get<Tensor>(args[i]), false);
  }
  for (size_t i = 0; i < args.size(); ++i)
    if (std::holds_alternative<Tensor>(args[i])) args[i] = IValue{};  // drop references the node does not need
  node->args_ = std::move(args);
  size_t position = 0;  // output position (a list output counts as one)
  auto attach = [&](const Tensor& out) {
    size_t k = position;
    bool differentiable = !f || (k < 32 && (f->differentiable_outputs >> k & 1));
    bool keep = f && k < 32 && (f->saved_outputs >> k & 1) && out.defined();
    if (keep && node->saved_outputs_.size() <= k) node->saved_outputs_.resize(k + 1);
    if (!out.defined() || !is_floating(out.dtype()) || !differentiable) {
      if (keep) node->saved_outputs_[k] = SavedVariable(out, false);  // a constant for the gradient
      return;
    }
    set_history(out, node);
    if (f && f->is_view) {
      AutogradMeta& m = meta(out);
      m.is_differentiable_view = true;
      m.view_version = out.storage()->version();
    }
    if (k == 0 && f && f->saves_result && !node->result_.defined()) node->result_ = SavedVariable(out, true);
    if (keep) node->saved_outputs_[k] = SavedVariable(out, true);
  };
  for (IValue& r : results) {
    if (auto* out = std::get_if<Tensor>(&r)) attach(*out);
    else if (auto* list = std::get_if<std::vector<Tensor>>(&r))
      for (const Tensor& t : *list) attach(t);  // list outputs (split, unbind) share one node
    ++position;
  }
}

std::unique_ptr<KernelFunction> make_autograd_kernel(OperatorEntry* entry, const Formula* f) {
  auto k = std::make_unique<KernelFunction>();
  k->boxed = [entry, f](Stack& s) {
    bool inplace = is_inplace_op(entry->name());
    check_inputs(*entry, s, inplace);
    if (inplace && !f) {
      VT_FAIL_KIND(NotImplemented, entry->name(), ": this in-place op has no autograd formula yet, and an input ",
                   "requires grad; use the out-of-place op, or run it under vt.no_grad()");
    }
    Stack args = s;  // the backend consumes the stack
    {
      GradModeGuard off(false);
      entry->call_boxed(Layer::Backend, s);
    }
    // An op that hands back one of its inputs unchanged (contiguous of a contiguous tensor) needs no node.
    if (!inplace && s.size() == 1) {
      if (auto* out = std::get_if<Tensor>(&s[0])) {
        for (const IValue& a : args)
          if (auto* t = std::get_if<Tensor>(&a); t && t->is_same(*out)) return;
      }
    }
    record(*entry, f, args, s);
  };
  return k;
}

std::unordered_map<std::string, Formula>& formula_table() {
  static auto* table = new std::unordered_map<std::string, Formula>();
  return *table;
}

}  // namespace

const Formula* find_formula(std::string_view op) {
  auto& t = formula_table();
  auto it = t.find(std::string(op));
  return it == t.end() ? nullptr : &it->second;
}

void register_formulas(std::vector<Formula> formulas) {
  for (Formula& f : formulas) formula_table()[f.op] = f;
}

void install_autograd_kernels() {
  // Formulas and ops both register from static initialisers; by the first call every one of them has run.
  static std::once_flag once;
  std::call_once(once, [] {
    // Composite ops whose decomposition is differentiable get no autograd kernel (torch's
    // CompositeImplicitAutograd): they run with grad mode on, and the primitives they call record the graph.
    static const char* const kDecomposed[] = {"vt::softmax", "vt::log_softmax", "vt::layer_norm", "vt::rms_norm",
                                              "vt::var",     "vt::std",         "vt::logsumexp",  "vt::norm",
                                              "vt::embedding", "vt::cross_entropy", "vt::dropout"};
    auto decomposed = [](const std::string& name) {
      for (const char* n : kDecomposed)
        if (name == n) return true;
      return false;
    };
    Dispatcher& d = Dispatcher::get();
    for (const std::string& name : d.op_names()) {
      OperatorEntry* e = d.find(name);
      if (!e) continue;
      const Formula* f = find_formula(name);
      if (!f && decomposed(name)) continue;
      e->set_layer(Layer::Autograd, make_autograd_kernel(e, f));
    }
  });
}

}  // namespace vt::autograd
