#pragma once
// The built-in peer-to-peer collectives executor: runs a schedule (a list of steps; each step a list of
// transfers "dst = reduce(srcs)") over tensors on several devices, each transfer as one kernel on its dst
// device's current stream reading the sources through peer mappings (or natively under emulation).
//
// Note [P2P schedule ordering]
// Ordering uses events only - no flags, no spin-waits, so nothing can hang on a missing peer and emulated
// devices sharing one GPU need no co-residency. Before step 0 every participating stream waits for every other's
// current stream (all inputs are ready: the "arrival" barrier); between steps the same full barrier (a device may
// overwrite a buffer only after every reader of the previous step is done); after the last step once more, so
// every device's current stream continues only when nobody reads its memory any more. Each transfer's sources are
// recorded on the dst stream for the allocator as well. Sources are summed in the order listed, so transfers that
// list the same sources in the same order give bit-identical results on every device.
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "vt/core/tensor.h"
#include "vt/cuda/event.h"

namespace vt::fabric {

enum class RedOp : int { Sum = 0, Avg = 1, Max = 2, Min = 3 };

struct Transfer {
  Tensor dst;                // contiguous
  std::vector<Tensor> srcs;  // contiguous, dst's dtype and numel; one source is a copy
  bool scale = false;        // multiply by the run's scale after reducing (avg's final step)
};

// Completion of one run: arrival events (each device's inputs ready) and done events (its part finished).
class P2PWork {
 public:
  P2PWork() = default;
  P2PWork(const P2PWork&) = delete;
  P2PWork& operator=(const P2PWork&) = delete;
  std::vector<int> devices;
  std::vector<std::unique_ptr<cuda::Event>> arrived, done;
  bool query() const;
  // Waits up to timeout_ms (<= 0: no limit) for every device; raises a Timeout error naming the devices that
  // never arrived (or, when all arrived, those that did not finish) and the step.
  void wait(double timeout_ms) const;
};

// A schedule compiled once (per collective, algorithm, device count and placement) and run on any buffers:
// transfers name (rank, buffer, chunk) instead of tensors, so a call builds no views. Buffers: 0 "in", 1 "out",
// 2 "tmp" (allocated per run when the schedule needs it); chunk -1 is the whole buffer, else chunk c of nchunks
// near-equal parts (c * numel / nchunks ...), as vibetensor.fabric.schedules cuts them.
struct PlanRef {
  int rank = 0, buffer = 0, chunk = -1;
};
struct PlanTransfer {
  PlanRef dst;
  std::vector<PlanRef> srcs;
  bool scale = false;
};
class P2PPlan {
 public:
  P2PPlan(std::vector<std::vector<PlanTransfer>> steps, int nchunks, bool needs_tmp);
  // ins/outs: one contiguous tensor per rank on devices[rank] (outs may alias ins). Counts each remote read on its
  // pair (Note [Counter invariants]) and records remote buffers on the reading stream.
  std::shared_ptr<P2PWork> run(const std::vector<Tensor>& ins, const std::vector<Tensor>& outs,
                               const std::vector<int>& devices, RedOp op, double scale) const;
  // Counts, without moving anything, the remote reads run() would make on buffers of in_numel (ins and tmp) and
  // out_numel elements: for a backend that moves the same data as this schedule its own way (Note [Counted
  // backend traffic] in collectives.py).
  void count_traffic(int64_t in_numel, int64_t out_numel, int64_t itemsize, const std::vector<int>& devices) const;

 private:
  // Elements [lo, hi) of a buffer of `numel` that reference `r` covers.
  std::pair<int64_t, int64_t> bounds(const PlanRef& r, int64_t numel) const {
    if (r.chunk < 0) return {0, numel};
    return {r.chunk * numel / nchunks_, (r.chunk + 1) * numel / nchunks_};
  }

  std::vector<std::vector<PlanTransfer>> steps_;
  int nchunks_;
  bool needs_tmp_;
  int max_rank_ = 0;
};

// One reduction kernel on `device`'s current stream: dst[i] = op(srcs[0][i], ...), scaled when `scale`.
void launch_reduce(int device, ScalarType dtype, void* dst, const std::vector<const void*>& srcs, int64_t n, RedOp op,
                   bool scale, double k);
// Every current stream of `devices` waits for every other's work so far; the events recorded (one per device).
std::vector<std::unique_ptr<cuda::Event>> barrier(const std::vector<int>& devices);
// The same barrier when nobody keeps its events (between steps): reuses one event per thread and device.
void step_barrier(const std::vector<int>& devices);

std::shared_ptr<P2PWork> run_p2p_schedule(const std::vector<std::vector<Transfer>>& steps, const std::vector<int>& devices,
                                          RedOp op, double scale);

// Fault injection: queues a kernel on `device`'s current stream that spins for about `ms` milliseconds (bounded,
// so a test of the timeout path never leaves a kernel running forever): the device looks like a hung peer.
void inject_stall(int device, double ms);

}  // namespace vt::fabric
