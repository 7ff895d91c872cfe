// Compiled P2P schedules (vt/fabric/p2p.h): a schedule's transfers as (rank, buffer, chunk) references, run on
// any buffers without building a tensor per chunk. Same ordering as run_p2p_schedule (Note [P2P schedule
// ordering]): an arrival barrier, a barrier between steps, a final one.
#include <algorithm>
#include <set>

#include "vt/core/error.h"
#include "vt/core/ops.h"
#include "vt/cuda/memory.h"
#include "vt/cuda/peer_access.h"
#include "vt/fabric/observe.h"
#include "vt/fabric/p2p.h"
#include "vt/fabric/routes.h"

namespace vt::fabric {

P2PPlan::P2PPlan(std::vector<std::vector<PlanTransfer>> steps, int nchunks, bool needs_tmp)
    : steps_(std::move(steps)), nchunks_(nchunks), needs_tmp_(needs_tmp) {
  VT_CHECK_VALUE(nchunks_ >= 1, "p2p plan: nchunks must be >= 1, got ", nchunks_);
  auto check = [&](const PlanRef& r) {
    VT_CHECK_VALUE(r.rank >= 0 && r.buffer >= 0 && r.buffer <= (needs_tmp_ ? 2 : 1) && r.chunk < nchunks_,
                   "p2p plan: reference (rank ", r.rank, ", buffer ", r.buffer, ", chunk ", r.chunk, ") is out of range");
    max_rank_ = std::max(max_rank_, r.rank);
  };
  for (const auto& step : steps_)
    for (const PlanTransfer& t : step) {
      VT_CHECK_VALUE(!t.srcs.empty(), "p2p plan: a transfer without sources");
      check(t.dst);
      for (const PlanRef& r : t.srcs) check(r);
    }
}

namespace {
// Pair route for counting: the table's when an open Fabric publishes it, else what the devices are.
std::pair<Route, Reason> pair_route(int reader, int owner) {
  Route r = route(reader, owner);
  if (r != Route::Uncovered) return {r, r == Route::Staged ? route_reason(reader, owner) : Reason::None};
  return {cuda::peer_path(reader, owner) == cuda::PeerPath::Native ? Route::Native : Route::Peer, Reason::None};
}
}  // namespace

std::shared_ptr<P2PWork> P2PPlan::run(const std::vector<Tensor>& ins, const std::vector<Tensor>& outs,
                                      const std::vector<int>& devices, RedOp op, double scale) const {
  size_t n = devices.size();
  VT_CHECK_VALUE(ins.size() == n && outs.size() == n && size_t(max_rank_) < n, "p2p plan: ", ins.size(),
                 " inputs and ", outs.size(), " outputs for ", n, " devices (the plan has ", max_rank_ + 1, " ranks)");
  std::vector<Tensor> tmp;
  if (needs_tmp_)
    for (const Tensor& t : ins) tmp.push_back(ops::empty(t.sizes(), t.dtype(), t.device()));
  const std::vector<Tensor>* bufs[3] = {&ins, &outs, &tmp};
  auto region = [&](const PlanRef& r, int64_t* count) -> char* {
    const Tensor& t = (*bufs[r.buffer])[size_t(r.rank)];
    auto [lo, hi] = bounds(r, t.numel());
    *count = hi - lo;
    return t.data_ptr() + lo * int64_t(itemsize(t.dtype()));
  };
  std::set<std::pair<const void*, int>> recorded;  // (storage, reading device) pairs already told
  auto work = std::make_shared<P2PWork>();
  work->devices = devices;
  work->arrived = barrier(devices);
  for (size_t s = 0; s < steps_.size(); ++s) {
    if (s > 0) step_barrier(devices);
    for (const PlanTransfer& t : steps_[s]) {
      int64_t count = 0;
      char* dst = region(t.dst, &count);
      int reader = devices[size_t(t.dst.rank)];
      std::vector<const void*> srcs;
      srcs.reserve(t.srcs.size());
      for (const PlanRef& r : t.srcs) {
        int64_t c = 0;
        srcs.push_back(region(r, &c));
        VT_INTERNAL_ASSERT(c == count, "p2p plan: source and destination regions differ in size");
        int owner = devices[size_t(r.rank)];
        if (owner == reader) continue;
        const Tensor& src = (*bufs[r.buffer])[size_t(r.rank)];
        if (recorded.insert({src.storage()->data(), reader}).second)
          cuda::device_allocator(owner).try_record_stream(src.storage()->data(), cuda::current(reader).handle, reader);
        auto [route_kind, reason] = pair_route(reader, owner);
        fabric::count(reader, owner, count * int64_t(itemsize(src.dtype())), route_kind, reason);
      }
      launch_reduce(reader, ins[0].dtype(), dst, srcs, count, op, t.scale, scale);
    }
  }
  work->done = barrier(devices);  // tmp is freed on its own stream, which now waits for every reader
  return work;
}

void P2PPlan::count_traffic(int64_t in_numel, int64_t out_numel, int64_t itemsize,
                            const std::vector<int>& devices) const {
  VT_CHECK_VALUE(size_t(max_rank_) < devices.size(), "p2p plan: ", devices.size(), " devices for a plan of ",
                 max_rank_ + 1, " ranks");
  std::vector<Tally> tallies;  // counted together: a collective over 8 devices has 56 reads or more
  tallies.reserve(devices.size() * devices.size());
  for (const auto& step : steps_)
    for (const PlanTransfer& t : step) {
      int reader = devices[size_t(t.dst.rank)];
      for (const PlanRef& r : t.srcs) {
        int owner = devices[size_t(r.rank)];
        if (owner == reader) continue;
        auto [lo, hi] = bounds(r, r.buffer == 1 ? out_numel : in_numel);
        auto [route_kind, reason] = pair_route(reader, owner);
        tallies.push_back({reader, owner, (hi - lo) * itemsize, route_kind, reason});
      }
    }
  fabric::count_all(tallies);
}

}  // namespace vt::fabric
