// Communicators: creation, the per-call launch over ranks, the broken state (see comm.h).
#include "comm.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>

namespace ring {
namespace {

std::mutex g_mu;
std::map<std::vector<int>, std::unique_ptr<Comm>> g_comms;

std::string device_list(const std::vector<int>& d) {
  std::string s;
  for (size_t i = 0; i < d.size(); ++i) s += (i ? ", cuda:" : "cuda:") + std::to_string(d[i]);
  return s;
}

vt_status cuda_error(const vt_host_api* host, cudaError_t e, const std::string& what) {
  return host->set_error(VT_ERROR_CUDA, ("ring: " + what + ": " + cudaGetErrorString(e)).c_str());
}

int64_t env_int(const char* name, int64_t fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtoll(v, nullptr, 10) : fallback;
}

constexpr int64_t kScratchBytes = 2 << 20;  // one-shot in place stages up to this much per rank

// Restores the thread's current device on exit: this plugin's CUDA runtime and vibetensor's share the driver's
// current context, so a device left selected here would silently become the caller's current device.
struct KeepDevice {
  int previous = -1;
  KeepDevice() {
    if (cudaGetDevice(&previous) != cudaSuccess) previous = -1;
  }
  ~KeepDevice() {
    if (previous >= 0) cudaSetDevice(previous);
  }
};

}  // namespace

vt_status Comm::get(const vt_host_api* host, const std::vector<int>& devices, Comm** out) {
  std::lock_guard<std::mutex> lock(g_mu);
  auto it = g_comms.find(devices);
  if (it == g_comms.end()) {
    std::unique_ptr<Comm> c(new Comm(host, devices));
    if (vt_status s = c->init(); s != VT_OK) return s;  // the destructor frees what init made
    it = g_comms.emplace(devices, std::move(c)).first;
  }
  *out = it->second.get();
  return VT_OK;
}

Comm* Comm::find(const std::vector<int>& devices) {
  std::lock_guard<std::mutex> lock(g_mu);
  auto it = g_comms.find(devices);
  return it == g_comms.end() ? nullptr : it->second.get();
}

vt_status Comm::destroy(const vt_host_api* host, const std::vector<int>& devices) {
  std::unique_ptr<Comm> c;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    auto it = g_comms.find(devices);
    if (it == g_comms.end()) return VT_OK;
    c = std::move(it->second);
    g_comms.erase(it);
  }
  KeepDevice keep;
  for (int ordinal : c->physical_) {  // every kernel that may touch the memory has finished
    cudaError_t e = cudaSetDevice(ordinal);
    if (e == cudaSuccess) e = cudaDeviceSynchronize();
    if (e != cudaSuccess) return cuda_error(host, e, "synchronising before destroying the communicator");
  }
  return VT_OK;
}

Comm::~Comm() {
  for (size_t r = 0; r < blocks_.size(); ++r)
    if (blocks_[r]) host_->cuda_free(devices_[r], blocks_[r]);
  if (err_) cudaFreeHost(err_);
}

vt_status Comm::init() {
  KeepDevice keep;
  const int n = int(devices_.size());
  if (!VT_HOST_HAS(host_, cuda_peer_access))
    return host_->set_error(VT_ERROR_NOT_IMPLEMENTED, "ring: needs a vibetensor speaking plugin ABI 1.1 or newer");
  physical_.resize(size_t(n));
  for (int r = 0; r < n; ++r)
    if (vt_status s = host_->cuda_physical_device(devices_[r], &physical_[size_t(r)]); s != VT_OK) return s;
  for (int a = 0; a < n; ++a) {
    for (int b = 0; b < n; ++b) {
      int32_t ok = 0;
      if (vt_status s = host_->cuda_peer_access(devices_[a], devices_[b], &ok); s != VT_OK) return s;
      if (!ok) {
        char msg[320];
        std::snprintf(msg, sizeof msg,
                      "ring: cuda:%d cannot read cuda:%d's memory: no peer mapping is held. Open a "
                      "vibetensor.fabric.Fabric over these devices first (it enables peer access where its "
                      "functional check passes); pairs it stages cannot use the ring backend",
                      devices_[a], devices_[b]);
        return host_->set_error(VT_ERROR_RUNTIME, msg);
      }
    }
    sharing_ = std::max(sharing_, int(std::count(physical_.begin(), physical_.end(), physical_[size_t(a)])));
  }
  if (cudaError_t e = cudaDeviceGetAttribute(&sms_, cudaDevAttrMultiProcessorCount, physical_[0]); e != cudaSuccess)
    return cuda_error(host_, e, "reading the SM count");
  if (cudaError_t e = cudaHostAlloc(reinterpret_cast<void**>(&err_), sizeof(ErrorWord),
                                    cudaHostAllocMapped | cudaHostAllocPortable);
      e != cudaSuccess)
    return cuda_error(host_, e, "allocating the error word");
  std::memset(err_, 0, sizeof(ErrorWord));
  scratch_bytes_ = kScratchBytes;
  blocks_.assign(size_t(n), nullptr);
  for (int r = 0; r < n; ++r) {
    void* stream = nullptr;
    if (vt_status s = host_->cuda_current_stream(devices_[r], &stream); s != VT_OK) return s;
    if (vt_status s = host_->cuda_malloc(devices_[r], size_t(kFlagBytes + scratch_bytes_), stream, &blocks_[size_t(r)]);
        s != VT_OK)
      return s;
    auto* base = static_cast<uint64_t*>(blocks_[size_t(r)]);
    mem_.push_back(RankMem{base, base + kMaxBlocks, base + kMaxBlocks * (kMaxRanks + 1),
                           reinterpret_cast<unsigned*>(base + kMaxBlocks * (kMaxRanks + 2)),
                           static_cast<char*>(blocks_[size_t(r)]) + kFlagBytes});
    cudaError_t e = cudaSetDevice(physical_[size_t(r)]);
    if (e == cudaSuccess) e = cudaMemsetAsync(blocks_[size_t(r)], 0, size_t(kFlagBytes), static_cast<cudaStream_t>(stream));
    if (e == cudaSuccess) e = cudaStreamSynchronize(static_cast<cudaStream_t>(stream));
    if (e != cudaSuccess) return cuda_error(host_, e, "clearing the flags of cuda:" + std::to_string(devices_[r]));
  }
  return VT_OK;
}

vt_status Comm::check() {
  const unsigned state = *reinterpret_cast<volatile unsigned*>(&err_->state);
  if (state == 0 && !broken_) return VT_OK;
  if (!broken_) {
    broken_ = true;
    char msg[320];
    const volatile ErrorWord* e = err_;
    std::snprintf(msg, sizeof msg, "rank %d (cuda:%d) gave up after %.3f s waiting for rank %d at step %d (block %d)",
                  e->rank, e->device, double(e->waited_ns) * 1e-9, e->peer, e->step, e->block);
    reason_ = msg;
  }
  const std::string msg = "ring: a collective over " + device_list(devices_) + " timed out: " + reason_ +
                          ". Its outputs are undefined and the communicator is broken; destroy it "
                          "(vibetensor.fabric.ring.reset) to start over";
  return host_->set_error(VT_ERROR_TIMEOUT, msg.c_str());
}

// Without a measured table (vibetensor.fabric.ring picks from one when `vt-fabric bench allreduce --tune` saved
// it): one_shot for latency-bound sizes, two_shot above. Every rank reads all peers in both, which suits
// NVSwitch and emulation (on one H200 emulating 2-8 ranks two_shot beat the ring at 256 MiB and 1 GiB); the
// ring is for link patterns where a rank should only talk to its neighbours.
Algo Comm::pick_algo(const Collective& c) const {
  const int64_t bytes = c.count * c.elem_size;
  return bytes <= (256 << 10) ? Algo::OneShot : Algo::TwoShot;
}

// Blocks per rank: enough to stream the buffer, never more than can be resident together with the kernels of
// every other rank on the same GPU (they wait on each other: a block that cannot start would stall its peers
// until the timeout), and at most kMaxBlocks (the flag arrays' size).
int Comm::blocks_for(const Collective& c, Algo algo, const Params& p) {
  const void* kernel = kernel_for(p);
  int& per_sm = occupancy_[kernel];
  if (per_sm == 0 && cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kThreads, 0) != cudaSuccess)
    per_sm = 1;
  const int resident = std::max(1, sms_ * std::max(per_sm, 1) / sharing_);
  // One GPU shared by emulated ranks: let them fill it together. Real GPUs: 32 channels stream NVLink.
  const int cap = int(std::min<int64_t>({kMaxBlocks, resident, env_int("VT_RING_MAX_BLOCKS", sharing_ > 1 ? kMaxBlocks : 32)}));
  const int64_t bytes = c.count * c.elem_size;
  const int64_t per_block = algo == Algo::OneShot ? (32 << 10) : algo == Algo::Ring ? int64_t(p.nranks) << 18 : (256 << 10);
  return int(std::clamp<int64_t>((bytes + per_block - 1) / per_block, 1, cap));
}

vt_status Comm::run(Collective& c) {
  std::lock_guard<std::mutex> lock(mu_);
  KeepDevice keep;
  if (vt_status s = check(); s != VT_OK) return s;
  const int n = int(devices_.size());
  if (c.count == 0) return VT_OK;
  if (n == 1) return run_single(c);
  Params p{};
  p.kind = c.kind;
  p.dtype = c.dtype;
  p.op = c.op;
  p.scale = 1.0f / float(n);
  p.nranks = n;
  p.in_place = c.in_place;
  p.vec16 = c.vec16;
  p.count = c.count;
  p.algo = c.kind == Kind::AllReduce ? (c.algo == Algo::Auto ? pick_algo(c) : c.algo) : Algo::Auto;
  p.scratch_elems = scratch_bytes_ / c.elem_size;
  for (int r = 0; r < n; ++r) {
    p.in[r] = c.in[size_t(r)], p.out[r] = c.out[size_t(r)];
    p.scratch[r] = mem_[size_t(r)].scratch, p.progress[r] = mem_[size_t(r)].progress, p.bar[r] = mem_[size_t(r)].bar;
  }
  const int blocks = blocks_for(c, p.algo, p);
  const int64_t slice_bytes = env_int("VT_RING_SLICE_BYTES", 128 << 10);
  const int64_t chunk_bytes = c.count * c.elem_size / (int64_t(blocks) * n) + 1;
  p.slices = int(std::clamp<int64_t>((chunk_bytes + slice_bytes - 1) / slice_bytes, 1, 16));
  const int64_t timeout_ms = c.timeout_ms > 0 ? c.timeout_ms : env_int("VT_RING_TIMEOUT_MS", 10000);
  jobs_.resize(size_t(n));
  for (int r = 0; r < n; ++r) {
    LaunchJob& job = jobs_[size_t(r)];
    job.params = p;
    job.params.rank = r;
    job.params.epoch = mem_[size_t(r)].epoch;
    job.params.wait = WaitCtx{err_, mem_[0].claim, uint64_t(timeout_ms) * 1000000ull, r, devices_[size_t(r)]};
    job.blocks = blocks;
    job.physical = physical_[size_t(r)];
    job.skip = r == skip_rank_;  // fault injection: this rank never arrives
    job.result = cudaSuccess;
    if (vt_status s = host_->cuda_current_stream(devices_[size_t(r)], &job.stream); s != VT_OK) return s;
  }
  skip_rank_ = -1;
  FanOut* pool = FanOut::get(n);
  FanOut::Outcome how = pool ? pool->run(jobs_) : FanOut::Outcome::Serial;
  if (how == FanOut::Outcome::TimedOut) {
    broken_ = true;  // the ranks that did launch wait for the others: they will time out
    reason_ = "the launch workers did not report within 2 s";
    return host_->set_error(VT_ERROR_TIMEOUT, ("ring: " + reason_).c_str());
  }
  if (how == FanOut::Outcome::Serial) launch_serially();
  for (int r = 0; r < n; ++r) {
    if (cudaError_t e = jobs_[size_t(r)].result; e != cudaSuccess) {
      broken_ = true;  // the other ranks are waiting for this one: they will time out
      reason_ = std::string("launching on cuda:") + std::to_string(devices_[size_t(r)]) + " failed";
      return cuda_error(host_, e, reason_);
    }
  }
  ++calls_;
  return VT_OK;
}

// One rank after another from the calling thread, stopping at the first launch that fails.
void Comm::launch_serially() {
  int current = -1;
  for (LaunchJob& job : jobs_) {
    if (job.skip) continue;
    if (job.physical != current) {
      current = job.physical;
      if ((job.result = cudaSetDevice(current)) != cudaSuccess) return;
    }
    if ((job.result = cudaError_t(launch(job.params, job.blocks, job.stream))) != cudaSuccess) return;
  }
}

// One rank: the result is the input (avg of one value included).
vt_status Comm::run_single(const Collective& c) {
  if (c.out[0] == c.in[0]) return VT_OK;
  void* stream = nullptr;
  if (vt_status s = host_->cuda_current_stream(devices_[0], &stream); s != VT_OK) return s;
  cudaError_t e = cudaSetDevice(physical_[0]);
  if (e == cudaSuccess)
    e = cudaMemcpyAsync(c.out[0], c.in[0], size_t(c.count * c.elem_size), cudaMemcpyDeviceToDevice,
                        static_cast<cudaStream_t>(stream));
  return e == cudaSuccess ? VT_OK : cuda_error(host_, e, "copying the single rank's input");
}

std::vector<int64_t> Comm::status() const {
  const volatile ErrorWord* e = err_;
  return {broken_ ? 1 : 0, e->state, e->rank, e->device, e->block, e->step, e->peer, int64_t(e->waited_ns),
          calls_, int64_t(devices_.size()), sharing_ > 1 ? 1 : 0};
}

}  // namespace ring
