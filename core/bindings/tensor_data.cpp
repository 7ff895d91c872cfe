// Tensors from Python data: the fast paths of vibetensor.torch's tensor() for plain Python numbers, alone or in
// nested lists and tuples. Anything they do not cover returns None, and tensor() takes its general path (NumPy
// and DLPack), which also raises the errors.
#include <cstring>
#include <vector>

#include "common.h"
#include "vt/core/ops.h"

namespace vt::py {

std::optional<Tensor> number_tensor(nb::handle data, std::optional<ScalarType> dtype) {
  // As tensor() types and converts the value: Python floats are float32 by default, and an explicit floating or
  // bool dtype takes any number unchecked (an int past int64 as the double nearest it, as torch); integer
  // dtypes check the number's range, which tensor() does.
  PyObject* o = data.ptr();
  const bool is_bool = PyBool_Check(o), is_int = PyLong_CheckExact(o);
  if (!is_bool && !is_int && !PyFloat_CheckExact(o)) return std::nullopt;
  const ScalarType natural = is_bool ? ScalarType::Bool : is_int ? ScalarType::Int64 : ScalarType::Float32;
  const ScalarType target = dtype.value_or(natural);
  if (dtype && !is_floating(target) && target != ScalarType::Bool) return std::nullopt;
  Tensor t;
  if (is_bool) {
    t = scalar_to_tensor(Scalar(o == Py_True), ScalarType::Bool);
  } else if (is_int) {
    int overflow = 0;
    const long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (overflow == 0) {
      t = scalar_to_tensor(Scalar(int64_t(v)), ScalarType::Int64);
    } else if (is_floating(target)) {
      const double d = PyLong_AsDouble(o);
      if (d == -1.0 && PyErr_Occurred()) throw nb::python_error();  // past 2^1024: OverflowError, as torch
      t = scalar_to_tensor(Scalar(d), ScalarType::Float64);
    } else {
      return std::nullopt;  // tensor() refuses it, with its own message
    }
  } else {
    t = scalar_to_tensor(Scalar(PyFloat_AS_DOUBLE(o)), ScalarType::Float64);
  }
  t.impl()->set_wrapped_number(false);
  return target == t.dtype() ? t : ops::to_dtype(t, target);
}

namespace {

// Note [Tensors from Python lists]: tensor([...]) of plain Python numbers in rectangular lists and tuples. The
// general path (np.asarray, dtype inference, a DLPack capsule) cost ~10 us for a short list, torch ~3. The leaves
// are read once, then built as the general path builds them: in float64 when any leaf is a float (NumPy's array of
// such a list), else in int64, and cast to the dtype. Without dtype=: float32 if any leaf is a float, else int64
// if any is an int, else bool, and float32 when there is no number.
struct Leaves {
  DimVector shape;
  int leaf_depth = -1;  // the depth every number sits at, once one was seen
  bool any_float = false, any_int = false;
  std::vector<int64_t> ints;     // the values while every leaf is an int or a bool
  std::vector<double> doubles;   // all of them from the first float on (the ints before it converted once)
};

// False where the general path must decide: ragged nesting, other objects, ints past int64.
bool read_leaves(PyObject* o, int depth, Leaves& l) {
  if (PyList_CheckExact(o) || PyTuple_CheckExact(o)) {
    if (l.leaf_depth >= 0 && depth >= l.leaf_depth) return false;
    const Py_ssize_t n = PySequence_Fast_GET_SIZE(o);
    if (size_t(depth) == l.shape.size()) {
      if (l.shape.size() >= size_t(kMaxDims)) return false;
      l.shape.push_back(n);
    } else if (l.shape[size_t(depth)] != n) {
      return false;
    }
    PyObject** items = PySequence_Fast_ITEMS(o);
    for (Py_ssize_t i = 0; i < n; ++i)
      if (!read_leaves(items[i], depth + 1, l)) return false;
    return true;
  }
  if (l.leaf_depth < 0) {
    if (size_t(depth) != l.shape.size()) return false;
    l.leaf_depth = depth;
  } else if (depth != l.leaf_depth) {
    return false;
  }
  if (PyFloat_CheckExact(o)) {
    if (!l.any_float) {  // the first float: the ints so far become doubles, as NumPy converts them
      l.any_float = true;
      l.doubles.assign(l.ints.begin(), l.ints.end());
      l.ints = {};
    }
    l.doubles.push_back(PyFloat_AS_DOUBLE(o));
    return true;
  }
  if (PyBool_Check(o) || PyLong_CheckExact(o)) {
    int overflow = 0;
    const long long v = PyBool_Check(o) ? (o == Py_True) : PyLong_AsLongLongAndOverflow(o, &overflow);
    if (overflow) return false;
    l.any_int = l.any_int || !PyBool_Check(o);
    if (l.any_float) l.doubles.push_back(double(v));
    else l.ints.push_back(int64_t(v));
    return true;
  }
  return false;
}

template <typename T>
Tensor from_values(const DimVector& shape, ScalarType dtype, const std::vector<T>& values) {
  Tensor t = empty_tensor(shape, dtype, kCPU);
  if (!values.empty()) std::memcpy(t.data_ptr(), values.data(), values.size() * sizeof(T));
  return t;
}

}  // namespace

// Note [Tensors from Python lists]. An explicit integer dtype other than int64 (whose range tensor() checks, or
// wraps for uint8, by its own rules) and float leaves for an integer dtype are left to the general path.
std::optional<Tensor> sequence_tensor(nb::handle data, std::optional<ScalarType> dtype) {
  if (!PyList_CheckExact(data.ptr()) && !PyTuple_CheckExact(data.ptr())) return std::nullopt;
  Leaves l;
  if (!read_leaves(data.ptr(), 0, l)) return std::nullopt;
  const ScalarType natural = l.any_float ? ScalarType::Float32
                             : l.any_int ? ScalarType::Int64
                             : l.leaf_depth >= 0 ? ScalarType::Bool : ScalarType::Float32;
  const ScalarType target = dtype.value_or(natural);
  const bool integer_target = !is_floating(target) && target != ScalarType::Bool;
  if (integer_target && (target != ScalarType::Int64 || l.any_float)) return std::nullopt;
  if (l.any_float) {  // NumPy's array of such a list is float64 (its ints converted there), then cast
    Tensor t = from_values(l.shape, ScalarType::Float64, l.doubles);
    return target == ScalarType::Float64 ? t : ops::to_dtype(t, target);
  }
  if (l.leaf_depth < 0) return empty_tensor(l.shape, target, kCPU);  // no numbers: an empty tensor of the dtype
  Tensor t = from_values(l.shape, ScalarType::Int64, l.ints);  // ints and bools: int64, then cast as NumPy's
  return target == ScalarType::Int64 ? t : ops::to_dtype(t, target);
}

namespace {
// A fast path of vibetensor.torch's tensor() as Python sees it: the tensor, or None where tensor() must decide.
template <std::optional<Tensor> (*Make)(nb::handle, std::optional<ScalarType>)>
nb::object fast_tensor(nb::handle data, nb::handle dtype) {
  std::optional<Tensor> t = Make(data, dtype.is_none() ? std::nullopt : std::optional(to_dtype(dtype)));
  return t ? nb::cast(std::move(*t)) : nb::none();
}
}  // namespace

void bind_tensor_data(nb::module_& m) {
  // vt.tensor(number) was ~5 us of NumPy and DLPack for one value; the fast path of vibetensor.torch's tensor().
  m.def("_number_tensor", &fast_tensor<&number_tensor>, nb::arg("data").none(), nb::arg("dtype").none(),
        "The 0-dim tensor vibetensor.torch.tensor(data, dtype=dtype) makes of a bool, float or int, or None where "
        "that function must decide.");
  m.def("_sequence_tensor", &fast_tensor<&sequence_tensor>, nb::arg("data").none(), nb::arg("dtype").none(),
        "Note [Tensors from Python lists]: the tensor vibetensor.torch.tensor(data, dtype=dtype) makes of nested "
        "lists and tuples of Python numbers, or None where that function must decide.");
}

}  // namespace vt::py
