#pragma once
// CUDA elementwise loops over a TensorIterator: gpu_kernel(it, f) is cpu_kernel's twin. `f` is a functor with
// a __host__ __device__ call operator whose argument and result types are the operands' dtypes (outputs first).
//
// Two kernels per functor:
//  - contiguous: every operand dense along one coalesced dim (or a scalar); 16-byte vector loads and stores,
//    with a scalar tail. Taken when each dense pointer is aligned to its vector width. Also runs rows of such
//    a dim at any aligned stride, a broadcast operand's 0 included (Note [Row vectors]).
//  - strided: any layout; an offset calculator turns the linear index into per-operand byte offsets by 32-bit
//    multiply-shift division. Iterations past 2^31 elements launch it once per chunk (Note [32-bit chunks]).
// Inputs that are 0-dim CPU tensors (Python numbers, wrapped scalars) travel by value in the kernel
// parameters, so an op with a Python scalar never synchronises with the host.
#include <cuda_runtime.h>

#include <cuda/std/tuple>
#include <utility>

#include "../fn_traits.h"
#include "vt/core/tensor_iterator.h"
#include "vt/cuda/check.h"
#include "vt/cuda/guard.h"
#include "vt/cuda/stream.h"

namespace vt::cuda {

inline constexpr int kThreads = 256;

// Resident blocks of kThreads on the current device (a full-occupancy wave), read once per device.
int wave_blocks();
// Blocks for `work` items of one thread each, capped at a full-occupancy wave (the kernels loop).
int grid_size(int64_t work);  // in loops.cu, with plan_launch
// The strided elementwise kernel's grid: a block per kThreads elements (Note [Grid caps]).
int strided_grid_size(int64_t work);

// q = n / d by multiply and shift (Granlund & Montgomery), exact for n < 2^31.
struct IntDivider {
  uint32_t divisor = 1, magic = 1, shift = 0;
  IntDivider() = default;
  explicit IntDivider(uint32_t d) : divisor(d) {
    while (shift < 32 && (uint64_t(1) << shift) < d) ++shift;
    magic = uint32_t(((uint64_t(1) << 32) * ((uint64_t(1) << shift) - d)) / d + 1);
  }
  __device__ uint32_t div(uint32_t n) const { return (__umulhi(n, magic) + n) >> shift; }
};

// Linear index (in iteration order, dim 0 innermost) -> byte offset of each of N operands.
// Note [Unrolled dims]: the 32-bit path unrolls the first kUnrolledDims dims (each dim's divisor and strides are
// then constant-bank operands, no indexed loads) and loops over the rest. After the iterator coalesces dims, an
// elementwise or reduction layout rarely keeps more than 3; unrolling all 16 dims made every strided kernel
// (two per op and dtype, and four offset calculations per reduction loop) several times larger for nothing:
// about a sixth of the elementwise files' device-compile time. The 64-bit path (past 2^31 elements) stays a
// rolled loop: unrolled, its 64-bit divisions made every strided kernel about half as large again (cubin of
// binary_ops.cu 9.6 -> 6.7 MB, its device compile 57 -> 42 s on 2 cores); the elementwise kernels drop it
// altogether (kIndex64 = false, Note [32-bit chunks]). Everything here must inline into the kernel: a call that
// takes the calculator's address (an out-of-line member) makes every thread copy it, a kernel parameter, into
// local memory first (600 bytes per thread: MiniGPT's bias adds took ~150 us each on an H200).
inline constexpr int kUnrolledDims = 4;
template <int N, bool kIndex64 = true> struct OffsetCalc {
  int ndim = 0;
  bool index32 = true;
  IntDivider div[kMaxDims];
  int64_t sizes[kMaxDims];
  int64_t strides[kMaxDims][N];

  OffsetCalc(IntArrayRef shape, FunctionRef<int64_t(int op, int dim)> stride, int64_t numel) {
    ndim = int(shape.size());
    index32 = numel <= INT32_MAX;
    VT_INTERNAL_ASSERT(kIndex64 || index32, "a 32-bit offset calculator over ", numel, " elements");
    for (int d = 0; d < ndim; ++d) {
      sizes[d] = shape[size_t(d)];
      if (index32) div[d] = IntDivider(uint32_t(sizes[d]));
      for (int a = 0; a < N; ++a) strides[d][a] = stride(a, d);
    }
  }
  __device__ void get(int64_t idx, int64_t (&off)[N]) const {
#pragma unroll
    for (int a = 0; a < N; ++a) off[a] = 0;
    if (!kIndex64 || index32) {
      uint32_t i = uint32_t(idx);
#pragma unroll
      for (int d = 0; d < kUnrolledDims; ++d) {
        if (d == ndim) break;
        uint32_t q = div[d].div(i), r = i - q * div[d].divisor;
#pragma unroll
        for (int a = 0; a < N; ++a) off[a] += int64_t(r) * strides[d][a];
        i = q;
      }
#pragma unroll 1
      for (int d = kUnrolledDims; d < ndim; ++d) {
        uint32_t q = div[d].div(i), r = i - q * div[d].divisor;
#pragma unroll
        for (int a = 0; a < N; ++a) off[a] += int64_t(r) * strides[d][a];
        i = q;
      }
    } else {  // past 2^31 elements (Note [Unrolled dims])
#pragma unroll 1
      for (int d = 0; d < ndim; ++d) {
        int64_t r = idx % sizes[d];
        for (int a = 0; a < N; ++a) off[a] += r * strides[d][a];
        idx /= sizes[d];
      }
    }
  }
};

enum InputMode : uint8_t { kDense = 0, kDeviceScalar = 1, kHostScalar = 2 };

// Kernel-parameter view of the inputs: a device pointer, or the bits of a host scalar.
template <int N> struct Inputs {
  const char* ptr[N > 0 ? N : 1] = {};
  uint64_t value[N > 0 ? N : 1] = {};
  uint8_t mode[N > 0 ? N : 1] = {};
};

template <typename T, int V> struct alignas(sizeof(T) * V) Vec {
  T v[V];
};

// Elements per 16-byte vector of the widest operand, at most 8 (keeps registers modest for 1-byte types).
template <typename R, typename... A> constexpr int vec_width() {
  size_t widest = sizeof(R);
  ((widest = sizeof(A) > widest ? sizeof(A) : widest), ...);
  size_t v = 16 / widest;
  return int(v > 8 ? 8 : v < 1 ? 1 : v);
}

template <typename T> __device__ __forceinline__ T scalar_input(const char* ptr, uint64_t bits, uint8_t mode) {
  if (mode == kHostScalar) {
    T v;
    memcpy(&v, &bits, sizeof(T));
    return v;
  }
  return *reinterpret_cast<const T*>(ptr);
}

template <typename T, int V>
__device__ __forceinline__ Vec<T, V> load_vec(const char* ptr, uint8_t mode, T scalar, int64_t v) {
  if (mode == kDense) return reinterpret_cast<const Vec<T, V>*>(ptr)[v];
  Vec<T, V> r;
#pragma unroll
  for (int j = 0; j < V; ++j) r.v[j] = scalar;
  return r;
}

// Note [Row vectors]: the vector kernel walks `rows` rows of n elements each (blockIdx.y strides the rows; a
// dense 1-d layout is one row). A row is the iterator's dim 0, unit-strided for every dense operand; rows are
// dim 1, at any byte stride that keeps each row start aligned to its vector - 0 for a broadcast operand, so a
// Linear's bias add ([tokens, features] + [features]) loads 16-byte vectors of both operands instead of going
// through the strided kernel one element per thread (1.28x torch's time on an H200 that way, 0.79x this way).
// Its cost: the row pointers take registers (the float add's kernel 30 -> 40, 6 of 8 blocks resident), and a
// 1 GiB add measured 1.06 -> 1.10x torch's time (benchmarks/results/cuda_ops_NVIDIA_H200_x1.txt).
template <int N> struct RowStrides {
  int64_t out = 0;
  int64_t in[N > 0 ? N : 1] = {};
};

// Note [Two vectors per thread]: each thread loads its next two vectors (a grid stride apart) before computing
// either, so two loads per operand are in flight where one was, and the grid is half as many blocks. An op whose
// arithmetic per element rivals its traffic gains most: on an H200 (2026-12-05) gelu's gradient (two inputs, an
// erf and an exp) went from 1.27x to 1.03x torch's time at 1 GiB and 1.24x -> 1.06x at 32 MiB, while add, copy,
// casts, fills and gelu itself stayed within 2%. Only for vectors of at most four elements (4- and 8-byte types):
// a vector of eight (16- and 8-bit types) already holds eight elements in flight, as two float vectors do, and
// pairing it unrolled sixteen elements' arithmetic per iteration (unary_ops.cu's PTX 348k -> 304k lines without
// it); on an H100 no row of benchmarks/cuda_ops.py got slower (bfloat16 gelu's gradient 1.18x torch's time, 1.29x
// on an H200 with the pairs). A thread whose last vector has no pair computes it twice and stores it once,
// rather than finishing in a one-vector loop: that loop was a third copy of the op's arithmetic (unary_ops.cu's
// PTX 304k -> 282k lines without it).
constexpr bool two_vectors(int vec) { return vec <= 4; }
template <int V, typename Op, size_t... I>
__global__ void __launch_bounds__(kThreads)
    contiguous_kernel(Op op, char* out, Inputs<int(sizeof...(I))> in, int64_t n, int64_t rows,
                      RowStrides<int(sizeof...(I))> row_strides, std::index_sequence<I...>) {
  using R = typename fn_traits<Op>::result;
  // Scalar inputs are read once per thread; dense ones are loaded per vector.
  ::cuda::std::tuple<fn_arg_t<Op, I>...> scalars{
      (in.mode[I] == kDense ? fn_arg_t<Op, I>() : scalar_input<fn_arg_t<Op, I>>(in.ptr[I], in.value[I], in.mode[I]))...};
  const int64_t step = int64_t(gridDim.x) * blockDim.x;
  const int64_t first = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t nvec = n / V;
  for (int64_t row = blockIdx.y; row < rows; row += gridDim.y) {
    char* out_row = out + row * row_strides.out;
    const char* in_row[sizeof...(I) > 0 ? sizeof...(I) : 1] = {
        (in.mode[I] == kDense ? in.ptr[I] + row * row_strides.in[I] : in.ptr[I])...};
    int64_t v = first;
    if constexpr (two_vectors(V)) {
      for (; v < nvec; v += 2 * step) {  // Note [Two vectors per thread]
        // A thread's last vector may have no pair: the pair then repeats it and its second result is not stored.
        const bool paired = v + step < nvec;
        const int64_t w = paired ? v + step : v;
        ::cuda::std::tuple<Vec<fn_arg_t<Op, I>, V>...> x{
            load_vec<fn_arg_t<Op, I>, V>(in_row[I], in.mode[I], ::cuda::std::get<I>(scalars), v)...};
        ::cuda::std::tuple<Vec<fn_arg_t<Op, I>, V>...> y{
            load_vec<fn_arg_t<Op, I>, V>(in_row[I], in.mode[I], ::cuda::std::get<I>(scalars), w)...};
        Vec<R, V> r, q;
#pragma unroll
        for (int j = 0; j < V; ++j) r.v[j] = op(::cuda::std::get<I>(x).v[j]...);
#pragma unroll
        for (int j = 0; j < V; ++j) q.v[j] = op(::cuda::std::get<I>(y).v[j]...);
        reinterpret_cast<Vec<R, V>*>(out_row)[v] = r;
        if (paired) reinterpret_cast<Vec<R, V>*>(out_row)[w] = q;
      }
    } else {
      for (; v < nvec; v += step) {  // eight-element vectors: one a thread at a time
        ::cuda::std::tuple<Vec<fn_arg_t<Op, I>, V>...> x{
            load_vec<fn_arg_t<Op, I>, V>(in_row[I], in.mode[I], ::cuda::std::get<I>(scalars), v)...};
        Vec<R, V> r;
#pragma unroll
        for (int j = 0; j < V; ++j) r.v[j] = op(::cuda::std::get<I>(x).v[j]...);
        reinterpret_cast<Vec<R, V>*>(out_row)[v] = r;
      }
    }
    for (int64_t k = nvec * V + first; k < n; k += step) {
      reinterpret_cast<R*>(out_row)[k] = op((in.mode[I] == kDense
                                                 ? reinterpret_cast<const fn_arg_t<Op, I>*>(in_row[I])[k]
                                                 : ::cuda::std::get<I>(scalars))...);
    }
  }
}

template <typename Op, int N, size_t... I>
__global__ void __launch_bounds__(kThreads) strided_kernel(Op op, char* out, Inputs<N - 1> in,
                                                           OffsetCalc<N, false> calc, int64_t n,
                                                           std::index_sequence<I...>) {
  using R = typename fn_traits<Op>::result;
  const int64_t step = int64_t(gridDim.x) * blockDim.x;
  for (int64_t k = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; k < n; k += step) {
    int64_t off[N];
    calc.get(k, off);
    *reinterpret_cast<R*>(out + off[0]) =
        op(scalar_input<fn_arg_t<Op, I>>(in.ptr[I] + off[I + 1], in.value[I], in.mode[I])...);
  }
}

// What launch() decides from the iterator, whatever the functor: checked in one non-template function so each
// op and dtype adds only its two kernels and their launches to a file's host compile (Note [One planner]).
struct LaunchOperands {
  int nin = 0;
  ScalarType out_dtype = ScalarType::Float32;
  size_t out_size = 0;
  const ScalarType* in_dtypes = nullptr;
  const size_t* in_sizes = nullptr;
  int vec = 1;  // the contiguous kernel's elements per vector
};
// The vector kernel's layout (Note [Row vectors]); rows == 0 when only the strided kernel fits the operands.
struct RowPlan {
  int64_t n = 0;     // elements per row
  int64_t rows = 0;  // 0: strided
  int64_t out_row_stride = 0;
  int grid_x = 1, grid_y = 1;
};
// Fills the inputs' pointers, host-scalar bits, modes and row strides (arrays of ops.nin) and picks the kernel.
RowPlan plan_launch(TensorIterator& it, const LaunchOperands& ops, const char** ptr, uint64_t* value, uint8_t* mode,
                    int64_t* in_row_strides);

// Note [32-bit chunks]: the strided kernel indexes in 32 bits only, which keeps the 64-bit divisions out of
// every op's strided kernel (binary_ops.cu's cubin 7.0 -> 6.0 MB, its device compile 34 -> 31 s on 2 cores). An
// iteration of more than INT32_MAX elements runs as several launches instead, each over at most INT32_MAX
// elements: a run of the outermost dim (or, when the dims inside it already hold more than INT32_MAX elements,
// one index of it at a time, recursively), its operands' base pointers moved to the run's start. As torch's
// TensorIterator does (with_32bit_indexing). `chunk` gets the sub-shape and each operand's byte offset.
void for_each_index32_chunk(IntArrayRef shape, int nops, FunctionRef<int64_t(int op, int dim)> stride,
                            FunctionRef<void(IntArrayRef shape, const int64_t* offsets)> chunk);

// Note [One planner]: launch<Op> used to describe the operands itself (asserts, a lambda per input, alignment),
// and that host code was compiled once per op and dtype: several hundred copies in the binary and unary files,
// about a quarter of their host compile (binary_ops.cu 26 -> 19 s, unary_ops.cu 31 -> 22 s on 2 cores). Only the
// kernel launches (and the offset calculator, per operand count) are left here.
template <typename Op, size_t... I>
void launch(TensorIterator& it, const Op& op, std::index_sequence<I...> idx) {
  using R = typename fn_traits<Op>::result;
  constexpr int nin = int(sizeof...(I));
  constexpr int V = vec_width<R, fn_arg_t<Op, I>...>();
  static constexpr ScalarType in_dtypes[nin > 0 ? nin : 1] = {scalar_type_of<fn_arg_t<Op, I>>...};
  static constexpr size_t in_sizes[nin > 0 ? nin : 1] = {sizeof(fn_arg_t<Op, I>)...};
  const int64_t n = it.numel();
  Inputs<nin> in;
  RowStrides<nin> row_strides;
  RowPlan plan = plan_launch(it, LaunchOperands{nin, scalar_type_of<R>, sizeof(R), in_dtypes, in_sizes, V},
                             in.ptr, in.value, in.mode, row_strides.in);
  if (n == 0) return;
  const int device = it.device().index;
  DeviceGuard guard(device);
  auto stream = reinterpret_cast<cudaStream_t>(current_stream(device));
  char* out = it.operand(0).data_ptr();
  if (plan.rows > 0) {
    row_strides.out = plan.out_row_stride;
    contiguous_kernel<V><<<dim3(unsigned(plan.grid_x), unsigned(plan.grid_y)), kThreads, 0, stream>>>(
        op, out, in, plan.n, plan.rows, row_strides, idx);
  } else {
    auto stride = [&](int a, int d) { return it.stride(a, d); };
    for_each_index32_chunk(it.shape(), nin + 1, stride, [&](IntArrayRef shape, const int64_t* offset) {
      Inputs<nin> part = in;
      for (int i = 0; i < nin; ++i) part.ptr[i] += offset[1 + i];  // scalars' strides are 0
      int64_t m = 1;
      for (int64_t s : shape) m *= s;
      OffsetCalc<nin + 1, false> calc(shape, stride, m);
      strided_kernel<<<strided_grid_size(m), kThreads, 0, stream>>>(op, out + offset[0], part, calc, m, idx);
      VT_CUDA_CHECK(cudaGetLastError());
    });
    return;
  }
  VT_CUDA_CHECK(cudaGetLastError());
}

template <typename Op>
void gpu_kernel(TensorIterator& it, const Op& op) {
  launch(it, op, std::make_index_sequence<size_t(fn_traits<Op>::arity)>{});
  it.cast_outputs();
}

}  // namespace vt::cuda

namespace vt::cuda {
// The CUDA backend of the shared op implementations (binary_impl.h, unary_impl.h).
struct CudaLaunch {
  static constexpr bool kHost = false;  // never read device values on the host: that would synchronise
  template <typename Op> static void kernel(TensorIterator& it, const Op& op) { gpu_kernel(it, op); }
};
}  // namespace vt::cuda
