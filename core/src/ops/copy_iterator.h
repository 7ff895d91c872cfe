#pragma once
// The iterator of copy_ on every backend: the destination is the output in its own dtype, the source an input
// in its own (no promotion, no safe-cast check: copy_ converts any dtype to any), broadcast to the
// destination's shape, with the overlap checks of an elementwise op.
#include "vt/core/tensor_iterator.h"

namespace vt {

inline TensorIterator copy_iterator(const Tensor& dst, const Tensor& src) {
  return TensorIteratorConfig()
      .add_output(dst)
      .add_input(src)
      .check_all_same_dtype(false)
      .enforce_safe_casting_to_output(false)
      .common_dtype(src.dtype())
      .output_dtype(dst.dtype())
      .name("copy_")
      .build();
}

// The source dim that the copy reads contiguously when it is not the destination's (a transpose of one dtype):
// dim 0 is unit-stride in the destination, dim j > 0 in the source, and both span at least `min_size`
// elements. -1 for any other layout. The CPU and CUDA copies walk such layouts in blocks.
inline int transposed_source_dim(const TensorIterator& it, int64_t min_size) {
  const int64_t elem = it.operand(0).element_size();
  if (it.ndim() < 2 || it.operand(1).dtype() != it.operand(0).dtype() || it.stride(0, 0) != elem ||
      it.stride(1, 0) == elem || it.shape()[0] < min_size)
    return -1;
  for (int d = 1; d < it.ndim(); ++d)
    if (it.stride(1, d) == elem) return it.shape()[size_t(d)] < min_size ? -1 : d;
  return -1;
}

}  // namespace vt
