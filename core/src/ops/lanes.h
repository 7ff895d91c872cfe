#pragma once
// Lane loops: ops whose result at one position depends on a whole line of elements along one dim (cumsum,
// max/argmax over a dim). lane_iterator visits every position of the other dims once; a kernel gets a pointer
// to the start of that lane in each tensor plus each tensor's byte stride along the lane.
#include <vector>

#include "vt/core/ops.h"
#include "vt/core/tensor_iterator.h"

namespace vt {

// tensors: outputs first (already allocated), then inputs; all have `dim`, of length n (outputs may have
// length 1 there, for reductions). Fills lane_strides (bytes, per tensor).
inline TensorIterator lane_iterator(const std::vector<Tensor>& tensors, int noutputs, int64_t dim,
                                    std::vector<int64_t>& lane_strides) {
  TensorIteratorConfig cfg;
  cfg.is_reduction(true).check_all_same_dtype(false).check_mem_overlap(false).enforce_safe_casting_to_output(false);
  cfg.cast_inputs(false).name("lanes");
  lane_strides.clear();
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    Tensor start = ops::narrow(t, dim, 0, 1);  // keeps the dim, so outputs and inputs align
    if (int(i) < noutputs) cfg.add_output(start);
    else cfg.add_input(start);
    lane_strides.push_back(t.stride(dim) * t.element_size());
  }
  return cfg.common_dtype(tensors.back().dtype()).build();
}

namespace cpu {
// f(char* const* lane_starts, const int64_t* lane_strides, int64_t n) once per lane.
template <typename F>
void lane_apply(const std::vector<Tensor>& tensors, int noutputs, int64_t dim, int64_t n, const F& f) {
  std::vector<int64_t> lane_strides;
  TensorIterator it = lane_iterator(tensors, noutputs, dim, lane_strides);
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
}  // namespace cpu

}  // namespace vt
