// CUDA kernel of vt::sort: a segmented radix sort (cub) of (key, position) pairs, one segment per row of the
// row view (../sort_rows.h). Radix sorts are stable in both directions, so equal keys keep their order.
//
// Keys are converted so that the radix order is torch's order: floating types become float32 (float16 and
// bfloat16 widen exactly) or float64, with every NaN made the positive quiet NaN (above +inf in radix order,
// as torch puts NaN last) and -0.0 turned into +0.0 (torch compares them equal, radix order would not);
// integers and bool become int64. Values are then read from the original row view at the sorted positions.
// topk (topk.cu) reuses the segmented sort and the gather (sort_kernels.h).
#include <cub/device/device_segmented_radix_sort.cuh>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/iterator/transform_iterator.h>

#include <cmath>

#include "../sort_rows.h"
#include "loops.cuh"
#include "sort_kernels.h"
#include "vt/core/dispatcher.h"
#include "vt/core/ops.h"

namespace vt::cuda {
namespace {

struct RowStart {
  int64_t n;
  __host__ __device__ int64_t operator()(int64_t row) const { return row * n; }
};

__global__ void positions_kernel(int64_t* out, int64_t total, int64_t n) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = i % n;
}

// values[i] = keys[row(i) * n_in + pos[i]], rows of n_out values
template <typename T>
__global__ void take_rows_kernel(T* values, const T* keys, const int64_t* pos, int64_t total, int64_t n_out,
                                 int64_t n_in) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x)
    values[i] = keys[(i / n_out) * n_in + pos[i]];
}

Tensor radix_keys(const Tensor& keys) {
  ScalarType t = keys.dtype();
  if (!is_floating(t)) return ops::to_dtype(keys, ScalarType::Int64);
  Tensor k = ops::to_dtype(keys, t == ScalarType::Float64 ? ScalarType::Float64 : ScalarType::Float32);
  Tensor nan = scalar_to_tensor(Scalar(std::nan("")), ScalarType::Float64);
  k = ops::where(ops::unary("vt::isnan", k), nan, k);
  return ops::contiguous(ops::add(k, scalar_to_tensor(Scalar(0.0), ScalarType::Float64)));  // -0.0 + 0.0 = +0.0
}

template <typename K>
void sort_segments(const Tensor& keys, const Tensor& pos_in, const Tensor& pos_out, int64_t rows, int64_t n,
                   bool descending, cudaStream_t stream) {
  const int64_t total = rows * n;
  Tensor keys_out = empty_tensor(DimVector{total}, keys.dtype(), keys.device());
  auto starts = thrust::make_transform_iterator(thrust::counting_iterator<int64_t>(0), RowStart{n});
  auto run = [&](void* temp, size_t& bytes) {
    const K* ki = keys.data<K>();
    K* ko = keys_out.data<K>();
    const int64_t* vi = pos_in.data<int64_t>();
    int64_t* vo = pos_out.data<int64_t>();
    if (descending)
      return cub::DeviceSegmentedRadixSort::SortPairsDescending(temp, bytes, ki, ko, vi, vo, int(total), int(rows),
                                                                starts, starts + 1, 0, int(sizeof(K) * 8), stream);
    return cub::DeviceSegmentedRadixSort::SortPairs(temp, bytes, ki, ko, vi, vo, int(total), int(rows), starts,
                                                    starts + 1, 0, int(sizeof(K) * 8), stream);
  };
  size_t bytes = 0;
  VT_CUDA_CHECK(run(nullptr, bytes));
  Tensor temp = empty_tensor(DimVector{int64_t(std::max<size_t>(bytes, 1))}, ScalarType::UInt8, keys.device());
  VT_CUDA_CHECK(run(temp.data_ptr(), bytes));
}

}  // namespace

void segmented_sort(const Tensor& keys, const Tensor& pos_in, const Tensor& pos_out, int64_t rows, int64_t n,
                    bool descending, cudaStream_t stream) {
  switch (keys.dtype()) {
    case ScalarType::Float32: sort_segments<float>(keys, pos_in, pos_out, rows, n, descending, stream); break;
    case ScalarType::Float64: sort_segments<double>(keys, pos_in, pos_out, rows, n, descending, stream); break;
    default: sort_segments<int64_t>(keys, pos_in, pos_out, rows, n, descending, stream); break;
  }
}

void take_rows(const Tensor& values, const Tensor& keys, const Tensor& pos, int64_t rows, int64_t n_out,
               int64_t n_in, cudaStream_t stream) {
  const int64_t total = rows * n_out;
  VT_DISPATCH_ALL(keys.dtype(), "sort", [&] {
    take_rows_kernel<scalar_t><<<grid_size(total), kThreads, 0, stream>>>(
        values.data<scalar_t>(), keys.data<scalar_t>(), pos.data<int64_t>(), total, n_out, n_in);
  });
  VT_CUDA_CHECK(cudaGetLastError());
}

namespace {

std::tuple<Tensor, Tensor> sort_cuda(const Tensor& self, int64_t dim, bool descending, bool stable) {
  (void)stable;  // always stable
  sort_rows::Rows r = sort_rows::rows_of(self, dim);
  Tensor values = empty_tensor(r.keys.sizes(), self.dtype(), self.device());
  Tensor indices = empty_tensor(r.keys.sizes(), ScalarType::Int64, self.device());
  const int64_t total = r.rows * r.n;
  if (total > 0) {
    VT_CHECK(total <= INT32_MAX, "sort: tensors of more than 2^31 - 1 elements are not supported on CUDA, got ", total);
    DeviceGuard guard(self.device().index);
    cudaStream_t stream = reinterpret_cast<cudaStream_t>(current_stream(self.device().index));
    Tensor keys = radix_keys(r.keys);
    Tensor pos_in = empty_tensor(DimVector{total}, ScalarType::Int64, self.device());
    positions_kernel<<<grid_size(total), kThreads, 0, stream>>>(pos_in.data<int64_t>(), total, r.n);
    VT_CUDA_CHECK(cudaGetLastError());
    segmented_sort(keys, pos_in, indices, r.rows, r.n, descending, stream);
    take_rows(values, r.keys, indices, r.rows, r.n, r.n, stream);
  }
  return {sort_rows::restore(r, values), sort_rows::restore(r, indices)};
}

}  // namespace
}  // namespace vt::cuda

VT_LIBRARY(vt, sort_cuda) {
  m.impl("sort", vt::DispatchKey::CUDA, &vt::cuda::sort_cuda);
}
