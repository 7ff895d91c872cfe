// DLPack capsules: Tensor.__dlpack__ / __dlpack_device__ and from_dlpack for any producer (NumPy, PyTorch,
// CuPy, ...). Capsules are "dltensor" (legacy) or "dltensor_versioned" (DLPack >= 1.0, given when the consumer
// passes max_version >= (1, 0)); a consumed capsule is renamed "used_..." so it cannot be imported twice.
#include <nanobind/stl/optional.h>
#include <nanobind/stl/tuple.h>

#include "common.h"
#include "vt/core/ops.h"
#include "vt/cuda/memory.h"
#include "vt/interop/dlpack.h"

namespace vt::py {
namespace {

constexpr const char* kLegacy = "dltensor";
constexpr const char* kVersioned = "dltensor_versioned";
constexpr const char* kUsedLegacy = "used_dltensor";
constexpr const char* kUsedVersioned = "used_dltensor_versioned";

// Unconsumed capsules still own their tensor: free it when the capsule dies.
void capsule_legacy_dtor(PyObject* cap) {
  if (PyCapsule_IsValid(cap, kLegacy)) {
    auto* m = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(cap, kLegacy));
    if (m && m->deleter) m->deleter(m);
  }
}
void capsule_versioned_dtor(PyObject* cap) {
  if (PyCapsule_IsValid(cap, kVersioned)) {
    auto* m = static_cast<DLManagedTensorVersioned*>(PyCapsule_GetPointer(cap, kVersioned));
    if (m && m->deleter) m->deleter(m);
  }
}

// (a, b) of ints, as the DLPack protocol passes versions and devices; TypeError otherwise (not std::bad_cast).
std::pair<int, int> int_pair(nb::handle h, const char* what) {
  VT_CHECK_TYPE(nb::isinstance<nb::tuple>(h) && nb::len(h) == 2, what, " must be a tuple of two ints, not ",
                nb::cast<std::string>(nb::repr(h)).substr(0, 60));
  return {to_int(h[0], what), to_int(h[1], what)};
}

nb::object to_capsule(const Tensor& self, nb::handle stream, nb::handle max_version, nb::handle dl_device,
                      nb::handle copy) {
  if (!stream.is_none()) {
    VT_CHECK_KIND(Value, self.is_cuda(), "__dlpack__: stream must be None for a ", self.device().str(), " tensor");
    // The consumer will use the data on `stream`: order that stream after our pending work on the tensor
    // (DLPack stream protocol; 1 = legacy default, 2 = per-thread default, -1 = no synchronization).
    int64_t s = to_int64(stream, "__dlpack__: stream");
    VT_CHECK_KIND(Value, s != 0, "__dlpack__: stream 0 is ambiguous; pass 1 (legacy default) or a stream handle");
    if (s != -1) cuda::order_stream_after_current(self.device().index, s);
  }
  Tensor t = self;
  bool copied = false;
  if (!dl_device.is_none()) {
    auto [type, id] = int_pair(dl_device, "__dlpack__: dl_device");
    DLDevice ours = interop::dl_device(self.device());
    VT_CHECK(type == int(ours.device_type) && id == ours.device_id,
             "__dlpack__: cannot export a ", self.device().str(), " tensor to DLPack device (", type, ", ", id, ")");
  }
  if (!copy.is_none() && nb::cast<bool>(copy)) {
    t = ops::clone(self);
    copied = true;
  }
  bool versioned = false;
  if (!max_version.is_none()) {
    auto [major, minor] = int_pair(max_version, "__dlpack__: max_version");
    (void)minor;
    versioned = major >= 1;
  }
  // A capsule that could not be made (out of memory) owns nothing: free the managed tensor ourselves.
  PyObject* cap = nullptr;
  if (versioned) {
    DLManagedTensorVersioned* m = interop::to_dlpack_versioned(t, copied);
    cap = PyCapsule_New(m, kVersioned, capsule_versioned_dtor);
    if (!cap) m->deleter(m);
  } else {
    DLManagedTensor* m = interop::to_dlpack(t);
    cap = PyCapsule_New(m, kLegacy, capsule_legacy_dtor);
    if (!cap) m->deleter(m);
  }
  if (!cap) throw nb::python_error();
  return nb::steal(cap);
}

// Producers' deleters may touch Python objects (NumPy's do), and a tensor can die on a thread without the
// GIL, so imports from Python run the producer's deleter under the GIL.
template <typename M>
M* with_gil_deleter(M* m) {
  struct Wrapped {
    M proxy;
    M* inner;
  };
  auto* w = new Wrapped{*m, m};
  w->proxy.manager_ctx = w;
  w->proxy.deleter = [](M* self) {
    auto* w = static_cast<Wrapped*>(self->manager_ctx);
    if (w->inner->deleter) {
      PyGILState_STATE st = PyGILState_Ensure();
      w->inner->deleter(w->inner);
      PyGILState_Release(st);
    }
    delete w;
  };
  return &w->proxy;
}

Tensor from_capsule(nb::handle cap) {
  PyObject* p = cap.ptr();
  if (PyCapsule_IsValid(p, kVersioned)) {
    auto* m = static_cast<DLManagedTensorVersioned*>(PyCapsule_GetPointer(p, kVersioned));
    PyCapsule_SetName(p, kUsedVersioned);
    if (m && (m->flags & DLPACK_FLAG_BITMASK_READ_ONLY)) {
      // As torch.from_numpy does for a non-writable array: share it, but say that writes are undefined.
      if (PyErr_WarnEx(PyExc_UserWarning,
                       "from_dlpack: the producer marked this memory read-only; vibetensor tensors are writable, "
                       "so writing through this tensor is undefined behaviour. Copy it first if you need to write.",
                       1) < 0)
        throw nb::python_error();
    }
    return interop::from_dlpack(with_gil_deleter(m));
  }
  if (PyCapsule_IsValid(p, kLegacy)) {
    auto* m = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(p, kLegacy));
    PyCapsule_SetName(p, kUsedLegacy);
    return interop::from_dlpack(with_gil_deleter(m));
  }
  VT_FAIL("from_dlpack received an invalid capsule. Note that DLTensor capsules can be consumed only once, so you "
          "might have already constructed a tensor from it once.");
}

}  // namespace

void bind_dlpack(nb::module_& m) {
  nb::object cls = m.attr("Tensor");
  nb::setattr(cls, "__dlpack__",
              nb::cpp_function(&to_capsule, nb::is_method(), nb::name("__dlpack__"), nb::scope(cls), nb::kw_only(),
                               nb::arg("stream") = nb::none(), nb::arg("max_version") = nb::none(),
                               nb::arg("dl_device") = nb::none(), nb::arg("copy") = nb::none()));
  nb::setattr(cls, "__dlpack_device__", nb::cpp_function([](const Tensor& t) {
    DLDevice d = interop::dl_device(t.device());
    return std::make_tuple(int(d.device_type), int(d.device_id));
  }, nb::is_method(), nb::name("__dlpack_device__"), nb::scope(cls)));
  m.def("from_dlpack_capsule", &from_capsule);
}

}  // namespace vt::py
