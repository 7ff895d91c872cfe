#pragma once
// Fused nn kernels for one backend: softmax/log_softmax (with the attention variant: scaled, causal-masked),
// layer_norm/rms_norm, and their backward ops. The op glue - checks, layouts, output allocation - lives here
// once; `K` supplies the kernels (CpuNnKernels in nn_native_cpu.cpp, CudaNnKernels in cuda/nn_native.cu).
// Every kernel takes dense (contiguous) operands and computes in opmath (float for 16-bit inputs); statistics
// (mean, rstd) are opmath tensors, as torch's.
//
// These are the primitives autograd sees: softmax, layer_norm and rms_norm are composites over them (they stay
// out of the autograd layer), and their formulas (core/src/autograd/formulas_nn.cpp) call the backward ops.
#include <cmath>
#include <tuple>

#include "vt/core/dispatcher.h"
#include "vt/core/ops.h"

namespace vt::nn_native {

// A dense tensor seen as [outer, size, inner] around one dim.
struct Rows {
  int64_t outer = 1, size = 1, inner = 1;
};
inline Rows rows_around(const Tensor& x, int64_t dim) {
  Rows r;
  for (int64_t d = 0; d < x.dim(); ++d) (d < dim ? r.outer : d == dim ? r.size : r.inner) *= x.size(d);
  return r;
}

// How a softmax row is masked and scaled: x * scale, entries past the diagonal of each [L, S] matrix (column >
// row, top-left aligned as torch's is_causal) excluded when causal_rows > 0 (= L; inner must be 1).
struct SoftmaxOpts {
  bool log = false;
  double scale = 1.0;
  int64_t causal_rows = 0;
};

inline ScalarType stats_dtype(ScalarType t) { return t == ScalarType::Float64 ? t : ScalarType::Float32; }

inline void check_floating(const Tensor& t, const char* name) {
  VT_CHECK_KIND(NotImplemented, is_floating(t.dtype()), "\"", name, "\" not implemented for '", dtype_name(t.dtype()), "'");
}

inline Tensor dense_like(const Tensor& x) { return empty_tensor(x.sizes(), x.dtype(), x.device()); }

template <typename K> Tensor softmax_with(const Tensor& self, int64_t dim, const SoftmaxOpts& o, const char* name) {
  wrap_dim(dim, std::max<int64_t>(self.dim(), 1));  // the dim first (IndexError), as torch checks it
  check_floating(self, name);
  Tensor x = self.dim() == 0 ? ops::reshape(self, DimVector{1}) : ops::contiguous(self);
  dim = self.dim() == 0 ? 0 : wrap_dim(dim, self.dim());
  Tensor y = dense_like(x);
  if (x.numel() > 0) K::softmax_forward(x, y, rows_around(x, dim), o);
  return self.dim() == 0 ? ops::reshape(y, DimVector{}) : y;
}

// vt::_softmax(self, dim, log): softmax or log_softmax along dim, the output in self's dtype.
template <typename K> Tensor softmax(const Tensor& self, int64_t dim, bool log) {
  return softmax_with<K>(self, dim, SoftmaxOpts{log, 1.0, 0}, log ? "log_softmax" : "softmax");
}

// vt::_attention_softmax(scores, scale, causal): softmax(scores * scale) over the last dim, causal-masked.
template <typename K> Tensor attention_softmax(const Tensor& scores, double scale, bool causal) {
  VT_CHECK(scores.dim() >= 2, "attention softmax: scores must be at least 2-D [..., L, S], got shape ",
           shape_str(scores.sizes()));
  return softmax_with<K>(scores, -1, SoftmaxOpts{false, scale, causal ? scores.size(-2) : 0}, "attention softmax");
}

// vt::_softmax_backward(grad_output, output, dim, log, scale): the input gradient of (log_)softmax(x * scale)
// from its output: scale * y * (g - sum(g * y)), or scale * (g - exp(y) * sum(g)) for log.
template <typename K>
Tensor softmax_backward(const Tensor& grad, const Tensor& output, int64_t dim, bool log, double scale) {
  VT_CHECK(DimVector(grad.sizes()) == DimVector(output.sizes()), "softmax backward: grad_output of shape ",
           shape_str(grad.sizes()), " does not match output ", shape_str(output.sizes()));
  VT_CHECK(grad.device() == output.device(), "softmax backward: grad_output on ", grad.device().str(),
           " but output on ", output.device().str());
  check_floating(output, "softmax backward");
  Tensor y = output.dim() == 0 ? ops::reshape(output, DimVector{1}) : ops::contiguous(output);
  Tensor g = ops::reshape(grad.dtype() == y.dtype() ? ops::contiguous(grad) : ops::to_dtype(grad, y.dtype()), y.sizes());
  dim = output.dim() == 0 ? 0 : wrap_dim(dim, output.dim());
  Tensor gx = dense_like(y);
  if (y.numel() > 0) K::softmax_backward(g, y, gx, rows_around(y, dim), log, scale);
  return output.dim() == 0 ? ops::reshape(gx, DimVector{}) : gx;
}

// ---- layer_norm / rms_norm ----

// Rows (M) and row length (N) of a normalisation over the trailing dims named by normalized_shape.
struct NormShape {
  int64_t M = 1, N = 1;
  DimVector stats_sizes;  // input sizes with the normalised dims set to 1 (torch's mean/rstd shape)
};
NormShape norm_shape(const Tensor& x, IntArrayRef normalized_shape, const char* name);  // nn_native_cpu.cpp
Tensor dense_affine(const Tensor& p, IntArrayRef normalized_shape, const Tensor& x, const char* what);

struct NormArgs {
  const Tensor& x;       // dense input
  const Tensor& weight;  // dense or undefined
  const Tensor& bias;    // dense or undefined (always undefined for rms)
  int64_t M, N;
  double eps;
  bool rms;
};

// layer_norm's weight and bias have the input's dtype, or both float32 for a 16-bit input (torch's "mixed
// dtype"); torch refuses other pairs on the CPU, and so does vibetensor on every device. rms_norm takes any.
inline void check_layer_norm_params(const Tensor& x, const Tensor& w, const Tensor& b) {
  const bool half = x.dtype() == ScalarType::Float16 || x.dtype() == ScalarType::BFloat16;
  for (const Tensor* p : {&w, &b}) {
    if (!p->defined()) continue;
    VT_CHECK(p->dtype() == x.dtype() || (half && p->dtype() == ScalarType::Float32), "layer_norm: ",
             p == &w ? "weight" : "bias", " of dtype ", dtype_name(p->dtype()), " for an input of dtype ",
             dtype_name(x.dtype()), ": expected the input's dtype (or float32 for a 16-bit input)");
  }
  VT_CHECK(!w.defined() || !b.defined() || w.dtype() == b.dtype(), "layer_norm: weight (", dtype_name(w.dtype()),
           ") and bias (", dtype_name(b.dtype()), ") must share a dtype");
}

template <typename K>
std::tuple<Tensor, Tensor, Tensor> norm_forward(const Tensor& input, IntArrayRef normalized_shape, const Tensor& weight,
                                                const Tensor& bias, double eps, bool rms) {
  const char* name = rms ? "rms_norm" : "layer_norm";
  check_floating(input, name);
  NormShape s = norm_shape(input, normalized_shape, name);
  if (!rms) check_layer_norm_params(input, weight, bias);
  Tensor x = ops::contiguous(input);
  Tensor w = dense_affine(weight, normalized_shape, x, "weight");
  Tensor b = dense_affine(bias, normalized_shape, x, "bias");
  Tensor y = dense_like(x);
  ScalarType st = stats_dtype(x.dtype());
  Tensor mean = rms ? Tensor() : empty_tensor(s.stats_sizes, st, x.device());
  Tensor rstd = empty_tensor(s.stats_sizes, st, x.device());
  if (s.M > 0 && s.N > 0) K::norm_forward(NormArgs{x, w, b, s.M, s.N, eps, rms}, y, mean, rstd);
  else if (s.M > 0) {  // rows of no element: torch's mean is 0 and its rstd NaN (a variance of 0 / 0)
    if (mean.defined()) ops::fill_(mean, Scalar(0.0));
    ops::fill_(rstd, Scalar(std::nan("")));
  }
  return {y, mean, rstd};
}

// output_mask bits: 1 input, 2 weight, 4 bias. Gradients not asked for come back undefined.
template <typename K>
std::tuple<Tensor, Tensor, Tensor> norm_backward(const Tensor& grad, const Tensor& input, IntArrayRef normalized_shape,
                                                 const Tensor& mean, const Tensor& rstd, const Tensor& weight,
                                                 int64_t output_mask, bool rms) {
  const char* name = rms ? "rms_norm backward" : "layer_norm backward";
  NormShape s = norm_shape(input, normalized_shape, name);
  VT_CHECK(DimVector(grad.sizes()) == DimVector(input.sizes()), name, ": grad_output of shape ",
           shape_str(grad.sizes()), " does not match input ", shape_str(input.sizes()));
  VT_CHECK(rstd.numel() == s.M && (rms || mean.numel() == s.M), name, ": statistics of ", rstd.numel(),
           " rows for an input of ", s.M, " rows");
  Tensor x = ops::contiguous(input);
  Tensor g = grad.dtype() == x.dtype() ? ops::contiguous(grad) : ops::to_dtype(grad, x.dtype());
  Tensor w = dense_affine(weight, normalized_shape, x, "weight");
  ScalarType st = stats_dtype(x.dtype());
  Tensor mu = rms ? Tensor() : ops::contiguous(mean.dtype() == st ? mean : ops::to_dtype(mean, st));
  Tensor rs = ops::contiguous(rstd.dtype() == st ? rstd : ops::to_dtype(rstd, st));
  Tensor gx = (output_mask & 1) ? dense_like(x) : Tensor();
  Tensor gw = (output_mask & 2) && weight.defined() ? empty_tensor(normalized_shape, x.dtype(), x.device()) : Tensor();
  Tensor gb = (output_mask & 4) && !rms ? empty_tensor(normalized_shape, x.dtype(), x.device()) : Tensor();
  NormArgs a{x, w, Tensor(), s.M, s.N, 0.0, rms};
  if (s.M > 0 && s.N > 0) {
    K::norm_backward(a, g, mu, rs, gx, gw, gb);  // each of gx, gw, gb may be undefined
  } else if (s.M == 0) {  // no rows: the affine sums are zero
    if (gw.defined()) ops::fill_(gw, Scalar(int64_t(0)));
    if (gb.defined()) ops::fill_(gb, Scalar(int64_t(0)));
  }
  return {gx, gw, gb};
}

template <typename K>
std::tuple<Tensor, Tensor, Tensor> layer_norm_fwd(const Tensor& input, IntArrayRef shape, const Tensor& weight,
                                                  const Tensor& bias, double eps) {
  return norm_forward<K>(input, shape, weight, bias, eps, false);
}
template <typename K>
std::tuple<Tensor, Tensor> rms_norm_fwd(const Tensor& input, IntArrayRef shape, const Tensor& weight, double eps) {
  auto [y, mean, rstd] = norm_forward<K>(input, shape, weight, Tensor(), eps, true);
  return {y, rstd};
}
template <typename K>
std::tuple<Tensor, Tensor, Tensor> layer_norm_bwd(const Tensor& grad, const Tensor& input, IntArrayRef shape,
                                                  const Tensor& mean, const Tensor& rstd, const Tensor& weight,
                                                  int64_t output_mask) {
  return norm_backward<K>(grad, input, shape, mean, rstd, weight, output_mask, false);
}
template <typename K>
std::tuple<Tensor, Tensor> rms_norm_bwd(const Tensor& grad, const Tensor& input, IntArrayRef shape, const Tensor& rstd,
                                        const Tensor& weight, int64_t output_mask) {
  auto [gx, gw, gb] = norm_backward<K>(grad, input, shape, Tensor(), rstd, weight, output_mask & 3, true);
  return {gx, gw};
}

template <typename K> void register_nn_native(Library& m, DispatchKey key) {
  m.impl("_softmax", key, &softmax<K>);
  m.impl("_attention_softmax", key, &attention_softmax<K>);
  m.impl("_softmax_backward", key, &softmax_backward<K>);
  m.impl("native_layer_norm", key, &layer_norm_fwd<K>);
  m.impl("native_layer_norm_backward", key, &layer_norm_bwd<K>);
  m.impl("native_rms_norm", key, &rms_norm_fwd<K>);
  m.impl("native_rms_norm_backward", key, &rms_norm_bwd<K>);
}

}  // namespace vt::nn_native
