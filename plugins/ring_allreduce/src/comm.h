// A communicator: the state a collective over one ordered list of vibetensor devices needs, made once.
//
// Created on the first collective over a device list (rank = position in the list) and kept until destroy():
// one block of device memory per rank from vibetensor's caching allocator (flags, epochs, staging buffer; see
// RankMem), zeroed once, and one host-mapped error word. A call allocates nothing and never waits on the host:
// it launches one kernel per rank on that rank's current stream, so it is stream-ordered and can be captured
// in a CUDA graph (Note [Monotonic flags]); the launches go out from a worker thread per rank where the host
// has the cores (fanout.h).
//
// Broken state: when a kernel's bounded wait expires (Note [Bounded waits]) the error word says which rank
// waited for which peer; the next call (or check()) reads it, marks the communicator broken with that reason
// and refuses it from then on, since ranks that left early no longer agree on their counters. destroy() and a
// new call start over with fresh memory.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "fanout.h"
#include "kernels.h"
#include "vt/abi/vt_plugin.h"

namespace ring {

struct Collective {
  Kind kind;
  Algo algo;          // all_reduce only; Auto picks by size (see Comm::pick_algo)
  DType dtype;
  int elem_size;
  int op;             // a RedOp
  int64_t count;      // Params::count
  std::vector<const void*> in;
  std::vector<void*> out;
  bool in_place;
  bool vec16;
  int64_t timeout_ms;  // <= 0: the default
};

class Comm {
 public:
  // The communicator of `devices` (created on first use). Fails when a pair cannot read each other's memory.
  static vt_status get(const vt_host_api* host, const std::vector<int>& devices, Comm** out);
  // Waits for every rank's device and frees the communicator of `devices`, if there is one.
  static vt_status destroy(const vt_host_api* host, const std::vector<int>& devices);
  static Comm* find(const std::vector<int>& devices);

  vt_status run(Collective& c);
  vt_status check();  // VT_ERROR_TIMEOUT (and broken from then on) if a kernel gave up waiting
  void skip_rank_once(int rank) { skip_rank_ = rank; }

  // status(): [broken, error state, rank, device, block, step, peer, waited ns, calls, nranks, emulated]
  std::vector<int64_t> status() const;
  Algo pick_algo(const Collective& c) const;
  int64_t scratch_bytes() const { return scratch_bytes_; }
  ~Comm();

 private:
  Comm(const vt_host_api* host, std::vector<int> devices) : host_(host), devices_(std::move(devices)) {}
  vt_status init();
  int blocks_for(const Collective& c, Algo algo, const Params& p);
  vt_status run_single(const Collective& c);
  void launch_serially();  // jobs_ from the calling thread (sets each job's result)

  const vt_host_api* host_;
  std::vector<int> devices_;
  std::vector<int> physical_;
  std::vector<RankMem> mem_;
  std::vector<void*> blocks_;   // the cuda_malloc block of each rank
  ErrorWord* err_ = nullptr;    // host-mapped (Note [Bounded waits])
  int64_t scratch_bytes_ = 0;
  int sms_ = 0;
  int sharing_ = 1;             // most ranks on one physical GPU (> 1 under emulation)
  bool broken_ = false;
  std::string reason_;
  int64_t calls_ = 0;
  int skip_rank_ = -1;          // fault injection: that rank's kernel is not launched on the next call
  std::map<const void*, int> occupancy_;  // resident blocks per SM of each kernel
  std::vector<LaunchJob> jobs_;           // one per rank, refilled by every call (fanout.h)
  std::mutex mu_;
};

}  // namespace ring
