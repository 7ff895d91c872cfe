// CUDA kernels of the unary and ternary elementwise ops: the shared implementation (../unary_impl.h) over
// gpu_kernel.
#include "../unary_impl.h"
#include "loops.cuh"

VT_LIBRARY(vt, unary_cuda) { vt::unary::register_unary<vt::cuda::CudaLaunch>(m, vt::DispatchKey::CUDA); }
