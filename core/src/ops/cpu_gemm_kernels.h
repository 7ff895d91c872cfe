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
// its tile shape. A packed step is one k, or two for the bfloat16 pair kernel (Note [Bfloat16 pairs]).
//
// Note [GEMM kernel selection]: kernels for an instruction set live in their own file, compiled with that
// instruction set enabled per function (__attribute__((target))), never for the whole file or with
// -march=native, so one binary runs on any x86-64 CPU. The driver asks the CPU once (__builtin_cpu_supports)
// and uses the widest family it supports: avx512bf16 (avx512 plus bfloat16 pair products) > avx512 > avx2
// (with FMA) > generic (plain C++, any CPU and any architecture). Every family is tested on any machine that
// supports it (tests/core/test_matmul.py).
#include <cstdint>

namespace vt::cpu_gemm {

template <typename P, typename C = P>
using MicroKernelFn = void (*)(int64_t kc, const P* a, const P* b, C* c, int64_t ldc, bool accumulate);

// Optional packing for an operand already of type T whose k is its contiguous dimension (row-major A,
// column-major B such as weight.t()): panels of w lanes as in cpu_gemm.cpp's pack_panels,
// dst[(l / w) * kc * w + k * w + l % w] = src[l * lane_stride + k], the last panel zero-padded to w lanes.
// Packing like this is a transpose, which the generic code does one element at a time.
template <typename T>
using TransposePackFn = void (*)(const T* src, int64_t lane_stride, int64_t lanes, int w, int64_t kc, T* dst);

// Packing from any layout of the source dtype into panels of P: kc packed steps of k for `lanes` lanes, the
// source's element (lane l, k) at src + l * lane_stride + k * k_stride; k_elems is how many k the source has
// from its start (a pair packing zero-fills the odd one out past it).
template <typename P>
using PackFn = void (*)(const void* src, int64_t lane_stride, int64_t k_stride, int64_t lanes, int w, int64_t kc,
                        int64_t k_elems, P* dst);

// Note [Edge tiles]: a tile that overhangs M or N (the last row panel or column panel) is computed by the
// smallest kernel that covers it - a third, two thirds or all of MR rows, by half or all of NR columns - over
// the same full-size packed panels, so a 65 x 65 product (a ViT's attention scores) spends about 78% of its
// multiply-adds on real elements instead of 61%. Families without edge kernels (null) use the full tile.
template <typename P, typename C = P>
struct EdgeKernels {
  MicroKernelFn<P, C> fn[3][2];  // [rows: (r + 1) * MR / 3][columns: (v + 1) * NR / 2]
};

template <typename P, typename C = P>
struct MicroKernel {
  int mr, nr;           // tile shape
  int kc, mc, nc;       // cache blocking: kc x nr panel of B in L1, mc x kc block of A and kc x nc slab of B in L2
  MicroKernelFn<P, C> fn;
  TransposePackFn<P> pack_k_contiguous = nullptr;
  EdgeKernels<P, C> edge = {};
};

// Note [Bfloat16 pairs]: a CPU with AVX512_BF16 multiplies bfloat16 by dot products of pairs (vdpbf16ps:
// c += a[2i] * b[2i] + a[2i+1] * b[2i+1] per float lane, twice the float FMA rate). Its packed panels hold
// pairs of consecutive k - one 32-bit word per lane and step, the even k in the low half - so a packed step
// covers two k, and an odd K's last pair has a zero high half. The products of two bfloat16 are exact in
// float and the sums round to nearest as float FMAs do, except that the instruction treats subnormal inputs
// and results as zero (as torch's oneDNN kernels, which use the same instruction, do).
using Bf16Pair = uint32_t;
struct Bf16PairFamily {
  MicroKernel<Bf16Pair, float> kernel;
  PackFn<Bf16Pair> pack;  // from bfloat16 operands in any layout
};

enum class KernelIsa { Generic, Avx2, Avx512, Avx512Bf16 };

MicroKernel<float> generic_kernel_f32();
MicroKernel<double> generic_kernel_f64();
#if defined(__x86_64__)
MicroKernel<float> avx2_kernel_f32();
MicroKernel<double> avx2_kernel_f64();
TransposePackFn<float> avx2_pack_k_contiguous_f32();
TransposePackFn<double> avx2_pack_k_contiguous_f64();  // the AVX-512 family uses these too
MicroKernel<float> avx512_kernel_f32();
MicroKernel<double> avx512_kernel_f64();
Bf16PairFamily avx512bf16_kernel();  // Note [Bfloat16 pairs]
#endif

}  // namespace vt::cpu_gemm
