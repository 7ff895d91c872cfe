#pragma once
// The op profiler's recorder (what vibetensor.torch.profiler reads): while it is on, every op entering the
// dispatcher at its outermost layer, every backward node the engine evaluates and every user range
// (record_function) becomes a timed range on its thread, with its nesting depth (so the Python side can tell a
// range's own time from its children's) and, when asked, the shapes of its tensor arguments.
//
// Note [Profiler cost when off]: the dispatcher tests one process-wide atomic flag per call (a relaxed load and
// a predictable branch); nothing else runs until start(). Ranges go to a buffer per thread, which registers
// itself once; stop() collects every thread's buffer under the registry's mutex. A range open across stop()
// is dropped (its end arrives after collection), as torch drops unfinished ranges.
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace vt::profiler {

struct Event {
  std::string name;
  int64_t start_ns = 0, end_ns = 0;  // steady clock
  uint64_t thread = 0;               // a small id per thread, in order of first use
  int32_t depth = 0;                 // ranges open on this thread when this one began
  std::vector<std::vector<int64_t>> shapes;  // tensor arguments' sizes (record_shapes), [] for others
};

namespace detail {
extern std::atomic<bool> g_active;
extern std::atomic<bool> g_record_shapes;
}  // namespace detail

inline bool active() { return detail::g_active.load(std::memory_order_relaxed); }
inline bool recording_shapes() { return detail::g_record_shapes.load(std::memory_order_relaxed); }

// Starts recording (every thread's buffer cleared); stop() ends it and returns the ranges closed meanwhile, in
// no particular order across threads. Starting while active raises.
void start(bool record_shapes);
std::vector<Event> stop();

// Opens a range for the scope. Cheap to construct when the profiler is off (nothing recorded).
class Range {
 public:
  explicit Range(std::string_view name) {
    if (active()) [[unlikely]] begin(name, {});
  }
  Range(std::string_view name, std::vector<std::vector<int64_t>> shapes) {
    if (active()) [[unlikely]] begin(name, std::move(shapes));
  }
  ~Range() {
    if (open_) end();
  }
  Range(const Range&) = delete;
  Range& operator=(const Range&) = delete;

 private:
  void begin(std::string_view name, std::vector<std::vector<int64_t>> shapes);
  void end();
  bool open_ = false;
  uint64_t generation_ = 0;  // the recording this range began in (Note [Profiler cost when off])
  int64_t start_ns_ = 0;
  int32_t depth_ = 0;
  std::string name_;
  std::vector<std::vector<int64_t>> shapes_;
};

// User ranges that Python opens and closes (record_function): a stack per thread.
void push_range(std::string_view name);
void pop_range();

}  // namespace vt::profiler
