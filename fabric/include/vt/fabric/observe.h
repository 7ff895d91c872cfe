#pragma once
// Fabric observability: counters per ordered device pair and a bounded ring of events.
//
// Note [Counter invariants]
// Every cross-device operation is counted once, on its (compute, remote) pair: one op, the bytes read from the
// remote device, and either a P2P/native hit or a fallback under one Reason. Totals are kept beside the pairs and
// bumped in the same call, so for every counter the sum over pairs equals the total (tests check it). Counters
// are plain integers under one mutex, taken once per call (a collective counts all its pairs in one count_all),
// so a reader never sees a pair counted without its total.
//
// Note [Event ring]
// Events (enqueue, complete, fallback, error; collective and copy starts) go to a ring of fixed capacity; when it
// is full the oldest is overwritten and `dropped` counts it, so memory stays bounded however long a run is. With
// GPU timing on, an op's event carries two CUDA events recorded around its kernels on the compute stream; they are
// resolved to microseconds only when the ring is read (never on the call path).
#include <cuda_runtime.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "vt/fabric/routes.h"

namespace vt::fabric {

struct PairCounters {
  int64_t ops = 0, bytes = 0, hits = 0;
  int64_t fallbacks[int(Reason::kCount)] = {};
};
void count(int compute, int remote, int64_t bytes, Route route, Reason reason);
// Several counts at once (a collective's pairs): each pair as count() would, the totals bumped once for all.
struct Tally {
  int compute, remote;
  int64_t bytes;
  Route route;
  Reason reason;
};
void count_all(const std::vector<Tally>& tallies);
PairCounters pair_counters(int compute, int remote);
PairCounters total_counters();
void reset_counters();

enum class EventKind : uint8_t { Enqueue, Complete, Fallback, Error, Collective, Copy };
const char* event_kind_name(EventKind k);

struct GpuSpan;  // a pair of CUDA events; shared so copies of a record stay valid
struct EventRecord {
  EventKind kind{};
  std::string name{};     // op or collective name
  int device = -1;        // compute device (or the collective's first device)
  int peer = -1;          // remote device, -1 for none
  int64_t bytes = 0;
  uintptr_t stream = 0;   // compute stream
  int64_t host_ns = 0;    // steady clock at enqueue
  Reason reason = Reason::None;
  std::string detail{};
  std::shared_ptr<GpuSpan> gpu{};  // null unless GPU timing was on
};
void set_ring_capacity(size_t capacity);  // drops the current contents
size_t ring_capacity();
int64_t ring_dropped();
void clear_ring();
void set_gpu_timing(bool on);
bool gpu_timing();
// Fallbacks and errors always go to the ring; every op's enqueue only while tracing (vibetensor.fabric.trace),
// so an untraced cross-device op pays no ring lock.
void set_tracing(bool on);
bool tracing();
bool events_enabled();  // any recording at all (capacity > 0)
void record_event(EventRecord r);
// Starts a GPU span on `stream` of `device` (null when GPU timing is off); end_span closes it on the same stream.
std::shared_ptr<GpuSpan> begin_span(int device, uintptr_t stream);
void end_span(const std::shared_ptr<GpuSpan>& span);
// The ring's records oldest first; gpu spans resolved to (start_us, end_us) relative to each device's trace
// origin, or (-1, -1) when unresolved (not timed, or not finished yet).
struct ResolvedEvent {
  EventRecord record;
  double gpu_start_us = -1, gpu_end_us = -1;
};
std::vector<ResolvedEvent> read_ring();
// Marks a timing origin on every device in `devices` (a CUDA event on its current stream), and the host time.
void set_origin(const std::vector<int>& devices);
int64_t origin_host_ns();

}  // namespace vt::fabric
