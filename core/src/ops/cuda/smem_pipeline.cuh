// Staging tiles through shared memory for tensor-core kernels (sm_80+): cp.async copies global memory into shared
// memory without passing through registers, so a block issues the next tile's copy and computes on the current
// one while it lands; ldmatrix reads the mma.sync operand fragments of four 8x8 tiles in one instruction (the
// .trans form transposes them on the way, so an operand needed column-major can stay row-major in memory).
//
// Note [Zero-filled copies]: a 16-byte cp.async whose source size is 0 reads nothing and writes 16 zero bytes,
// which is how rows past the sequence end and head-dim columns past E become zeros (they then change no product)
// without a branch around the copy. The source address must still be a valid one: the tile's base is passed.
#pragma once

#include <cstdint>

namespace vt::cuda::smem {

__device__ __forceinline__ uint32_t shared_address(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16 bytes from src to dst (shared), or 16 zero bytes when !full (Note [Zero-filled copies]).
__device__ __forceinline__ void copy16_async(void* dst, const void* src, bool full) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(shared_address(dst)), "l"(src),
               "r"(full ? 16 : 0));
#endif
}
__device__ __forceinline__ void commit_async() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.commit_group;\n" ::);
#endif
}
// Waits until at most N of this thread's committed copy groups are still in flight.
template <int N> __device__ __forceinline__ void wait_async() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
#endif
}

// Four 8x8 tiles of 16-bit elements; lane l gives the address of row l % 8 of tile l / 8. Without .trans lane l
// receives, of each tile, row l / 4 and columns 2 (l % 4) and + 1; with .trans, column l / 4 and rows 2 (l % 4)
// and + 1.
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* row) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(shared_address(row)));
#endif
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* row) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(shared_address(row)));
#endif
}

}  // namespace vt::cuda::smem
