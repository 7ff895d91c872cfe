#pragma once
// Shared pieces of the Python glue: Python value <-> IValue conversion against a schema, and error mapping.
#include <nanobind/nanobind.h>

#include <optional>

#include "vt/core/dispatcher.h"

namespace vt::py {
namespace nb = nanobind;

// A Python number (or bool) becomes a 0-dim CPU "wrapped number" tensor; Tensors pass through. TypeError else.
Tensor as_tensor_arg(nb::handle h, const char* op, const char* arg);
bool is_number(nb::handle h);
Scalar to_scalar(nb::handle h, const char* op, const char* arg);
// A Python int (or anything with __index__) as int64 / int: TypeError for other types and ValueError for values
// out of range, with torch's wording, instead of the std::bad_cast an unchecked nb::cast would throw.
int64_t to_int64(nb::handle h, const char* what);
int to_int(nb::handle h, const char* what);
ScalarType to_dtype(nb::handle h);
Device to_device(nb::handle h);
IValue to_ivalue(nb::handle h, const Argument& a, const FunctionSchema& s);
nb::object from_ivalue(IValue&& v);

// Releases the GIL around work big enough for other Python threads to gain from it. Tiny ops keep it: a
// release/acquire pair costs about as much as the op itself.
inline bool is_big(const Tensor& t) { return t.defined() && t.numel() >= 32768; }
class MaybeReleaseGil {
 public:
  explicit MaybeReleaseGil(bool release) {
    if (release) r_.emplace();
  }

 private:
  std::optional<nb::gil_scoped_release> r_;
};

// The 0-dim tensor vt.tensor(number, dtype=dtype) makes of a Python bool, float or int, or nothing where that
// Python function must decide (integer dtypes, which check the number's range; anything else). In tensor_data.cpp.
std::optional<Tensor> number_tensor(nb::handle data, std::optional<ScalarType> dtype);

// Tensor.__getitem__ / __setitem__: basic indices in C++, the rest in Python (Note [Basic indices in C++]).
nb::object tensor_getitem(nb::handle self, nb::handle index);
void tensor_setitem(nb::handle self, nb::handle index, nb::handle value);

void bind_types(nb::module_& m);
void bind_tensor(nb::module_& m);
void bind_tensor_data(nb::module_& m);
void bind_ops(nb::module_& m);
void bind_dlpack(nb::module_& m);
void bind_cuda(nb::module_& m);
void bind_allocator(nb::module_& m);
void bind_streams(nb::module_& m);
void bind_graphs(nb::module_& m);
void bind_plugins(nb::module_& m);
void bind_safetensors(nb::module_& m);
void bind_profiler(nb::module_& m);

}  // namespace vt::py
