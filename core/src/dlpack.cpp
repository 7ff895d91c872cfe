// DLPack export and import (vt/interop/dlpack.h). Export shares the tensor's storage; import wraps the
// producer's memory in a Storage whose deleter calls the producer's deleter (Note [Storage owns its pointer]).
#include "vt/interop/dlpack.h"

#include "vt/cuda/device.h"

#include <cstring>

#include "vt/core/ops.h"

namespace vt::interop {
namespace {

DLDataType to_dl_dtype(ScalarType t) {
  DLDataType d{kDLFloat, uint8_t(itemsize(t) * 8), 1};
  switch (t) {
    case ScalarType::Bool: d.code = kDLBool; break;
    case ScalarType::UInt8: d.code = kDLUInt; break;
    case ScalarType::Int8: case ScalarType::Int16: case ScalarType::Int32: case ScalarType::Int64: d.code = kDLInt; break;
    case ScalarType::BFloat16: d.code = kDLBfloat; break;
    default: d.code = kDLFloat; break;
  }
  return d;
}

ScalarType from_dl_dtype(DLDataType d) {
  VT_CHECK_TYPE(d.lanes == 1, "from_dlpack: vector dtypes (lanes=", d.lanes, ") are not supported");
  switch (d.code) {
    case kDLBool: if (d.bits == 8) return ScalarType::Bool; break;
    case kDLUInt: if (d.bits == 8) return ScalarType::UInt8; break;
    case kDLInt:
      if (d.bits == 8) return ScalarType::Int8;
      if (d.bits == 16) return ScalarType::Int16;
      if (d.bits == 32) return ScalarType::Int32;
      if (d.bits == 64) return ScalarType::Int64;
      break;
    case kDLFloat:
      if (d.bits == 16) return ScalarType::Float16;
      if (d.bits == 32) return ScalarType::Float32;
      if (d.bits == 64) return ScalarType::Float64;
      break;
    case kDLBfloat: if (d.bits == 16) return ScalarType::BFloat16; break;
    default: break;
  }
  VT_FAIL_KIND(Type, "from_dlpack: unsupported DLPack dtype (code ", int(d.code), ", bits ", int(d.bits), ")");
}

// Holds the exported tensor plus the shape/stride arrays the DLTensor points into.
struct ExportCtx {
  Tensor tensor;
  DimVector shape, strides;
};

template <typename M>
void fill(M* m, ExportCtx* ctx) {
  const Tensor& t = ctx->tensor;
  m->manager_ctx = ctx;
  m->dl_tensor.data = t.numel() == 0 ? t.storage()->data() : t.data_ptr();
  m->dl_tensor.device = dl_device(t.device());
  m->dl_tensor.ndim = int32_t(t.dim());
  m->dl_tensor.dtype = to_dl_dtype(t.dtype());
  m->dl_tensor.shape = const_cast<int64_t*>(ctx->shape.data());
  m->dl_tensor.strides = const_cast<int64_t*>(ctx->strides.data());
  m->dl_tensor.byte_offset = 0;
}

// Note [Bool bytes on import]
// A bool tensor's bytes must be 0 or 1: kernels read them as bool, and any other byte (a NumPy bool view of
// uint8 data) would then count as 2 in a sum or survive a cast to int as 255. Foreign memory is checked on
// import and each element that is not 0/1 is set to 1, in place: it stays true for its producer too. Only the
// view's own elements are touched (a strided view must not rewrite the bytes between them). Read-only memory
// is not written; the producer gets a normalised copy instead (read-only, so nobody can see the difference).
template <typename F>
void for_each_element(char* data, const DimVector& sizes, const DimVector& strides, F&& f) {
  int64_t n = 1;
  for (int64_t s : sizes) n *= s;
  if (n == 0) return;
  DimVector idx(sizes.size(), 0);
  for (int64_t k = 0; k < n; ++k) {
    char* p = data;
    for (size_t d = 0; d < sizes.size(); ++d) p += idx[d] * strides[d];
    f(p);
    for (size_t d = sizes.size(); d-- > 0;) {
      if (++idx[d] < sizes[d]) break;
      idx[d] = 0;
    }
  }
}

bool has_non_bool_bytes(char* data, const DimVector& sizes, const DimVector& strides) {
  bool bad = false;
  for_each_element(data, sizes, strides, [&](char* p) { bad = bad || static_cast<unsigned char>(*p) > 1; });
  return bad;
}

template <typename M> bool is_read_only(const M*) { return false; }
template <> bool is_read_only(const DLManagedTensorVersioned* m) { return m->flags & DLPACK_FLAG_BITMASK_READ_ONLY; }

template <typename M>
Tensor import(M* m) {
  struct Guard {  // runs the producer's deleter if we fail before a Storage owns it
    M* m;
    ~Guard() {
      if (m && m->deleter) m->deleter(m);
    }
  } guard{m};
  VT_CHECK(m != nullptr, "from_dlpack: null DLPack tensor");
  const DLTensor& dl = m->dl_tensor;
  ScalarType dtype = from_dl_dtype(dl.dtype);
  Device device;
  if (dl.device.device_type == kDLCPU || dl.device.device_type == kDLCUDAHost) device = kCPU;
  else if (dl.device.device_type == kDLCUDA || dl.device.device_type == kDLCUDAManaged) device = Device(DeviceType::CUDA, dl.device.device_id);
  else VT_FAIL("from_dlpack: unsupported device type ", int(dl.device.device_type));
  VT_CHECK(dl.ndim >= 0 && dl.ndim <= kMaxDims, "from_dlpack: tensors have at most ", kMaxDims, " dims, got ", dl.ndim);
  DimVector sizes(IntArrayRef(dl.shape, size_t(dl.ndim)));
  DimVector strides = dl.strides ? DimVector(IntArrayRef(dl.strides, size_t(dl.ndim))) : contiguous_strides(sizes);
  // The storage covers exactly the elements the view can reach, starting at data + byte_offset.
  int64_t span = 1;
  for (int32_t d = 0; d < dl.ndim; ++d) {
    VT_CHECK(sizes[size_t(d)] >= 0, "from_dlpack: negative size in shape ", shape_str(sizes));
    VT_CHECK(strides[size_t(d)] >= 0 || sizes[size_t(d)] <= 1, "from_dlpack: negative strides are not supported");
    if (sizes[size_t(d)] == 0) span = 0;
  }
  if (span != 0)
    for (int32_t d = 0; d < dl.ndim; ++d) span += (sizes[size_t(d)] - 1) * std::max<int64_t>(strides[size_t(d)], 0);
  char* data = static_cast<char*>(dl.data) + dl.byte_offset;
  M* owned = m;
  guard.m = nullptr;
  DataPtr ptr(data, owned, [](void* p) {
    M* mm = static_cast<M*>(p);
    if (mm->deleter) mm->deleter(mm);
  });
  bool read_only = is_read_only(m);
  auto storage = std::make_shared<Storage>(std::move(ptr), size_t(span * itemsize(dtype)), device);
  Tensor t(std::make_shared<TensorImpl>(std::move(storage), dtype, sizes, strides, 0));
  if (dtype == ScalarType::Bool && device.is_cpu() && has_non_bool_bytes(data, sizes, strides)) {  // Note [Bool bytes on import]
    if (read_only) {  // the bytes read as uint8 (a bool load of a byte other than 0/1 is undefined), then cast
      Tensor bytes(std::make_shared<TensorImpl>(t.storage(), ScalarType::UInt8, sizes, strides, 0));
      return ops::to_dtype(bytes, ScalarType::Bool);
    }
    for_each_element(data, sizes, strides, [](char* p) {
      if (*p) *p = 1;
    });
  }
  return t;
}

}  // namespace

DLDevice dl_device(Device d) {
  if (d.is_cpu()) return DLDevice{kDLCPU, 0};
  // Other frameworks know physical GPUs only: an emulated device exports as the GPU it runs on.
  return DLDevice{kDLCUDA, d.index < 0 ? 0 : cuda::physical_device(d.index)};
}

DLManagedTensor* to_dlpack(const Tensor& t) {
  auto* ctx = new ExportCtx{t, DimVector(t.sizes()), DimVector(t.strides())};
  auto* m = new DLManagedTensor{};
  fill(m, ctx);
  m->deleter = [](DLManagedTensor* self) {
    delete static_cast<ExportCtx*>(self->manager_ctx);
    delete self;
  };
  return m;
}

DLManagedTensorVersioned* to_dlpack_versioned(const Tensor& t, bool copied) {
  auto* ctx = new ExportCtx{t, DimVector(t.sizes()), DimVector(t.strides())};
  auto* m = new DLManagedTensorVersioned{};
  m->version = DLPackVersion{DLPACK_MAJOR_VERSION, DLPACK_MINOR_VERSION};
  m->flags = copied ? DLPACK_FLAG_BITMASK_IS_COPIED : 0;
  fill(m, ctx);
  m->deleter = [](DLManagedTensorVersioned* self) {
    delete static_cast<ExportCtx*>(self->manager_ctx);
    delete self;
  };
  return m;
}

Tensor from_dlpack(DLManagedTensor* m) { return import(m); }
Tensor from_dlpack(DLManagedTensorVersioned* m) {
  if (m && m->version.major != DLPACK_MAJOR_VERSION) {
    uint32_t major = m->version.major;
    if (m->deleter) m->deleter(m);
    VT_FAIL("from_dlpack: unsupported DLPack major version ", major, " (vibetensor speaks ", DLPACK_MAJOR_VERSION,
            ".x)");
  }
  return import(m);
}

}  // namespace vt::interop
