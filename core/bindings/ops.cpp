// The boxed call path from Python: vt.ops.<ns>.<op>(...) and most vibetensor.torch functions are OpHandles.
// An OpHandle resolves its OperatorEntry once; each call parses arguments against the schema (positional,
// keyword, defaults), calls the dispatcher boxed, and converts the results back.
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/string_view.h>
#include <nanobind/stl/vector.h>

#include <map>
#include <tuple>

#include "common.h"
#include "vt/core/cpu_gelu.h"
#include "vt/core/cpu_gemm.h"
#include "vt/core/cpu_vec_math.h"
#include "vt/core/parallel.h"
#include "vt/core/random.h"

namespace vt::py {
namespace {

// Ops shaped (Tensor) -> Tensor or (Tensor, Tensor) -> Tensor called positionally skip the Stack and go
// through the typed fast path (Note [Unboxed fast path]); everything else is parsed against the schema.
enum class Shape : uint8_t { Unary, Binary, Other };

struct OpHandle {
  OperatorEntry* entry;
  Shape shape = Shape::Other;
};

Shape shape_of(const FunctionSchema& s) {
  if (s.returns.size() != 1 || s.returns[0] != ArgType::Tensor) return Shape::Other;
  for (const Argument& a : s.args)
    if (a.type != ArgType::Tensor || a.optional) return Shape::Other;
  return s.args.size() == 1 ? Shape::Unary : s.args.size() == 2 ? Shape::Binary : Shape::Other;
}

nb::object call_op_from(const OpHandle& h, Layer from, nb::args args, nb::kwargs kwargs) {
  const FunctionSchema& s = h.entry->schema();
  if (from == Layer::Python && h.shape != Shape::Other && kwargs.size() == 0 &&
      args.size() == (h.shape == Shape::Unary ? 1u : 2u)) {
    Tensor a = as_tensor_arg(args[0], s.name.c_str(), s.args[0].name.c_str());
    Tensor out;
    if (h.shape == Shape::Unary) {
      MaybeReleaseGil release(is_big(a));
      out = h.entry->call<Tensor, const Tensor&>(Layer::Python, a);
    } else {
      Tensor b = as_tensor_arg(args[1], s.name.c_str(), s.args[1].name.c_str());
      MaybeReleaseGil release(is_big(a) || is_big(b));
      out = h.entry->call<Tensor, const Tensor&, const Tensor&>(Layer::Python, a, b);
    }
    return nb::cast(std::move(out));  // with the GIL held
  }
  size_t npos = 0;
  for (const Argument& a : s.args) npos += a.kwarg_only ? 0 : 1;
  VT_CHECK_TYPE(args.size() <= npos, s.name, "() takes ", npos, " positional argument(s) but ", args.size(),
                " were given");
  Stack stack;
  stack.reserve(s.args.size());
  size_t used_kwargs = 0;
  for (size_t i = 0; i < s.args.size(); ++i) {
    const Argument& a = s.args[i];
    nb::handle v;
    if (i < args.size()) {
      v = args[i];
    } else if (kwargs.contains(a.name.c_str())) {
      v = kwargs[a.name.c_str()];
      ++used_kwargs;
    }
    if (v.is_valid()) {
      stack.push_back(to_ivalue(v, a, s));
    } else {
      VT_CHECK_TYPE(a.default_value.has_value(), s.name, "() missing required argument '", a.name, "'");
      stack.push_back(*a.default_value);
    }
    if (i < args.size()) VT_CHECK_TYPE(!kwargs.contains(a.name.c_str()), s.name, "() got multiple values for argument '", a.name, "'");
  }
  if (used_kwargs != kwargs.size()) {
    for (auto [k, v] : kwargs) {
      std::string key = nb::cast<std::string>(k);
      bool known = false;
      for (const Argument& a : s.args) known = known || a.name == key;
      VT_CHECK_TYPE(known, s.name, "() got an unexpected keyword argument '", key, "'");
    }
  }
  bool big = false;
  for (const IValue& v : stack)
    if (auto* t = std::get_if<Tensor>(&v)) big = big || is_big(*t);
  {
    MaybeReleaseGil release(big);
    h.entry->call_boxed(from, stack);
  }
  if (stack.empty()) return nb::none();  // "-> ()": an op that only mutates its arguments
  if (stack.size() == 1) return from_ivalue(std::move(stack[0]));
  nb::list out;
  for (IValue& v : stack) out.append(from_ivalue(std::move(v)));
  return nb::tuple(out);
}

// out= (Note [out= by copy] in python/vibetensor/torch/_out.py): the op runs as usual and the Python writer
// puts its result into `out` with torch's rules for out arguments. No op's schema has an argument named out.
nb::object write_out(const std::string& op_name, nb::handle result, nb::handle out) {
  static nb::object* writer = new nb::object(nb::module_::import_("vibetensor.torch._out").attr("write"));  // leaked
  return (*writer)(op_name.substr(op_name.find("::") + 2), result, out);
}

// nanobind chains overloads through an attribute of the functions' scope: the fast functions get a private
// namespace as that scope, cleared of a name before its pair of overloads is made.
nb::object& fast_ops() {
  static nb::object* ns = new nb::object(nb::module_::import_("types").attr("SimpleNamespace")());  // leaked
  return *ns;
}
void overload_scope(const char* name) {
  if (nb::hasattr(fast_ops(), name)) nb::delattr(fast_ops(), name);
}

nb::object call_op(const OpHandle& h, nb::args args, nb::kwargs kwargs) {
  if (kwargs.size() > 0 && kwargs.contains("out")) {
    nb::object out = kwargs["out"];
    nb::kwargs rest;
    for (auto [k, v] : kwargs)
      if (nb::cast<std::string_view>(k) != "out") rest[k] = v;
    if (out.is_none()) return call_op_from(h, Layer::Python, args, rest);
    AutocastSuspendGuard no_autocast;  // torch autocasts the functional forms only, never an out= call
    return write_out(h.entry->name(), call_op_from(h, Layer::Python, args, rest), out);
  }
  return call_op_from(h, Layer::Python, args, kwargs);
}

// The Python function behind a Python kernel; replaced in place under the GIL (Note [Reusable boxed kernels]).
struct PyKernelCell {
  nb::object fn;
};

// A boxed kernel that calls a Python function: arguments become Python objects (Tensors, numbers, lists,
// None), and the return value is converted back per the schema's returns. Runs with the GIL held.
std::unique_ptr<KernelFunction> python_kernel(OperatorEntry* entry, std::shared_ptr<PyKernelCell> cell) {
  auto k = std::make_unique<KernelFunction>();
  k->boxed = [entry, cell](Stack& s) {
    nb::gil_scoped_acquire gil;
    nb::object fn = cell->fn;  // this call keeps the function alive even if it is replaced meanwhile
    const FunctionSchema& schema = entry->schema();
    nb::list pos;
    nb::dict kw;
    for (size_t i = 0; i < s.size(); ++i) {
      nb::object v = from_ivalue(std::move(s[i]));
      if (schema.args[i].kwarg_only) kw[schema.args[i].name.c_str()] = v;
      else pos.append(v);
    }
    nb::object r = fn(*nb::tuple(pos), **kw);
    s.clear();
    size_t n = schema.returns.size();
    if (n == 0) return;  // "-> ()": whatever the function returns is dropped, as None would be
    if (n == 1) {
      Argument ret{"result", schema.returns[0]};
      s.push_back(to_ivalue(r, ret, schema));
      return;
    }
    VT_CHECK_TYPE(nb::isinstance<nb::tuple>(r) && nb::len(r) == n, schema.name, ": Python kernel must return a tuple of ",
                  n, " values");
    for (size_t i = 0; i < n; ++i) s.push_back(to_ivalue(r[i], Argument{"result", schema.returns[i]}, schema));
  };
  return k;
}

// One kernel object per (op, slot), reused for every registration there (Note [Reusable boxed kernels]).
// Touched only with the GIL held; leaked on purpose, like the dispatcher that holds the kernels.
void register_python_kernel(OperatorEntry* e, Layer layer, DispatchKey key, nb::object fn) {
  using Slot = std::tuple<OperatorEntry*, int, int>;
  static auto* cells = new std::map<Slot, std::pair<const KernelFunction*, std::shared_ptr<PyKernelCell>>>();
  Slot slot{e, int(layer), layer == Layer::Backend ? int(key) : -1};
  if (auto it = cells->find(slot); it != cells->end()) {
    it->second.second->fn = std::move(fn);  // the replaced function is released here
    if (e->installed(layer, key) == it->second.first || e->reinstall(layer, key, it->second.first)) return;
  }
  auto cell = std::make_shared<PyKernelCell>(PyKernelCell{std::move(fn)});
  std::unique_ptr<KernelFunction> k = python_kernel(e, cell);
  (*cells)[slot] = {k.get(), cell};
  if (layer == Layer::Backend) e->set_boxed_backend(key, std::move(k));
  else e->set_layer(layer, std::move(k));
}

}  // namespace

void bind_ops(nb::module_& m) {
  nb::class_<OpHandle>(m, "OpHandle")
      .def("__call__", &call_op)
      .def("redispatch", [](const OpHandle& h, nb::args args, nb::kwargs kwargs) {
        return call_op_from(h, Layer::Autocast, args, kwargs);
      }, "Calls the op below the Python-override layer (what an override uses to reach the original).")
      .def_prop_ro("name", [](const OpHandle& h) { return h.entry->name(); })
      .def_prop_ro("schema", [](const OpHandle& h) { return h.entry->schema().text; })
      .def_prop_ro("arguments", [](const OpHandle& h) {  // [(name, kwarg_only)] in schema order
        nb::list out;
        for (const Argument& a : h.entry->schema().args) out.append(nb::make_tuple(a.name, a.kwarg_only));
        return out;
      })
      .def_prop_ro("composite", [](const OpHandle& h) { return h.entry->kind() == OpKind::Composite; })
      .def("__repr__", [](const OpHandle& h) { return "<op " + h.entry->schema().text + ">"; });
  m.def("op", [](const std::string& name) {
    OperatorEntry* e = Dispatcher::get().find(name);
    VT_CHECK_KIND(Value, e != nullptr, "no operator named '", name, "'");
    return OpHandle{e, shape_of(e->schema())};
  });
  // A plain function for ops shaped (Tensor) -> Tensor or (Tensor, Tensor) -> Tensor: fixed arity, so Python
  // builds no args tuple or kwargs dict per call. Other ops get their OpHandle.
  m.def("fast_op", [m](const std::string& name, bool method) -> nb::object {
    OperatorEntry* e = Dispatcher::get().find(name);
    VT_CHECK_KIND(Value, e != nullptr, "no operator named '", name, "'");
    Shape shape = shape_of(e->schema());
    std::string short_name = name.substr(name.find("::") + 2);
    nb::object cls = m.attr("Tensor");
    if (shape == Shape::Unary) {
      auto fn = [e](nb::handle x) {
        Tensor a = as_tensor_arg(x, e->name().c_str(), "self");
        Tensor out;
        {
          MaybeReleaseGil release(is_big(a));
          out = e->call<Tensor, const Tensor&>(Layer::Python, a);
        }
        return out;
      };
      if (method) return nb::cpp_function(fn, nb::name(short_name.c_str()), nb::is_method(), nb::scope(cls));
      const char* n = short_name.c_str();
      overload_scope(n);
      nb::setattr(fast_ops(), n, nb::cpp_function(fn, nb::scope(fast_ops()), nb::name(n), nb::arg("input")));
      // out= as a second overload: a call without it never reaches this one (Note [out= by copy])
      return nb::cpp_function([fn, e](nb::handle x, nb::handle out) {
        if (out.is_none()) return nb::cast(fn(x));
        AutocastSuspendGuard no_autocast;  // as call_op's out=
        return write_out(e->name(), nb::cast(fn(x)), out);
      }, nb::scope(fast_ops()), nb::name(n), nb::arg("input"), nb::kw_only(), nb::arg("out").none());
    }
    if (shape == Shape::Binary) {
      auto fn = [e](nb::handle x, nb::handle y) {
        Tensor a = as_tensor_arg(x, e->name().c_str(), "self");
        Tensor b = as_tensor_arg(y, e->name().c_str(), "other");
        Tensor out;
        {
          MaybeReleaseGil release(is_big(a) || is_big(b));
          out = e->call<Tensor, const Tensor&, const Tensor&>(Layer::Python, a, b);
        }
        return out;
      };
      if (method)
        return nb::cpp_function(fn, nb::name(short_name.c_str()), nb::is_method(), nb::scope(cls), nb::arg("other"));
      const char* n = short_name.c_str();
      overload_scope(n);
      nb::setattr(fast_ops(), n,
                  nb::cpp_function(fn, nb::scope(fast_ops()), nb::name(n), nb::arg("input"), nb::arg("other")));
      return nb::cpp_function([fn, e](nb::handle x, nb::handle y, nb::handle out) {
        if (out.is_none()) return nb::cast(fn(x, y));
        AutocastSuspendGuard no_autocast;  // as call_op's out=
        return write_out(e->name(), nb::cast(fn(x, y)), out);
      }, nb::scope(fast_ops()), nb::name(n), nb::arg("input"), nb::arg("other"), nb::kw_only(), nb::arg("out").none());
    }
    return nb::cast(OpHandle{e, shape});
  }, nb::arg("name"), nb::arg("method") = false);
  m.def("op_names", [] { return Dispatcher::get().op_names(); });
  m.def("define", [](const std::string& ns, const std::string& schema, bool composite) {
    Library(ns).def(schema, DevicePolicy::SameDevice, composite ? OpKind::Composite : OpKind::Primitive);
  }, nb::arg("ns"), nb::arg("schema"), nb::arg("composite") = false);
  // The op's autograd-layer kernel becomes `fn` (vibetensor.library.register_autograd builds it).
  m.def("register_autograd_kernel", [](const std::string& name, nb::object fn) {
    OperatorEntry* e = Dispatcher::get().find(name);
    VT_CHECK_KIND(Value, e != nullptr, "no operator named '", name, "'");
    register_python_kernel(e, Layer::Autograd, DispatchKey::Any, std::move(fn));
  });
  m.def("register_python_kernel", [](const std::string& name, const std::string& key, nb::object fn) {
    OperatorEntry* e = Dispatcher::get().find(name);
    VT_CHECK_KIND(Value, e != nullptr, "no operator named '", name, "'");
    if (key == "Python") return register_python_kernel(e, Layer::Python, DispatchKey::Any, std::move(fn));
    DispatchKey k = key == "CPU" ? DispatchKey::CPU : key == "CUDA" ? DispatchKey::CUDA : DispatchKey::Any;
    VT_CHECK_VALUE(key == "CPU" || key == "CUDA" || key == "Any", "unknown dispatch key '", key,
                   "'; expected CPU, CUDA, Any or Python");
    register_python_kernel(e, Layer::Backend, k, std::move(fn));
  });
  m.def("remove_python_override", [](const std::string& name) {
    OperatorEntry* e = Dispatcher::get().find(name);
    VT_CHECK_KIND(Value, e != nullptr, "no operator named '", name, "'");
    e->set_layer(Layer::Python, nullptr);
  });
  // For in-place operations composed in Python (computed out of place, then copied back): the same check the
  // dispatcher makes for in-place ops (Note [In-place overlap]), run before anything is written.
  m.def("_check_inplace_overlap", [](const Tensor& written, const std::vector<Tensor>& reads, const std::string& op) {
    assert_no_internal_overlap(written, op);
    for (const Tensor& r : reads) assert_no_partial_overlap(written, r, op);
  });
  m.def("manual_seed", [](uint64_t seed) { random::manual_seed(seed); });
  m.def("initial_seed", &random::initial_seed);
  m.def("get_rng_state", &random::get_state);
  m.def("set_rng_state", &random::set_state);
  m.def("get_num_threads", &num_threads);
  m.def("set_num_threads", &set_num_threads);
  // The CPU GEMM's micro-kernel family ("generic", "avx2", "avx512"), switchable so tests cover each one.
  m.def("cpu_gemm_kernel", [] { return std::string(cpu_gemm::kernel_isa()); });
  m.def("set_cpu_gemm_kernel", [](const std::string& name) { cpu_gemm::set_kernel_isa(name); });
  // The instruction set of the CPU's vector exp, sigmoid, silu, tanh and softmax passes, switchable for tests.
  m.def("cpu_math_isa", [] { return std::string(cpu_math::isa()); });
  m.def("set_cpu_math_isa", [](const std::string& name) { cpu_math::set_isa(name); });
  // The float32 operation sequence the CPU gelu reproduces ("minimax", "abramowitz_stegun", "libm"): tests pick each.
  m.def("cpu_gelu_model", [] { return std::string(cpu_gelu::model_name()); });
  m.def("set_cpu_gelu_model", [](const std::string& name) { cpu_gelu::set_model(name); });
  m.def("has_kernel", [](const std::string& name, const std::string& key) {
    OperatorEntry* e = Dispatcher::get().find(name);
    VT_CHECK_KIND(Value, e != nullptr, "no operator named '", name, "'");
    DispatchKey k = key == "CPU" ? DispatchKey::CPU : key == "CUDA" ? DispatchKey::CUDA : DispatchKey::Any;
    return e->has_backend(k);
  });
}

}  // namespace vt::py
