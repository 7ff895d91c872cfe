#pragma once
// Lane loops: ops whose result at one position depends on a whole line of elements along one dim (cumsum,
// max/argmax over a dim). lane_apply visits every position of the other dims once and hands the kernel a
// pointer to the start of that lane in each tensor plus each tensor's byte stride along the lane.
#include <vector>

#include "vt/core/ops.h"
#include "vt/core/tensor_iterator.h"

namespace vt::cpu {

// tensors: outputs first (already allocated), then inputs; all have `dim`, of length n (outputs may have
// length 1 there, for reductions). f(char** lane_starts, const int64_t* lane_strides, int64_t n).
template <typename F>
void lane_apply(const std::vector<Tensor>& tensors, int noutputs, int64_t dim, int64_t n, F f) {
  TensorIteratorConfig cfg;
  cfg.is_reduction(true).check_all_same_dtype(false).check_mem_overlap(false).enforce_safe_casting_to_output(false).cast_inputs(false).name("lanes");
  std::vector<int64_t> lane_strides;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    Tensor start = ops::narrow(t, dim, 0, 1);  // keeps the dim, so outputs and inputs align
    if (int(i) < noutputs) cfg.add_output(start);
    else cfg.add_input(start);
    lane_strides.push_back(t.stride(dim) * t.element_size());
  }
  TensorIterator it = cfg.common_dtype(tensors.back().dtype()).build();
  const int nt = int(tensors.size());
  it.reduce_for_each([&](char** data, const int64_t* strides, int64_t n0, int64_t n1) {
    char* ptrs[8];
    for (int64_t j = 0; j < n1; ++j)
      for (int64_t k = 0; k < n0; ++k) {
        for (int i = 0; i < nt; ++i) ptrs[i] = data[i] + j * strides[nt + i] + k * strides[i];
        f(ptrs, lane_strides.data(), n);
      }
  });
}

}  // namespace vt::cpu
