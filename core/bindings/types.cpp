// dtype and device objects, and the Python <-> IValue conversions used by the boxed call path.
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "common.h"
#include "vt/cuda/cublas.h"
#include "vt/cuda/cublaslt.h"
#include "vt/cuda/device.h"

namespace vt::py {

bool is_number(nb::handle h) {
  return PyBool_Check(h.ptr()) || PyLong_Check(h.ptr()) || PyFloat_Check(h.ptr());
}

int64_t to_int64(nb::handle h, const char* what) {
  VT_CHECK_TYPE(PyIndex_Check(h.ptr()) && !nb::isinstance<nb::float_>(h), what, " must be int, not ",
                nb::cast<std::string>(nb::str(h.type().attr("__name__"))));
  nb::object i = nb::steal(PyNumber_Index(h.ptr()));
  if (!i.is_valid()) throw nb::python_error();
  int overflow = 0;
  long long v = PyLong_AsLongLongAndOverflow(i.ptr(), &overflow);
  VT_CHECK_VALUE(!overflow, what, ": Overflow when unpacking long long (the value is outside the int64 range)");
  if (v == -1 && PyErr_Occurred()) throw nb::python_error();
  return int64_t(v);
}

int to_int(nb::handle h, const char* what) {
  int64_t v = to_int64(h, what);
  VT_CHECK_VALUE(v >= INT32_MIN && v <= INT32_MAX, what, ": ", v, " is outside the int32 range");
  return int(v);
}

Scalar to_scalar(nb::handle h, const char* op, const char* arg) {
  if (PyBool_Check(h.ptr())) return Scalar(h.ptr() == Py_True);
  if (PyLong_Check(h.ptr())) {
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(h.ptr(), &overflow);
    VT_CHECK_VALUE(!overflow, op, "(): argument '", arg, "' value is out of the int64 range");
    return Scalar(int64_t(v));
  }
  if (PyFloat_Check(h.ptr())) return Scalar(PyFloat_AsDouble(h.ptr()));
  if (nb::isinstance<Tensor>(h)) {
    const Tensor& t = nb::cast<const Tensor&>(h);
    VT_CHECK(t.numel() == 1 && t.device().is_cpu(), op, "(): argument '", arg,
             "' must be a number or a one-element CPU tensor, got a tensor of shape ", shape_str(t.sizes()));
    return item_scalar(t);
  }
  // NumPy scalars and other number-likes.
  if (PyIndex_Check(h.ptr())) return Scalar(to_int64(h, arg));
  if (PyNumber_Check(h.ptr()) && nb::hasattr(h, "__float__")) return Scalar(nb::cast<double>(nb::float_(h)));
  VT_FAIL_KIND(Type, op, "(): argument '", arg, "' must be a number, not ",
               nb::cast<std::string>(nb::str(h.type().attr("__name__"))));
}

Tensor as_tensor_arg(nb::handle h, const char* op, const char* arg) {
  if (nb::isinstance<Tensor>(h)) return nb::cast<Tensor>(h);
  if (is_number(h) || (!nb::isinstance<nb::str>(h) && PyNumber_Check(h.ptr()) && !PySequence_Check(h.ptr()))) {
    Scalar s = to_scalar(h, op, arg);
    return scalar_to_tensor(s, s.natural_dtype());
  }
  // A NumPy array operand is the tensor of its data and dtype, as torch's operators take it (x * np.array(...)
  // in preprocessing code): through vt.as_tensor, which shares the array's memory where it can.
  if (nb::hasattr(h, "__array_interface__") && PySequence_Check(h.ptr())) {
    static nb::object* as_tensor = new nb::object(  // leaked: outlives the interpreter's teardown order
        nb::module_::import_("vibetensor.torch").attr("as_tensor"));
    return nb::cast<Tensor>((*as_tensor)(h));
  }
  VT_FAIL_KIND(Type, op, "(): argument '", arg, "' must be Tensor or a number, not ",
               nb::cast<std::string>(nb::str(h.type().attr("__name__"))));
}

ScalarType to_dtype(nb::handle h) {
  if (nb::isinstance<ScalarType>(h)) return nb::cast<ScalarType>(h);
  if (nb::isinstance<nb::str>(h)) return parse_dtype(nb::cast<std::string>(h));
  if (h.is_type()) {  // Python's float/int/bool, as torch accepts
    if (h.is(reinterpret_cast<PyObject*>(&PyFloat_Type))) return ScalarType::Float64;
    if (h.is(reinterpret_cast<PyObject*>(&PyLong_Type))) return ScalarType::Int64;
    if (h.is(reinterpret_cast<PyObject*>(&PyBool_Type))) return ScalarType::Bool;
  }
  // torch.float32 and numpy dtypes carry a name we understand.
  if (nb::hasattr(h, "name") || nb::hasattr(h, "__module__")) {
    std::string s = nb::cast<std::string>(nb::str(h));
    return parse_dtype(s.starts_with("<class") ? std::string("?") : s);
  }
  VT_FAIL_KIND(Type, "expected a dtype, got ", nb::cast<std::string>(nb::repr(h)));
}

Device to_device(nb::handle h) {
  if (nb::isinstance<Device>(h)) return nb::cast<Device>(h);
  if (nb::isinstance<nb::str>(h)) return parse_device(nb::cast<std::string>(h));
  if (PyLong_Check(h.ptr())) return Device(DeviceType::CUDA, to_int(h, "device index"));
  // torch.device and the like (a .type and an .index), read through its string; anything else is a wrong type
  VT_CHECK_TYPE(nb::hasattr(h, "type") && nb::hasattr(h, "index"), "expected a device, str or int, got ",
                nb::cast<std::string>(nb::str(h.type().attr("__name__"))));
  return parse_device(nb::cast<std::string>(nb::str(h)));
}

namespace {
std::vector<int64_t> to_int_list(nb::handle h, const Argument& a, const FunctionSchema& s) {
  if (PyLong_Check(h.ptr()) && !PyBool_Check(h.ptr())) return {to_int64(h, a.name.c_str())};
  VT_CHECK_TYPE(PySequence_Check(h.ptr()) && !nb::isinstance<Tensor>(h), s.name, "(): argument '", a.name,
                "' must be a tuple of ints, not ", nb::cast<std::string>(nb::str(h.type().attr("__name__"))));
  std::vector<int64_t> out;
  for (nb::handle x : h) {
    VT_CHECK_TYPE(PyIndex_Check(x.ptr()) && !PyBool_Check(x.ptr()), s.name, "(): argument '", a.name,
                  "' must be a tuple of ints, but found element of type ",
                  nb::cast<std::string>(nb::str(x.type().attr("__name__"))));
    out.push_back(to_int64(x, a.name.c_str()));
  }
  return out;
}
}  // namespace

IValue to_ivalue(nb::handle h, const Argument& a, const FunctionSchema& s) {
  const char* op = s.name.c_str();
  if (h.is_none()) {
    VT_CHECK_TYPE(a.optional, op, "(): argument '", a.name, "' must not be None");
    return IValue{};
  }
  switch (a.type) {
    case ArgType::Tensor: return IValue{as_tensor_arg(h, op, a.name.c_str())};
    case ArgType::TensorList: {
      VT_CHECK_TYPE(PySequence_Check(h.ptr()) && !nb::isinstance<Tensor>(h), op, "(): argument '", a.name,
                    "' must be a sequence of Tensors");
      // Elements must be Tensors, as in torch; None only where the schema says "Tensor?[]" (index lists).
      std::vector<Tensor> ts;
      size_t j = 0;
      for (nb::handle x : h) {
        if (x.is_none() && a.optional_elements) ts.emplace_back();
        else if (nb::isinstance<Tensor>(x)) ts.push_back(nb::cast<Tensor>(x));
        else
          VT_FAIL_KIND(Type, op, "(): expected Tensor as element ", j, " in argument '", a.name, "', but got ",
                       nb::cast<std::string>(nb::str(x.type().attr("__name__"))));
        ++j;
      }
      return IValue{std::move(ts)};
    }
    case ArgType::Int:
      VT_CHECK_TYPE(PyIndex_Check(h.ptr()), op, "(): argument '", a.name, "' must be int, not ",
                    nb::cast<std::string>(nb::str(h.type().attr("__name__"))));
      return IValue{to_int64(h, a.name.c_str())};
    case ArgType::IntList: return IValue{to_int_list(h, a, s)};
    case ArgType::Float:
      VT_CHECK_TYPE(PyNumber_Check(h.ptr()) && !nb::isinstance<Tensor>(h), op, "(): argument '", a.name,
                    "' must be float");
      return IValue{nb::cast<double>(nb::float_(h))};
    case ArgType::Bool:
      VT_CHECK_TYPE(PyBool_Check(h.ptr()), op, "(): argument '", a.name, "' must be bool, not ",
                    nb::cast<std::string>(nb::str(h.type().attr("__name__"))));
      return IValue{h.ptr() == Py_True};
    case ArgType::Scalar: return IValue{to_scalar(h, op, a.name.c_str())};
    case ArgType::ScalarType: return IValue{to_dtype(h)};
    case ArgType::Device: return IValue{to_device(h)};
    case ArgType::Str:
      VT_CHECK_TYPE(nb::isinstance<nb::str>(h), op, "(): argument '", a.name, "' must be str");
      return IValue{nb::cast<std::string>(h)};
  }
  VT_INTERNAL_ASSERT(false, "arg type");
}

nb::object from_ivalue(IValue&& v) {
  return std::visit(
      [](auto&& x) -> nb::object {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::monostate>) return nb::none();
        else if constexpr (std::is_same_v<T, Tensor>) return x.defined() ? nb::cast(std::move(x)) : nb::none();
        else if constexpr (std::is_same_v<T, Scalar>) {
          if (x.is_bool()) return nb::bool_(x.to_bool());
          if (x.is_integral()) return nb::int_(x.to_int());
          return nb::float_(x.to_double());
        } else return nb::cast(std::move(x));
      },
      std::move(v));
}

void bind_types(nb::module_& m) {
  nb::enum_<ScalarType> dt(m, "dtype");
  for (int i = 0; i < kNumScalarTypes; ++i) {
    std::string name(dtype_name(ScalarType(i)));
    dt.value(name.c_str(), ScalarType(i));
  }
  dt.def_prop_ro("itemsize", [](ScalarType t) { return itemsize(t); })
      .def_prop_ro("is_floating_point", [](ScalarType t) { return is_floating(t); })
      .def_prop_ro("is_signed", [](ScalarType t) { return t != ScalarType::Bool && t != ScalarType::UInt8; })
      .def_prop_ro("is_complex", [](ScalarType) { return false; })
      .def("__repr__", [](ScalarType t) { return "vt." + std::string(dtype_name(t)); })
      .def("__str__", [](ScalarType t) { return "vt." + std::string(dtype_name(t)); });
  m.def("parse_dtype", [](nb::handle h) { return to_dtype(h); });
  m.def("promote_types", &promote_types);
  m.def("can_cast", &can_cast);

  nb::class_<Device>(m, "device")
      .def("__init__", [](Device* self, nb::handle spec, nb::handle index) {
        Device d = to_device(spec);
        if (!index.is_none()) {
          VT_CHECK(d.index < 0, "device string already has an index: ", d.str());
          int i = to_int(index, "device index");
          VT_CHECK(d.is_cuda() || i == 0, "cpu device takes no index");
          if (d.is_cuda()) d = Device(DeviceType::CUDA, i);
        }
        new (self) Device(d);
      }, nb::arg("type"), nb::arg("index") = nb::none())
      .def_prop_ro("type", [](const Device& d) { return d.is_cpu() ? "cpu" : "cuda"; })
      .def_prop_ro("index", [](const Device& d) -> nb::object {
        if (d.index < 0) return nb::none();
        return nb::int_(int(d.index));
      })
      .def("__str__", &Device::str)
      .def("__repr__", [](const Device& d) {
        return d.index < 0 ? "device(type='" + std::string(d.is_cpu() ? "cpu" : "cuda") + "')"
                           : "device(type='cuda', index=" + std::to_string(d.index) + ")";
      })
      .def("__eq__", [](const Device& a, nb::handle b) {
        if (nb::isinstance<Device>(b)) return a == nb::cast<Device>(b);
        if (nb::isinstance<nb::str>(b)) return a == parse_device(nb::cast<std::string>(b));
        return false;
      })
      .def("__hash__", [](const Device& d) { return int(d.type) * 1000 + d.index; });
}

void bind_cuda(nb::module_& m) {
  m.def("device_count", &cuda::device_count);
  m.def("is_available", &cuda::is_available);
  m.def("unavailable_reason", &cuda::unavailable_reason);
  m.def("_add_cublas_dirs", [](const std::vector<std::string>& dirs) { cuda::blas::add_search_dirs(dirs); });
  m.def("_set_allow_tf32", &cuda::blas::set_allow_tf32);
  m.def("_allow_tf32", &cuda::blas::allow_tf32);
  m.def("cublas_available", [] {
    std::string why;
    bool ok = cuda::blas::available(&why);
    return std::make_pair(ok, why);
  });
  m.def("cublaslt_available", [] {
    std::string why;
    bool ok = cuda::blaslt::available(&why);
    return std::make_pair(ok, why);
  });
  // Problems whose cuBLASLt algorithm is cached (Note [Lt algorithm cache]): tests see that the Lt path ran.
  m.def("_cublaslt_cached_problems", &cuda::blaslt::cached_problems);
  m.def("_cublaslt_launches", &cuda::blaslt::launches);
}

}  // namespace vt::py
