// What the host and the kernels of the ring plugin share: limits, the error word and the wait context
// (Notes [Monotonic flags] and [Bounded waits] in device_sync.cuh).
#pragma once

#include <cstdint>

namespace ring {

constexpr int kMaxRanks = 8;
constexpr int kMaxBlocks = 64;

// The error word (host-mapped, read by the host without a sync). state: 0 fine; 2 a rank gave up and its
// record is complete. Which rank records is decided by a device-memory claim word (atomics on host memory are
// not atomic on every platform; atomics between GPUs are).
struct ErrorWord {
  unsigned state;
  int rank, device, block, step, peer;
  unsigned long long waited_ns;
};

// What a waiting thread needs to report a timeout (Note [Bounded waits]).
struct WaitCtx {
  ErrorWord* err;
  unsigned* claim;  // rank 0's claim word: the first to CAS it 0 -> 1 writes the record
  uint64_t timeout_ns;
  int rank, device;
};

}  // namespace ring
