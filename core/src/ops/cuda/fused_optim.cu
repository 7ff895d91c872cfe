// The CUDA kernels of the fused optimizer steps: ../fused_optim.h's update math through the multi-tensor
// launcher (multi_tensor.cuh). The CPU kernel is its reference and tests/cuda/test_cuda_optim.py checks both
// against torch.
#include "multi_tensor.cuh"

VT_LIBRARY(vt, fused_optim_cuda) { vt::optim::register_fused_optim<vt::cuda::CudaMultiTensor>(m, vt::DispatchKey::CUDA); }
