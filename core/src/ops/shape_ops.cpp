// cat, nonzero and advanced indexing (index / index_put_). Indexing follows NumPy/torch: index tensors
// (int64/int32, or bool masks, which stand for their nonzero() coordinates) broadcast to one shape B; the
// result has B in place of the indexed dims when they are adjacent, and in front otherwise.
#include <algorithm>
#include <cstring>

#include "index_plan.h"
#include "vt/core/dispatcher.h"
#include "vt/core/ops.h"
#include "vt/core/parallel.h"
#include "vt/core/tensor_iterator.h"

namespace vt {

namespace indexing {
IndexPlan plan_index(const Tensor& self, TensorList indices) {
  IndexPlan p;
  VT_CHECK_INDEX(int64_t(indices.size()) <= self.dim(), "too many indices for tensor of dimension ", self.dim(),
                 " (got ", indices.size(), ")");
  std::vector<Tensor> expanded;  // bool masks become one long index per mask dim
  std::vector<int64_t> dims;
  int64_t d = 0;
  for (const Tensor& t : indices) {
    if (!t.defined()) {
      ++d;
      continue;
    }
    if (t.dtype() == ScalarType::Bool || t.dtype() == ScalarType::UInt8) {
      for (int64_t k = 0; k < t.dim(); ++k)
        VT_CHECK_INDEX(d + k < self.dim() && t.size(k) == self.size(d + k), "The shape of the mask ",
                       shape_str(t.sizes()), " at index ", k, " does not match the shape of the indexed tensor ",
                       shape_str(self.sizes()), " at index ", d + k);
      Tensor nz = ops::unary("vt::nonzero", t);
      for (int64_t k = 0; k < t.dim(); ++k) {
        expanded.push_back(ops::select(nz, 1, k));
        dims.push_back(d + k);
      }
      d += t.dim();
    } else {
      VT_CHECK_INDEX(!is_floating(t.dtype()), "tensors used as indices must be long, int, byte or bool tensors, got ",
                     dtype_name(t.dtype()));
      expanded.push_back(t.dtype() == ScalarType::Int64 ? t : ops::to_dtype(t, ScalarType::Int64));
      dims.push_back(d);
      ++d;
    }
  }
  VT_CHECK_INDEX(d <= self.dim(), "too many indices for tensor of dimension ", self.dim());
  VT_CHECK_INDEX(!expanded.empty(), "at least one index must be provided");
  DimVector b(expanded[0].sizes());
  for (const Tensor& t : expanded) {
    try {
      b = broadcast_shapes(b, t.sizes());
    } catch (const Error&) {
      VT_FAIL_KIND(Index, "shape mismatch: indexing tensors could not be broadcast together with shapes ",
                   shape_str(b), ", ", shape_str(t.sizes()));
    }
  }
  for (const Tensor& t : expanded) p.idx.push_back(ops::contiguous(ops::expand(t, b)));
  p.dims = dims;
  p.bshape = b;
  bool adjacent = true;
  for (size_t i = 1; i < dims.size(); ++i) adjacent = adjacent && dims[i] == dims[i - 1] + 1;
  int64_t before = 0;
  for (int64_t k = 0; k < self.dim(); ++k) {
    if (std::find(dims.begin(), dims.end(), k) != dims.end()) continue;
    p.rest_sizes.push_back(self.size(k));
    p.rest_strides.push_back(self.stride(k));
    if (k < dims[0]) ++before;
  }
  p.insert_at = adjacent ? before : 0;
  return p;
}

DimVector result_shape(const IndexPlan& p) {
  DimVector s;
  for (size_t k = 0; k < p.rest_sizes.size(); ++k) {
    if (int64_t(k) == p.insert_at)
      for (int64_t v : p.bshape) s.push_back(v);
    s.push_back(p.rest_sizes[k]);
  }
  if (p.insert_at >= int64_t(p.rest_sizes.size()))
    for (int64_t v : p.bshape) s.push_back(v);
  return s;
}

// The result laid out as [B..., rest...] viewed into the user's order (B at insert_at).
Tensor b_first_view(const Tensor& out, const IndexPlan& p) {
  int64_t nb = int64_t(p.bshape.size()), nr = int64_t(p.rest_sizes.size());
  DimVector perm;
  for (int64_t k = 0; k < nb; ++k) perm.push_back(p.insert_at + k);
  for (int64_t k = 0; k < nr; ++k) perm.push_back(k < p.insert_at ? k : k + nb);
  return ops::permute(out, perm);
}
}  // namespace indexing

namespace {

using indexing::IndexPlan;
using indexing::plan_index;
using indexing::result_shape;
using indexing::b_first_view;


Tensor cat_any(TensorList tensors, int64_t dim) {
  VT_CHECK_VALUE(!tensors.empty(), "torch.cat(): expected a non-empty list of Tensors");
  // Legacy rule: 1-D empty tensors are skipped whatever the other shapes are.
  for (size_t i = 0; i < tensors.size(); ++i)  // every tensor before the dim, as torch checks them
    VT_CHECK(tensors[i].dim() > 0, "zero-dimensional tensor (at position ", i, ") cannot be concatenated");
  const Tensor* ref = nullptr;
  ResultTypeState st;
  for (const Tensor& t : tensors) {
    st.update(t);
    if (!(t.dim() == 1 && t.numel() == 0) && !ref) ref = &t;
  }
  ScalarType dtype = st.result();
  if (!ref) return empty_tensor(DimVector{0}, dtype, tensors[0].device());
  dim = wrap_dim(dim, ref->dim());
  DimVector shape(ref->sizes());
  int64_t total = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    if (t.dim() == 1 && t.numel() == 0) continue;
    VT_CHECK(t.dim() == ref->dim(), "Tensors must have same number of dimensions: got ", ref->dim(), " and ", t.dim());
    VT_CHECK(t.device() == ref->device(), "Expected all tensors to be on the same device, but found ",
             ref->device().str(), " and ", t.device().str());
    for (int64_t d = 0; d < t.dim(); ++d)
      VT_CHECK(d == dim || t.size(d) == ref->size(d), "Sizes of tensors must match except in dimension ", dim,
               ". Expected size ", ref->size(d), " but got size ", t.size(d), " for tensor number ", i,
               " in the list.");
    total += t.size(dim);
  }
  shape[size_t(dim)] = total;
  Tensor out = empty_tensor(shape, dtype, ref->device());
  // Each input's slab of `out`, made directly: a kernel's own views need no dispatch (narrow's was a third of a
  // small cat's host time).
  const int64_t step = out.strides()[size_t(dim)];
  int64_t off = 0;
  for (const Tensor& t : tensors) {
    if (t.dim() == 1 && t.numel() == 0) continue;
    shape[size_t(dim)] = t.size(dim);
    ops::copy_(make_view(out, shape, out.strides(), out.storage_offset() + off * step), t);
    off += t.size(dim);
  }
  return out;
}

Tensor nonzero_cpu(const Tensor& self) {
  Tensor c = ops::contiguous(self);
  int64_t nd = self.dim(), n = c.numel();
  std::vector<int64_t> hits;
  VT_DISPATCH_ALL(c.dtype(), "nonzero", [&] {
    const scalar_t* p = c.data<scalar_t>();
    for (int64_t i = 0; i < n; ++i)
      if (opmath_t<scalar_t>(p[i]) != opmath_t<scalar_t>(0)) hits.push_back(i);
  });
  Tensor out = empty_tensor(DimVector{int64_t(hits.size()), nd}, ScalarType::Int64, kCPU);
  int64_t* o = out.data<int64_t>();
  DimVector strides = contiguous_strides(self.sizes());
  for (size_t h = 0; h < hits.size(); ++h)
    for (int64_t d = 0; d < nd; ++d) o[int64_t(h) * nd + d] = (hits[h] / strides[size_t(d)]) % self.size(d);
  return out;
}

// Storage offsets (in elements) of each indexed position b of B, bounds-checked.
std::vector<int64_t> offsets(const Tensor& self, const IndexPlan& p) {
  int64_t nb = prod(p.bshape);
  std::vector<int64_t> off(size_t(nb), self.storage_offset());
  for (size_t j = 0; j < p.idx.size(); ++j) {
    const int64_t* ix = p.idx[j].data<int64_t>();
    int64_t size = self.size(p.dims[j]), stride = self.stride(p.dims[j]);
    for (int64_t b = 0; b < nb; ++b) {
      int64_t v = ix[b];
      VT_CHECK_INDEX(v >= -size && v < size, "index ", v, " is out of bounds for dimension ", p.dims[j],
                     " with size ", size);
      off[size_t(b)] += (v < 0 ? v + size : v) * stride;
    }
  }
  return off;
}

// Note [Dense index runs]: when the non-indexed dims of self are dense (single elements, or whole rows as in an
// embedding), every indexed position b covers one contiguous run of self from off[b], and the gather and the
// scatter are typed loops over the runs. Taken one op per position (a view, a select, an add, a copy, ~0.6 us
// each), cross_entropy's backward spent 2.6 ms scattering its 4096 picks (torch 0.3). The scatter stays serial,
// in index order: repeated indices accumulate in that order, and without accumulate the last one wins.
// The length of each position's run, or -1 where the rest dims are not dense.
int64_t dense_run(const IndexPlan& p) {
  int64_t run = 1;
  for (size_t d = p.rest_sizes.size(); d-- > 0;) {
    if (p.rest_sizes[d] == 1) continue;
    if (p.rest_strides[d] != run) return -1;
    run *= p.rest_sizes[d];
  }
  return run;
}

// out[b * run + k] = base[off[b] + k]: the gather of Note [Dense index runs], in parallel over positions.
template <typename T> void gather_runs(const T* base, const std::vector<int64_t>& off, int64_t run, T* out) {
  const int64_t nb = int64_t(off.size());
  parallel_for(0, nb, std::max<int64_t>(1, kDefaultGrain / std::max<int64_t>(run, 1)), [&](int64_t lo, int64_t hi) {
    for (int64_t b = lo; b < hi; ++b) std::memcpy(out + b * run, base + off[size_t(b)], size_t(run) * sizeof(T));
  });
}

Tensor index_cpu(const Tensor& self, TensorList indices) {
  IndexPlan p = plan_index(self, indices);
  Tensor out = empty_tensor(result_shape(p), self.dtype(), kCPU);
  if (out.numel() == 0) return out;  // nothing read: indices unchecked, as torch's kernel (and the GPU's) never runs
  std::vector<int64_t> off = offsets(self, p);
  Tensor bf = b_first_view(out, p);  // [B..., rest...]
  int64_t nb = int64_t(off.size());
  if (const int64_t run = dense_run(p); run >= 0 && bf.is_contiguous()) {  // Note [Dense index runs]
    VT_DISPATCH_ALL(self.dtype(), "index", [&] {
      gather_runs(reinterpret_cast<const scalar_t*>(self.storage()->data()), off, run, bf.data<scalar_t>());
    });
    return out;
  }
  Tensor bflat = ops::reshape(bf, [&] {
    DimVector s{nb};
    for (int64_t v : p.rest_sizes) s.push_back(v);
    return s;
  }());
  VT_INTERNAL_ASSERT(bflat.storage() == out.storage(), "index result must be a view");
  for (int64_t b = 0; b < nb; ++b)
    ops::copy_(ops::select(bflat, 0, b), make_view(self, p.rest_sizes, p.rest_strides, off[size_t(b)]));
  return out;
}

Tensor index_put_cpu_(const Tensor& self, TensorList indices, const Tensor& values, bool accumulate) {
  IndexPlan p = plan_index(self, indices);
  // values broadcast to the result shape (checked before the index bounds, as torch's order), then viewed
  // B-first like the gather. Values that alias self are read before any write (x[perm] = x must permute).
  Tensor src = values.storage() == self.storage() ? ops::clone(values) : values;
  Tensor v = ops::expand(src.dtype() == self.dtype() ? src : ops::to_dtype(src, self.dtype()), result_shape(p));
  std::vector<int64_t> off = offsets(self, p);
  int64_t nb = int64_t(off.size());
  self.bump_version();
  Tensor vb = b_first_view(v, p);
  DimVector flat_shape{nb};
  for (int64_t s : p.rest_sizes) flat_shape.push_back(s);
  Tensor vflat = ops::reshape(vb, flat_shape);
  if (const int64_t run = dense_run(p); run >= 0) {  // Note [Dense index runs]
    Tensor vc = ops::contiguous(vflat);
    VT_DISPATCH_ALL(self.dtype(), "index_put_", [&] {
      scalar_t* base = reinterpret_cast<scalar_t*>(self.storage()->data());
      const scalar_t* src = vc.data<scalar_t>();
      for (int64_t b = 0; b < nb; ++b) {
        scalar_t* dst = base + off[size_t(b)];
        const scalar_t* s = src + b * run;
        if (accumulate)  // in the dtype's opmath, rounded once, as ops::add
          for (int64_t k = 0; k < run; ++k) dst[k] = scalar_t(opmath_t<scalar_t>(dst[k]) + opmath_t<scalar_t>(s[k]));
        else
          std::memcpy(dst, s, size_t(run) * sizeof(scalar_t));
      }
    });
    return self;
  }
  for (int64_t b = 0; b < nb; ++b) {
    Tensor dst = make_view(self, p.rest_sizes, p.rest_strides, off[size_t(b)]);
    Tensor src = ops::select(vflat, 0, b);
    if (accumulate) ops::copy_(dst, ops::add(dst, src));
    else ops::copy_(dst, src);
  }
  return self;
}

// stack: each tensor gains the new dim, then one cat along it. A composite (torch's stack is the same cat over
// unsqueezed inputs): autograd records the views and the cat. In C++ for the host cost: the Python composition
// took 4.8 us for two 4x4 tensors on the 2-core devbox (torch 1.5).
Tensor stack_any(TensorList tensors, int64_t dim) {
  VT_CHECK(!tensors.empty(), "stack expects a non-empty TensorList");
  const IntArrayRef shape = tensors[0].sizes();
  dim = wrap_dim(dim, int64_t(shape.size()) + 1);
  for (size_t i = 1; i < tensors.size(); ++i)
    VT_CHECK(std::ranges::equal(tensors[i].sizes(), shape), "stack expects each tensor to be equal size, but got ",
             shape_str(shape), " at entry 0 and ", shape_str(tensors[i].sizes()), " at entry ", i);
  std::vector<Tensor> parts;
  parts.reserve(tensors.size());
  for (const Tensor& t : tensors) parts.push_back(ops::unsqueeze(t, dim));
  static const TypedOp<Tensor(TensorList, int64_t)> cat("vt::cat");
  return cat(parts, dim);
}

}  // namespace

VT_LIBRARY(vt, shape_ops) {
  m.def("cat(Tensor[] tensors, int dim=0) -> Tensor");
  m.def("stack(Tensor[] tensors, int dim=0) -> Tensor", OpKind::Composite);
  m.impl_any("stack", &stack_any);
  m.def("nonzero(Tensor self) -> Tensor");
  // Index tensors (and index_put_ values) may live on the CPU while self is on a GPU, as in torch; the CUDA
  // kernels move them, and refuse a CPU self with device indices.
  m.def("index(Tensor self, Tensor?[] indices) -> Tensor", DevicePolicy::AnyDevice);
  m.def("index_put_(Tensor self, Tensor?[] indices, Tensor values, bool accumulate=False) -> Tensor",
        DevicePolicy::AnyDevice);
  m.impl_any("cat", &cat_any);
  m.impl("nonzero", DispatchKey::CPU, &nonzero_cpu);
  m.impl("index", DispatchKey::CPU, &index_cpu);
  m.impl("index_put_", DispatchKey::CPU, &index_put_cpu_);
}

namespace ops {
Tensor index(const Tensor& self, TensorList indices) {
  static const TypedOp<Tensor(const Tensor&, TensorList)> op("vt::index");
  return op(self, indices);
}
}  // namespace ops

}  // namespace vt
