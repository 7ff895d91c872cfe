#pragma once
// Shared pieces of the Node.js glue: the per-environment state (tensor constructor, error classes, the worker
// pool), JS value <-> IValue conversion against a schema, and the mapping of core errors onto JS errors.
//
// Note [One thread touches JS]
// Every napi call happens on the JS main thread. Worker threads (pool.h) only run the dispatcher on values
// converted beforehand; their results come back to the main thread through a thread-safe function and are
// converted there. Anything a worker may release that owns a JS value (a zero-copy storage over an
// ArrayBuffer) hands the release to the main thread (release_on_main_thread).
#include <napi.h>

#include <exception>
#include <functional>
#include <string>
#include <vector>

#include "vt/core/dispatcher.h"

namespace vtjs {

class Pool;

struct AddonState {
  Napi::ObjectReference errors;  // kind name -> class, set by lib/errors.js through setErrorClasses
  std::vector<vt::OperatorEntry*> ops;  // op handles: index -> entry (lib/ops.js keeps the index)
  Pool* pool = nullptr;
};
AddonState& state(Napi::Env env);

// A JS error of the class registered for `kind` ("RuntimeError", "IndexError", ...), or a plain Error before
// registration. The message is the core's, unchanged: the same text Python shows.
Napi::Error make_error(Napi::Env env, const std::string& kind, const std::string& msg);
std::string error_kind_name(vt::ErrorKind k);
// Converts the exception in flight (vt::Error, std::exception) into a thrown JS error; rethrows Napi::Error.
[[noreturn]] void rethrow_as_js(Napi::Env env, std::exception_ptr p);

#define VTJS_TRY try {
#define VTJS_CATCH(env)                              \
  }                                                  \
  catch (const Napi::Error&) {                       \
    throw;                                           \
  }                                                  \
  catch (...) {                                      \
    ::vtjs::rethrow_as_js(env, std::current_exception()); \
  }

// ---- conversion (convert.cpp) ----
// A JS tensor object's Tensor; TypeError naming `what` for anything else or a disposed tensor.
const vt::Tensor& unwrap_tensor(const Napi::Value& v, const char* what);
bool is_tensor(const Napi::Value& v);
Napi::Value wrap_tensor(Napi::Env env, vt::Tensor t);  // undefined tensor -> null
// A JS number, boolean or BigInt as a Scalar: integral numbers become integer scalars (JS has one number type,
// so 2 and 2.0 are the same value; vt.scalar.float(2) forces a floating scalar).
vt::Scalar to_scalar(const Napi::Value& v, const char* op, const char* arg);
vt::Tensor as_tensor_arg(const Napi::Value& v, const char* op, const char* arg);
vt::ScalarType to_dtype(const Napi::Value& v);
vt::Device to_device(const Napi::Value& v);
std::vector<int64_t> to_int_list(const Napi::Value& v, const char* op, const char* arg);
vt::IValue to_ivalue(const Napi::Value& v, const vt::Argument& a, const vt::FunctionSchema& s);
// handles: tensors become bare handles for lib/ops.js to wrap from the schema's return types (Note [Tensor
// handles]), which spares one call back into JS per result on the hot path.
Napi::Value from_ivalue(Napi::Env env, vt::IValue&& v, bool handles = false);
// Positional values then a kwargs object (or undefined) against the schema, as Python's call path parses them:
// the same checks in the same order, with the same messages.
vt::Stack parse_args(const vt::FunctionSchema& s, const Napi::Array& args, const Napi::Value& kwargs);
// The same for values already in schema order (Note [Keywords placed in JS] in lib/ops.js): one per schema
// argument, undefined where none was given.
vt::Stack parse_in_order(const vt::FunctionSchema& s, const Napi::Array& args);
// The results of a boxed call: undefined for "-> ()", one value, or an array for several.
Napi::Value results_to_js(Napi::Env env, vt::Stack&& s, bool handles = false);

// Runs `release` on the main thread (now, when already there) - Note [One thread touches JS].
void release_on_main_thread(std::function<void()> release);

// ---- per-file registration ----
void init_tensor(Napi::Env env, Napi::Object exports);
void init_ops(Napi::Env env, Napi::Object exports);
void init_pool(Napi::Env env, Napi::Object exports);
void init_runtime(Napi::Env env, Napi::Object exports);
void init_cuda(Napi::Env env, Napi::Object exports);

}  // namespace vtjs
