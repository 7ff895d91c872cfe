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

}  // namespace vt
