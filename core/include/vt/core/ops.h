#pragma once
// The C++ API of the built-in ops (namespace vt::ops). Each function calls its dispatcher entry through the
// unboxed fast path (Note [Unboxed fast path]); schemas are defined next to the kernels in core/src/ops/.
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "vt/core/ivalue.h"

namespace vt::ops {

using OptScalar = std::optional<Scalar>;
using OptDtype = std::optional<ScalarType>;
using OptDevice = std::optional<Device>;

// ---- copies and casts ----
// Any devices, any dtypes; broadcasts src. non_blocking: a copy between pinned host memory and a device does not
// wait for the device (the caller synchronizes), as in torch.
Tensor copy_(const Tensor& self, const Tensor& src, bool non_blocking = false);
Tensor to_dtype(const Tensor& self, ScalarType dtype);  // always a new contiguous tensor
Tensor fill_(const Tensor& self, const Scalar& value);
Tensor contiguous(const Tensor& self);
Tensor clone(const Tensor& self);
// torch's Tensor.resize_: the sizes with contiguous strides at the same storage offset, the storage grown when
// they pass its end (Note [Storage growth]); elements past the old extent are uninitialised. Not an autograd op:
// a tensor that requires grad is refused.
Tensor resize_(const Tensor& self, IntArrayRef sizes);

// ---- views (all alias self's storage) ----
Tensor as_strided(const Tensor& self, IntArrayRef size, IntArrayRef stride, std::optional<int64_t> offset);
Tensor view(const Tensor& self, IntArrayRef size);
Tensor reshape(const Tensor& self, IntArrayRef size);  // a view when possible, else a copy
Tensor permute(const Tensor& self, IntArrayRef dims);
Tensor transpose(const Tensor& self, int64_t dim0, int64_t dim1);
Tensor expand(const Tensor& self, IntArrayRef size);
Tensor narrow(const Tensor& self, int64_t dim, int64_t start, int64_t length);
Tensor select(const Tensor& self, int64_t dim, int64_t index);
Tensor slice(const Tensor& self, int64_t dim, std::optional<int64_t> start, std::optional<int64_t> end, int64_t step);
Tensor squeeze(const Tensor& self, OptionalIntArrayRef dims);
Tensor unsqueeze(const Tensor& self, int64_t dim);
Tensor flatten(const Tensor& self, int64_t start_dim, int64_t end_dim);
Tensor diagonal(const Tensor& self, int64_t offset, int64_t dim1, int64_t dim2);

// ---- elementwise (used by other kernels; Python reaches every op through the dispatcher) ----
Tensor add(const Tensor& a, const Tensor& b, const Scalar& alpha = 1);
Tensor sub(const Tensor& a, const Tensor& b, const Scalar& alpha = 1);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor binary(const char* qualname, const Tensor& a, const Tensor& b);  // any (Tensor, Tensor) -> Tensor op
Tensor unary(const char* qualname, const Tensor& a);                    // any (Tensor) -> Tensor op
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);

// ---- indexing and random (used by composite ops) ----
Tensor index(const Tensor& self, TensorList indices);  // advanced indexing; undefined entries skip a dim
Tensor uniform_(const Tensor& self, double from, double to);
Tensor arange(const Scalar& start, const Scalar& end, const Scalar& step, OptDtype dtype, OptDevice device);

// ---- reductions ----
Tensor sum(const Tensor& self, OptionalIntArrayRef dim, bool keepdim, OptDtype dtype);
Tensor mean(const Tensor& self, OptionalIntArrayRef dim, bool keepdim, OptDtype dtype);
Tensor amax(const Tensor& self, OptionalIntArrayRef dim, bool keepdim);
Tensor amin(const Tensor& self, OptionalIntArrayRef dim, bool keepdim);

// ---- factories ----
Tensor empty(IntArrayRef size, OptDtype dtype, OptDevice device);
Tensor full(IntArrayRef size, const Scalar& value, OptDtype dtype, OptDevice device);

// ---- fused nn primitives (core/src/ops/nn_native_impl.h) and their backward ops ----
Tensor softmax_fused(const Tensor& self, int64_t dim, bool log);                     // vt::_softmax
Tensor attention_softmax(const Tensor& scores, double scale, bool causal);           // vt::_attention_softmax
Tensor softmax_backward(const Tensor& grad, const Tensor& output, int64_t dim, bool log, double scale);
// (output, mean, rstd); mean and rstd have the input's sizes with the normalised dims set to 1.
std::tuple<Tensor, Tensor, Tensor> native_layer_norm(const Tensor& input, IntArrayRef normalized_shape,
                                                     const Tensor& weight, const Tensor& bias, double eps);
// output_mask bits: 1 input, 2 weight, 4 bias; gradients not asked for come back undefined.
std::tuple<Tensor, Tensor, Tensor> native_layer_norm_backward(const Tensor& grad, const Tensor& input,
                                                              IntArrayRef normalized_shape, const Tensor& mean,
                                                              const Tensor& rstd, const Tensor& weight, int64_t output_mask);
std::tuple<Tensor, Tensor> native_rms_norm(const Tensor& input, IntArrayRef normalized_shape, const Tensor& weight,
                                           double eps);
std::tuple<Tensor, Tensor> native_rms_norm_backward(const Tensor& grad, const Tensor& input, IntArrayRef normalized_shape,
                                                    const Tensor& rstd, const Tensor& weight, int64_t output_mask);
Tensor gelu_backward(const Tensor& grad, const Tensor& self, const std::string& approximate);
Tensor silu_backward(const Tensor& grad, const Tensor& self);
Tensor tanh_backward(const Tensor& grad, const Tensor& output);     // g (1 - y^2), y = tanh(x)
Tensor sigmoid_backward(const Tensor& grad, const Tensor& output);  // g (1 - y) y, y = sigmoid(x)

}  // namespace vt::ops
