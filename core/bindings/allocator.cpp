// The device allocators from Python (statistics, snapshots, allocation history), and a test-only allocator over
// a fake device (_FakeAllocator) so the caching policy (Notes [Stream-ordered free], [Graph-private pool],
// [Allocation history]) is tested on machines without a GPU. The fake device also simulates stream capture,
// and fails any call that would invalidate a real one.
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <set>

#include "common.h"
#include "memory_history.h"
#include "vt/cuda/caching_allocator.h"
#include "vt/cuda/kernel_errors.h"
#include "vt/cuda/device.h"
#include "vt/cuda/guard.h"
#include "vt/cuda/check.h"
#include "vt/cuda/device.h"
#include "vt/cuda/memory.h"

namespace vt::py {
namespace {

using namespace vt::cuda;

// A device whose memory is host memory and whose events complete only when the test says so. Streams can be
// put into a simulated capture; while any is capturing, the calls CUDA forbids then (event record, query,
// wait and destroy, cudaFree) raise instead of silently invalidating it.
class FakeBackend : public MemoryBackend {
 public:
  explicit FakeBackend(size_t capacity) : capacity_(capacity) {}
  ~FakeBackend() override {
    for (auto& [p, n] : live_) std::free(p);
  }
  void* malloc(size_t bytes) override {
    if (used_ + bytes > capacity_) return nullptr;
    void* p = std::aligned_alloc(512, (bytes + 511) / 512 * 512);
    if (p) live_[p] = bytes, used_ += bytes;
    return p;
  }
  void free(void* p) override {
    forbid_during_capture("cudaFree");
    auto it = live_.find(p);
    VT_INTERNAL_ASSERT(it != live_.end(), "fake backend: unknown free");
    used_ -= it->second;
    live_.erase(it);
    std::free(p);
  }
  EventId record_event(int, StreamId stream) override {
    forbid_during_capture("cudaEventRecord");
    EventId e = next_++;
    events_[e] = stream;
    return e;
  }
  bool event_done(EventId e) override {
    forbid_during_capture("cudaEventQuery");
    return done_.count(e) > 0;
  }
  void event_wait(EventId e) override {
    forbid_during_capture("cudaEventSynchronize");
    done_.insert(e);
  }
  void event_destroy(EventId e) override {
    forbid_during_capture("cudaEventDestroy");
    events_.erase(e);
    done_.erase(e);
  }
  size_t capacity() override { return capacity_; }
  size_t free_memory() override { return capacity_ - used_; }
  uint64_t capture_id(StreamId stream) override {
    auto it = capturing_.find(stream);
    return it == capturing_.end() ? 0 : it->second;
  }
  std::map<StreamId, uint64_t> capturing_;  // stream -> capture id, set by the test through FakeAllocator

  void complete(StreamId stream) {  // the stream has passed every event recorded on it so far
    for (auto& [e, s] : events_)
      if (s == stream) done_.insert(e);
  }
  size_t outstanding_events() const { return events_.size(); }
  size_t device_bytes() const { return used_; }

 private:
  void forbid_during_capture(const char* call) const {
    VT_CHECK(capturing_.empty(), "fake device: ", call, " while a stream capture is underway would invalidate it");
  }
  size_t capacity_, used_ = 0;
  std::map<void*, size_t> live_;
  std::map<EventId, StreamId> events_;
  std::set<EventId> done_;
  EventId next_ = 1;
};

struct FakeAllocator {
  FakeBackend* backend;
  std::unique_ptr<CachingAllocator> alloc;
  std::shared_ptr<size_t> context_calls = std::make_shared<size_t>(0);  // how often history asked for a stack
  std::map<uint64_t, MempoolId> capture_pool;  // capture id -> the pool it allocates from
  uint64_t next_capture_id = 1;
  FakeAllocator(size_t capacity, const std::string& conf) {
    auto b = std::make_unique<FakeBackend>(capacity);
    backend = b.get();
    alloc = std::make_unique<CachingAllocator>(std::move(b), parse_alloc_conf(conf), 0);
  }
  ~FakeAllocator() { backend->capturing_.clear(); }  // a test that left a capture open still tears down
  // What CUDAGraph::capture_begin does, with the fake device's capture state in place of CUDA's.
  uint64_t begin_capture(StreamId stream, MempoolId pool) {
    VT_CHECK(!backend->capturing_.count(stream), "fake device: stream ", stream, " is already capturing");
    alloc->begin_allocate_to_pool(pool);
    uint64_t id = next_capture_id++;
    backend->capturing_[stream] = id;
    capture_pool[id] = pool;
    alloc->attach_capture(pool, id);
    return id;
  }
  void end_capture(StreamId stream) {
    auto it = backend->capturing_.find(stream);
    VT_CHECK(it != backend->capturing_.end(), "fake device: stream ", stream, " is not capturing");
    uint64_t id = it->second;
    std::erase_if(backend->capturing_, [id](const auto& kv) { return kv.second == id; });  // joined streams too
    MempoolId pool = capture_pool.at(id);
    capture_pool.erase(id);
    alloc->end_allocate_to_pool(pool);
  }
};

}  // namespace

void bind_pinned(nb::module_& m);  // pinned.cpp

void bind_allocator(nb::module_& m) {
  auto dev = [](nb::handle d) { return d.is_none() ? current_device() : to_int(d, "device"); };
  m.def("current_device", &current_device);
  m.def("set_device", &set_device);
  m.def("synchronize", [dev](nb::handle d) {
    int device = dev(d);
    check_device(Device(DeviceType::CUDA, device));
    DeviceGuard g(device);  // under emulation this waits for the whole physical GPU: every logical device on it
    {
      nb::gil_scoped_release release;
      VT_CUDA_CHECK(cudaDeviceSynchronize());
    }
    raise_kernel_errors();  // Note [Deferred kernel errors]
  }, nb::arg("device") = nb::none());
  m.def("memory_stats", [dev](nb::handle d) { return stats_dict(device_allocator(dev(d)).stats()); },
        nb::arg("device") = nb::none());
  m.def("memory_snapshot", [dev](nb::handle d) {
    int i = dev(d);
    return snapshot_list(device_allocator(i).snapshot(), i);
  }, nb::arg("device") = nb::none());
  m.def("record_memory_history", [](nb::handle enabled, nb::handle context, const std::string& stacks,
                                    size_t max_entries, bool clear) {
    set_memory_history(history_config(enabled, context, stacks, max_entries, clear, &python_context));
  }, nb::arg("enabled").none(), nb::arg("context").none(), nb::arg("stacks"), nb::arg("max_entries"),
     nb::arg("clear_history"));
  m.def("_snapshot", [] {  // torch's _snapshot(): every device whose allocator exists (creates none)
    nb::list segments, traces;
    for (int i = 0; i < device_count(); ++i) {
      CachingAllocator* a = device_allocator_if_created(i);
      if (a)
        for (nb::handle seg : snapshot_list(a->snapshot(), i)) segments.append(seg);
      traces.append(a ? trace_list(a->trace()) : nb::list());
    }
    nb::dict d;
    d["segments"] = segments;
    d["device_traces"] = traces;
    return d;
  });
  m.def("reset_peak_memory_stats", [dev](nb::handle d) { device_allocator(dev(d)).reset_peak_stats(); },
        nb::arg("device") = nb::none());
  m.def("empty_cache", [] {
    for (int i = 0; i < device_count(); ++i) device_allocator(i).empty_cache();
  });
  m.def("set_per_process_memory_fraction", [dev](double f, nb::handle d) {
    device_allocator(dev(d)).set_memory_fraction(f);
  }, nb::arg("fraction"), nb::arg("device") = nb::none());
  m.def("record_stream", [](const Tensor& t, uintptr_t stream, int stream_device) {
    VT_CHECK(t.is_cuda(), "record_stream: expected a CUDA tensor, got one on ", t.device().str());
    device_allocator(t.device().index).record_stream(t.storage()->data(), stream, stream_device);
  }, nb::arg("tensor"), nb::arg("stream"), nb::arg("stream_device") = -1);
  m.def("parse_alloc_conf", [](const std::string& text) {
    AllocatorConfig c = parse_alloc_conf(text);
    nb::dict d;
    d["backend"] = c.passthrough ? "passthrough" : "native";
    d["max_split_size"] = c.max_split_size;
    d["memory_fraction"] = c.memory_fraction;
    d["record_history"] = c.record_history;
    return d;
  });
  nb::class_<FakeAllocator>(m, "_FakeAllocator")
      .def(nb::init<size_t, const std::string&>(), nb::arg("capacity"), nb::arg("conf") = "")
      .def("allocate", [](FakeAllocator& f, size_t n, uintptr_t stream) {
        return reinterpret_cast<uintptr_t>(f.alloc->allocate(n, stream));
      }, nb::arg("nbytes"), nb::arg("stream") = 0)
      .def("free", [](FakeAllocator& f, uintptr_t p) { f.alloc->free(reinterpret_cast<void*>(p)); })
      .def("record_stream", [](FakeAllocator& f, uintptr_t p, uintptr_t s) {
        f.alloc->record_stream(reinterpret_cast<void*>(p), s);
      })
      .def("complete", [](FakeAllocator& f, uintptr_t s) { f.backend->complete(s); },
           "Marks every event recorded on the stream so far as done.")
      .def("begin_capture", &FakeAllocator::begin_capture, nb::arg("stream"), nb::arg("pool"),
           "Simulates capture_begin on `stream` into private pool `pool`; returns the capture id.")
      .def("join_capture", [](FakeAllocator& f, uintptr_t stream, uintptr_t capturing) {
        f.backend->capturing_[stream] = f.backend->capturing_.at(capturing);
      }, "A stream forked from a capturing one (after waiting on its event) takes part in the same capture.")
      .def("end_capture", &FakeAllocator::end_capture, nb::arg("stream"))
      .def("replay", [](FakeAllocator& f, MempoolId pool, uintptr_t stream) { f.alloc->record_pool_use(pool, stream); },
           nb::arg("pool"), nb::arg("stream"), "What a graph launch on `stream` tells the allocator.")
      .def("release_pool", [](FakeAllocator& f, MempoolId pool) { f.alloc->release_pool(pool); },
           "What graph reset/destruction does: drops one use of the pool.")
      .def_prop_ro("capture_underway", [](FakeAllocator& f) { return f.alloc->capture_underway(); })
      .def("empty_cache", [](FakeAllocator& f) { f.alloc->empty_cache(); })
      .def("set_memory_fraction", [](FakeAllocator& f, double v) { f.alloc->set_memory_fraction(v); })
      .def("memory_stats", [](FakeAllocator& f) { return stats_dict(f.alloc->stats()); })
      .def("reset_peak_memory_stats", [](FakeAllocator& f) { f.alloc->reset_peak_stats(); })
      .def("memory_snapshot", [](FakeAllocator& f) { return snapshot_list(f.alloc->snapshot(), 0); })
      .def("record_memory_history", [](FakeAllocator& f, nb::handle enabled, nb::handle context,
                                       const std::string& stacks, size_t max_entries, bool clear) {
        auto calls = f.context_calls;
        f.alloc->record_history(history_config(enabled, context, stacks, max_entries, clear, [calls] {
          ++*calls;
          return python_context();
        }));
      }, nb::arg("enabled").none() = "all", nb::arg("context").none() = "all", nb::arg("stacks") = "python",
         nb::arg("max_entries") = SIZE_MAX, nb::arg("clear_history") = false)
      .def("snapshot", [](FakeAllocator& f) {  // torch's _snapshot() layout, device 0
        nb::dict d;
        d["segments"] = snapshot_list(f.alloc->snapshot(), 0);
        nb::list traces;
        traces.append(trace_list(f.alloc->trace()));
        d["device_traces"] = traces;
        return d;
      })
      .def_prop_ro("context_calls", [](FakeAllocator& f) { return *f.context_calls; },
                   "How often the allocator asked its recorder for a stack (0 while history is off).")
      .def_prop_ro("outstanding_events", [](FakeAllocator& f) { return f.backend->outstanding_events(); })
      .def_prop_ro("device_bytes", [](FakeAllocator& f) { return f.backend->device_bytes(); })
      .def("write", [](FakeAllocator&, uintptr_t p, size_t n, uint8_t v) { std::memset(reinterpret_cast<void*>(p), v, n); })
      .def("check", [](FakeAllocator&, uintptr_t p, size_t n, uint8_t v) {
        const auto* q = reinterpret_cast<const uint8_t*>(p);
        for (size_t i = 0; i < n; ++i)
          if (q[i] != v) return false;
        return true;
      }, "Whether every byte of [p, p+n) still holds v (the fuzzer's block-id check).");
  bind_pinned(m);
}

}  // namespace vt::py
