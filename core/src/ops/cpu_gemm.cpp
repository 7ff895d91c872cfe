// The CPU GEMM driver (interface and scope in vt/core/cpu_gemm.h). For one matrix of the batch, the loops are
// GotoBLAS's, with A packed a whole superblock of rows at a time so that every A panel is packed once:
//
//   for jc in N step NC:                     B block [kc x nc] -> packed NR-column panels (L3)
//     for pc in K step KC:
//       for ic0 in M step MS:                A superblock [ms x kc] -> packed MR-row panels
//         pack (parallel over panels):       B block (first superblock only), A superblock
//         compute (parallel over tiles):     tile = MC rows x a slice of nc columns
//           for jr in tile step NR:          one B panel [kc x NR] stays in L1
//             for ir in tile step MR:        A block [mc x kc] stays in L2
//               micro-kernel: C[ir:ir+MR, jr:jr+NR] (= or +=) Apanel @ Bpanel
//
// The first KC step writes C, later ones accumulate into it, so C is never zeroed first. Tiles that overhang M
// or N (packed panels are zero-padded) go through a scratch tile and copy back only the valid part.
//
// Threading: each phase is one parallel_for; tiles of the compute phase are disjoint in C, so workers never
// share an output. A batch of small matrices runs one whole GEMM per worker instead (the nested parallel_for
// calls then run inline). Pack buffers are thread-local to the calling thread and reused across calls.
#include "vt/core/cpu_gemm.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "cpu_gemm_kernels.h"
#include "vt/core/error.h"
#include "vt/core/parallel.h"

namespace vt::cpu_gemm {
namespace {

// ---- kernel selection (Note [GEMM kernel selection]) ----

bool cpu_supports(KernelIsa isa) {
#if defined(__x86_64__)
  switch (isa) {
    case KernelIsa::Avx512:
      return __builtin_cpu_supports("avx512f");
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
};

KernelFamily family(KernelIsa isa) {
#if defined(__x86_64__)
  if (isa == KernelIsa::Avx512) return {isa, avx512_kernel_f32(), avx512_kernel_f64()};
  if (isa == KernelIsa::Avx2) return {isa, avx2_kernel_f32(), avx2_kernel_f64()};
#endif
  return {KernelIsa::Generic, generic_kernel_f32(), generic_kernel_f64()};
}

KernelFamily& active_family() {
  static KernelFamily f = [] {
    for (KernelIsa isa : {KernelIsa::Avx512, KernelIsa::Avx2})
      if (cpu_supports(isa)) return family(isa);
    return family(KernelIsa::Generic);
  }();
  return f;
}

template <typename Acc> const MicroKernel<Acc>& active_kernel();
template <> const MicroKernel<float>& active_kernel<float>() { return active_family().f32; }
template <> const MicroKernel<double>& active_kernel<double>() { return active_family().f64; }

// ---- packing ----

// One panel of `w` lanes (MR rows of A or NR columns of B) over kc steps of K: dst[k * w + l] =
// src[l * lane_stride + k * k_stride] for l < lanes, 0 for the padding lanes l >= lanes.
template <typename In, typename Acc>
void pack_panel(const void* src_v, int64_t lane_stride, int64_t k_stride, int lanes, int w, int64_t kc, Acc* dst) {
  const In* src = static_cast<const In*>(src_v);
  auto cvt = [](In x) { return static_cast<Acc>(static_cast<opmath_t<In>>(x)); };
  if (lane_stride == 1) {  // the lanes of one k are adjacent (row-major B, column-major A)
    for (int64_t k = 0; k < kc; ++k) {
      const In* s = src + k * k_stride;
      Acc* d = dst + k * w;
      for (int l = 0; l < lanes; ++l) d[l] = cvt(s[l]);
      for (int l = lanes; l < w; ++l) d[l] = Acc(0);
    }
    return;
  }
  if (lanes < w)
    for (int64_t k = 0; k < kc; ++k)
      for (int l = lanes; l < w; ++l) dst[k * w + l] = Acc(0);
  // Each lane walks K (contiguously when k_stride == 1: row-major A, column-major B such as weight.t()); the
  // strided writes stay within the panel, which fits in L1.
  for (int l = 0; l < lanes; ++l) {
    const In* s = src + l * lane_stride;
    Acc* d = dst + l;
    if (k_stride == 1)
      for (int64_t k = 0; k < kc; ++k) d[k * w] = cvt(s[k]);
    else
      for (int64_t k = 0; k < kc; ++k) d[k * w] = cvt(s[k * k_stride]);
  }
}

template <typename Acc>
using PackFn = void (*)(const void*, int64_t, int64_t, int, int, int64_t, Acc*);

template <typename Acc> PackFn<Acc> pack_fn(ScalarType dtype);
template <> PackFn<float> pack_fn<float>(ScalarType dtype) {
  switch (dtype) {
    case ScalarType::Float32:
      return &pack_panel<float, float>;
    case ScalarType::Float16:
      return &pack_panel<Half, float>;
    case ScalarType::BFloat16:
      return &pack_panel<BFloat16, float>;
    default:
      VT_INTERNAL_ASSERT(false, "cpu_gemm: no float packing for ", dtype_name(dtype));
      return nullptr;
  }
}
template <> PackFn<double> pack_fn<double>(ScalarType dtype) {
  VT_INTERNAL_ASSERT(dtype == ScalarType::Float64, "cpu_gemm: no double packing for ", dtype_name(dtype));
  return &pack_panel<double, double>;
}

// ---- workspace ----

// A 64-byte aligned buffer that only grows; one per thread that starts a GEMM.
struct PackBuffer {
  struct Free {
    void operator()(void* p) const { std::free(p); }
  };
  std::unique_ptr<void, Free> data;
  size_t bytes = 0;
  template <typename T> T* get(size_t count) {
    size_t need = (count * sizeof(T) + 63) / 64 * 64;
    if (need > bytes) {
      data.reset(std::aligned_alloc(64, need));
      VT_CHECK_KIND(OutOfMemory, data != nullptr, "cpu_gemm: cannot allocate ", need, " bytes of pack buffer");
      bytes = need;
    }
    return static_cast<T*>(data.get());
  }
};

struct Workspace {
  PackBuffer a, b;
};
thread_local Workspace tls_workspace;

constexpr int kMaxTileElems = 16 * 32;        // the largest MR * NR of any kernel
constexpr size_t kSuperblockBytes = 4 << 20;  // packed A superblock (A is packed once per superblock)
constexpr int64_t kParallelWork = 1 << 21;    // M*N*K below which one matrix runs on one thread

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// One matrix: c[M x N] (dense, ldc = N) = a @ b, with a and b already offset to this batch entry.
template <typename Acc>
void gemm_matrix(int64_t M, int64_t N, int64_t K, const Operand& a, const Operand& b, Acc* c,
                 const MicroKernel<Acc>& uk, PackFn<Acc> pack) {
  const int mr = uk.mr, nr = uk.nr;
  const int64_t esz = itemsize(a.dtype);
  const char* a_bytes = static_cast<const char*>(a.data);
  const char* b_bytes = static_cast<const char*>(b.data);
  const bool parallel = M * N * K >= kParallelWork;
  const int64_t want_tiles = parallel ? 4 * int64_t(num_threads()) : 1;
  const int64_t ms_max = std::max<int64_t>(uk.mc, int64_t(kSuperblockBytes / (uk.kc * sizeof(Acc))) / mr * mr);

  Workspace& ws = tls_workspace;
  Acc* bpack = ws.b.get<Acc>(size_t(round_up(std::min<int64_t>(N, uk.nc), nr) * std::min<int64_t>(K, uk.kc)));
  Acc* apack = ws.a.get<Acc>(size_t(round_up(std::min(M, ms_max), mr) * std::min<int64_t>(K, uk.kc)));

  for (int64_t jc = 0; jc < N; jc += uk.nc) {
    const int64_t nc = std::min<int64_t>(uk.nc, N - jc);
    const int64_t b_panels = ceil_div(nc, nr);
    for (int64_t pc = 0; pc < K; pc += uk.kc) {
      const int64_t kc = std::min<int64_t>(uk.kc, K - pc);
      const bool accumulate = pc > 0;
      for (int64_t ic0 = 0; ic0 < M; ic0 += ms_max) {
        const int64_t ms = std::min(ms_max, M - ic0);
        const int64_t a_panels = ceil_div(ms, mr);
        const int64_t b_items = ic0 == 0 ? b_panels : 0;  // the B block is packed once per (jc, pc)
        // Pack: items [0, b_items) are B panels, the rest A panels; a grain of ~16k elements per chunk.
        int64_t pack_grain = parallel ? std::max<int64_t>(1, 16384 / (kc * std::max(mr, nr))) : b_items + a_panels;
        parallel_for(0, b_items + a_panels, pack_grain, [&](int64_t lo, int64_t hi) {
          for (int64_t it = lo; it < hi; ++it) {
            if (it < b_items) {
              int64_t j = jc + it * nr;
              const char* src = b_bytes + (pc * b.row_stride + j * b.col_stride) * esz;
              pack(src, b.col_stride, b.row_stride, int(std::min<int64_t>(nr, jc + nc - j)), nr, kc,
                   bpack + it * kc * nr);
            } else {
              int64_t p = it - b_items, i = ic0 + p * mr;
              const char* src = a_bytes + (i * a.row_stride + pc * a.col_stride) * esz;
              pack(src, a.row_stride, a.col_stride, int(std::min<int64_t>(mr, ic0 + ms - i)), mr, kc,
                   apack + p * kc * mr);
            }
          }
        });
        // Compute: m_blocks x n_chunks tiles, mc rows (a multiple of MR) by nt columns (a multiple of NR).
        const int64_t m_blocks = ceil_div(ms, uk.mc);
        const int64_t mc = round_up(ceil_div(ms, m_blocks), mr);
        const int64_t n_chunks = std::clamp<int64_t>(ceil_div(want_tiles, m_blocks), 1, b_panels);
        const int64_t nt = round_up(ceil_div(nc, n_chunks), nr);
        const int64_t tiles = m_blocks * ceil_div(nc, nt);
        parallel_for(0, tiles, parallel ? 1 : tiles, [&](int64_t lo, int64_t hi) {
          alignas(64) Acc scratch[kMaxTileElems];
          for (int64_t t = lo; t < hi; ++t) {
            const int64_t r0 = (t % m_blocks) * mc, r1 = std::min(ms, r0 + mc);
            const int64_t c0 = (t / m_blocks) * nt, c1 = std::min(nc, c0 + nt);
            for (int64_t jr = c0; jr < c1; jr += nr) {
              const int64_t nv = std::min<int64_t>(nr, c1 - jr);
              const Acc* bp = bpack + (jr / nr) * kc * nr;
              for (int64_t ir = r0; ir < r1; ir += mr) {
                const int64_t mv = std::min<int64_t>(mr, r1 - ir);
                const Acc* ap = apack + (ir / mr) * kc * mr;
                Acc* cp = c + (ic0 + ir) * N + jc + jr;
                if (mv == mr && nv == nr) {
                  uk.fn(kc, ap, bp, cp, N, accumulate);
                  continue;
                }
                uk.fn(kc, ap, bp, scratch, nr, false);
                for (int64_t i = 0; i < mv; ++i)
                  for (int64_t j = 0; j < nv; ++j)
                    cp[i * N + j] = accumulate ? cp[i * N + j] + scratch[i * nr + j] : scratch[i * nr + j];
              }
            }
          }
        });
      }
    }
  }
}

template <typename Acc>
void gemm_typed(int64_t batch, int64_t M, int64_t N, int64_t K, const Operand& a, const Operand& b, Acc* c) {
  if (batch * M * N == 0) return;
  if (K == 0) {
    std::fill(c, c + batch * M * N, Acc(0));
    return;
  }
  const MicroKernel<Acc>& uk = active_kernel<Acc>();
  VT_INTERNAL_ASSERT(uk.mr * uk.nr <= kMaxTileElems, "cpu_gemm: tile ", uk.mr, "x", uk.nr, " exceeds the scratch");
  PackFn<Acc> pack = pack_fn<Acc>(a.dtype);
  const int64_t esz = itemsize(a.dtype);
  auto one = [&](int64_t i) {
    Operand ai = a, bi = b;
    ai.data = static_cast<const char*>(a.data) + i * a.batch_stride * esz;
    bi.data = static_cast<const char*>(b.data) + i * b.batch_stride * esz;
    gemm_matrix<Acc>(M, N, K, ai, bi, c + i * M * N, uk, pack);
  };
  // Many matrices, or small ones: one whole GEMM per worker. Otherwise each GEMM spreads over the threads.
  const int64_t threads = num_threads();
  if (batch > 1 && (batch >= 2 * threads || M * N * K < kParallelWork)) {
    parallel_for(0, batch, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) one(i);
    });
  } else {
    for (int64_t i = 0; i < batch; ++i) one(i);
  }
}

}  // namespace

void gemm(int64_t batch, int64_t M, int64_t N, int64_t K, const Operand& a, const Operand& b, void* c) {
  VT_INTERNAL_ASSERT(a.dtype == b.dtype, "cpu_gemm: operand dtypes differ");
  if (a.dtype == ScalarType::Float64)
    gemm_typed<double>(batch, M, N, K, a, b, static_cast<double*>(c));
  else
    gemm_typed<float>(batch, M, N, K, a, b, static_cast<float*>(c));
}

std::string_view kernel_isa() {
  switch (active_family().isa) {
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
  if (name == "avx512")
    isa = KernelIsa::Avx512;
  else if (name == "avx2")
    isa = KernelIsa::Avx2;
  else if (name == "generic")
    isa = KernelIsa::Generic;
  else
    VT_FAIL("set_cpu_gemm_kernel: unknown kernel family '", name, "' (expected generic, avx2 or avx512)");
  VT_CHECK_KIND(NotImplemented, cpu_supports(isa), "set_cpu_gemm_kernel: this CPU does not support ", name);
  active_family() = family(isa);
}

}  // namespace vt::cpu_gemm
