// The worker pool (pool.h): a fixed set of threads running jobs in the order Note [Per-tensor order] allows,
// and one thread-safe function that brings finished jobs back to the JS thread to settle their promises.
#include "pool.h"

#include <algorithm>

namespace vtjs {

void collect_keys(const vt::Stack& s, std::vector<const void*>& out) {
  for (const vt::IValue& v : s) {
    if (auto* t = std::get_if<vt::Tensor>(&v)) {
      if (t->defined()) out.push_back(storage_key(*t));
    } else if (auto* ts = std::get_if<std::vector<vt::Tensor>>(&v)) {
      for (const vt::Tensor& x : *ts)
        if (x.defined()) out.push_back(storage_key(x));
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
}

void wait_for_tensor(Napi::Env env, const vt::Tensor& t) {
  Pool* p = state(env).pool;
  if (p && p->in_flight() > 0) p->wait_for(storage_key(t));
}

Pool::Pool(Napi::Env env, int threads) : env_(env) {
  tsfn_ = Napi::ThreadSafeFunction::New(env, Napi::Function::New(env, [](const Napi::CallbackInfo&) {}),
                                        "vibetensor-pool", 0, 1);
  tsfn_.Unref(env);  // Ref'd only while jobs are in flight, so an idle pool never keeps the process alive
  for (int i = 0; i < threads; ++i) workers_.emplace_back([this] { work(); });
}

Pool::~Pool() {
  {
    std::lock_guard<std::mutex> g(mu_);
    stop_ = true;
  }
  ready_cv_.notify_all();
  for (auto& w : workers_) w.join();
}

void Pool::submit(std::shared_ptr<Job> job) {
  if (in_flight_.fetch_add(1) == 0) tsfn_.Ref(env_);
  std::lock_guard<std::mutex> g(mu_);
  auto depend_on = [&](const std::shared_ptr<Job>& before) {
    if (before && !before->done && before != job) {
      before->dependents.push_back(job);
      ++job->waiting;
    }
  };
  if (job->barrier) {
    for (const auto& p : pending_) depend_on(p);
    last_barrier_ = job;
  } else {
    depend_on(last_barrier_);
    for (const void* k : job->keys) {
      auto it = last_.find(k);
      if (it != last_.end()) depend_on(it->second);
    }
  }
  for (const void* k : job->keys) last_[k] = job;
  pending_.insert(job);
  if (job->waiting == 0) {
    ready_.push_back(job);
    ready_cv_.notify_one();
  }
}

void Pool::wait_for(const void* key) {
  std::unique_lock<std::mutex> g(mu_);
  done_cv_.wait(g, [&] { return !last_.contains(key) && !(last_barrier_ && !last_barrier_->done); });
}

void Pool::work() {
  for (;;) {
    std::shared_ptr<Job> job;
    {
      std::unique_lock<std::mutex> g(mu_);
      ready_cv_.wait(g, [&] { return stop_ || !ready_.empty(); });
      if (stop_) return;
      job = std::move(ready_.front());
      ready_.pop_front();
    }
    try {
      job->run();
    } catch (...) {
      job->error = std::current_exception();
    }
    finish(job);
  }
}

void Pool::finish(const std::shared_ptr<Job>& job) {
  {
    std::lock_guard<std::mutex> g(mu_);
    job->done = true;
    for (const void* k : job->keys) {
      auto it = last_.find(k);
      if (it != last_.end() && it->second == job) last_.erase(it);
    }
    if (last_barrier_ == job) last_barrier_.reset();
    pending_.erase(job);
    for (auto& d : job->dependents) {
      if (--d->waiting == 0) {
        ready_.push_back(d);
        ready_cv_.notify_one();
      }
    }
    job->dependents.clear();
    finished_.push_back(job);
  }
  done_cv_.notify_all();
  tsfn_.NonBlockingCall(this, [](Napi::Env, Napi::Function, Pool* p) { p->deliver(); });
}

void Pool::deliver() {
  std::vector<std::shared_ptr<Job>> jobs;
  {
    std::lock_guard<std::mutex> g(mu_);
    jobs.swap(finished_);
  }
  for (auto& j : jobs) {
    Napi::HandleScope scope(env_);
    j->complete(env_, *j);
    j.reset();  // results are released here, on the JS thread
    if (in_flight_.fetch_sub(1) == 1) tsfn_.Unref(env_);
  }
}

void init_pool(Napi::Env env, Napi::Object exports) {
  int n = int(std::thread::hardware_concurrency());
  if (const char* e = std::getenv("VT_JS_THREADS")) n = std::atoi(e);
  n = std::clamp(n, 1, 8);
  auto* pool = new Pool(env, n);
  state(env).pool = pool;
  env.AddCleanupHook([pool] { delete pool; });
  exports.Set("poolThreads", Napi::Number::New(env, n));
  exports.Set("inFlight", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), double(state(info.Env()).pool->in_flight()));
  }));
}

}  // namespace vtjs
