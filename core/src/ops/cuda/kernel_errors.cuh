#pragma once
// The device half of Note [Deferred kernel errors] (vt/cuda/kernel_errors.h).
#include "vt/cuda/kernel_errors.h"

namespace vt::cuda {

// Records `value`, out of range for `dim` of size `size`, unless another thread has recorded an error first.
__device__ inline void report_bad_index(const KernelErrorSlot& s, int64_t value, int64_t dim, int64_t size) {
  if (atomicCAS(s.claim, 0ull, 1ull) != 0ull) return;
  volatile KernelErrorRecord* r = s.record;
  r->kind = s.kind;
  r->value = value;
  r->dim = dim;
  r->size = size;
  r->op = s.op;
  __threadfence_system();  // the fields reach host memory before the flag does
  r->flag = 1;
}

}  // namespace vt::cuda
