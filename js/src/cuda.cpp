// CUDA from JavaScript: device count, synchronize, the caching allocator's statistics and snapshot, streams
// (current, pool, set, query, synchronize) and events (record, query, synchronize, wait, elapsed time).
// Streams cross into JS as {device, handle} pairs with the handle as a BigInt (a cudaStream_t value, 0 for
// the legacy default stream); events as small objects owning a vt::cuda::Event. Every call checks the device
// exists first, so without a GPU each raises the core's "no CUDA device" style RuntimeError.
#include "common.h"
#include "vt/cuda/check.h"
#include "vt/cuda/device.h"
#include "vt/cuda/event.h"
#include "vt/cuda/guard.h"
#include "vt/cuda/kernel_errors.h"
#include "vt/cuda/memory.h"

namespace vtjs {

namespace {
using vt::cuda::Stream;

int device_arg(const Napi::Value& v) {
  int d = v.IsNumber() ? v.As<Napi::Number>().Int32Value() : vt::cuda::current_device();
  vt::cuda::check_device(vt::Device(vt::DeviceType::CUDA, d));
  return d;
}
Napi::Value stream_js(Napi::Env env, Stream s) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("device", s.device);
  o.Set("handle", Napi::BigInt::New(env, uint64_t(s.handle)));
  return o;
}
Stream stream_arg(const Napi::Value& v) {
  VT_CHECK_TYPE(v.IsObject(), "expected a stream {device, handle}");
  Napi::Object o = v.As<Napi::Object>();
  bool lossless = false;
  Stream s{device_arg(o.Get("device")), vt::cuda::StreamId(o.Get("handle").As<Napi::BigInt>().Uint64Value(&lossless))};
  return s;
}

Napi::Object stats_object(Napi::Env env, const vt::cuda::Stats& s) {
  Napi::Object o = Napi::Object::New(env);
  for (const auto& [key, value] : vt::cuda::stats_entries(s)) o.Set(key, double(value));
  return o;
}

#define FN(name) Napi::Value name(const Napi::CallbackInfo& info)

FN(device_count) { return Napi::Number::New(info.Env(), vt::cuda::device_count()); }
FN(is_available) { return Napi::Boolean::New(info.Env(), vt::cuda::is_available()); }
FN(unavailable_reason) { return Napi::String::New(info.Env(), vt::cuda::unavailable_reason()); }
FN(synchronize) {
  VTJS_TRY
  vt::cuda::DeviceGuard g(device_arg(info[0]));
  VT_CUDA_CHECK(cudaDeviceSynchronize());
  vt::cuda::raise_kernel_errors();  // Note [Deferred kernel errors]
  return info.Env().Undefined();
  VTJS_CATCH(info.Env())
}
FN(memory_stats) {
  VTJS_TRY return stats_object(info.Env(), vt::cuda::device_allocator(device_arg(info[0])).stats());
  VTJS_CATCH(info.Env())
}
// memorySnapshot(device): the segments of the device's allocator, torch's snapshot fields.
FN(memory_snapshot) {
  Napi::Env env = info.Env();
  VTJS_TRY
  std::vector<vt::cuda::SegmentInfo> segs = vt::cuda::device_allocator(device_arg(info[0])).snapshot();
  Napi::Array out = Napi::Array::New(env, segs.size());
  for (size_t i = 0; i < segs.size(); ++i) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("address", Napi::BigInt::New(env, uint64_t(segs[i].address)));
    o.Set("total_size", double(segs[i].total_size));
    o.Set("allocated_size", double(segs[i].allocated_size));
    o.Set("active_size", double(segs[i].active_size));
    o.Set("requested_size", double(segs[i].requested_size));
    o.Set("segment_type", segs[i].segment_type);
    o.Set("stream", Napi::BigInt::New(env, uint64_t(segs[i].stream)));
    o.Set("blocks", double(segs[i].blocks.size()));
    out.Set(uint32_t(i), o);
  }
  return out;
  VTJS_CATCH(env)
}
FN(empty_cache) {
  VTJS_TRY
  for (int i = 0; i < vt::cuda::device_count(); ++i) vt::cuda::device_allocator(i).empty_cache();
  return info.Env().Undefined();
  VTJS_CATCH(info.Env())
}
FN(reset_peak) {
  VTJS_TRY
  vt::cuda::device_allocator(device_arg(info[0])).reset_peak_stats();
  return info.Env().Undefined();
  VTJS_CATCH(info.Env())
}
FN(current_stream) {
  VTJS_TRY return stream_js(info.Env(), vt::cuda::current(device_arg(info[0])));
  VTJS_CATCH(info.Env())
}
FN(default_stream) {
  VTJS_TRY
  int d = device_arg(info[0]);
  return stream_js(info.Env(), Stream{d, vt::cuda::default_stream(d)});
  VTJS_CATCH(info.Env())
}
FN(pool_stream) {
  VTJS_TRY
  int d = device_arg(info[0]);
  int priority = info[1].IsNumber() ? info[1].As<Napi::Number>().Int32Value() : 0;
  return stream_js(info.Env(), Stream{d, vt::cuda::pool_stream(d, priority)});
  VTJS_CATCH(info.Env())
}
FN(set_current_stream) {
  VTJS_TRY
  Stream s = stream_arg(info[0]);
  vt::cuda::set_current_stream(s.device, s.handle);
  return info.Env().Undefined();
  VTJS_CATCH(info.Env())
}
FN(stream_query) {
  VTJS_TRY
  Stream s = stream_arg(info[0]);
  vt::cuda::DeviceGuard g(s.device);
  cudaError_t e = cudaStreamQuery(s.native());
  if (e == cudaErrorNotReady) {
    cudaGetLastError();
    return Napi::Boolean::New(info.Env(), false);
  }
  VT_CUDA_CHECK(e);
  vt::cuda::raise_kernel_errors();
  return Napi::Boolean::New(info.Env(), true);
  VTJS_CATCH(info.Env())
}
FN(stream_synchronize) {
  VTJS_TRY
  Stream s = stream_arg(info[0]);
  vt::cuda::DeviceGuard g(s.device);
  VT_CUDA_CHECK(cudaStreamSynchronize(s.native()));
  vt::cuda::raise_kernel_errors();
  return info.Env().Undefined();
  VTJS_CATCH(info.Env())
}

// Events: {device, _id} objects over vt::cuda::Event, freed by the collector or by dispose().
class JsEvent : public Napi::ObjectWrap<JsEvent> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "Event", {
        InstanceMethod<&JsEvent::record>("record"),
        InstanceMethod<&JsEvent::query>("query"),
        InstanceMethod<&JsEvent::synchronize>("synchronize"),
        InstanceMethod<&JsEvent::wait>("wait"),
        InstanceMethod<&JsEvent::elapsed>("elapsedTime"),
        InstanceMethod<&JsEvent::dispose>("dispose"),
    });
  }
  // new Event(device, timing)
  explicit JsEvent(const Napi::CallbackInfo& info) : Napi::ObjectWrap<JsEvent>(info) {
    VTJS_TRY
    int d = device_arg(info[0]);
    ev_ = std::make_unique<vt::cuda::Event>(d, info[1].ToBoolean().Value());
    VTJS_CATCH(info.Env())
  }

 private:
  vt::cuda::Event& ev() {
    VT_CHECK_TYPE(ev_ != nullptr, "Event: the event was disposed");
    return *ev_;
  }
  Napi::Value record(const Napi::CallbackInfo& info) {
    VTJS_TRY
    vt::cuda::Event& e = ev();
    e.record(info[0].IsObject() ? stream_arg(info[0]) : vt::cuda::current(e.device()));
    return info.Env().Undefined();
    VTJS_CATCH(info.Env())
  }
  Napi::Value query(const Napi::CallbackInfo& info) {
    VTJS_TRY
    const bool done = ev().query();
    if (done) vt::cuda::raise_kernel_errors();
    return Napi::Boolean::New(info.Env(), done);
    VTJS_CATCH(info.Env())
  }
  Napi::Value synchronize(const Napi::CallbackInfo& info) {
    VTJS_TRY
    ev().synchronize();
    return info.Env().Undefined();
    VTJS_CATCH(info.Env())
  }
  // wait(stream?): work queued later on the stream (default: the current one of the event's device) waits.
  Napi::Value wait(const Napi::CallbackInfo& info) {
    VTJS_TRY
    vt::cuda::Event& e = ev();
    e.block(info[0].IsObject() ? stream_arg(info[0]) : vt::cuda::current(e.device()));
    return info.Env().Undefined();
    VTJS_CATCH(info.Env())
  }
  Napi::Value elapsed(const Napi::CallbackInfo& info) {
    VTJS_TRY
    JsEvent* end = JsEvent::Unwrap(info[0].As<Napi::Object>());
    float ms = 0;
    VT_CUDA_CHECK(cudaEventElapsedTime(&ms, ev().native(), end->ev().native()));
    return Napi::Number::New(info.Env(), ms);
    VTJS_CATCH(info.Env())
  }
  Napi::Value dispose(const Napi::CallbackInfo& info) {
    ev_.reset();
    return info.Env().Undefined();
  }
  std::unique_ptr<vt::cuda::Event> ev_;
};

}  // namespace

void init_cuda(Napi::Env env, Napi::Object exports) {
  Napi::Object c = Napi::Object::New(env);
  c.Set("deviceCount", Napi::Function::New(env, device_count));
  c.Set("isAvailable", Napi::Function::New(env, is_available));
  c.Set("unavailableReason", Napi::Function::New(env, unavailable_reason));
  c.Set("synchronize", Napi::Function::New(env, synchronize));
  c.Set("memoryStats", Napi::Function::New(env, memory_stats));
  c.Set("memorySnapshot", Napi::Function::New(env, memory_snapshot));
  c.Set("emptyCache", Napi::Function::New(env, empty_cache));
  c.Set("resetPeakMemoryStats", Napi::Function::New(env, reset_peak));
  c.Set("currentStream", Napi::Function::New(env, current_stream));
  c.Set("defaultStream", Napi::Function::New(env, default_stream));
  c.Set("poolStream", Napi::Function::New(env, pool_stream));
  c.Set("setCurrentStream", Napi::Function::New(env, set_current_stream));
  c.Set("streamQuery", Napi::Function::New(env, stream_query));
  c.Set("streamSynchronize", Napi::Function::New(env, stream_synchronize));
  c.Set("Event", JsEvent::define(env));
  exports.Set("cuda", c);
}

}  // namespace vtjs
