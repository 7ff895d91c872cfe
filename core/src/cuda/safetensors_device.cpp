// Safetensors straight to a CUDA device (the device half of safetensors_staging.h). Each worker preads a chunk
// of the file into its pinned staging buffer and queues cudaMemcpyAsync of the chunk's pieces on the caller's
// current stream, then records the buffer's event; the buffer is refilled only after that event. Pageable
// copies would stage through the driver at a fraction of the pinned rate, and reading on several threads keeps
// the copy engine fed from the page cache.
//
// Ordering: the tensors are allocated and filled on the caller's current stream, so work the caller queues
// there next sees the data, with no host synchronization at the end. The staging block goes back to the pinned
// cache with that stream recorded on it (Note [Pinned host memory]), so it is not reused before the last copy
// has read it, also when a worker fails midway (the caller then drops the half-filled tensors: nothing is
// returned). A load inside a CUDA graph capture is refused: the graph would replay copies from reused buffers.
#include <cuda_runtime.h>

#include "../safetensors_staging.h"
#include "vt/cuda/check.h"
#include "vt/cuda/device.h"
#include "vt/cuda/guard.h"
#include "vt/cuda/memory.h"

namespace vt::safetensors {
namespace {

class DeviceSink : public StagingSink {
 public:
  DeviceSink(int device, cudaStream_t stream, const std::vector<Tensor>& out, int slots, const StagingPlan& plan)
      : device_(device), stream_(stream), out_(out), chunk_bytes_(plan.chunk_bytes), read_mapped_(plan.read_mapped),
        events_(size_t(slots), nullptr),
        recorded_(size_t(slots), 0) {
    try {
      cuda::DeviceGuard g(device_);
      for (auto& e : events_) VT_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
      block_ = static_cast<uint8_t*>(cuda::host_allocator().allocate(size_t(slots) * chunk_bytes_));
    } catch (...) {
      release();
      throw;
    }
  }
  ~DeviceSink() override { release(); }
  void wait(int slot) override {
    if (recorded_[size_t(slot)]) VT_CUDA_CHECK(cudaEventSynchronize(events_[size_t(slot)]));
  }
  void transfer(int slot, const Chunk& c, const MappedFile& file) override {
    uint8_t* staging = block_ + size_t(slot) * chunk_bytes_;
    file.read(c.file_offset, staging, c.len, read_mapped_);
    cuda::DeviceGuard g(device_);  // a worker thread starts on device 0
    for (const Piece& p : c.pieces)
      VT_CUDA_CHECK(cudaMemcpyAsync(out_[p.tensor].data_ptr() + p.tensor_offset, staging + p.chunk_offset, p.len,
                                    cudaMemcpyHostToDevice, stream_));
    VT_CUDA_CHECK(cudaEventRecord(events_[size_t(slot)], stream_));
    recorded_[size_t(slot)] = 1;
  }

 private:
  int device_;
  cudaStream_t stream_;
  const std::vector<Tensor>& out_;
  uint64_t chunk_bytes_;
  bool read_mapped_;
  std::vector<cudaEvent_t> events_;
  std::vector<uint8_t> recorded_;  // one writer per slot (its worker); not vector<bool>, whose bits share words
  uint8_t* block_ = nullptr;

  void release() noexcept {
    for (cudaEvent_t e : events_)
      if (e) cudaEventDestroy(e);  // released by the driver once the event has completed
    if (!block_) return;
    try {  // the block goes back to the pinned cache only after the stream has passed its last copy
      cuda::record_host_use(block_, device_, reinterpret_cast<cuda::StreamId>(stream_));
      cuda::host_allocator().free(block_);
    } catch (...) {  // never throw from cleanup; the block then stays held rather than be reused too early
    }
  }
};

}  // namespace

Device device_for_load(Device requested) {
  int device = requested.index >= 0 ? requested.index : cuda::current_device();
  cuda::check_device(Device(DeviceType::CUDA, device));
  cuda::DeviceGuard g(device);
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  VT_CUDA_CHECK(cudaStreamIsCapturing(reinterpret_cast<cudaStream_t>(cuda::current_stream(device)), &capture));
  VT_CHECK(capture == cudaStreamCaptureStatusNone,
           "safetensors: cannot load to cuda:", device, " while its current stream is capturing a CUDA graph; "
           "load before the capture and copy into the graph's static tensors");
  return Device(DeviceType::CUDA, device);
}

void stage_to_device(const MappedFile& file, const std::vector<Chunk>& chunks, const std::vector<Tensor>& out,
                     const StagingPlan& plan) {
  if (chunks.empty()) return;
  int device = out[chunks.front().pieces.front().tensor].device().index;
  auto stream = reinterpret_cast<cudaStream_t>(cuda::current_stream(device));
  int threads = staging_workers(chunks.size(), plan);
  DeviceSink sink(device, stream, out, 2 * threads, plan);
  run_staged(file, chunks, sink, threads);
}

}  // namespace vt::safetensors
