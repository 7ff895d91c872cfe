#pragma once
// The stream-ordered caching allocator for device memory.
//
// Note [Stream-ordered free]
// Device memory is obtained from the backend (cudaMalloc) in segments and handed out as blocks. A block
// belongs to the stream it was allocated on: when freed it goes straight back to that stream's free list,
// because later work on the same stream is ordered after every earlier use. It becomes available to other
// streams only through record_stream(): a block used on stream T is freed with an event recorded on T, and
// stays "pending" until that event completes. No allocation or free synchronizes the host with the device.
//
// Segments: requests of at most 1 MiB come from 2 MiB "small" segments; larger ones from "large" segments
// (20 MiB for requests under 10 MiB, else the request rounded up to 2 MiB). Blocks are split on allocation
// and coalesced with free neighbours of the same stream on free. Blocks larger than max_split_size are never
// split (a huge cached block should not serve a tiny request).
//
// Under memory pressure the GC ladder runs, one rung at a time, retrying the allocation after each:
// (1) drain pending frees (wait for their events), (2) release fully free segments oldest first until the
// request fits, (3) release every free segment (empty_cache), (4) raise OutOfMemoryError naming the request,
// the device capacity, free memory, and allocated/reserved bytes, with a hint. A memory-fraction cap makes
// reserved bytes above fraction x capacity count as pressure too.
//
// What it deliberately does not handle: expandable segments, IPC. One mutex per device; the backend interface
// exists so the policy can be tested on machines without a GPU (tests drive it with a fake backend).
//
// Note [Graph-private pool]
// A CUDA graph bakes the addresses its kernels touch into the graph, so that memory must stay the graph's for
// as long as the graph may be replayed. While a stream captures into pool P (begin_allocate_to_pool, then
// attach_capture with CUDA's capture id), allocations on any stream of that capture come from P's own free
// lists and segments, never from the shared ones; blocks freed during or after the capture go back to P, and
// only captures into P reuse them (graphs sharing P must be replayed in the order they were captured, as in
// torch). P is refcounted: each capture into it takes a use, which the graph keeps until reset/destruction
// (release_pool). When the last use goes, P's segments are handed to the shared cache; free blocks wait, like
// record_stream, for events on every stream the graph was replayed on (record_pool_use), and live blocks (static
// outputs still held) get those streams as uses. From then on empty_cache and the GC ladder can free them.
// While any capture is underway the allocator makes no call that could invalidate it: no event record, query
// or wait and no cudaFree. Frees that need cross-stream events are deferred (their events are recorded once no
// capture is underway), pending events are not polled, the GC ladder stops after the pool search (an OOM then
// says why), empty_cache releases nothing, and pool hand-over waits. cudaMalloc stays legal (the CUDA backend
// makes it in relaxed capture mode; replays never re-run it). Pass-through mode cannot capture: it would free
// memory with cudaFree while the graph still uses it.
//
// Note [Allocation history]
// Off by default; record_history() turns it on per allocator, as torch's _record_memory_history. It keeps (a) a
// context per live block: the call stack that allocated it, shown by snapshot(), and (b) a trace: a ring of the
// last max_entries actions (alloc, free_requested, free_completed, segment_alloc, segment_free, oom), each with
// address, size, stream, pool, time and a context where asked for. The allocator stays free of Python: a
// context comes from a ContextRecorder installed by whoever turns history on (the bindings install one that
// walks the Python frames). The recorder runs before the allocator's mutex is taken (it may take the GIL, and a
// thread holding the GIL may be waiting for that mutex). With history off, a call pays one relaxed atomic load.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace vt::cuda {

using StreamId = uintptr_t;  // a cudaStream_t value (0: the default stream)
using EventId = uintptr_t;
// A private pool's id, as torch's (graph-owned: {serial, 0}; from graph_pool_handle(): {0, serial}).
using MempoolId = std::pair<uint64_t, uint64_t>;
constexpr MempoolId kSharedPool{0, 0};  // "no private pool": the shared free lists

// What the allocator needs from the device. The CUDA implementation lives in caching_allocator.cu.
class MemoryBackend {
 public:
  virtual ~MemoryBackend() = default;
  virtual void* malloc(size_t bytes) = 0;  // nullptr on out-of-memory
  virtual void free(void* p) = 0;
  // An event recorded on `stream` of logical `device` (made on that device: a use may come from another GPU).
  virtual EventId record_event(int device, StreamId stream) = 0;
  virtual bool event_done(EventId e) = 0;
  virtual void event_wait(EventId e) = 0;  // host waits (only on the GC ladder)
  virtual void event_destroy(EventId e) = 0;
  virtual size_t capacity() = 0;
  virtual size_t free_memory() = 0;
  // CUDA's id of the capture `stream` is taking part in, or 0 when it is not actively capturing.
  virtual uint64_t capture_id(StreamId stream) = 0;
};

struct AllocatorConfig {
  bool passthrough = false;            // backend malloc/free per allocation (for compute-sanitizer)
  size_t max_split_size = SIZE_MAX;    // blocks above this are never split
  double memory_fraction = 1.0;        // cap on reserved bytes as a fraction of capacity
  bool record_history = false;
};
// Parses "key:value,key:value" (keys: backend=native|passthrough, max_split_size_mb, memory_fraction,
// record_history=true|false); throws ValueError naming the bad key or value.
AllocatorConfig parse_alloc_conf(const std::string& text);

struct Stat {
  int64_t current = 0, peak = 0, allocated = 0, freed = 0;
  void add(int64_t n) {
    current += n;
    allocated += n;
    if (current > peak) peak = current;
  }
  void sub(int64_t n) {
    current -= n;
    freed += n;
  }
};

enum class PoolKind : int { Small = 0, Large = 1 };

struct Stats {
  // Indexed by [0] all, [1] small pool, [2] large pool, as torch's "all", "small_pool", "large_pool".
  Stat allocated_bytes[3], reserved_bytes[3], active_bytes[3], requested_bytes[3];
  Stat allocation[3], segment[3], active[3], inactive_split[3], inactive_split_bytes[3];
  int64_t num_alloc_retries = 0, num_ooms = 0, num_device_alloc = 0, num_device_free = 0, num_sync_all_streams = 0;
};
// The stats under torch.cuda.memory_stats()'s flat keys ("allocated_bytes.all.current", ..., "num_ooms"), in
// one order for every frontend (Python, Node.js).
std::vector<std::pair<std::string, int64_t>> stats_entries(const Stats& s);

// Allocation history (Note [Allocation history]).
struct Frame {
  std::string filename, name;
  int line = 0;
};
struct Context {
  std::vector<Frame> frames;  // innermost call first, as in torch's snapshots
};
using ContextPtr = std::shared_ptr<const Context>;
using ContextRecorder = std::function<ContextPtr()>;
enum class HistoryMode : uint8_t { Off, State, All };         // torch's enabled: None, "state", "all"
enum class ContextMode : uint8_t { None, State, Alloc, All };  // torch's context: None, "state", "alloc", "all"
struct HistoryConfig {
  HistoryMode enabled = HistoryMode::Off;  // State: contexts of live blocks; All: also the trace
  ContextMode context = ContextMode::None;  // State: at allocation, for blocks; Alloc: also on alloc entries;
                                            // All: also on free_requested entries (the stack of the free)
  size_t max_entries = SIZE_MAX;            // ring size of the trace
  bool clear = false;                       // drop the trace recorded so far (turning history off does too)
  ContextRecorder recorder;                 // required unless context is None
};
enum class TraceAction : uint8_t { Alloc, FreeRequested, FreeCompleted, SegmentAlloc, SegmentFree, Oom };
const char* trace_action_name(TraceAction a);  // torch's names: "alloc", "free_requested", ...
struct TraceEntry {
  TraceAction action;
  uintptr_t addr;  // 0 for oom
  size_t size;     // block or segment bytes; for oom the request
  StreamId stream;
  MempoolId pool;
  int64_t time_us;         // wall clock, microseconds since the epoch
  size_t device_free = 0;  // oom only: free device memory the driver reported
  ContextPtr context;      // may be null
};

struct BlockInfo {
  uintptr_t address;
  size_t size, requested;
  std::string state;   // "active_allocated", "active_pending_free", "inactive"
  ContextPtr context;  // who allocated it, while history records contexts (null otherwise, or when inactive)
};
struct SegmentInfo {
  uintptr_t address;
  size_t total_size, allocated_size, active_size, requested_size;
  StreamId stream;
  std::string segment_type;  // "small" | "large"
  MempoolId pool_id;         // kSharedPool, or the graph-private pool owning the segment
  std::vector<BlockInfo> blocks;
  ContextPtr context;  // the allocation that made the segment (history on)
};

class CachingAllocator {
 public:
  CachingAllocator(std::unique_ptr<MemoryBackend> backend, AllocatorConfig config, int device);
  ~CachingAllocator();
  CachingAllocator(const CachingAllocator&) = delete;

  void* allocate(size_t bytes, StreamId stream);
  void free(void* p);
  // The block holding p will also be used on `stream` of `stream_device` (-1: this allocator's device; another
  // device's stream for cross-device use): its free waits for that stream (Note above).
  void record_stream(void* p, StreamId stream, int stream_device = -1);
  bool try_record_stream(void* p, StreamId stream, int stream_device = -1);  // false (nothing recorded): not ours
  void empty_cache();
  void set_memory_fraction(double f);
  Stats stats();
  void reset_peak_stats();
  std::vector<SegmentInfo> snapshot();
  const AllocatorConfig& config() const { return config_; }
  // Allocation history (Note [Allocation history]); trace() is oldest entry first.
  void record_history(HistoryConfig config);
  std::vector<TraceEntry> trace();

  // Graph-private pools (Note [Graph-private pool]). begin_allocate_to_pool takes a use of `pool` (creating it)
  // and registers a capture before CUDA's capture begins, so nothing illegal is called from then on;
  // attach_capture names CUDA's capture id once it exists; end_allocate_to_pool unregisters the capture (the
  // use stays with the graph); release_pool drops a use.
  void begin_allocate_to_pool(MempoolId pool);
  void attach_capture(MempoolId pool, uint64_t capture_id);
  void end_allocate_to_pool(MempoolId pool);
  void release_pool(MempoolId pool);
  // A graph using `pool` was launched on `stream`: the pool's memory is in use there until that stream passes.
  void record_pool_use(MempoolId pool, StreamId stream);
  bool capture_underway();

 private:
  struct Block;
  struct Segment;
  struct PrivatePool;
  struct BlockLess {
    bool operator()(const Block* a, const Block* b) const;
  };
  using FreeList = std::set<Block*, BlockLess>;
  FreeList& free_list(PrivatePool* owner, PoolKind pool);
  PrivatePool* capture_target(StreamId stream);
  PrivatePool* find_pool(MempoolId id, const char* what);
  Block* find_free(PrivatePool* owner, PoolKind pool, StreamId stream, size_t size);
  Block* new_segment(PrivatePool* owner, PoolKind pool, StreamId stream, size_t size, const ContextPtr& ctx);
  Block* split(Block* b, size_t size);
  void release_to_free_list(Block* b);
  void insert_events(Block* b);
  void hand_over(PrivatePool* p);
  void process_events(bool wait);
  bool release_segments(size_t needed, bool all);
  void release_segment(Segment* s);
  void account_block(Block* b, int sign);
  [[noreturn]] void raise_oom(size_t bytes, StreamId stream, const ContextPtr& ctx);
  ContextPtr gather_context(ContextMode at_least);  // before mu_ is taken
  void trace_event(TraceAction action, uintptr_t addr, size_t size, StreamId stream, MempoolId pool,
                   ContextPtr ctx, size_t device_free = 0);
  MempoolId pool_of(const Segment* s) const;

  std::mutex mu_;
  std::unique_ptr<MemoryBackend> backend_;
  AllocatorConfig config_;
  int device_;
  std::set<Block*, BlockLess> free_[2];
  std::map<void*, Block*> active_;
  std::vector<std::unique_ptr<Segment>> segments_;
  std::vector<std::pair<EventId, Block*>> pending_;
  std::map<MempoolId, std::unique_ptr<PrivatePool>> pools_;
  struct Capture {
    MempoolId pool;
    uint64_t capture_id;  // 0 until attach_capture
  };
  std::vector<Capture> captures_;         // captures underway (Note [Graph-private pool])
  std::vector<Block*> deferred_frees_;    // freed during a capture; their events are recorded after it
  std::vector<MempoolId> freeable_pools_;  // last use dropped during a capture; handed over after it
  uint64_t segment_serial_ = 0;
  Stats stats_;
  // Note [Allocation history]: the mode is read without mu_; the recorder is copied under its own mutex.
  std::atomic<uint8_t> context_mode_{uint8_t(ContextMode::None)};
  std::mutex recorder_mu_;
  ContextRecorder recorder_;
  HistoryMode history_ = HistoryMode::Off;
  std::vector<TraceEntry> trace_;  // a ring once full: trace_next_ is the oldest entry
  size_t trace_next_ = 0, trace_max_ = SIZE_MAX;
};

}  // namespace vt::cuda
