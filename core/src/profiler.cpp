// The op profiler's recorder (model in vt/core/profiler.h).
#include "vt/core/profiler.h"

#include <chrono>
#include <memory>
#include <mutex>

#include "vt/core/error.h"

namespace vt::profiler {
namespace detail {
std::atomic<bool> g_active{false};
std::atomic<bool> g_record_shapes{false};
}  // namespace detail

namespace {

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// One thread's ranges. The registry owns every buffer (a thread that exits leaves its ranges for stop()).
struct ThreadBuffer {
  std::mutex mu;  // the owner appends, stop() collects
  std::vector<Event> events;
  uint64_t generation = 0;  // the recording `events` belongs to
  uint64_t id = 0;
  int32_t depth = 0;  // ranges open on the thread
  std::vector<std::unique_ptr<Range>> user;  // push_range / pop_range
};

struct Registry {
  std::mutex mu;
  std::vector<std::unique_ptr<ThreadBuffer>> buffers;
  std::atomic<uint64_t> generation{0};
};
Registry& registry() {
  static Registry* r = new Registry;  // never destroyed: threads may outlive static destruction
  return *r;
}

ThreadBuffer& this_thread() {
  thread_local ThreadBuffer* buf = [] {
    Registry& r = registry();
    std::lock_guard<std::mutex> g(r.mu);
    r.buffers.push_back(std::make_unique<ThreadBuffer>());
    r.buffers.back()->id = r.buffers.size() - 1;
    return r.buffers.back().get();
  }();
  return *buf;
}

}  // namespace

void start(bool record_shapes) {
  Registry& r = registry();
  std::lock_guard<std::mutex> g(r.mu);
  VT_CHECK(!detail::g_active.load(), "the profiler is already recording (one profile at a time)");
  r.generation.fetch_add(1);
  for (auto& b : r.buffers) {
    std::lock_guard<std::mutex> bg(b->mu);
    b->events.clear();
  }
  detail::g_record_shapes.store(record_shapes, std::memory_order_relaxed);
  detail::g_active.store(true, std::memory_order_release);
}

std::vector<Event> stop() {
  Registry& r = registry();
  std::lock_guard<std::mutex> g(r.mu);
  detail::g_active.store(false, std::memory_order_release);
  const uint64_t gen = r.generation.load();
  std::vector<Event> all;
  for (auto& b : r.buffers) {
    std::lock_guard<std::mutex> bg(b->mu);
    if (b->generation == gen)
      for (Event& e : b->events) all.push_back(std::move(e));
    b->events.clear();
  }
  r.generation.fetch_add(1);  // ranges still open now belong to no recording
  return all;
}

void Range::begin(std::string_view name, std::vector<std::vector<int64_t>> shapes) {
  ThreadBuffer& b = this_thread();
  open_ = true;
  generation_ = registry().generation.load(std::memory_order_relaxed);
  name_ = name;
  shapes_ = std::move(shapes);
  depth_ = b.depth++;
  start_ns_ = now_ns();
}

void Range::end() {
  const int64_t t = now_ns();
  ThreadBuffer& b = this_thread();
  --b.depth;
  open_ = false;
  std::lock_guard<std::mutex> g(b.mu);
  if (generation_ != registry().generation.load(std::memory_order_relaxed)) return;  // began in another recording
  if (b.generation != generation_) {
    b.events.clear();
    b.generation = generation_;
  }
  b.events.push_back(Event{std::move(name_), start_ns_, t, b.id, depth_, std::move(shapes_)});
}

void push_range(std::string_view name) {
  ThreadBuffer& b = this_thread();
  b.user.push_back(std::make_unique<Range>(name));
}

void pop_range() {
  ThreadBuffer& b = this_thread();
  VT_CHECK(!b.user.empty(), "record_function: no range is open on this thread");
  b.user.pop_back();  // its destructor closes it
}

}  // namespace vt::profiler
