// Pinned host memory from Python (Note [Pinned host memory]): Tensor.pin_memory()/is_pinned(), the host
// allocator's statistics, and a test-only host allocator over a fake device (_FakeHostAllocator) so the
// caching policy is tested on machines without a GPU.
#include <nanobind/stl/pair.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <numeric>
#include <set>

#include "common.h"
#include "memory_history.h"
#include "vt/core/ops.h"
#include "vt/cuda/memory.h"

namespace vt::py {

namespace {

using namespace vt::cuda;

// Whether t's elements fill their span exactly once in some dimension order (a permuted contiguous tensor):
// such a tensor is pinned with its strides kept, as torch does.
bool non_overlapping_dense(const Tensor& t) {
  std::vector<int64_t> dims(size_t(t.dim()));
  std::iota(dims.begin(), dims.end(), 0);
  std::sort(dims.begin(), dims.end(), [&](int64_t a, int64_t b) { return t.stride(a) < t.stride(b); });
  int64_t expected = 1;
  for (int64_t d : dims) {
    if (t.size(d) == 1) continue;
    if (t.stride(d) != expected) return false;
    expected *= t.size(d);
  }
  return true;
}

bool is_pinned(const Tensor& t) {
  return t.device().is_cpu() && host_memory_kind(t.storage()->data(), true) != HostMemory::Pageable;
}

nb::object pin_memory(nb::handle self, nb::handle device) {
  const Tensor& t = nb::cast<const Tensor&>(self);
  VT_CHECK(t.device().is_cpu(), "cannot pin '", t.device().str(), "' memory: only CPU tensors can be pinned");
  if (is_pinned(t)) return nb::borrow(self);  // as torch: already page-locked, nothing to do
  Tensor out;
  if (non_overlapping_dense(t) && t.numel() > 0) {
    out = Tensor(std::make_shared<TensorImpl>(allocate_pinned_storage(size_t(t.nbytes())), t.dtype(), t.sizes(),
                                              t.strides(), 0));
  } else {
    out = empty_pinned(t.sizes(), t.dtype());
  }
  {
    MaybeReleaseGil release(is_big(t));
    ops::copy_(out, t);
  }
  return nb::cast(out);
}

nb::dict host_stats_dict(const HostStats& s) {
  nb::dict d;
  stat_entries(d, "allocations", s.allocations);
  stat_entries(d, "allocated_bytes", s.allocated_bytes);
  stat_entries(d, "active_requests", s.active_requests);
  stat_entries(d, "active_bytes", s.active_bytes);
  d["num_host_alloc"] = s.num_host_alloc;
  d["num_host_free"] = s.num_host_free;
  d["num_ooms"] = s.num_ooms;
  d["pending_frees"] = s.pending_frees;
  return d;
}

// Page-locked memory that is host memory, and events that complete only when the test says so. A simulated
// capture makes every call CUDA forbids during one (event record/query/destroy, cudaFreeHost) raise.
class FakeHostBackend : public HostBackend {
 public:
  explicit FakeHostBackend(size_t capacity) : capacity_(capacity) {}
  ~FakeHostBackend() override {
    for (auto& [p, n] : live_) std::free(p);
  }
  void* malloc(size_t bytes) override {
    if (used_ + bytes > capacity_) return nullptr;
    void* p = std::aligned_alloc(4096, bytes);
    if (p) live_[p] = bytes, used_ += bytes;
    return p;
  }
  void free(void* p) override {
    forbid_during_capture("cudaFreeHost");
    auto it = live_.find(p);
    VT_INTERNAL_ASSERT(it != live_.end(), "fake host backend: unknown free");
    used_ -= it->second;
    live_.erase(it);
    std::free(p);
  }
  EventId record_event(int device, StreamId stream) override {
    forbid_during_capture("cudaEventRecord");
    EventId e = next_++;
    events_[e] = {device, stream};
    return e;
  }
  bool event_done(EventId e) override {
    forbid_during_capture("cudaEventQuery");
    return done_.count(e) > 0;
  }
  void event_destroy(EventId e) override {
    forbid_during_capture("cudaEventDestroy");
    events_.erase(e);
    done_.erase(e);
  }
  bool capture_underway() override { return capturing_; }

  void complete(int device, StreamId stream) {
    for (auto& [e, use] : events_)
      if (use == std::pair<int, StreamId>{device, stream}) done_.insert(e);
  }
  bool capturing_ = false;
  size_t outstanding_events() const { return events_.size(); }
  size_t host_bytes() const { return used_; }

 private:
  void forbid_during_capture(const char* call) const {
    VT_CHECK(!capturing_, "fake device: ", call, " while a stream capture is underway would invalidate it");
  }
  size_t capacity_, used_ = 0;
  std::map<void*, size_t> live_;
  std::map<EventId, std::pair<int, StreamId>> events_;
  std::set<EventId> done_;
  EventId next_ = 1;
};

struct FakeHostAllocator {
  FakeHostBackend* backend;
  std::unique_ptr<CachingHostAllocator> alloc;
  explicit FakeHostAllocator(size_t capacity) {
    auto b = std::make_unique<FakeHostBackend>(capacity);
    backend = b.get();
    alloc = std::make_unique<CachingHostAllocator>(std::move(b));
  }
  ~FakeHostAllocator() { backend->capturing_ = false; }
};

}  // namespace

void bind_pinned(nb::module_& m) {
  nb::handle tensor_cls = nb::type<Tensor>();
  nb::cpp_function_def(&pin_memory, nb::scope(tensor_cls), nb::name("pin_memory"), nb::is_method(),
                       nb::arg("device") = nb::none(),
                       "A copy of this CPU tensor in page-locked memory (self if it is pinned already).");
  nb::cpp_function_def([](const Tensor& t, nb::handle) { return is_pinned(t); }, nb::scope(tensor_cls),
                       nb::name("is_pinned"), nb::is_method(), nb::arg("device") = nb::none(),
                       "Whether this tensor lives in page-locked host memory.");
  m.def("host_memory_stats", [] {
    CachingHostAllocator* h = host_allocator_if_created();
    return host_stats_dict(h ? h->stats() : HostStats{});
  });
  m.def("host_empty_cache", [] {
    if (CachingHostAllocator* h = host_allocator_if_created()) h->empty_cache();
  });
  m.def("reset_peak_host_memory_stats", [] {
    if (CachingHostAllocator* h = host_allocator_if_created()) h->reset_peak_stats();
  });
  nb::class_<FakeHostAllocator>(m, "_FakeHostAllocator")
      .def(nb::init<size_t>(), nb::arg("capacity"))
      .def("allocate", [](FakeHostAllocator& f, size_t n) { return reinterpret_cast<uintptr_t>(f.alloc->allocate(n)); })
      .def("free", [](FakeHostAllocator& f, uintptr_t p) { f.alloc->free(reinterpret_cast<void*>(p)); })
      .def("record_use", [](FakeHostAllocator& f, uintptr_t p, int device, uintptr_t stream) {
        return f.alloc->record_use(reinterpret_cast<void*>(p), device, stream);
      }, nb::arg("ptr"), nb::arg("device"), nb::arg("stream"), "What an asynchronous copy tells the allocator.")
      .def("owns", [](FakeHostAllocator& f, uintptr_t p) { return f.alloc->owns(reinterpret_cast<void*>(p)); })
      .def("complete", [](FakeHostAllocator& f, int device, uintptr_t s) { f.backend->complete(device, s); },
           "Marks every event recorded on the stream so far as done.")
      .def("set_capturing", [](FakeHostAllocator& f, bool on) { f.backend->capturing_ = on; })
      .def("empty_cache", [](FakeHostAllocator& f) { f.alloc->empty_cache(); })
      .def("memory_stats", [](FakeHostAllocator& f) { return host_stats_dict(f.alloc->stats()); })
      .def("reset_peak_memory_stats", [](FakeHostAllocator& f) { f.alloc->reset_peak_stats(); })
      .def_prop_ro("outstanding_events", [](FakeHostAllocator& f) { return f.backend->outstanding_events(); })
      .def_prop_ro("host_bytes", [](FakeHostAllocator& f) { return f.backend->host_bytes(); })
      .def_static("round_size", &CachingHostAllocator::round_size);
}

}  // namespace vt::py
