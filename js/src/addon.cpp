// The vibetensor Node.js addon: module initialisation, per-environment state, error mapping and the main-thread
// release queue. The rest of the glue registers itself from one file per area (tensor, ops, pool, runtime,
// cuda); lib/ builds the JavaScript API on top.
#include <mutex>
#include <thread>

#include "common.h"
#include "tensor_wrap.h"
#include "vt/autograd/formula.h"

namespace vtjs {

// One environment per process (the addon refuses worker_threads' second load): a plain pointer spares the
// instance-data lookup on every call.
AddonState* g_state = nullptr;
AddonState& state(Napi::Env) { return *g_state; }

std::string error_kind_name(vt::ErrorKind k) {
  switch (k) {
    case vt::ErrorKind::Index: return "IndexError";
    case vt::ErrorKind::Type: return "TypeError";
    case vt::ErrorKind::Value: return "ValueError";
    case vt::ErrorKind::NotImplemented: return "NotImplementedError";
    case vt::ErrorKind::OutOfMemory: return "OutOfMemoryError";
    case vt::ErrorKind::Timeout: return "TimeoutError";
    default: return "RuntimeError";
  }
}

Napi::Error make_error(Napi::Env env, const std::string& kind, const std::string& msg) {
  AddonState& st = state(env);
  if (!st.errors.IsEmpty()) {
    Napi::Value cls = st.errors.Value().Get(kind);
    if (cls.IsFunction()) {
      Napi::Object e = cls.As<Napi::Function>().New({Napi::String::New(env, msg)});
      return Napi::Error(env, e);
    }
  }
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("kind", Napi::String::New(env, kind));
  return e;
}

void rethrow_as_js(Napi::Env env, std::exception_ptr p) {
  try {
    std::rethrow_exception(p);
  } catch (const Napi::Error&) {
    throw;
  } catch (const vt::Error& e) {
    throw make_error(env, error_kind_name(e.kind()), e.what());
  } catch (const std::bad_alloc&) {
    throw make_error(env, "OutOfMemoryError", "out of host memory");
  } catch (const std::exception& e) {
    throw make_error(env, "RuntimeError", e.what());
  }
}

// ---- Note [One thread touches JS]: the release queue ----
namespace {
std::thread::id g_main_thread;
std::mutex g_release_mu;
std::vector<std::function<void()>> g_releases;
Napi::ThreadSafeFunction g_release_tsfn;
bool g_release_open = false;  // false before init and after the environment is torn down: releases leak then

void drain_releases() {
  std::vector<std::function<void()>> todo;
  {
    std::lock_guard<std::mutex> g(g_release_mu);
    todo.swap(g_releases);
  }
  for (auto& f : todo) f();
}
}  // namespace

void release_on_main_thread(std::function<void()> release) {
  std::unique_lock<std::mutex> g(g_release_mu);
  if (!g_release_open) return;  // the environment is gone: what it owned goes with it
  if (std::this_thread::get_id() == g_main_thread) {
    g.unlock();  // release() may free more storages, which come back here
    return release();
  }
  g_releases.push_back(std::move(release));
  g_release_tsfn.NonBlockingCall([](Napi::Env, Napi::Function) { drain_releases(); });
}

Napi::Object init(Napi::Env env, Napi::Object exports);

namespace {
Napi::Value set_error_classes(const Napi::CallbackInfo& info) {
  state(info.Env()).errors = Napi::Persistent(info[0].As<Napi::Object>());
  return info.Env().Undefined();
}

}  // namespace

Napi::Object init(Napi::Env env, Napi::Object exports) {
  if (g_state) {
    throw Napi::Error::New(env, "vibetensor: the addon is loaded once per process (not in worker threads)");
  }
  g_state = new AddonState();
  env.SetInstanceData<AddonState>(g_state);  // deleted by N-API at environment teardown
  g_main_thread = std::this_thread::get_id();
  g_release_tsfn = Napi::ThreadSafeFunction::New(env, Napi::Function::New(env, [](const Napi::CallbackInfo&) {}),
                                                 "vibetensor-release", 0, 1);
  g_release_tsfn.Unref(env);  // pending releases never keep the process alive
  {
    std::lock_guard<std::mutex> g(g_release_mu);
    g_release_open = true;
  }
  env.AddCleanupHook([] {
    clear_handles();  // tensors still held by JS objects go now, while references can still be released
    std::lock_guard<std::mutex> g(g_release_mu);
    g_release_open = false;
  });
  // Every op gets its autograd-layer kernel, as importing vibetensor does in Python.
  vt::autograd::install_autograd_kernels();
  exports.Set("setErrorClasses", Napi::Function::New(env, set_error_classes));
  init_tensor(env, exports);
  init_ops(env, exports);
  init_pool(env, exports);
  init_runtime(env, exports);
  init_cuda(env, exports);
  return exports;
}

}  // namespace vtjs

static Napi::Object InitVibetensor(Napi::Env env, Napi::Object exports) { return vtjs::init(env, exports); }
NODE_API_MODULE(vibetensor, InitVibetensor)
