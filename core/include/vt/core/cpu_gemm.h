#pragma once
// The CPU matrix product for floating types: C[b] = A[b] @ B[b] for b in [0, batch), with A[b] an M x K matrix,
// B[b] a K x N matrix and C[b] a dense row-major M x N block of the accumulation type (float for float32,
// float16 and bfloat16 inputs, double for float64). A and B are read through arbitrary element strides, so a
// transposed or sliced view needs no contiguous copy first; a batch stride of 0 broadcasts an operand.
//
// GotoBLAS/BLIS structure (see cpu_gemm.cpp for the loops): operands are packed into MR-row panels of A and
// NR-column panels of B (converted to the accumulation type on the way, except bfloat16 on a CPU with
// AVX512_BF16, which stays bfloat16 in pairs of k: Note [Bfloat16 pairs]), blocked by KC/MC/NC so the working
// set of the micro-kernel stays in L1 and that of a thread in L2, and a register-blocked micro-kernel computes
// each MR x NR tile. The micro-kernel is picked at run time from what the CPU supports (Note [GEMM kernel
// selection] in core/src/ops/cpu_gemm_kernels.h); nothing is compiled for a particular -march. Threads come
// from vt's parallel_for pool; pack buffers are thread-local and kept for reuse (at most ~8.5 MiB a thread).
//
// Not handled here: integer types (matmul.cpp keeps a simple loop for those), alpha/beta scaling, output
// strides (C is always dense), complex types.
#include <cstdint>
#include <string_view>

#include "vt/core/dtype.h"

namespace vt::cpu_gemm {

// One operand: element (b, i, j) lives at data + batch_offset(b) + i * row_stride + j * col_stride, all in
// elements of `dtype` (Float32, Float64, Float16 or BFloat16), where batch_offset(b) is b * batch_stride, or
// batch_offsets[b] when that array is given (batch dims that fold into no single stride: attention heads viewed
// out of a fused qkv projection, [B, T, 3, H, E] permuted to [B, H, T, E], read in place instead of copied).
struct Operand {
  const void* data;
  ScalarType dtype;
  int64_t batch_stride, row_stride, col_stride;
  const int64_t* batch_offsets = nullptr;  // one per batch entry, in elements; overrides batch_stride
  int64_t batch_offset(int64_t b) const { return batch_offsets ? batch_offsets[b] : b * batch_stride; }
};

// c: batch * M * N elements of float (for float32/16-bit inputs) or double (float64), written, never read.
// bias: null, or N values of c's type added to every row of every product (linear's bias, added to each tile
// of C while it is still in cache after its last K block, before any rounding to a 16-bit result).
// Both operands must have the same dtype. K == 0 writes zeros (or the bias). Uses vt's parallel_for pool.
void gemm(int64_t batch, int64_t M, int64_t N, int64_t K, const Operand& a, const Operand& b, void* c,
          const void* bias = nullptr);

// The micro-kernel family in use: "generic", "avx2", "avx512" or "avx512bf16" (bfloat16 operands multiplied as
// pairs, Note [Bfloat16 pairs] in core/src/ops/cpu_gemm_kernels.h). set_kernel_isa picks one by name for tests
// and benchmarks; it throws if the CPU lacks the instructions. Not thread-safe against running GEMMs.
std::string_view kernel_isa();
void set_kernel_isa(std::string_view name);

}  // namespace vt::cpu_gemm
