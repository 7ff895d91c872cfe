#pragma once
// Separable resampling of a tensor's last 1-3 dims by plans of taps: F.interpolate's kernel for every mode but
// area (resample.cpp for the schemas, the checks and the CPU kernels; cuda/resample.cu for CUDA).
//
// Note [Resampling plans]
// _resample(input, indices, weights) resamples the last d dims of input (d = len(indices), 1 to 3); the dims
// before them are planes, resampled alike. Each resampled dim k has a plan of taps: indices[k], int64
// [out_k, taps_k], the input rows output row o reads, and weights[k] of the same shape, their weights, in the
// accumulation type (float64 for a float64 input, float32 for the others). The result is a new dense
// [*planes, out_1, ..., out_d] tensor of the input's dtype:
//   out[p, o_1, .., o_d] = sum_t1 w_1[o_1, t1] * (sum_t2 w_2[o_2, t2] * (... x[p, i_1[o_1, t1], i_2[o_2, t2], ..]))
// accumulated in that type, the last dim's taps blended first (torch's bilinear and bicubic kernels blend the
// points of a row, then the rows), and rounded once. Plans come from the modes' index rules (interpolate builds
// them host-side once per shape, Note [Resampling plans are cached] in functional_resample.py); the kernel does
// not know the modes. An index of -1 (kNoTap) is no tap: the padding of an output row whose support is narrower
// than its neighbours' (antialiased plans); any other index outside [0, size_k) is torch's IndexError (raised
// at once on the CPU, at the next synchronisation on CUDA: Note [Deferred kernel errors]). With no weights every
// dim has one tap and the op is a gather (nearest), for every dtype.
//
// _resample_backward(grad, input_sizes, indices, weights) is its adjoint: each output's gradient, times its
// taps' weight product (1 for a gather), added into the input rows it read. The CPU adds each plane's in order;
// CUDA adds with atomics, as torch's upsample backward kernels, into float32 for the 16-bit types.
//
// Note [Adjoint plans]
// The adjoint of a separable resampling is itself a separable resampling, by the transposed plans: input row i
// of dim k gathers the output rows whose taps read it, with those taps' weights. _resample takes them as
// optional adjoint_indices / adjoint_weights (built by the caller, on the host, with the plans) and its gradient
// is then _resample(grad, adjoint plans, plans): a gather that sums in registers and writes each input element
// once, where _resample_backward zeroes a float32 sum, adds into it with atomics and casts 16-bit results; the
// sums no longer depend on the order of atomic adds either. On an H100 (benchmarks/resample.py, forward +
// backward against torch): a U-Net's 128 x 128 float32 bilinear level 1.96x -> 1.21x, the 2x nearest 1.33x ->
// 0.42x, bicubic 1.09x -> 0.44x, antialiased 0.77x -> 0.48x, reflect and replicate pads 0.66x -> 0.41-0.48x.
// Its own gradient is the forward again (the plans are each other's adjoints). Python passes them for CUDA
// inputs, and for F.pad's CPU gathers whose adjoint is a gather too (a constant pad's gradient is a crop:
// rows copied whole, where _resample_backward zeroed a float32 sum, added and cast); elsewhere the CPU's
// _resample_backward adds in order and in place.
#include <cstdint>
#include <vector>

#include "vt/core/half.h"
#include "vt/core/ivalue.h"
#include "vt/core/tensor.h"

namespace vt::resample {

inline constexpr int kMaxResampled = 3;
inline constexpr int64_t kNoTap = -1;

struct Dim {                        // one resampled dim; unused leading dims are units (1 row, 1 tap, index 0)
  int64_t out = 1, in = 1, taps = 1;
  int64_t in_stride = 0;            // elements between the input's rows along this dim
  const int64_t* idx = nullptr;     // [out, taps]; null for a unit dim
  const void* w = nullptr;          // [out, taps] of the accumulation type; null for a gather
};

struct Plan {
  Dim dim[kMaxResampled];           // the resampled dims, right-aligned (the last d of the three)
  int64_t planes = 1;               // the product of the leading dims
  // The leading dims' strides, coalesced to at most two: plane p starts at (p / inner) * outer_stride +
  // (p % inner) * inner_stride (a channels-last [N, C, H, W] reads in place this way).
  int64_t inner = 1, outer_stride = 0, inner_stride = 0;
  bool weighted = false;
  int64_t out_numel() const { return planes * dim[0].out * dim[1].out * dim[2].out; }
  int64_t in_plane() const { return dim[0].in * dim[1].in * dim[2].in; }
};

// One tap of a dim: the row it reads (kNoTap: none) and its weight, A(1) in a gather and in a unit dim.
template <typename A> VT_HOST_DEVICE inline int64_t tap(const Dim& d, int64_t o, int64_t t, A& w) {
  if (d.idx == nullptr) return w = A(1), 0;
  const int64_t e = o * d.taps + t;
  w = d.w ? static_cast<const A*>(d.w)[e] : A(1);
  return d.idx[e];
}

// What the kernels read: the plan tensors made int64 / contiguous, kept alive beside the plan.
struct Checked {
  Plan plan;
  Tensor input;                     // the tensor read: the input (forward) or the dense gradient (backward)
  std::vector<Tensor> keep;
  DimVector result_sizes;
};

// The forward's checks and plan, the adjoint plans' checks included. The input is read through its strides
// where its leading dims coalesce to two, through a dense copy otherwise.
Checked forward_plan(const Tensor& input, TensorList indices, TensorList weights, TensorList adjoint_indices,
                     TensorList adjoint_weights);
// The backward's: `grad` is [*planes, out_1, ..]; the plan reads it dense and the result is input_sizes.
Checked backward_plan(const Tensor& grad, IntArrayRef input_sizes, TensorList indices,
                      TensorList weights);

}  // namespace vt::resample
