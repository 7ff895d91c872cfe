// vibetensor._C.autograd: grad mode, the engine entry points, graph introspection (grad_fn, next_functions),
// the autograd surface of Tensor (requires_grad, grad, is_leaf, detach, retain_grad, register_hook, the engine
// sides of register_post_accumulate_grad_hook and of the in-place view ops), and
// PyNode, the Node behind custom vt.autograd.Function classes: a C++ node whose apply() calls the Function's
// Python backward.
#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "common.h"
#include "vt/autograd/engine.h"
#include "vt/autograd/formula.h"
#include "vt/autograd/grad_mode.h"
#include "vt/core/ops.h"

namespace vt::py {
namespace {
namespace ag = vt::autograd;

// A Python callable owned from C++ structures that may be dropped without the GIL (a node freed inside an op
// that released it): taking the GIL in the destructor keeps the refcount change legal.
struct PyCallable {
  nb::object fn;
  explicit PyCallable(nb::object f) : fn(std::move(f)) {}
  ~PyCallable() {
    nb::gil_scoped_acquire gil;
    fn.reset();
  }
};

// What register_hook returns: remove() empties the hook where it is stored.
struct HookHandle {
  ag::TensorHookPtr hook;
};

nb::object tensor_or_none(const Tensor& t) { return t.defined() ? nb::cast(t) : nb::none(); }

std::vector<Tensor> tensors_or_undefined(nb::handle seq) {
  std::vector<Tensor> out;
  if (seq.is_none()) return out;
  for (nb::handle h : seq) out.push_back(h.is_none() ? Tensor() : nb::cast<Tensor>(h));
  return out;
}

ag::TensorHookPtr python_hook(nb::object fn) {
  auto callable = std::make_shared<PyCallable>(std::move(fn));
  return std::make_shared<ag::TensorHook>([callable](const Tensor& g) -> Tensor {
    nb::gil_scoped_acquire gil;
    nb::object r = callable->fn(g);
    if (r.is_none()) return Tensor();
    VT_CHECK_TYPE(nb::isinstance<Tensor>(r), "a tensor hook must return None or a Tensor, got ",
                  nb::cast<std::string>(nb::str(r.type().attr("__name__"))));
    return nb::cast<Tensor>(r);
  });
}

// Note [Saved tensor hooks] from Python: what the pack hook returned (any object), released under the GIL, and
// the unpack hook that turns it back into the tensor.
struct PyPacked final : ag::PackedSaved {
  std::shared_ptr<PyCallable> obj, unpack_fn;  // PyCallable: a Python object dropped safely without the GIL
  PyPacked(std::shared_ptr<PyCallable> o, std::shared_ptr<PyCallable> u)
      : obj(std::move(o)), unpack_fn(std::move(u)) {}
  Tensor unpack() const override {
    nb::gil_scoped_acquire gil;
    nb::object r = unpack_fn->fn(obj->fn);
    VT_CHECK_TYPE(nb::isinstance<Tensor>(r), "the unpack hook of saved_tensors_hooks must return a Tensor, got ",
                  nb::cast<std::string>(nb::str(r.type().attr("__name__"))));
    return nb::cast<Tensor>(r);
  }
};

void push_python_saved_tensors_hooks(nb::object pack, nb::object unpack) {
  auto pack_fn = std::make_shared<PyCallable>(std::move(pack));
  auto unpack_fn = std::make_shared<PyCallable>(std::move(unpack));
  ag::push_saved_tensor_hooks([pack_fn, unpack_fn](const Tensor& t) -> std::shared_ptr<ag::PackedSaved> {
    nb::gil_scoped_acquire gil;
    auto packed = std::make_shared<PyCallable>(pack_fn->fn(t));
    return std::make_shared<PyPacked>(std::move(packed), unpack_fn);
  });
}

// Saved tensors of a custom Function: owned by the ctx object (ctx._saved) and released with the node.
struct SavedTensors {
  std::vector<ag::SavedVariable> vars;
  std::weak_ptr<ag::Node> owner;
  nb::list unpack() const {
    nb::list out;
    std::shared_ptr<ag::Node> node = owner.lock();
    for (const ag::SavedVariable& v : vars) out.append(tensor_or_none(v.unpack(node)));
    return out;
  }
};

class PyNode final : public ag::Node {
 public:
  PyNode(std::string name, nb::object backward, std::shared_ptr<SavedTensors> saved)
      : name_(std::move(name)), backward_(std::make_shared<PyCallable>(std::move(backward))), saved_(std::move(saved)) {}
  std::string name() const override { return name_; }
  void release_variables() override {
    for (ag::SavedVariable& v : saved_->vars) v.reset();
  }
  std::vector<Tensor> apply(std::vector<Tensor>&& grads) override {
    nb::gil_scoped_acquire gil;
    nb::list args;
    for (size_t i = 0; i < num_outputs(); ++i) {
      Tensor g = i < grads.size() ? grads[i] : Tensor();
      if (!g.defined()) {  // torch's default (ctx.set_materialize_grads(True)): unused outputs read as zeros
        const ag::TensorGeometry& geo = output_geometry(uint32_t(i));
        g = ops::full(geo.sizes, Scalar(int64_t(0)), geo.dtype, geo.device);
      }
      args.append(nb::cast(g));
    }
    nb::object r = backward_->fn(*nb::tuple(args));
    nb::tuple results = nb::isinstance<nb::tuple>(r) ? nb::borrow<nb::tuple>(r) : nb::make_tuple(r);
    VT_CHECK(nb::len(results) == num_inputs_, "function ", name_, " returned an incorrect number of gradients ",
             "(expected ", num_inputs_, ", got ", nb::len(results), ")");
    std::vector<Tensor> out(edge_arg_.size());
    for (size_t i = 0; i < edge_arg_.size(); ++i) {
      size_t arg = edge_arg_[i];
      nb::handle h = results[arg];
      if (h.is_none()) continue;
      VT_CHECK_TYPE(nb::isinstance<Tensor>(h), "function ", name_, " returned a gradient that is not a Tensor or None ",
                    "at index ", arg);
      Tensor g = nb::cast<Tensor>(h);
      const ag::TensorGeometry& geo = input_geometry_[i];
      bool same = std::equal(g.sizes().begin(), g.sizes().end(), geo.sizes.begin(), geo.sizes.end());
      if (!same) {
        VT_CHECK(ag::is_expandable_to(geo.sizes, g.sizes()), "Function ", name_, " returned an invalid gradient at ",
                 "index ", arg, " - got ", shape_str(g.sizes()), " but expected shape compatible with ",
                 shape_str(geo.sizes));
        g = ag::sum_to(g, geo.sizes);
      }
      if (g.dtype() != geo.dtype) g = ops::to_dtype(g, geo.dtype);
      out[i] = std::move(g);
    }
    return out;
  }

  std::string name_;
  std::shared_ptr<PyCallable> backward_;
  std::shared_ptr<SavedTensors> saved_;
  size_t num_inputs_ = 0;
  std::vector<size_t> edge_arg_;
  std::vector<ag::TensorGeometry> input_geometry_;
};

// Wires a custom Function's outputs to a new PyNode. Returns the outputs (an output that is also an input is
// replaced by an alias, so the input keeps its own history).
nb::list function_node(const std::string& name, nb::list args, nb::list outputs, nb::object backward,
                       nb::list to_save, nb::list non_differentiable, nb::object ctx) {
  auto saved = std::make_shared<SavedTensors>();
  auto node = std::make_shared<PyNode>(name, std::move(backward), saved);
  node->num_inputs_ = nb::len(args);
  std::vector<Tensor> inputs;
  for (size_t i = 0; i < nb::len(args); ++i) {
    if (!nb::isinstance<Tensor>(args[i])) continue;
    Tensor t = nb::cast<Tensor>(args[i]);
    inputs.push_back(t);
    if (!ag::requires_grad(t)) continue;
    node->next_edges().push_back(ag::gradient_edge(t));
    node->edge_arg_.push_back(i);
    node->input_geometry_.emplace_back(t);
  }
  auto excluded = [&](const Tensor& t) {
    for (nb::handle h : non_differentiable)
      if (nb::isinstance<Tensor>(h) && nb::cast<Tensor>(h).is_same(t)) return true;
    return false;
  };
  nb::list result;
  std::vector<Tensor> outs;
  for (nb::handle h : outputs) {
    if (!nb::isinstance<Tensor>(h)) {
      result.append(h);
      continue;
    }
    Tensor t = nb::cast<Tensor>(h);
    for (const Tensor& in : inputs)
      if (in.is_same(t)) t = ag::detach(t);
    if (is_floating(t.dtype()) && !excluded(t)) ag::set_history(t, node);
    outs.push_back(t);
    result.append(nb::cast(t));
  }
  for (nb::handle h : to_save) {
    if (h.is_none()) {
      saved->vars.emplace_back();
      continue;
    }
    Tensor t = nb::cast<Tensor>(h);
    bool is_output = false;
    for (const Tensor& o : outs) is_output = is_output || o.is_same(t);
    saved->vars.emplace_back(t, is_output);
  }
  saved->owner = node;
  ctx.attr("_saved") = nb::cast(saved);
  return result;
}

nb::object next_functions(const ag::Node& n) {
  nb::list out;
  for (const ag::Edge& e : n.next_edges())
    out.append(nb::make_tuple(e.node ? nb::cast(e.node) : nb::none(), e.input_nr));
  return nb::tuple(out);
}

}  // namespace

void bind_autograd(nb::module_& m) {
  ag::install_autograd_kernels();
  install_autocast_kernels();
  m.def("is_grad_enabled", &ag::is_grad_enabled);
  m.def("set_grad_enabled", &ag::set_grad_enabled);
  m.def("is_inference_mode_enabled", &ag::is_inference_mode_enabled);
  m.def("_push_saved_tensors_hooks", &push_python_saved_tensors_hooks);
  m.def("_pop_saved_tensors_hooks", &ag::pop_saved_tensor_hooks);
  m.def("_get_mode", [] { return nb::make_tuple(ag::tls_grad_mode.grad_enabled, ag::tls_grad_mode.inference); });
  m.def("_set_mode", [](bool grad, bool inference) { ag::tls_grad_mode = ag::GradModeState{grad, inference}; });
  // This thread's autocast state (vt/core/autocast.h) as (cpu_enabled, cuda_enabled, cpu_dtype, cuda_dtype,
  // suspended, cache_enabled); vibetensor.torch.amp saves it on entering a region and puts it back on leaving.
  m.def("_get_autocast", [] {
    const AutocastState& a = tls_autocast;
    return nb::make_tuple(a.enabled[0], a.enabled[1], a.dtype[0], a.dtype[1], a.suspended, a.cache_enabled);
  });
  m.def("_set_autocast", [](bool cpu, bool cuda, ScalarType cpu_dtype, ScalarType cuda_dtype, bool suspended,
                            bool cache_enabled) {
    tls_autocast = AutocastState{{cpu, cuda}, {cpu_dtype, cuda_dtype}, suspended, cache_enabled};
  });
  m.def("_autocast_increment_nesting", &autocast_increment_nesting);
  m.def("_autocast_decrement_nesting", &autocast_decrement_nesting);
  m.def("_clear_autocast_cache", &clear_autocast_cache);

  nb::class_<ag::Node>(m, "Node")
      .def("name", &ag::Node::name)
      .def_prop_ro("next_functions", &next_functions)
      .def("_sequence_nr", &ag::Node::sequence_nr)
      .def("__repr__", [](const ag::Node& n) { return "<" + n.name() + " object>"; });
  nb::class_<SavedTensors>(m, "SavedTensors").def("unpack", &SavedTensors::unpack);
  nb::class_<HookHandle>(m, "RemovableHandle").def("remove", [](HookHandle& h) { *h.hook = nullptr; });

  // Backward runs without the GIL, so other Python threads go on meanwhile; whatever in it reaches Python (tensor
  // hooks, custom Functions, Python kernels, producers' deleters, allocation-history stacks) takes the GIL itself.
  // The argument vectors are built before the release and destroyed after the GIL is back.
  m.def("backward", [](nb::handle tensors, nb::handle grads, bool retain_graph, bool create_graph, nb::handle inputs) {
    std::vector<Tensor> roots = tensors_or_undefined(tensors), gs = tensors_or_undefined(grads);
    std::vector<Tensor> ins = tensors_or_undefined(inputs);
    nb::gil_scoped_release release;
    ag::backward(roots, gs, retain_graph, create_graph, ins);
  });
  m.def("grad", [](nb::handle outputs, nb::handle inputs, nb::handle grads, bool retain_graph, bool create_graph,
                   bool allow_unused) {
    std::vector<Tensor> roots = tensors_or_undefined(outputs), ins = tensors_or_undefined(inputs);
    std::vector<Tensor> gs = tensors_or_undefined(grads), r;
    {
      nb::gil_scoped_release release;
      r = ag::grad(roots, ins, gs, retain_graph, create_graph, allow_unused);
    }
    nb::list out;
    for (const Tensor& t : r) out.append(tensor_or_none(t));
    return nb::tuple(out);
  });
  m.def("_function_node", &function_node);
  m.def("_set_device_threads", &ag::set_device_workers_enabled);
  m.def("_device_threads_enabled", &ag::device_workers_enabled);

  // Tensor's autograd surface (properties and methods attached to the core Tensor class).
  nb::object cls = nb::module_::import_("vibetensor._C.core").attr("Tensor");
  nb::object property = nb::module_::import_("builtins").attr("property");
  auto method = [&](const char* name, auto fn, auto... extra) {
    nb::setattr(cls, name, nb::cpp_function(fn, nb::name(name), nb::is_method(), nb::scope(cls), extra...));
  };
  auto prop = [&](const char* name, auto get, auto set) {
    nb::setattr(cls, name, property(nb::cpp_function(get), nb::cpp_function(set, nb::arg("self"), nb::arg("value").none())));
  };
  prop("requires_grad", [](const Tensor& t) { return ag::requires_grad(t); },
       [](const Tensor& t, bool flag) { ag::set_requires_grad(t, flag); });
  nb::setattr(cls, "grad_fn", property(nb::cpp_function([](const Tensor& t) -> nb::object {
    std::shared_ptr<ag::Node> n = ag::grad_fn(t);
    return n ? nb::cast(n) : nb::none();
  })));
  nb::setattr(cls, "is_leaf", property(nb::cpp_function([](const Tensor& t) { return ag::is_leaf(t); })));
  // Note [View base]: the tensor a view was made from (the first base of a chain), None for other tensors.
  nb::setattr(cls, "_base", property(nb::cpp_function([](const Tensor& t) -> nb::object {
    const std::shared_ptr<TensorImpl>& b = t.impl()->view_base();
    return b ? nb::cast(Tensor(b)) : nb::none();
  })));
  method("_is_view", [](const Tensor& t) { return t.impl()->view_base() != nullptr; });
  nb::setattr(cls, "retains_grad", property(nb::cpp_function([](const Tensor& t) {
    vt::AutogradMeta* mt = ag::meta_if(t);
    return mt && mt->retains_grad;
  })));
  prop("grad", [](const Tensor& t) -> nb::object {
    vt::AutogradMeta* mt = ag::meta_if(t);
    return mt ? tensor_or_none(mt->grad) : nb::none();
  }, [](const Tensor& t, nb::handle g) {
    if (g.is_none()) {
      if (vt::AutogradMeta* mt = ag::meta_if(t)) mt->grad = Tensor();
      return;
    }
    VT_CHECK_TYPE(nb::isinstance<Tensor>(g), "assigned grad expected to be a Tensor or None but got grad of type ",
                  nb::cast<std::string>(nb::str(g.type().attr("__name__"))));
    Tensor grad = nb::cast<Tensor>(g);
    VT_CHECK(std::equal(grad.sizes().begin(), grad.sizes().end(), t.sizes().begin(), t.sizes().end()),
             "assigned grad has data of a different size: ", shape_str(grad.sizes()), " vs ", shape_str(t.sizes()));
    VT_CHECK(grad.dtype() == t.dtype(), "assigned grad has data of a different type: ", dtype_name(grad.dtype()),
             " vs ", dtype_name(t.dtype()));
    ag::meta(t).grad = grad;
  });
  method("requires_grad_", [](nb::handle self, bool flag) -> nb::object {
    ag::set_requires_grad(nb::cast<const Tensor&>(self), flag);
    return nb::borrow(self);
  }, nb::arg("requires_grad") = true);
  method("detach", [](const Tensor& t) { return ag::detach(t); });
  method("_set_data", [](const Tensor& t, nb::handle v) {  // the setter of Tensor.data (Note [Data assignment])
    VT_CHECK_TYPE(nb::isinstance<Tensor>(v), "Variable data has to be a tensor, but got ",
                  nb::cast<std::string>(nb::str(v.type().attr("__name__"))));
    const Tensor& other = nb::cast<const Tensor&>(v);
    VT_CHECK(!ag::requires_grad(t) || is_floating(other.dtype()), "data set to a tensor that requires gradients "
             "must be floating point or complex dtype (got ", dtype_name(other.dtype()), ")");
    // A leaf whose dtype or device changes gets a new gradient accumulator, as torch's set_data resets it: one
    // that a graph built before still holds would cast the new gradients to the old dtype.
    if (vt::AutogradMeta* m = ag::meta_if(t); m && (t.dtype() != other.dtype() || t.device() != other.device()))
      m->grad_accumulator.reset();
    t.impl()->set_data(*other.impl());
  });
  method("retain_grad", [](const Tensor& t) {
    VT_CHECK(ag::requires_grad(t), "can't retain_grad on Tensor that has requires_grad=False");
    ag::grad_fn(t);  // a view's history is made current first (Note [View rebasing])
    vt::AutogradMeta& mt = ag::meta(t);
    if (!mt.grad_fn || mt.retains_grad) return;  // a leaf keeps its grad anyway
    mt.retains_grad = true;
    mt.grad_fn->set_retain_grad(mt.output_nr, t.impl_ptr());
  });
  method("register_hook", [](const Tensor& t, nb::object fn) {
    VT_CHECK(ag::requires_grad(t), "cannot register a hook on a tensor that doesn't require gradient");
    ag::TensorHookPtr hook = python_hook(std::move(fn));
    ag::grad_fn(t);  // a view's history is made current first (Note [View rebasing])
    vt::AutogradMeta& mt = ag::meta(t);
    if (mt.grad_fn) mt.grad_fn->add_tensor_hook(mt.output_nr, hook);
    else mt.leaf_hooks.push_back(hook);
    return HookHandle{hook};
  });
  // register_post_accumulate_grad_hook's engine side (the Python method in vibetensor/torch/_surface_more.py hands
  // the hook the tensor's own Python object): fn(leaf) runs after backward has added into the leaf's .grad.
  method("_register_post_accumulate_grad_hook", [](const Tensor& t, nb::object fn) {
    VT_CHECK(ag::requires_grad(t), "cannot register a hook on a tensor that doesn't require gradient");
    VT_CHECK(ag::is_leaf(t), "post accumulate grad hooks cannot be registered on non-leaf tensors");
    auto callable = std::make_shared<PyCallable>(std::move(fn));
    auto hook = std::make_shared<ag::TensorHook>([callable](const Tensor& leaf) -> Tensor {
      nb::gil_scoped_acquire gil;
      nb::object r = callable->fn(leaf);
      VT_CHECK(!nb::isinstance<Tensor>(r), "Tensor post accumulate grad hooks should return None.");
      VT_CHECK_TYPE(r.is_none(), "expected Variable, but hook returned '",
                    nb::cast<std::string>(nb::str(r.type().attr("__name__"))), "'");
      return Tensor();
    });
    ag::meta(t).post_accumulate_hooks.push_back(hook);
    return HookHandle{hook};
  });
  // The in-place view ops (unsqueeze_, t_, as_strided_, ...; vibetensor/torch/_surface_more.py): the tensor takes
  // the geometry of make(self), a view of its own storage made by the out-of-place op, and, when that view has
  // history, its grad_fn (UnsqueezeBackward, ...): torch rebases a non-leaf's history the same way. The version
  // moves, as for any in-place op, so backward refuses tensors saved with the old geometry and views made earlier
  // regenerate their history from the new one (Note [View rebasing]); this tensor's own history is current.
  method("_inplace_view_", [](nb::handle self, nb::object make) -> nb::object {
    const Tensor& t = nb::cast<const Tensor&>(self);
    Tensor v = nb::cast<Tensor>(make(self));
    VT_CHECK(v.storage() == t.storage(), "_inplace_view_: make(self) must return a view of self");
    t.impl()->set_sizes_strides(v.sizes(), v.strides(), v.storage_offset());
    t.bump_version();
    vt::AutogradMeta* vm = ag::meta_if(v);
    if (!vm || !vm->grad_fn) return nb::borrow(self);
    vt::AutogradMeta& m = ag::meta(t);
    if (m.retains_grad && m.grad_fn) m.grad_fn->drop_retain_grad(t.impl());
    m.grad_fn = vm->grad_fn;
    m.output_nr = vm->output_nr;
    m.view_version = t.storage()->version();
    if (m.retains_grad) m.grad_fn->set_retain_grad(m.output_nr, t.impl_ptr());
    return nb::borrow(self);
  });
}

}  // namespace vt::py
