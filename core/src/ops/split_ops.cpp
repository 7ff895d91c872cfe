// unbind and split_with_sizes: one op returning every piece as a view, so autograd records one node whose
// backward joins the pieces' gradients in a single cat (torch's UnbindBackward / SplitWithSizesBackward). Made
// of per-piece select/narrow calls, each piece would scatter its gradient into its own full-size zeros and the
// pieces' gradients would then be summed: k fills, k copies and k - 1 full-size adds for k pieces.
#include "vt/core/dispatcher.h"
#include "vt/core/ops.h"

namespace vt {
namespace {

std::vector<Tensor> unbind_any(const Tensor& self, int64_t dim) {
  VT_CHECK_INDEX(self.dim() > 0, "Dimension specified as ", dim, " but tensor has no dimensions");
  dim = wrap_dim(dim, self.dim());
  std::vector<Tensor> out;
  out.reserve(size_t(self.size(dim)));
  for (int64_t i = 0; i < self.size(dim); ++i) out.push_back(ops::select(self, dim, i));
  return out;
}

std::vector<Tensor> split_with_sizes_any(const Tensor& self, IntArrayRef sizes, int64_t dim) {
  VT_CHECK(self.dim() > 0, "split expects at least a 1-dimensional tensor");
  dim = wrap_dim(dim, self.dim());
  int64_t total = 0;
  for (int64_t s : sizes) {
    VT_CHECK(s >= 0, "split_with_sizes expects split_sizes have only non-negative entries, but got split_sizes=",
             shape_str(sizes));
    total += s;
  }
  VT_CHECK(total == self.size(dim), "split_with_sizes expects split_sizes to sum exactly to ", self.size(dim),
           " (input tensor's size at dimension ", dim, "), but got split_sizes=", shape_str(sizes));
  std::vector<Tensor> out;
  int64_t start = 0;
  for (int64_t s : sizes) {
    out.push_back(ops::narrow(self, dim, start, s));
    start += s;
  }
  return out;
}

}  // namespace

VT_LIBRARY(vt, split_ops) {
  m.def("unbind(Tensor self, int dim=0) -> Tensor[]");
  m.def("split_with_sizes(Tensor self, int[] split_sizes, int dim=0) -> Tensor[]");
  m.impl_any("unbind", &unbind_any);
  m.impl_any("split_with_sizes", &split_with_sizes_any);
}

}  // namespace vt
