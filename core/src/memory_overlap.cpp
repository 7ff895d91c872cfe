// Overlap decisions and the in-place policy table (Note [Memory overlap], Note [In-place overlap]).
#include "vt/core/memory_overlap.h"

#include <algorithm>

namespace vt {

bool is_non_overlapping_and_dense(const Tensor& t) {
  if (t.is_contiguous()) return true;
  // Dims of size > 1 sorted by stride must step like a contiguous tensor of those sizes.
  DimVector dims;
  for (int64_t d = 0; d < t.dim(); ++d)
    if (t.size(d) != 1) dims.push_back(d);
  std::sort(dims.begin(), dims.end(), [&](int64_t a, int64_t b) { return t.stride(a) < t.stride(b); });
  int64_t expected = 1;
  for (int64_t d : dims) {
    if (t.stride(d) != expected) return false;
    expected *= t.size(d);
  }
  return true;
}

bool has_internal_overlap(const Tensor& t) {
  if (is_non_overlapping_and_dense(t)) return false;
  for (int64_t d = 0; d < t.dim(); ++d)
    if (t.stride(d) == 0 && t.size(d) > 1) return true;
  return false;
}

MemOverlap overlap_status(const Tensor& a, const Tensor& b) {
  if (a.is_same(b)) return MemOverlap::Full;
  if (a.numel() == 0 || b.numel() == 0) return MemOverlap::No;
  if (a.storage() != b.storage()) return MemOverlap::No;
  if (!is_non_overlapping_and_dense(a) || !is_non_overlapping_and_dense(b)) return MemOverlap::TooHard;
  const char* a_begin = a.data_ptr();
  const char* b_begin = b.data_ptr();
  const char* a_end = a_begin + a.nbytes();
  const char* b_end = b_begin + b.nbytes();
  if (a_begin < b_end && b_begin < a_end) {
    if (a_begin == b_begin && a_end == b_end && a.element_size() == b.element_size() &&
        std::equal(a.strides().begin(), a.strides().end(), b.strides().begin(), b.strides().end()))
      return MemOverlap::Full;
    return MemOverlap::Partial;
  }
  return MemOverlap::No;
}

void assert_no_internal_overlap(const Tensor& t, std::string_view op) {
  VT_CHECK(!has_internal_overlap(t), op, ": unsupported operation: more than one element of the written-to tensor ",
           "refers to a single memory location. Please clone() the tensor before performing the operation.");
}

void assert_no_partial_overlap(const Tensor& written, const Tensor& read, std::string_view op) {
  VT_CHECK(overlap_status(written, read) != MemOverlap::Partial, op, ": unsupported operation: some elements of the ",
           "input tensor and the written-to tensor refer to a single memory location. Please clone() the tensor ",
           "before performing the operation.");
}

void assert_no_overlap(const Tensor& written, const Tensor& read, std::string_view op) {
  VT_CHECK(overlap_status(written, read) != MemOverlap::Full, op, ": unsupported operation: some elements of the ",
           "input tensor and the written-to tensor refer to a single memory location. Please clone() the tensor ",
           "before performing the operation.");
  assert_no_partial_overlap(written, read, op);
}

InplacePolicy inplace_policy(std::string_view name) {
  InplacePolicy p;
  p.inplace = !name.empty() && name.back() == '_';
  if (!p.inplace) return p;
  std::string_view op = name.substr(name.find("::") == std::string_view::npos ? 0 : name.find("::") + 2);
  p.self_may_overlap_itself = op == "fill_" || op == "masked_fill_" || op == "index_put_";
  if (op == "masked_fill_") p.unchecked_args = 1u << 2;  // the value, read before the write
  if (op == "index_put_") p.disjoint_args = 1u << 1 | 1u << 2;  // indices and values
  p.checked_by_op = op == "scatter_" || op == "scatter_add_" || op == "scatter_reduce_" || op == "_scatter_into_";
  return p;
}

}  // namespace vt
