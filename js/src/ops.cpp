// The dispatcher from JavaScript: every registered op by name, with its schema, called synchronously on the JS
// thread or asynchronously on the worker pool. lib/ops.js turns the schemas into the `ops` namespace, so new
// ops and loaded plugins appear without wrappers written by hand.
//
// A synchronous call parses its arguments against the schema (parse_args, Python's rules) and calls the
// dispatcher boxed, except ops shaped (Tensor) -> Tensor or (Tensor, Tensor) -> Tensor called with exactly
// their tensors, which take the typed path (Note [Unboxed fast path] in the core) as Python's do.
//
// An asynchronous call parses on the JS thread too (bad arguments reject at once, with the synchronous
// message), then queues the boxed call (Note [Per-tensor order]). The job carries the JS thread's grad mode and,
// for CUDA work, its current device and stream, because both are per thread in the core.
#include <array>

#include "pool.h"
#include "tensor_wrap.h"
#include "vt/cuda/device.h"
#include "vt/cuda/guard.h"
#include "vt/cuda/stream.h"

namespace vtjs {

namespace {

enum class Shape { Unary, Binary, Other };
Shape shape_of(const vt::FunctionSchema& s) {
  if (s.returns.size() != 1 || s.returns[0] != vt::ArgType::Tensor) return Shape::Other;
  for (const vt::Argument& a : s.args)
    if (a.type != vt::ArgType::Tensor || a.optional) return Shape::Other;
  return s.args.size() == 1 ? Shape::Unary : s.args.size() == 2 ? Shape::Binary : Shape::Other;
}

vt::OperatorEntry* entry_at(Napi::Env env, const Napi::Value& idx) {
  const auto& ops = state(env).ops;
  uint32_t i = idx.As<Napi::Number>().Uint32Value();
  VT_CHECK_VALUE(i < ops.size(), "no op handle ", i);
  return ops[i];
}

Napi::Value op_names(const Napi::CallbackInfo& info) {
  std::vector<std::string> names = vt::Dispatcher::get().op_names();
  Napi::Array a = Napi::Array::New(info.Env(), names.size());
  for (size_t i = 0; i < names.size(); ++i) a.Set(uint32_t(i), Napi::String::New(info.Env(), names[i]));
  return a;
}

// opInfo(name): {index, name, schema, args: [{name, type, optional, kwargOnly, hasDefault}], returns, shape}
Napi::Value op_info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VTJS_TRY
  std::string name = info[0].As<Napi::String>().Utf8Value();
  vt::OperatorEntry* e = vt::Dispatcher::get().find(name);
  VT_CHECK_KIND(Value, e != nullptr, "no operator named '", name, "'");
  auto& ops = state(env).ops;
  auto it = std::find(ops.begin(), ops.end(), e);
  size_t index = size_t(it - ops.begin());
  if (it == ops.end()) ops.push_back(e);
  const vt::FunctionSchema& s = e->schema();
  Napi::Object o = Napi::Object::New(env);
  o.Set("index", Napi::Number::New(env, double(index)));
  o.Set("name", s.name);
  o.Set("schema", s.text);
  Napi::Array args = Napi::Array::New(env, s.args.size());
  for (size_t i = 0; i < s.args.size(); ++i) {
    const vt::Argument& a = s.args[i];
    Napi::Object ao = Napi::Object::New(env);
    ao.Set("name", a.name);
    ao.Set("type", std::string(vt::arg_type_name(a.type)));
    ao.Set("optional", a.optional);
    ao.Set("kwargOnly", a.kwarg_only);
    ao.Set("hasDefault", a.default_value.has_value());
    args.Set(uint32_t(i), ao);
  }
  o.Set("args", args);
  Napi::Array rets = Napi::Array::New(env, s.returns.size());
  for (size_t i = 0; i < s.returns.size(); ++i) rets.Set(uint32_t(i), std::string(vt::arg_type_name(s.returns[i])));
  o.Set("returns", rets);
  Shape sh = shape_of(s);
  o.Set("shape", sh == Shape::Unary ? "unary" : sh == Shape::Binary ? "binary" : "other");
  return o;
  VTJS_CATCH(env)
}

void wait_for_stack(Napi::Env env, const vt::Stack& s) {
  Pool* p = state(env).pool;
  if (!p || p->in_flight() == 0) return;
  std::vector<const void*> keys;
  collect_keys(s, keys);
  for (const void* k : keys) p->wait_for(k);
}

// Handle of a result for lib/ops.js to wrap (Note [Tensor handles]): the fast paths skip the call back into JS.
Napi::Value handle_of(Napi::Env env, vt::Tensor t) {
  return t.defined() ? Napi::Number::New(env, put_tensor(std::move(t))) : env.Null();
}

// call1(index, a) / call2(index, a, b): the typed path of unary and binary ops; they return a handle.
//
// Note [Handles from JS]
// When every argument is a Tensor, lib/ops.js reads the handles itself (an inline-cached property load in JS)
// and passes numbers: finding a handle from the native side costs a type check, a reference lookup and a
// property get through N-API per tensor, a quarter of a tiny op's call. Other arguments (numbers as wrapped
// scalars) take the object path, find_tensor.
template <size_t N> std::array<vt::Tensor, N> typed_args(const Napi::CallbackInfo& info, const vt::FunctionSchema& s,
                                                         bool handles) {
  std::array<vt::Tensor, N> ts;
  for (size_t i = 0; i < N; ++i) {
    const char* arg = s.args[i].name.c_str();
    ts[i] = handles ? tensor_of_handle(info[i + 1].As<Napi::Number>().DoubleValue(), arg)
                    : as_tensor_arg(info[i + 1], s.name.c_str(), arg);
    wait_for_tensor(info.Env(), ts[i]);
  }
  return ts;
}
template <bool Handles> Napi::Value call1(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VTJS_TRY
  vt::OperatorEntry* e = entry_at(env, info[0]);
  auto [a] = typed_args<1>(info, e->schema(), Handles);
  return handle_of(env, e->call<vt::Tensor, const vt::Tensor&>(vt::Layer::Python, a));
  VTJS_CATCH(env)
}
template <bool Handles> Napi::Value call2(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VTJS_TRY
  vt::OperatorEntry* e = entry_at(env, info[0]);
  auto [a, b] = typed_args<2>(info, e->schema(), Handles);
  return handle_of(env, e->call<vt::Tensor, const vt::Tensor&, const vt::Tensor&>(vt::Layer::Python, a, b));
  VTJS_CATCH(env)
}

// The boxed path's tail: waits for queued work on the stack's tensors, calls, and returns the results with
// tensors as handles.
Napi::Value run_boxed(Napi::Env env, vt::OperatorEntry* e, vt::Stack s) {
  wait_for_stack(env, s);
  e->call_boxed(vt::Layer::Python, s);
  return results_to_js(env, std::move(s), true);
}

// call(index, positional[], kwargs): the boxed path, for every op.
Napi::Value call(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VTJS_TRY
  vt::OperatorEntry* e = entry_at(env, info[0]);
  return run_boxed(env, e, parse_args(e->schema(), info[1].As<Napi::Array>(), info[2]));
  VTJS_CATCH(env)
}

// callInOrder(index, values[]): the same with the values already in schema order (lib/ops.js placed the
// keywords).
Napi::Value call_in_order(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VTJS_TRY
  vt::OperatorEntry* e = entry_at(env, info[0]);
  return run_boxed(env, e, parse_in_order(e->schema(), info[1].As<Napi::Array>()));
  VTJS_CATCH(env)
}

// The CUDA device (and its current stream on the JS thread) that queued work runs on: the first CUDA tensor's,
// else an explicit CUDA device argument's; -1 for CPU work.
struct StreamContext {
  int device = -1;
  vt::cuda::StreamId stream = 0;
};
StreamContext stream_context(const vt::Stack& s) {
  StreamContext c;
  for (const vt::IValue& v : s) {
    int d = -1;
    if (auto* t = std::get_if<vt::Tensor>(&v); t && t->defined() && t->is_cuda()) d = t->device().index;
    else if (auto* ts = std::get_if<std::vector<vt::Tensor>>(&v)) {
      for (const vt::Tensor& x : *ts)
        if (x.defined() && x.is_cuda()) {
          d = x.device().index;
          break;
        }
    } else if (auto* dv = std::get_if<vt::Device>(&v); dv && dv->is_cuda()) {
      d = dv->index;
    }
    if (d != -1 || (std::holds_alternative<vt::Device>(v) && std::get<vt::Device>(v).is_cuda())) {
      c.device = d < 0 ? vt::cuda::current_device_raw() : d;
      c.stream = vt::cuda::current_stream(c.device);
      return c;
    }
  }
  return c;
}

}  // namespace

Napi::Value submit_job(Napi::Env env, std::vector<const void*> keys, bool barrier, int device, uintptr_t stream,
                       std::function<void()> fn, std::function<Napi::Value(Napi::Env)> result, int grad_mode) {
  auto deferred = std::make_shared<Napi::Promise::Deferred>(env);
  auto job = std::make_shared<Job>();
  job->keys = std::move(keys);
  job->barrier = barrier;
  bool grad = grad_mode < 0 ? vt::autograd::is_grad_enabled() : grad_mode != 0;
  job->run = [fn = std::move(fn), grad, device, stream] {
    vt::autograd::GradModeGuard mode(grad);
    if (device < 0) return fn();
    vt::cuda::DeviceGuard dg(device);
    vt::cuda::StreamId prev = vt::cuda::current_stream(device);
    vt::cuda::set_current_stream(device, stream);
    try {
      fn();
    } catch (...) {
      vt::cuda::set_current_stream(device, prev);
      throw;
    }
    vt::cuda::set_current_stream(device, prev);
  };
  job->complete = [deferred, result = std::move(result)](Napi::Env env, Job& j) {
    if (j.error) {
      try {
        rethrow_as_js(env, j.error);
      } catch (const Napi::Error& e) {
        deferred->Reject(e.Value());
      }
      return;
    }
    try {
      deferred->Resolve(result(env));
    } catch (const Napi::Error& e) {
      deferred->Reject(e.Value());
    }
  };
  Napi::Promise p = deferred->Promise();
  state(env).pool->submit(std::move(job));
  return p;
}

namespace {
// callAsync(index, positional[], kwargs, gradMode?) -> Promise of the results (tensors as handles). gradMode: the grad mode the
// call was made under (lib/ops.js reads it at the call), else the current one.
Napi::Value call_async(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  vt::OperatorEntry* e = nullptr;
  auto stack = std::make_shared<vt::Stack>();
  StreamContext ctx;
  try {
    e = entry_at(env, info[0]);
    *stack = parse_args(e->schema(), info[1].As<Napi::Array>(), info[2]);
    ctx = stream_context(*stack);
  } catch (...) {
    auto d = Napi::Promise::Deferred::New(env);
    try {
      rethrow_as_js(env, std::current_exception());
    } catch (const Napi::Error& err) {
      d.Reject(err.Value());
    }
    return d.Promise();
  }
  std::vector<const void*> keys;
  collect_keys(*stack, keys);
  int grad = info[3].IsBoolean() ? int(info[3].As<Napi::Boolean>().Value()) : -1;
  return submit_job(env, std::move(keys), false, ctx.device, ctx.stream,
                    [e, stack] { e->call_boxed(vt::Layer::Python, *stack); },
                    [stack](Napi::Env env) { return results_to_js(env, std::move(*stack), true); }, grad);
}
}  // namespace

void init_ops(Napi::Env env, Napi::Object exports) {
  exports.Set("opNames", Napi::Function::New(env, op_names));
  exports.Set("opInfo", Napi::Function::New(env, op_info));
  exports.Set("call1", Napi::Function::New(env, call1<false>));
  exports.Set("call2", Napi::Function::New(env, call2<false>));
  exports.Set("call1h", Napi::Function::New(env, call1<true>));
  exports.Set("call2h", Napi::Function::New(env, call2<true>));
  exports.Set("call", Napi::Function::New(env, call));
  exports.Set("callInOrder", Napi::Function::New(env, call_in_order));
  exports.Set("callAsync", Napi::Function::New(env, call_async));
}

}  // namespace vtjs
