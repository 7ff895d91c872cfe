#pragma once
// Errors that kernels find (an index out of range), reported to the host at its next synchronization.
//
// Note [Deferred kernel errors]
// An out-of-range index found on the GPU must become a Python exception naming the index, not a device-side
// assert that poisons the context (torch's way). Reading an error flag back after every gather, embedding or
// index_put would stall the host until the GPU drains - several times per training step - so the check is
// deferred. Each logical device has one error record in mapped pinned host memory and a claim word in its own
// memory. A kernel that meets a bad index claims the word (the first claimant wins), fills the record, fences
// at system scope and sets the record's flag; it skips that element, so nothing outside the tensors is read or
// written. Every host synchronization vibetensor makes - cuda.synchronize(), a stream or event synchronize, a
// query that finds the work done, a blocking device->host copy (.cpu(), .item(), .tolist()) - ends with
// raise_kernel_errors(), a few host loads, which raises the recorded error naming the op, index, dim and size.
// The values the bad op produced, and anything computed from them, are unspecified (as after torch's assert),
// but the context and every tensor stay usable. Replays of a captured graph report the same way (the record's
// address never changes), so capture needs no special path. VT_CUDA_INDEX_CHECKS=sync makes each checking op
// synchronize its stream and raise at the op instead, to find which call it was. A consumer that reads results
// through DLPack without any vibetensor synchronization does not see the error.
//
// Ops whose indices must lie in [0, n) (embedding, class targets, index_add_/index_copy_) but which index through
// `index`, where -1 means the last row, move each negative index v to v + kNegativeIndexMark before indexing: far
// out of range, so the kernel reports it, and the report gives back v (the user's index, not the moved one).
#include <cstdint>

#include "vt/core/error.h"

namespace vt::cuda {

// The record a kernel fills, in mapped pinned host memory (one per logical device).
struct KernelErrorRecord {
  int32_t flag;  // set last: 1 once the fields below are complete
  int32_t kind;  // an ErrorKind
  int64_t value, dim, size;
  uint64_t op;  // address of a string literal naming the launching op (read only by the host)
};

// What a checking kernel takes as an argument.
struct KernelErrorSlot {
  unsigned long long* claim;  // device memory: 0 until a kernel claims the record
  KernelErrorRecord* record;  // the device's view of the mapped record
  uint64_t op;
  int32_t kind;
};

constexpr int64_t kNegativeIndexMark = -(int64_t(1) << 62);

// The slot of logical `device` for a launch by `op` (a string literal) that raises `kind`; allocates the
// device's record on first use. Legal while a stream captures (the allocation is made in relaxed mode).
KernelErrorSlot kernel_error_slot(int device, const char* op, ErrorKind kind);
// Raises the recorded error of the first device that has one, clearing it; a no-op (a few loads) otherwise.
void raise_kernel_errors();
// After launching a checking kernel on `stream` of `device`: under VT_CUDA_INDEX_CHECKS=sync, waits for the
// stream and raises here; otherwise returns at once.
void after_checked_launch(int device, void* stream);

}  // namespace vt::cuda
