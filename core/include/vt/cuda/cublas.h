#pragma once
// cuBLAS, loaded on first use with dlopen: the module links no CUDA math library, so it imports on machines
// without one, and uses the libcublas that PyTorch's wheels or the CUDA toolkit put on the machine. Only the
// few entry points vibetensor needs are declared here (their ABI is stable across cuBLAS 12 and 13).
#include <cuda_runtime.h>
#include <library_types.h>

#include <initializer_list>
#include <string>
#include <vector>

namespace vt::cuda::blas {

enum class Op : int { N = 0, T = 1 };
enum class Compute : int { F32 = 68, F64 = 70, F32_FAST_TF32 = 77 };  // cublasComputeType_t values

// float32 products on TF32 tensor cores (torch.backends.cuda.matmul.allow_tf32; off by default, as torch):
// F32 compute becomes F32_FAST_TF32 (inputs rounded to 10-bit mantissas, float32 accumulation).
void set_allow_tf32(bool on);
bool allow_tf32();

// Directories to try after the loader's own search (vibetensor.cuda registers site-packages/nvidia/*/lib).
void add_search_dirs(const std::vector<std::string>& dirs);
// dlopen of the first of `names` found on the loader path, then in the search directories; null when none is.
// `tried` (when given) says what was looked for, for the caller's error message. cuBLASLt loads through it too.
void* open_library(std::initializer_list<const char*> names, std::string* tried);
// Whether cuBLAS can be loaded; `why` says what was tried when it cannot.
bool available(std::string* why = nullptr);

// Column-major C = op(A) @ op(B) for `batch` matrices (cublasGemmStridedBatchedEx with alpha 1, beta 0; one
// matrix through cublasGemmEx, Note [One product, one GEMM entry]) on the current device's current stream.
void gemm_strided_batched(Op ta, Op tb, int m, int n, int k, const void* a, cudaDataType at, int lda, long long sa,
                          const void* b, cudaDataType bt, int ldb, long long sb, void* c, cudaDataType ct, int ldc,
                          long long sc, int batch, Compute compute);
// The same with a device array of pointers per operand (cublasGemmBatchedEx): batches at any addresses.
void gemm_batched(Op ta, Op tb, int m, int n, int k, const void* const* a, cudaDataType at, int lda,
                  const void* const* b, cudaDataType bt, int ldb, void* const* c, cudaDataType ct, int ldc, int batch,
                  Compute compute);

}  // namespace vt::cuda::blas
