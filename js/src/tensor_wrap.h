#pragma once
// JsTensor: the JavaScript Tensor object, a handle on one vt::Tensor (the same TensorImpl Python would hold).
//
// Note [Tensor lifetime]
// A JsTensor owns one reference to its TensorImpl. The garbage collector's finalizer drops it; dispose() drops
// it at once, and any later use of the object raises a TypeError naming the use. Work already queued on the
// worker pool holds references of its own, so disposing a tensor that queued work reads is safe: the memory
// goes when the last of them does.
#include "common.h"

namespace vtjs {

class JsTensor : public Napi::ObjectWrap<JsTensor> {
 public:
  static Napi::Function define(Napi::Env env);
  static bool is_instance(const Napi::Object& o);
  static Napi::Object wrap(Napi::Env env, vt::Tensor t);

  explicit JsTensor(const Napi::CallbackInfo& info);
  // The tensor, or TypeError naming `what` when disposed (Note [Tensor lifetime]).
  const vt::Tensor& tensor(const char* what) const {
    VT_CHECK_TYPE(t_.defined(), what, ": the tensor was disposed");
    return t_;
  }

 private:
  Napi::Value shape(const Napi::CallbackInfo& info);
  Napi::Value dtype(const Napi::CallbackInfo& info);
  Napi::Value device(const Napi::CallbackInfo& info);
  Napi::Value ndim(const Napi::CallbackInfo& info);
  Napi::Value numel(const Napi::CallbackInfo& info);
  Napi::Value strides(const Napi::CallbackInfo& info);
  Napi::Value storage_offset(const Napi::CallbackInfo& info);
  Napi::Value is_contiguous(const Napi::CallbackInfo& info);
  Napi::Value disposed(const Napi::CallbackInfo& info);
  Napi::Value dispose(const Napi::CallbackInfo& info);
  Napi::Value to_typed_array(const Napi::CallbackInfo& info);
  Napi::Value array_buffer(const Napi::CallbackInfo& info);
  Napi::Value item(const Napi::CallbackInfo& info);
  Napi::Value requires_grad(const Napi::CallbackInfo& info);
  void set_requires_grad(const Napi::CallbackInfo& info, const Napi::Value& v);
  Napi::Value grad(const Napi::CallbackInfo& info);
  void set_grad(const Napi::CallbackInfo& info, const Napi::Value& v);
  Napi::Value is_leaf(const Napi::CallbackInfo& info);
  Napi::Value grad_fn(const Napi::CallbackInfo& info);
  Napi::Value detach(const Napi::CallbackInfo& info);
  Napi::Value version(const Napi::CallbackInfo& info);
  Napi::Value storage_id(const Napi::CallbackInfo& info);

  vt::Tensor t_;
};

// The typed-array kind that holds a dtype's elements (float16/bfloat16 as their raw 16-bit patterns).
napi_typedarray_type typed_array_type(vt::ScalarType dt);

}  // namespace vtjs
