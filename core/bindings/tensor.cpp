// The Tensor class seen from Python. Hot paths (operators, shape queries, common views) are bound here and
// call the dispatcher unboxed; everything else is attached in Python (vibetensor/torch/_tensor.py) on top of
// OpHandles.
#include <atomic>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "common.h"
#include "vt/autograd/node.h"
#include "vt/core/ops.h"
#include "vt/cuda/device.h"
#include "vt/cuda/memory.h"

namespace vt::py {
namespace {

// An op entry resolved once, called with the exact C++ signature (Note [Unboxed fast path]).
struct Binary {
  const char* name;
  OperatorEntry* entry = nullptr;
  Tensor operator()(const Tensor& a, const Tensor& b) {
    if (!entry) entry = &Dispatcher::get().entry(name);
    MaybeReleaseGil release(is_big(a) || is_big(b));
    return entry->call<Tensor, const Tensor&, const Tensor&>(Layer::Python, a, b);
  }
};
struct AddLike {
  const char* name;
  OperatorEntry* entry = nullptr;
  Tensor operator()(const Tensor& a, const Tensor& b, const Scalar& alpha) {
    if (!entry) entry = &Dispatcher::get().entry(name);
    MaybeReleaseGil release(is_big(a) || is_big(b));
    return entry->call<Tensor, const Tensor&, const Tensor&, const Scalar&>(Layer::Python, a, b, alpha);
  }
};
struct Unary {
  const char* name;
  OperatorEntry* entry = nullptr;
  Tensor operator()(const Tensor& a) {
    if (!entry) entry = &Dispatcher::get().entry(name);
    return entry->call<Tensor, const Tensor&>(Layer::Python, a);
  }
};

Binary k_mul{"vt::mul"}, k_mul_{"vt::mul_"}, k_floordiv{"vt::floor_divide"}, k_floordiv_{"vt::floor_divide_"},
    k_rem{"vt::remainder"}, k_rem_{"vt::remainder_"}, k_pow{"vt::pow"}, k_pow_{"vt::pow_"}, k_and{"vt::bitwise_and"},
    k_and_{"vt::bitwise_and_"}, k_or{"vt::bitwise_or"}, k_or_{"vt::bitwise_or_"}, k_xor{"vt::bitwise_xor"},
    k_xor_{"vt::bitwise_xor_"}, k_eq{"vt::eq"}, k_ne{"vt::ne"}, k_lt{"vt::lt"}, k_le{"vt::le"}, k_gt{"vt::gt"},
    k_ge{"vt::ge"};
AddLike k_add{"vt::add"}, k_add_{"vt::add_"}, k_sub{"vt::sub"}, k_sub_{"vt::sub_"};
Unary k_neg{"vt::neg"}, k_abs{"vt::abs"}, k_not{"vt::bitwise_not"};
Binary k_mm{"vt::mm"};
Binary k_matmul{"vt::matmul"};

// a.matmul(b): two matrices go straight to mm, other ranks to vt::matmul (core/src/ops/matmul_composite.cpp),
// which folds, broadcasts and batches them. a @ b is the same but for a `b` that is not a tensor:
// NotImplemented, so that Python raises its TypeError (or asks b's __rmatmul__), as torch does.
nb::object matmul_fn(const Tensor& a, nb::handle b, bool is_operator) {
  if (!nb::isinstance<Tensor>(b)) {
    if (is_operator) return nb::borrow(Py_NotImplemented);
    VT_CHECK_TYPE(false, "matmul(): argument 'other' (position 1) must be Tensor, not ",
                  nb::cast<std::string>(nb::str(b.type().attr("__name__"))));
  }
  const Tensor& m = nb::cast<const Tensor&>(b);
  return nb::cast(a.dim() == 2 && m.dim() == 2 ? k_mm(a, m) : k_matmul(a, m));
}

Tensor div_fn(const Tensor& a, const Tensor& b, bool inplace) {
  static OperatorEntry* d = &Dispatcher::get().entry("vt::div");
  static OperatorEntry* d_ = &Dispatcher::get().entry("vt::div_");
  MaybeReleaseGil release(is_big(a) || is_big(b));
  return (inplace ? d_ : d)
      ->call<Tensor, const Tensor&, const Tensor&, std::optional<std::string>>(Layer::Python, a, b, std::nullopt);
}

nb::tuple int_tuple(IntArrayRef r) {
  nb::list l;
  for (int64_t v : r) l.append(v);
  return nb::tuple(l);
}

// Note [Size]: x.shape and x.size() are vt.Size (python/vibetensor/torch/_size.py), torch.Size's tuple subclass
// (numel(), torch's repr), built here as CPython builds a tuple subclass (its tp_alloc, then the items), so a
// shape costs what a plain tuple does. Until vibetensor.torch registers the class they are plain tuples.
PyTypeObject* g_size_type = nullptr;
nb::object size_tuple(IntArrayRef r) {
  const Py_ssize_t n = Py_ssize_t(r.size());
  PyObject* t = g_size_type ? g_size_type->tp_alloc(g_size_type, n) : PyTuple_New(n);
  if (!t) throw nb::python_error();
  for (Py_ssize_t i = 0; i < n; ++i) {
    PyObject* v = PyLong_FromLongLong(r[size_t(i)]);
    if (!v) {
      Py_DECREF(t);
      throw nb::python_error();
    }
    PyTuple_SET_ITEM(t, i, v);
  }
  return nb::steal(t);
}

// Accepts f(2, 3), f((2, 3)) and f([2, 3]) like torch's view/reshape/permute/expand.
std::vector<int64_t> varargs_ints(nb::handle args, const char* fn) {
  nb::handle src = args;
  // one argument that is not itself an integer (a NumPy integer or an int tensor counts as one) is the sequence
  PyObject* first = nb::len(args) == 1 ? args[0].ptr() : nullptr;
  if (first && !PyLong_Check(first) && !(PyIndex_Check(first) && !PySequence_Check(first))) src = args[0];
  std::vector<int64_t> out;
  for (nb::handle h : src) {
    VT_CHECK_TYPE(PyIndex_Check(h.ptr()), fn, "(): expected ints, got ",
                  nb::cast<std::string>(nb::str(h.type().attr("__name__"))));
    out.push_back(to_int64(h, fn));
  }
  return out;
}

nb::object item(const Tensor& t) {
  VT_CHECK(t.numel() == 1, "a Tensor with ", t.numel(), " elements cannot be converted to Scalar");
  // a device tensor of any one-element shape ([1, 1] too) comes to the host as a 0-d copy
  Tensor c = t.device().is_cpu() ? t : ops::copy_(empty_tensor({}, t.dtype(), kCPU), ops::reshape(t, DimVector{}));
  Scalar s = item_scalar(c);
  if (s.is_bool()) return nb::bool_(s.to_bool());
  if (s.is_integral()) return nb::int_(s.to_int());
  return nb::float_(s.to_double());
}

template <typename K>
auto bin(K& k) {
  return [&k](const Tensor& a, nb::handle b) { return k(a, as_tensor_arg(b, k.name, "other")); };
}
// In-place ops hand back the very Python object they were called on (`x.add_(1) is x`, `x += 1`).
template <typename K>
auto ibin(K& k) {
  return [&k](nb::handle self, nb::handle b) -> nb::object {
    k(nb::cast<const Tensor&>(self), as_tensor_arg(b, k.name, "other"));
    return nb::borrow(self);
  };
}
template <typename K>
auto rbin(K& k) {
  return [&k](const Tensor& a, nb::handle b) { return k(as_tensor_arg(b, k.name, "other"), a); };
}

}  // namespace

// Note [Factory hooks]: torch's layout= keyword and default device (vibetensor/torch/_factory_layout.py and
// _default_device.py) are Python state; the C++ factories call back into Python only when a layout is passed or
// once some thread has set a default device, so the common call pays one flag test.
namespace {
// Set at import by _set_factory_hooks; never freed (a global nb::object would be released after the interpreter).
nb::object* g_layout_check = nullptr;
nb::object* g_default_device = nullptr;
std::atomic<bool> g_default_device_used{false};
}  // namespace

// A factory's device: the one given (a CUDA device checked to exist), else the default device once one was set
// (Note [Factory hooks]), else none (the CPU).
std::optional<Device> factory_device(nb::handle device) {
  nb::object default_device;
  if (device.is_none() && g_default_device_used.load(std::memory_order_relaxed) && g_default_device) {
    default_device = (*g_default_device)();
    device = default_device;
  }
  if (device.is_none()) return std::nullopt;
  const Device dev = to_device(device);
  if (dev.is_cuda()) cuda::check_device(dev);
  return dev;
}

// empty/zeros/ones with torch's calling conventions (sizes as varargs or one sequence, or size=), parsed
// here rather than in Python: factories are on the hot path of allocation-heavy code. pin_memory=True puts a
// CPU tensor in page-locked memory (Note [Pinned host memory]).
template <int Fill>
Tensor factory(nb::args args, nb::handle size_kw, nb::handle dtype, nb::handle layout, nb::handle device, bool,
               bool pin_memory) {
  const char* name = Fill < 0 ? "empty" : Fill == 0 ? "zeros" : "ones";
  VT_CHECK_TYPE(args.size() || !size_kw.is_none(), name, "() missing 1 required positional arguments: \"size\"");
  std::vector<int64_t> shape = args.size() ? varargs_ints(args, name) : varargs_ints(nb::make_tuple(size_kw), name);
  if (!layout.is_none() && g_layout_check) (*g_layout_check)(layout, name);
  std::optional<ScalarType> dt;
  if (!dtype.is_none()) dt = to_dtype(dtype);
  const std::optional<Device> dev = factory_device(device);
  if (pin_memory) {
    VT_CHECK(!dev || dev->is_cpu(), "pin_memory=True: only CPU tensors can be pinned, got device ", dev->str());
    Tensor t = cuda::empty_pinned(shape, dt.value_or(ScalarType::Float32));
    if constexpr (Fill >= 0) ops::fill_(t, Scalar(int64_t(Fill)));
    return t;
  }
  if constexpr (Fill < 0) {
    return ops::empty(shape, dt, dev);
  } else {
    return ops::full(shape, Scalar(int64_t(Fill)), dt.value_or(ScalarType::Float32), dev);
  }
}

// requires_grad=True makes the new tensor a leaf that requires grad.
template <int Fill>
Tensor factory_with_grad(nb::args args, nb::handle size_kw, nb::handle dtype, nb::handle layout, nb::handle device,
                         bool requires_grad, bool pin_memory) {
  Tensor t = factory<Fill>(args, size_kw, dtype, layout, device, false, pin_memory);
  if (requires_grad) autograd::set_requires_grad(t, true);
  return t;
}

// full(size, fill_value, *, dtype, layout, device, requires_grad) as torch's, parsed here like the factories above
// (constant padding and masks build their fills with it). Without a dtype the value decides: float32 for a
// float, bool for a bool, int64 for an int.
Tensor full_factory(nb::handle size, nb::handle fill_value, nb::handle dtype, nb::handle layout, nb::handle device,
                    bool requires_grad) {
  VT_CHECK_TYPE(!PyLong_Check(size.ptr()), "full(): argument 'size' (position 1) must be tuple of ints, not ",
                nb::cast<std::string>(nb::str(size.type().attr("__name__"))));
  std::vector<int64_t> shape = varargs_ints(nb::make_tuple(size), "full");
  if (!layout.is_none() && g_layout_check) (*g_layout_check)(layout, "full");
  const Scalar value = to_scalar(fill_value, "full", "fill_value");
  Tensor t = ops::full(shape, value, dtype.is_none() ? std::nullopt : std::optional(to_dtype(dtype)),
                       factory_device(device));
  if (requires_grad) autograd::set_requires_grad(t, true);
  return t;
}

// arange(end) and arange(start, end, step=1), *, dtype, layout, device, requires_grad), parsed here as full:
// positions and masks build one in every forward (arange(T, device=x.device)). One number alone is the end.
Tensor arange_factory(nb::handle start, nb::handle end, nb::handle step, nb::handle dtype, nb::handle layout,
                      nb::handle device, bool requires_grad) {
  if (!layout.is_none() && g_layout_check) (*g_layout_check)(layout, "arange");
  VT_CHECK_TYPE(!start.is_none() || !end.is_none(), "arange() missing 1 required positional arguments: \"end\"");
  nb::object zero;  // owns the start of arange(end) and arange(end=...)
  if (end.is_none()) end = start, start = nb::handle();
  if (!start.is_valid() || start.is_none()) zero = nb::int_(0), start = zero;
  Tensor t = ops::arange(to_scalar(start, "arange", "start"), to_scalar(end, "arange", "end"),
                         to_scalar(step, "arange", "step"),
                         dtype.is_none() ? std::nullopt : std::optional(to_dtype(dtype)), factory_device(device));
  if (requires_grad) autograd::set_requires_grad(t, true);
  return t;
}

// cat/stack(tensors, dim=0) parsed here, with torch's argument errors: they run in every model's loop (heads,
// KV caches, batches); the Python wrapper and the schema's parse cost ~0.6 us of a ~1.2 us call.
template <int IsStack>
Tensor join(nb::handle tensors, nb::handle dim) {
  const char* name = IsStack ? "stack" : "cat";
  VT_CHECK_TYPE(PyList_Check(tensors.ptr()) || PyTuple_Check(tensors.ptr()), name,
                "(): argument 'tensors' (position 1) must be tuple of Tensors, not ",
                nb::cast<std::string>(nb::str(tensors.type().attr("__name__"))));
  const size_t n = size_t(PySequence_Fast_GET_SIZE(tensors.ptr()));
  if constexpr (IsStack) {
    VT_CHECK(n > 0, "stack expects a non-empty TensorList");  // torch's wording and kind differ by op
  } else {
    VT_CHECK_VALUE(n > 0, "torch.cat(): expected a non-empty list of Tensors");
  }
  std::vector<Tensor> ts;
  ts.reserve(n);
  bool big = false;
  PyObject** items = PySequence_Fast_ITEMS(tensors.ptr());
  for (size_t i = 0; i < n; ++i) {
    nb::handle t(items[i]);
    VT_CHECK_TYPE(nb::isinstance<Tensor>(t), "expected Tensor as element ", i, " in argument 0, but got ",
                  nb::cast<std::string>(nb::str(t.type().attr("__name__"))));
    ts.push_back(nb::cast<const Tensor&>(t));
    big = big || is_big(ts.back());
  }
  const int64_t d = to_int64(dim, IsStack ? "stack(): argument 'dim' (position 2)" : "cat(): argument 'dim' (position 2)");
  static const TypedOp<Tensor(TensorList, int64_t)> op(IsStack ? "vt::stack" : "vt::cat");
  MaybeReleaseGil release(big);
  return op(ts, d);
}

void bind_tensor(nb::module_& m) {
  auto factory_args = [](auto f, const char* name, nb::module_& mod) {
    mod.def(name, f, nb::arg("args"), nb::arg("size") = nb::none(), nb::arg("dtype") = nb::none(),
            nb::arg("layout") = nb::none(), nb::arg("device") = nb::none(), nb::arg("requires_grad") = false,
            nb::arg("pin_memory") = false);
  };
  m.def("_set_factory_hooks", [](nb::object layout_check, nb::object default_device) {
    g_layout_check = new nb::object(std::move(layout_check));
    g_default_device = new nb::object(std::move(default_device));
  }, "Note [Factory hooks]: layout_check(layout, name) raises for a layout other than strided; default_device() "
     "is the device for a factory called without one (None: the CPU).");
  m.def("_default_device_used", [] { g_default_device_used.store(true, std::memory_order_relaxed); },
        "Note [Factory hooks]: from now on factories without device= ask default_device().");
  factory_args(&factory_with_grad<-1>, "empty", m);
  factory_args(&factory_with_grad<0>, "zeros", m);
  factory_args(&factory_with_grad<1>, "ones", m);
  m.def("arange", &arange_factory, nb::arg("start") = nb::none(), nb::arg("end") = nb::none(), nb::arg("step") = 1,
        nb::kw_only(), nb::arg("dtype") = nb::none(), nb::arg("layout") = nb::none(), nb::arg("device") = nb::none(),
        nb::arg("requires_grad") = false);
  m.def("cat", &join<0>, nb::arg("tensors"), nb::arg("dim") = 0);
  m.def("stack", &join<1>, nb::arg("tensors"), nb::arg("dim") = 0);
  m.def("full", &full_factory, nb::arg("size"), nb::arg("fill_value"), nb::kw_only(), nb::arg("dtype") = nb::none(),
        nb::arg("layout") = nb::none(), nb::arg("device") = nb::none(), nb::arg("requires_grad") = false);
  nb::class_<Tensor> cls(m, "Tensor", nb::dynamic_attr());
  // torch's legacy constructor, as older model code calls it (nn.Parameter(torch.Tensor(out, in)) then an init):
  // sizes give an uninitialized float32 tensor, a sequence its data, nothing an empty one. It is
  // legacy_new in python/vibetensor/torch/_legacy_tensor_types.py.
  cls.def(nb::new_([](nb::args args, nb::kwargs kwargs) -> Tensor {
    static nb::object* legacy = new nb::object(  // leaked: outlives the interpreter's teardown order
        nb::module_::import_("vibetensor.torch._legacy_tensor_types").attr("legacy_new"));
    return nb::cast<Tensor>((*legacy)(*args, **kwargs));
  }), "Tensor(*sizes) / Tensor(data) / Tensor(): torch's legacy constructor (float32).");
  m.def("_set_size_type", [](nb::handle type) {
    VT_CHECK_TYPE(PyType_Check(type.ptr()) && PyType_IsSubtype((PyTypeObject*)type.ptr(), &PyTuple_Type),
                  "_set_size_type: expected a subclass of tuple");
    Py_INCREF(type.ptr());  // kept for the life of the process
    g_size_type = (PyTypeObject*)type.ptr();
  }, "Note [Size]: the tuple subclass x.shape and x.size() return.");
  cls.def_prop_ro("shape", [](const Tensor& t) { return size_tuple(t.sizes()); })
      .def("size", [](const Tensor& t, nb::handle dim) -> nb::object {
        if (dim.is_none()) return size_tuple(t.sizes());
        return nb::int_(t.size(to_int64(dim, "size(): dim")));
      }, nb::arg("dim") = nb::none())
      .def("stride", [](const Tensor& t, nb::handle dim) -> nb::object {
        if (dim.is_none()) return int_tuple(t.strides());
        return nb::int_(t.stride(to_int64(dim, "stride(): dim")));
      }, nb::arg("dim") = nb::none())
      .def("dim", &Tensor::dim)
      .def("ndimension", &Tensor::dim)
      .def_prop_ro("ndim", &Tensor::dim)
      .def("numel", &Tensor::numel)
      .def("nelement", &Tensor::numel)
      .def_prop_ro("dtype", &Tensor::dtype)
      .def_prop_ro("device", &Tensor::device)
      .def_prop_ro("is_cuda", &Tensor::is_cuda)
      // torch's: the CUDA index, -1 on the CPU (an int, without building a device object)
      .def("get_device", [](const Tensor& t) { return t.is_cuda() ? int(t.device().index) : -1; })
      .def_prop_ro("is_cpu", [](const Tensor& t) { return t.device().is_cpu(); })
      .def("is_contiguous", [](const Tensor& t) { return t.is_contiguous(); })
      .def("is_inference", [](const Tensor& t) { return t.storage()->is_inference(); })  // Note [Inference tensors]
      .def("storage_offset", &Tensor::storage_offset)
      .def("data_ptr", [](const Tensor& t) { return reinterpret_cast<uintptr_t>(t.data_ptr()); })
      .def("element_size", &Tensor::element_size)
      .def_prop_ro("itemsize", &Tensor::element_size)
      .def_prop_ro("nbytes", &Tensor::nbytes)
      .def_prop_ro("_version", [](const Tensor& t) { return t.storage()->version(); })
      .def("_storage_ptr", [](const Tensor& t) { return reinterpret_cast<uintptr_t>(t.storage()->data()); })
      .def("_storage_nbytes", [](const Tensor& t) { return t.storage()->nbytes(); })
      .def("_is_view_of", [](const Tensor& a, const Tensor& b) { return a.storage() == b.storage(); })
      .def("item", &item)
      .def("__getitem__", &tensor_getitem, nb::arg("index").none())
      .def("__matmul__", [](const Tensor& a, nb::handle b) { return matmul_fn(a, b, true); })
      .def("matmul", [](const Tensor& a, nb::handle b) { return matmul_fn(a, b, false); })
      // Note [Direct view methods]: narrow, select, unsqueeze, diagonal and flatten are on every model's path
      // (heads sliced out, a batch dim added, a diagonal read); bound here they skip the generic method's Python
      // closure and schema parse (narrow 1.03 -> ~0.3 us). Arguments convert as that parse converts them.
      .def("narrow", [](const Tensor& t, nb::handle dim, nb::handle start, nb::handle length) {
        static const TypedOp<Tensor(const Tensor&, int64_t, int64_t, int64_t)> op("vt::narrow");
        return op(t, to_int64(dim, "vt::narrow(): argument 'dim'"), to_int64(start, "vt::narrow(): argument 'start'"),
                  to_int64(length, "vt::narrow(): argument 'length'"));
      }, nb::arg("dim"), nb::arg("start"), nb::arg("length"))
      .def("select", [](const Tensor& t, nb::handle dim, nb::handle index) {
        static const TypedOp<Tensor(const Tensor&, int64_t, int64_t)> op("vt::select");
        return op(t, to_int64(dim, "vt::select(): argument 'dim'"), to_int64(index, "vt::select(): argument 'index'"));
      }, nb::arg("dim"), nb::arg("index"))
      .def("unsqueeze", [](const Tensor& t, nb::handle dim) {
        static const TypedOp<Tensor(const Tensor&, int64_t)> op("vt::unsqueeze");
        return op(t, to_int64(dim, "vt::unsqueeze(): argument 'dim'"));
      }, nb::arg("dim"))
      .def("diagonal", [](const Tensor& t, nb::handle offset, nb::handle dim1, nb::handle dim2) {
        static const TypedOp<Tensor(const Tensor&, int64_t, int64_t, int64_t)> op("vt::diagonal");
        return op(t, to_int64(offset, "vt::diagonal(): argument 'offset'"),
                  to_int64(dim1, "vt::diagonal(): argument 'dim1'"), to_int64(dim2, "vt::diagonal(): argument 'dim2'"));
      }, nb::arg("offset") = 0, nb::arg("dim1") = 0, nb::arg("dim2") = 1)
      .def("flatten", [](const Tensor& t, nb::handle start_dim, nb::handle end_dim) {
        static const TypedOp<Tensor(const Tensor&, int64_t, int64_t)> op("vt::flatten");
        return op(t, to_int64(start_dim, "vt::flatten(): argument 'start_dim'"),
                  to_int64(end_dim, "vt::flatten(): argument 'end_dim'"));
      }, nb::arg("start_dim") = 0, nb::arg("end_dim") = -1)
      .def("__setitem__", &tensor_setitem, nb::arg("index").none(), nb::arg("value").none())
      .def("__len__", [](const Tensor& t) {
        VT_CHECK_TYPE(t.dim() > 0, "len() of a 0-d tensor");
        return t.size(0);
      })
      .def("__bool__", [](const Tensor& t) {
        VT_CHECK(t.numel() == 1, "Boolean value of Tensor with more than one value is ambiguous");
        return nb::cast<bool>(nb::bool_(item(t)));
      })
      .def("__float__", [](const Tensor& t) { return nb::float_(item(t)); })
      .def("__int__", [](const Tensor& t) { return nb::int_(item(t)); })
      .def("__index__", [](const Tensor& t) {
        VT_CHECK_TYPE(!is_floating(t.dtype()) && t.numel() == 1,
                      "only integer tensors of a single element can be converted to an index");
        return nb::int_(item(t));
      })
      // arithmetic
      .def("__add__", [](const Tensor& a, nb::handle b) { return k_add(a, as_tensor_arg(b, "add", "other"), 1); })
      .def("__radd__", [](const Tensor& a, nb::handle b) { return k_add(as_tensor_arg(b, "add", "other"), a, 1); })
      .def("__iadd__", [](nb::handle self, nb::handle b) -> nb::object {
        k_add_(nb::cast<const Tensor&>(self), as_tensor_arg(b, "add_", "other"), 1);
        return nb::borrow(self);
      })
      .def("__sub__", [](const Tensor& a, nb::handle b) { return k_sub(a, as_tensor_arg(b, "sub", "other"), 1); })
      .def("__rsub__", [](const Tensor& a, nb::handle b) { return k_sub(as_tensor_arg(b, "sub", "other"), a, 1); })
      .def("__isub__", [](nb::handle self, nb::handle b) -> nb::object {
        k_sub_(nb::cast<const Tensor&>(self), as_tensor_arg(b, "sub_", "other"), 1);
        return nb::borrow(self);
      })
      .def("add", [](const Tensor& a, nb::handle b, nb::handle alpha) {
        return k_add(a, as_tensor_arg(b, "add", "other"), to_scalar(alpha, "add", "alpha"));
      }, nb::arg("other"), nb::kw_only(), nb::arg("alpha") = 1)
      .def("add_", [](nb::handle self, nb::handle b, nb::handle alpha) -> nb::object {
        k_add_(nb::cast<const Tensor&>(self), as_tensor_arg(b, "add_", "other"), to_scalar(alpha, "add_", "alpha"));
        return nb::borrow(self);
      }, nb::arg("other"), nb::kw_only(), nb::arg("alpha") = 1)
      .def("sub", [](const Tensor& a, nb::handle b, nb::handle alpha) {
        return k_sub(a, as_tensor_arg(b, "sub", "other"), to_scalar(alpha, "sub", "alpha"));
      }, nb::arg("other"), nb::kw_only(), nb::arg("alpha") = 1)
      .def("sub_", [](nb::handle self, nb::handle b, nb::handle alpha) -> nb::object {
        k_sub_(nb::cast<const Tensor&>(self), as_tensor_arg(b, "sub_", "other"), to_scalar(alpha, "sub_", "alpha"));
        return nb::borrow(self);
      }, nb::arg("other"), nb::kw_only(), nb::arg("alpha") = 1)
      .def("__mul__", bin(k_mul))
      .def("__rmul__", bin(k_mul))  // self first, as torch: a number on the right is read in opmath (Note [Opmath scalars])
      .def("__imul__", ibin(k_mul_))
      .def("mul", bin(k_mul))
      .def("mul_", ibin(k_mul_))
      .def("__truediv__", [](const Tensor& a, nb::handle b) { return div_fn(a, as_tensor_arg(b, "div", "other"), false); })
      .def("__rtruediv__", [](const Tensor& a, nb::handle b) { return div_fn(as_tensor_arg(b, "div", "other"), a, false); })
      .def("__itruediv__", [](nb::handle self, nb::handle b) -> nb::object {
        div_fn(nb::cast<const Tensor&>(self), as_tensor_arg(b, "div_", "other"), true);
        return nb::borrow(self);
      })
      .def("__floordiv__", bin(k_floordiv))
      .def("__rfloordiv__", rbin(k_floordiv))
      .def("__ifloordiv__", ibin(k_floordiv_))
      .def("__mod__", bin(k_rem))
      .def("__rmod__", rbin(k_rem))
      .def("__imod__", ibin(k_rem_))
      .def("__pow__", bin(k_pow))
      .def("__rpow__", rbin(k_pow))
      .def("__ipow__", ibin(k_pow_))
      .def("__and__", bin(k_and))
      .def("__rand__", rbin(k_and))
      .def("__iand__", ibin(k_and_))
      .def("__or__", bin(k_or))
      .def("__ror__", rbin(k_or))
      .def("__ior__", ibin(k_or_))
      .def("__xor__", bin(k_xor))
      .def("__rxor__", rbin(k_xor))
      .def("__ixor__", ibin(k_xor_))
      .def("__eq__", bin(k_eq))
      .def("__ne__", bin(k_ne))
      .def("__lt__", bin(k_lt))
      .def("__le__", bin(k_le))
      .def("__gt__", bin(k_gt))
      .def("__ge__", bin(k_ge))
      .def("__neg__", [](const Tensor& a) { return k_neg(a); })
      .def("__abs__", [](const Tensor& a) { return k_abs(a); })
      .def("__invert__", [](const Tensor& a) {
        VT_CHECK_TYPE(!is_floating(a.dtype()), "~ (bitwise_not) is only defined for integer and bool tensors, got ",
                      dtype_name(a.dtype()));
        return k_not(a);
      })
      .def("__hash__", [](const Tensor& t) { return reinterpret_cast<uintptr_t>(t.impl()); })
      // views on the hot path
      .def("view", [](const Tensor& t, nb::args shape) {
        if (shape.size() == 1 && !PyLong_Check(shape[0].ptr()) && !PySequence_Check(shape[0].ptr())) {
          // view(dtype): the same bytes read as another dtype. Between widths (quantized weights packed into
          // bytes, say), the last dim must be contiguous and scales by the width ratio, as torch's view does.
          ScalarType dt = to_dtype(shape[0]);
          const int64_t from = t.element_size(), to = itemsize(dt);
          if (from == to)
            return Tensor(std::make_shared<TensorImpl>(t.storage(), dt, t.sizes(), t.strides(), t.storage_offset()));
          const char* what = " (different element sizes)";
          VT_CHECK(t.dim() > 0, "self.dim() cannot be 0 to view ", dtype_name(t.dtype()), " as ", dtype_name(dt), what);
          const int64_t last = t.dim() - 1;
          auto check_last_stride = [&] {  // torch checks it before (narrowing) or after (widening) the sizes
            VT_CHECK(t.stride(last) == 1, "self.stride(-1) must be 1 to view ", dtype_name(t.dtype()), " as ",
                     dtype_name(dt), what, ", but got ", t.stride(last));
          };
          std::vector<int64_t> sizes(t.sizes().begin(), t.sizes().end());
          std::vector<int64_t> strides(t.strides().begin(), t.strides().end());
          int64_t offset = t.storage_offset();
          if (from > to) {
            check_last_stride();
            const int64_t r = from / to;
            for (int64_t i = 0; i < last; ++i) strides[size_t(i)] *= r;
            sizes[size_t(last)] *= r;
            offset *= r;
          } else {
            const int64_t r = to / from;
            VT_CHECK(sizes[size_t(last)] % r == 0, "self.size(-1) must be divisible by ", r, " to view ",
                     dtype_name(t.dtype()), " as ", dtype_name(dt), what, ", but got ", sizes[size_t(last)]);
            VT_CHECK(offset % r == 0, "self.storage_offset() must be divisible by ", r, " to view ",
                     dtype_name(t.dtype()), " as ", dtype_name(dt), what, ", but got ", offset);
            check_last_stride();
            for (int64_t i = 0; i < last; ++i)
              VT_CHECK(strides[size_t(i)] % r == 0, "self.stride(", i, ") must be divisible by ", r, " to view ",
                       dtype_name(t.dtype()), " as ", dtype_name(dt), what, ", but got ", strides[size_t(i)]);
            for (int64_t i = 0; i < last; ++i) strides[size_t(i)] /= r;
            sizes[size_t(last)] /= r;
            offset /= r;
          }
          return Tensor(std::make_shared<TensorImpl>(t.storage(), dt, sizes, strides, offset));
        }
        return ops::view(t, varargs_ints(shape, "view"));
      })
      .def("reshape", [](const Tensor& t, nb::args shape) { return ops::reshape(t, varargs_ints(shape, "reshape")); })
      .def("resize_", [](nb::handle self, nb::args shape) -> nb::object {
        ops::resize_(nb::cast<const Tensor&>(self), varargs_ints(shape, "resize_"));
        return nb::borrow(self);
      })
      .def("permute", [](const Tensor& t, nb::args dims) { return ops::permute(t, varargs_ints(dims, "permute")); })
      .def("expand", [](const Tensor& t, nb::args size) { return ops::expand(t, varargs_ints(size, "expand")); })
      .def("transpose", [](const Tensor& t, int64_t a, int64_t b) { return ops::transpose(t, a, b); })
      .def("contiguous", [](const Tensor& t) { return ops::contiguous(t); })
      .def("clone", [](const Tensor& t) { return ops::clone(t); })
      .def("copy_", [](nb::handle self, const Tensor& src, bool non_blocking) -> nb::object {
        const Tensor& t = nb::cast<const Tensor&>(self);
        {
          MaybeReleaseGil release(is_big(t));
          ops::copy_(t, src, non_blocking);
        }
        return nb::borrow(self);
      }, nb::arg("src"), nb::arg("non_blocking") = false)
      .def("fill_", [](nb::handle self, nb::handle v) -> nb::object {
        ops::fill_(nb::cast<const Tensor&>(self), to_scalar(v, "fill_", "value"));
        return nb::borrow(self);
      })
      .def("zero_", [](nb::handle self) -> nb::object {
        ops::fill_(nb::cast<const Tensor&>(self), Scalar(int64_t(0)));
        return nb::borrow(self);
      })
      .def("__pos__", [](nb::handle self) -> nb::object {
        VT_CHECK(nb::cast<const Tensor&>(self).dtype() != ScalarType::Bool,
                 "The `+` operator, on a bool tensor is not supported.");
        return nb::borrow(self);
      })
      .def("sum", [](const Tensor& t, nb::handle dim, bool keepdim, nb::handle dtype) {
        std::optional<std::vector<int64_t>> dims;
        if (!dim.is_none()) {
          dims.emplace();
          if (PyIndex_Check(dim.ptr())) dims->push_back(to_int64(dim, "sum(): dim"));
          else for (nb::handle h : dim) dims->push_back(to_int64(h, "sum(): dim"));
        }
        std::optional<ScalarType> dt;
        if (!dtype.is_none()) dt = to_dtype(dtype);
        OptionalIntArrayRef d;
        if (dims) d = IntArrayRef(*dims);
        MaybeReleaseGil release(is_big(t));
        return ops::sum(t, d, keepdim, dt);
      }, nb::arg("dim") = nb::none(), nb::arg("keepdim") = false, nb::kw_only(), nb::arg("dtype") = nb::none());
}

}  // namespace vt::py
