// Policy of the stream-ordered caching allocator: see Note [Stream-ordered free] in caching_allocator.h.
// Pure C++: device calls go through MemoryBackend, so this file is tested without a GPU. Graph-private pools
// (Note [Graph-private pool]) live in caching_allocator_pools.cpp.
#include "vt/cuda/caching_allocator.h"

#include <algorithm>
#include <cstdlib>
#include <sstream>

#include "caching_allocator_impl.h"
#include "vt/core/error.h"

namespace vt::cuda {

namespace {
constexpr size_t kMinBlock = 512;              // every block is a multiple of this
constexpr size_t kSmallRequest = 1 << 20;      // requests up to 1 MiB use the small pool
constexpr size_t kSmallSegment = 2 << 20;      // small segments are 2 MiB
constexpr size_t kMidRequest = 10 << 20;       // large requests under 10 MiB share 20 MiB segments
constexpr size_t kMidSegment = 20 << 20;
constexpr size_t kRoundLarge = 2 << 20;

size_t round_size(size_t n) { return n < kMinBlock ? kMinBlock : (n + kMinBlock - 1) / kMinBlock * kMinBlock; }
PoolKind pool_for(size_t size) { return size <= kSmallRequest ? PoolKind::Small : PoolKind::Large; }
size_t segment_size(PoolKind pool, size_t size) {
  if (pool == PoolKind::Small) return kSmallSegment;
  if (size < kMidRequest) return kMidSegment;
  return (size + kRoundLarge - 1) / kRoundLarge * kRoundLarge;
}

std::string bytes_str(size_t n) {
  std::ostringstream os;
  os.precision(2);
  os << std::fixed;
  if (n >= (size_t(1) << 30)) os << double(n) / double(1 << 30) << " GiB";
  else if (n >= (size_t(1) << 20)) os << double(n) / double(1 << 20) << " MiB";
  else if (n >= 1024) os << double(n) / 1024.0 << " KiB";
  else os << n << " bytes";
  return os.str();
}
}  // namespace

bool CachingAllocator::BlockLess::operator()(const Block* a, const Block* b) const {
  if (a->stream != b->stream) return a->stream < b->stream;
  if (a->size != b->size) return a->size < b->size;
  return a->ptr < b->ptr;
}

AllocatorConfig parse_alloc_conf(const std::string& text) {
  AllocatorConfig c;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find(',', pos);
    if (end == std::string::npos) end = text.size();
    std::string item = text.substr(pos, end - pos);
    pos = end + 1;
    if (item.empty()) continue;
    size_t colon = item.find(':');
    VT_CHECK_VALUE(colon != std::string::npos, "VT_CUDA_ALLOC_CONF: expected key:value, got '", item, "'");
    std::string key = item.substr(0, colon), value = item.substr(colon + 1);
    auto number = [&]() {
      char* e = nullptr;
      double v = std::strtod(value.c_str(), &e);
      VT_CHECK_VALUE(!value.empty() && e && *e == '\0', "VT_CUDA_ALLOC_CONF: key '", key, "' needs a number, got '",
                     value, "'");
      return v;
    };
    if (key == "backend") {
      VT_CHECK_VALUE(value == "native" || value == "passthrough", "VT_CUDA_ALLOC_CONF: backend must be native or ",
                     "passthrough, got '", value, "'");
      c.passthrough = value == "passthrough";
    } else if (key == "max_split_size_mb") {
      double v = number();
      VT_CHECK_VALUE(v > 1, "VT_CUDA_ALLOC_CONF: max_split_size_mb must be above 1, got ", value);
      c.max_split_size = size_t(v * (1 << 20));
    } else if (key == "memory_fraction") {
      double v = number();
      VT_CHECK_VALUE(v > 0 && v <= 1, "VT_CUDA_ALLOC_CONF: memory_fraction must be in (0, 1], got ", value);
      c.memory_fraction = v;
    } else if (key == "record_history") {
      VT_CHECK_VALUE(value == "true" || value == "false", "VT_CUDA_ALLOC_CONF: record_history must be true or ",
                     "false, got '", value, "'");
      c.record_history = value == "true";
    } else {
      VT_FAIL_KIND(Value, "VT_CUDA_ALLOC_CONF: unknown key '", key,
                   "' (known: backend, max_split_size_mb, memory_fraction, record_history)");
    }
  }
  return c;
}

CachingAllocator::CachingAllocator(std::unique_ptr<MemoryBackend> backend, AllocatorConfig config, int device)
    : backend_(std::move(backend)), config_(config), device_(device) {}

CachingAllocator::~CachingAllocator() {
  // Return cached memory; blocks still allocated belong to tensors that outlive us (process exit).
  std::lock_guard<std::mutex> g(mu_);
  if (captures_.empty()) {  // during a capture, freeing would invalidate it: leave the memory to process exit
    process_events(true);
    release_segments(0, true);
  }
}

void CachingAllocator::account_block(Block* b, int sign) {
  for (int i : {0, 1 + int(b->pool)}) {
    if (sign > 0) {
      stats_.allocated_bytes[i].add(int64_t(b->size));
      stats_.requested_bytes[i].add(int64_t(b->requested));
      stats_.allocation[i].add(1);
    } else {
      stats_.allocated_bytes[i].sub(int64_t(b->size));
      stats_.requested_bytes[i].sub(int64_t(b->requested));
      stats_.allocation[i].sub(1);
    }
  }
}

CachingAllocator::FreeList& CachingAllocator::free_list(PrivatePool* owner, PoolKind pool) {
  return owner ? owner->free[int(pool)] : free_[int(pool)];
}

CachingAllocator::Block* CachingAllocator::find_free(PrivatePool* owner, PoolKind pool, StreamId stream,
                                                     size_t size) {
  Block key;
  key.stream = stream;
  key.size = size;
  auto& set = free_list(owner, pool);
  auto it = set.lower_bound(&key);
  if (it == set.end() || (*it)->stream != stream) return nullptr;
  Block* b = *it;
  // An oversized (unsplittable) block must not serve a request it would waste.
  if (size < config_.max_split_size && b->size >= config_.max_split_size) return nullptr;
  set.erase(it);
  b->cached = false;
  return b;
}

CachingAllocator::Block* CachingAllocator::new_segment(PrivatePool* owner, PoolKind pool, StreamId stream,
                                                       size_t size, const ContextPtr& ctx) {
  size_t bytes = segment_size(pool, size);
  double cap = config_.memory_fraction * double(backend_->capacity());
  if (double(stats_.reserved_bytes[0].current) + double(bytes) > cap) return nullptr;
  void* p = backend_->malloc(bytes);
  if (!p) return nullptr;
  auto seg = std::make_unique<Segment>(Segment{static_cast<char*>(p), bytes, pool, stream, segment_serial_++});
  seg->owner = owner;
  seg->context = ctx;
  trace_event(TraceAction::SegmentAlloc, uintptr_t(p), bytes, stream, owner ? owner->id : kSharedPool, ctx);
  Block* b = new Block;
  b->seg = seg.get();
  b->ptr = seg->base;
  b->size = bytes;
  b->stream = stream;
  b->pool = pool;
  seg->head = b;
  segments_.push_back(std::move(seg));
  for (int i : {0, 1 + int(pool)}) {
    stats_.reserved_bytes[i].add(int64_t(bytes));
    stats_.segment[i].add(1);
  }
  ++stats_.num_device_alloc;
  return b;
}

CachingAllocator::Block* CachingAllocator::split(Block* b, size_t size) {
  size_t rest = b->size - size;
  bool worth = b->pool == PoolKind::Small ? rest >= kMinBlock : rest > kSmallRequest;
  if (!worth || b->size > config_.max_split_size) return b;
  Block* tail = new Block;
  tail->seg = b->seg;
  tail->ptr = b->ptr + size;
  tail->size = rest;
  tail->stream = b->stream;
  tail->pool = b->pool;
  tail->prev = b;
  tail->next = b->next;
  if (b->next) b->next->prev = tail;
  b->next = tail;
  b->size = size;
  tail->cached = true;
  free_list(b->seg->owner, tail->pool).insert(tail);
  return b;
}

void* CachingAllocator::allocate(size_t bytes, StreamId stream) {
  ContextPtr ctx = gather_context(ContextMode::State);  // Note [Allocation history]: before the lock
  std::lock_guard<std::mutex> g(mu_);
  VT_CHECK_KIND(OutOfMemory, bytes <= backend_->capacity(), "CUDA out of memory. Tried to allocate ",
                bytes_str(bytes), " on device ", device_, ", more than its capacity of ",
                bytes_str(backend_->capacity()));
  size_t size = config_.passthrough ? bytes : round_size(bytes);
  PoolKind pool = pool_for(size);
  if (config_.passthrough) {  // every allocation is its own backend allocation
    // A multiple of 4 bytes, as every block of the caching pools is: Note [Atomic word padding].
    void* p = backend_->malloc((std::max<size_t>(bytes, 1) + 3) & ~size_t(3));
    if (!p) {
      ++stats_.num_ooms;
      raise_oom(bytes, stream, ctx);
    }
    auto seg = std::make_unique<Segment>(Segment{static_cast<char*>(p), size, pool, stream, segment_serial_++});
    Block* b = new Block;
    b->seg = seg.get();
    b->ptr = static_cast<char*>(p);
    b->size = size;
    b->requested = bytes;
    b->stream = stream;
    b->pool = pool;
    b->allocated = true;
    b->context = ctx;
    seg->head = b;
    seg->context = ctx;
    segments_.push_back(std::move(seg));
    trace_event(TraceAction::SegmentAlloc, uintptr_t(p), size, stream, kSharedPool, ctx);
    trace_event(TraceAction::Alloc, uintptr_t(p), size, stream, kSharedPool, ctx);
    for (int i : {0, 1 + int(pool)}) stats_.reserved_bytes[i].add(int64_t(size)), stats_.segment[i].add(1);
    ++stats_.num_device_alloc;
    account_block(b, +1);
    for (int i : {0, 1 + int(pool)}) stats_.active[i].add(1), stats_.active_bytes[i].add(int64_t(size));
    active_[p] = b;
    return p;
  }
  process_events(false);  // a no-op while a capture is underway (Note [Graph-private pool])
  PrivatePool* owner = capture_target(stream);
  Block* b = find_free(owner, pool, stream, size);
  if (!b) b = new_segment(owner, pool, stream, size, ctx);
  if (!b && captures_.empty()) {  // the GC ladder, one rung at a time; it waits and frees, so never in a capture
    ++stats_.num_alloc_retries;
    process_events(true);
    b = find_free(owner, pool, stream, size);
    if (!b && release_segments(segment_size(pool, size), false)) b = new_segment(owner, pool, stream, size, ctx);
    if (!b) {
      release_segments(0, true);
      b = new_segment(owner, pool, stream, size, ctx);
    }
  }
  if (!b) {
    ++stats_.num_ooms;
    raise_oom(bytes, stream, ctx);
  }
  b = split(b, size);
  b->allocated = true;
  b->requested = bytes;
  b->context = std::move(ctx);
  trace_event(TraceAction::Alloc, uintptr_t(b->ptr), b->size, stream, pool_of(b->seg), b->context);
  account_block(b, +1);
  for (int i : {0, 1 + int(pool)}) stats_.active[i].add(1), stats_.active_bytes[i].add(int64_t(b->size));
  active_[b->ptr] = b;
  return b->ptr;
}

void CachingAllocator::free(void* p) {
  if (!p) return;
  ContextPtr ctx = gather_context(ContextMode::All);  // Note [Allocation history]: before the lock
  std::lock_guard<std::mutex> g(mu_);
  auto it = active_.find(p);
  VT_CHECK(it != active_.end(), "caching allocator: free of a pointer it did not allocate (or a double free): ", p);
  Block* b = it->second;
  active_.erase(it);
  b->allocated = false;
  account_block(b, -1);
  if (history_ == HistoryMode::All) {
    trace_event(TraceAction::FreeRequested, uintptr_t(b->ptr), b->size, b->stream, pool_of(b->seg), std::move(ctx));
    b->free_traced = true;
  }
  if (config_.passthrough) {
    Segment* seg = b->seg;
    if (b->free_traced)
      trace_event(TraceAction::FreeCompleted, uintptr_t(b->ptr), b->size, b->stream, kSharedPool, b->context);
    for (int i : {0, 1 + int(b->pool)}) stats_.active[i].sub(1), stats_.active_bytes[i].sub(int64_t(b->size));
    delete b;
    seg->head = nullptr;
    release_segment(seg);
    return;
  }
  bool other_streams = std::any_of(b->used_on.begin(), b->used_on.end(),
                                  [&](const auto& u) { return u != std::pair(device_, b->stream); });
  if (!other_streams) {
    b->used_on.clear();
    release_to_free_list(b);
  } else if (!captures_.empty()) {
    deferred_frees_.push_back(b);  // recording an event now could invalidate the capture
  } else {
    insert_events(b);
  }
}

void CachingAllocator::insert_events(Block* b) {
  for (const auto& [device, s] : b->used_on) {
    if (device == device_ && s == b->stream) continue;
    pending_.emplace_back(backend_->record_event(device, s), b);
    ++b->pending_events;
  }
  b->used_on.clear();
  if (b->pending_events == 0) release_to_free_list(b);
}

void CachingAllocator::record_stream(void* p, StreamId stream, int stream_device) {
  VT_CHECK(try_record_stream(p, stream, stream_device), "record_stream: pointer ", p,
           " is not an allocation of this allocator");
}

bool CachingAllocator::try_record_stream(void* p, StreamId stream, int stream_device) {
  std::pair<int, StreamId> use{stream_device < 0 ? device_ : stream_device, stream};
  std::lock_guard<std::mutex> g(mu_);
  auto it = active_.find(p);
  if (it == active_.end()) return false;
  auto& used = it->second->used_on;
  if (std::find(used.begin(), used.end(), use) == used.end()) used.push_back(use);
  return true;
}

void CachingAllocator::release_to_free_list(Block* b) {
  if (b->free_traced) {
    trace_event(TraceAction::FreeCompleted, uintptr_t(b->ptr), b->size, b->stream, pool_of(b->seg), b->context);
    b->free_traced = false;
  }
  b->context.reset();
  for (int i : {0, 1 + int(b->pool)}) stats_.active[i].sub(1), stats_.active_bytes[i].sub(int64_t(b->size));
  auto& set = free_list(b->seg->owner, b->pool);
  // Coalesce with free neighbours (a segment has one stream and one owner, so they share b's list).
  if (b->prev && b->prev->is_free()) {
    Block* p = b->prev;
    set.erase(p);
    p->size += b->size;
    p->next = b->next;
    if (b->next) b->next->prev = p;
    delete b;
    b = p;
  }
  if (b->next && b->next->is_free()) {
    Block* n = b->next;
    set.erase(n);
    b->size += n->size;
    b->next = n->next;
    if (n->next) n->next->prev = b;
    delete n;
  }
  b->cached = true;
  set.insert(b);
}

void CachingAllocator::process_events(bool wait) {
  if (!captures_.empty()) return;  // event calls could invalidate a capture (Note [Graph-private pool])
  if (!deferred_frees_.empty()) {  // before hand-overs: a deferred block of a dead pool then waits for both
    std::vector<Block*> deferred;
    deferred.swap(deferred_frees_);
    for (Block* b : deferred) insert_events(b);
  }
  if (!freeable_pools_.empty()) {
    std::vector<MempoolId> freeable;
    freeable.swap(freeable_pools_);
    for (MempoolId id : freeable) {
      auto it = pools_.find(id);
      if (it != pools_.end() && it->second->use_count == 0) hand_over(it->second.get());
    }
  }
  if (pending_.empty()) return;
  std::vector<std::pair<EventId, Block*>> still;
  std::vector<Block*> ready;
  for (auto& [e, b] : pending_) {
    if (wait) backend_->event_wait(e);
    if (wait || backend_->event_done(e)) {
      backend_->event_destroy(e);
      if (--b->pending_events == 0) ready.push_back(b);
    } else {
      still.emplace_back(e, b);
    }
  }
  pending_.swap(still);
  for (Block* b : ready) release_to_free_list(b);
}

bool CachingAllocator::release_segments(size_t needed, bool all) {
  // Fully free shared segments, oldest first (a live private pool keeps its memory for its graphs).
  std::vector<Segment*> idle;
  for (auto& s : segments_)
    if (!s->owner && s->head && s->head->is_free() && !s->head->next) idle.push_back(s.get());
  std::sort(idle.begin(), idle.end(), [](Segment* a, Segment* b) { return a->serial < b->serial; });
  size_t freed = 0;
  for (Segment* s : idle) {
    if (!all && freed >= needed) break;
    freed += s->size;
    free_[int(s->pool)].erase(s->head);
    delete s->head;
    s->head = nullptr;
    release_segment(s);
  }
  return freed > 0 && (all || freed >= needed);
}

void CachingAllocator::release_segment(Segment* s) {
  backend_->free(s->base);
  trace_event(TraceAction::SegmentFree, uintptr_t(s->base), s->size, s->stream, pool_of(s), nullptr);
  for (int i : {0, 1 + int(s->pool)}) stats_.reserved_bytes[i].sub(int64_t(s->size)), stats_.segment[i].sub(1);
  ++stats_.num_device_free;
  segments_.erase(std::find_if(segments_.begin(), segments_.end(), [s](auto& p) { return p.get() == s; }));
}

void CachingAllocator::raise_oom(size_t bytes, StreamId stream, const ContextPtr& ctx) {
  size_t cap = backend_->capacity(), free_mem = backend_->free_memory();
  trace_event(TraceAction::Oom, 0, bytes, stream, kSharedPool, ctx, free_mem);
  int64_t alloc = stats_.allocated_bytes[0].current, reserved = stats_.reserved_bytes[0].current;
  std::string hint = config_.memory_fraction < 1.0
                         ? " The memory fraction cap (" + std::to_string(config_.memory_fraction) + ") is in force."
                         : "";
  if (!captures_.empty())
    hint += " A CUDA graph capture is underway: cached memory is not released during a capture (freeing or "
            "waiting would invalidate it); capture with less memory in use, or call empty_cache() before capturing.";
  else if (reserved - alloc > int64_t(bytes))
    hint += " Reserved but unallocated memory is large: fragmentation; try VT_CUDA_ALLOC_CONF=max_split_size_mb:<N>.";
  VT_FAIL_KIND(OutOfMemory, "CUDA out of memory. Tried to allocate ", bytes_str(bytes), " on device ", device_,
               ". Capacity ", bytes_str(cap), ", ", bytes_str(free_mem), " free; vibetensor has ",
               bytes_str(size_t(alloc)), " allocated and ", bytes_str(size_t(reserved)),
               " reserved (cached) in total.", hint);
}

void CachingAllocator::empty_cache() {
  std::lock_guard<std::mutex> g(mu_);
  if (!captures_.empty()) return;  // cudaFree would invalidate the capture; nothing is released meanwhile
  process_events(false);
  release_segments(0, true);
}

void CachingAllocator::set_memory_fraction(double f) {
  VT_CHECK_VALUE(f > 0 && f <= 1, "set_per_process_memory_fraction: fraction must be in (0, 1], got ", f);
  std::lock_guard<std::mutex> g(mu_);
  config_.memory_fraction = f;
}

Stats CachingAllocator::stats() {
  std::lock_guard<std::mutex> g(mu_);
  return stats_;
}

void CachingAllocator::reset_peak_stats() {
  std::lock_guard<std::mutex> g(mu_);
  auto reset = [](Stat* s) {
    for (int i = 0; i < 3; ++i) s[i].peak = s[i].current;
  };
  for (Stat* s : {stats_.allocated_bytes, stats_.reserved_bytes, stats_.active_bytes, stats_.requested_bytes,
                  stats_.allocation, stats_.segment, stats_.active})
    reset(s);
}

std::vector<SegmentInfo> CachingAllocator::snapshot() {
  std::lock_guard<std::mutex> g(mu_);
  std::vector<SegmentInfo> out;
  for (auto& s : segments_) {
    SegmentInfo si{reinterpret_cast<uintptr_t>(s->base), s->size, 0, 0, 0, s->stream,
                   s->pool == PoolKind::Small ? "small" : "large", pool_of(s.get()), {}, s->context};
    for (Block* b = s->head; b; b = b->next) {
      // Freed but not yet reusable (waiting for events, or deferred during a capture): "active_pending_free".
      std::string state = b->allocated ? "active_allocated" : b->is_free() ? "inactive" : "active_pending_free";
      if (b->allocated) si.allocated_size += b->size, si.requested_size += b->requested;
      if (!b->is_free()) si.active_size += b->size;
      si.blocks.push_back({reinterpret_cast<uintptr_t>(b->ptr), b->size, b->requested, state, b->context});
    }
    out.push_back(std::move(si));
  }
  return out;
}

std::vector<std::pair<std::string, int64_t>> stats_entries(const Stats& s) {
  std::vector<std::pair<std::string, int64_t>> out;
  const char* pools[] = {"all", "small_pool", "large_pool"};
  auto put = [&](const char* name, const Stat* st) {
    for (int i = 0; i < 3; ++i) {
      const std::string p = std::string(name) + "." + pools[i];
      out.emplace_back(p + ".current", st[i].current);
      out.emplace_back(p + ".peak", st[i].peak);
      out.emplace_back(p + ".allocated", st[i].allocated);
      out.emplace_back(p + ".freed", st[i].freed);
    }
  };
  put("allocated_bytes", s.allocated_bytes);
  put("reserved_bytes", s.reserved_bytes);
  put("active_bytes", s.active_bytes);
  put("requested_bytes", s.requested_bytes);
  put("allocation", s.allocation);
  put("segment", s.segment);
  put("active", s.active);
  out.emplace_back("num_alloc_retries", s.num_alloc_retries);
  out.emplace_back("num_ooms", s.num_ooms);
  out.emplace_back("num_device_alloc", s.num_device_alloc);
  out.emplace_back("num_device_free", s.num_device_free);
  out.emplace_back("num_sync_all_streams", s.num_sync_all_streams);
  return out;
}

}  // namespace vt::cuda
