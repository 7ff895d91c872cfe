// vt::matmul, torch.matmul's rules over the mm and _bmm_nd kernels (as torch's CompositeImplicitAutograd matmul):
// 1-D @ 1-D is a dot product, a 1-D operand gains a dim of 1 that the result drops again, [..., m, k] @ [k, n]
// folds the leading dims into the rows of one matrix product (so the weight's gradient is one product too, not a
// batch of products summed afterwards), and other batched products broadcast their batch dims. A composite: the
// views and products it calls record the autograd graph. One op in C++ because `x @ w` is on every model's path:
// its Python planning cost more than the product of a small matrix.
#include <algorithm>

#include "vt/core/dispatcher.h"
#include "vt/core/ops.h"
#include "vt/core/tensor_iterator.h"

namespace vt {
namespace {

Tensor mm(const Tensor& a, const Tensor& b) {
  static const TypedOp<Tensor(const Tensor&, const Tensor&)> op("vt::mm");
  return op(a, b);
}

Tensor bmm_nd(const Tensor& a, const Tensor& b) {
  static const TypedOp<Tensor(const Tensor&, const Tensor&)> op("vt::_bmm_nd");
  return op(a, b);
}

Tensor matmul_any(const Tensor& a, const Tensor& b) {
  const int64_t ad = a.dim(), bd = b.dim();
  VT_CHECK(ad > 0 && bd > 0, "both arguments to matmul need to be at least 1D, but they are ", ad, "D and ", bd,
           "D");
  if (ad == 1 && bd == 1) {
    VT_CHECK(a.size(0) == b.size(0), "inconsistent tensor size, expected tensor [", a.size(0), "] and src [",
             b.size(0), "] to have the same number of elements, but got ", a.size(0), " and ", b.size(0),
             " elements respectively");
    return ops::reshape(mm(ops::unsqueeze(a, 0), ops::unsqueeze(b, 1)), IntArrayRef{});
  }
  if (ad <= 2 && bd <= 2) {
    Tensor out = mm(ad == 1 ? ops::unsqueeze(a, 0) : a, bd == 1 ? ops::unsqueeze(b, 1) : b);
    if (ad == 1) out = ops::squeeze(out, DimVector{0});
    if (bd == 1) out = ops::squeeze(out, DimVector{-1});
    return out;
  }
  const Tensor a2 = ad == 1 ? ops::unsqueeze(a, 0) : a, b2 = bd == 1 ? ops::unsqueeze(b, -1) : b;
  const IntArrayRef as = a2.sizes(), bs = b2.sizes();
  const int64_t m = as[as.size() - 2], k = as.back(), n = bs.back();
  int64_t rows = 1;
  for (size_t d = 0; d + 1 < as.size(); ++d) rows *= as[d];
  VT_CHECK(k == bs[bs.size() - 2], "mat1 and mat2 shapes cannot be multiplied (", bs.size() == 2 ? rows : m, "x", k,
           " and ", bs[bs.size() - 2], "x", n, ")");  // torch names the folded rows' product
  Tensor out;
  if (bs.size() == 2) {  // [..., m, k] @ [k, n]: one product over the folded rows
    DimVector sizes(as.first(as.size() - 1));
    sizes.push_back(n);
    out = ops::reshape(mm(ops::reshape(a2, DimVector{rows, k}), b2), sizes);
  } else if (as.size() == bs.size() && std::equal(as.begin(), as.end() - 2, bs.begin())) {
    out = bmm_nd(a2, b2);  // the common case (attention): batch dims already equal, nothing to expand
  } else {
    const DimVector batch = broadcast_shapes(as.first(as.size() - 2), bs.first(bs.size() - 2));
    DimVector sa = batch, sb = batch;
    sa.push_back(m), sa.push_back(k), sb.push_back(k), sb.push_back(n);
    out = bmm_nd(ops::expand(a2, sa), ops::expand(b2, sb));
  }
  if (ad == 1) out = ops::squeeze(out, DimVector{-2});
  if (bd == 1) out = ops::squeeze(out, DimVector{-1});
  return out;
}

}  // namespace

VT_LIBRARY(vt, matmul_composite) {
  m.def("matmul(Tensor self, Tensor other) -> Tensor", OpKind::Composite);
  m.impl_any("matmul", &matmul_any);
}

}  // namespace vt
