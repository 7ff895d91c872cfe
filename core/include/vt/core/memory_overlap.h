#pragma once
// Memory overlap between tensors, decided as torch decides it (aten/src/ATen/MemoryOverlap.cpp).
//
// Note [Memory overlap]
// An op that writes a tensor while reading another that shares memory with it reads values it has already
// overwritten, so the result depends on the kernel's iteration order: x.add_(x.t()) would give a different
// non-symmetric matrix on every backend. Two views of one storage are
//   Full     when they address the same elements in the same order (x.add_(x) is well defined);
//   Partial  when they share some element otherwise (a transposed or shifted view);
//   No       when their byte ranges are disjoint;
//   TooHard  when either is not non-overlapping-and-dense (x[:, ::2] against x[:, 1::2] interleave without
//            sharing an element, and deciding the general case costs more than the op): let through, as torch.
// A tensor overlaps itself ("internal overlap") when two of its elements are one memory location, which is
// certain when a dim of size > 1 has stride 0 (an expanded tensor); other layouts that are not dense are too
// hard to decide and let through.
#include <string_view>

#include "vt/core/tensor.h"

namespace vt {

enum class MemOverlap : uint8_t { No, Full, Partial, TooHard };

// Strides form a permutation of a dense layout: every element at its own address, no gaps.
bool is_non_overlapping_and_dense(const Tensor& t);
MemOverlap overlap_status(const Tensor& a, const Tensor& b);
bool has_internal_overlap(const Tensor& t);  // true only when certain (TooHard is false)

// RuntimeErrors with torch's messages; `op` names the operation.
void assert_no_internal_overlap(const Tensor& t, std::string_view op);
void assert_no_partial_overlap(const Tensor& written, const Tensor& read, std::string_view op);
// Refuses a full overlap too: for ops that read other elements than the one they write (scatter, index_put_).
void assert_no_overlap(const Tensor& written, const Tensor& read, std::string_view op);

// Note [In-place overlap]
// Every in-place op (a name ending in '_') is checked by the dispatcher before its backend kernel runs, on the
// typed and the boxed path alike, so no kernel can forget it: the written tensor (argument 0, or each element
// of it when it is a Tensor[]) must not overlap itself, and must not partially overlap any other tensor
// argument. The exceptions are torch's: fill_, masked_fill_ and index_put_ may write an expanded tensor (every
// alias receives the same value), and masked_fill_'s value is read once before anything is written.
// index_put_ reads its indices and values while it writes self, element by element in any order, so for
// them even a full overlap is refused (torch's assert_no_overlap); other ops read each element before writing
// the same one, which a full overlap allows. The scatter family checks overlap itself, after its argument
// checks, since torch checks dim, dtypes and shapes first (a wrong dim is an IndexError whatever overlaps;
// Note [Gather and scatter check order]).
struct InplacePolicy {
  bool inplace = false;
  bool self_may_overlap_itself = false;
  bool checked_by_op = false;   // the op calls the assert_* functions below itself
  uint32_t unchecked_args = 0;  // bit i: argument i may overlap the written tensor
  uint32_t disjoint_args = 0;   // bit i: argument i may not even fully overlap it
};
InplacePolicy inplace_policy(std::string_view op_name);

}  // namespace vt
