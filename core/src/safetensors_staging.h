#pragma once
// Staged reads of safetensors data (private to core/src): the file ranges of the tensors to load are cut into
// chunks of at most `chunk_bytes`; worker threads pread each chunk into a staging buffer, then a sink moves
// the pieces of the chunk to their tensors (a memcpy on the CPU, cudaMemcpyAsync from pinned buffers on a
// device). Each worker owns two buffers and alternates between them, so reading chunk i+1 overlaps the
// transfer of chunk i; before reusing a buffer it waits for that buffer's previous transfer.
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
  // in), memcpy for bytes. Raises SafetensorError (rule "io") when the file is shorter than it was.
  void read(uint64_t offset, void* dst, uint64_t n) const;

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
  virtual uint8_t* buffer(int slot) = 0;                 // `chunk_bytes` of staging memory
  virtual void wait(int slot) = 0;                       // until the slot's last delivery no longer reads it
  virtual void deliver(int slot, const Chunk& chunk) = 0;  // moves the chunk's pieces to their tensors
};

// Runs the chunks on `threads` workers (slots 2w and 2w+1 belong to worker w). The first exception of any
// worker stops the others and is rethrown here after all have joined.
void run_staged(const MappedFile& file, const std::vector<Chunk>& chunks, StagingSink& sink, int threads);
// Workers for `chunks` chunks: one per chunk, at most one per core and at most 8 (past that the page cache and
// the copy engine, not the reads, set the pace).
int staging_workers(size_t chunks);

// The device half (cuda/safetensors_device.cpp): fills `out` (tensors already allocated on one CUDA device)
// from the chunks on the caller's current stream of that device.
void stage_to_device(const MappedFile& file, const std::vector<Chunk>& chunks, const std::vector<Tensor>& out,
                     uint64_t chunk_bytes);

}  // namespace vt::safetensors
