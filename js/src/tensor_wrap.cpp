// Tensor handles (Note [Tensor handles]) and the native side of the Tensor class: metadata, autograd state,
// release, and data in and out of JS memory - copies (toTypedArray, fromTypedArray with copy) and zero-copy
// views (asTypedArray, and fromTypedArray without copy) for contiguous CPU tensors. lib/tensor.js calls these
// as native.tensor.<name>(t, ...).
//
// Note [Zero-copy buffers]
// A tensor made from a JS buffer without copying gets a Storage whose data is the buffer's memory; the Storage
// holds a strong reference to the ArrayBuffer and releases it on the main thread when the last tensor viewing it
// goes (Note [One thread touches JS]). A view of a tensor's memory handed to JS is an ArrayBuffer over the
// storage that keeps the Storage alive until the collector frees the ArrayBuffer. V8 must not see one block of
// memory as two ArrayBuffers, so each storage has at most one: the buffer it came from, or the one made first
// (a weak cache, per storage). Detaching (transferring) such an ArrayBuffer while a tensor uses it is undefined.
#include <cmath>
#include <cstring>
#include <unordered_map>

#include "pool.h"
#include "tensor_wrap.h"
#include "vt/autograd/node.h"
#include "vt/core/ops.h"

namespace vtjs {

namespace {
// Note [Tensor handles]: the table, and what the JS side registered.
struct Slot {
  vt::Tensor t;
  uint32_t gen = 0;
};
// Leaked on purpose: static destructors run after the JS environment is gone, where releasing a reference
// (or a CUDA tensor) is no longer valid; clear_handles empties the table while it still is.
std::vector<Slot>& g_slots = *new std::vector<Slot>();
std::vector<uint32_t>& g_free = *new std::vector<uint32_t>();
constexpr double kSlots = 16777216.0;  // 2^24
Napi::Reference<Napi::Symbol>& g_key = *new Napi::Reference<Napi::Symbol>();  // the property holding the handle
Napi::FunctionReference& g_make = *new Napi::FunctionReference();              // handle -> a new JS Tensor

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

// ---- Note [Tensor handles] ----
double put_tensor(vt::Tensor t) {
  uint32_t slot;
  if (!g_free.empty()) {
    slot = g_free.back();
    g_free.pop_back();
  } else {
    VT_CHECK(g_slots.size() < size_t(kSlots), "more than 2^24 live tensors from JavaScript");
    slot = uint32_t(g_slots.size());
    g_slots.emplace_back();
  }
  g_slots[slot].t = std::move(t);
  return double(g_slots[slot].gen) * kSlots + double(slot);
}

namespace {
// The slot of a live handle, or null for a stale or malformed one.
Slot* slot_of(double h) {
  if (!(h >= 0)) return nullptr;
  double gen = std::floor(h / kSlots);
  size_t slot = size_t(h - gen * kSlots);
  if (slot >= g_slots.size() || double(g_slots[slot].gen) != gen || !g_slots[slot].t.defined()) return nullptr;
  return &g_slots[slot];
}
}  // namespace

void clear_handles() {
  for (Slot& s : g_slots) s.t = vt::Tensor();
}

void release_handle(double h) {
  if (Slot* s = slot_of(h)) {
    s->t = vt::Tensor();
    ++s->gen;  // Note [Tensor lifetime]: the handle goes stale
    g_free.push_back(uint32_t(s - g_slots.data()));
  }
}

const vt::Tensor& tensor_of_handle(double h, const char* what) {
  Slot* s = slot_of(h);
  VT_CHECK_TYPE(s != nullptr, what, ": the tensor was disposed");
  return s->t;
}

const vt::Tensor* find_tensor(Napi::Env env, napi_value v, const char* what) {
  napi_valuetype type;
  if (napi_typeof(env, v, &type) != napi_ok || type != napi_object) return nullptr;
  napi_value hv;
  if (napi_get_property(env, v, g_key.Value(), &hv) != napi_ok) return nullptr;
  double h;
  if (napi_get_value_double(env, hv, &h) != napi_ok) return nullptr;  // not a tensor (no handle)
  Slot* s = slot_of(h);
  VT_CHECK_TYPE(s != nullptr, what, ": the tensor was disposed");
  return &s->t;
}

Napi::Value wrap_tensor(Napi::Env env, vt::Tensor t) {
  if (!t.defined()) return env.Null();
  return g_make.Call({Napi::Number::New(env, put_tensor(std::move(t)))});
}

namespace {
// The tensor argument 0 of a native Tensor method (`self`).
const vt::Tensor& self(const Napi::CallbackInfo& info, const char* what) {
  const vt::Tensor* t = find_tensor(info.Env(), info[0], what);
  VT_CHECK_TYPE(t != nullptr, what, ": expected a Tensor");
  return *t;
}

#define TENSOR_FN(name) Napi::Value name(const Napi::CallbackInfo& info)

TENSOR_FN(shape) {
  VTJS_TRY
  const vt::Tensor& t = self(info, "shape");
  Napi::Array a = Napi::Array::New(info.Env(), size_t(t.dim()));
  for (int64_t i = 0; i < t.dim(); ++i) a.Set(uint32_t(i), Napi::Number::New(info.Env(), double(t.sizes()[size_t(i)])));
  return a;
  VTJS_CATCH(info.Env())
}
TENSOR_FN(strides) {
  VTJS_TRY
  const vt::Tensor& t = self(info, "stride");
  Napi::Array a = Napi::Array::New(info.Env(), size_t(t.dim()));
  for (int64_t i = 0; i < t.dim(); ++i) a.Set(uint32_t(i), Napi::Number::New(info.Env(), double(t.strides()[size_t(i)])));
  return a;
  VTJS_CATCH(info.Env())
}
TENSOR_FN(dtype) {
  VTJS_TRY return Napi::String::New(info.Env(), std::string(vt::dtype_name(self(info, "dtype").dtype())));
  VTJS_CATCH(info.Env())
}
TENSOR_FN(device) {
  VTJS_TRY return Napi::String::New(info.Env(), self(info, "device").device().str());
  VTJS_CATCH(info.Env())
}
TENSOR_FN(ndim) {
  VTJS_TRY return Napi::Number::New(info.Env(), double(self(info, "ndim").dim()));
  VTJS_CATCH(info.Env())
}
TENSOR_FN(numel) {
  VTJS_TRY return Napi::Number::New(info.Env(), double(self(info, "numel").numel()));
  VTJS_CATCH(info.Env())
}
TENSOR_FN(storage_offset) {
  VTJS_TRY return Napi::Number::New(info.Env(), double(self(info, "storageOffset").storage_offset()));
  VTJS_CATCH(info.Env())
}
TENSOR_FN(is_contiguous) {
  VTJS_TRY return Napi::Boolean::New(info.Env(), self(info, "isContiguous").is_contiguous());
  VTJS_CATCH(info.Env())
}
// release(handle): the FinalizationRegistry's callback and dispose() (Note [Tensor lifetime]).
TENSOR_FN(release) {
  release_handle(info[0].As<Napi::Number>().DoubleValue());
  return info.Env().Undefined();
}
TENSOR_FN(release_many) {
  Napi::Array hs = info[0].As<Napi::Array>();
  for (uint32_t i = 0; i < hs.Length(); ++i) release_handle(hs.Get(i).As<Napi::Number>().DoubleValue());
  return info.Env().Undefined();
}
TENSOR_FN(is_live) { return Napi::Boolean::New(info.Env(), slot_of(info[0].As<Napi::Number>().DoubleValue()) != nullptr); }

// A copy of the elements in row-major order, in the typed array of the dtype; CUDA tensors are copied to the host.
TENSOR_FN(to_typed_array) {
  Napi::Env env = info.Env();
  VTJS_TRY
  const vt::Tensor& t = self(info, "toTypedArray");
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
TENSOR_FN(as_typed_array) {
  Napi::Env env = info.Env();
  VTJS_TRY
  const vt::Tensor& t = self(info, "asTypedArray");
  VT_CHECK_VALUE(t.device().is_cpu() && t.is_contiguous(), "asTypedArray(): needs a contiguous CPU tensor, got ",
                 t.is_contiguous() ? "one on " + t.device().str() : std::string("a non-contiguous one"),
                 "; toTypedArray() copies any tensor");
  wait_for_tensor(env, t);
  Napi::ArrayBuffer ab = buffer_of(env, t.storage());
  size_t offset = size_t(t.data_ptr() - static_cast<char*>(t.storage()->data()));
  return make_typed_array(env, typed_array_type(t.dtype()), size_t(t.numel()), ab, offset);
  VTJS_CATCH(env)
}

TENSOR_FN(item) {
  Napi::Env env = info.Env();
  VTJS_TRY
  const vt::Tensor& t = self(info, "item");
  VT_CHECK(t.numel() == 1, "a Tensor with ", t.numel(), " elements cannot be converted to Scalar");
  wait_for_tensor(env, t);
  vt::Tensor c = t.device().is_cpu() ? t : vt::ops::copy_(vt::empty_tensor({}, t.dtype(), vt::kCPU), t);
  return from_ivalue(env, vt::IValue{vt::item_scalar(c)});
  VTJS_CATCH(env)
}

TENSOR_FN(requires_grad) {
  VTJS_TRY return Napi::Boolean::New(info.Env(), vt::autograd::requires_grad(self(info, "requiresGrad")));
  VTJS_CATCH(info.Env())
}
TENSOR_FN(set_requires_grad) {
  VTJS_TRY
  VT_CHECK_TYPE(info[1].IsBoolean(), "requiresGrad must be a boolean");
  vt::autograd::set_requires_grad(self(info, "requiresGrad"), info[1].As<Napi::Boolean>().Value());
  return info.Env().Undefined();
  VTJS_CATCH(info.Env())
}
TENSOR_FN(grad) {
  VTJS_TRY
  vt::AutogradMeta* m = vt::autograd::meta_if(self(info, "grad"));
  return m ? wrap_tensor(info.Env(), m->grad) : info.Env().Null();
  VTJS_CATCH(info.Env())
}
// null clears the gradient (what an optimizer's zeroGrad does); a tensor must match in shape and dtype, with
// Python's messages.
TENSOR_FN(set_grad) {
  VTJS_TRY
  const vt::Tensor& t = self(info, "grad");
  if (info[1].IsNull() || info[1].IsUndefined()) {
    if (vt::AutogradMeta* m = vt::autograd::meta_if(t)) m->grad = vt::Tensor();
    return info.Env().Undefined();
  }
  vt::Tensor g = unwrap_tensor(info[1], "grad");  // a reference of its own: gcc 13 cannot see the table owns it
  VT_CHECK(std::equal(g.sizes().begin(), g.sizes().end(), t.sizes().begin(), t.sizes().end()),
           "assigned grad has data of a different size: ", vt::shape_str(g.sizes()), " vs ", vt::shape_str(t.sizes()));
  VT_CHECK(g.dtype() == t.dtype(), "assigned grad has data of a different type: ", vt::dtype_name(g.dtype()), " vs ",
           vt::dtype_name(t.dtype()));
  vt::autograd::meta(t).grad = g;
  return info.Env().Undefined();
  VTJS_CATCH(info.Env())
}
TENSOR_FN(is_leaf) {
  VTJS_TRY return Napi::Boolean::New(info.Env(), vt::autograd::is_leaf(self(info, "isLeaf")));
  VTJS_CATCH(info.Env())
}
TENSOR_FN(grad_fn) {
  VTJS_TRY
  std::shared_ptr<vt::autograd::Node> n = vt::autograd::grad_fn(self(info, "gradFn"));
  return n ? Napi::String::New(info.Env(), n->name()) : info.Env().Null();
  VTJS_CATCH(info.Env())
}
TENSOR_FN(detach) {
  VTJS_TRY return wrap_tensor(info.Env(), vt::autograd::detach(self(info, "detach")));
  VTJS_CATCH(info.Env())
}
TENSOR_FN(version) {
  VTJS_TRY return Napi::Number::New(info.Env(), double(self(info, "_version").storage()->version()));
  VTJS_CATCH(info.Env())
}
TENSOR_FN(storage_id) {
  VTJS_TRY return Napi::Number::New(info.Env(), double(reinterpret_cast<uintptr_t>(self(info, "_storageId").storage().get())));
  VTJS_CATCH(info.Env())
}
// setup(key, make): the symbol JS tensors keep their handle under, and the function that makes one.
TENSOR_FN(setup) {
  g_key = Napi::Persistent(info[0].As<Napi::Symbol>());
  g_make = Napi::Persistent(info[1].As<Napi::Function>());
  return info.Env().Undefined();
}
}  // namespace

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
    return wrap_tensor(env, std::move(t));
  }
  Napi::ArrayBuffer ab = ta.ArrayBuffer();
  auto* hold = new BufferHold{Napi::Persistent(ab)};
  // The storage spans the whole ArrayBuffer so that asTypedArray() can hand back this very buffer.
  auto st = std::make_shared<vt::Storage>(vt::DataPtr(ab.Data(), hold, &release_buffer), ab.ByteLength(), vt::kCPU);
  hold->storage = st.get();
  buffer_cache()[st.get()] = Napi::Weak(ab);
  auto impl = std::make_shared<vt::TensorImpl>(st, dt, shape, vt::contiguous_strides(shape),
                                              int64_t(ta.ByteOffset()) / vt::itemsize(dt));
  return wrap_tensor(env, vt::Tensor(std::move(impl)));
  VTJS_CATCH(env)
}
}  // namespace

void init_tensor(Napi::Env env, Napi::Object exports) {
  Napi::Object t = Napi::Object::New(env);
  auto fn = [&](const char* name, Napi::Function::Callback f) { t.Set(name, Napi::Function::New(env, f, name)); };
  fn("setup", setup);
  fn("shape", shape);
  fn("stride", strides);
  fn("dtype", dtype);
  fn("device", device);
  fn("ndim", ndim);
  fn("numel", numel);
  fn("storageOffset", storage_offset);
  fn("isContiguous", is_contiguous);
  fn("release", release);
  fn("releaseMany", release_many);
  fn("isLive", is_live);
  fn("toTypedArray", to_typed_array);
  fn("asTypedArray", as_typed_array);
  fn("item", item);
  fn("requiresGrad", requires_grad);
  fn("setRequiresGrad", set_requires_grad);
  fn("grad", grad);
  fn("setGrad", set_grad);
  fn("isLeaf", is_leaf);
  fn("gradFn", grad_fn);
  fn("detach", detach);
  fn("version", version);
  fn("storageId", storage_id);
  exports.Set("tensor", t);
  exports.Set("fromTypedArray", Napi::Function::New(env, from_typed_array));
}

}  // namespace vtjs
