// The generic autograd-layer kernel and FormulaNode (Note [Autograd kernels] in vt/autograd/formula.h).
#include <mutex>
#include <unordered_map>

#include "view_rebase.h"
#include "vt/autograd/formula.h"
#include "vt/autograd/grad_mode.h"
#include "vt/core/ops.h"

namespace vt::autograd {

// The node of one op call: the formula, the op's arguments (tensors only as saved or as geometry), and which
// tensor input each next edge belongs to.
class FormulaNode final : public Node {
 public:
  FormulaNode(const Formula* f, std::string op, std::string name) : formula_(f), op_(std::move(op)), name_(std::move(name)) {}
  std::string name() const override { return name_; }
  void release_variables() override {
    for (SavedVariable& s : saved_) s.reset();
    for (SavedVariable& s : saved_outputs_) s.reset();
    for (SavedVariable& s : other_results_) s.reset();
    result_.reset();
  }
  std::vector<Tensor> apply(std::vector<Tensor>&& grads) override;

  // One tensor input: a Tensor argument, or one element of a Tensor[] argument.
  struct Input {
    uint32_t arg;
    int64_t elem;                            // -1 for a Tensor argument
    std::optional<TensorGeometry> geometry;  // none for None / undefined list elements
    int32_t edge = -1;                       // its next edge, -1 when it takes no gradient
  };
  const Input* input(size_t arg, int64_t elem) const {
    if (arg >= first_input_.size() || first_input_[arg] < 0) return nullptr;
    size_t i = size_t(first_input_[arg] + std::max<int64_t>(elem, 0));
    return i < inputs_.size() && inputs_[i].arg == arg ? &inputs_[i] : nullptr;
  }
  size_t input_index(size_t arg, int64_t elem) const { return size_t(input(arg, elem) - inputs_.data()); }

  const Formula* formula_;
  std::string op_, name_;
  Stack args_;                        // non-tensor arguments by value; tensor slots are empty
  std::vector<Input> inputs_;
  std::vector<int32_t> first_input_;  // per argument position: its first Input, -1 for non-tensor arguments
  std::vector<SavedVariable> saved_;  // per argument position
  SavedVariable result_;
  std::vector<SavedVariable> saved_outputs_;  // per output position (Formula::saved_outputs)
  std::vector<SavedVariable> other_results_;  // outputs 1.. with Formula::saves_other_results
  DimVector self_strides_;            // with Formula::keeps_self_layout
  int64_t self_offset_ = 0;
  // Tensors kept by value in args_ (index lists) and their storage versions when the op ran: an in-place write
  // to one of them before backward would make the formula read other indices than the forward did, so it is
  // refused as for saved tensors (Note [Version counter]).
  std::vector<std::pair<Tensor, uint32_t>> kept_versions_;
  void check_kept_versions() const {
    for (const auto& [t, v] : kept_versions_) {
      uint32_t now = t.storage()->version();
      VT_CHECK(now == v, "one of the variables needed for gradient computation has been modified by an inplace ",
               "operation: ", tensor_description(t), ", an argument of ", name_, ", is at version ", now,
               "; expected version ", v, " instead. Hint: the in-place op ran after the tensor was saved by ",
               name_, "; use an out-of-place op, or clone() the tensor before modifying it.");
    }
  }
};

BackwardContext::BackwardContext(FormulaNode& node, std::vector<Tensor>&& grads)
    : node_(node), grads_(std::move(grads)), out_(node.inputs_.size()) {}
Tensor BackwardContext::saved(size_t arg) const {
  VT_INTERNAL_ASSERT(arg < node_.saved_.size() && node_.saved_[arg].defined(), "node ", node_.name(), " did not save argument ", arg);
  return node_.saved_[arg].unpack(node_.shared_from_this());
}
Tensor BackwardContext::saved_or_undefined(size_t arg) const {
  if (arg >= node_.saved_.size() || !node_.saved_[arg].defined()) return Tensor();
  return node_.saved_[arg].unpack(node_.shared_from_this());
}
Tensor BackwardContext::result(size_t output) const {
  if (output == 0) return node_.result_.unpack(node_.shared_from_this());
  VT_INTERNAL_ASSERT(output < node_.other_results_.size() + 1, "node ", node_.name(), " did not save output ", output);
  return node_.other_results_[output - 1].unpack(node_.shared_from_this());
}
Tensor BackwardContext::output(size_t i) const {
  VT_INTERNAL_ASSERT(i < node_.saved_outputs_.size() && node_.saved_outputs_[i].defined(), "node ", node_.name(),
                     " did not save output ", i);
  return node_.saved_outputs_[i].unpack(node_.shared_from_this());
}
const IValue& BackwardContext::arg(size_t i) const { return node_.args_.at(i); }
static const TensorGeometry& geometry_of(const FormulaNode& n, size_t arg, int64_t elem) {
  const FormulaNode::Input* in = n.input(arg, elem);
  VT_INTERNAL_ASSERT(in && in->geometry, "node ", n.name(), " has no tensor input at argument ", arg, "[", elem, "]");
  return *in->geometry;
}
IntArrayRef BackwardContext::input_sizes(size_t arg, int64_t elem) const { return geometry_of(node_, arg, elem).sizes; }
ScalarType BackwardContext::input_dtype(size_t arg, int64_t elem) const { return geometry_of(node_, arg, elem).dtype; }
bool BackwardContext::input_defined(size_t arg, int64_t elem) const {
  const FormulaNode::Input* in = node_.input(arg, elem);
  return in && in->geometry;
}
size_t BackwardContext::list_size(size_t arg) const {
  size_t n = 0;
  while (node_.input(arg, int64_t(n))) ++n;
  return n;
}
IntArrayRef BackwardContext::self_strides() const { return node_.self_strides_; }
int64_t BackwardContext::self_storage_offset() const { return node_.self_offset_; }
bool BackwardContext::needs(size_t arg, int64_t elem) const {
  const FormulaNode::Input* in = node_.input(arg, elem);
  return in && in->edge >= 0;
}
void BackwardContext::set(size_t arg, int64_t elem, Tensor g) {
  if (needs(arg, elem)) out_[node_.input_index(arg, elem)] = std::move(g);
}

std::vector<Tensor> FormulaNode::apply(std::vector<Tensor>&& grads) {
  if (!formula_ || !formula_->backward) not_implemented_derivative(op_);
  check_kept_versions();
  for (size_t i = 0; i < grads.size(); ++i) {
    // A missing output gradient (another output of a multi-output op was used) reads as zeros.
    if (!grads[i].defined() && i < num_outputs()) {
      const TensorGeometry& g = output_geometry(uint32_t(i));
      grads[i] = ops::full(g.sizes, Scalar(int64_t(0)), g.dtype, g.device);
    }
  }
  BackwardContext ctx(*this, std::move(grads));
  formula_->backward(ctx);
  std::vector<Tensor> out(next_edges().size());
  for (size_t i = 0; i < inputs_.size(); ++i) {
    if (inputs_[i].edge < 0) continue;
    Tensor g = ctx.take_input(i);
    if (!g.defined()) continue;
    const TensorGeometry& geo = *inputs_[i].geometry;
    // A wrong shape here comes from a kernel (a Python override, a plugin) whose output did not have the
    // shape the op promises; it is the user's to fix, so it is a user error, not an internal one.
    VT_CHECK(is_expandable_to(geo.sizes, g.sizes()), "Function ", name(), " returned an invalid gradient at index ",
             i, " - got ", shape_str(g.sizes()), " but expected shape compatible with ", shape_str(geo.sizes),
             " (does a kernel registered for ", op_, " return outputs of the wrong shape?)");
    g = sum_to(g, geo.sizes);
    if (g.dtype() != geo.dtype) g = ops::to_dtype(g, geo.dtype);
    if (g.device() != geo.device) g = ops::copy_(ops::empty(geo.sizes, geo.dtype, geo.device), g);
    out[size_t(inputs_[i].edge)] = std::move(g);
  }
  return out;
}

namespace {

// Which next edge of an in-place op's node carries self's gradient; -1 when self takes none.
int self_edge(const FormulaNode& fn) { return fn.inputs_.empty() || fn.inputs_[0].arg != 0 ? -1 : fn.inputs_[0].edge; }

bool is_inplace_op(const std::string& name) { return !name.empty() && name.back() == '_'; }

// A leaf's history cannot be rebased: writing it (or a view of it) in place under autograd is an error, as torch.
void check_inplace(const Tensor& self) {
  if (!requires_grad(self)) return;
  if (is_view(self)) {
    Tensor base(self.impl()->view_base());
    VT_CHECK(!(requires_grad(base) && is_leaf(base)), "a view of a leaf Variable that requires grad is being used in ",
             "an in-place operation.");
  }
  VT_CHECK(!is_leaf(self), "a leaf Variable that requires grad is being used in an in-place operation.");
}

// The node, its edges and its saved inputs, taken before the backend runs: an in-place op must not change
// what they see (x.mul_(x) saves x as it was, and the version check then refuses the stale copy, as torch).
std::shared_ptr<FormulaNode> make_node(const OperatorEntry& entry, const Formula* f, const Stack& args, bool inplace) {
  std::string name = f ? (f->name_for ? f->name_for(args) : f->node_name) : entry.name() + " (no derivative)";
  auto node = std::make_shared<FormulaNode>(f, entry.name(), std::move(name));
  node->first_input_.assign(args.size(), -1);
  node->saved_.resize(args.size());
  auto add_input = [&](size_t arg, int64_t elem, const Tensor& t) {
    FormulaNode::Input in{uint32_t(arg), elem, std::nullopt, -1};
    if (t.defined()) in.geometry = TensorGeometry(t);
    if (requires_grad(t)) {
      in.edge = int32_t(node->next_edges().size());
      node->next_edges().push_back(gradient_edge(t));
    }
    node->inputs_.push_back(std::move(in));
  };
  for (size_t i = 0; i < args.size(); ++i) {
    if (auto* t = std::get_if<Tensor>(&args[i])) {
      node->first_input_[i] = int32_t(node->inputs_.size());
      add_input(i, -1, *t);
    } else if (auto* list = std::get_if<std::vector<Tensor>>(&args[i]); list && !list->empty()) {
      node->first_input_[i] = int32_t(node->inputs_.size());
      for (size_t j = 0; j < list->size(); ++j) add_input(i, int64_t(j), (*list)[j]);
    }
  }
  for (size_t i = 0; f && i < args.size(); ++i) {
    auto* t = std::get_if<Tensor>(&args[i]);
    if (!(f->saved_args >> i & 1) || !t) continue;  // an optional tensor given as None saves nothing
    if (i < 2 && f->saved_for[i] != ~0u) {  // read only for some inputs' gradients: saved when one takes it
      bool read = false;
      for (size_t k = 0; k < args.size() && k < 32 && !read; ++k) {
        auto* tk = std::get_if<Tensor>(&args[k]);
        read = (f->saved_for[i] >> k & 1) && tk && requires_grad(*tk);
      }
      if (!read) continue;
    }
    // An in-place op's formula reads self as it was: a clone taken before the write (recorded, so that
    // create_graph differentiates through it). Note [In-place formulas].
    node->saved_[i] = SavedVariable(inplace && i == 0 ? ops::clone(*t) : *t, false);
  }
  if (f && f->keeps_self_layout) {
    const Tensor& self = std::get<Tensor>(args[0]);
    node->self_strides_ = DimVector(self.strides());
    node->self_offset_ = self.storage_offset();
  }
  return node;
}

// Gives the outputs their history once the backend has run.
void attach_outputs(const std::shared_ptr<FormulaNode>& node, const Formula* f, Stack& args, Stack& results, bool inplace) {
  Tensor self_in = args.empty() ? Tensor() : std::get_if<Tensor>(&args[0]) ? std::get<Tensor>(args[0]) : Tensor();
  // Drop references the node does not need. Tensor[] arguments stay when none of them takes a gradient (index
  // tensors the formula reads); cat's inputs go, their geometry is enough.
  for (size_t i = 0; i < args.size(); ++i) {
    bool list_takes_grad = false;
    for (int64_t j = 0; node->input(i, j) && std::holds_alternative<std::vector<Tensor>>(args[i]); ++j)
      list_takes_grad = list_takes_grad || node->input(i, j)->edge >= 0;
    if (std::holds_alternative<Tensor>(args[i]) || list_takes_grad) args[i] = IValue{};
    if (auto* kept = std::get_if<std::vector<Tensor>>(&args[i]))
      for (const Tensor& t : *kept)
        if (t.defined()) node->kept_versions_.emplace_back(t, t.storage()->version());
  }
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
    if (inplace && is_view(out)) {
      rebase_view_history(out, node, self_edge(*node));  // Note [View rebasing]
    } else {
      set_history(out, node);
      // A view op's output is a view of its input (reshape may copy instead: then it is not).
      if (f && f->is_view && self_in.defined() && out.storage() == self_in.storage()) mark_view(out, self_in);
    }
    if (k == 0 && f && f->saves_result && !node->result_.defined()) node->result_ = SavedVariable(out, true);
    if (keep) node->saved_outputs_[k] = SavedVariable(out, true);
  };
  for (size_t i = 1; f && f->saves_other_results && i < results.size(); ++i)
    node->other_results_.emplace_back(std::get<Tensor>(results[i]), false);  // non-floating: never given history
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
    if (auto* self = inplace ? std::get_if<Tensor>(&s.at(0)) : nullptr) check_inplace(*self);
    if (inplace && !f) {
      VT_FAIL_KIND(NotImplemented, entry->name(), ": this in-place op has no autograd formula yet, and an input ",
                   "requires grad; use the out-of-place op, or run it under vt.no_grad()");
    }
    std::shared_ptr<FormulaNode> node = make_node(*entry, f, s, inplace);
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
    attach_outputs(node, f, args, s, inplace);
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

// Note [In-place formulas]
// An in-place op "vt::x_" without an entry of its own differentiates as "vt::x" (same schema): its result is
// self after the write, and where the formula reads self it gets a clone taken before the write (make_node).
static const Formula* formula_for(const std::string& name) {
  if (const Formula* f = find_formula(name)) return f;
  return is_inplace_op(name) ? find_formula(std::string_view(name).substr(0, name.size() - 1)) : nullptr;
}

// Composite ops (OpKind::Composite) without a formula get no autograd kernel: they run with grad mode on, and
// the primitives they call record the graph. Every other op gets one, also when it is defined after import
// (vibetensor.library, plugins): through the dispatcher's definition listener.
static void install_autograd_kernel(OperatorEntry& e) {
  const Formula* f = formula_for(e.name());
  if (!f && e.kind() == OpKind::Composite) return;
  e.set_layer(Layer::Autograd, make_autograd_kernel(&e, f));
}

void install_autograd_kernels() {
  // Formulas and ops both register from static initialisers; by the first call every one of them has run.
  static std::once_flag once;
  std::call_once(once, [] {
    Dispatcher& d = Dispatcher::get();
    d.on_define(&install_autograd_kernel);
    for (const std::string& name : d.op_names())
      if (OperatorEntry* e = d.find(name)) install_autograd_kernel(*e);
  });
}

}  // namespace vt::autograd
