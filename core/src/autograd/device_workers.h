#pragma once
// Note [Device workers]
// When a backward graph spans several CUDA devices, one host thread per device runs that device's nodes, so the
// host work of each device's backward (dispatch, kernel launches, allocation) overlaps with the others' instead
// of one thread issuing every device's work in turn (torch's engine keeps a thread per device for the same
// reason). The threads are made once per device and kept: each holds per-thread state that is costly to make
// again (cuBLAS handles, cached events), so a thread per backward call would pay that every step.
//
// One graph task at a time uses them (lease()): a second backward meanwhile - from another Python thread, or a
// custom Function's backward that itself calls backward, on a worker thread - runs on its calling thread alone,
// as every backward did before, so a task can never wait for a worker that is busy waiting for it.
// set_device_workers_enabled(false) (vt/autograd/engine.h; or VT_AUTOGRAD_DEVICE_THREADS=0 at start) turns the
// workers off.
#include <functional>
#include <vector>

#include "vt/autograd/engine.h"

namespace vt::autograd {

// True on a device worker's thread.
bool on_device_worker();

// Runs fn(d) on device d's worker for every d in `devices` while the caller runs `caller()` on its own thread,
// and returns when all of them have returned. Exceptions are the callers' business: fn and caller must not
// throw (the engine catches inside them). Call only with a lease held.
void run_on_device_workers(const std::vector<int>& devices, const std::function<void(int)>& fn,
                           const std::function<void()>& caller);

// Exclusive use of the workers for one graph task; `held()` is false when another task has them (or they are
// turned off), and the task then runs on its calling thread alone.
class DeviceWorkersLease {
 public:
  DeviceWorkersLease();
  ~DeviceWorkersLease();
  DeviceWorkersLease(const DeviceWorkersLease&) = delete;
  DeviceWorkersLease& operator=(const DeviceWorkersLease&) = delete;
  bool held() const { return held_; }

 private:
  bool held_ = false;
};

}  // namespace vt::autograd
