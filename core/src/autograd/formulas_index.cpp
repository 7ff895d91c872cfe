// Backward formulas of cat, the remaining views (diagonal, as_strided), index_put_, and the in-place fills and
// random draws (Note [Autograd kernels]). The scatters write into fresh zeros through a view; under create_graph
// that write is recorded like any in-place op on a view (Note [View rebasing]), so they differentiate again.
#include "formula_helpers.h"
#include "view_rebase.h"

namespace vt::autograd {
namespace {
using namespace fx;

// cat(tensors, dim): each input gets its slice of the gradient. A 1-D empty input (torch's legacy "skip me"
// shape) takes no part in the concatenation, so it gets an empty gradient.
void cat_backward(BackwardContext& c) {
  size_t n = c.list_size(0);
  auto legacy_empty = [&](size_t j) {
    IntArrayRef s = c.input_sizes(0, int64_t(j));
    return s.size() == 1 && s[0] == 0;
  };
  int64_t nd = 0;
  for (size_t j = 0; j < n; ++j)
    if (!legacy_empty(j)) nd = int64_t(c.input_sizes(0, int64_t(j)).size());
  // Only legacy empties: the forward never read dim (torch takes any), so neither does the gradient
  int64_t dim = nd == 0 ? 0 : wrap_dim(c.int_arg(1), nd);
  int64_t offset = 0;
  for (size_t j = 0; j < n; ++j) {
    if (legacy_empty(j)) {
      c.set(0, int64_t(j), zeros(c.input_sizes(0, int64_t(j)), c.grad()));
      continue;
    }
    int64_t len = c.input_sizes(0, int64_t(j))[size_t(dim)];
    if (c.needs(0, int64_t(j))) c.set(0, int64_t(j), ops::narrow(c.grad(), dim, offset, len));
    offset += len;
  }
}

// diagonal(self, offset, dim1, dim2): the gradient is written onto the same diagonal of zeros.
void diagonal_backward(BackwardContext& c) {
  Tensor z = zeros(c.input_sizes(0), c.grad());
  ops::copy_(ops::diagonal(z, c.int_arg(1), c.int_arg(2), c.int_arg(3)), c.grad());
  c.set(0, z);
}

// as_strided(self, size, stride, storage_offset): both layouts address self's storage.
void as_strided_backward_formula(BackwardContext& c) {
  StridedLayout in, out;
  in.sizes = DimVector(c.input_sizes(0));
  in.strides = DimVector(c.self_strides());
  in.offset = c.self_storage_offset();
  out.sizes = DimVector(std::get<std::vector<int64_t>>(c.arg(1)));
  out.strides = DimVector(std::get<std::vector<int64_t>>(c.arg(2)));
  out.offset = opt_int(c.arg(3)).value_or(in.offset);
  c.set(0, as_strided_backward(c.grad(), in, out));
}

// index_put_(self, indices, values, accumulate): values get the gradient at the indexed positions (each
// occurrence of a repeated index, as torch); self keeps it elsewhere, and at the indexed positions too when
// accumulating (there it was added to, not replaced).
void index_put_backward(BackwardContext& c) {
  static const TypedOp<Tensor(const Tensor&, TensorList, const Tensor&, bool)> index_put("vt::index_put_");
  const auto& indices = std::get<std::vector<Tensor>>(c.arg(1));
  bool accumulate = std::get<bool>(c.arg(3));
  if (c.needs(0)) {
    c.set(0, accumulate ? c.grad()
                        : index_put(ops::clone(c.grad()), indices, zeros(DimVector{}, c.grad()), false));
  }
  if (c.needs(2)) c.set(2, ops::index(c.grad(), indices));
}

// fill_, uniform_, normal_, random_: the old values of self do not matter any more.
void overwritten_backward(BackwardContext& c) { c.set(0, zeros(c.input_sizes(0), c.grad())); }

const bool index_formulas_registered = [] {
  Formula as_strided{"vt::as_strided", "AsStridedBackward0", 0, false, as_strided_backward_formula, true};
  as_strided.keeps_self_layout = true;
  register_formulas({
      {"vt::cat", "CatBackward0", 0, false, cat_backward},
      {"vt::diagonal", "DiagonalBackward0", 0, false, diagonal_backward, true},
      as_strided,
      {"vt::index_put_", "IndexPutBackward0", 0, false, index_put_backward},
      // _keep_versions(self, kept): an identity for the gradient; its node only keeps `kept` for the version check
      {"vt::_keep_versions", "KeepVersionsBackward0", 0, false, identity_backward},
      {"vt::fill_", "FillBackward0", 0, false, overwritten_backward},
      {"vt::uniform_", "UniformBackward0", 0, false, overwritten_backward},
      {"vt::normal_", "NormalBackward0", 0, false, overwritten_backward},
      {"vt::random_", "RandomBackward0", 0, false, overwritten_backward},
  });
  return true;
}();

}  // namespace
}  // namespace vt::autograd
