// Autograd, memory statistics, plugin loading and Fabric counters from JavaScript.
//
// backward/grad run synchronously or as barrier jobs on the pool (Note [Per-tensor order]): a backward reaches
// every leaf of its graph, so it waits for all earlier jobs and all later ones wait for it. Grad mode is per
// thread in the core; the JS thread's is what setGradEnabled changes, and every queued job carries it.
#include "pool.h"
#include "vt/abi/loader.h"
#include "vt/autograd/engine.h"
#include "vt/autograd/grad_mode.h"
#include "vt/core/random.h"
#include "vt/fabric/cross_device.h"
#include "vt/fabric/observe.h"

namespace vtjs {

namespace {

std::vector<vt::Tensor> tensors_or_undefined(const Napi::Value& v, const char* what) {
  std::vector<vt::Tensor> out;
  if (v.IsUndefined() || v.IsNull()) return out;
  if (is_tensor(v)) return {unwrap_tensor(v, what)};
  VT_CHECK_TYPE(v.IsArray(), what, " must be a Tensor or an array of Tensors");
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value x = a.Get(i);
    out.push_back(x.IsNull() || x.IsUndefined() ? vt::Tensor() : unwrap_tensor(x, what));
  }
  return out;
}

struct BackwardArgs {
  std::vector<vt::Tensor> roots, grads, inputs;
  bool retain_graph = false, create_graph = false, allow_unused = false;
};
// (roots, grads, {retainGraph, createGraph, inputs, allowUnused}) as torch.autograd.backward/grad take them.
BackwardArgs backward_args(const Napi::CallbackInfo& info, bool grad_inputs) {
  BackwardArgs b;
  b.roots = tensors_or_undefined(info[0], "backward(): tensors");
  if (grad_inputs) b.inputs = tensors_or_undefined(info[1], "grad(): inputs");
  b.grads = tensors_or_undefined(info[grad_inputs ? 2 : 1], "backward(): grad_tensors");
  Napi::Value o = info[grad_inputs ? 3 : 2];
  if (o.IsObject()) {
    Napi::Object opt = o.As<Napi::Object>();
    b.create_graph = opt.Get("createGraph").ToBoolean().Value();
    Napi::Value rg = opt.Get("retainGraph");
    b.retain_graph = rg.IsUndefined() ? b.create_graph : rg.ToBoolean().Value();
    b.allow_unused = opt.Get("allowUnused").ToBoolean().Value();
    if (!grad_inputs) b.inputs = tensors_or_undefined(opt.Get("inputs"), "backward(): inputs");
  }
  return b;
}

Napi::Value backward_sync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VTJS_TRY
  BackwardArgs b = backward_args(info, false);
  for (const vt::Tensor& r : b.roots) wait_for_tensor(env, r);
  vt::autograd::backward(b.roots, b.grads, b.retain_graph, b.create_graph, b.inputs);
  return env.Undefined();
  VTJS_CATCH(env)
}

Napi::Value results_array(Napi::Env env, std::vector<vt::Tensor>&& r) {
  Napi::Array out = Napi::Array::New(env, r.size());
  for (size_t i = 0; i < r.size(); ++i) out.Set(uint32_t(i), wrap_tensor(env, std::move(r[i])));
  return out;
}

Napi::Value grad_sync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VTJS_TRY
  BackwardArgs b = backward_args(info, true);
  for (const vt::Tensor& r : b.roots) wait_for_tensor(env, r);
  return results_array(env, vt::autograd::grad(b.roots, b.inputs, b.grads, b.retain_graph, b.create_graph,
                                               b.allow_unused));
  VTJS_CATCH(env)
}

// backwardAsync / gradAsync: the same as barrier jobs.
Napi::Value backward_async(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::shared_ptr<BackwardArgs> b;
  try {
    b = std::make_shared<BackwardArgs>(backward_args(info, false));
  } catch (...) {
    auto d = Napi::Promise::Deferred::New(env);
    try { rethrow_as_js(env, std::current_exception()); } catch (const Napi::Error& e) { d.Reject(e.Value()); }
    return d.Promise();
  }
  return submit_job(env, {}, true, -1, 0,
                    [b] { vt::autograd::backward(b->roots, b->grads, b->retain_graph, b->create_graph, b->inputs); },
                    [](Napi::Env env) -> Napi::Value { return env.Undefined(); });
}
Napi::Value grad_async(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::shared_ptr<BackwardArgs> b;
  try {
    b = std::make_shared<BackwardArgs>(backward_args(info, true));
  } catch (...) {
    auto d = Napi::Promise::Deferred::New(env);
    try { rethrow_as_js(env, std::current_exception()); } catch (const Napi::Error& e) { d.Reject(e.Value()); }
    return d.Promise();
  }
  auto out = std::make_shared<std::vector<vt::Tensor>>();
  return submit_job(env, {}, true, -1, 0,
                    [b, out] {
                      *out = vt::autograd::grad(b->roots, b->inputs, b->grads, b->retain_graph, b->create_graph,
                                                b->allow_unused);
                    },
                    [out](Napi::Env env) { return results_array(env, std::move(*out)); });
}

Napi::Value is_grad_enabled(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), vt::autograd::is_grad_enabled());
}
Napi::Value set_grad_enabled(const Napi::CallbackInfo& info) {
  vt::autograd::set_grad_enabled(info[0].ToBoolean().Value());
  return info.Env().Undefined();
}

// CPU memory of live storages (Note [CPU memory accounting] in the core).
Napi::Value cpu_memory_stats(const Napi::CallbackInfo& info) {
  vt::CpuMemoryStats s = vt::cpu_memory_stats();
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("allocatedBytes", Napi::Number::New(info.Env(), double(s.allocated_bytes)));
  o.Set("allocations", Napi::Number::New(info.Env(), double(s.allocations)));
  return o;
}

// loadLibrary(path) -> the names of the ops the plugin defined (Note [Plugin loading] in the core).
Napi::Value load_library(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VTJS_TRY
  VT_CHECK_TYPE(info[0].IsString(), "loadLibrary(): path must be a string");
  vt::abi::PluginRecord r = vt::abi::load_plugin(info[0].As<Napi::String>().Utf8Value());
  Napi::Array ops = Napi::Array::New(env, r.ops.size());
  for (size_t i = 0; i < r.ops.size(); ++i) ops.Set(uint32_t(i), r.ops[i]);
  return ops;
  VTJS_CATCH(env)
}

Napi::Object counters_object(Napi::Env env, const vt::fabric::PairCounters& c) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("ops", double(c.ops));
  o.Set("bytes", double(c.bytes));
  o.Set("hits", double(c.hits));
  Napi::Object fb = Napi::Object::New(env);
  for (int i = 1; i < int(vt::fabric::Reason::kCount); ++i)
    fb.Set(vt::fabric::reason_name(vt::fabric::Reason(i)), double(c.fallbacks[i]));
  o.Set("fallbacks", fb);
  return o;
}

// fabricStats() / fabricStats(compute, remote): Fabric's cross-device counters (Note [Counter invariants]).
Napi::Value fabric_stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VTJS_TRY
  if (info.Length() >= 2)
    return counters_object(env, vt::fabric::pair_counters(info[0].As<Napi::Number>().Int32Value(),
                                                          info[1].As<Napi::Number>().Int32Value()));
  return counters_object(env, vt::fabric::total_counters());
  VTJS_CATCH(env)
}

// fabricEvents(): the event ring, oldest first (Note [Event ring]).
Napi::Value fabric_events(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VTJS_TRY
  std::vector<vt::fabric::ResolvedEvent> ev = vt::fabric::read_ring();
  Napi::Array out = Napi::Array::New(env, ev.size());
  for (size_t i = 0; i < ev.size(); ++i) {
    const vt::fabric::EventRecord& r = ev[i].record;
    Napi::Object o = Napi::Object::New(env);
    o.Set("kind", vt::fabric::event_kind_name(r.kind));
    o.Set("name", r.name);
    o.Set("device", r.device);
    o.Set("peer", r.peer);
    o.Set("bytes", double(r.bytes));
    o.Set("reason", r.reason == vt::fabric::Reason::None ? "" : vt::fabric::reason_name(r.reason));
    o.Set("detail", r.detail);
    o.Set("gpuStartUs", ev[i].gpu_start_us);
    o.Set("gpuEndUs", ev[i].gpu_end_us);
    out.Set(uint32_t(i), o);
  }
  return out;
  VTJS_CATCH(env)
}

// _fabricCount(compute, remote, bytes, route, reason): records one cross-device op as the Fabric's call path
// would (tests drive the counters without GPUs through it, as Python's tests do).
Napi::Value fabric_count(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VTJS_TRY
  std::string route = info[3].As<Napi::String>().Utf8Value();
  vt::fabric::Route r = route == "native" ? vt::fabric::Route::Native
                        : route == "p2p"  ? vt::fabric::Route::Peer
                                          : vt::fabric::Route::Staged;
  VT_CHECK_VALUE(route == "native" || route == "p2p" || route == "staged", "unknown route '", route,
                 "' (native, p2p, staged)");
  std::string reason = info[4].IsString() ? info[4].As<Napi::String>().Utf8Value() : "";
  vt::fabric::count(info[0].As<Napi::Number>().Int32Value(), info[1].As<Napi::Number>().Int32Value(),
                    info[2].As<Napi::Number>().Int64Value(), r,
                    reason.empty() ? vt::fabric::Reason::None : vt::fabric::reason_from_name(reason));
  return env.Undefined();
  VTJS_CATCH(env)
}

}  // namespace

void init_runtime(Napi::Env env, Napi::Object exports) {
  vt::fabric::install_cross_device_hook();  // cross-device ops route through an open Fabric, as from Python
  exports.Set("backward", Napi::Function::New(env, backward_sync));
  exports.Set("grad", Napi::Function::New(env, grad_sync));
  exports.Set("backwardAsync", Napi::Function::New(env, backward_async));
  exports.Set("gradAsync", Napi::Function::New(env, grad_async));
  exports.Set("isGradEnabled", Napi::Function::New(env, is_grad_enabled));
  exports.Set("setGradEnabled", Napi::Function::New(env, set_grad_enabled));
  exports.Set("manualSeed", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
    vt::random::manual_seed(uint64_t(info[0].As<Napi::Number>().Int64Value()));
    return info.Env().Undefined();
  }));
  exports.Set("cpuMemoryStats", Napi::Function::New(env, cpu_memory_stats));
  exports.Set("loadLibrary", Napi::Function::New(env, load_library));
  exports.Set("fabricStats", Napi::Function::New(env, fabric_stats));
  exports.Set("fabricEvents", Napi::Function::New(env, fabric_events));
  exports.Set("fabricResetStats", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
    vt::fabric::reset_counters();
    return info.Env().Undefined();
  }));
  exports.Set("_fabricCount", Napi::Function::New(env, fabric_count));
}

}  // namespace vtjs
