// TensorIterator construction and loops; the model is described in vt/core/tensor_iterator.h.
#include "vt/core/tensor_iterator.h"

#include <algorithm>

#include "vt/core/memory_overlap.h"
#include "vt/core/ops.h"
#include "vt/core/parallel.h"
#include "vt/core/scalar.h"

namespace vt {

// ---- type promotion ----

namespace {
ScalarType promote_skip_undefined(int8_t a, int8_t b) {
  if (a < 0) return ScalarType(b);
  if (b < 0) return ScalarType(a);
  return promote_types(ScalarType(a), ScalarType(b));
}
// torch's combine_categories: a lower-priority group only matters when it is of a higher kind.
int8_t combine_categories(int8_t higher, int8_t lower) {
  if (higher >= 0 && is_floating(ScalarType(higher))) return higher;
  if (higher == int8_t(ScalarType::Bool) || (lower >= 0 && is_floating(ScalarType(lower))))
    return (higher < 0 && lower < 0) ? -1 : int8_t(promote_skip_undefined(higher, lower));
  return higher >= 0 ? higher : lower;
}
}  // namespace

void ResultTypeState::update(const Tensor& t) {
  if (!t.defined()) return;
  ScalarType cur = t.dtype();
  if (t.impl()->is_wrapped_number()) {
    if (is_floating(cur)) cur = ScalarType::Float32;  // the default dtype
    wrapped_result = int8_t(promote_skip_undefined(wrapped_result, int8_t(cur)));
  } else if (t.dim() == 0) {
    zero_result = int8_t(promote_skip_undefined(zero_result, int8_t(cur)));
  } else {
    dim_result = int8_t(promote_skip_undefined(dim_result, int8_t(cur)));
  }
}

ScalarType ResultTypeState::result() const {
  int8_t r = combine_categories(dim_result, combine_categories(zero_result, wrapped_result));
  VT_INTERNAL_ASSERT(r >= 0, "result type of no tensors");
  return ScalarType(r);
}

ScalarType result_type(std::initializer_list<Tensor> ts) {
  ResultTypeState st;
  for (const Tensor& t : ts) st.update(t);
  return st.result();
}

DimVector broadcast_shapes(IntArrayRef a, IntArrayRef b) {
  size_t n = std::max(a.size(), b.size());
  DimVector out(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    VT_CHECK(da == db || da == 1 || db == 1, "The size of tensor a (", da, ") must match the size of tensor b (", db,
             ") at non-singleton dimension ", i, ": shapes ", shape_str(a), " and ", shape_str(b),
             " do not broadcast");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

// A 0-dim CPU tensor converted to `dtype` directly, without a dispatched copy.
Tensor cast_scalar(const Tensor& t, ScalarType dtype) {
  Tensor out = scalar_to_tensor(item_scalar(t), dtype);
  out.impl()->set_wrapped_number(t.impl()->is_wrapped_number());
  return out;
}

// ---- config ----

TensorIteratorConfig& TensorIteratorConfig::add_output(const Tensor& t) {
  VT_CHECK(outputs_.size() + inputs_.size() < kMaxOperands, name_, ": at most ", kMaxOperands, " operands");
  outputs_.push_back(t);
  return *this;
}
TensorIteratorConfig& TensorIteratorConfig::add_input(const Tensor& t) {
  VT_INTERNAL_ASSERT(t.defined(), "undefined input");
  VT_CHECK(outputs_.size() + inputs_.size() < kMaxOperands, name_, ": at most ", kMaxOperands, " operands");
  inputs_.push_back(t);
  return *this;
}
TensorIterator TensorIteratorConfig::build() {
  TensorIterator it;
  it.build(*this);
  return it;
}

// ---- build ----

void TensorIterator::build(TensorIteratorConfig& cfg) {
  name_ = cfg.name_;
  reduction_ = cfg.reduction_;
  noutputs_ = int(cfg.outputs_.size());
  for (auto& t : cfg.outputs_) ops_.push_back(Operand{t, t, {}, true});
  for (auto& t : cfg.inputs_) ops_.push_back(Operand{t, t, {}, false});
  compute_shape(cfg);
  compute_types(cfg);
  if (try_trivial_layout()) return;
  reorder_dimensions();
  allocate_outputs();
  if (cfg.overlap_) check_overlap();
  permute_and_coalesce();
}

void TensorIterator::compute_shape(TensorIteratorConfig& cfg) {
  bool first = true;
  for (const Operand& op : ops_) {
    if (op.is_output) continue;
    shape_ = first ? DimVector(op.original.sizes()) : broadcast_shapes(shape_, op.original.sizes());
    first = false;
  }
  for (const Operand& op : ops_) {
    if (!op.is_output || !op.original.defined()) continue;
    if (first) {
      shape_ = DimVector(op.original.sizes());
      first = false;
    } else if (!reduction_) {
      // In-place: the inputs must broadcast to the output's shape, which stays as it is.
      DimVector out_shape(op.original.sizes());
      DimVector joint = broadcast_shapes(shape_, out_shape);
      VT_CHECK(joint == out_shape, name_, ": output with shape ", shape_str(out_shape),
               " doesn't match the broadcast shape ", shape_str(joint));
      shape_ = out_shape;
    }
  }
  if (reduction_) {
    // The input's shape is the iteration shape; outputs (keepdim shape) broadcast against it.
    for (const Operand& op : ops_)
      if (op.is_output) VT_INTERNAL_ASSERT(op.original.dim() == int64_t(shape_.size()), "reduction output rank");
  }
  (void)cfg;
  numel_ = prod(shape_);
}

void TensorIterator::compute_types(TensorIteratorConfig& cfg) {
  bool has_inputs = ops_.size() > size_t(noutputs_);
  if (cfg.common_override_ >= 0) {
    common_ = ScalarType(cfg.common_override_);
  } else if (has_inputs) {
    ResultTypeState st;
    for (const Operand& op : ops_)
      if (!op.is_output) st.update(op.original);
    common_ = st.result();
    if (cfg.int_to_float_ && !is_floating(common_)) common_ = ScalarType::Float32;
  } else if (ops_[0].original.defined()) {
    common_ = ops_[0].original.dtype();
  }
  if (cfg.same_dtype_ && !cfg.promote_ && cfg.common_override_ < 0) {
    for (const Operand& op : ops_) {
      if (op.original.defined() && !op.is_output)
        VT_CHECK_TYPE(op.original.dtype() == common_, name_, ": expected all inputs to have dtype ",
                      dtype_name(common_), ", but got ", dtype_name(op.original.dtype()));
    }
  }
  out_dtype_ = cfg.out_dtype_ >= 0 ? ScalarType(cfg.out_dtype_) : common_;
  device_ = kCPU;
  for (const Operand& op : ops_) {
    if (op.original.defined() && !(op.original.device().is_cpu() && op.original.dim() == 0)) {
      device_ = op.original.device();
      break;
    }
  }
  for (Operand& op : ops_) {
    if (op.is_output) {
      if (op.original.defined() && cfg.safe_cast_ && cfg.out_dtype_ < 0) {
        VT_CHECK(can_cast(common_, op.original.dtype()), name_, ": result type ", dtype_name(common_),
                 " can't be cast to the desired output type ", dtype_name(op.original.dtype()));
      }
    } else if (cfg.cast_inputs_ && (cfg.promote_ || cfg.common_override_ >= 0) && op.original.dtype() != common_) {
      if (op.original.impl()->is_wrapped_number()) {
        op.compute = cast_scalar(op.original, common_);
      } else if (op.original.is_cuda() && device_.is_cuda() && op.original.device() != device_) {
        // An operand read from another GPU (Note [Cross-device calls]) is cast on the compute device, by a
        // stream-ordered copy: a cast queued on its own device's stream would not be ordered before this kernel.
        op.compute = ops::copy_(empty_tensor(op.original.sizes(), common_, device_), op.original);
      } else {
        op.compute = ops::to_dtype(op.original, common_);
      }
    }
  }
}

// Note [Trivial iteration]
// The common eager case - fresh outputs, inputs that are contiguous with the broadcast shape or are 0-dim
// scalars - needs no dim reordering, coalescing or overlap checks: it is one flat dim. Taking it directly
// keeps tiny-tensor ops cheap.
bool TensorIterator::try_trivial_layout() {
  if (reduction_) return false;
  for (const Operand& op : ops_) {
    if (op.is_output) {
      if (op.original.defined()) return false;
    } else {
      const Tensor& t = op.compute;
      bool scalar = t.dim() == 0;
      if (!scalar && !(t.is_contiguous() && DimVector(t.sizes()) == shape_)) return false;
    }
  }
  int64_t n = numel_;
  for (Operand& op : ops_) {
    if (op.is_output) {
      auto storage = allocate_storage(size_t(n * itemsize(out_dtype_)), device_);
      op.original = Tensor(std::make_shared<TensorImpl>(std::move(storage), out_dtype_, shape_,
                                                        contiguous_strides(shape_), 0));
      op.compute = op.original;
    }
    op.strides = DimVector{op.compute.dim() == 0 && n != 1 ? 0 : op.compute.element_size()};
  }
  shape_ = DimVector{n};
  return true;
}

void TensorIterator::reorder_dimensions() {
  int nd = int(shape_.size());
  perm_.resize(size_t(nd));
  for (int i = 0; i < nd; ++i) perm_[size_t(i)] = nd - 1 - i;  // default: last user dim innermost
  if (nd <= 1) return;
  // Element stride of an operand along user dim d, 0 where it is broadcast.
  auto stride_of = [&](const Operand& op, int64_t d) -> int64_t {
    const Tensor& t = op.compute;
    int64_t off = nd - t.dim();
    if (d < off) return 0;
    return t.size(d - off) == 1 ? 0 : t.stride(d - off);
  };
  // 1 when dim0 (currently more inner) should move outward past dim1, -1 when it should stay. Outputs decide
  // first for elementwise ops; for reductions the inputs do, since outputs have stride 0 on reduced dims.
  auto should_swap = [&](int64_t dim0, int64_t dim1) {
    for (size_t k = 0; k < ops_.size(); ++k) {
      const Operand& op = ops_[reduction_ ? (k + size_t(noutputs_)) % ops_.size() : k];
      if (!op.compute.defined()) continue;
      int64_t s0 = stride_of(op, dim0), s1 = stride_of(op, dim1);
      if (s0 == 0 || s1 == 0) continue;
      if (s0 < s1) return -1;
      if (s0 > s1) return 1;
      if (shape_[size_t(dim0)] > shape_[size_t(dim1)]) return 1;
    }
    return 0;
  };
  for (int i = 1; i < nd; ++i) {
    int dim1 = i;
    for (int dim0 = i - 1; dim0 >= 0; --dim0) {
      int c = should_swap(perm_[size_t(dim0)], perm_[size_t(dim1)]);
      if (c > 0) {
        std::swap(perm_[size_t(dim0)], perm_[size_t(dim1)]);
        dim1 = dim0;
      } else if (c < 0) {
        break;
      }
    }
  }
}

void TensorIterator::allocate_outputs() {
  for (Operand& op : ops_) {
    if (!op.is_output) continue;
    if (!op.original.defined()) {
      // Lay a new output out in iteration order, so it follows the inputs' layout (as torch does).
      DimVector strides(shape_.size());
      int64_t s = 1;
      for (size_t k = 0; k < perm_.size(); ++k) {
        strides[size_t(perm_[k])] = s;
        s *= std::max<int64_t>(shape_[size_t(perm_[k])], 1);
      }
      auto storage = allocate_storage(size_t(numel_ * itemsize(out_dtype_)), device_);
      op.original = Tensor(std::make_shared<TensorImpl>(std::move(storage), out_dtype_, shape_, strides, 0));
      op.compute = op.original;
    } else if (!reduction_ && op.original.dtype() != out_dtype_) {
      op.compute = empty_tensor(shape_, out_dtype_, op.original.device());  // cast back in cast_outputs()
    }
  }
}

// Note [Memory overlap] (vt/core/memory_overlap.h): the same decision as the dispatcher's in-place check, so
// kernels built on the iterator for other callers (copy_ into a view, say) refuse the same layouts.
void TensorIterator::check_overlap() {
  for (const Operand& out : ops_) {
    if (!out.is_output || out.original.numel() == 0) continue;
    if (!reduction_) assert_no_internal_overlap(out.original, name_);
    for (const Operand& in : ops_)
      if (!in.is_output) assert_no_partial_overlap(out.original, in.original, name_);
  }
}

void TensorIterator::permute_and_coalesce() {
  size_t nd = shape_.size();
  DimVector shape(nd);
  for (size_t k = 0; k < nd; ++k) shape[k] = shape_[size_t(perm_[k])];
  for (Operand& op : ops_) {
    const Tensor& t = op.compute;
    op.strides.resize(nd);
    int64_t off = int64_t(nd) - t.dim();
    for (size_t k = 0; k < nd; ++k) {
      int64_t d = perm_[k] - off;
      op.strides[k] = (d < 0 || t.size(d) == 1) ? 0 : t.stride(d) * t.element_size();
    }
  }
  // Merge iteration dim k into the run ending at dim `prev` when every operand steps through them as one.
  if (nd > 1) {
    size_t prev = 0;
    for (size_t k = 1; k < nd; ++k) {
      bool can = true;
      for (Operand& op : ops_) {
        if (shape[prev] != 1 && shape[k] != 1 && op.strides[k] != shape[prev] * op.strides[prev]) {
          can = false;
          break;
        }
      }
      if (can) {
        for (Operand& op : ops_)
          if (shape[prev] == 1) op.strides[prev] = op.strides[k];
        shape[prev] *= shape[k];
      } else {
        ++prev;
        if (prev != k) {
          shape[prev] = shape[k];
          for (Operand& op : ops_) op.strides[prev] = op.strides[k];
        }
      }
    }
    nd = prev + 1;
    shape.resize(nd);
    for (Operand& op : ops_) op.strides.resize(nd);
  }
  shape_ = shape;
}

bool TensorIterator::is_contiguous_inner(int i) const {
  return shape_.empty() || ops_[size_t(i)].strides[0] == ops_[size_t(i)].compute.element_size();
}

bool TensorIterator::is_scalar(int i) const {
  for (int64_t s : ops_[size_t(i)].strides)
    if (s != 0) return false;
  return true;
}

// ---- loops ----

void TensorIterator::serial_for_each(Loop2d loop, int64_t begin, int64_t end) const {
  if (begin >= end) return;
  const size_t nt = ops_.size();
  char* base[32];
  char* ptrs[32];
  int64_t strides[64];
  VT_INTERNAL_ASSERT(nt <= 32, "too many operands");
  for (size_t i = 0; i < nt; ++i) base[i] = ops_[i].compute.data_ptr();
  const size_t nd = shape_.size();
  if (nd == 0) {
    for (size_t i = 0; i < nt; ++i) strides[i] = strides[nt + i] = 0;
    loop(base, strides, 1, 1);
    return;
  }
  for (size_t i = 0; i < nt; ++i) {
    strides[i] = ops_[i].strides[0];
    strides[nt + i] = nd > 1 ? ops_[i].strides[1] : 0;
  }
  // Multi-index of `begin`, innermost first.
  int64_t idx[kMaxDims];
  int64_t rem = begin;
  for (size_t d = 0; d < nd; ++d) {
    idx[d] = rem % shape_[d];
    rem /= shape_[d];
  }
  int64_t pos = begin;
  while (pos < end) {
    for (size_t i = 0; i < nt; ++i) {
      char* p = base[i];
      for (size_t d = 0; d < nd; ++d) p += idx[d] * ops_[i].strides[d];
      ptrs[i] = p;
    }
    int64_t n0, n1 = 1;
    if (idx[0] != 0 || nd == 1) {
      n0 = std::min(shape_[0] - idx[0], end - pos);
    } else {
      n0 = shape_[0];
      if (end - pos < n0) {
        n0 = end - pos;
      } else {
        n1 = std::min((end - pos) / n0, shape_[1] - idx[1]);
      }
    }
    loop(ptrs, strides, n0, n1);
    // Advance the multi-index by n0 * n1 elements.
    int64_t step = n0 * n1;
    pos += step;
    if (n1 > 1) {
      idx[1] += n1;
    } else {
      idx[0] += n0;
    }
    for (size_t d = 0; d + 1 < nd; ++d) {
      if (idx[d] < shape_[d]) continue;
      idx[d + 1] += idx[d] / shape_[d];
      idx[d] %= shape_[d];
    }
  }
}

void TensorIterator::for_each(Loop2d loop, int64_t grain) {
  if (numel_ > 0) {
    if (numel_ < grain) serial_for_each(loop, 0, numel_);
    else parallel_for(0, numel_, grain, [&](int64_t b, int64_t e) { serial_for_each(loop, b, e); });
  }
  cast_outputs();
}

void TensorIterator::reduce_for_each(Loop2d loop) {
  if (numel_ == 0) return cast_outputs();
  // Parallelise over the outermost iteration dim when no output is reduced along it.
  size_t nd = shape_.size();
  bool outer_free = nd > 0 && shape_[nd - 1] > 1;
  for (int i = 0; i < noutputs_ && outer_free; ++i) outer_free = ops_[size_t(i)].strides[nd - 1] != 0;
  if (!outer_free || numel_ < kDefaultGrain) {
    serial_for_each(loop, 0, numel_);
  } else {
    int64_t inner = numel_ / shape_[nd - 1];
    parallel_for(0, shape_[nd - 1], std::max<int64_t>(1, kDefaultGrain / std::max<int64_t>(inner, 1)),
                 [&](int64_t b, int64_t e) { serial_for_each(loop, b * inner, e * inner); });
  }
  cast_outputs();
}

void TensorIterator::cast_outputs() {
  for (Operand& op : ops_) {
    if (op.is_output && !op.compute.is_same(op.original)) ops::copy_(op.original, op.compute);
  }
}

}  // namespace vt
