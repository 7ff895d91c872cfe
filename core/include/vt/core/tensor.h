#pragma once
// TensorImpl is a strided view over a Storage: sizes and strides (in elements), a storage offset, a dtype and
// a device. Many TensorImpls may view one Storage (Note [Storage owns its pointer]); in-place writes through any
// of them bump the Storage's version (Note [Version counter]). Tensor is the user-facing handle: a shared
// reference to a TensorImpl, cheap to copy. An undefined Tensor holds no impl (an optional output, say).
//
// What this deliberately does not hold: autograd state beyond an opaque slot, names, or memory formats; a
// tensor's layout is exactly its strides.
#include <memory>
#include <optional>

#include "vt/core/dim_vector.h"
#include "vt/core/dtype.h"
#include "vt/core/storage.h"

namespace vt {

struct AutogradMeta;  // defined by the autograd layer

class TensorImpl {
 public:
  TensorImpl(std::shared_ptr<Storage> storage, ScalarType dtype, IntArrayRef sizes, IntArrayRef strides,
             int64_t offset);

  IntArrayRef sizes() const { return sizes_; }
  IntArrayRef strides() const { return strides_; }
  int64_t size(int64_t d) const { return sizes_[size_t(d)]; }
  int64_t stride(int64_t d) const { return strides_[size_t(d)]; }
  int64_t dim() const { return int64_t(sizes_.size()); }
  int64_t numel() const { return numel_; }
  int64_t storage_offset() const { return offset_; }
  ScalarType dtype() const { return dtype_; }
  Device device() const { return storage_->device(); }
  bool is_contiguous() const { return contiguous_; }
  const std::shared_ptr<Storage>& storage() const { return storage_; }
  char* data() const { return static_cast<char*>(storage_->data()) + offset_ * itemsize(dtype_); }

  // A 0-dim tensor made from a Python number: ranks below dimensioned tensors in type promotion.
  bool is_wrapped_number() const { return wrapped_number_; }
  void set_wrapped_number(bool w) { wrapped_number_ = w; }

  // In-place metadata change (resize of an output, as_strided_). Keeps the storage.
  void set_sizes_strides(IntArrayRef sizes, IntArrayRef strides, int64_t offset);
  // torch's `t.data = other`: this impl takes other's storage, sizes, strides, offset and dtype (any device)
  // while keeping its own autograd identity (Note [Data assignment]).
  void set_data(const TensorImpl& other);

  // Autograd state (vt/autograd/node.h); null for tensors that never took part in autograd. The flag sits
  // outside it so the dispatcher can test it with one load (Note [Requires-grad flag]); a view also requires
  // grad when its base does (Note [View base]).
  std::shared_ptr<AutogradMeta> autograd_meta;
  bool requires_grad() const { return requires_grad_ || (view_base_ && view_base_->requires_grad_); }
  void set_requires_grad_flag(bool r) { requires_grad_ = r; }

  // Note [View base]
  // A tensor made by a view op while grad mode is on remembers the tensor it views: the root of the chain (a
  // view of a view points at the first base, which is never itself a view). Autograd needs it to rebase
  // history when a view or its base is written in place (Note [View rebasing] in autograd/view_rebase.h).
  // Kernels' internal views (make_view) and detach() have no base: they are aliases, not views.
  const std::shared_ptr<TensorImpl>& view_base() const { return view_base_; }
  void set_view_base(const std::shared_ptr<TensorImpl>& of) { view_base_ = of && of->view_base_ ? of->view_base_ : of; }

 private:
  void refresh();
  std::shared_ptr<Storage> storage_;
  DimVector sizes_, strides_;
  int64_t offset_ = 0;
  int64_t numel_ = 1;
  ScalarType dtype_;
  bool contiguous_ = true;
  bool wrapped_number_ = false;
  bool requires_grad_ = false;
  std::shared_ptr<TensorImpl> view_base_;
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  bool defined() const { return impl_ != nullptr; }
  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }

  IntArrayRef sizes() const { return impl_->sizes(); }
  IntArrayRef strides() const { return impl_->strides(); }
  int64_t size(int64_t d) const {
    VT_CHECK_INDEX(dim() > 0, "dimension specified as ", d, " but tensor has no dimensions");
    return impl_->size(wrap_dim(d, dim()));
  }
  int64_t stride(int64_t d) const {
    VT_CHECK_INDEX(dim() > 0, "dimension specified as ", d, " but tensor has no dimensions");
    return impl_->stride(wrap_dim(d, dim()));
  }
  int64_t dim() const { return impl_->dim(); }
  int64_t numel() const { return impl_->numel(); }
  int64_t storage_offset() const { return impl_->storage_offset(); }
  ScalarType dtype() const { return impl_->dtype(); }
  Device device() const { return impl_->device(); }
  bool is_contiguous() const { return impl_->is_contiguous(); }
  bool is_cuda() const { return device().is_cuda(); }
  int64_t element_size() const { return itemsize(dtype()); }
  int64_t nbytes() const { return numel() * element_size(); }
  char* data_ptr() const { return impl_->data(); }
  template <typename T> T* data() const { return reinterpret_cast<T*>(impl_->data()); }
  const std::shared_ptr<Storage>& storage() const { return impl_->storage(); }
  bool is_same(const Tensor& o) const { return impl_ == o.impl_; }
  void bump_version() const { impl_->storage()->bump_version(); }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

// Contiguous row-major strides for `sizes`.
DimVector contiguous_strides(IntArrayRef sizes);
// An uninitialised contiguous tensor.
Tensor empty_tensor(IntArrayRef sizes, ScalarType dtype, Device device);
// A view sharing `base`'s storage with new geometry (no bounds check: callers validate).
Tensor make_view(const Tensor& base, IntArrayRef sizes, IntArrayRef strides, int64_t offset);
// A 0-dim tensor holding `s` as `dtype` on the CPU, marked as a wrapped number.
Tensor scalar_to_tensor(const class Scalar& s, ScalarType dtype);
// The value of a one-element CPU tensor as a Scalar of its kind (bool, integer, floating).
class Scalar item_scalar(const Tensor& t);

}  // namespace vt
