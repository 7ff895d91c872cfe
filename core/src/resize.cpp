// Tensor.resize_ (vt/core/ops.h): new geometry for a tensor in place, growing its storage when needed (Note
// [Storage growth] in vt/core/storage.h). The out= arguments of the Python functions resize through it.
#include <memory>

#include "vt/core/error.h"
#include "vt/core/ops.h"
#include "vt/core/storage.h"
#include "vt/core/tensor.h"

namespace vt::ops {

Tensor resize_(const Tensor& self, IntArrayRef sizes) {
  VT_CHECK(!self.impl()->requires_grad(), "cannot resize variables that require grad");
  int64_t numel = 1;
  for (int64_t s : sizes) {
    VT_CHECK(s >= 0, "Trying to create tensor with negative dimension ", s);
    VT_CHECK(!__builtin_mul_overflow(numel, s, &numel), "resize_: the sizes' product overflows int64");
  }
  int64_t need = 0;  // bytes the new extent reaches into the storage
  if (numel > 0)
    VT_CHECK(!__builtin_add_overflow(self.storage_offset(), numel, &need) &&
                       !__builtin_mul_overflow(need, self.element_size(), &need),
                   "resize_: the new extent overflows int64");
  self.bump_version();  // before any write (Note [Inference tensors])
  Storage& storage = *self.storage();
  if (size_t(need) > storage.nbytes()) {
    std::shared_ptr<Storage> fresh = allocate_storage(size_t(need), self.device());
    const int64_t old = int64_t(storage.nbytes());
    if (old > 0) {  // the old bytes first, on the device's current stream (Note [Storage growth])
      auto bytes = [old](const std::shared_ptr<Storage>& st) {
        const int64_t size[1] = {old}, stride[1] = {1};
        return Tensor(std::make_shared<TensorImpl>(st, ScalarType::UInt8, size, stride, 0));
      };
      copy_(bytes(fresh), bytes(self.storage()));
    }
    storage.replace_data(fresh->take_data(), size_t(need));
  }
  self.impl()->set_sizes_strides(sizes, contiguous_strides(sizes), self.storage_offset());
  return self;
}

}  // namespace vt::ops
