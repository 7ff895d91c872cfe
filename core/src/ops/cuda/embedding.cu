// CUDA kernel of _embedding_rows(weight, indices): out[..., :] = weight[indices[...], :], one launch, as torch's
// embedding. Each thread copies one word of an output row: 16 bytes where the weight's rows are dense and
// aligned, else one element through the weight's strides. An index outside [0, rows) (a negative one included:
// an embedding does not wrap) is recorded for the next synchronization (Note [Deferred kernel errors]) and its
// row written as zeros. The composition it replaces (a negative-index mark, then `index`) took five launches.
#include "../words.h"
#include "kernel_errors.cuh"
#include "loops.cuh"
#include "vt/core/dispatcher.h"
#include "vt/core/ops.h"

namespace vt::cuda {
namespace {

struct alignas(16) Word16 {
  uint4 v;
};

struct RowLayout {
  int64_t rows, words;      // the weight's rows; words per output row
  int64_t row_stride;       // bytes between the weight's rows
  int64_t word_stride;      // bytes between a row's words
};

template <typename W, typename I>
__global__ void embedding_kernel(W* out, const char* weight, const I* idx, int64_t total, RowLayout l,
                                 KernelErrorSlot err) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t b = i / l.words, w = i - b * l.words;
    const int64_t row = int64_t(idx[b]);
    if (row < 0 || row >= l.rows) {
      if (w == 0) report_bad_index(err, row, 0, l.rows);
      out[i] = W{};
      continue;
    }
    out[i] = *reinterpret_cast<const W*>(weight + row * l.row_stride + w * l.word_stride);
  }
}

template <typename W, typename I>
void launch(const Tensor& out, const Tensor& weight, const Tensor& idx, RowLayout l) {
  const int device = weight.device().index;
  auto stream = reinterpret_cast<cudaStream_t>(current_stream(device));
  const int64_t total = idx.numel() * l.words;
  embedding_kernel<W, I><<<grid_size(total), kThreads, 0, stream>>>(
      reinterpret_cast<W*>(out.data_ptr()), weight.data_ptr(), idx.data<I>(), total, l,
      kernel_error_slot(device, "embedding", ErrorKind::Index));
  VT_CUDA_CHECK(cudaGetLastError());
  after_checked_launch(device, stream);
}

template <typename W>
void launch_words(const Tensor& out, const Tensor& weight, const Tensor& idx, RowLayout l) {
  if (idx.dtype() == ScalarType::Int64) launch<W, int64_t>(out, weight, idx, l);
  else launch<W, int32_t>(out, weight, idx, l);
}

// weight [rows, dim] on a CUDA device, indices int64 or int32 of any shape on the same device (the dispatcher
// checks): [*indices.shape, dim] in the weight's dtype.
Tensor embedding_rows_cuda(const Tensor& weight, const Tensor& indices) {
  VT_CHECK(weight.dim() == 2, "embedding: weight must be 2-D, got shape ", shape_str(weight.sizes()));
  VT_CHECK(indices.dtype() == ScalarType::Int64 || indices.dtype() == ScalarType::Int32,
           "embedding: indices must be int64 or int32, got ", dtype_name(indices.dtype()));
  DimVector shape(indices.sizes());
  shape.push_back(weight.size(1));
  Tensor out = empty_tensor(shape, weight.dtype(), weight.device());
  if (out.numel() == 0) return out;
  DeviceGuard guard(weight.device().index);
  const Tensor idx = indices.is_contiguous() ? indices : ops::contiguous(indices);
  const int64_t es = weight.element_size(), dim = weight.size(1);
  RowLayout l{weight.size(0), dim, weight.stride(0) * es, weight.stride(1) * es};
  // Dense, 16-byte aligned rows: 16 bytes a thread (the base, the row stride and the row length all multiples).
  const bool dense = weight.stride(1) == 1 || dim == 1;
  const bool wide = dense && (dim * es) % 16 == 0 && l.row_stride % 16 == 0 &&
                    reinterpret_cast<uintptr_t>(weight.data_ptr()) % 16 == 0;
  if (wide) {
    l.words = dim * es / 16, l.word_stride = 16;
    launch_words<Word16>(out, weight, idx, l);
    return out;
  }
  with_word(es, [&](auto w) { launch_words<decltype(w)>(out, weight, idx, l); });
  return out;
}

}  // namespace
}  // namespace vt::cuda

VT_LIBRARY(vt, embedding_cuda) { m.impl("_embedding_rows", vt::DispatchKey::CUDA, &vt::cuda::embedding_rows_cuda); }
