#pragma once
// The plan of an advanced-indexing op (index / index_put_), shared by the CPU and CUDA kernels. Index tensors
// (int64/int32, or bool masks, which stand for their nonzero() coordinates) broadcast to one shape B; the
// result has B in place of the indexed dims when they are adjacent, and in front otherwise.
#include <vector>

#include "vt/core/ivalue.h"

namespace vt::indexing {

struct IndexPlan {
  std::vector<Tensor> idx;       // int64, broadcast to B, one per indexed dim
  std::vector<int64_t> dims;     // the indexed dims of self, in order
  DimVector bshape;              // B
  DimVector rest_sizes, rest_strides;  // the non-indexed dims of self (in order)
  int64_t insert_at = 0;         // where B goes among the rest dims in the result
};

// Validates the indices and builds the plan; index tensors come back as contiguous int64 broadcast to B.
IndexPlan plan_index(const Tensor& self, TensorList indices);
// Shape of self[indices].
DimVector result_shape(const IndexPlan& p);
// A result laid out in the user's order, viewed as [B..., rest...].
Tensor b_first_view(const Tensor& out, const IndexPlan& p);

}  // namespace vt::indexing
