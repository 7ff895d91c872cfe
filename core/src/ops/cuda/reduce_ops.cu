// CUDA kernels of the reductions: the shared implementation (../reduce_impl.h) over CudaReduce.
#include "../reduce_impl.h"
#include "reduce.cuh"

VT_LIBRARY(vt, reduce_cuda) { vt::reduce::register_reduce<vt::cuda::CudaReduce>(m, vt::DispatchKey::CUDA); }
