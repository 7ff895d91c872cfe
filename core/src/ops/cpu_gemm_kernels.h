#pragma once
// Micro-kernels of the CPU GEMM (cpu_gemm.cpp): each computes one MR x NR tile of C from a packed A panel and a
// packed B panel over kc steps of the inner dimension:
//
//   a: [kc][MR]  (for each k, MR consecutive rows of A)          -- packed (not necessarily aligned)
//   b: [kc][NR]  (for each k, NR consecutive columns of B)       -- packed (not necessarily aligned)
//   c: MR rows of NR values, row i at c + i * ldc                -- C itself or a scratch tile
//   c[i][j] (accumulate ? += : =) sum_k a[k][i] * b[k][j]
//
// Packed panels are zero-padded to full MR/NR, so a kernel never sees partial tiles; the driver routes edge
// tiles through a scratch tile. Each kernel also carries its cache block sizes (KC, MC, NC), which depend on
// its tile shape.
//
// Note [GEMM kernel selection]: kernels for an instruction set live in their own file, compiled with that
// instruction set enabled per function (__attribute__((target))), never for the whole file or with
// -march=native, so one binary runs on any x86-64 CPU. The driver asks the CPU once (__builtin_cpu_supports)
// and uses the widest family it supports: avx512 > avx2 (with FMA) > generic (plain C++, any CPU and any
// architecture). Every family is tested on any machine that supports it (tests/core/test_matmul.py).
#include <cstdint>

namespace vt::cpu_gemm {

template <typename T>
using MicroKernelFn = void (*)(int64_t kc, const T* a, const T* b, T* c, int64_t ldc, bool accumulate);

// Optional packing for an operand already of type T whose k is its contiguous dimension (row-major A,
// column-major B such as weight.t()): panels of w lanes as in cpu_gemm.cpp's pack_panels,
// dst[(l / w) * kc * w + k * w + l % w] = src[l * lane_stride + k], the last panel zero-padded to w lanes.
// Packing like this is a transpose, which the generic code does one element at a time.
template <typename T>
using TransposePackFn = void (*)(const T* src, int64_t lane_stride, int64_t lanes, int w, int64_t kc, T* dst);

template <typename T>
struct MicroKernel {
  int mr, nr;           // tile shape
  int kc, mc, nc;       // cache blocking: kc x nr panel of B in L1, mc x kc block of A and kc x nc slab of B in L2
  MicroKernelFn<T> fn;
  TransposePackFn<T> pack_k_contiguous = nullptr;
};

enum class KernelIsa { Generic, Avx2, Avx512 };

MicroKernel<float> generic_kernel_f32();
MicroKernel<double> generic_kernel_f64();
#if defined(__x86_64__)
MicroKernel<float> avx2_kernel_f32();
MicroKernel<double> avx2_kernel_f64();
TransposePackFn<float> avx2_pack_k_contiguous_f32();
TransposePackFn<double> avx2_pack_k_contiguous_f64();  // the AVX-512 family uses these too
MicroKernel<float> avx512_kernel_f32();
MicroKernel<double> avx512_kernel_f64();
#endif

}  // namespace vt::cpu_gemm
