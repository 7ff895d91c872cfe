// Fan-out launches: one collective's per-rank kernel launches issued by a worker thread per rank at once.
//
// A call launches one kernel per rank, and one launch costs the calling thread 3-5 us of driver time on the
// hosts we measured, so a collective over 8 ranks issued from one thread costs 8 launches end to end
// (benchmarks/launch_floor.cu: 36.8 us on an H200 host). Launches into different streams from different
// threads overlap in the driver (21.5 us for the same 8 there, all ranks on one GPU; across GPUs the contexts
// are separate as well). The caller fills one job per rank, releases the workers, and returns once every worker
// has enqueued its launch, so the call stays stream-ordered exactly as a serial loop would leave it.
//
// Note [Hot workers only]: a worker spins for a short while after its last job and then sleeps. Waking a
// sleeping thread costs more than the launches it would take over, so a call finding any worker asleep
// launches serially itself and only wakes the workers for the calls that follow; back-to-back collectives (a
// training step's buckets, a benchmark loop) find them spinning. Workers are used only where the host has a
// core for each of them beside the caller (spinning threads on a small machine would starve the caller), and
// VT_RING_FANOUT=0 turns them off.
//
// Note [Bounded fan-out]: the caller waits for the workers' reports at most kReportTimeout; a worker stuck in
// the driver past that leaves the pool unusable (its job may still be read), so from then on every call
// launches serially and the communicator reports the launch as failed.
#pragma once

#include <cuda_runtime.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "kernels.h"

namespace ring {

struct LaunchJob {
  Params params;
  int blocks = 0;
  int physical = 0;  // the CUDA device the kernel's stream belongs to
  void* stream = nullptr;
  bool skip = false;  // fault injection: this rank never launches
  cudaError_t result = cudaSuccess;
};

class FanOut {
 public:
  // The process's pool (created on first use), or nullptr where workers are off or the host is too small.
  static FanOut* get(int nranks);
  enum class Outcome { Done, Serial, TimedOut };
  // Launches jobs[0..n) from the workers when they are hot (Note [Hot workers only]): Done with each job's
  // result set; Serial, having launched nothing, when the caller should launch them itself; TimedOut when the
  // workers did not all report in time (Note [Bounded fan-out]).
  Outcome run(std::vector<LaunchJob>& jobs);
  ~FanOut();

 private:
  explicit FanOut(int workers);
  void work(int w);

  // Note [Generation words]: a call publishes (call number << kCountBits) | its job count in one word, and a
  // worker reads the count from the word it woke on, never from a separate field: a worker without a job in one
  // call is not waited for, so it may still be looking at that call when the next one starts, and must not take
  // the next call's count (and then that call's job a second time) for its own.
  static constexpr int kCountBits = 8;
  static constexpr uint64_t kCountMask = (1u << kCountBits) - 1;
  static_assert(kMaxRanks <= int(kCountMask), "a job count fits the generation word");
  std::vector<std::thread> threads_;
  LaunchJob* jobs_ = nullptr;  // read only by workers the current word counts in (the caller waits for them)
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> done_{0};
  std::atomic<int> sleeping_{0};
  std::atomic<bool> stop_{false};
  std::atomic<bool> broken_{false};
  uint64_t nudges_ = 0;  // under mu_: bumped to wake sleeping workers without a job
  std::mutex mu_;
  std::mutex busy_;  // held by the call using the workers (communicators of other device lists run meanwhile)
  std::condition_variable wake_;
};

}  // namespace ring
