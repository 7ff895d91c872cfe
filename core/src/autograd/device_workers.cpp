// The backward engine's per-device threads (Note [Device workers] in device_workers.h).
#include "device_workers.h"

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>

#include "vt/core/error.h"

namespace vt::autograd {
namespace {

thread_local bool t_on_worker = false;

std::atomic<bool>& enabled_flag() {
  static std::atomic<bool> on([] {
    const char* v = std::getenv("VT_AUTOGRAD_DEVICE_THREADS");
    return !(v && std::strcmp(v, "0") == 0);
  }());
  return on;
}

std::atomic<bool> g_leased{false};

// One thread waiting for jobs; kept for the life of the process (never joined: it may be parked in a CUDA call
// or hold thread-local CUDA state when the process exits, and joining at static destruction could hang).
class Worker {
 public:
  Worker() {
    std::thread([this] { loop(); }).detach();
  }
  void post(std::function<void()> job) {
    {
      std::lock_guard<std::mutex> g(mu_);
      job_ = std::move(job);
    }
    cv_.notify_one();
  }

 private:
  void loop() {
    t_on_worker = true;
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return bool(job_); });
        job = std::move(job_);
        job_ = nullptr;
      }
      job();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::function<void()> job_;
};

Worker& worker(int device) {
  static std::mutex mu;
  static auto* workers = new std::vector<std::unique_ptr<Worker>>();  // leaked on purpose, as the threads
  std::lock_guard<std::mutex> g(mu);
  if (size_t(device) >= workers->size()) workers->resize(device + 1);
  if (!(*workers)[device]) (*workers)[device] = std::make_unique<Worker>();
  return *(*workers)[device];
}

}  // namespace

bool device_workers_enabled() { return enabled_flag().load(); }
void set_device_workers_enabled(bool on) { enabled_flag().store(on); }
bool on_device_worker() { return t_on_worker; }

DeviceWorkersLease::DeviceWorkersLease() {
  if (!device_workers_enabled() || t_on_worker) return;
  bool expected = false;
  held_ = g_leased.compare_exchange_strong(expected, true);
}
DeviceWorkersLease::~DeviceWorkersLease() {
  if (held_) g_leased.store(false);
}

void run_on_device_workers(const std::vector<int>& devices, const std::function<void(int)>& fn,
                           const std::function<void()>& caller) {
  VT_INTERNAL_ASSERT(g_leased.load(), "run_on_device_workers without a lease");
  std::mutex mu;
  std::condition_variable cv;
  size_t running = devices.size();
  for (int d : devices) {
    worker(d).post([&, d] {
      fn(d);
      std::lock_guard<std::mutex> g(mu);  // notified under the lock: the caller's frame (mu, cv) may go once it sees 0
      if (--running == 0) cv.notify_all();
    });
  }
  caller();
  std::unique_lock<std::mutex> lk(mu);
  cv.wait(lk, [&] { return running == 0; });
}

}  // namespace vt::autograd
