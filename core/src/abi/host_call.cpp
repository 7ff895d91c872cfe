// Host entries for the error channel, staged registration and a kernel's arguments and results, and the boxed
// kernel through which the dispatcher runs a plugin kernel (Notes [Plugin error channel], [Host entry guard]).
#include "plugin_host.h"

namespace vt::abi {

namespace {
thread_local std::string tls_error;
thread_local CallArena* tls_arena = nullptr;
}  // namespace

void set_error_message(std::string message) { tls_error = std::move(message); }
const std::string& error_message() { return tls_error; }

vt_status status_of(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::Runtime: return VT_ERROR_RUNTIME;
    case ErrorKind::Index: return VT_ERROR_INDEX;
    case ErrorKind::Type: return VT_ERROR_TYPE;
    case ErrorKind::Value: return VT_ERROR_VALUE;
    case ErrorKind::NotImplemented: return VT_ERROR_NOT_IMPLEMENTED;
    case ErrorKind::OutOfMemory: return VT_ERROR_OUT_OF_MEMORY;
    case ErrorKind::Timeout: return VT_ERROR_TIMEOUT;
  }
  return VT_ERROR_INTERNAL;
}

ErrorKind error_kind_of(vt_status status) {
  switch (status) {
    case VT_ERROR_VALUE: return ErrorKind::Value;
    case VT_ERROR_TYPE: return ErrorKind::Type;
    case VT_ERROR_INDEX: return ErrorKind::Index;
    case VT_ERROR_NOT_IMPLEMENTED: return ErrorKind::NotImplemented;
    case VT_ERROR_OUT_OF_MEMORY: return ErrorKind::OutOfMemory;
    case VT_ERROR_TIMEOUT: return ErrorKind::Timeout;
    default: return ErrorKind::Runtime;
  }
}

CallArena::CallArena() : prev_(tls_arena) { tls_arena = this; }
CallArena::~CallArena() { tls_arena = prev_; }
CallArena* CallArena::current() { return tls_arena; }

vt_tensor make_handle(Tensor t) {
  CallArena* arena = CallArena::current();
  auto h = std::make_unique<vt_tensor_s>(vt_tensor_s{std::move(t), arena == nullptr});
  if (!arena) return h.release();
  arena->tensors.push_back(std::move(h));
  return arena->tensors.back().get();
}

vt_iter keep_iter(std::unique_ptr<vt_iter_s> it) {
  CallArena* arena = CallArena::current();
  it->owned = arena == nullptr;
  if (!arena) return it.release();
  arena->iters.push_back(std::move(it));
  return arena->iters.back().get();
}

const Tensor& unwrap(vt_tensor t, const char* what) {
  VT_CHECK_VALUE(t != nullptr && t->tensor.defined(), what, " is a NULL tensor handle");
  return t->tensor;
}

vt_iter_s& unwrap(vt_iter it) {
  VT_CHECK_VALUE(it != nullptr, "NULL iterator handle");
  return *it;
}

namespace {

// ---- errors ----
vt_status set_error(vt_status status, const char* message) noexcept {
  guarded([&] { set_error_message(message ? message : ""); });
  return status;
}
const char* last_error() noexcept { return tls_error.c_str(); }

// ---- registration ----
vt_registrar_s& open_registrar(vt_registrar* reg) {
  VT_CHECK_VALUE(reg != nullptr, "NULL registrar");
  VT_CHECK(reg->open, "ops can only be registered while vt_plugin_init runs (", reg->plugin, ")");
  return *reg;
}

vt_status define_op(vt_registrar* reg, const char* schema_text, vt_device_policy policy) noexcept {
  return guarded([&] {
    vt_registrar_s& r = open_registrar(reg);
    VT_CHECK_VALUE(schema_text != nullptr, "define_op: schema is NULL");
    VT_CHECK_VALUE(policy == VT_POLICY_SAME_DEVICE || policy == VT_POLICY_MULTI_DEVICE, "define_op: unknown device policy ",
                   int(policy));
    FunctionSchema schema;
    try {
      schema = parse_schema(schema_text);
    } catch (const Error& e) {
      VT_FAIL_KIND(Value, "define_op: ", e.what());
    }
    VT_CHECK_VALUE(schema.name.find("::") != std::string::npos, "define_op: '", schema.name,
                   "' needs a namespace (\"myns::", schema.name, "\")");
    for (ArgType ret : schema.returns)
      VT_CHECK_KIND(NotImplemented, ret == ArgType::Tensor, "define_op: ", schema.name,
                    ": plugin ops return Tensors or nothing (\"-> ()\"), not ", arg_type_name(ret));
    VT_CHECK_VALUE(!r.find(schema.name), "define_op: operator ", schema.name, " is defined twice by this plugin");
    OperatorEntry* existing = Dispatcher::get().find(schema.name);
    VT_CHECK_VALUE(!existing, "define_op: operator ", schema.name, " is already defined (schema '",
                   existing ? existing->schema().text : "", "')");
    DevicePolicy p = policy == VT_POLICY_MULTI_DEVICE ? DevicePolicy::AnyDevice : DevicePolicy::SameDevice;
    r.ops.push_back({std::move(schema), p, {}});
  });
}

vt_status impl_op(vt_registrar* reg, const char* op_name, vt_dispatch_key key, vt_kernel_fn fn, void* user_data) noexcept {
  return guarded([&] {
    vt_registrar_s& r = open_registrar(reg);
    VT_CHECK_VALUE(op_name != nullptr && fn != nullptr, "impl_op: op name and kernel must not be NULL");
    VT_CHECK_VALUE(key == VT_KEY_CPU || key == VT_KEY_CUDA, "impl_op: unknown dispatch key ", int(key));
    vt_registrar_s::StagedOp* op = r.find(op_name);
    VT_CHECK_VALUE(op, "impl_op: operator ", op_name, " is not defined by this plugin (define_op it first)");
    VT_CHECK_VALUE(!op->kernels[key].fn, "impl_op: operator ", op_name, " already has a ",
                   key == VT_KEY_CPU ? "CPU" : "CUDA", " kernel");
    op->kernels[key] = {fn, user_data};
  });
}

// ---- arguments and results ----
const IValue& arg_at(vt_call* call, int32_t i) {
  VT_CHECK_VALUE(call != nullptr, "NULL call");
  VT_CHECK_INDEX(i >= 0 && size_t(i) < call->args->size(), call->schema->name, ": argument index ", i,
                 " out of range (the op has ", call->args->size(), " arguments)");
  return (*call->args)[size_t(i)];
}

template <typename T>
const T& arg_as(vt_call* call, int32_t i, const char* type_name) {
  const IValue& v = arg_at(call, i);
  const T* p = std::get_if<T>(&v);
  VT_CHECK_TYPE(p, call->schema->name, ": argument ", i, " ('", call->schema->args[size_t(i)].name, "') is not ",
                type_name, std::holds_alternative<std::monostate>(v) ? " (it is None)" : "");
  return *p;
}

template <typename T>
void check_out(T* out) {
  VT_CHECK_VALUE(out != nullptr, "output pointer is NULL");
}

vt_status arg_count(vt_call* call, int32_t* out) noexcept {
  return guarded([&] {
    VT_CHECK_VALUE(call != nullptr, "NULL call");
    check_out(out);
    *out = int32_t(call->args->size());
  });
}
vt_status arg_is_none(vt_call* call, int32_t i, int32_t* out) noexcept {
  return guarded([&] {
    check_out(out);
    *out = std::holds_alternative<std::monostate>(arg_at(call, i));
  });
}
vt_status arg_tensor(vt_call* call, int32_t i, vt_tensor* out) noexcept {
  return guarded([&] {
    check_out(out);
    const IValue& v = arg_at(call, i);
    *out = std::holds_alternative<std::monostate>(v) ? nullptr : make_handle(arg_as<Tensor>(call, i, "a Tensor"));
  });
}
vt_status arg_tensor_list_size(vt_call* call, int32_t i, int64_t* out) noexcept {
  return guarded([&] {
    check_out(out);
    *out = int64_t(arg_as<std::vector<Tensor>>(call, i, "a Tensor[]").size());
  });
}
vt_status arg_tensor_list_item(vt_call* call, int32_t i, int64_t j, vt_tensor* out) noexcept {
  return guarded([&] {
    check_out(out);
    const auto& list = arg_as<std::vector<Tensor>>(call, i, "a Tensor[]");
    VT_CHECK_INDEX(j >= 0 && size_t(j) < list.size(), call->schema->name, ": element ", j, " of argument ", i,
                   " out of range (the list has ", list.size(), ")");
    *out = list[size_t(j)].defined() ? make_handle(list[size_t(j)]) : nullptr;
  });
}
vt_status arg_int(vt_call* call, int32_t i, int64_t* out) noexcept {
  return guarded([&] {
    check_out(out);
    *out = arg_as<int64_t>(call, i, "an int");
  });
}
vt_status arg_double(vt_call* call, int32_t i, double* out) noexcept {
  return guarded([&] {
    check_out(out);
    const IValue& v = arg_at(call, i);
    *out = std::holds_alternative<int64_t>(v) ? double(std::get<int64_t>(v)) : arg_as<double>(call, i, "a float");
  });
}
vt_status arg_bool(vt_call* call, int32_t i, int32_t* out) noexcept {
  return guarded([&] {
    check_out(out);
    *out = arg_as<bool>(call, i, "a bool");
  });
}
vt_status arg_scalar(vt_call* call, int32_t i, vt_scalar* out) noexcept {
  return guarded([&] {
    check_out(out);
    const Scalar& s = arg_as<Scalar>(call, i, "a Scalar");
    out->kind = s.is_floating() ? 1 : s.is_bool() ? 2 : 0;
    out->i = s.is_floating() ? 0 : s.to_int();
    out->f = s.to_double();
  });
}
vt_status arg_int_list(vt_call* call, int32_t i, int64_t* size, const int64_t** data) noexcept {
  return guarded([&] {
    check_out(size);
    check_out(data);
    const auto& list = arg_as<std::vector<int64_t>>(call, i, "an int[]");
    *size = int64_t(list.size());
    *data = list.data();
  });
}
vt_status set_result(vt_call* call, int32_t i, vt_tensor t) noexcept {
  return guarded([&] {
    VT_CHECK_VALUE(call != nullptr, "NULL call");
    VT_CHECK_INDEX(i >= 0 && size_t(i) < call->results.size(), call->schema->name, ": result index ", i,
                   " out of range (the op returns ", call->results.size(), " value(s))");
    call->results[size_t(i)] = unwrap(t, "set_result: the result");
    call->result_set[size_t(i)] = true;
  });
}

}  // namespace

void fill_call_entries(vt_host_api& t) {
  t.set_error = set_error;
  t.last_error = last_error;
  t.define_op = define_op;
  t.impl_op = impl_op;
  t.arg_count = arg_count;
  t.arg_is_none = arg_is_none;
  t.arg_tensor = arg_tensor;
  t.arg_tensor_list_size = arg_tensor_list_size;
  t.arg_tensor_list_item = arg_tensor_list_item;
  t.arg_int = arg_int;
  t.arg_double = arg_double;
  t.arg_bool = arg_bool;
  t.arg_scalar = arg_scalar;
  t.arg_int_list = arg_int_list;
  t.set_result = set_result;
}

// Runs one plugin kernel over a boxed stack: its handles live in a CallArena for exactly the call, a failure
// becomes the vt::Error of its status with the plugin's message, and the results replace the arguments.
std::unique_ptr<KernelFunction> make_plugin_kernel(const std::string& op, vt_kernel_fn fn, void* user_data) {
  auto k = std::make_unique<KernelFunction>();
  const FunctionSchema* schema = &Dispatcher::get().entry(op).schema();
  k->boxed = [schema, fn, user_data](Stack& s) {
    vt_call_s call{schema, &s, std::vector<Tensor>(schema->returns.size()),
                   std::vector<bool>(schema->returns.size(), false)};
    vt_status status;
    {
      CallArena arena;
      set_error_message("");
      try {
        status = fn(&call, user_data);
      } catch (...) {
        set_error_message("the kernel let a C++ exception escape through the C plugin ABI");
        status = VT_ERROR_INTERNAL;
      }
    }
    if (status != VT_OK) {  // the message names the op once: host entries' messages already do
      std::string msg = error_message();
      if (msg.empty()) msg = "plugin kernel failed with status " + std::to_string(int(status)) + " (no message)";
      detail::fail(error_kind_of(status), msg.rfind(schema->name, 0) == 0 ? msg : schema->name + ": " + msg);
    }
    for (size_t i = 0; i < call.results.size(); ++i)
      VT_CHECK(call.result_set[i], schema->name, ": plugin kernel returned VT_OK without setting result ", i);
    s.clear();
    for (Tensor& r : call.results) s.emplace_back(std::move(r));
  };
  return k;
}

}  // namespace vt::abi
