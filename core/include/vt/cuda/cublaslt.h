#pragma once
// cuBLASLt GEMMs with a fused epilogue, loaded with dlopen as cuBLAS is (vt/cuda/cublas.h). A linear layer's
// x W^T + b is one kernel this way: the bias is added as the tile is written, instead of a second pass over the
// product. The algorithm is chosen by cuBLASLt's heuristic once per problem (Note [Lt algorithm cache]), or timed
// among its first candidates where VT_CUBLASLT_TUNE asks (Note [Lt algorithm timing]); the
// workspace comes from the device's caching allocator on the current stream, so a call is stream-ordered and
// capturable in CUDA graphs.
#include <cuda_runtime.h>
#include <library_types.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "vt/cuda/cublas.h"

namespace vt::cuda::blaslt {

// cublasLtEpilogue_t values. BGradB writes the bias gradient: the sum of op(B) over the reduction dim k.
enum class Epilogue : int { None = 1, Relu = 2, Bias = 4, ReluBias = 6, GeluBias = 36, BGradB = 512 };

// Column-major D [m, n] = op(A) @ op(B), then the epilogue, alpha 1, beta 0, float32 accumulation (TF32 for
// float32 when blas::allow_tf32()), on the current device's current stream. `bias` is read by the Bias epilogues
// (m elements added to every column of D) and written by BGradB (n elements: op(B) summed over k). `type` is the
// type of A, B, D and the bias (float32, float16, bfloat16).
// Returns false, having launched nothing, when cuBLASLt cannot be loaded or has no algorithm for the problem
// (the caller computes it another way); throws when an algorithm it chose fails.
bool gemm(blas::Op ta, blas::Op tb, int m, int n, int k, const void* a, int lda, const void* b, int ldb, void* d,
          int ldd, cudaDataType type, Epilogue epilogue, void* bias);

// Whether cuBLASLt can be loaded; `why` says what was tried when it cannot.
bool available(std::string* why = nullptr);
// Problems whose algorithm is cached (tests: a repeated shape must not query the heuristic again), and GEMMs
// launched through cuBLASLt so far (tests: the fused path ran, rather than a fallback).
size_t cached_problems();
uint64_t launches();

}  // namespace vt::cuda::blaslt
