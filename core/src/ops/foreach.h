#pragma once
// torch's foreach ops that gradient clipping is made of: vt::_foreach_norm (one 0-dim norm per tensor of a list)
// and vt::_foreach_mul_ (every tensor of a list scaled in place by one 0-dim tensor), each a few multi-tensor
// launches for a whole list instead of a few ops per tensor. This header holds what the CPU and CUDA kernels
// share, as fused_optim.h does for the optimizers:
//  - grouping: a list may mix devices and dtypes. As torch, the ops split it into (device, dtype) groups in
//    first-seen order, run each group as one multi-tensor call on its device, and put each result at its
//    tensor's position. The ops take any devices (DevicePolicy::AnyDevice): the dispatcher picks the CUDA
//    kernel when any tensor is on a GPU, and that kernel hands the CPU groups back to the dispatcher.
//  - rows (optim::Rows of depth 1): a tensor whose elements fill one block of memory (contiguous, or
//    transposed) is read as a flat run in memory order; any other layout through a contiguous copy (written
//    back by _foreach_mul_).
//  - NormOp: each order's per-element term, how terms combine, and the root, in opmath (float for float32 and
//    the 16-bit floats, double for float64, as torch accumulates).
//  - the op front ends, templated on a backend Launch (cpu::CpuForeach, cuda::CudaForeach): the multi-tensor
//    apply of fused_optim.h, kHost (whether it runs on the CPU), and
//      template <typename S, typename Op> static void norm(const optim::Rows&, const Op&, const Tensor& out);
//    which writes row i's norm to out[i] (a 1-D tensor of the rows' dtype and device, one element per row).
//
// Note [Foreach norm order]
// A norm is deterministic: each backend cuts a row into fixed-size chunks, folds each chunk in a fixed order
// into one partial, then combines the row's partials in chunk order. Nothing depends on the thread count,
// timing or pointer alignment and no float is accumulated atomically, so the same inputs give the same bits
// run to run. The CPU and CUDA chunkings differ, so the two may differ in the last bits.
#include <cmath>
#include <limits>
#include <optional>
#include <type_traits>
#include <vector>

#include "fused_optim.h"
#include "reduce_functors.h"
#include "vt/core/memory_overlap.h"
#include "vt/core/ops.h"

namespace vt::foreach {

// Any: the kernel reads the kind at run time (kernels are specialised for the common orders 1, 2 and inf only).
enum class NormKind : uint8_t { Zero, One, Two, Inf, NegInf, P, Any };

inline NormKind norm_kind(double p) {
  if (p == 0) return NormKind::Zero;
  if (p == 1) return NormKind::One;
  if (p == 2) return NormKind::Two;
  if (std::isinf(p)) return p > 0 ? NormKind::Inf : NormKind::NegInf;
  return NormKind::P;
}

// The p-norm as torch's linalg.vector_norm computes it: fold elem(x) over the elements with combine, starting
// from init, then finish. T is the accumulator (opmath).
template <typename T, NormKind K = NormKind::Any> struct NormOp {
  NormKind kind;  // read when K is Any
  T p;            // the order, for NormKind::P
  VT_HOST_DEVICE NormKind k() const {
    if constexpr (K == NormKind::Any) return kind;
    else return K;
  }
  VT_HOST_DEVICE T init() const { return k() == NormKind::NegInf ? std::numeric_limits<T>::infinity() : T(0); }
  VT_HOST_DEVICE T elem(T x) const {
    switch (k()) {
      case NormKind::Zero: return x != T(0) ? T(1) : T(0);
      case NormKind::Two: return x * x;
      case NormKind::P: return std::pow(std::abs(x), p);
      default: return std::abs(x);
    }
  }
  VT_HOST_DEVICE T combine(T a, T b) const {
    if (k() == NormKind::Inf) return reduce::PickC<true>{}(a, b);  // NaN wins
    if (k() == NormKind::NegInf) return reduce::PickC<false>{}(a, b);
    return a + b;
  }
  VT_HOST_DEVICE T finish(T acc) const {
    if (k() == NormKind::Two) return std::sqrt(acc);
    if (k() == NormKind::P) return std::pow(acc, T(1) / p);
    return acc;
  }
  // A one-element tensor's norm is |x| for every order but 0, as torch returns it: the power and the root
  // would under- or overflow (x * x of 1e-30 is 0 in float).
  VT_HOST_DEVICE T single(T x) const { return k() == NormKind::Zero ? elem(x) : std::abs(x); }
};

// Calls f(std::integral_constant<NormKind, K>) with the kind the kernels are specialised for.
template <typename F> void with_norm_kind(NormKind kind, F f) {
  using K = NormKind;
  switch (kind) {
    case K::One: return f(std::integral_constant<K, K::One>{});
    case K::Two: return f(std::integral_constant<K, K::Two>{});
    case K::Inf: return f(std::integral_constant<K, K::Inf>{});
    default: return f(std::integral_constant<K, K::Any>{});
  }
}

// ---- _foreach_mul_: r = {tensor} ----
template <typename S> struct MulStep {
  using T = opmath_t<S>;
  using Extra = optim::NoExtra;
  static constexpr int kDepth = 1;
  const S* on_device = nullptr;  // the scale in the rows' device memory, read once per block
  T value = T(1);                // or its value, when it came from a CPU tensor
  struct Elem {
    T s;
    VT_HOST_DEVICE void operator()(T* r) const { r[0] = r[0] * s; }
  };
  VT_HOST_DEVICE Elem elem(const optim::NoExtra&) const { return {on_device ? T(*on_device) : value}; }
};

// ---- grouping and rows ----
struct Group {
  Device device;
  ScalarType dtype;
  std::vector<Tensor> tensors;
  std::vector<size_t> index;  // each tensor's position in the caller's list
};

inline std::vector<Group> group_by_device_and_dtype(TensorList ts) {
  std::vector<Group> groups;
  for (size_t i = 0; i < ts.size(); ++i) {
    const Tensor& t = ts[i];
    Group* g = nullptr;
    for (Group& h : groups)
      if (h.device == t.device() && h.dtype == t.dtype()) g = &h;
    if (!g) g = &groups.emplace_back(Group{t.device(), t.dtype(), {}, {}});
    g->tensors.push_back(t);
    g->index.push_back(i);
  }
  return groups;
}

// t itself when contiguous; a flat view in memory order when its elements fill one block of memory in another
// order (a transposed gradient); otherwise t (the caller copies it).
inline Tensor flat_if_dense(const Tensor& t) {
  if (t.is_contiguous() || !is_non_overlapping_and_dense(t)) return t;
  return make_view(t, DimVector{t.numel()}, DimVector{1}, t.storage_offset());
}

// The rows of a norm: every tensor of the group, empty ones included (their norm is the fold of nothing).
inline optim::Rows norm_rows(const Group& g) {
  optim::Rows r;
  r.depth = 1;
  r.dtype = g.dtype;
  r.device = g.device;
  for (size_t j = 0; j < g.tensors.size(); ++j) {
    Tensor t = flat_if_dense(g.tensors[j]);
    r.tensors.push_back(t.is_contiguous() ? t : ops::contiguous(t));
    r.list_index.push_back(j);
  }
  return r;
}

// ---- the op front ends ----
template <typename Launch>
std::vector<Tensor> foreach_norm(TensorList tensors, const Scalar& ord, std::optional<ScalarType> dtype) {
  VT_CHECK(!tensors.empty(), "Tensor list must have at least one tensor.");
  VT_CHECK(!ord.is_bool(), "_foreach_norm expects ord to be integer or float");
  const double p = ord.to_double();
  const NormKind kind = norm_kind(p);
  std::vector<Tensor> in(tensors.begin(), tensors.end());
  for (size_t i = 0; i < in.size(); ++i) {
    const ScalarType t = in[i].dtype();
    VT_CHECK(is_floating(t), "_foreach_norm: expected floating point tensors (linalg.vector_norm), but self[", i,
             "] has dtype ", dtype_name(t));
    VT_CHECK(!dtype || promote_types(t, *dtype) == *dtype, "linalg.vector_norm: the dtype of the input (",
             dtype_name(t), ") should be convertible without narrowing to the specified dtype (", dtype_name(*dtype),
             ")");
    if (in[i].numel() > 0) continue;
    VT_CHECK(kind != NormKind::Inf, "_foreach_norm cannot compute the infinity norm on an empty tensor because the "
             "operation does not have an identity");
    VT_CHECK(p >= 0, "linalg.vector_norm cannot compute the ", p, " norm on an empty tensor because the operation "
             "does not have an identity");
  }
  if (dtype)
    for (Tensor& t : in)
      if (t.dtype() != *dtype) t = ops::to_dtype(t, *dtype);
  std::vector<Tensor> out(in.size());
  for (const Group& g : group_by_device_and_dtype(in)) {
    std::vector<Tensor> res;
    if (g.device.is_cpu() != Launch::kHost) {  // a CPU group seen by the CUDA kernel: the CPU kernel's
      static const TypedOp<std::vector<Tensor>(TensorList, const Scalar&, std::optional<ScalarType>)> op(
          "vt::_foreach_norm");
      res = op.redispatch(Layer::Backend, g.tensors, ord, std::nullopt);
    } else {
      optim::Rows rows = norm_rows(g);
      Tensor buf = empty_tensor(DimVector{int64_t(g.tensors.size())}, g.dtype, g.device);
      VT_DISPATCH_FLOATING(g.dtype, "_foreach_norm", [&] {
        using T = opmath_t<scalar_t>;
        with_norm_kind(kind, [&](auto k) {
          Launch::template norm<scalar_t>(rows, NormOp<T, decltype(k)::value>{kind, T(p)}, buf);
        });
      });
      // As torch's, the norms are 0-dim views of one buffer: consecutive elements in list order, which
      // clip_grad.py views as one vector.
      for (size_t j = 0; j < g.tensors.size(); ++j)
        res.push_back(make_view(buf, DimVector{}, DimVector{}, buf.storage_offset() + int64_t(j)));
    }
    for (size_t j = 0; j < g.index.size(); ++j) out[g.index[j]] = res[j];
  }
  return out;
}

template <typename Launch> void mul_floating_group(const Group& g, const Tensor& other) {
  std::vector<Tensor> flat;
  for (const Tensor& t : g.tensors) flat.push_back(flat_if_dense(t));
  optim::Rows rows = optim::prepare_rows("_foreach_mul_", {{"self", flat}});
  if (rows.rows() == 0) return;
  VT_DISPATCH_FLOATING(g.dtype, "_foreach_mul_", [&] {
    MulStep<scalar_t> step;
    Tensor scale;  // the device scale in the group's dtype, alive until the launches are queued
    if (other.device().is_cpu()) {
      // Read in opmath from the value given, as mul_ reads a CPU scalar (Note [Opmath scalars]).
      step.value = item_scalar(other).to<opmath_t<scalar_t>>();
    } else {
      // mul_ casts a device scale to the tensor's dtype first. A scale that is one of the tensors would be
      // rewritten while other blocks still read it, so it is read from a copy.
      bool aliased = false;
      for (const Tensor& t : g.tensors) aliased = aliased || t.storage() == other.storage();
      scale = other.dtype() == g.dtype && !aliased ? other : ops::to_dtype(other, g.dtype);
      step.on_device = scale.data<scalar_t>();
    }
    Launch::template apply<scalar_t>(rows, std::vector<optim::NoExtra>(rows.rows()), step);
  });
  optim::finish_rows(rows);
}

template <typename Launch> void foreach_mul_(TensorList self, const Tensor& other) {
  VT_CHECK(!self.empty(), "Tensor list must have at least one tensor.");
  VT_CHECK(other.dim() == 0, "scalar tensor expected to be 0 dim but it has ", other.dim(), " dimensions and ",
           other.numel(), " elements.");
  std::vector<Group> groups = group_by_device_and_dtype(self);
  for (const Group& g : groups)  // every check before any tensor is written
    VT_CHECK(other.device().is_cpu() || other.device() == g.device, "_foreach_mul_: self[", g.index[0], "] is on ",
             g.device.str(), " but other is on ", other.device().str(),
             "; the 0-dim scale must be on the CPU or on the device of the tensors it scales");
  for (const Group& g : groups) {
    if (g.device.is_cpu() != Launch::kHost) {  // a CPU group seen by the CUDA kernel: the CPU kernel's
      static const TypedOp<void(TensorList, const Tensor&)> op("vt::_foreach_mul_");
      op.redispatch(Layer::Backend, g.tensors, other);
    } else if (is_floating(g.dtype)) {
      mul_floating_group<Launch>(g, other);
    } else {  // integers and bool, rare in a foreach: one mul_ each, with its promotion checks
      for (const Tensor& t : g.tensors) ops::binary("vt::mul_", t, other);
    }
  }
}

template <typename Launch> void register_foreach(Library& m, DispatchKey key) {
  m.impl("_foreach_norm", key, &foreach_norm<Launch>);
  m.impl("_foreach_mul_", key, &foreach_mul_<Launch>);
}

}  // namespace vt::foreach
