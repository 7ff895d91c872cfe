// A pool of worker threads for parallel_for (see vt/core/parallel.h). One job runs at a time: chunks are
// handed out through an atomic counter, and the caller works on chunks too, so a pool of N-1 workers uses N
// cores. A mutex serialises whole parallel regions from different caller threads; it is taken only by work
// large enough to go parallel, never on the small-op path.
//
// Note [Workers spin before they sleep]: a worker asleep on the condition variable took 40 us and more to wake,
// so a parallel region shorter than that ran on the caller alone (a fill of 1M floats: 43 us on one thread or
// two). After a region a worker therefore watches for the next one for kSpin before it blocks, as OpenMP's
// workers do (torch's CPU ops rely on theirs): the ops of a training step come microseconds apart and find the
// workers awake. The window is short so an idle process gives its cores back at once.
//
// Note [The caller spins too]: a caller that finishes its chunks first watches for the workers to finish theirs
// for up to kSpin before it sleeps on the condition variable. Asleep, it took 15-20 us to wake on the 2-core
// devbox (a virtual machine), longer than the region: a + b of 65,536 floats took 27 us on two threads against
// 9 us on one (torch 7 us), and every parallel region of a GEMM or a norm paid the same at its end.
//
// Note [The pool grows]: the pool starts with one thread per core (or set_num_threads' count, when that came
// first) and grows when set_num_threads later asks for more, as torch's set_num_threads takes effect whenever
// it is called; asking for fewer cuts regions into fewer chunks (one thread: inline), as before. Workers join
// between regions (under the region lock), never into a region being set up.
#include "vt/core/parallel.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "vt/core/error.h"

namespace vt {

namespace {

thread_local bool in_worker = false;

class Pool {
 public:
  explicit Pool(int n) { grow(n); }
  ~Pool() {
    {
      std::lock_guard<std::mutex> g(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
  }
  int size() const { return nthreads_.load(std::memory_order_acquire); }

  // Starts workers until the pool has n threads, the caller counted (Note [The pool grows]).
  void grow(int n) {
    std::lock_guard<std::mutex> region(region_mu_);
    for (int have = size(); have < n; ++have) {
      workers_.emplace_back([this] { work(); });
      nthreads_.store(have + 1, std::memory_order_release);
    }
  }

  void run(int64_t begin, int64_t end, int64_t chunk, FunctionRef<void(int64_t, int64_t)> fn) {
    std::lock_guard<std::mutex> region(region_mu_);
    {
      std::unique_lock<std::mutex> lk(mu_);
      done_cv_.wait(lk, [&] { return active_ == 0; });  // a late worker may still be leaving the last region
      job_ = Job{begin, end, chunk, &fn};
      next_.store(begin);
      pending_ = (end - begin + chunk - 1) / chunk;
      error_ = nullptr;
      generation_.store(generation_.load() + 1);
    }
    cv_.notify_all();
    in_worker = true;
    drain();
    in_worker = false;
    spin_until([&] {  // Note [The caller spins too]
      return pending_.load(std::memory_order_acquire) == 0 && active_.load(std::memory_order_acquire) == 0;
    });
    std::unique_lock<std::mutex> lk(mu_);
    // Wait for workers to leave drain() too, so none still reads job_ when the next region rewrites it.
    done_cv_.wait(lk, [&] { return pending_ == 0 && active_ == 0; });
    if (error_) std::rethrow_exception(error_);
  }

 private:
  struct Job {
    int64_t begin = 0, end = 0, chunk = 1;
    FunctionRef<void(int64_t, int64_t)>* fn = nullptr;
  };
  void drain() {
    for (;;) {
      int64_t b = next_.fetch_add(job_.chunk);
      if (b >= job_.end) return;
      try {
        (*job_.fn)(b, std::min(b + job_.chunk, job_.end));
      } catch (...) {
        std::lock_guard<std::mutex> g(mu_);
        if (!error_) error_ = std::current_exception();
      }
      std::lock_guard<std::mutex> g(mu_);
      if (--pending_ == 0) done_cv_.notify_all();
    }
  }
  // Whether `ready` becomes true within kSpin (Note [Workers spin before they sleep], [The caller spins too]).
  template <typename Ready> static bool spin_until(const Ready& ready) {
    constexpr auto kSpin = std::chrono::microseconds(100);
    const auto until = std::chrono::steady_clock::now() + kSpin;
    for (int i = 0;; ++i) {
      if (ready()) return true;
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#endif
      if ((i & 63) == 63 && std::chrono::steady_clock::now() > until) return false;
    }
  }
  void work() {
    in_worker = true;
    uint64_t seen = generation_.load();  // a worker that joins a grown pool waits for the next region
    for (;;) {
      if (seen != 0)  // then take the lock as usual: the wait below returns at once
        spin_until([&] { return generation_.load(std::memory_order_acquire) != seen; });
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return stop_ || generation_.load() != seen; });
        if (stop_) return;
        seen = generation_;
        ++active_;
      }
      drain();
      std::lock_guard<std::mutex> g(mu_);
      if (--active_ == 0) done_cv_.notify_all();
    }
  }

  std::atomic<int> nthreads_{1};  // the workers and the caller
  std::vector<std::thread> workers_;
  std::mutex mu_, region_mu_;
  std::condition_variable cv_, done_cv_;
  Job job_;
  std::atomic<int64_t> next_{0};
  // Written under mu_ (the condition variables' predicates); read without it only by the caller's spin.
  std::atomic<int64_t> pending_{0};
  std::atomic<int> active_{0};
  std::atomic<uint64_t> generation_{0};  // written under mu_; read without it only by the workers' spin
  bool stop_ = false;
  std::exception_ptr error_;
};

std::atomic<int> requested_threads{0};

Pool& pool() {
  static Pool* p = [] {
    int n = requested_threads.load();
    if (n <= 0) n = int(std::max(1u, std::thread::hardware_concurrency()));
    return new Pool(n);  // leaked: workers must outlive static destructors that may still compute
  }();
  return *p;
}

}  // namespace

int num_threads() {
  const int want = requested_threads.load();
  return want > 0 ? want : pool().size();
}
int max_num_threads() { return int(std::max(256u, 8 * std::thread::hardware_concurrency())); }

void set_num_threads(int n) {
  VT_CHECK(n > 0, "set_num_threads expects a positive integer, got ", n);
  // Each thread of the pool is a real OS thread started at once: 100,000 of them take minutes to start and
  // gain nothing over one per core, so requests past a generous multiple of the cores are refused.
  VT_CHECK_VALUE(n <= max_num_threads(), "set_num_threads(", n, "): at most ", max_num_threads(),
                 " threads are supported on this machine (", std::thread::hardware_concurrency(), " hardware threads)");
  requested_threads.store(n);
}

void parallel_for(int64_t begin, int64_t end, int64_t grain, FunctionRef<void(int64_t, int64_t)> fn) {
  int64_t n = end - begin;
  if (n <= 0) return;
  if (n <= grain || in_worker) return fn(begin, end);
  Pool& p = pool();
  const int want = requested_threads.load();
  if (want > p.size()) p.grow(want);  // Note [The pool grows]
  const int threads = want > 0 ? want : p.size();
  if (threads == 1) return fn(begin, end);
  int64_t chunks = std::min<int64_t>(int64_t(threads) * 4, (n + grain - 1) / grain);
  int64_t chunk = (n + chunks - 1) / chunks;
  p.run(begin, end, chunk, fn);
}

}  // namespace vt
