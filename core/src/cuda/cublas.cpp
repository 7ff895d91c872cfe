// The dlopen-based cuBLAS loader and the one GEMM entry point (see vt/cuda/cublas.h). Handles are per thread
// and device (cuBLAS handles must not be shared by concurrent threads); each call binds the current stream.
#include "vt/cuda/cublas.h"

#include <dlfcn.h>

#include <array>
#include <atomic>
#include <mutex>

#include "vt/core/error.h"
#include "vt/cuda/check.h"
#include "vt/cuda/device.h"
#include "vt/cuda/stream.h"

namespace vt::cuda::blas {
namespace {

using Handle = void*;
using CreateFn = int (*)(Handle*);
using SetStreamFn = int (*)(Handle, cudaStream_t);
using GemmFn = int (*)(Handle, int, int, int, int, int, const void*, const void*, cudaDataType, int, long long,
                       const void*, cudaDataType, int, long long, const void*, void*, cudaDataType, int, long long, int,
                       int, int);
using GemmExFn = int (*)(Handle, int, int, int, int, int, const void*, const void*, cudaDataType, int, const void*,
                         cudaDataType, int, const void*, void*, cudaDataType, int, int, int);
using GemmBatchedFn = int (*)(Handle, int, int, int, int, int, const void*, const void* const*, cudaDataType, int,
                              const void* const*, cudaDataType, int, const void*, void* const*, cudaDataType, int, int,
                              int, int);

struct Library {
  void* so = nullptr;
  CreateFn create = nullptr;
  SetStreamFn set_stream = nullptr;
  GemmFn gemm = nullptr;
  GemmExFn gemm_ex = nullptr;
  GemmBatchedFn gemm_batched = nullptr;
  std::string tried;
};

std::mutex g_mu;
std::atomic<bool> g_allow_tf32{false};
std::vector<std::string> g_dirs = {"/usr/local/cuda/lib64"};

}  // namespace

void* open_library(std::initializer_list<const char*> names, std::string* tried) {
  std::vector<std::string> candidates(names.begin(), names.end());
  size_t dirs = 0;
  {
    std::lock_guard<std::mutex> g(g_mu);
    dirs = g_dirs.size();
    for (const std::string& d : g_dirs)
      for (const char* name : names) candidates.push_back(d + "/" + name);
  }
  void* so = nullptr;
  for (const std::string& c : candidates)
    if ((so = dlopen(c.c_str(), RTLD_NOW | RTLD_LOCAL))) break;
  if (tried) {
    tried->clear();
    for (const char* name : names) tried->append(tried->empty() ? "" : "/").append(name);
    tried->append(" on the loader path and in ").append(std::to_string(dirs));
    tried->append(" directories (/usr/local/cuda/lib64, site-packages/nvidia/*/lib)");
  }
  return so;
}

namespace {

const Library& library() {
  static const Library lib = [] {
    Library l;
    l.so = open_library({"libcublas.so.13", "libcublas.so.12", "libcublas.so"}, &l.tried);
    if (!l.so) return l;
    l.create = reinterpret_cast<CreateFn>(dlsym(l.so, "cublasCreate_v2"));
    l.set_stream = reinterpret_cast<SetStreamFn>(dlsym(l.so, "cublasSetStream_v2"));
    l.gemm = reinterpret_cast<GemmFn>(dlsym(l.so, "cublasGemmStridedBatchedEx"));
    l.gemm_ex = reinterpret_cast<GemmExFn>(dlsym(l.so, "cublasGemmEx"));
    l.gemm_batched = reinterpret_cast<GemmBatchedFn>(dlsym(l.so, "cublasGemmBatchedEx"));
    if (!l.create || !l.set_stream || !l.gemm || !l.gemm_ex || !l.gemm_batched) {
      l.tried = "a libcublas without cublasGemmEx/cublasGemmStridedBatchedEx/cublasGemmBatchedEx";
      l.so = nullptr;
    }
    return l;
  }();
  return lib;
}

const Library& loaded() {
  const Library& l = library();
  VT_CHECK(l.so, "cuBLAS could not be loaded (tried ", l.tried, "); install the nvidia-cublas wheel (pip) or put "
           "libcublas.so on LD_LIBRARY_PATH");
  return l;
}

Handle handle_for(int device) {
  thread_local std::array<Handle, 64> handles{};
  VT_CHECK(device >= 0 && device < 64, "cuBLAS: device index ", device, " out of range");
  Handle& h = handles[size_t(device)];
  if (!h) {
    int status = loaded().create(&h);
    VT_CHECK(status == 0, "cublasCreate failed with status ", status, " on cuda:", device);
  }
  return h;
}

}  // namespace

void add_search_dirs(const std::vector<std::string>& dirs) {
  std::lock_guard<std::mutex> g(g_mu);
  g_dirs.insert(g_dirs.end(), dirs.begin(), dirs.end());
}

bool available(std::string* why) {
  const Library& l = library();
  if (!l.so && why) *why = "tried " + l.tried;
  return l.so != nullptr;
}

void set_allow_tf32(bool on) { g_allow_tf32.store(on, std::memory_order_relaxed); }
bool allow_tf32() { return g_allow_tf32.load(std::memory_order_relaxed); }

namespace {
// The compute type actually used: float32 may run on TF32 tensor cores when the user allowed it.
int effective(Compute c) {
  return int(c == Compute::F32 && allow_tf32() ? Compute::F32_FAST_TF32 : c);
}

// The current device's handle bound to its current stream, and alpha = 1 / beta = 0 in the compute precision.
struct Call {
  Handle h;
  const void* alpha;
  const void* beta;
};
Call prepare(Compute compute) {
  static const double one_d = 1.0, zero_d = 0.0;
  static const float one_f = 1.0f, zero_f = 0.0f;
  // The logical device: under emulation cudaGetDevice names the physical GPU, whose index would pick another
  // logical device's current stream (a GEMM of cuda:3 ran on cuda:0's stream, unordered with cuda:3's work).
  int device = current_device_raw();
  Handle h = handle_for(device);
  int status = loaded().set_stream(h, reinterpret_cast<cudaStream_t>(current_stream(device)));
  VT_CHECK(status == 0, "cublasSetStream failed with status ", status);
  bool f64 = compute == Compute::F64;
  return {h, f64 ? static_cast<const void*>(&one_d) : &one_f, f64 ? static_cast<const void*>(&zero_d) : &zero_f};
}
constexpr int kDefaultAlgo = -1;  // CUBLAS_GEMM_DEFAULT
}  // namespace

void gemm_strided_batched(Op ta, Op tb, int m, int n, int k, const void* a, cudaDataType at, int lda, long long sa,
                          const void* b, cudaDataType bt, int ldb, long long sb, void* c, cudaDataType ct, int ldc,
                          long long sc, int batch, Compute compute) {
  Call call = prepare(compute);
  if (batch == 1) {
    // Note [One product, one GEMM entry]: a single product goes through cublasGemmEx, torch's entry for mm, not
    // the strided-batched entry with one batch, whose heuristic can land elsewhere: square 4096 float16 took 1.06x
    // torch's time that way on two H100 hosts, and 1.00-1.01x through cublasGemmEx, in torch's kernel.
    int status = loaded().gemm_ex(call.h, int(ta), int(tb), m, n, k, call.alpha, a, at, lda, b, bt, ldb, call.beta, c,
                                  ct, ldc, effective(compute), kDefaultAlgo);
    VT_CHECK(status == 0, "cublasGemmEx failed with status ", status, " (m=", m, " n=", n, " k=", k, ")");
    return;
  }
  int status = loaded().gemm(call.h, int(ta), int(tb), m, n, k, call.alpha, a, at, lda, sa, b, bt, ldb, sb, call.beta,
                             c, ct, ldc, sc, batch, effective(compute), kDefaultAlgo);
  VT_CHECK(status == 0, "cublasGemmStridedBatchedEx failed with status ", status, " (m=", m, " n=", n, " k=", k,
           " batch=", batch, ")");
}

void gemm_batched(Op ta, Op tb, int m, int n, int k, const void* const* a, cudaDataType at, int lda,
                  const void* const* b, cudaDataType bt, int ldb, void* const* c, cudaDataType ct, int ldc, int batch,
                  Compute compute) {
  Call call = prepare(compute);
  int status = loaded().gemm_batched(call.h, int(ta), int(tb), m, n, k, call.alpha, a, at, lda, b, bt, ldb, call.beta,
                                     c, ct, ldc, batch, effective(compute), kDefaultAlgo);
  VT_CHECK(status == 0, "cublasGemmBatchedEx failed with status ", status, " (m=", m, " n=", n, " k=", k,
           " batch=", batch, ")");
}

}  // namespace vt::cuda::blas
