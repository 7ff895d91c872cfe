// CUDA kernels of the binary elementwise ops: the shared implementation (../binary_impl.h) over gpu_kernel.
#include "../binary_impl.h"
#include "loops.cuh"

VT_LIBRARY(vt, binary_cuda) { vt::binary::register_binary<vt::cuda::CudaLaunch>(m, vt::DispatchKey::CUDA); }
