// Device-side synchronisation between the ranks of a communicator: flags, barriers and bounded waits.
//
// Every rank's kernel runs on its own device and stream; ranks meet only through 64-bit counters in device
// memory that a rank writes with a system-scope release store and its peers poll with system-scope acquire
// loads. No counter is ever reset.
//
// Note [Monotonic flags]
// A counter only grows. A block reads its own counters' values at kernel start (the previous call left them
// there: same stream, so that call has finished) and derives every value it will wait for from them. Since
// every rank runs the same sequence of collectives with the same grid, block b's counters advance by the same
// amount on every rank, so "peer's counter >= my target" means "peer has reached this point of this call" no
// matter how far ahead or behind the peer is. Nothing is passed from the host per call, so a captured CUDA graph
// replays correctly, and there is no per-call reset (or allocation) to order.
//
// Note [Bounded waits]
// Every wait polls %globaltimer and gives up after the communicator's timeout: the first rank to give up
// records (rank, device, block, step, peer, ns waited) in the error word - host-mapped memory the host reads
// without a sync - and sets its state; every other wait sees the state and returns at once, so all ranks leave
// their kernels instead of hanging on a rank that will never arrive. The kernel then ends early: its outputs
// are undefined, and the host refuses the communicator (broken, with that record) from then on.
#pragma once

#include <cstdint>

#include "protocol.h"

namespace ring {

__device__ __forceinline__ uint64_t ld_acquire_sys(const uint64_t* p) {
  uint64_t v;
  asm volatile("ld.acquire.sys.global.u64 %0, [%1];" : "=l"(v) : "l"(p) : "memory");
  return v;
}

__device__ __forceinline__ void st_release_sys(uint64_t* p, uint64_t v) {
  asm volatile("st.release.sys.global.u64 [%0], %1;" ::"l"(p), "l"(v) : "memory");
}

__device__ __forceinline__ uint64_t global_ns() {
  uint64_t t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

// Waits until *flag >= target. False when the wait timed out (recorded) or another rank gave up first.
__device__ inline bool wait_geq(const uint64_t* flag, uint64_t target, const WaitCtx& c, int step, int peer) {
  if (ld_acquire_sys(flag) >= target) return true;
  const uint64_t start = global_ns();
  for (unsigned spins = 1;; ++spins) {
    if (ld_acquire_sys(flag) >= target) return true;
    if ((spins & 255) == 0) {
      if (*reinterpret_cast<volatile unsigned*>(&c.err->state) != 0) return false;
      const uint64_t waited = global_ns() - start;
      if (waited > c.timeout_ns) {
        if (atomicCAS_system(c.claim, 0u, 1u) == 0u) {
          volatile ErrorWord* e = c.err;
          e->rank = c.rank, e->device = c.device, e->block = int(blockIdx.x), e->step = step, e->peer = peer;
          e->waited_ns = waited;
          __threadfence_system();
          e->state = 2u;
          __threadfence_system();
        }
        return false;
      }
    }
  }
}

// Publishes this block's progress: everything the block wrote before is visible to a peer that sees `value`.
// Call with all threads of the block (it synchronises them).
__device__ inline void signal(uint64_t* flag, uint64_t value) {
  __syncthreads();
  if (threadIdx.x == 0) {
    __threadfence_system();
    st_release_sys(flag, value);
  }
}

// Thread 0 waits for *flag >= target; the block learns the outcome. Call with all threads of the block.
__device__ inline bool block_wait(const uint64_t* flag, uint64_t target, const WaitCtx& c, int step, int peer) {
  __shared__ int ok;
  if (threadIdx.x == 0) ok = wait_geq(flag, target, c, step, peer);
  __syncthreads();
  const bool r = ok;
  __syncthreads();  // nobody rewrites `ok` before everyone read it
  return r;
}

// All ranks' block b meet. bar[r] is rank r's flag array [kMaxBlocks][kMaxRanks]; slot [b][p] is written by rank p
// (Note [Monotonic flags]). Thread p signals rank p and waits for rank p's signal.
__device__ inline bool barrier(uint64_t* const* bar, int nranks, uint64_t value, const WaitCtx& c, int step) {
  __shared__ int failed;
  if (threadIdx.x == 0) failed = 0;
  __syncthreads();
  const int p = int(threadIdx.x);
  if (p < nranks) {
    __threadfence_system();
    st_release_sys(&bar[p][blockIdx.x * kMaxRanks + c.rank], value);
    if (!wait_geq(&bar[c.rank][blockIdx.x * kMaxRanks + p], value, c, step, p)) failed = 1;
  }
  __syncthreads();
  const bool r = !failed;
  __syncthreads();
  return r;
}

}  // namespace ring
