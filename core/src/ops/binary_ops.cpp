// Binary elementwise ops: their schemas, the CPU kernels (binary_impl.h over cpu_kernel) and the C++ entry
// points other kernels use. The CUDA kernels register from cuda/binary_ops.cu.
#include <string>
#include <unordered_map>

#include "binary_impl.h"
#include "cpu_loops.h"
#include "vt/core/dispatcher.h"
#include "vt/core/ops.h"

namespace vt {

VT_LIBRARY(vt, binary) {
  m.def("add(Tensor self, Tensor other, *, Scalar alpha=1) -> Tensor");
  m.def("add_(Tensor self, Tensor other, *, Scalar alpha=1) -> Tensor");
  m.def("sub(Tensor self, Tensor other, *, Scalar alpha=1) -> Tensor");
  m.def("sub_(Tensor self, Tensor other, *, Scalar alpha=1) -> Tensor");
  m.def("div(Tensor self, Tensor other, *, str? rounding_mode=None) -> Tensor");
  m.def("div_(Tensor self, Tensor other, *, str? rounding_mode=None) -> Tensor");
  for (const char* id : {"mul", "floor_divide", "remainder", "fmod", "pow", "maximum", "minimum", "atan2",
                         "bitwise_and", "bitwise_or", "bitwise_xor", "eq", "ne", "lt", "le", "gt", "ge",
                         "logical_and", "logical_or", "logical_xor"}) {
    m.def(std::string(id) + "(Tensor self, Tensor other) -> Tensor");
    m.def(std::string(id) + "_(Tensor self, Tensor other) -> Tensor");
  }
  binary::register_binary<cpu::CpuLaunch>(m, DispatchKey::CPU);
}

namespace ops {
Tensor add(const Tensor& a, const Tensor& b, const Scalar& alpha) {
  static const TypedOp<Tensor(const Tensor&, const Tensor&, const Scalar&)> op("vt::add");
  return op(a, b, alpha);
}
Tensor sub(const Tensor& a, const Tensor& b, const Scalar& alpha) {
  static const TypedOp<Tensor(const Tensor&, const Tensor&, const Scalar&)> op("vt::sub");
  return op(a, b, alpha);
}
Tensor mul(const Tensor& a, const Tensor& b) { return binary("vt::mul", a, b); }
Tensor div(const Tensor& a, const Tensor& b) {
  static const TypedOp<Tensor(const Tensor&, const Tensor&, std::optional<std::string>)> op("vt::div");
  return op(a, b, std::nullopt);
}
// Entries looked up by name once per thread and call site (callers pass string literals), so composite ops
// never take the dispatcher's registration lock on the call path (Note [Dispatcher locking]).
static OperatorEntry& cached_entry(const char* qualname) {
  thread_local std::unordered_map<const char*, OperatorEntry*> cache;
  OperatorEntry*& e = cache[qualname];
  if (!e) e = &Dispatcher::get().entry(qualname);
  return *e;
}
Tensor binary(const char* qualname, const Tensor& a, const Tensor& b) {
  return cached_entry(qualname).call<Tensor, const Tensor&, const Tensor&>(Layer::Python, a, b);
}
Tensor unary(const char* qualname, const Tensor& a) {
  return cached_entry(qualname).call<Tensor, const Tensor&>(Layer::Python, a);
}
}  // namespace ops

}  // namespace vt
