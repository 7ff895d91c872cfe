#pragma once
// JS tensors are plain JavaScript objects (lib/tensor.js) holding a handle: a slot of this table, which owns one
// reference to the tensor's TensorImpl (the same object Python would hold).
//
// Note [Tensor handles]
// A handle is a number, generation * 2^24 + slot. The JS object keeps it under a private symbol; the addon reads
// it back with one property lookup. Objects are made by a JS function (new Tensor + one FinalizationRegistry
// entry), which costs a fraction of an N-API wrapped object (a weak reference and a deferred finalizer each):
// on tiny ops that was most of the call. The table is touched on the JS thread only (Note [One thread touches
// JS]); workers hold Tensors of their own.
//
// Note [Tensor lifetime]
// The garbage collector's FinalizationRegistry callback releases the slot; dispose() releases it at once and
// bumps its generation, so the late callback of a disposed tensor, or any later use of the object, finds a
// stale handle (use raises a TypeError naming it). Work queued on the pool holds references of its own, so
// disposing a tensor that queued work reads is safe: the memory goes when the last of them does.
#include "common.h"

namespace vtjs {

// The handle of a new slot holding `t`.
double put_tensor(vt::Tensor t);
// The tensor of a JS value: null when the value is not a tensor object; TypeError naming `what` when it is one
// whose handle was released.
const vt::Tensor* find_tensor(Napi::Env env, napi_value v, const char* what);
// The tensor of a handle that lib/ read from a Tensor object itself (the typed paths, Note [Handles from JS]);
// TypeError naming `what` when it was released.
const vt::Tensor& tensor_of_handle(double h, const char* what);
// Releases a handle (a no-op for a stale one).
void release_handle(double h);
// Drops every tensor of the table (at environment teardown).
void clear_handles();

// The typed-array kind that holds a dtype's elements (float16/bfloat16 as their raw 16-bit patterns).
napi_typedarray_type typed_array_type(vt::ScalarType dt);

}  // namespace vtjs
