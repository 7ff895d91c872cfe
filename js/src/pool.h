#pragma once
// The worker pool behind the promise-returning op calls.
//
// Note [Per-tensor order]
// Jobs are submitted from the JS thread in program order. A job names the storages its tensor arguments view;
// it starts only after every earlier job that named one of the same storages has finished (a chain per storage,
// kept as "the last job that named it"). So two calls on one tensor (or on views of one storage) run in the
// order they were made, whatever the pool's size, while calls on unrelated tensors run in parallel. A barrier
// job (backward, which reaches every leaf of a graph) waits for every earlier job and every later job waits for
// it. Synchronous calls and data reads from JS first wait for the queued jobs that name their storages
// (wait_for), so they, too, see the effects of earlier calls.
//
// Note [In-flight cap]
// The cap on in-flight jobs lives in lib/scheduler.js: a call past it is not submitted here until a slot frees
// (or is rejected in the non-blocking form). The pool itself never refuses work.
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common.h"

namespace vtjs {

struct Job {
  std::vector<const void*> keys;  // storages (Note [Per-tensor order])
  bool barrier = false;
  std::function<void()> run;      // on a worker; exceptions are caught and stored in `error`
  std::exception_ptr error;
  // After run, on the JS thread: resolves or rejects the job's promise.
  std::function<void(Napi::Env, Job&)> complete;

  // Scheduling state, under Pool::mu_.
  int waiting = 0;
  bool done = false;
  std::vector<std::shared_ptr<Job>> dependents;
};

class Pool {
 public:
  Pool(Napi::Env env, int threads);
  ~Pool();
  void submit(std::shared_ptr<Job> job);
  // Blocks until no queued or running job names `key`.
  void wait_for(const void* key);
  int threads() const { return int(workers_.size()); }
  int64_t in_flight() const { return in_flight_; }

 private:
  void work();
  void finish(const std::shared_ptr<Job>& job);  // on a worker, after run
  void deliver();                                // on the JS thread

  std::mutex mu_;
  std::condition_variable ready_cv_, done_cv_;
  std::deque<std::shared_ptr<Job>> ready_;
  std::unordered_map<const void*, std::shared_ptr<Job>> last_;  // Note [Per-tensor order]
  std::unordered_set<std::shared_ptr<Job>> pending_;
  std::shared_ptr<Job> last_barrier_;
  std::vector<std::shared_ptr<Job>> finished_;  // waiting for deliver()
  std::atomic<int64_t> in_flight_{0};
  bool stop_ = false;
  std::vector<std::thread> workers_;
  Napi::ThreadSafeFunction tsfn_;
  Napi::Env env_;
};

// The storage key of a tensor for Note [Per-tensor order].
inline const void* storage_key(const vt::Tensor& t) { return t.storage().get(); }
// Keys of every tensor in a stack.
void collect_keys(const vt::Stack& s, std::vector<const void*>& out);
// Runs `fn` on the pool after earlier jobs on `keys` (Note [Per-tensor order]) with the JS thread's grad mode
// (grad_mode 0 or 1; -1: the JS thread's now) and, for device >= 0, that CUDA device and `stream` current;
// returns a promise that settles on the JS thread with `result`'s value, or rejects with the job's error mapped
// as synchronous calls map it.
Napi::Value submit_job(Napi::Env env, std::vector<const void*> keys, bool barrier, int device, uintptr_t stream,
                       std::function<void()> fn, std::function<Napi::Value(Napi::Env)> result, int grad_mode = -1);
// Waits for queued jobs on `t`'s storage when any job is in flight (cheap otherwise).
void wait_for_tensor(Napi::Env env, const vt::Tensor& t);

}  // namespace vtjs
