// The Tensor class seen from JavaScript: metadata getters, autograd state, dispose(), and data in and out of
// JS memory - copies (toTypedArray, fromTypedArray with copy) and zero-copy views (asTypedArray, and
// fromTypedArray without copy) for contiguous CPU tensors.
//
// Note [Zero-copy buffers]
// A tensor made from a JS buffer without copying gets a Storage whose data is the buffer's memory; the Storage
// holds a strong reference to the ArrayBuffer and releases it on the main thread when the last tensor viewing it
// goes (Note [One thread touches JS]). A view of a tensor's memory handed to JS is an ArrayBuffer over the
// storage that keeps the Storage alive until the collector frees the ArrayBuffer. V8 must not see one block of
// memory as two ArrayBuffers, so each storage has at most one: the buffer it came from, or the one made first
// (a weak cache, per storage). Detaching (transferring) such an ArrayBuffer while a tensor uses it is undefined.
#include <cstring>
#include <unordered_map>

#include "pool.h"
#include "tensor_wrap.h"
#include "vt/autograd/node.h"
#include "vt/core/ops.h"

namespace vtjs {

namespace {
const napi_type_tag kTensorTag = {0x7674656e736f7231ULL, 0x6a73746167000001ULL};
vt::Tensor* g_pending = nullptr;  // the tensor the next constructor call adopts (wrap)

// Note [Zero-copy buffers]: storage -> its one ArrayBuffer (weak). Touched on the JS thread only.
std::unordered_map<const vt::Storage*, Napi::Reference<Napi::ArrayBuffer>>& buffer_cache() {
  static auto* m = new std::unordered_map<const vt::Storage*, Napi::Reference<Napi::ArrayBuffer>>();
  return *m;
}

Napi::ArrayBuffer buffer_of(Napi::Env env, const std::shared_ptr<vt::Storage>& st) {
  auto& cache = buffer_cache();
  if (auto it = cache.find(st.get()); it != cache.end() && !it->second.IsEmpty()) {
    Napi::Value v = it->second.Value();
    if (!v.IsEmpty() && v.IsArrayBuffer()) return v.As<Napi::ArrayBuffer>();
  }
  auto* keep = new std::shared_ptr<vt::Storage>(st);
  Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, st->data(), st->nbytes(), [](Napi::Env, void*, std::shared_ptr<vt::Storage>* k) {
    auto& c = buffer_cache();
    if (auto it = c.find(k->get()); it != c.end()) c.erase(it);
    delete k;
  }, keep);
  cache[st.get()] = Napi::Weak(ab);
  return ab;
}
// A typed array of `type` over `length` elements of `ab` from `offset` bytes (node-addon-api keeps this
// constructor to its typed subclasses).
Napi::Value make_typed_array(Napi::Env env, napi_typedarray_type type, size_t length, Napi::ArrayBuffer ab,
                             size_t offset) {
  napi_value out;
  napi_status st = napi_create_typedarray(env, type, length, ab, offset, &out);
  NAPI_THROW_IF_FAILED(env, st, Napi::Value());
  return Napi::Value(env, out);
}
}  // namespace

napi_typedarray_type typed_array_type(vt::ScalarType dt) {
  switch (dt) {
    case vt::ScalarType::Bool:
    case vt::ScalarType::UInt8: return napi_uint8_array;
    case vt::ScalarType::Int8: return napi_int8_array;
    case vt::ScalarType::Int16: return napi_int16_array;
    case vt::ScalarType::Int32: return napi_int32_array;
    case vt::ScalarType::Int64: return napi_bigint64_array;
    case vt::ScalarType::Float16:
    case vt::ScalarType::BFloat16: return napi_uint16_array;
    case vt::ScalarType::Float32: return napi_float32_array;
    case vt::ScalarType::Float64: return napi_float64_array;
  }
  return napi_uint8_array;
}

Napi::Function JsTensor::define(Napi::Env env) {
  return DefineClass(env, "Tensor", {
      InstanceAccessor<&JsTensor::shape>("shape"),
      InstanceAccessor<&JsTensor::dtype>("dtype"),
      InstanceAccessor<&JsTensor::device>("device"),
      InstanceAccessor<&JsTensor::ndim>("ndim"),
      InstanceMethod<&JsTensor::numel>("numel"),
      InstanceMethod<&JsTensor::strides>("stride"),
      InstanceMethod<&JsTensor::storage_offset>("storageOffset"),
      InstanceMethod<&JsTensor::is_contiguous>("isContiguous"),
      InstanceAccessor<&JsTensor::disposed>("disposed"),
      InstanceMethod<&JsTensor::dispose>("dispose"),
      InstanceMethod<&JsTensor::to_typed_array>("toTypedArray"),
      InstanceMethod<&JsTensor::array_buffer>("asTypedArray"),
      InstanceMethod<&JsTensor::item>("item"),
      InstanceAccessor<&JsTensor::requires_grad, &JsTensor::set_requires_grad>("requiresGrad"),
      InstanceAccessor<&JsTensor::grad, &JsTensor::set_grad>("grad"),
      InstanceAccessor<&JsTensor::is_leaf>("isLeaf"),
      InstanceAccessor<&JsTensor::grad_fn>("gradFn"),
      InstanceMethod<&JsTensor::detach>("detach"),
      InstanceAccessor<&JsTensor::version>("_version"),
      InstanceAccessor<&JsTensor::storage_id>("_storageId"),
  });
}

bool JsTensor::is_instance(const Napi::Object& o) {
  bool tagged = false;
  napi_check_object_type_tag(o.Env(), o, &kTensorTag, &tagged);
  return tagged;
}

Napi::Object JsTensor::wrap(Napi::Env env, vt::Tensor t) {
  g_pending = &t;
  Napi::Object o = state(env).tensor_ctor.New({});
  g_pending = nullptr;
  return o;
}

JsTensor::JsTensor(const Napi::CallbackInfo& info) : Napi::ObjectWrap<JsTensor>(info) {
  if (!g_pending) {
    throw make_error(info.Env(), "TypeError",
                     "Tensor objects are made by vibetensor's factories (tensor, zeros, fromTypedArray, ...), not by new");
  }
  t_ = std::move(*g_pending);
  g_pending = nullptr;
  napi_type_tag_object(info.Env(), info.This(), &kTensorTag);
}

Napi::Value JsTensor::shape(const Napi::CallbackInfo& info) {
  VTJS_TRY
  const vt::Tensor& t = tensor("shape");
  Napi::Array a = Napi::Array::New(info.Env(), size_t(t.dim()));
  for (int64_t i = 0; i < t.dim(); ++i) a.Set(uint32_t(i), Napi::Number::New(info.Env(), double(t.sizes()[size_t(i)])));
  return a;
  VTJS_CATCH(info.Env())
}
Napi::Value JsTensor::strides(const Napi::CallbackInfo& info) {
  VTJS_TRY
  const vt::Tensor& t = tensor("stride");
  Napi::Array a = Napi::Array::New(info.Env(), size_t(t.dim()));
  for (int64_t i = 0; i < t.dim(); ++i) a.Set(uint32_t(i), Napi::Number::New(info.Env(), double(t.strides()[size_t(i)])));
  return a;
  VTJS_CATCH(info.Env())
}
Napi::Value JsTensor::dtype(const Napi::CallbackInfo& info) {
  VTJS_TRY return Napi::String::New(info.Env(), std::string(vt::dtype_name(tensor("dtype").dtype())));
  VTJS_CATCH(info.Env())
}
Napi::Value JsTensor::device(const Napi::CallbackInfo& info) {
  VTJS_TRY return Napi::String::New(info.Env(), tensor("device").device().str());
  VTJS_CATCH(info.Env())
}
Napi::Value JsTensor::ndim(const Napi::CallbackInfo& info) {
  VTJS_TRY return Napi::Number::New(info.Env(), double(tensor("ndim").dim()));
  VTJS_CATCH(info.Env())
}
Napi::Value JsTensor::numel(const Napi::CallbackInfo& info) {
  VTJS_TRY return Napi::Number::New(info.Env(), double(tensor("numel").numel()));
  VTJS_CATCH(info.Env())
}
Napi::Value JsTensor::storage_offset(const Napi::CallbackInfo& info) {
  VTJS_TRY return Napi::Number::New(info.Env(), double(tensor("storageOffset").storage_offset()));
  VTJS_CATCH(info.Env())
}
Napi::Value JsTensor::is_contiguous(const Napi::CallbackInfo& info) {
  VTJS_TRY return Napi::Boolean::New(info.Env(), tensor("isContiguous").is_contiguous());
  VTJS_CATCH(info.Env())
}
Napi::Value JsTensor::disposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !t_.defined()); }
Napi::Value JsTensor::dispose(const Napi::CallbackInfo& info) {
  t_ = vt::Tensor();  // Note [Tensor lifetime]
  return info.Env().Undefined();
}

// A copy of the elements in row-major order, in the typed array of the dtype; CUDA tensors are copied to the host.
Napi::Value JsTensor::to_typed_array(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VTJS_TRY
  const vt::Tensor& t = tensor("toTypedArray");
  wait_for_tensor(env, t);
  vt::Tensor c = t;
  if (!c.device().is_cpu()) c = vt::ops::copy_(vt::empty_tensor(t.sizes(), t.dtype(), vt::kCPU), t);
  else if (!c.is_contiguous()) c = vt::ops::contiguous(t);
  size_t n = size_t(c.nbytes());
  Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, n);
  if (n) std::memcpy(ab.Data(), c.data_ptr(), n);
  return make_typed_array(env, typed_array_type(t.dtype()), size_t(c.numel()), ab, 0);
  VTJS_CATCH(env)
}

// Note [Zero-copy buffers]: a typed array over the tensor's own memory; writes through it change the tensor.
Napi::Value JsTensor::array_buffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VTJS_TRY
  const vt::Tensor& t = tensor("asTypedArray");
  VT_CHECK_VALUE(t.device().is_cpu() && t.is_contiguous(), "asTypedArray(): needs a contiguous CPU tensor, got ",
                 t.is_contiguous() ? "one on " + t.device().str() : std::string("a non-contiguous one"),
                 "; toTypedArray() copies any tensor");
  wait_for_tensor(env, t);
  Napi::ArrayBuffer ab = buffer_of(env, t.storage());
  size_t offset = size_t(t.data_ptr() - static_cast<char*>(t.storage()->data()));
  return make_typed_array(env, typed_array_type(t.dtype()), size_t(t.numel()), ab, offset);
  VTJS_CATCH(env)
}

Napi::Value JsTensor::item(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VTJS_TRY
  const vt::Tensor& t = tensor("item");
  VT_CHECK(t.numel() == 1, "a Tensor with ", t.numel(), " elements cannot be converted to Scalar");
  wait_for_tensor(env, t);
  vt::Tensor c = t.device().is_cpu() ? t : vt::ops::copy_(vt::empty_tensor({}, t.dtype(), vt::kCPU), t);
  return from_ivalue(env, vt::IValue{vt::item_scalar(c)});
  VTJS_CATCH(env)
}

Napi::Value JsTensor::requires_grad(const Napi::CallbackInfo& info) {
  VTJS_TRY return Napi::Boolean::New(info.Env(), vt::autograd::requires_grad(tensor("requiresGrad")));
  VTJS_CATCH(info.Env())
}
void JsTensor::set_requires_grad(const Napi::CallbackInfo& info, const Napi::Value& v) {
  VTJS_TRY
  VT_CHECK_TYPE(v.IsBoolean(), "requiresGrad must be a boolean");
  vt::autograd::set_requires_grad(tensor("requiresGrad"), v.As<Napi::Boolean>().Value());
  VTJS_CATCH(info.Env())
}
Napi::Value JsTensor::grad(const Napi::CallbackInfo& info) {
  VTJS_TRY
  vt::AutogradMeta* m = vt::autograd::meta_if(tensor("grad"));
  return m ? wrap_tensor(info.Env(), m->grad) : info.Env().Null();
  VTJS_CATCH(info.Env())
}
// null clears the gradient (what an optimizer's zeroGrad does); a tensor must match in shape and dtype, with
// Python's messages.
void JsTensor::set_grad(const Napi::CallbackInfo& info, const Napi::Value& v) {
  VTJS_TRY
  const vt::Tensor& t = tensor("grad");
  if (v.IsNull() || v.IsUndefined()) {
    if (vt::AutogradMeta* m = vt::autograd::meta_if(t)) m->grad = vt::Tensor();
    return;
  }
  const vt::Tensor& g = unwrap_tensor(v, "grad");
  VT_CHECK(std::equal(g.sizes().begin(), g.sizes().end(), t.sizes().begin(), t.sizes().end()),
           "assigned grad has data of a different size: ", vt::shape_str(g.sizes()), " vs ", vt::shape_str(t.sizes()));
  VT_CHECK(g.dtype() == t.dtype(), "assigned grad has data of a different type: ", vt::dtype_name(g.dtype()), " vs ",
           vt::dtype_name(t.dtype()));
  vt::autograd::meta(t).grad = g;
  VTJS_CATCH(info.Env())
}
Napi::Value JsTensor::is_leaf(const Napi::CallbackInfo& info) {
  VTJS_TRY return Napi::Boolean::New(info.Env(), vt::autograd::is_leaf(tensor("isLeaf")));
  VTJS_CATCH(info.Env())
}
Napi::Value JsTensor::grad_fn(const Napi::CallbackInfo& info) {
  VTJS_TRY
  std::shared_ptr<vt::autograd::Node> n = vt::autograd::grad_fn(tensor("gradFn"));
  return n ? Napi::String::New(info.Env(), n->name()) : info.Env().Null();
  VTJS_CATCH(info.Env())
}
Napi::Value JsTensor::detach(const Napi::CallbackInfo& info) {
  VTJS_TRY return wrap(info.Env(), vt::autograd::detach(tensor("detach")));
  VTJS_CATCH(info.Env())
}
Napi::Value JsTensor::version(const Napi::CallbackInfo& info) {
  VTJS_TRY return Napi::Number::New(info.Env(), double(tensor("_version").storage()->version()));
  VTJS_CATCH(info.Env())
}
Napi::Value JsTensor::storage_id(const Napi::CallbackInfo& info) {
  VTJS_TRY return Napi::Number::New(info.Env(), double(reinterpret_cast<uintptr_t>(tensor("_storageId").storage().get())));
  VTJS_CATCH(info.Env())
}

namespace {
struct BufferHold {
  Napi::Reference<Napi::ArrayBuffer> ref;
  const vt::Storage* storage = nullptr;  // the cache key, erased with the storage
};
void release_buffer(void* ctx) {
  auto* h = static_cast<BufferHold*>(ctx);
  release_on_main_thread([h] {  // Note [Zero-copy buffers]
    buffer_cache().erase(h->storage);
    delete h;
  });
}

// fromTypedArray(typedArray, shape, dtype, copy): a CPU tensor over (or copied from) the typed array's bytes.
// dtype defaults to the typed array's own (Uint8Array -> uint8, Float32Array -> float32, ...).
Napi::Value from_typed_array(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VTJS_TRY
  VT_CHECK_TYPE(info[0].IsTypedArray(), "fromTypedArray(): expected a typed array");
  Napi::TypedArray ta = info[0].As<Napi::TypedArray>();
  vt::ScalarType dt = to_dtype(info[2]);
  std::vector<int64_t> shape = to_int_list(info[1], "fromTypedArray", "shape");
  bool copy = info[3].ToBoolean().Value();
  int64_t numel = 1;
  for (int64_t s : shape) {
    VT_CHECK_VALUE(s >= 0, "fromTypedArray(): negative dimension ", s, " in shape ", vt::shape_str(shape));
    numel *= s;
  }
  size_t nbytes = size_t(numel * vt::itemsize(dt));
  VT_CHECK_VALUE(ta.ByteLength() == nbytes, "fromTypedArray(): shape ", vt::shape_str(shape), " of ",
                 vt::dtype_name(dt), " needs ", nbytes, " bytes, the array has ", ta.ByteLength());
  char* src = static_cast<char*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
  if (copy || reinterpret_cast<uintptr_t>(src) % size_t(vt::itemsize(dt)) != 0) {
    vt::Tensor t = vt::empty_tensor(shape, dt, vt::kCPU);
    if (nbytes) std::memcpy(t.data_ptr(), src, nbytes);
    return JsTensor::wrap(env, std::move(t));
  }
  Napi::ArrayBuffer ab = ta.ArrayBuffer();
  auto* hold = new BufferHold{Napi::Persistent(ab)};
  // The storage spans the whole ArrayBuffer so that asTypedArray() can hand back this very buffer.
  auto st = std::make_shared<vt::Storage>(vt::DataPtr(ab.Data(), hold, &release_buffer), ab.ByteLength(), vt::kCPU);
  hold->storage = st.get();
  buffer_cache()[st.get()] = Napi::Weak(ab);
  auto impl = std::make_shared<vt::TensorImpl>(st, dt, shape, vt::contiguous_strides(shape),
                                              int64_t(ta.ByteOffset()) / vt::itemsize(dt));
  return JsTensor::wrap(env, vt::Tensor(std::move(impl)));
  VTJS_CATCH(env)
}
}  // namespace

void init_tensor(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = JsTensor::define(env);
  state(env).tensor_ctor = Napi::Persistent(ctor);
  exports.Set("Tensor", ctor);
  exports.Set("fromTypedArray", Napi::Function::New(env, from_typed_array));
}

}  // namespace vtjs
