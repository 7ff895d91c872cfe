#pragma once
// Chunked reads of safetensors data (private to core/src): the file ranges of the tensors to load are cut into
// chunks of at most `chunk_bytes`, and worker threads hand the chunks to a sink that reads them and moves the
// pieces to their tensors: on the CPU each piece is pread straight into its tensor; for a device the chunk is
// pread into a pinned staging buffer and copied with cudaMemcpyAsync. Each worker owns two slots (staging
// buffers) and alternates between them, so reading chunk i+1 overlaps the transfer of chunk i; before reusing
// a slot it waits for that slot's previous transfer.
#include <cstdint>
#include <memory>
#include <vector>

#include "vt/interop/safetensors.h"

namespace vt::safetensors {

// The memory behind an open file: a private memory map (with the descriptor kept for pread), or bytes.
class MappedFile {
 public:
  static std::shared_ptr<MappedFile> map_fd(int fd);       // dup()s fd
  static std::shared_ptr<MappedFile> hold(std::string bytes);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }
  // Copies file bytes [offset, offset + n) to dst: pread for a file (which does not fault pages of the map
  // in), memcpy for bytes or when `from_map` asks for it. Raises SafetensorError (rule "io") when the file is
  // shorter than it was.
  void read(uint64_t offset, void* dst, uint64_t n, bool from_map = false) const;

 private:
  MappedFile() = default;
  uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
  int fd_ = -1;
  bool mapped_ = false;
  std::string bytes_;
};

// One contiguous piece of a chunk destined for one tensor.
struct Piece {
  size_t tensor;          // index into the caller's destination list
  uint64_t tensor_offset; // byte offset inside that tensor
  uint64_t chunk_offset;  // byte offset inside the chunk
  uint64_t len;
};
struct Chunk {
  uint64_t file_offset = 0, len = 0;
  std::vector<Piece> pieces;
};
// Chunks covering the entries' bytes in file order; adjacent entries share chunks, and no chunk spans a gap.
std::vector<Chunk> plan_chunks(const Header& h, const std::vector<const Entry*>& entries, uint64_t chunk_bytes);

class StagingSink {
 public:
  virtual ~StagingSink() = default;
  virtual void wait(int slot) = 0;  // until the slot's last transfer no longer needs it
  // Reads the chunk from `file` and starts moving its pieces to their tensors, using the slot's resources.
  virtual void transfer(int slot, const Chunk& chunk, const MappedFile& file) = 0;
};

// Runs the chunks on `threads` workers (slots 2w and 2w+1 belong to worker w). The first exception of any
// worker stops the others and is rethrown here after all have joined.
void run_staged(const MappedFile& file, const std::vector<Chunk>& chunks, StagingSink& sink, int threads);
// How a load is staged. Defaults: pread, and
//   to host memory: chunks of 8 MiB, at most 8 workers (past that the page cache, not the reads, sets the pace);
//   to a GPU: chunks of 2 MiB, at most 12 workers (Note [Device staging size]).
// The environment overrides each, read at every load, for measuring where a machine saturates
// (benchmarks/io.py --sweep): VT_IO_THREADS, VT_IO_CHUNK_MIB, and VT_IO_READ=map (device loads copy from the
// memory map instead of pread).
//
// Note [Device staging size]: a device load reads each chunk into a pinned buffer and the copy engine reads it
// from there. Small chunks come back while the buffer is still in the host's last-level cache; large ones make
// the host write and the DMA read go to DRAM. Two H200 machines of the same kind (16 cores) swept at 1 and 2 GiB
// (benchmarks/results/io_sweep_*): 2 MiB x 12 workers reached 0.86 and 0.88 of the pinned copy rate on both,
// 8 MiB x 8 workers 0.90 on one and 0.59 on the other; 32 MiB chunks never passed 0.63.
struct StagingPlan {
  int max_workers = 8;
  uint64_t chunk_bytes = 8ull << 20;
  bool read_mapped = false;
};
StagingPlan staging_plan(bool to_device);
// Workers for `chunks` chunks: one per chunk, at most one per core and at most plan.max_workers.
int staging_workers(size_t chunks, const StagingPlan& plan);

// The device half (cuda/safetensors_device.cpp). device_for_load resolves "cuda" to the current device, checks
// that it exists and refuses a load while its current stream captures a CUDA graph (before anything is
// allocated); stage_to_device fills `out` (tensors already allocated there) on that stream.
Device device_for_load(Device requested);
void stage_to_device(const MappedFile& file, const std::vector<Chunk>& chunks, const std::vector<Tensor>& out,
                     const StagingPlan& plan);

}  // namespace vt::safetensors
