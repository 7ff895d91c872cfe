// CUDA kernels of the fused nn ops (glue in ../nn_native_impl.h).
//
// Row kernels (softmax over the last dim, layer_norm, rms_norm): a row of up to 1024 entries is one warp's
// (8 rows per block, no shared memory, no block barrier), a longer row one 256-thread block's (row_groups.cuh).
// Each thread walks
// its row with stride equal to the group size, so a warp's loads are coalesced, and the row's second pass hits
// L1/L2; float32 norms of widths that are multiples of 4 keep the row in registers instead (Note [Rows in
// registers]). Softmax keeps a running (max, sum) per thread (online softmax) and merges them across the group.
// Softmax along an inner dim (inner > 1) is a thread per column: consecutive threads read consecutive addresses.
// The affine gradients of the norms sum over rows in two deterministic steps: blocks of 32 columns x a slice of
// rows write partial sums, then blocks of 32 columns x 32 slice lanes add each column's slices in a fixed order
// (Note [Slice-major partials]).
#include <cuda_runtime.h>

#include <cstdint>
#include <initializer_list>
#include <limits>
#include <tuple>
#include <type_traits>

#include "../act_backward_impl.h"
#include "../nn_native_impl.h"
#include "loops.cuh"
#include "row_groups.cuh"

namespace vt::nn_native {
namespace {

using cuda::grid_size;

using namespace cuda::rows;  // row groups and online softmax states (row_groups.cuh)

template <typename T>
__global__ void softmax_rows_kernel(const T* x, T* y, int64_t rows, int64_t n, Acc<T> scale, int64_t causal_rows,
                                    bool is_log, bool block) {
  using A = Acc<T>;
  RowGroup g = row_group(block);
  if (g.row >= rows) return;  // whole warps leave together: the row is uniform across a group
  const T* xr = x + g.row * n;
  T* yr = y + g.row * n;
  int64_t valid = causal_rows ? min(n, g.row % causal_rows + 1) : n;
  MaxSum<A> st{-std::numeric_limits<A>::infinity(), A(0)};
  for (int64_t j = g.lane; j < valid; j += g.width) st = push(st, A(xr[j]) * scale);
  st = group_reduce(st, [](MaxSum<A> p, MaxSum<A> q) { return merge(p, q); }, g.block);
  A logs = log(st.s);
  for (int64_t j = g.lane; j < n; j += g.width) {
    A v = A(xr[j]) * scale - st.m;
    A out = j >= valid ? (is_log ? -std::numeric_limits<A>::infinity() : A(0)) : is_log ? v - logs : exp(v) / st.s;
    yr[j] = T(out);
  }
}

template <typename T>
__global__ void softmax_backward_rows_kernel(const T* g, const T* y, T* gx, int64_t rows, int64_t n, bool log,
                                             Acc<T> scale, bool block) {
  using A = Acc<T>;
  RowGroup r = row_group(block);
  if (r.row >= rows) return;
  const T* gr = g + r.row * n;
  const T* yr = y + r.row * n;
  A dot = 0;
  for (int64_t j = r.lane; j < n; j += r.width) dot += log ? A(gr[j]) : A(gr[j]) * A(yr[j]);
  dot = group_reduce(dot, [](A p, A q) { return p + q; }, r.block);
  for (int64_t j = r.lane; j < n; j += r.width) {
    A out = log ? A(gr[j]) - exp(A(yr[j])) * dot : A(yr[j]) * (A(gr[j]) - dot);
    gx[r.row * n + j] = T(scale * out);
  }
}

// Softmax along a dim with inner > 1: thread per (outer, inner) column.
template <typename T>
__global__ void softmax_cols_kernel(const T* x, T* y, Rows r, Acc<T> scale, bool is_log) {
  using A = Acc<T>;
  for (int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; c < r.outer * r.inner;
       c += int64_t(gridDim.x) * blockDim.x) {
    int64_t base = (c / r.inner) * r.size * r.inner + c % r.inner;
    MaxSum<A> st{-std::numeric_limits<A>::infinity(), A(0)};
    for (int64_t j = 0; j < r.size; ++j) st = push(st, A(x[base + j * r.inner]) * scale);
    A logs = log(st.s);
    for (int64_t j = 0; j < r.size; ++j) {
      A v = A(x[base + j * r.inner]) * scale - st.m;
      y[base + j * r.inner] = T(is_log ? v - logs : exp(v) / st.s);
    }
  }
}

template <typename T>
__global__ void softmax_backward_cols_kernel(const T* g, const T* y, T* gx, Rows r, bool log, Acc<T> scale) {
  using A = Acc<T>;
  for (int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; c < r.outer * r.inner;
       c += int64_t(gridDim.x) * blockDim.x) {
    int64_t base = (c / r.inner) * r.size * r.inner + c % r.inner;
    A dot = 0;
    for (int64_t j = 0; j < r.size; ++j) {
      int64_t i = base + j * r.inner;
      dot += log ? A(g[i]) : A(g[i]) * A(y[i]);
    }
    for (int64_t j = 0; j < r.size; ++j) {
      int64_t i = base + j * r.inner;
      gx[i] = T(scale * (log ? A(g[i]) - exp(A(y[i])) * dot : A(y[i]) * (A(g[i]) - dot)));
    }
  }
}

template <typename T>
__global__ void norm_forward_kernel(const T* x, const T* w, const T* b, T* y, Acc<T>* mean, Acc<T>* rstd, int64_t M,
                                    int64_t N, Acc<T> eps, bool rms, bool block) {
  using A = Acc<T>;
  RowGroup g = row_group(block);
  if (g.row >= M) return;
  const T* xr = x + g.row * N;
  auto add = [](A p, A q) { return p + q; };
  A mu = 0;
  if (!rms) {
    for (int64_t j = g.lane; j < N; j += g.width) mu += A(xr[j]);
    mu = group_reduce(mu, add, g.block) / A(N);
  }
  A var = 0;  // second pass over the row (in cache): no cancellation from E[x^2] - E[x]^2
  for (int64_t j = g.lane; j < N; j += g.width) var += (A(xr[j]) - mu) * (A(xr[j]) - mu);
  var = group_reduce(var, add, g.block);
  A rs = A(1) / sqrt(var / A(N) + eps);
  if (g.lane == 0) {
    if (mean) mean[g.row] = mu;
    rstd[g.row] = rs;
  }
  for (int64_t j = g.lane; j < N; j += g.width) {
    A v = (A(xr[j]) - mu) * rs;
    if (w) v *= A(w[j]);
    if (b) v += A(b[j]);
    y[g.row * N + j] = T(v);
  }
}

// dx = rstd * (g w - mean(g w) - xhat * mean(g w xhat)); rms drops the mean(g w) term.
template <typename T>
__global__ void norm_backward_input_kernel(const T* x, const T* gy, const T* w, const Acc<T>* mean, const Acc<T>* rstd,
                                           T* gx, int64_t M, int64_t N, bool rms, bool block) {
  using A = Acc<T>;
  RowGroup g = row_group(block);
  if (g.row >= M) return;
  const T* xr = x + g.row * N;
  const T* gr = gy + g.row * N;
  A mu = mean ? mean[g.row] : A(0), rs = rstd[g.row];
  A2<A> sums{0, 0};
  for (int64_t j = g.lane; j < N; j += g.width) {
    A gw = A(gr[j]) * (w ? A(w[j]) : A(1));
    sums.a += gw;
    sums.b += gw * (A(xr[j]) - mu) * rs;
  }
  sums = group_reduce(sums, [](A2<A> p, A2<A> q) { return A2<A>{p.a + q.a, p.b + q.b}; }, g.block);
  A c1 = rms ? A(0) : sums.a / A(N), c2 = sums.b / A(N);
  for (int64_t j = g.lane; j < N; j += g.width) {
    A gw = A(gr[j]) * (w ? A(w[j]) : A(1));
    gx[g.row * N + j] = T(rs * (gw - c1 - (A(xr[j]) - mu) * rs * c2));
  }
}

// Note [Rows in registers]: a float32 row of N <= 1024 entries, N a multiple of 4 on 16-byte aligned bases (the
// widths of transformer layers), is held in registers by its warp as K float4s per lane: one read of the row from
// memory where the kernels above walk it two or three times (the later passes from L1/L2) and 16-byte accesses
// where they make 4-byte ones. Same formulas as those kernels; sums in another order (four entries per lane first).
//
// Note [Affine sums in the row pass]: the weight's and bias's gradients (sums over rows of g * xhat and of g) are
// taken in the same pass as the input gradient, from the registers that pass holds: each lane adds its columns
// over the rows its warp visits, the block's eight warps are added in a fixed order into one partial per column
// and block, and sum_slices_kernel adds the blocks' partials in a fixed order (deterministic, as the separate
// affine kernel's two steps). That kernel read x and g from memory a second time. Up to 512 columns (K <= 4): at
// 1024 the accumulators would double the registers of a kernel that already holds two rows.
template <int K> __device__ void load_row(float4 (&v)[K], const float* row, int lane, int nv) {
#pragma unroll
  for (int k = 0; k < K; ++k) {
    const int i = k * kWarp + lane;
    v[k] = i < nv ? reinterpret_cast<const float4*>(row)[i] : make_float4(0.f, 0.f, 0.f, 0.f);
  }
}
__device__ __forceinline__ float4 operator+(float4 a, float4 b) { return {a.x + b.x, a.y + b.y, a.z + b.z, a.w + b.w}; }
__device__ __forceinline__ float4 operator-(float4 a, float4 b) { return {a.x - b.x, a.y - b.y, a.z - b.z, a.w - b.w}; }
__device__ __forceinline__ float4 operator*(float4 a, float4 b) { return {a.x * b.x, a.y * b.y, a.z * b.z, a.w * b.w}; }
__device__ __forceinline__ float4 operator-(float4 a, float s) { return {a.x - s, a.y - s, a.z - s, a.w - s}; }
__device__ __forceinline__ float4 operator*(float4 a, float s) { return {a.x * s, a.y * s, a.z * s, a.w * s}; }
__device__ __forceinline__ float sum4(float4 a) { return a.x + a.y + a.z + a.w; }

template <int K>
__global__ void __launch_bounds__(kWarp* kRowsPerBlock)
    norm_forward_f32x4_kernel(const float* x, const float* w, const float* b, float* y, float* mean, float* rstd,
                              int64_t M, int N, float eps, bool rms) {
  const int64_t row = int64_t(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarp;
  const int lane = threadIdx.x % kWarp, nv = N / 4;
  if (row >= M) return;
  float4 v[K];
  load_row(v, x + row * N, lane, nv);
  auto add = [](float p, float q) { return p + q; };
  float mu = 0.f;
  if (!rms) {
#pragma unroll
    for (int k = 0; k < K; ++k) mu += sum4(v[k]);  // padding lanes hold zeros
    mu = group_reduce(mu, add, false) / float(N);
  }
  float var = 0.f;
#pragma unroll
  for (int k = 0; k < K; ++k)
    if (k * kWarp + lane < nv) var += sum4((v[k] - mu) * (v[k] - mu));
  var = group_reduce(var, add, false);
  const float rs = 1.f / sqrtf(var / float(N) + eps);
  if (lane == 0) {
    if (mean) mean[row] = mu;
    rstd[row] = rs;
  }
#pragma unroll
  for (int k = 0; k < K; ++k) {
    const int i = k * kWarp + lane;
    if (i >= nv) continue;
    float4 o = (v[k] - mu) * rs;
    if (w) o = o * reinterpret_cast<const float4*>(w)[i];
    if (b) o = o + reinterpret_cast<const float4*>(b)[i];
    reinterpret_cast<float4*>(y + row * N)[i] = o;
  }
}

// The input gradient of rows in registers; with kAffine, also the affine gradients' partial sums (Note [Affine
// sums in the row pass]). Warps walk rows with a grid stride.
template <int K, bool kAffine>
__global__ void __launch_bounds__(kWarp* kRowsPerBlock)
    norm_backward_f32x4_kernel(const float* x, const float* gy, const float* w, const float* mean, const float* rstd,
                               float* gx, float* pw, float* pb, int64_t M, int N, bool rms) {
  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp, nv = N / 4;
  float4 sw[K], sb[K];  // kAffine: this lane's columns of sum g * xhat and sum g over the warp's rows
#pragma unroll
  for (int k = 0; k < K; ++k) sw[k] = sb[k] = make_float4(0.f, 0.f, 0.f, 0.f);
  for (int64_t row = int64_t(blockIdx.x) * kRowsPerBlock + warp; row < M;
       row += int64_t(gridDim.x) * kRowsPerBlock) {
    float4 xh[K], gw[K];
    load_row(xh, x + row * N, lane, nv);
    load_row(gw, gy + row * N, lane, nv);
    const float mu = mean ? mean[row] : 0.f, rs = rstd[row];
    A2<float> sums{0.f, 0.f};
#pragma unroll
    for (int k = 0; k < K; ++k) {
      const int i = k * kWarp + lane;
      if (i >= nv) continue;
      xh[k] = (xh[k] - mu) * rs;
      if constexpr (kAffine) {
        sw[k] = sw[k] + gw[k] * xh[k];
        sb[k] = sb[k] + gw[k];
      }
      if (w) gw[k] = gw[k] * reinterpret_cast<const float4*>(w)[i];
      sums.a += sum4(gw[k]);
      sums.b += sum4(gw[k] * xh[k]);
    }
    sums = group_reduce(sums, [](A2<float> p, A2<float> q) { return A2<float>{p.a + q.a, p.b + q.b}; }, false);
    const float c1 = rms ? 0.f : sums.a / float(N), c2 = sums.b / float(N);
#pragma unroll
    for (int k = 0; k < K; ++k) {
      const int i = k * kWarp + lane;
      if (i >= nv) continue;
      reinterpret_cast<float4*>(gx + row * N)[i] = (gw[k] - c1 - xh[k] * c2) * rs;
    }
  }
  if constexpr (kAffine) {
    // The block's warps in a fixed order, one partial per column and block: row blockIdx.x of [blocks, N], one
    // 16-byte store per four columns (Note [Slice-major partials]).
    __shared__ float4 red[kRowsPerBlock][K * kWarp];
    for (int pass = 0; pass < 2; ++pass) {
      float* part = pass ? pb : pw;
      if (!part) continue;  // uniform across the block
#pragma unroll
      for (int k = 0; k < K; ++k) red[warp][k * kWarp + lane] = pass ? sb[k] : sw[k];
      __syncthreads();
      for (int i = threadIdx.x; i < nv; i += blockDim.x) {
        float4 t = red[0][i];
        for (int r = 1; r < kRowsPerBlock; ++r) t = t + red[r][i];
        reinterpret_cast<float4*>(part + int64_t(blockIdx.x) * N)[i] = t;
      }
      __syncthreads();
    }
  }
}

// Note [Rows in registers]: whether these tensors take the float4 kernels, and the float4s per lane they need.
inline bool aligned16(const Tensor& t) { return !t.defined() || reinterpret_cast<uintptr_t>(t.data_ptr()) % 16 == 0; }
inline bool rows_in_registers(const NormArgs& a, std::initializer_list<const Tensor*> others) {
  if (a.x.dtype() != ScalarType::Float32 || a.N > 1024 || a.N % 4 != 0 || !aligned16(a.x)) return false;
  for (const Tensor* t : {&a.weight, &a.bias})
    if (t->defined() && (t->dtype() != ScalarType::Float32 || !aligned16(*t))) return false;
  for (const Tensor* t : others)
    if (!aligned16(*t)) return false;
  return true;
}
// Calls f with std::integral_constant<int, K>: K float4s per lane cover the row (K * 32 * 4 >= N).
template <typename F> void with_row_vectors(int64_t N, F f) {
  if (N <= 256) f(std::integral_constant<int, 2>{});
  else if (N <= 512) f(std::integral_constant<int, 4>{});
  else f(std::integral_constant<int, 8>{});
}

// Block (32 columns x 8 row lanes) over slice blockIdx.y of the rows: partial sums of g * xhat and g.
constexpr int kColTile = 32, kRowLanes = 8;
template <typename T>
__global__ void norm_affine_partial_kernel(const T* x, const T* gy, const Acc<T>* mean, const Acc<T>* rstd, Acc<T>* pw,
                                           Acc<T>* pb, int64_t M, int64_t N) {
  using A = Acc<T>;
  int64_t col = int64_t(blockIdx.x) * kColTile + threadIdx.x;
  int64_t lo = M * blockIdx.y / gridDim.y, hi = M * (blockIdx.y + 1) / gridDim.y;
  A sw = 0, sb = 0;
  if (col < N) {
    for (int64_t i = lo + threadIdx.y; i < hi; i += kRowLanes) {
      A gv = A(gy[i * N + col]);
      if (pw) sw += gv * (A(x[i * N + col]) - (mean ? mean[i] : A(0))) * rstd[i];
      sb += gv;
    }
  }
  __shared__ A tw[kRowLanes][kColTile], tb[kRowLanes][kColTile];
  tw[threadIdx.y][threadIdx.x] = sw;
  tb[threadIdx.y][threadIdx.x] = sb;
  __syncthreads();
  if (threadIdx.y != 0 || col >= N) return;
  for (int r = 1; r < kRowLanes; ++r) sw += tw[r][threadIdx.x], sb += tb[r][threadIdx.x];
  if (pw) pw[blockIdx.y * N + col] = sw;  // [slices, N]: the warp's 32 columns are one run
  if (pb) pb[blockIdx.y * N + col] = sb;
}

// Note [Slice-major partials]: the partial sums are laid out [slices, N], so that a block writing its slice's
// columns writes one contiguous run (16-byte stores from the row kernel, a warp's 32 adjacent columns from the
// affine kernel), and the final sum reads across columns: a block of 32 columns x kSliceLanes lanes, lane y
// adding slices y, y + kSliceLanes, ... of its column, then the lanes added in a fixed order through shared
// memory (deterministic). Column-major partials ([N, slices], a warp per column) made every partial store a
// separate sector, each shared by the stores of eight blocks: the row kernel of MiniGPT's layer norm backward
// (8192 x 256, 1024 blocks) took 17.2 us per call for 24 MB of rows, slice-major ones 11.2 (H100). blockIdx.y = 1
// sums part2 into out2: the weight and bias gradients in one launch.
constexpr int kSliceLanes = 32;
template <typename T>
__global__ void __launch_bounds__(kColTile* kSliceLanes)
    sum_slices_kernel(const Acc<T>* part, T* out, const Acc<T>* part2, T* out2, int64_t slices, int64_t N) {
  if (blockIdx.y) part = part2, out = out2;
  const int64_t col = int64_t(blockIdx.x) * kColTile + threadIdx.x;
  Acc<T> s = 0;
  if (col < N)
#pragma unroll 4
    for (int64_t k = threadIdx.y; k < slices; k += kSliceLanes) s += part[k * N + col];
  __shared__ Acc<T> lanes[kSliceLanes][kColTile];
  lanes[threadIdx.y][threadIdx.x] = s;
  __syncthreads();
  if (threadIdx.y != 0 || col >= N) return;
  for (int y = 1; y < kSliceLanes; ++y) s += lanes[y][threadIdx.x];
  out[col] = T(s);
}

struct Launch {
  cuda::DeviceGuard guard;
  cudaStream_t stream;
  explicit Launch(const Tensor& t)
      : guard(t.device().index), stream(reinterpret_cast<cudaStream_t>(cuda::current_stream(t.device().index))) {}
};

template <typename T> const T* ptr_or_null(const Tensor& t) { return t.defined() ? t.data<T>() : nullptr; }
template <typename T> T* mut_or_null(const Tensor& t) { return t.defined() ? t.data<T>() : nullptr; }

struct CudaNnKernels {
  static void softmax_forward(const Tensor& x, const Tensor& y, Rows r, const SoftmaxOpts& o) {
    Launch l(x);
    VT_DISPATCH_FLOATING(x.dtype(), "softmax", [&] {
      using A = Acc<scalar_t>;
      if (r.inner == 1) {
        int64_t rows = r.outer;
        bool block = use_block(r.size);
        softmax_rows_kernel<<<row_grid(rows, block), block ? kBlockRow : kWarp * kRowsPerBlock, 0, l.stream>>>(
            x.data<scalar_t>(), y.data<scalar_t>(), rows, r.size, A(o.scale), o.causal_rows, o.log, block);
      } else {
        softmax_cols_kernel<<<grid_size(r.outer * r.inner), cuda::kThreads, 0, l.stream>>>(
            x.data<scalar_t>(), y.data<scalar_t>(), r, A(o.scale), o.log);
      }
    });
    VT_CUDA_CHECK(cudaGetLastError());
  }

  static void softmax_backward(const Tensor& g, const Tensor& y, const Tensor& gx, Rows r, bool log, double scale) {
    Launch l(y);
    VT_DISPATCH_FLOATING(y.dtype(), "softmax backward", [&] {
      using A = Acc<scalar_t>;
      if (r.inner == 1) {
        bool block = use_block(r.size);
        softmax_backward_rows_kernel<<<row_grid(r.outer, block), block ? kBlockRow : kWarp * kRowsPerBlock, 0,
                                       l.stream>>>(g.data<scalar_t>(), y.data<scalar_t>(), gx.data<scalar_t>(), r.outer,
                                                   r.size, log, A(scale), block);
      } else {
        softmax_backward_cols_kernel<<<grid_size(r.outer * r.inner), cuda::kThreads, 0, l.stream>>>(
            g.data<scalar_t>(), y.data<scalar_t>(), gx.data<scalar_t>(), r, log, A(scale));
      }
    });
    VT_CUDA_CHECK(cudaGetLastError());
  }

  static void norm_forward(const NormArgs& a, const Tensor& y, const Tensor& mean, const Tensor& rstd) {
    Launch l(a.x);
    if (rows_in_registers(a, {&y})) {  // Note [Rows in registers]
      with_row_vectors(a.N, [&](auto k) {
        norm_forward_f32x4_kernel<decltype(k)::value><<<row_grid(a.M, false), kWarp * kRowsPerBlock, 0, l.stream>>>(
            a.x.data<float>(), ptr_or_null<float>(a.weight), ptr_or_null<float>(a.bias), y.data<float>(),
            mut_or_null<float>(mean), rstd.data<float>(), a.M, int(a.N), float(a.eps), a.rms);
      });
      VT_CUDA_CHECK(cudaGetLastError());
      return;
    }
    VT_DISPATCH_FLOATING(a.x.dtype(), a.rms ? "rms_norm" : "layer_norm", [&] {
      using A = Acc<scalar_t>;
      bool block = use_block(a.N);
      norm_forward_kernel<<<row_grid(a.M, block), block ? kBlockRow : kWarp * kRowsPerBlock, 0, l.stream>>>(
          a.x.data<scalar_t>(), ptr_or_null<scalar_t>(a.weight), ptr_or_null<scalar_t>(a.bias), y.data<scalar_t>(),
          mut_or_null<A>(mean), rstd.data<A>(), a.M, a.N, A(a.eps), a.rms, block);
    });
    VT_CUDA_CHECK(cudaGetLastError());
  }

  // The input gradient and any affine gradients (each tensor may be undefined; M, N > 0).
  static void norm_backward(const NormArgs& a, const Tensor& g, const Tensor& mean, const Tensor& rstd,
                            const Tensor& gx, const Tensor& gw, const Tensor& gb) {
    const bool affine = gw.defined() || gb.defined();
    if (!gx.defined() || !rows_in_registers(a, {&g, &gx})) {
      if (gx.defined()) norm_backward_input(a, g, mean, rstd, gx);
      if (affine) norm_backward_affine(a, g, mean, rstd, gw, gb);
      return;
    }
    Launch l(a.x);  // Note [Rows in registers]
    const bool fuse = affine && a.N <= 512;  // Note [Affine sums in the row pass]
    const int64_t rows_blocks = row_grid(a.M, false).x;
    // Fused: half a wave of blocks, so that a warp takes about two rows of a large M and the slices to add are
    // half as many (MiniGPT's 8192 x 256 on an H100: row kernel + slice sum 191 us a step with a block per wave
    // slot, 174 with half, 174 with a quarter, 200 with an eighth).
    const int64_t blocks = fuse ? std::min<int64_t>(rows_blocks, std::max(1, grid_size(int64_t(1) << 40) / 2))
                                : rows_blocks;
    auto partials = [&](const Tensor& grad) {
      if (!fuse || !grad.defined()) return Tensor();
      return empty_tensor(DimVector{blocks, a.N}, ScalarType::Float32, a.x.device());
    };
    Tensor pw = partials(gw), pb = partials(gb);
    with_row_vectors(a.N, [&](auto k) {
      constexpr int K = decltype(k)::value;
      auto args = std::make_tuple(a.x.data<float>(), g.data<float>(), ptr_or_null<float>(a.weight),
                                  ptr_or_null<float>(mean), rstd.data<float>(), gx.data<float>(),
                                  mut_or_null<float>(pw), mut_or_null<float>(pb), a.M, int(a.N), a.rms);
      auto launch = [&](auto kernel) {
        std::apply([&](auto... v) { kernel<<<unsigned(blocks), kWarp * kRowsPerBlock, 0, l.stream>>>(v...); }, args);
      };
      if constexpr (K <= 4) {
        if (fuse) return launch(norm_backward_f32x4_kernel<K, true>);
      }
      launch(norm_backward_f32x4_kernel<K, false>);
    });
    VT_CUDA_CHECK(cudaGetLastError());
    if (fuse) sum_slices<float>(pw, gw, pb, gb, blocks, a.N, l.stream);
    else if (affine) norm_backward_affine(a, g, mean, rstd, gw, gb);
  }

  static void norm_backward_input(const NormArgs& a, const Tensor& g, const Tensor& mean, const Tensor& rstd,
                                  const Tensor& gx) {
    Launch l(a.x);
    VT_DISPATCH_FLOATING(a.x.dtype(), "norm backward", [&] {
      using A = Acc<scalar_t>;
      bool block = use_block(a.N);
      norm_backward_input_kernel<<<row_grid(a.M, block), block ? kBlockRow : kWarp * kRowsPerBlock, 0, l.stream>>>(
          a.x.data<scalar_t>(), g.data<scalar_t>(), ptr_or_null<scalar_t>(a.weight), ptr_or_null<A>(mean),
          rstd.data<A>(), gx.data<scalar_t>(), a.M, a.N, a.rms, block);
    });
    VT_CUDA_CHECK(cudaGetLastError());
  }

  static void norm_backward_affine(const NormArgs& a, const Tensor& g, const Tensor& mean, const Tensor& rstd,
                                   const Tensor& gw, const Tensor& gb) {
    Launch l(a.x);
    // Enough row slices to fill the GPU about twice (grid_size(kThreads * n) is n blocks up to one wave),
    // keeping at least 32 rows per slice.
    int64_t tiles = (a.N + kColTile - 1) / kColTile;
    int64_t wave = grid_size(int64_t(cuda::kThreads) * (int64_t(1) << 30));
    int64_t slices = std::max<int64_t>(1, std::min<int64_t>((a.M + 31) / 32, 2 * wave / tiles));
    ScalarType st = stats_dtype(a.x.dtype());
    Tensor pw = gw.defined() ? empty_tensor(DimVector{slices, a.N}, st, a.x.device()) : Tensor();
    Tensor pb = gb.defined() ? empty_tensor(DimVector{slices, a.N}, st, a.x.device()) : Tensor();
    VT_DISPATCH_FLOATING(a.x.dtype(), "norm backward", [&] {
      using A = Acc<scalar_t>;
      norm_affine_partial_kernel<<<dim3(unsigned(tiles), unsigned(slices)), dim3(kColTile, kRowLanes), 0, l.stream>>>(
          a.x.data<scalar_t>(), g.data<scalar_t>(), ptr_or_null<A>(mean), rstd.data<A>(), mut_or_null<A>(pw),
          mut_or_null<A>(pb), a.M, a.N);
      VT_CUDA_CHECK(cudaGetLastError());
      sum_slices<scalar_t>(pw, gw, pb, gb, slices, a.N, l.stream);
    });
  }

  // The slices of the wanted gradients in one launch: the weight's (if wanted), then the bias's.
  template <typename T>
  static void sum_slices(const Tensor& pw, const Tensor& gw, const Tensor& pb, const Tensor& gb, int64_t slices,
                         int64_t N, cudaStream_t stream) {
    using A = Acc<T>;
    const bool both = gw.defined() && gb.defined();
    const Tensor &p1 = gw.defined() ? pw : pb, &o1 = gw.defined() ? gw : gb;
    dim3 grid(unsigned((N + kColTile - 1) / kColTile), both ? 2u : 1u);
    sum_slices_kernel<<<grid, dim3(kColTile, kSliceLanes), 0, stream>>>(
        p1.data<A>(), o1.data<T>(), both ? pb.data<A>() : nullptr, both ? gb.data<T>() : nullptr, slices, N);
    VT_CUDA_CHECK(cudaGetLastError());
  }
};

}  // namespace
}  // namespace vt::nn_native

VT_LIBRARY(vt, nn_native_cuda) {
  vt::nn_native::register_nn_native<vt::nn_native::CudaNnKernels>(m, vt::DispatchKey::CUDA);
  vt::act_backward::register_act_backward<vt::cuda::CudaLaunch>(m, vt::DispatchKey::CUDA);
}
