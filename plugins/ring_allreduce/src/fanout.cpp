// The fan-out launch pool (see fanout.h).
#include "fanout.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>

namespace ring {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kSpin = std::chrono::microseconds(200);  // how long an idle worker stays hot
constexpr auto kReportTimeout = std::chrono::seconds(2);  // Note [Bounded fan-out]

inline void relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

bool enabled_by_env() {
  const char* v = std::getenv("VT_RING_FANOUT");
  return !(v && *v == '0');
}

}  // namespace

FanOut* FanOut::get(int nranks) {
  static const int workers = [] {
    const int cores = int(std::thread::hardware_concurrency());
    return enabled_by_env() ? std::min(kMaxRanks, cores - 2) : 0;  // a core each, the caller's kept free
  }();
  if (nranks < 2 || nranks > workers) return nullptr;
  static std::unique_ptr<FanOut> pool(new FanOut(workers));
  return pool.get();
}

FanOut::FanOut(int workers) {
  for (int w = 0; w < workers; ++w) threads_.emplace_back([this, w] { work(w); });
}

FanOut::~FanOut() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  for (std::thread& t : threads_) t.join();
}

void FanOut::work(int w) {
  uint64_t seen = 0;
  int current = -1;  // this thread's selected device (the runtime keeps one per thread)
  for (;;) {
    auto idle_since = Clock::now();
    uint64_t g;
    for (unsigned spins = 0; (g = generation_.load()) == seen; ++spins) {
      if (stop_.load(std::memory_order_relaxed)) return;
      relax();
      if ((spins & 255) != 255 || Clock::now() - idle_since < kSpin) continue;
      std::unique_lock<std::mutex> lock(mu_);  // Note [Hot workers only]
      const uint64_t nudges = nudges_;
      ++sleeping_;
      wake_.wait(lock, [&] { return stop_ || generation_.load() != seen || nudges_ != nudges; });
      --sleeping_;
      idle_since = Clock::now();
    }
    seen = g;
    if (w >= int(g & kCountMask)) continue;  // Note [Generation words]
    LaunchJob& job = jobs_[w];
    if (!job.skip) {
      cudaError_t e = cudaSuccess;
      if (job.physical != current) {
        e = cudaSetDevice(job.physical);
        current = e == cudaSuccess ? job.physical : -1;
      }
      job.result = e == cudaSuccess ? cudaError_t(launch(job.params, job.blocks, job.stream)) : e;
    }
    done_.fetch_add(1, std::memory_order_release);
  }
}

FanOut::Outcome FanOut::run(std::vector<LaunchJob>& jobs) {
  std::unique_lock<std::mutex> busy(busy_, std::try_to_lock);  // one caller at a time; the others go serially
  if (!busy.owns_lock() || broken_) return Outcome::Serial;
  if (sleeping_.load() > 0) {  // launch serially this time; have the workers hot for the next call
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++nudges_;
    }
    wake_.notify_all();
    return Outcome::Serial;
  }
  const int n = int(jobs.size());
  jobs_ = jobs.data();
  done_.store(0, std::memory_order_relaxed);
  // publishes the jobs (sequentially consistent, as sleeping_ below); one caller at a time, so load + store
  generation_.store((((generation_.load() >> kCountBits) + 1) << kCountBits) | uint64_t(n));
  if (sleeping_.load() > 0) {  // one fell asleep just now: it must not miss this generation
    { std::lock_guard<std::mutex> lock(mu_); }
    wake_.notify_all();
  }
  const auto start = Clock::now();
  for (unsigned spins = 0; done_.load(std::memory_order_acquire) < n; ++spins) {
    if (spins < 4096) relax();
    else std::this_thread::yield();  // a slow report: let a descheduled worker have this core
    if ((spins & 1023) == 1023 && Clock::now() - start > kReportTimeout) {
      broken_ = true;  // Note [Bounded fan-out]
      return Outcome::TimedOut;
    }
  }
  return Outcome::Done;
}

}  // namespace ring
