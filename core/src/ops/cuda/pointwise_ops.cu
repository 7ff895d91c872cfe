// CUDA kernels of addcmul, addcdiv and lerp: the shared implementation (../pointwise_impl.h) over CudaLaunch.
#include "../pointwise_impl.h"
#include "loops.cuh"

VT_LIBRARY(vt, pointwise_cuda) {
  vt::pointwise::register_pointwise<vt::cuda::CudaLaunch>(m, vt::DispatchKey::CUDA);
}
