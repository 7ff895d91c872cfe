// Tensor.__getitem__ and __setitem__ for basic indices - Python ints, slices of ints, None, Ellipsis, and tuples
// of them - in C++: the view ops the Python indexer (vibetensor/torch/_indexing.py) applies for them, in the same
// order, and for a write its copy of the value into the view, without its interpretation cost.
//
// Note [Basic indices in C++]: the Python indexer stays the one definition of indexing. Whatever this file does
// not recognise (tensors beside other indices, lists, bools, NumPy values, objects with __index__, bounds outside
// int64, a second Ellipsis) goes to it untouched, and so does every index it would refuse (too many indices, a
// 0-dim tensor indexed, a step that is not positive): it raises its own errors, and the views made here before
// the refusal are dropped. A written value is taken here when it is a tensor, or a Python bool, float or int
// written into a floating or bool tensor - the numbers vt.tensor() converts without range checks, made by the
// same code (number_tensor); other numbers go to the Python indexer. A number is filled in (the Python indexer copies a
// 0-dim tensor: the same values, but on a GPU a host-to-device copy where a fill is one kernel). On the 2-core
// devbox x[1] took 2.75 us there (torch 0.90), x[:, 1:3] 5.28 us (torch 1.65) and x[:, 1] = 0.5 11.6 us (2.5).
// A tensor alone, x[i] (rows by an index, a mask), reads as the Python indexer reads it: the index op with [i]
// once i covers no more dims than x has (5.0 us there, torch 2.15).
#include "common.h"
#include "vt/core/ops.h"

namespace vt::py {
namespace {

// A Python int (not a bool, not an int subclass) that fits int64.
bool exact_int64(PyObject* o, int64_t& out) {
  if (!PyLong_CheckExact(o)) return false;
  int overflow = 0;
  const long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
  if (overflow != 0 || (v == -1 && PyErr_Occurred())) {
    PyErr_Clear();
    return false;
  }
  out = int64_t(v);
  return true;
}

bool optional_int64(PyObject* o, std::optional<int64_t>& out) {
  if (o == Py_None) return true;
  int64_t v = 0;
  if (!exact_int64(o, v)) return false;
  out = v;
  return true;
}

struct SliceBounds {
  std::optional<int64_t> start, stop;
  int64_t step = 1;
};
bool slice_bounds(PyObject* o, SliceBounds& s) {
  auto* sl = reinterpret_cast<PySliceObject*>(o);
  std::optional<int64_t> step;
  if (!optional_int64(sl->start, s.start) || !optional_int64(sl->stop, s.stop) || !optional_int64(sl->step, step))
    return false;
  s.step = step.value_or(1);
  return true;
}

// The dims of the indexed tensor an element uses up, or -1 for an element this file leaves to Python.
int consumed(PyObject* o) {
  if (o == Py_None || o == Py_Ellipsis) return 0;
  if (PyLong_CheckExact(o) || PySlice_Check(o)) return 1;
  return -1;
}

// The view for a basic index, or nothing where the Python indexer must decide (Note [Basic indices in C++]).
std::optional<Tensor> basic_view(Tensor t, nb::handle index) {
  PyObject* single[1] = {index.ptr()};
  PyObject** items = single;
  Py_ssize_t n = 1;
  if (PyTuple_Check(index.ptr())) {
    items = &PyTuple_GET_ITEM(index.ptr(), 0);
    n = PyTuple_GET_SIZE(index.ptr());
  }
  int64_t uses = 0, ellipses = 0;
  for (Py_ssize_t k = 0; k < n; ++k) {
    const int c = consumed(items[k]);
    if (c < 0) return std::nullopt;
    uses += c;
    ellipses += items[k] == Py_Ellipsis;
  }
  if (ellipses > 1 || uses > t.dim()) return std::nullopt;
  int64_t dim = 0, used = 0;  // used: dims taken by the elements before k
  for (Py_ssize_t k = 0; k < n; ++k) {
    PyObject* o = items[k];
    if (o == Py_Ellipsis) {
      dim += t.dim() - dim - (uses - used);
    } else if (o == Py_None) {
      t = ops::unsqueeze(t, dim++);
    } else if (PySlice_Check(o)) {
      SliceBounds s;
      if (!slice_bounds(o, s) || s.step <= 0 || t.dim() == 0) return std::nullopt;
      t = ops::slice(t, dim++, s.start, s.stop, s.step);
      ++used;
    } else {
      int64_t i = 0;
      if (!exact_int64(o, i) || t.dim() == 0) return std::nullopt;
      t = ops::select(t, dim, i);
      ++used;
    }
  }
  return t;
}

// The value a write copies, made as the Python indexer makes it (vt.tensor(value, dtype=t.dtype)), or nothing
// where it must decide (Note [Basic indices in C++]).
std::optional<Tensor> written_value(const Tensor& t, nb::handle value) {
  if (nb::isinstance<Tensor>(value)) return nb::cast<Tensor>(value);
  return number_tensor(value, t.dtype());
}

}  // namespace

nb::object tensor_getitem(nb::handle self, nb::handle index) {
  const Tensor& t = nb::cast<const Tensor&>(self);
  if (auto view = basic_view(t, index))  // x[()] and x[...] are x itself, as the Python indexer returns them
    return view->impl() == t.impl() ? nb::borrow(self) : nb::cast(std::move(*view));
  if (nb::isinstance<Tensor>(index)) {  // x[i] alone: the index op the Python indexer calls for it, after its check
    const Tensor& i = nb::cast<const Tensor&>(index);
    // a k-dim mask (bool, or uint8 as torch still reads it) covers k dims; a 0-dim one adds a dim
    const bool mask = i.dtype() == ScalarType::Bool || i.dtype() == ScalarType::UInt8;
    if (i.dim() > 0 && (mask ? i.dim() : 1) <= t.dim()) {  // a 0-dim one selects, as its int: Python's
      Tensor out;
      {
        MaybeReleaseGil release(is_big(t));
        out = ops::index(t, TensorList(&i, 1));
      }
      return nb::cast(std::move(out));
    }
  }
  static nb::object* indexer = new nb::object(  // leaked: outlives the interpreter's teardown order
      nb::module_::import_("vibetensor.torch._indexing").attr("getitem"));
  return (*indexer)(self, index);
}

void tensor_setitem(nb::handle self, nb::handle index, nb::handle value) {
  const Tensor& t = nb::cast<const Tensor&>(self);
  if (std::optional<Tensor> src = written_value(t, value)) {
    if (std::optional<Tensor> view = basic_view(t, index)) {
      Tensor v = *src;
      static constexpr int64_t kFirst[1] = {0};
      while (v.dim() > view->dim() && v.size(0) == 1) v = ops::squeeze(v, IntArrayRef(kFirst));  // as torch does
      MaybeReleaseGil release(is_big(*view));
      if (nb::isinstance<Tensor>(value)) {
        ops::copy_(*view, v);
      } else {  // a number, already in the target's dtype: a fill, as torch writes one (no host-to-device copy)
        ops::fill_(*view, item_scalar(v));
      }
      return;
    }
  }
  static nb::object* indexer = new nb::object(  // leaked: outlives the interpreter's teardown order
      nb::module_::import_("vibetensor.torch._indexing").attr("setitem"));
  (*indexer)(self, index, value);
}

}  // namespace vt::py
