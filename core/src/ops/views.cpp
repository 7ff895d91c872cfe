// View ops: new sizes/strides/offset over the same storage, never a copy (reshape excepted, which copies only
// when no view can express the result). Device-agnostic, so registered under DispatchKey::Any.
#include <algorithm>
#include <optional>

#include "vt/core/dispatcher.h"
#include "vt/core/ops.h"

namespace vt {
namespace {

// A view op's result: shares self's storage and, in grad mode, remembers its base (Note [View base]).
Tensor as_view(const Tensor& self, IntArrayRef sizes, IntArrayRef strides, int64_t offset) {
  Tensor out = make_view(self, sizes, strides, offset);
  if (autograd::is_grad_enabled()) out.impl()->set_view_base(self.impl_ptr());
  return out;
}

Tensor as_strided_any(const Tensor& self, IntArrayRef size, IntArrayRef stride, std::optional<int64_t> offset) {
  VT_CHECK(size.size() == stride.size(), "as_strided: mismatch in length of size ", shape_str(size),
           " and stride ", shape_str(stride));
  int64_t off = offset.value_or(self.storage_offset());
  VT_CHECK(off >= 0, "as_strided: negative storage offset ", off);
  int64_t max_index = off;
  bool empty = false;
  for (size_t d = 0; d < size.size(); ++d) {
    VT_CHECK(size[d] >= 0, "as_strided: negative size ", size[d], " at dim ", d);
    VT_CHECK(stride[d] >= 0, "as_strided: negative stride ", stride[d], " at dim ", d);
    empty = empty || size[d] == 0;
  }
  for (size_t d = 0; d < size.size() && !empty; ++d) {
    int64_t span = 0;
    VT_CHECK(!__builtin_mul_overflow(size[d] - 1, stride[d], &span) && !__builtin_add_overflow(max_index, span, &max_index),
             "as_strided: size ", shape_str(size), " with stride ", shape_str(stride), " overflows int64");
  }
  int64_t capacity = int64_t(self.storage()->nbytes()) / self.element_size();
  VT_CHECK(empty || max_index < capacity, "as_strided: size ", shape_str(size), " with stride ", shape_str(stride),
           " and offset ", off, " needs ", max_index + 1, " elements but the storage holds ", capacity);
  return as_view(self, size, stride, off);
}

// Strides for viewing `sizes/strides` as `shape`, or nullopt when the data cannot be addressed that way. Walks
// both shapes in chunks of dims that are contiguous with each other in the old layout.
std::optional<DimVector> compute_view_strides(IntArrayRef sizes, IntArrayRef strides, IntArrayRef shape) {
  DimVector out(shape.size());
  if (prod(sizes) == 0 || sizes.empty()) return contiguous_strides(shape);  // 0-dim and empty: any layout
  int64_t view_d = int64_t(shape.size()) - 1;
  int64_t chunk_base_stride = strides.empty() ? 1 : strides.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t d = int64_t(sizes.size()) - 1; d >= 0; --d) {
    tensor_numel *= sizes[size_t(d)];
    // A chunk ends where the next-outer dim does not continue this one contiguously.
    if (d == 0 || (sizes[size_t(d - 1)] != 1 && strides[size_t(d - 1)] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || shape[size_t(view_d)] == 1)) {
        out[size_t(view_d)] = view_numel * chunk_base_stride;
        view_numel *= shape[size_t(view_d)];
        --view_d;
      }
      if (view_numel != tensor_numel) return std::nullopt;
      if (d > 0) {
        chunk_base_stride = strides[size_t(d - 1)];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  if (view_d != -1) return std::nullopt;
  return out;
}

// Resolves one -1 in `shape` and checks the element count.
DimVector infer_shape(IntArrayRef shape, int64_t numel) {
  DimVector out(shape);
  int64_t known = 1, infer = -1;
  for (size_t d = 0; d < out.size(); ++d) {
    if (out[d] == -1) {
      VT_CHECK(infer < 0, "only one dimension can be inferred, got shape ", shape_str(shape));
      infer = int64_t(d);
    } else {
      VT_CHECK(out[d] >= 0, "invalid shape dimension ", out[d], " in ", shape_str(shape));
      VT_CHECK(!__builtin_mul_overflow(known, out[d], &known), "shape ", shape_str(shape), " overflows int64");
    }
  }
  if (infer >= 0) {
    VT_CHECK(known != 0 && numel % known == 0, "shape '", shape_str(shape), "' is invalid for input of size ", numel);
    out[size_t(infer)] = numel / known;
  } else {
    VT_CHECK(known == numel, "shape '", shape_str(shape), "' is invalid for input of size ", numel);
  }
  return out;
}

Tensor view_any(const Tensor& self, IntArrayRef size) {
  DimVector shape = infer_shape(size, self.numel());
  auto strides = compute_view_strides(self.sizes(), self.strides(), shape);
  VT_CHECK(strides.has_value(), "view size ", shape_str(shape), " is not compatible with input tensor's size ",
           shape_str(self.sizes()), " and stride ", shape_str(self.strides()),
           " (at least one dimension spans across two contiguous subspaces). Use .reshape(...) instead.");
  return as_view(self, shape, *strides, self.storage_offset());
}

Tensor reshape_any(const Tensor& self, IntArrayRef size) {
  DimVector shape = infer_shape(size, self.numel());
  if (auto strides = compute_view_strides(self.sizes(), self.strides(), shape))
    return as_view(self, shape, *strides, self.storage_offset());
  Tensor copy = ops::clone(self);  // a new tensor, not a view: it gets no base
  return make_view(copy, shape, contiguous_strides(shape), 0);
}

Tensor permute_any(const Tensor& self, IntArrayRef dims) {
  int64_t nd = self.dim();
  VT_CHECK(int64_t(dims.size()) == nd, "permute: number of dims ", dims.size(), " doesn't match the tensor's ",
           nd, " dimensions");
  DimVector sizes = DimVector(size_t(nd)), strides = DimVector(size_t(nd));
  std::vector<bool> seen(size_t(nd), false);
  for (int64_t i = 0; i < nd; ++i) {
    int64_t d = wrap_dim(dims[size_t(i)], nd);
    VT_CHECK(!seen[size_t(d)], "permute: repeated dim ", dims[size_t(i)], " in ", shape_str(dims));
    seen[size_t(d)] = true;
    sizes[size_t(i)] = self.sizes()[size_t(d)];
    strides[size_t(i)] = self.strides()[size_t(d)];
  }
  return as_view(self, sizes, strides, self.storage_offset());
}

Tensor transpose_any(const Tensor& self, int64_t dim0, int64_t dim1) {
  int64_t nd = self.dim();
  if (nd == 0) {
    wrap_dim(dim0, 0), wrap_dim(dim1, 0);
    return as_view(self, {}, {}, self.storage_offset());
  }
  dim0 = wrap_dim(dim0, nd);
  dim1 = wrap_dim(dim1, nd);
  DimVector sizes(self.sizes()), strides(self.strides());
  std::swap(sizes[size_t(dim0)], sizes[size_t(dim1)]);
  std::swap(strides[size_t(dim0)], strides[size_t(dim1)]);
  return as_view(self, sizes, strides, self.storage_offset());
}

Tensor expand_any(const Tensor& self, IntArrayRef size) {
  int64_t nd = int64_t(size.size());
  VT_CHECK(nd >= self.dim(), "expand: the number of sizes provided (", nd,
           ") must be greater or equal to the number of dimensions in the tensor (", self.dim(), ")");
  DimVector sizes = DimVector(size_t(nd)), strides = DimVector(size_t(nd));
  int64_t off = nd - self.dim();
  for (int64_t d = 0; d < nd; ++d) {
    int64_t want = size[size_t(d)];
    if (d < off) {
      VT_CHECK(want >= 0, "expand: the expanded size ", want, " is not allowed in a leading, non-existing dimension ",
               d, " (new leading dims take sizes >= 0)");
      sizes[size_t(d)] = want;
      strides[size_t(d)] = 0;
      continue;
    }
    int64_t have = self.sizes()[size_t(d - off)];
    if (want == -1) want = have;
    VT_CHECK(want >= 0, "expand: invalid size ", size[size_t(d)], " at dim ", d, " (only -1 may be negative)");
    VT_CHECK(have == want || have == 1, "The expanded size of the tensor (", want,
             ") must match the existing size (", have, ") at non-singleton dimension ", d, ".  Target sizes: ",
             shape_str(size), ".  Tensor sizes: ", shape_str(self.sizes()));
    sizes[size_t(d)] = want;
    strides[size_t(d)] = have == want ? self.strides()[size_t(d - off)] : 0;
  }
  return as_view(self, sizes, strides, self.storage_offset());
}

Tensor slice_any(const Tensor& self, int64_t dim, std::optional<int64_t> start_opt, std::optional<int64_t> end_opt,
                 int64_t step) {
  VT_CHECK_INDEX(self.dim() > 0, "slice() cannot be applied to a 0-dim tensor.");
  dim = wrap_dim(dim, self.dim());
  VT_CHECK(step > 0, "slice step must be positive, got ", step);  // torch's op: RuntimeError (x[::0]: ValueError)
  int64_t n = self.sizes()[size_t(dim)];
  auto clampi = [n](int64_t v) { return v < 0 ? std::max<int64_t>(v + n, 0) : std::min(v, n); };
  int64_t start = clampi(start_opt.value_or(0));
  int64_t end = std::max(clampi(end_opt.value_or(n)), start);
  DimVector sizes(self.sizes()), strides(self.strides());
  sizes[size_t(dim)] = end == start ? 0 : 1 + (end - start - 1) / step;  // no overflow for huge steps
  // A step whose product with the stride leaves int64 would make a wrapped (negative) stride: refused, as torch
  // refuses the negative stride it makes of it.
  VT_CHECK(!__builtin_mul_overflow(strides[size_t(dim)], step, &strides[size_t(dim)]), "slice: step ", step,
           " times the stride ", self.strides()[size_t(dim)], " of dimension ", dim, " overflows int64");
  return as_view(self, sizes, strides, self.storage_offset() + start * self.strides()[size_t(dim)]);
}

Tensor narrow_any(const Tensor& self, int64_t dim, int64_t start, int64_t length) {
  VT_CHECK(self.dim() > 0, "narrow() cannot be applied to a 0-dim tensor.");
  VT_CHECK(length >= 0, "narrow(): length must be non-negative.");
  dim = wrap_dim(dim, self.dim());
  int64_t n = self.sizes()[size_t(dim)];
  if (start < 0) start += n;
  VT_CHECK_INDEX(start >= 0 && start <= n, "start (", start, ") is out of bounds for dimension ", dim, " of size ", n);
  VT_CHECK(length >= 0 && length <= n - start, "start (", start, ") + length (", length,
           ") exceeds dimension size (", n, ").");
  return slice_any(self, dim, start, start + length, 1);
}

Tensor select_any(const Tensor& self, int64_t dim, int64_t index) {
  VT_CHECK_INDEX(self.dim() > 0, "select() cannot be applied to a 0-dim tensor.");
  dim = wrap_dim(dim, self.dim());
  int64_t n = self.sizes()[size_t(dim)];
  VT_CHECK_INDEX(index >= -n && index < n, "index ", index, " is out of bounds for dimension ", dim, " with size ", n);
  if (index < 0) index += n;
  DimVector sizes(self.sizes()), strides(self.strides());
  int64_t off = self.storage_offset() + index * strides[size_t(dim)];
  sizes.erase(size_t(dim));
  strides.erase(size_t(dim));
  return as_view(self, sizes, strides, off);
}

Tensor squeeze_any(const Tensor& self, OptionalIntArrayRef dims) {
  int64_t nd = self.dim();
  std::vector<bool> drop(size_t(nd), false);
  if (!dims) {
    for (int64_t d = 0; d < nd; ++d) drop[size_t(d)] = self.sizes()[size_t(d)] == 1;
  } else {
    std::vector<bool> seen(size_t(std::max<int64_t>(nd, 1)), false);
    for (int64_t d : *dims) {
      int64_t w = wrap_dim(d, nd);
      VT_CHECK(!seen[size_t(w)], "dim ", w, " appears multiple times in the list of dims");
      seen[size_t(w)] = true;
      if (nd > 0) drop[size_t(w)] = self.sizes()[size_t(w)] == 1;
    }
  }
  DimVector sizes, strides;
  for (int64_t d = 0; d < nd; ++d) {
    if (drop[size_t(d)]) continue;
    sizes.push_back(self.sizes()[size_t(d)]);
    strides.push_back(self.strides()[size_t(d)]);
  }
  return as_view(self, sizes, strides, self.storage_offset());
}

Tensor unsqueeze_any(const Tensor& self, int64_t dim) {
  dim = wrap_dim(dim, self.dim() + 1);
  DimVector sizes(self.sizes()), strides(self.strides());
  int64_t st = dim < self.dim() ? sizes[size_t(dim)] * strides[size_t(dim)] : 1;
  sizes.insert(size_t(dim), 1);
  strides.insert(size_t(dim), st);
  return as_view(self, sizes, strides, self.storage_offset());
}

Tensor flatten_any(const Tensor& self, int64_t start_dim, int64_t end_dim) {
  if (self.dim() == 0) {
    wrap_dim(start_dim, 0), wrap_dim(end_dim, 0);  // a 0-dim tensor takes dims in [-1, 0] (IndexError else)
    return reshape_any(self, DimVector{1});
  }
  start_dim = wrap_dim(start_dim, self.dim());
  end_dim = wrap_dim(end_dim, self.dim());
  VT_CHECK(start_dim <= end_dim, "flatten() has invalid args: start_dim (", start_dim,
           ") cannot come after end_dim (", end_dim, ")");
  DimVector shape;
  for (int64_t d = 0; d < start_dim; ++d) shape.push_back(self.sizes()[size_t(d)]);
  int64_t merged = 1;
  for (int64_t d = start_dim; d <= end_dim; ++d) merged *= self.sizes()[size_t(d)];
  shape.push_back(merged);
  for (int64_t d = end_dim + 1; d < self.dim(); ++d) shape.push_back(self.sizes()[size_t(d)]);
  return reshape_any(self, shape);
}

Tensor diagonal_any(const Tensor& self, int64_t offset, int64_t dim1, int64_t dim2) {
  int64_t nd = self.dim();
  dim1 = wrap_dim(dim1, nd);
  dim2 = wrap_dim(dim2, nd);
  VT_CHECK(dim1 != dim2, "diagonal dimensions cannot be identical ", dim1, ", ", dim2);
  int64_t n1 = self.sizes()[size_t(dim1)], n2 = self.sizes()[size_t(dim2)];
  int64_t len = offset >= 0 ? std::max<int64_t>(std::min(n1, n2 - offset), 0)
                            : std::max<int64_t>(std::min(n1 + offset, n2), 0);
  int64_t off = self.storage_offset();
  if (len > 0) off += offset >= 0 ? offset * self.strides()[size_t(dim2)] : -offset * self.strides()[size_t(dim1)];
  DimVector sizes, strides;
  for (int64_t d = 0; d < nd; ++d) {
    if (d == dim1 || d == dim2) continue;
    sizes.push_back(self.sizes()[size_t(d)]);
    strides.push_back(self.strides()[size_t(d)]);
  }
  sizes.push_back(len);
  strides.push_back(self.strides()[size_t(dim1)] + self.strides()[size_t(dim2)]);
  return as_view(self, sizes, strides, off);
}

}  // namespace

VT_LIBRARY(vt, views) {
  m.def("as_strided(Tensor self, int[] size, int[] stride, int? storage_offset=None) -> Tensor");
  m.def("view(Tensor self, int[] size) -> Tensor");
  m.def("reshape(Tensor self, int[] shape) -> Tensor");
  m.def("permute(Tensor self, int[] dims) -> Tensor");
  m.def("transpose(Tensor self, int dim0, int dim1) -> Tensor");
  m.def("expand(Tensor self, int[] size) -> Tensor");
  m.def("narrow(Tensor self, int dim, int start, int length) -> Tensor");
  m.def("select(Tensor self, int dim, int index) -> Tensor");
  m.def("slice(Tensor self, int dim=0, int? start=None, int? end=None, int step=1) -> Tensor");
  m.def("squeeze(Tensor self, int[]? dim=None) -> Tensor");
  m.def("unsqueeze(Tensor self, int dim) -> Tensor");
  m.def("flatten(Tensor self, int start_dim=0, int end_dim=-1) -> Tensor");
  m.def("diagonal(Tensor self, int offset=0, int dim1=0, int dim2=1) -> Tensor");
  m.impl_any("as_strided", &as_strided_any);
  m.impl_any("view", &view_any);
  m.impl_any("reshape", &reshape_any);
  m.impl_any("permute", &permute_any);
  m.impl_any("transpose", &transpose_any);
  m.impl_any("expand", &expand_any);
  m.impl_any("narrow", &narrow_any);
  m.impl_any("select", &select_any);
  m.impl_any("slice", &slice_any);
  m.impl_any("squeeze", &squeeze_any);
  m.impl_any("unsqueeze", &unsqueeze_any);
  m.impl_any("flatten", &flatten_any);
  m.impl_any("diagonal", &diagonal_any);
}

namespace ops {
#define VT_VIEW_API(name, params, types, args)                       \
  Tensor name params {                                                \
    static const TypedOp<Tensor types> op("vt::" #name);              \
    return op args;                                                   \
  }
VT_VIEW_API(as_strided, (const Tensor& s, IntArrayRef a, IntArrayRef b, std::optional<int64_t> o),
            (const Tensor&, IntArrayRef, IntArrayRef, std::optional<int64_t>), (s, a, b, o))
VT_VIEW_API(view, (const Tensor& s, IntArrayRef a), (const Tensor&, IntArrayRef), (s, a))
VT_VIEW_API(reshape, (const Tensor& s, IntArrayRef a), (const Tensor&, IntArrayRef), (s, a))
VT_VIEW_API(permute, (const Tensor& s, IntArrayRef a), (const Tensor&, IntArrayRef), (s, a))
VT_VIEW_API(transpose, (const Tensor& s, int64_t a, int64_t b), (const Tensor&, int64_t, int64_t), (s, a, b))
VT_VIEW_API(expand, (const Tensor& s, IntArrayRef a), (const Tensor&, IntArrayRef), (s, a))
VT_VIEW_API(narrow, (const Tensor& s, int64_t d, int64_t a, int64_t b), (const Tensor&, int64_t, int64_t, int64_t),
            (s, d, a, b))
VT_VIEW_API(select, (const Tensor& s, int64_t d, int64_t i), (const Tensor&, int64_t, int64_t), (s, d, i))
VT_VIEW_API(slice, (const Tensor& s, int64_t d, std::optional<int64_t> a, std::optional<int64_t> b, int64_t st),
            (const Tensor&, int64_t, std::optional<int64_t>, std::optional<int64_t>, int64_t), (s, d, a, b, st))
VT_VIEW_API(squeeze, (const Tensor& s, OptionalIntArrayRef d), (const Tensor&, OptionalIntArrayRef), (s, d))
VT_VIEW_API(unsqueeze, (const Tensor& s, int64_t d), (const Tensor&, int64_t), (s, d))
VT_VIEW_API(flatten, (const Tensor& s, int64_t a, int64_t b), (const Tensor&, int64_t, int64_t), (s, a, b))
VT_VIEW_API(diagonal, (const Tensor& s, int64_t o, int64_t a, int64_t b), (const Tensor&, int64_t, int64_t, int64_t),
            (s, o, a, b))
#undef VT_VIEW_API
}  // namespace ops

}  // namespace vt
