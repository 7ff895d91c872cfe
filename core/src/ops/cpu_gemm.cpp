// The CPU GEMM driver (interface and scope in vt/core/cpu_gemm.h). For one matrix of the batch, the loops are
// GotoBLAS's, reordered so that each thread owns a column slab of C and packs the B it needs itself:
//
//   for k0 in K step KS, ic0 in M step MS:   A superblock [ms x ks] -> MR-row panels, packed once (parallel)
//     parallel over tiles (slab x rows):     slab = at most NC columns of C, rows = all ms or a share of them
//       for pc in ks step KC:                B slab [kc x nc] -> NR-column panels in this thread's buffer (L2)
//         for ic in rows step MC:            A block [mc x kc] stays in L2
//           for jr in slab step NR:          one B panel [kc x NR] stays in L1
//             for ir in block step MR:
//               micro-kernel: C[ir:ir+MR, jr:jr+NR] (= or +=) Apanel[kc x MR] @ Bpanel[kc x NR]
//
// A tile's C block is written by its first KC step and accumulated by the later ones, so C is never zeroed
// first. Tiles that overhang M or N (packed panels are zero-padded) go through a scratch tile and copy back
// only the valid part. Only two parallel regions per superblock (pack A, then tiles), so fork/join costs
// little; tiles are disjoint in C, so workers never share an output. A batch of small matrices runs one whole
// GEMM per worker instead (the nested parallel_for calls then run inline). Pack buffers are thread-local and
// reused across calls: the A superblock's belongs to the calling thread, each B slab's to the thread running
// the tile.
//
// Packing reads strided operands directly. Its cost is memory access, not arithmetic: see pack_panels for how
// it keeps several cache lines in flight and avoids L1 set conflicts between power-of-two-strided lanes.
#include "vt/core/cpu_gemm.h"

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <type_traits>
#include <utility>

#include "cpu_gemm_kernels.h"
#include "vt/core/error.h"
#include "vt/core/parallel.h"

namespace vt::cpu_gemm {
namespace {

// ---- kernel selection (Note [GEMM kernel selection]) ----

bool cpu_supports(KernelIsa isa) {
#if defined(__x86_64__)
  __builtin_cpu_init();  // harmless when already done; needed if this ever runs before static constructors
  switch (isa) {
    case KernelIsa::Avx512Bf16:
      return cpu_supports(KernelIsa::Avx512) && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512bf16");
    case KernelIsa::Avx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case KernelIsa::Avx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case KernelIsa::Generic:
      return true;
  }
  return false;
#else
  return isa == KernelIsa::Generic;
#endif
}

struct KernelFamily {
  KernelIsa isa;
  MicroKernel<float> f32;
  MicroKernel<double> f64;
  Bf16PairFamily bf16{};  // kernel.fn null: bfloat16 operands are packed as float for f32
};

KernelFamily family(KernelIsa isa) {
#if defined(__x86_64__)
  if (isa == KernelIsa::Avx512Bf16) return {isa, avx512_kernel_f32(), avx512_kernel_f64(), avx512bf16_kernel()};
  if (isa == KernelIsa::Avx512) return {isa, avx512_kernel_f32(), avx512_kernel_f64()};
  if (isa == KernelIsa::Avx2) return {isa, avx2_kernel_f32(), avx2_kernel_f64()};
#endif
  return {KernelIsa::Generic, generic_kernel_f32(), generic_kernel_f64()};
}

KernelFamily& active_family() {
  static KernelFamily f = [] {
    for (KernelIsa isa : {KernelIsa::Avx512Bf16, KernelIsa::Avx512, KernelIsa::Avx2})
      if (cpu_supports(isa)) return family(isa);
    return family(KernelIsa::Generic);
  }();
  return f;
}

// ---- packing ----

constexpr int kMaxPanelWidth = 32;  // the largest MR or NR of any kernel

// Consecutive panels of `w` lanes (MR rows of A or NR columns of B) over kc steps of K: lane l of the block goes
// to panel l / w, dst[(l / w) * kc * w + k * w + l % w] = src[l * lane_stride + k * k_stride]; the last panel is
// zero-padded to w lanes. (A packed step is one k here, so k_elems >= kc: PackFn's contract.)
template <typename In, typename Acc>
void pack_panels(const void* src_v, int64_t lane_stride, int64_t k_stride, int64_t lanes, int w, int64_t kc,
                 int64_t /*k_elems*/, Acc* dst) {
  const In* src = static_cast<const In*>(src_v);
  auto cvt = [](In x) { return static_cast<Acc>(static_cast<opmath_t<In>>(x)); };
  const int64_t panels = (lanes + w - 1) / w;
  if (lane_stride == 1) {
    // The lanes of one k are adjacent (row-major B, column-major A): walk each k's run of lanes across all the
    // panels, so the source is read in long contiguous runs rather than w-wide strips k_stride apart. The runs
    // are short and far apart, too short for the hardware prefetcher, so prefetch the run a few k ahead.
    constexpr int64_t kAhead = 4, kLine = 64 / sizeof(In);
    for (int64_t k = 0; k < kc; ++k) {
      const In* s = src + k * k_stride;
      if (k + kAhead < kc)
        for (int64_t l = 0; l < lanes; l += kLine) __builtin_prefetch(s + kAhead * k_stride + l);
      for (int64_t p = 0; p < panels; ++p) {
        Acc* d = dst + p * kc * w + k * w;
        int n = int(std::min<int64_t>(w, lanes - p * w));
        for (int l = 0; l < n; ++l) d[l] = cvt(s[p * w + l]);
        for (int l = n; l < w; ++l) d[l] = Acc(0);
      }
    }
    return;
  }
  // Each lane walks K (contiguously when k_stride == 1: row-major A, column-major B such as weight.t()). Lanes
  // are often a power-of-two number of bytes apart (4 KiB for a 1024-wide float matrix), so w lanes hitting the
  // same L1 set would thrash it if all were read element by element. Instead each step copies a run of kb
  // consecutive k of every lane into a small L1 tile (whole cache lines) and transposes from there; a prefetch
  // fetches the lines the next step reads.
  constexpr int kb = 16;
  Acc tile[kb * kMaxPanelWidth];
  for (int64_t p = 0; p < panels; ++p) {
    Acc* d = dst + p * kc * w;
    const In* s = src + p * w * lane_stride;
    const int n = int(std::min<int64_t>(w, lanes - p * w));
    for (int64_t k0 = 0; k0 < kc; k0 += kb) {
      const int m = int(std::min<int64_t>(kb, kc - k0));
      for (int l = 0; l < n; ++l) {
        const In* sl = s + l * lane_stride + k0 * k_stride;
        if (k_stride == 1 && m == kb) {  // a fixed-size copy: plain vector moves, not a rep-movs call
          __builtin_prefetch(sl + 4 * kb);
          for (int k = 0; k < kb; ++k) tile[l * kb + k] = cvt(sl[k]);
        } else if (k_stride == 1) {
          for (int k = 0; k < m; ++k) tile[l * kb + k] = cvt(sl[k]);
        } else {
          for (int k = 0; k < m; ++k) tile[l * kb + k] = cvt(sl[k * k_stride]);
        }
      }
      for (int k = 0; k < m; ++k) {
        for (int l = 0; l < n; ++l) d[l] = tile[l * kb + k];
        for (int l = n; l < w; ++l) d[l] = Acc(0);
        d += w;
      }
    }
  }
}

PackFn<float> float_pack_fn(ScalarType dtype) {
  switch (dtype) {
    case ScalarType::Float32:
      return &pack_panels<float, float>;
    case ScalarType::Float16:
      return &pack_panels<Half, float>;
    case ScalarType::BFloat16:
      return &pack_panels<BFloat16, float>;
    default:
      VT_INTERNAL_ASSERT(false, "cpu_gemm: no float packing for ", dtype_name(dtype));
      return nullptr;
  }
}

// The packing routine for one GEMM: the kernel family's transposing pack where it applies (no conversion, k
// contiguous), else the generic one for the operand dtype.
template <typename P>
struct Packer {
  PackFn<P> generic;
  TransposePackFn<P> k_contiguous;  // null when the family has none or the dtype needs converting
  void operator()(const void* src, int64_t lane_stride, int64_t k_stride, int64_t lanes, int w, int64_t kc,
                  int64_t k_elems, P* dst) const {
    if (k_contiguous && k_stride == 1 && lane_stride != 1)
      k_contiguous(static_cast<const P*>(src), lane_stride, lanes, w, kc, dst);
    else
      generic(src, lane_stride, k_stride, lanes, w, kc, k_elems, dst);
  }
};

// ---- workspace ----

// A 64-byte aligned buffer that only grows, kept per thread for the life of the thread: at most the A
// superblock (kSuperblockBytes) for a thread that starts GEMMs, and one B slab (KC x NC, 512 KiB) for each.
struct PackBuffer {
  struct Free {
    void operator()(void* p) const { std::free(p); }
  };
  std::unique_ptr<void, Free> data;
  size_t bytes = 0;
  template <typename T> T* get(size_t count) {
    size_t need = (count * sizeof(T) + 63) / 64 * 64;
    if (need > bytes) {
      std::unique_ptr<void, Free> grown(std::aligned_alloc(64, need));
      VT_CHECK_KIND(OutOfMemory, grown != nullptr, "cpu_gemm: cannot allocate ", need, " bytes of pack buffer");
      data = std::move(grown);
      bytes = need;
    }
    return static_cast<T*>(data.get());
  }
};

struct Workspace {
  PackBuffer a, b;
};
thread_local Workspace tls_workspace;

constexpr int kMaxTileElems = 16 * 32;        // at least the largest MR * NR of any kernel
constexpr size_t kSuperblockBytes = 8 << 20;  // packed A: rows [ic0, ic0 + ms) over a K range [k0, k0 + ks)
constexpr int64_t kParallelWork = 1 << 21;    // M*N*K below which one matrix runs on one thread

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Start of part s of n near-equal parts of [0, total) (part s is [split(s), split(s + 1))): the first total % n
// parts are the longer ones. Note [Longer tiles first]: the pool hands out tiles in order, each to the thread
// that is free first, so the tiles of a round go one to each thread; with the longer ones first each thread's
// share differs by at most one panel. Spread evenly (total * s / n), 18 panels in 4 slabs were 4, 5, 4, 5: one
// of two threads got both 5s and the other idled for a tenth of the product ([8320, 192] @ [192, 576] on 2
// threads of a Xeon: 1.79 of 2 cores busy; 253 -> 273 GFLOP/s with the longer slabs first, best of three
// alternating runs).
int64_t split(int64_t total, int64_t n, int64_t s) { return s * (total / n) + std::min(s, total % n); }

// Note [Superblock shape]
// Every superblock packs the B it meets again (each KC block of its K range, for every slab and row part), and
// every K range after the first reads and writes all of C once more. So the shape of a superblock - ks of K
// (a multiple of KC, at most 16 KC blocks) by ms rows (as many as fit kSuperblockBytes, rounded up to whole
// MR panels) - is the one of those candidates that moves the fewest elements: B repacks (K ranges x row
// blocks x ks x N) plus C passes ((K ranges - 1) x M x N). A long K with few rows (the weight gradients of a
// Linear, [out, tokens] @ [tokens, in]) then takes shorter K ranges that hold all its rows: the MiniGPT fc1
// weight gradient (1024 x 8192 x 256) had 3 row blocks per K range of 4096, the last of 16 rows, and packed
// its B three times over. A wide C with a short K keeps one K range.
struct SuperblockShape {
  int64_t ks, ms;
};

SuperblockShape superblock_shape(int64_t M, int64_t N, int64_t K, int mr, int kc, size_t acc_size) {
  SuperblockShape best{0, 0};
  double best_cost = 0;
  for (int64_t blocks = 16; blocks >= 1; blocks /= 2) {
    const int64_t ks = std::min<int64_t>(K, blocks * kc);
    const int64_t ms = std::max<int64_t>(mr, ceil_div(int64_t(kSuperblockBytes / (size_t(ks) * acc_size)), mr) * mr);
    const int64_t k_ranges = ceil_div(K, ks), row_blocks = ceil_div(M, ms);
    const double cost = double(k_ranges) * double(row_blocks) * double(ks) * double(N) +
                        double(k_ranges - 1) * double(M) * double(N);
    if (best.ks == 0 || cost < best_cost) best = {ks, ms}, best_cost = cost;
  }
  return best;
}

// The smallest kernel covering a rows x cols corner of a tile (Note [Edge tiles]).
template <typename P, typename Acc>
MicroKernelFn<P, Acc> edge_kernel(const MicroKernel<P, Acc>& uk, int64_t rows, int64_t cols) {
  if (!uk.edge.fn[0][0]) return uk.fn;
  return uk.edge.fn[(rows * 3 + uk.mr - 1) / uk.mr - 1][cols * 2 > uk.nr ? 1 : 0];
}

// k per packed step: two for bfloat16 pairs (Note [Bfloat16 pairs]), else one.
template <typename P> constexpr int64_t kStep = std::is_same_v<P, Bf16Pair> ? 2 : 1;

// One matrix: c[M x N] (dense, ldc = N) = a @ b, with a and b already offset to this batch entry, spread over
// `threads` threads (1: everything runs on the calling thread). Panels hold P; k0, ks, pc and kc below count
// packed steps (Kp of them), the operands' k offsets are those times kStep.
// trans_c (Note [Swapped operands]): this is the swapped product C^T = B^T A^T of a caller whose C is N x M
// (ldc = M), with the bias along this product's rows; every tile lands transposed in that C.
template <typename P, typename Acc>
void gemm_matrix(int64_t M, int64_t N, int64_t K, const Operand& a, const Operand& b, Acc* c, const Acc* bias,
                 const MicroKernel<P, Acc>& uk, const Packer<P>& pack, int64_t threads, bool trans_c) {
  const int mr = uk.mr, nr = uk.nr;
  const int64_t esz = itemsize(a.dtype), step = kStep<P>, Kp = ceil_div(K, step);
  // A superblock covers rows [ic0, ic0 + ms) and K range [k0, k0 + ks) (Note [Superblock shape]).
  const SuperblockShape shape = superblock_shape(M, N, Kp, mr, uk.kc, sizeof(P));
  const int64_t ks_max = shape.ks, ms_max = shape.ms;
  const int64_t b_panels = ceil_div(N, nr);
  P* apack = tls_workspace.a.get<P>(size_t(ceil_div(std::min(M, ms_max), mr) * mr * ks_max));

  for (int64_t k0 = 0; k0 < Kp; k0 += ks_max) {
    const int64_t ks = std::min(ks_max, Kp - k0);
    const int64_t a_k_elems = std::min(ks * step, K - k0 * step);
    const char* a_bytes = static_cast<const char*>(a.data) + k0 * step * a.col_stride * esz;
    const char* b_bytes = static_cast<const char*>(b.data) + k0 * step * b.row_stride * esz;
    for (int64_t ic0 = 0; ic0 < M; ic0 += ms_max) {
      const int64_t ms = std::min(ms_max, M - ic0);
      const int64_t a_panels = ceil_div(ms, mr);
      // Pack the A superblock: panel p holds rows [ic0 + p * mr, +mr) as [ks][mr], so a KC block of it is the
      // contiguous range [pc * mr, (pc + kc) * mr). Items of a few panels, at least ~4 per thread.
      const int64_t ga = std::clamp<int64_t>(ceil_div(a_panels, 4 * threads), 1, std::max(1, 256 / mr));
      const int64_t a_items = ceil_div(a_panels, ga);
      parallel_for(0, a_items, threads > 1 ? 1 : a_items, [&](int64_t lo, int64_t hi) {
        for (int64_t it = lo; it < hi; ++it) {
          const int64_t p = it * ga, i = ic0 + p * mr;
          pack(a_bytes + i * a.row_stride * esz, a.row_stride, a.col_stride, std::min(ga * mr, ic0 + ms - i), mr,
               ks, a_k_elems, apack + p * ks * mr);
        }
      });

      // Tiles: n_slabs column slabs times m_parts row ranges. A tile packs its own slab of B into its thread's
      // buffer, which stays in L2, then sweeps its rows. Slabs are at most NC wide; when parallel there is at
      // least one per thread where each can be 8 panels wide, and their count is a multiple of the threads.
      // Each slab reads the whole packed A again, so no more of them: four per thread (meant to let a thread
      // slowed by other work hand tiles to the rest) made tall products 5-15% slower on 2 threads even on a
      // busy shared host ([8192, 256] @ [256, 768] 268 -> 306 GFLOP/s, [8320, 192] @ [192, 768] 286 -> 302,
      // 1024^3 282 -> 292; best of three alternating runs, Emerald Rapids). Only when N is too narrow for two
      // slabs per thread are the rows split too, which packs each slab of B once per row range.
      int64_t n_slabs = std::min(b_panels, ceil_div(N, uk.nc));
      if (threads > 1) {
        n_slabs = std::max(n_slabs, std::min(threads, b_panels / 8));
        n_slabs = std::min(b_panels, ceil_div(n_slabs, threads) * threads);
      }
      const int64_t m_parts =
          threads > 1 && n_slabs < 2 * threads ? std::min(a_panels, ceil_div(2 * threads, n_slabs)) : 1;
      const int64_t tiles = n_slabs * m_parts;
      parallel_for(0, tiles, threads > 1 ? 1 : tiles, [&](int64_t lo, int64_t hi) {
        alignas(64) Acc scratch[kMaxTileElems];
        for (int64_t t = lo; t < hi; ++t) {
          const int64_t slab = t / m_parts, part = t % m_parts;
          const int64_t j0 = split(b_panels, n_slabs, slab) * nr;
          const int64_t j1 = std::min(N, split(b_panels, n_slabs, slab + 1) * nr);
          const int64_t p0 = split(a_panels, m_parts, part), p1 = split(a_panels, m_parts, part + 1);
          P* bpack = tls_workspace.b.get<P>(size_t(ceil_div(j1 - j0, nr) * nr * std::min<int64_t>(ks, uk.kc)));
          for (int64_t pc = 0; pc < ks; pc += uk.kc) {
            const int64_t kc = std::min<int64_t>(uk.kc, ks - pc);
            const bool accumulate = k0 + pc > 0;  // the first KC block writes C, later ones add to it
            const bool last = k0 + pc + kc == Kp;  // the bias joins a tile after its last block, still in cache
            pack(b_bytes + (pc * step * b.row_stride + j0 * b.col_stride) * esz, b.col_stride, b.row_stride, j1 - j0,
                 nr, kc, std::min(kc * step, K - (k0 + pc) * step), bpack);
            // A blocks of mc rows stay in L2 while every B panel [kc x NR] of the slab passes through L1.
            for (int64_t pb = p0; pb < p1; pb += uk.mc / mr) {
              const int64_t pe = std::min(p1, pb + uk.mc / mr);
              for (int64_t j = j0; j < j1; j += nr) {
                const int64_t nv = std::min<int64_t>(nr, j1 - j);
                const P* bp = bpack + (j - j0) * kc;
                for (int64_t p = pb; p < pe; ++p) {
                  const int64_t i = p * mr, mv = std::min<int64_t>(mr, ms - i);
                  const P* ap = apack + p * ks * mr + pc * mr;
                  if (trans_c) {
                    (mv == mr && nv == nr ? uk.fn : edge_kernel(uk, mv, nv))(kc, ap, bp, scratch, nr, false);
                    for (int64_t q = 0; q < nv; ++q) {
                      Acc* dst = c + (j + q) * M + ic0 + i;
                      for (int64_t r = 0; r < mv; ++r) {
                        Acc v = accumulate ? dst[r] + scratch[r * nr + q] : scratch[r * nr + q];
                        dst[r] = bias && last ? v + bias[ic0 + i + r] : v;
                      }
                    }
                    continue;
                  }
                  Acc* cp = c + (ic0 + i) * N + j;
                  if (mv == mr && nv == nr) {
                    uk.fn(kc, ap, bp, cp, N, accumulate);
                  } else {
                    // An edge tile (Note [Edge tiles]): computed into scratch, only the valid part copied back.
                    edge_kernel(uk, mv, nv)(kc, ap, bp, scratch, nr, false);
                    for (int64_t r = 0; r < mv; ++r)
                      for (int64_t q = 0; q < nv; ++q)
                        cp[r * N + q] = accumulate ? cp[r * N + q] + scratch[r * nr + q] : scratch[r * nr + q];
                  }
                  if (bias && last)
                    for (int64_t r = 0; r < mv; ++r)
                      for (int64_t q = 0; q < nv; ++q) cp[r * N + q] += bias[j + q];
                }
              }
            }
          }
        }
      });
    }
  }
}

// Note [Swapped operands]
// The loops above pack A in superblocks of up to 8 MiB, beyond the caches, and read them once per column slab
// of B, while each slab of B is packed into a thread's L2-resident buffer. A tall product with few columns
// (M x K x N with N small: a Linear with few outputs over many tokens, [8192, 256] @ [256, 96]) thus streams
// its big operand through memory three times (the read, the packed copy, its re-reads) and its small one not
// at all. Computed as C^T = B^T A^T instead, the big operand takes B's place and is read once, tile by tile;
// each C^T tile is written transposed into C (gemm_matrix's trans_c). A/B on the 2-core devbox (AVX-512, two
// rounds, 2 threads): [16384, 128] @ [128, 32] 1.4-2.5 -> 0.9 ms, [8192, 576] @ [576, 64] 4.8 -> 3.9-4.5 ms,
// [8192, 256] @ [256, 96] 2.5-2.9 -> 2.3-2.5 ms, [4096, 64] @ [64, 8] 133-143 -> 47-50 us, [256, 512] @
// [512, 64] 154-158 -> 126-139 us; [8192, 1024] @ [1024, 256] unchanged (23 ms), and [8192, 64] @ [64, 576]
// slower swapped (3.8-4.4 -> 4.4-5.0 ms). The price is the transposed store, a scalar read-modify-write of
// each tile per KC block, about a quarter of the tile's FMA time, which only the saved A traffic (about 2-3
// passes over M x K, against the store's M x N per KC block) repays: so products at least four times as tall
// as wide, up to 128 columns (with 256 the MiniGPT training step, whose products are mostly 256 wide, ran
// 2-3% slower). VT_CPU_GEMM_SWAP=1 (always) or 0 (never), read once, overrides the rule, for tests and A/B
// runs.
Operand transposed(Operand o) {
  std::swap(o.row_stride, o.col_stride);
  return o;
}
bool swap_operands(int64_t M, int64_t N) {
  static const int forced = [] {
    const char* env = std::getenv("VT_CPU_GEMM_SWAP");
    return env && *env ? (env[0] == '1' ? 1 : 0) : -1;
  }();
  return forced >= 0 ? forced == 1 : N * 4 <= M && N <= 128;
}

template <typename P, typename Acc>
void gemm_typed(int64_t batch, int64_t M, int64_t N, int64_t K, const Operand& a, const Operand& b, Acc* c,
                const Acc* bias, const MicroKernel<P, Acc>& uk, const Packer<P>& pack) {
  if (batch * M * N == 0) return;
  if (K == 0) {
    for (int64_t r = 0; r < batch * M; ++r)
      for (int64_t j = 0; j < N; ++j) c[r * N + j] = bias ? bias[j] : Acc(0);
    return;
  }
  VT_INTERNAL_ASSERT(uk.mr * uk.nr <= kMaxTileElems && std::max(uk.mr, uk.nr) <= kMaxPanelWidth, "cpu_gemm: tile ",
                     uk.mr, "x", uk.nr, " exceeds the scratch buffers");
  const int64_t esz = itemsize(a.dtype);
  const bool swapped = swap_operands(M, N);
  auto one = [&](int64_t i, int64_t threads) {
    Operand ai = a, bi = b;
    ai.data = static_cast<const char*>(a.data) + a.batch_offset(i) * esz;
    bi.data = static_cast<const char*>(b.data) + b.batch_offset(i) * esz;
    if (swapped)  // Note [Swapped operands]: C^T = B^T A^T, the transposes being the same data read across
      gemm_matrix<P, Acc>(N, M, K, transposed(bi), transposed(ai), c + i * M * N, bias, uk, pack, threads, true);
    else
      gemm_matrix<P, Acc>(M, N, K, ai, bi, c + i * M * N, bias, uk, pack, threads, false);
  };
  // Many matrices, or small ones: one whole GEMM per worker. Otherwise each GEMM spreads over the threads. A
  // batch that is less work in all than one matrix worth splitting runs on the calling thread: waking the
  // workers cost more than its products (bmm of two [2, 4, 3] @ [2, 3, 4]: 3.0 us, torch 1.3).
  const int64_t threads = num_threads();
  const bool small = M * N * K < kParallelWork;
  const bool tiny = small && batch * (M * N * K) < kParallelWork;
  if (batch > 1 && !tiny && (batch >= 2 * threads || small)) {
    parallel_for(0, batch, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) one(i, 1);
    });
  } else {
    for (int64_t i = 0; i < batch; ++i) one(i, small ? 1 : threads);
  }
}

}  // namespace

void gemm(int64_t batch, int64_t M, int64_t N, int64_t K, const Operand& a, const Operand& b, void* c,
          const void* bias) {
  VT_INTERNAL_ASSERT(a.dtype == b.dtype, "cpu_gemm: operand dtypes differ");
  const KernelFamily& f = active_family();
  if (a.dtype == ScalarType::Float64) {
    const Packer<double> pack{&pack_panels<double, double>, f.f64.pack_k_contiguous};
    gemm_typed(batch, M, N, K, a, b, static_cast<double*>(c), static_cast<const double*>(bias), f.f64, pack);
    return;
  }
  float* cf = static_cast<float*>(c);
  const float* bf = static_cast<const float*>(bias);
  if (a.dtype == ScalarType::BFloat16 && f.bf16.kernel.fn) {
    gemm_typed(batch, M, N, K, a, b, cf, bf, f.bf16.kernel, Packer<Bf16Pair>{f.bf16.pack, nullptr});
  } else {
    const bool same_type = a.dtype == ScalarType::Float32;
    const Packer<float> pack{float_pack_fn(a.dtype), same_type ? f.f32.pack_k_contiguous : nullptr};
    gemm_typed(batch, M, N, K, a, b, cf, bf, f.f32, pack);
  }
}

std::string_view kernel_isa() {
  switch (active_family().isa) {
    case KernelIsa::Avx512Bf16:
      return "avx512bf16";
    case KernelIsa::Avx512:
      return "avx512";
    case KernelIsa::Avx2:
      return "avx2";
    case KernelIsa::Generic:
      break;
  }
  return "generic";
}

void set_kernel_isa(std::string_view name) {
  KernelIsa isa;
  if (name == "avx512bf16")
    isa = KernelIsa::Avx512Bf16;
  else if (name == "avx512")
    isa = KernelIsa::Avx512;
  else if (name == "avx2")
    isa = KernelIsa::Avx2;
  else if (name == "generic")
    isa = KernelIsa::Generic;
  else
    VT_FAIL("set_cpu_gemm_kernel: unknown kernel family '", name, "' (expected generic, avx2, avx512 or avx512bf16)");
  VT_CHECK_KIND(NotImplemented, cpu_supports(isa), "set_cpu_gemm_kernel: this CPU does not support ", name);
  active_family() = family(isa);
}

}  // namespace vt::cpu_gemm
