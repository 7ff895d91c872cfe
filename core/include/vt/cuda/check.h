#pragma once
// The one checking macro for CUDA runtime calls (STYLE principle 8): a failed call raises a vt::Error naming
// the call, the CUDA error and file:line; out-of-memory raises the OutOfMemory kind. The sticky error state
// is cleared so the process stays usable.
#include <cuda_runtime.h>

#include "vt/core/error.h"

#define VT_CUDA_CHECK(expr)                                                                                 \
  do {                                                                                                      \
    cudaError_t vt_cuda_err_ = (expr);                                                                      \
    if (vt_cuda_err_ != cudaSuccess) [[unlikely]] {                                                         \
      cudaGetLastError();                                                                                   \
      ::vt::detail::fail(vt_cuda_err_ == cudaErrorMemoryAllocation ? ::vt::ErrorKind::OutOfMemory           \
                                                                   : ::vt::ErrorKind::Runtime,              \
                         "CUDA error: ", cudaGetErrorString(vt_cuda_err_), " in ", #expr, " at ", __FILE__, \
                         ":", __LINE__);                                                                    \
    }                                                                                                       \
  } while (0)
