#pragma once
// The host side of the plugin ABI (vt/abi/vt_plugin.h): what the opaque handles are, the per-call arena that
// owns them, and the guard every host entry runs its body under.
//
// Note [Host entry guard]
// Every entry of vt_host_api is a noexcept function whose body runs inside guarded(): a vt::Error becomes the
// vt_status of its kind plus the thread's error message, anything else becomes VT_ERROR_INTERNAL. The other
// direction is guarded too: each call into plugin code (init, kernels, CPU loops) is wrapped in try/catch, so a
// plugin written in C++ that lets an exception escape gets an error naming it instead of undefined behaviour.
#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "vt/abi/vt_plugin.h"
#include "vt/core/dispatcher.h"
#include "vt/core/tensor_iterator.h"

struct vt_tensor_s {
  vt::Tensor tensor;
  bool owned;  // true: released with tensor_release; false: dies with its kernel call
};

struct vt_iter_s {
  vt::TensorIterator it;
  vt_iter_kind kind;
  bool owned;
  vt::Tensor reduction_result;                // the reduction's output as the caller sees it (keepdim or not)
  std::vector<std::vector<int64_t>> strides;  // per operand: byte strides in iteration order
};

// One kernel call: the boxed arguments (schema order) and the results the kernel sets.
struct vt_call_s {
  const vt::FunctionSchema* schema;
  vt::Stack* args;
  std::vector<vt::Tensor> results;
  std::vector<bool> result_set;
};

// The staged registrations of one plugin's init (committed only if init succeeds).
struct vt_registrar_s {
  struct Kernel {
    vt_kernel_fn fn = nullptr;
    void* user_data = nullptr;
  };
  struct StagedOp {
    vt::FunctionSchema schema;
    vt::DevicePolicy policy;
    Kernel kernels[2];  // by vt_dispatch_key
  };
  std::string plugin;  // the path, for messages
  bool open = true;    // false once init has returned: later calls are refused
  std::vector<StagedOp> ops;
  StagedOp* find(const std::string& name) {
    for (StagedOp& op : ops)
      if (op.schema.name == name) return &op;
    return nullptr;
  }
};

namespace vt::abi {

// The thread's error message (Note [Plugin error channel]).
void set_error_message(std::string message);
const std::string& error_message();

vt_status status_of(ErrorKind kind);
ErrorKind error_kind_of(vt_status status);

// Runs `body` under Note [Host entry guard].
template <typename F>
vt_status guarded(F&& body) noexcept {
  try {
    body();
    return VT_OK;
  } catch (const Error& e) {
    set_error_message(e.what());
    return status_of(e.kind());
  } catch (const std::bad_alloc&) {
    set_error_message("out of host memory");
    return VT_ERROR_OUT_OF_MEMORY;
  } catch (const std::exception& e) {
    set_error_message(std::string("internal error: ") + e.what());
    return VT_ERROR_INTERNAL;
  } catch (...) {
    set_error_message("internal error: unknown exception");
    return VT_ERROR_INTERNAL;
  }
}

// Note [Plugin handle ownership]: while a kernel runs, the handles created on its thread live in its CallArena.
class CallArena {
 public:
  CallArena();
  ~CallArena();
  CallArena(const CallArena&) = delete;
  static CallArena* current();
  std::vector<std::unique_ptr<vt_tensor_s>> tensors;
  std::vector<std::unique_ptr<vt_iter_s>> iters;

 private:
  CallArena* prev_;
};
// A handle for `t`: owned by the current call, or owned by the caller outside any call.
vt_tensor make_handle(Tensor t);
vt_iter keep_iter(std::unique_ptr<vt_iter_s> it);
const Tensor& unwrap(vt_tensor t, const char* what);
vt_iter_s& unwrap(vt_iter it);

// Struct conversions between ABI types and core types.
ScalarType dtype_from_abi(vt_dtype d);
vt_dtype dtype_to_abi(ScalarType t);
Device device_from_abi(vt_device d);
vt_device device_to_abi(Device d);

// Structs crossing the ABI with a struct_size field (Note [Plugin ABI versioning]): the one place where a
// plugin built against an older minor is adapted. Reading copies the fields the plugin's header knew and
// leaves the rest value-initialised; writing fills only the fields the plugin's struct has room for.
template <typename T>
T read_versioned(const T* in, const char* what) {
  VT_CHECK_VALUE(in != nullptr, what, " is NULL");
  VT_CHECK_VALUE(in->struct_size >= sizeof(uint32_t), what, ".struct_size is ", in->struct_size,
                 "; set it to sizeof(", what, ")");
  T out{};
  std::memcpy(&out, in, std::min<size_t>(in->struct_size, sizeof(T)));
  out.struct_size = uint32_t(sizeof(T));
  return out;
}
template <typename T>
void write_versioned(const T& value, T* out, const char* what) {
  VT_CHECK_VALUE(out != nullptr, what, " is NULL");
  VT_CHECK_VALUE(out->struct_size >= sizeof(uint32_t), what, ".struct_size is ", out->struct_size,
                 "; set it to sizeof(", what, ")");
  uint32_t size = out->struct_size;
  std::memcpy(out, &value, std::min<size_t>(size, sizeof(T)));
  out->struct_size = size;
}

// The host table for a plugin of ABI version `plugin_version` (same major, minor <= ours).
const vt_host_api* host_table_for(uint32_t plugin_version);

// Host-table entries, defined across host_*.cpp and gathered into the table by host_table.cpp.
void fill_call_entries(vt_host_api& t);    // host_call.cpp: errors, registration, arguments, results
void fill_tensor_entries(vt_host_api& t);  // host_tensor.cpp: tensors and the TensorIterator
void fill_cuda_entries(vt_host_api& t);    // host_cuda.cpp

// The boxed kernel the dispatcher calls for a plugin kernel.
std::unique_ptr<KernelFunction> make_plugin_kernel(const std::string& op, vt_kernel_fn fn, void* user_data);

}  // namespace vt::abi
