#pragma once
// The pieces of vt::sort's CUDA kernel (sort.cu) that vt::topk (topk.cu) reuses: the segmented radix sort and the
// gather of values at sorted positions. Only sort.cu includes cub.
#include <cuda_runtime.h>

#include "vt/core/ivalue.h"

namespace vt::cuda {

// Sorts `rows` segments of `n` contiguous keys (float32, float64 or int64, already in radix order: NaN canonical,
// no -0.0) with their int64 positions pos_in -> pos_out, stably, descending or ascending. keys stay unchanged.
void segmented_sort(const Tensor& keys, const Tensor& pos_in, const Tensor& pos_out, int64_t rows, int64_t n,
                    bool descending, cudaStream_t stream);

// values[r, j] = keys[r, pos[r, j]] for `rows` rows: n_out values gathered from each row of n_in contiguous keys.
void take_rows(const Tensor& values, const Tensor& keys, const Tensor& pos, int64_t rows, int64_t n_out,
               int64_t n_in, cudaStream_t stream);

}  // namespace vt::cuda
