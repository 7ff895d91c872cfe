// Launch geometry and operand planning shared by the CUDA elementwise kernels (loops.cuh).
#include <algorithm>
#include <cstring>

#include "loops.cuh"

namespace vt::cuda {

int wave_blocks() {
  // Resident blocks of kThreads per SM times SMs, per device, read once.
  static int waves[kMaxDevices] = {};
  int device = 0;
  VT_CUDA_CHECK(cudaGetDevice(&device));
  int& w = waves[device % kMaxDevices];
  if (w == 0) {
    int sms = 0, threads = 0;
    VT_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
    VT_CUDA_CHECK(cudaDeviceGetAttribute(&threads, cudaDevAttrMaxThreadsPerMultiProcessor, device));
    w = sms * (threads / kThreads);
  }
  return w;
}

namespace {
int64_t blocks_for(int64_t work, int64_t wave) {
  return std::clamp<int64_t>((work + kThreads - 1) / kThreads, 1, wave);
}
}  // namespace

int grid_size(int64_t work) { return int(blocks_for(work, wave_blocks())); }

// Note [Grid caps]: a grid of one wave whose threads loop over the whole range lets warps drift apart over
// hundreds of iterations, so the elements in flight spread over the tensor. For the strided kernel that loses
// the cache reuse a strided operand depends on (the seven neighbours of a transposed float sit in the same
// sector, read by threads that should run together): a cast of a transposed 1 GiB view took 4.37 ms on an H200
// with one wave, 1.84 ms with a block per 256 elements (torch 1.90), and a strided fill 1.10x -> 1.00x
// torch's time. So the strided kernel gets a block per kThreads elements (it still loops past 2^30 blocks).
// The vector kernel's best cap measured four waves: add 1 GiB 1.09x -> 1.04x, a dense cast fp32 -> bf16
// 1.21x -> 1.08x; uncapped, the add reached 1.00x but the cast fell to 1.75x (a block per 1,024 elements).
// An A/B on the H200 (2026-12-04) split it by operands: uncapped, ops reading two or more dense inputs of the
// output's element size gain (add 1 GiB 1.045x -> 1.01x), while one input loses (x * 2.0 1.07x -> 1.24x, a
// transposed view plus a scalar 1.05x -> 1.24x) and none loses most (fill_ 1.07x -> 2.68x). So only the
// first kind runs uncapped.
int strided_grid_size(int64_t work) { return int(blocks_for(work, int64_t(1) << 30)); }

namespace {
// One level of for_each_index32_chunk over dims [0, ndim) of `shape` (dim ndim - 1 outermost), the operands'
// offsets starting at `base`.
void chunks_of(DimVector& shape, int ndim, int nops, FunctionRef<int64_t(int, int)> stride, const int64_t* base,
               FunctionRef<void(IntArrayRef, const int64_t*)> chunk) {
  const int outer = ndim - 1;
  int64_t inner = 1;
  for (int d = 0; d < outer; ++d) inner *= shape[size_t(d)];
  const int64_t size = shape[size_t(outer)];
  const int64_t step = inner <= INT32_MAX ? std::max<int64_t>(INT32_MAX / inner, 1) : 1;
  int64_t offset[kMaxOperands] = {};
  for (int64_t start = 0; start < size; start += step) {
    for (int a = 0; a < nops; ++a) offset[a] = base[a] + start * stride(a, outer);
    if (inner > INT32_MAX) {
      chunks_of(shape, outer, nops, stride, offset, chunk);  // one index of the outer dim at a time
    } else {
      shape[size_t(outer)] = std::min(step, size - start);
      chunk(IntArrayRef(shape.data(), size_t(ndim)), offset);
    }
  }
  shape[size_t(outer)] = size;
}
}  // namespace

void for_each_index32_chunk(IntArrayRef shape, int nops, FunctionRef<int64_t(int op, int dim)> stride,
                            FunctionRef<void(IntArrayRef shape, const int64_t* offsets)> chunk) {
  VT_INTERNAL_ASSERT(nops <= int(kMaxOperands), "for_each_index32_chunk: ", nops, " operands");
  const int64_t zero[kMaxOperands] = {};
  int64_t numel = 1;
  for (int64_t s : shape) numel *= s;
  if (numel <= INT32_MAX) return chunk(shape, zero);  // the common case: one launch, nothing moved
  DimVector dims(shape);
  chunks_of(dims, int(dims.size()), nops, stride, zero, chunk);
}

RowPlan plan_launch(TensorIterator& it, const LaunchOperands& ops, const char** ptr, uint64_t* value, uint8_t* mode,
                    int64_t* in_row_strides) {
  VT_INTERNAL_ASSERT(it.noutputs() == 1 && it.ntensors() == ops.nin + 1, "gpu_kernel arity");
  VT_INTERNAL_ASSERT(it.operand(0).dtype() == ops.out_dtype, "gpu_kernel: output dtype");
  const int nd = it.ndim();
  // Rows (Note [Row vectors]): dim 0 unit-strided for every dense operand, dim 1 (if any) at aligned strides.
  bool rows_fit = nd <= 2 && (nd == 0 || it.stride(0, 0) == int64_t(ops.out_size));
  auto aligned = [&](const void* p, size_t size) {
    return reinterpret_cast<uintptr_t>(p) % (size * size_t(ops.vec)) == 0;
  };
  auto row_stride_fits = [&](int operand, size_t size) {
    return nd < 2 || it.stride(operand, 1) % int64_t(size * size_t(ops.vec)) == 0;
  };
  rows_fit = rows_fit && aligned(it.operand(0).data_ptr(), ops.out_size) && row_stride_fits(0, ops.out_size);
  int dense = 0;          // dense inputs, each of the output's element size (Note [Grid caps])
  bool one_size = true;
  for (int i = 0; i < ops.nin; ++i) {
    const Tensor& t = it.operand(1 + i);
    VT_INTERNAL_ASSERT(t.dtype() == ops.in_dtypes[i], "gpu_kernel: input dtype");
    const size_t size = ops.in_sizes[i];
    ptr[i] = nullptr;
    value[i] = 0;
    in_row_strides[i] = 0;
    if (t.device().is_cpu()) {
      VT_INTERNAL_ASSERT(t.dim() == 0, "gpu_kernel: CPU input must be a 0-dim scalar");
      memcpy(&value[i], t.data_ptr(), size);
      mode[i] = kHostScalar;
      continue;
    }
    ptr[i] = t.data_ptr();
    if (it.is_scalar(1 + i)) {
      mode[i] = kDeviceScalar;
    } else {
      mode[i] = kDense;
      one_size = one_size && size == ops.out_size;
      ++dense;
      rows_fit = rows_fit && (nd == 0 || it.stride(1 + i, 0) == int64_t(size)) && aligned(ptr[i], size) &&
                 row_stride_fits(1 + i, size);
      if (nd == 2) in_row_strides[i] = it.stride(1 + i, 1);
    }
  }
  RowPlan plan;
  if (!rows_fit) return plan;
  const int64_t n = nd == 0 ? 1 : it.shape()[0], rows = nd == 2 ? it.shape()[1] : 1;
  const int64_t vecs = (n + ops.vec - 1) / ops.vec;
  // Short rows would leave most of each block's threads idle: the strided kernel spreads those better.
  if (rows > 1 && vecs < kThreads / 2) return plan;
  plan.n = n;
  plan.rows = rows;
  plan.out_row_stride = nd == 2 ? it.stride(0, 1) : 0;
  const int64_t wave = wave_blocks();  // one device query per launch, as before rows
  // a thread takes two vectors of four elements or fewer (Note [Two vectors per thread]); the caps as in Note
  // [Grid caps]
  const int64_t per_thread = two_vectors(ops.vec) ? 2 : 1;
  const int64_t cap = one_size && dense >= 2 ? int64_t(1) << 30 : 4 * wave;
  plan.grid_x = int(blocks_for((vecs + per_thread - 1) / per_thread, cap));
  plan.grid_y = int(std::min<int64_t>({rows, std::max<int64_t>(wave / plan.grid_x, 1), 65535}));
  return plan;
}

}  // namespace vt::cuda
