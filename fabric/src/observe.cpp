// Counters and the event ring (vt/fabric/observe.h, Note [Counter invariants], Note [Event ring]).
#include "vt/fabric/observe.h"

#include <array>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>

#include "vt/core/error.h"
#include "vt/cuda/check.h"
#include "vt/cuda/event.h"
#include "vt/cuda/guard.h"

namespace vt::fabric {
namespace {

// Note [Counter invariants] (observe.h): plain integers under one mutex, so a collective counts all its pairs
// and the totals under a single lock: with relaxed atomics (three to six per pair) the 56 pairs of a collective
// over 8 emulated devices cost 4.6-6.0 us from Python on an H200 machine, under one lock 1.4 us.
std::mutex g_counters_mu;
std::array<PairCounters, kMaxDevices * kMaxDevices> g_pairs;  // guarded by g_counters_mu
PairCounters g_total;                                          // guarded by g_counters_mu

void add(PairCounters& c, int64_t bytes, Route route, Reason reason) {
  ++c.ops;
  c.bytes += bytes;
  if (route == Route::Staged) ++c.fallbacks[int(reason)];
  else ++c.hits;
}

size_t pair_index(int compute, int remote) {
  VT_CHECK_VALUE(compute >= 0 && compute < kMaxDevices && remote >= 0 && remote < kMaxDevices,
                 "fabric: device pair (", compute, ", ", remote, ") outside 0..", kMaxDevices - 1);
  return size_t(compute * kMaxDevices + remote);
}

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// The ring (Note [Event ring]).
std::mutex g_ring_mu;
std::vector<EventRecord> g_ring;  // capacity slots once full
size_t g_capacity = 4096, g_next = 0;
bool g_full = false;
std::atomic<int64_t> g_dropped{0};
std::atomic<bool> g_enabled{true}, g_gpu_timing{false}, g_tracing{false};

// Timing origins: one event per device recorded by set_origin.
std::mutex g_origin_mu;
std::map<int, std::shared_ptr<cuda::Event>> g_origins;
int64_t g_origin_host = 0;

}  // namespace

struct GpuSpan {
  int device;
  cuda::Event start, end;
  explicit GpuSpan(int d) : device(d), start(d, true), end(d, true) {}
  uintptr_t stream = 0;
};

void count(int compute, int remote, int64_t bytes, Route route, Reason reason) {
  const size_t i = pair_index(compute, remote);
  std::lock_guard<std::mutex> g(g_counters_mu);
  add(g_pairs[i], bytes, route, reason);
  add(g_total, bytes, route, reason);
}
void count_all(const std::vector<Tally>& tallies) {
  for (const Tally& t : tallies) pair_index(t.compute, t.remote);  // all checked before any is counted
  std::lock_guard<std::mutex> g(g_counters_mu);
  for (const Tally& t : tallies) {
    add(g_pairs[pair_index(t.compute, t.remote)], t.bytes, t.route, t.reason);
    add(g_total, t.bytes, t.route, t.reason);
  }
}
PairCounters pair_counters(int compute, int remote) {
  size_t i = pair_index(compute, remote);
  std::lock_guard<std::mutex> g(g_counters_mu);
  return g_pairs[i];
}
PairCounters total_counters() {
  std::lock_guard<std::mutex> g(g_counters_mu);
  return g_total;
}
void reset_counters() {
  std::lock_guard<std::mutex> g(g_counters_mu);
  g_pairs.fill(PairCounters{});
  g_total = PairCounters{};
}

const char* event_kind_name(EventKind k) {
  switch (k) {
    case EventKind::Enqueue: return "enqueue";
    case EventKind::Complete: return "complete";
    case EventKind::Fallback: return "fallback";
    case EventKind::Error: return "error";
    case EventKind::Collective: return "collective";
    case EventKind::Copy: return "copy";
  }
  return "?";
}

void set_ring_capacity(size_t capacity) {
  VT_CHECK_VALUE(capacity <= (size_t(1) << 24), "fabric: event ring capacity ", capacity, " above 16M entries");
  std::lock_guard<std::mutex> g(g_ring_mu);
  g_capacity = capacity;
  g_ring.clear();
  g_ring.shrink_to_fit();
  g_next = 0, g_full = false;
  g_dropped = 0;
  g_enabled = capacity > 0;
}
size_t ring_capacity() {
  std::lock_guard<std::mutex> g(g_ring_mu);
  return g_capacity;
}
int64_t ring_dropped() { return g_dropped.load(); }
void clear_ring() {
  std::lock_guard<std::mutex> g(g_ring_mu);
  g_ring.clear();
  g_next = 0, g_full = false;
  g_dropped = 0;
}
void set_gpu_timing(bool on) { g_gpu_timing = on; }
void set_tracing(bool on) { g_tracing = on; }
bool tracing() { return g_tracing.load(std::memory_order_relaxed); }
bool gpu_timing() { return g_gpu_timing.load(std::memory_order_relaxed); }
bool events_enabled() { return g_enabled.load(std::memory_order_relaxed); }

void record_event(EventRecord r) {
  if (!events_enabled()) return;
  if (r.host_ns == 0) r.host_ns = now_ns();
  std::lock_guard<std::mutex> g(g_ring_mu);
  if (g_capacity == 0) return;
  if (g_ring.size() < g_capacity) {
    g_ring.push_back(std::move(r));
    return;
  }
  g_ring[g_next] = std::move(r);  // overwrite the oldest
  g_next = (g_next + 1) % g_capacity;
  g_full = true;
  g_dropped.fetch_add(1, std::memory_order_relaxed);
}

// Spans are pooled per device: a traced op would otherwise create and destroy two CUDA events (a few
// microseconds of host time each). A span returns to its device's pool when the last ring entry holding it is
// dropped; re-recording an event whose previous record is still pending is allowed, and nothing reads it then.
namespace {
struct SpanPool {
  std::mutex mu;
  std::array<std::vector<GpuSpan*>, kMaxDevices> free;
};
// Never destroyed: ring entries (statics of this file) may return spans during the process's exit.
SpanPool& span_pool() {
  static SpanPool* pool = new SpanPool;
  return *pool;
}

std::shared_ptr<GpuSpan> pooled_span(int device) {
  GpuSpan* raw = nullptr;
  {
    std::lock_guard<std::mutex> g(span_pool().mu);
    auto& pool = span_pool().free[size_t(device)];
    if (!pool.empty()) {
      raw = pool.back();
      pool.pop_back();
    }
  }
  if (!raw) raw = new GpuSpan(device);
  return std::shared_ptr<GpuSpan>(raw, [](GpuSpan* s) {
    std::lock_guard<std::mutex> g(span_pool().mu);
    span_pool().free[size_t(s->device)].push_back(s);  // kept for the process, like the events' device contexts
  });
}
}  // namespace

std::shared_ptr<GpuSpan> begin_span(int device, uintptr_t stream) {
  if (!gpu_timing()) return nullptr;
  VT_CHECK_VALUE(device >= 0 && device < kMaxDevices, "fabric: span on device ", device, " outside 0..", kMaxDevices - 1);
  auto span = pooled_span(device);
  span->stream = stream;
  span->start.record({device, stream});
  return span;
}
void end_span(const std::shared_ptr<GpuSpan>& span) {
  if (span) span->end.record({span->device, span->stream});
}

void set_origin(const std::vector<int>& devices) {
  std::lock_guard<std::mutex> g(g_origin_mu);
  g_origins.clear();
  for (int d : devices) {
    auto e = std::make_shared<cuda::Event>(d, true);
    e->record(cuda::current(d));
    g_origins[d] = e;
  }
  g_origin_host = now_ns();
}
int64_t origin_host_ns() {
  std::lock_guard<std::mutex> g(g_origin_mu);
  return g_origin_host;
}

std::vector<ResolvedEvent> read_ring() {
  std::vector<EventRecord> copy;
  {
    std::lock_guard<std::mutex> g(g_ring_mu);
    copy.reserve(g_ring.size());
    for (size_t i = 0; i < g_ring.size(); ++i) copy.push_back(g_ring[(g_next + i) % g_ring.size()]);
  }
  std::map<int, std::shared_ptr<cuda::Event>> origins;
  {
    std::lock_guard<std::mutex> g(g_origin_mu);
    origins = g_origins;
  }
  std::vector<ResolvedEvent> out;
  out.reserve(copy.size());
  for (EventRecord& r : copy) {
    ResolvedEvent e{std::move(r)};
    const auto& span = e.record.gpu;
    auto o = span ? origins.find(span->device) : origins.end();
    if (span && o != origins.end() && span->end.query()) {
      float a = 0, b = 0;
      if (cudaEventElapsedTime(&a, o->second->native(), span->start.native()) == cudaSuccess &&
          cudaEventElapsedTime(&b, o->second->native(), span->end.native()) == cudaSuccess) {
        e.gpu_start_us = double(a) * 1e3, e.gpu_end_us = double(b) * 1e3;
      }
      cudaGetLastError();  // an event recorded before the origin reads as an error: left unresolved
    }
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace vt::fabric
