#pragma once
// A copy whose source and destination run along different dims (a transposed or permuted .contiguous()) through
// shared-memory tiles, so that both the reads and the writes coalesce (Note [Tiled transpose]).
#include "vt/core/tensor_iterator.h"

namespace vt::cuda {

// Runs the copy of a built copy_ iterator (operand 0 the destination, 1 the source, one dtype) when its layout is
// a batch of 2-d transposes; returns false, having done nothing, for any other layout.
bool try_tiled_transpose(TensorIterator& it);

}  // namespace vt::cuda
