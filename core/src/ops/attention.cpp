// The fused-attention ops' schemas, argument checks, the composite both directions fall back to, and the CPU
// kernels (the tiled forward of attention_cpu.cpp where it applies, the composite otherwise). Model in
// attention.h.
#include "attention.h"

#include <cmath>
#include <limits>

#include "vt/core/dispatcher.h"
#include "vt/core/memory_overlap.h"
#include "vt/core/ops.h"

namespace vt::attention {
namespace {

Tensor bmm(const Tensor& a, const Tensor& b) {
  static const TypedOp<Tensor(const Tensor&, const Tensor&)> op("vt::_bmm_nd");
  return op(a, b);
}
Tensor logsumexp(const Tensor& x, int64_t dim) {
  static const TypedOp<Tensor(const Tensor&, IntArrayRef, bool)> op("vt::logsumexp");
  return op(x, DimVector{dim}, false);
}
Tensor t(const Tensor& x) { return ops::transpose(x, -2, -1); }
Tensor number(double v) { return scalar_to_tensor(Scalar(v), ScalarType::Float64); }

// The composite computes in float32 for 16-bit inputs (as the kernels accumulate), in the input dtype otherwise.
Tensor upcast(const Tensor& x) {
  return x.dtype() == ScalarType::Float16 || x.dtype() == ScalarType::BFloat16 ? ops::to_dtype(x, ScalarType::Float32)
                                                                               : x;
}

// scale * q k^T with the entries past the diagonal (key > query, top-left aligned) at -inf when causal.
Tensor scaled_scores(const Tensor& q, const Tensor& k, double scale, bool causal) {
  Tensor s = ops::mul(bmm(q, t(k)), number(scale));
  if (!causal) return s;
  int64_t L = q.size(-2), S = k.size(-2);
  Tensor rows = ops::unsqueeze(ops::arange(0, L, 1, ScalarType::Int64, q.device()), 1);
  Tensor cols = ops::arange(0, S, 1, ScalarType::Int64, q.device());
  return ops::where(ops::binary("vt::le", cols, rows), s, number(-std::numeric_limits<double>::infinity()));
}

}  // namespace

void check_qkv(const Tensor& q, const Tensor& k, const Tensor& v, const char* op) {
  const Tensor* args[] = {&q, &k, &v};
  const char* names[] = {"query", "key", "value"};
  for (int i = 0; i < 3; ++i) {
    const Tensor& x = *args[i];
    VT_CHECK(x.dim() == 4, op, ": expected ", names[i], " to be 4-D [batch, heads, length, head_dim], got shape ",
             shape_str(x.sizes()));
    VT_CHECK_KIND(NotImplemented, is_floating(x.dtype()), "\"", op, "\" not implemented for '",
                  dtype_name(x.dtype()), "'");
    VT_CHECK(x.dtype() == q.dtype(), op, ": expected query, key and value to have the same dtype, but got query ",
             dtype_name(q.dtype()), " and ", names[i], " ", dtype_name(x.dtype()));
    VT_CHECK(x.device() == q.device(), op, ": expected query, key and value on one device, but got query on ",
             q.device().str(), " and ", names[i], " on ", x.device().str());
  }
  VT_CHECK(k.size(0) == q.size(0) && v.size(0) == q.size(0) && k.size(1) == q.size(1) && v.size(1) == q.size(1),
           op, ": batch and head dims differ: query ", shape_str(q.sizes()), ", key ", shape_str(k.sizes()),
           ", value ", shape_str(v.sizes()));
  VT_CHECK(k.size(2) == v.size(2), op, ": key length ", k.size(2), " differs from value length ", v.size(2));
  VT_CHECK(k.size(3) == q.size(3) && v.size(3) == q.size(3), op, ": query, key and value head dims differ: ",
           q.size(3), ", ", k.size(3), ", ", v.size(3));
}

std::tuple<Tensor, Tensor> forward_composite(const Tensor& q, const Tensor& k, const Tensor& v, double scale,
                                             bool causal) {
  Tensor s = scaled_scores(upcast(q), upcast(k), scale, causal);
  Tensor lse = logsumexp(s, -1);
  Tensor p = ops::unary("vt::exp", ops::sub(s, ops::unsqueeze(lse, -1)));
  Tensor out = bmm(p, upcast(v));
  if (out.dtype() != q.dtype()) out = ops::to_dtype(out, q.dtype());
  ScalarType lse_dtype = q.dtype() == ScalarType::Float64 ? ScalarType::Float64 : ScalarType::Float32;
  return {out, lse.dtype() == lse_dtype ? lse : ops::to_dtype(lse, lse_dtype)};
}

// p = softmax(s), dv = p^T g, dp = g v^T, ds = p (dp - rowsum(dp p)), dq = scale ds k, dk = scale ds^T q.
std::tuple<Tensor, Tensor, Tensor> backward_composite(const Tensor& grad_out, const Tensor& q, const Tensor& k,
                                                      const Tensor& v, double scale, bool causal) {
  Tensor qf = upcast(q), kf = upcast(k), vf = upcast(v), g = upcast(grad_out);
  if (g.dtype() != qf.dtype()) g = ops::to_dtype(g, qf.dtype());
  Tensor p = ops::softmax_fused(scaled_scores(qf, kf, scale, causal), -1, false);
  Tensor dv = bmm(t(p), g);
  Tensor dp = bmm(g, t(vf));
  Tensor ds = ops::mul(p, ops::sub(dp, ops::sum(ops::mul(dp, p), DimVector{-1}, true, std::nullopt)));
  Tensor dq = ops::mul(bmm(ds, kf), number(scale));
  Tensor dk = ops::mul(bmm(t(ds), qf), number(scale));
  auto back = [&](const Tensor& x) { return x.dtype() == q.dtype() ? x : ops::to_dtype(x, q.dtype()); };
  return {back(dq), back(dk), back(dv)};
}

// Note [Packed attention gradients] (attention.h).
std::optional<PackedGrads> packed_grads(const Tensor& q, const Tensor& k, const Tensor& v) {
  if (q.storage() != k.storage() || q.storage() != v.storage() || q.stride(3) != 1) return std::nullopt;
  DimVector sizes(q.sizes()), strides(q.strides());
  if (DimVector(k.sizes()) != sizes || DimVector(v.sizes()) != sizes || DimVector(k.strides()) != strides ||
      DimVector(v.strides()) != strides)
    return std::nullopt;
  for (int d = 0; d < 4; ++d)
    if (sizes[size_t(d)] > 1 && strides[size_t(d)] <= 0) return std::nullopt;
  const int64_t step = k.storage_offset() - q.storage_offset();
  if (step <= 0 || v.storage_offset() - k.storage_offset() != step) return std::nullopt;
  DimVector joint_sizes = sizes, joint_strides = strides;
  joint_sizes.insert(0, 3);
  joint_strides.insert(0, step);
  if (!is_non_overlapping_and_dense(ops::as_strided(q, joint_sizes, joint_strides, q.storage_offset())))
    return std::nullopt;
  Tensor buf = empty_tensor(DimVector{3 * q.numel()}, q.dtype(), q.device());
  auto at = [&](int64_t offset) { return ops::as_strided(buf, sizes, strides, offset); };
  return PackedGrads{at(0), at(step), at(2 * step)};
}

namespace {

std::tuple<Tensor, Tensor> flash_attention_cpu(const Tensor& q, const Tensor& k, const Tensor& v, double scale,
                                               bool causal) {
  check_qkv(q, k, v, "_flash_attention");
  return tiled_forward_applies(q, k) ? tiled_forward_cpu(q, k, v, scale, causal)
                                     : forward_composite(q, k, v, scale, causal);
}

std::tuple<Tensor, Tensor, Tensor> flash_attention_backward_cpu(const Tensor& grad_out, const Tensor& q,
                                                                const Tensor& k, const Tensor& v, const Tensor& out,
                                                                const Tensor& lse, double scale, bool causal) {
  check_qkv(q, k, v, "_flash_attention_backward");
  VT_CHECK(DimVector(grad_out.sizes()) == DimVector(out.sizes()), "_flash_attention_backward: grad_out of shape ",
           shape_str(grad_out.sizes()), " does not match out ", shape_str(out.sizes()));
  if (tiled_forward_applies(q, k)) return tiled_backward_cpu(grad_out, q, k, v, out, lse, scale, causal);
  return backward_composite(grad_out, q, k, v, scale, causal);  // recomputes the probabilities
}

}  // namespace

std::tuple<Tensor, Tensor> flash_attention(const Tensor& q, const Tensor& k, const Tensor& v, double scale,
                                           bool causal) {
  static const TypedOp<std::tuple<Tensor, Tensor>(const Tensor&, const Tensor&, const Tensor&, double, bool)> op(
      "vt::_flash_attention");
  return op(q, k, v, scale, causal);
}

std::tuple<Tensor, Tensor, Tensor> flash_attention_backward(const Tensor& grad_out, const Tensor& q, const Tensor& k,
                                                            const Tensor& v, const Tensor& out, const Tensor& lse,
                                                            double scale, bool causal) {
  static const TypedOp<std::tuple<Tensor, Tensor, Tensor>(const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                                          const Tensor&, const Tensor&, double, bool)>
      op("vt::_flash_attention_backward");
  return op(grad_out, q, k, v, out, lse, scale, causal);
}

}  // namespace vt::attention

VT_LIBRARY(vt, attention) {
  m.def("_flash_attention(Tensor query, Tensor key, Tensor value, float scale, bool causal) -> (Tensor, Tensor)");
  m.def("_flash_attention_backward(Tensor grad_out, Tensor query, Tensor key, Tensor value, Tensor out, "
        "Tensor lse, float scale, bool causal) -> (Tensor, Tensor, Tensor)");
  m.impl("_flash_attention", vt::DispatchKey::CPU, &vt::attention::flash_attention_cpu);
  m.impl("_flash_attention_backward", vt::DispatchKey::CPU, &vt::attention::flash_attention_backward_cpu);
}
