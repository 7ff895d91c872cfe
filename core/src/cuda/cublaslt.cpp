// The dlopen-based cuBLASLt loader and its one GEMM-with-epilogue entry point (see vt/cuda/cublaslt.h). Only the
// entry points and enum values used here are declared (their ABI is the same in cuBLAS 12 and 13).
#include "vt/cuda/cublaslt.h"

#include <dlfcn.h>

#include <array>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "vt/core/error.h"
#include "vt/core/tensor.h"
#include "vt/cuda/check.h"
#include "vt/cuda/device.h"
#include "vt/cuda/graph.h"
#include "vt/cuda/stream.h"

namespace vt::cuda::blaslt {
namespace {

using Handle = void*;
using Desc = void*;
using Layout = void*;
using Pref = void*;
struct Algo {
  uint64_t data[8];
};
struct HeuristicResult {  // cublasLtMatmulHeuristicResult_t
  Algo algo;
  size_t workspace;
  int state;
  float waves;
  int reserved[4];
};

// cublasLtMatmulDescAttributes_t / cublasLtMatmulPreferenceAttributes_t values.
constexpr int kDescTransA = 3, kDescTransB = 4, kDescEpilogue = 7, kDescBiasPointer = 8;
constexpr int kPrefMaxWorkspace = 1, kPrefAlignA = 5, kPrefAlignB = 6, kPrefAlignC = 7, kPrefAlignD = 8;
constexpr int kCompute32F = 68, kCompute32FFastTF32 = 77;
// Note [Lt workspace limit]: the workspace offered to the heuristic decides which algorithms it may pick. The
// forward epilogues (bias, bias + ReLU / GELU) get 1 MiB, torch's default limit for its Lt calls: the heuristic's
// pick under 32 MiB (Hopper's largest want: split-K partials) can lose to its pick under 1 MiB (ViT's fc2, float32
// [8320, 768] x [768, 192] with a bias: a 128x32 tile, 70.9 us, against torch's 64x64 tile, 65.5 us, which 1 MiB
// gives us too; gemm.py --quick on H100s: worst row 1.08x -> 1.02-1.04x). The weight-gradient products with the
// BGRADB epilogue go the other way and get 32 MiB, what cuBLAS gives torch's weight-gradient mm: under 1 MiB
// MiniGPT's took 2.31 ms per step (128x64 and 64x64 tiles) against 1.63 ms under 32 MiB (128x256 and 128x64,
// torch's tiles; two H100 hosts).
// VT_CUBLASLT_WORKSPACE_SIZE (KiB, as torch's CUBLASLT_WORKSPACE_SIZE) sets one limit for all. The heuristic says
// how much one algorithm needs, and only that much is taken from the caching allocator per call.
constexpr uint64_t kSmallWorkspace = uint64_t(1) << 20, kLargeWorkspace = uint64_t(32) << 20;
uint64_t max_workspace(Epilogue epilogue) {
  static const int64_t setting = [] {  // bytes, or -1 for the defaults
    const char* env = std::getenv("VT_CUBLASLT_WORKSPACE_SIZE");
    if (!env || !*env) return int64_t(-1);
    char* end = nullptr;
    unsigned long long kib = std::strtoull(env, &end, 10);
    VT_CHECK(end && *end == '\0' && kib <= (1ull << 30), "VT_CUBLASLT_WORKSPACE_SIZE must be a size in KiB, got '",
             env, "'");
    return int64_t(kib) << 10;
  }();
  if (setting >= 0) return uint64_t(setting);
  return epilogue == Epilogue::BGradB ? kLargeWorkspace : kSmallWorkspace;
}

// Note [Lt algorithm timing]
// The heuristic's first answer is a model's guess, and on Hopper it can be well off the best of its own top
// candidates (a bfloat16 4096^3 product with the bias epilogue ran at 670 TFLOP/s, the same product without the
// epilogue at 771). VT_CUBLASLT_TUNE=N (2..8) times the heuristic's first N candidates under the workspace
// limit, and where a larger limit admits split-K also its first N under 1 MiB (Note [Lt workspace limit]), once
// per problem of at least 2^30 multiply-adds, on first sight: a warm-up run, then three between events, and
// caches the fastest, as cuDNN's benchmark mode does for convolutions. Timing waits for the stream (one
// synchronization per new problem) and runs the product up to 2N x 4 times, so it is off by default and skipped
// while the stream captures a graph (the heuristic's first answer runs then, uncached, so an eager call later
// still times the problem). 0 or 1: no timing.
int tune_candidates() {
  static const int n = [] {
    const char* env = std::getenv("VT_CUBLASLT_TUNE");
    if (!env || !*env) return 1;
    char* end = nullptr;
    long v = std::strtol(env, &end, 10);
    VT_CHECK(end && *end == '\0' && v >= 0 && v <= 8, "VT_CUBLASLT_TUNE must be a candidate count from 0 to 8, got '",
             env, "'");
    return int(std::max(v, 1L));
  }();
  return n;
}
constexpr double kTuneMinMacs = double(1 << 30);

struct Library {
  void* so = nullptr;
  std::string tried;
  int (*create)(Handle*) = nullptr;
  int (*desc_create)(Desc*, int, cudaDataType) = nullptr;
  int (*desc_destroy)(Desc) = nullptr;
  int (*desc_set)(Desc, int, const void*, size_t) = nullptr;
  int (*layout_create)(Layout*, cudaDataType, uint64_t, uint64_t, int64_t) = nullptr;
  int (*layout_destroy)(Layout) = nullptr;
  int (*pref_create)(Pref*) = nullptr;
  int (*pref_destroy)(Pref) = nullptr;
  int (*pref_set)(Pref, int, const void*, size_t) = nullptr;
  int (*heuristic)(Handle, Desc, Layout, Layout, Layout, Layout, Pref, int, HeuristicResult*, int*) = nullptr;
  int (*matmul)(Handle, Desc, const void*, const void*, Layout, const void*, Layout, const void*, const void*, Layout,
                void*, Layout, const Algo*, void*, size_t, cudaStream_t) = nullptr;
};

template <typename Fn>
bool bind(void* so, Fn& fn, const char* name) {
  fn = reinterpret_cast<Fn>(dlsym(so, name));
  return fn != nullptr;
}

const Library& library() {
  static const Library lib = [] {
    Library l;
    l.so = blas::open_library({"libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so"}, &l.tried);
    if (!l.so) return l;
    bool ok = bind(l.so, l.create, "cublasLtCreate") & bind(l.so, l.desc_create, "cublasLtMatmulDescCreate") &
              bind(l.so, l.desc_destroy, "cublasLtMatmulDescDestroy") &
              bind(l.so, l.desc_set, "cublasLtMatmulDescSetAttribute") &
              bind(l.so, l.layout_create, "cublasLtMatrixLayoutCreate") &
              bind(l.so, l.layout_destroy, "cublasLtMatrixLayoutDestroy") &
              bind(l.so, l.pref_create, "cublasLtMatmulPreferenceCreate") &
              bind(l.so, l.pref_destroy, "cublasLtMatmulPreferenceDestroy") &
              bind(l.so, l.pref_set, "cublasLtMatmulPreferenceSetAttribute") &
              bind(l.so, l.heuristic, "cublasLtMatmulAlgoGetHeuristic") & bind(l.so, l.matmul, "cublasLtMatmul");
    if (!ok) {
      l.tried = "a libcublasLt without the cublasLtMatmul entry points";
      l.so = nullptr;
    }
    return l;
  }();
  return lib;
}

// Lt handles carry no stream and are cheap; one per thread and device keeps them off any lock.
Handle handle_for(const Library& l, int device) {
  thread_local std::array<Handle, 64> handles{};
  VT_CHECK(device >= 0 && device < 64, "cuBLASLt: device index ", device, " out of range");
  Handle& h = handles[size_t(device)];
  if (!h) {
    int status = l.create(&h);
    VT_CHECK(status == 0, "cublasLtCreate failed with status ", status, " on cuda:", device);
  }
  return h;
}

// The largest power of two (<= 256) dividing the address: what the heuristic may assume of a pointer.
uint32_t alignment(const void* p) {
  auto v = reinterpret_cast<uintptr_t>(p);
  uint32_t a = 256;
  while (a > 1 && v % a) a >>= 1;
  return a;
}

// Note [Lt algorithm cache]
// The heuristic query costs tens of microseconds, more than a small GEMM, so its answer is kept per problem:
// the device, shapes, leading dimensions, transposes, type, compute type, epilogue and the alignment of every
// pointer (an algorithm chosen for 16-byte-aligned operands must not run on a sliced, 4-byte-aligned one). A
// problem with no algorithm is remembered too, so the caller's fallback does not pay the query every call.
struct Key {
  int device, m, n, k, lda, ldb, ldd, ta, tb, type, compute, epilogue;
  uint32_t align_a, align_b, align_d, align_bias;
  bool operator==(const Key& o) const { return std::memcmp(this, &o, sizeof(Key)) == 0; }
};
struct KeyHash {
  size_t operator()(const Key& k) const {
    const auto* w = reinterpret_cast<const uint32_t*>(&k);
    size_t h = 1469598103934665603ull;
    for (size_t i = 0; i < sizeof(Key) / 4; ++i) h = (h ^ w[i]) * 1099511628211ull;
    return h;
  }
};
struct Choice {
  bool found = false;
  Algo algo{};
  size_t workspace = 0;
};
std::mutex g_cache_mu;
std::atomic<uint64_t> g_launches{0};
std::unordered_map<Key, Choice, KeyHash> g_cache;

// Owners of the Lt descriptors of one call.
struct Descriptors {
  const Library& l;
  Desc desc = nullptr;
  Layout a = nullptr, b = nullptr, d = nullptr;
  explicit Descriptors(const Library& lib) : l(lib) {}
  ~Descriptors() {
    if (desc) l.desc_destroy(desc);
    for (Layout x : {a, b, d})
      if (x) l.layout_destroy(x);
  }
};

// Note [Lt algorithm timing]: each candidate once to warm up, then three runs between two events; the fastest
// wins. A candidate that fails to launch is passed over (the heuristic's answers are hints, not promises).
template <typename Run>
Choice fastest(const std::vector<Choice>& candidates, cudaStream_t stream, Run& run) {
  cudaEvent_t start = nullptr, stop = nullptr;
  VT_CUDA_CHECK(cudaEventCreate(&start));
  std::unique_ptr<CUevent_st, cudaError_t (*)(cudaEvent_t)> start_owner(start, cudaEventDestroy);
  VT_CUDA_CHECK(cudaEventCreate(&stop));
  std::unique_ptr<CUevent_st, cudaError_t (*)(cudaEvent_t)> stop_owner(stop, cudaEventDestroy);
  Choice best = candidates[0];
  float best_ms = -1.0f;
  for (const Choice& c : candidates) {
    if (run(c) != 0) continue;
    VT_CUDA_CHECK(cudaEventRecord(start, stream));
    bool ok = true;
    for (int rep = 0; rep < 3 && ok; ++rep) ok = run(c) == 0;
    VT_CUDA_CHECK(cudaEventRecord(stop, stream));
    VT_CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0.0f;
    VT_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    if (ok && (best_ms < 0 || ms < best_ms)) best = c, best_ms = ms;
  }
  return best;
}

void check(int status, const char* what) { VT_CHECK(status == 0, "cuBLASLt: ", what, " failed with status ", status); }

}  // namespace

bool available(std::string* why) {
  const Library& l = library();
  if (!l.so && why) *why = "tried " + l.tried;
  return l.so != nullptr;
}

uint64_t launches() { return g_launches.load(std::memory_order_relaxed); }

size_t cached_problems() {
  std::lock_guard<std::mutex> g(g_cache_mu);
  return g_cache.size();
}

bool gemm(blas::Op ta, blas::Op tb, int m, int n, int k, const void* a, int lda, const void* b, int ldb, void* d,
          int ldd, cudaDataType type, Epilogue epilogue, void* bias) {
  const Library& l = library();
  if (!l.so) return false;
  // The logical device (under emulation cudaGetDevice names the physical GPU; see blas::gemm_strided_batched).
  int device = current_device_raw();
  int compute = type == CUDA_R_32F && blas::allow_tf32() ? kCompute32FFastTF32 : kCompute32F;
  Key key{device, m, n, k, lda, ldb, ldd, int(ta), int(tb), int(type), compute, int(epilogue),
          alignment(a), alignment(b), alignment(d), bias ? alignment(bias) : 256u};

  Descriptors ds(l);
  check(l.desc_create(&ds.desc, compute, CUDA_R_32F), "cublasLtMatmulDescCreate");
  int tai = int(ta), tbi = int(tb), ep = int(epilogue);
  check(l.desc_set(ds.desc, kDescTransA, &tai, sizeof tai), "setting TRANSA");
  check(l.desc_set(ds.desc, kDescTransB, &tbi, sizeof tbi), "setting TRANSB");
  check(l.desc_set(ds.desc, kDescEpilogue, &ep, sizeof ep), "setting the epilogue");
  if (bias) check(l.desc_set(ds.desc, kDescBiasPointer, &bias, sizeof bias), "setting the bias pointer");
  // Layouts as stored: op(A) is m x k, so A itself is m x k (N) or k x m (T); likewise B.
  bool at = ta == blas::Op::T, bt = tb == blas::Op::T;
  check(l.layout_create(&ds.a, type, at ? k : m, at ? m : k, lda), "cublasLtMatrixLayoutCreate(A)");
  check(l.layout_create(&ds.b, type, bt ? n : k, bt ? k : n, ldb), "cublasLtMatrixLayoutCreate(B)");
  check(l.layout_create(&ds.d, type, m, n, ldd), "cublasLtMatrixLayoutCreate(D)");
  Handle h = handle_for(l, device);

  auto stream = reinterpret_cast<cudaStream_t>(current_stream(device));
  // One launch of D = op(A) op(B) + epilogue with an algorithm; its workspace from the caching allocator.
  auto run = [&](const Choice& c) {
    Tensor workspace;
    if (c.workspace > 0)
      workspace = empty_tensor(DimVector{int64_t(c.workspace)}, ScalarType::UInt8, Device(DeviceType::CUDA, device));
    static const float one = 1.0f, zero = 0.0f;
    return l.matmul(h, ds.desc, &one, a, ds.a, b, ds.b, &zero, d, ds.d, d, ds.d, &c.algo,
                    workspace.defined() ? workspace.data_ptr() : nullptr, c.workspace, stream);
  };

  Choice choice;
  bool cached = false;
  {
    std::lock_guard<std::mutex> g(g_cache_mu);
    auto it = g_cache.find(key);
    if (it != g_cache.end()) choice = it->second, cached = true;
  }
  if (!cached) {
    const int tune = tune_candidates();  // read (and checked) at the first query, whatever its size
    const int wanted = double(m) * double(n) * double(k) >= kTuneMinMacs ? tune : 1;
    // The heuristic's answers under a workspace limit, appended to `candidates` unless already there.
    std::vector<Choice> candidates;
    auto query = [&](uint64_t ws) {
      Pref pref = nullptr;
      check(l.pref_create(&pref), "cublasLtMatmulPreferenceCreate");
      std::unique_ptr<void, int (*)(Pref)> pref_owner(pref, l.pref_destroy);
      check(l.pref_set(pref, kPrefMaxWorkspace, &ws, sizeof ws), "setting the workspace limit");
      for (auto [attr, al] : {std::pair{kPrefAlignA, key.align_a}, {kPrefAlignB, key.align_b},
                              {kPrefAlignC, key.align_d}, {kPrefAlignD, key.align_d}})
        check(l.pref_set(pref, attr, &al, sizeof al), "setting an alignment");
      std::array<HeuristicResult, 8> results{};
      int found = 0;
      int status = l.heuristic(h, ds.desc, ds.a, ds.b, ds.d, ds.d, pref, wanted, results.data(), &found);
      // NOT_SUPPORTED (15) and an empty answer mean "no algorithm": the caller's fallback runs.
      VT_CHECK(status == 0 || status == 15, "cublasLtMatmulAlgoGetHeuristic failed with status ", status);
      for (int i = 0; status == 0 && i < found; ++i) {
        const HeuristicResult& r = results[size_t(i)];
        bool seen = false;
        for (const Choice& c : candidates) seen = seen || std::memcmp(&c.algo, &r.algo, sizeof(Algo)) == 0;
        if (r.state == 0 && !seen) candidates.push_back({true, r.algo, r.workspace});
      }
    };
    query(max_workspace(epilogue));
    // Note [Lt algorithm timing]: under a larger limit, also the answers under 1 MiB, which rule out split-K.
    if (wanted > 1 && max_workspace(epilogue) > kSmallWorkspace) query(kSmallWorkspace);
    if (!candidates.empty()) choice = candidates[0];
    bool keep = true;
    if (candidates.size() > 1) {  // Note [Lt algorithm timing]
      if (is_current_stream_capturing()) keep = false;
      else choice = fastest(candidates, stream, run);
    }
    if (keep) {
      std::lock_guard<std::mutex> g(g_cache_mu);
      g_cache.emplace(key, choice);
    }
  }
  if (!choice.found) return false;
  int status = run(choice);
  VT_CHECK(status == 0, "cublasLtMatmul failed with status ", status, " (m=", m, " n=", n, " k=", k, ")");
  g_launches.fetch_add(1, std::memory_order_relaxed);
  return true;
}

}  // namespace vt::cuda::blaslt
