// flip and roll: their schemas, argument checks and plans (reorder.h, Note [Reorder plans]) and the CPU kernel,
// a loop over the output's rows that reads each row's elements through the plan. CUDA: cuda/reorder.cu.
// Both differentiate by their own kind: flip's gradient is the gradient flipped back, roll's rolled back
// (autograd/formulas_shape.cpp).
#include <cstring>
#include <vector>

#include "reorder.h"
#include "words.h"
#include "vt/core/dispatcher.h"
#include "vt/core/ops.h"
#include "vt/core/parallel.h"

namespace vt::reorder {

Plan base_plan(const Tensor& self) {
  Plan p;
  p.ndim = int(self.dim());
  for (int d = 0; d < p.ndim; ++d) p.size[d] = self.size(d), p.stride[d] = self.stride(d);
  return p;
}

Plan flip_plan(const Tensor& self, IntArrayRef dims) {
  Plan p = base_plan(self);
  std::vector<bool> seen(size_t(std::max<int64_t>(self.dim(), 1)), false);
  for (int64_t d : dims) {
    const int64_t w = wrap_dim(d, self.dim());
    VT_CHECK(!seen[size_t(w)], "dim ", w, " appears multiple times in the list of dims");
    seen[size_t(w)] = true;
    if (self.dim() > 0) p.shift[w] = kFlipped;
  }
  return p;
}

Plan roll_plan(const Tensor& self, IntArrayRef shifts, IntArrayRef dims, Tensor& flat) {
  VT_CHECK(!shifts.empty(), "`shifts` required");
  VT_CHECK(shifts.size() == dims.size() || (dims.empty() && shifts.size() == 1),
           "shifts and dimensions must align. shifts: ", shifts.size(), ", dims:", dims.size());
  if (dims.empty()) {  // the flattened tensor, rolled as one dim
    flat = self.is_contiguous() ? self : ops::contiguous(self);
    Plan p;
    p.ndim = 1, p.size[0] = flat.numel(), p.stride[0] = 1;
    if (p.size[0] > 0) p.shift[0] = (p.size[0] - shifts[0] % p.size[0]) % p.size[0];  // no -INT64_MIN
    return p;
  }
  Plan p = base_plan(self);
  if (self.numel() == 0) return p;  // torch returns an empty tensor before it looks at the dims
  VT_CHECK_INDEX(self.dim() > 0, "Dimension specified as ", dims[0], " but tensor has no dimensions");
  for (size_t k = 0; k < dims.size(); ++k) {
    const int64_t w = wrap_dim(dims[k], self.dim());
    const int64_t n = self.dim() > 0 ? self.size(w) : 1;
    if (self.dim() > 0 && n > 0) p.shift[w] = ((p.shift[w] - shifts[k] % n) % n + n) % n;  // rolls of a dim add up
  }
  return p;
}

namespace {

template <typename W> void copy_rows(const Plan& p, const char* in, char* out, int64_t numel) {
  const W* src = reinterpret_cast<const W*>(in);
  W* dst = reinterpret_cast<W*>(out);
  const int last = p.ndim - 1;
  const int64_t n = p.ndim ? p.size[last] : 1, rows = n ? numel / n : 0;
  parallel_for(0, rows, std::max<int64_t>(1, 32768 / std::max<int64_t>(n, 1)), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      int64_t base = 0;
      for (int64_t d = last - 1, q = r; d >= 0; --d) {  // the row's coordinates, innermost first
        base += source(p, int(d), q % p.size[d]) * p.stride[d];
        q /= p.size[d];
      }
      W* o = dst + r * n;
      if (p.ndim == 0) {
        o[0] = src[0];
        continue;
      }
      const int64_t st = p.stride[last];
      for (int64_t c = 0; c < n; ++c) o[c] = src[base + source(p, last, c) * st];
    }
  });
}

}  // namespace

// Runs `plan` into a new dense tensor shaped like `self`, reading `in` (self or its dense copy).
void run_cpu(const Plan& p, const Tensor& in, const Tensor& out) {
  if (out.numel() == 0) return;
  const char* src = in.data_ptr();
  with_word(in.element_size(), [&](auto w) { copy_rows<decltype(w)>(p, src, out.data_ptr(), out.numel()); });
}

Tensor flip_cpu(const Tensor& self, IntArrayRef dims) {
  Tensor out = empty_tensor(self.sizes(), self.dtype(), self.device());
  run_cpu(flip_plan(self, dims), self, out);
  return out;
}

Tensor roll_cpu(const Tensor& self, IntArrayRef shifts, OptionalIntArrayRef dims) {
  Tensor flat;
  const Plan p = roll_plan(self, shifts, dims.value_or(IntArrayRef()), flat);
  Tensor out = empty_tensor(self.sizes(), self.dtype(), self.device());
  run_cpu(p, flat.defined() ? flat : self, out);
  return out;
}

}  // namespace vt::reorder

VT_LIBRARY(vt, reorder) {
  m.def("flip(Tensor self, int[] dims) -> Tensor");
  m.def("roll(Tensor self, int[] shifts, int[]? dims=None) -> Tensor");  // None or [] rolls the flattened tensor
  m.impl("flip", vt::DispatchKey::CPU, &vt::reorder::flip_cpu);
  m.impl("roll", vt::DispatchKey::CPU, &vt::reorder::roll_cpu);
}
