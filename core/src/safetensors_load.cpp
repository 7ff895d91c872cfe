// Loading safetensors tensors (vt/interop/safetensors.h): opening a file or byte image (validated in full
// before anything else happens), zero-copy CPU views of the map, and chunked reads (safetensors_staging.h)
// into fresh CPU memory or device memory.
//
// Note [Mapped storage]
// A file is mapped MAP_PRIVATE with PROT_READ|PROT_WRITE and MAP_NORESERVE: tensors viewing the map are
// writable, a write copies the page privately (the file never changes), and untouched pages cost nothing
// beyond the page cache. Each CPU tensor's Storage holds a shared reference to the MappedFile, so the map lives
// until the last tensor (and the safe_open handle) is gone. A tensor whose bytes are not aligned to its element
// size (possible in files the reference writer did not produce) is copied instead, because kernels assume
// element alignment. As with every memory-mapped loader, a file truncated by another process while mapped
// faults (SIGBUS) when the lost pages are touched; backend "pread" keeps nothing of the file.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <thread>

#include "safetensors_staging.h"
#include "vt/core/dim_vector.h"

namespace vt::safetensors {
namespace {

[[noreturn]] void io_fail(const std::string& what) {
  reject("io", "", -1, what);
}

// vibetensor's view of an entry: its dtype and sizes, or a SafetensorError naming what it cannot represent.
std::pair<ScalarType, DimVector> representation(const Entry& e, const Header& h) {
  int64_t at = int64_t(h.data_start + e.begin);
  auto unsupported = [&](const std::string& what) {
    reject("unsupported", e.name, at, what);
  };
  if (!e.dtype->vt) unsupported("vibetensor has no dtype for " + std::string(e.dtype->name));
  if (e.shape.size() > size_t(kMaxDims))
    unsupported(detail::str_cat(e.shape.size(), " dimensions; vibetensor tensors have at most ", kMaxDims));
  DimVector sizes;
  for (uint64_t d : e.shape) {
    if (d > uint64_t(INT64_MAX)) unsupported(detail::str_cat("dimension ", d, " exceeds the int64 range of sizes"));
    sizes.push_back(int64_t(d));
  }
  // A tensor with no elements may still have a shape whose contiguous strides ([0, 2^32, 2^32]) or running
  // element count ([2^31, 2^32, 0]) overflow int64: the format allows it, vibetensor's tensors cannot hold it.
  int64_t stride = 1;
  for (size_t i = sizes.size(); i-- > 1;)
    if (__builtin_mul_overflow(stride, std::max<int64_t>(sizes[i], 1), &stride))
      unsupported("the strides of shape " + shape_str(sizes) + " overflow int64");
  int64_t running = 1;
  for (int64_t d : sizes)
    if (__builtin_mul_overflow(running, d, &running))
      unsupported("the running element count of shape " + shape_str(sizes) + " overflows int64");
  return {*e.dtype->vt, sizes};
}

Tensor view_of_map(const OpenFile& f, const Entry& e, ScalarType dtype, const DimVector& sizes) {
  uint8_t* p = f.file->data() + f.header.data_start + e.begin;
  uint64_t nbytes = e.end - e.begin;
  if (reinterpret_cast<uintptr_t>(p) % uintptr_t(itemsize(dtype)) != 0) {
    Tensor t = empty_tensor(sizes, dtype, kCPU);
    if (nbytes) std::memcpy(t.data_ptr(), p, nbytes);
    return t;
  }
  auto* keep = new std::shared_ptr<MappedFile>(f.file);
  DataPtr data(p, keep, [](void* ctx) { delete static_cast<std::shared_ptr<MappedFile>*>(ctx); });
  auto storage = std::make_shared<Storage>(std::move(data), size_t(nbytes), kCPU);
  return Tensor(std::make_shared<TensorImpl>(std::move(storage), dtype, sizes, contiguous_strides(sizes), 0));
}

// CPU reads: each piece goes straight from the file into its tensor (no staging buffer).
class HostSink : public StagingSink {
 public:
  explicit HostSink(const std::vector<Tensor>& out) : out_(out) {}
  void wait(int) override {}
  void transfer(int, const Chunk& c, const MappedFile& file) override {
    for (const Piece& p : c.pieces) file.read(c.file_offset + p.chunk_offset, out_[p.tensor].data_ptr() + p.tensor_offset, p.len);
  }

 private:
  const std::vector<Tensor>& out_;
};

}  // namespace

namespace {
// A positive integer from the environment, else `fallback` (read at each load, so a benchmark can sweep it).
long env_knob(const char* name, long fallback, long most) {
  const char* v = std::getenv(name);
  long n = v ? std::strtol(v, nullptr, 10) : 0;
  return n > 0 ? std::min(n, most) : fallback;
}
}  // namespace

StagingPlan staging_plan(bool to_device) {
  StagingPlan p;  // the defaults (Note [Device staging size]), each overridden by its variable
  if (to_device) p.max_workers = 12, p.chunk_bytes = 2ull << 20;
  p.max_workers = int(env_knob("VT_IO_THREADS", p.max_workers, 256));
  p.chunk_bytes = uint64_t(env_knob("VT_IO_CHUNK_MIB", long(p.chunk_bytes >> 20), 1024)) << 20;
  const char* r = std::getenv("VT_IO_READ");
  p.read_mapped = r && std::strcmp(r, "map") == 0;
  return p;
}

int staging_workers(size_t chunks, const StagingPlan& plan) {
  unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  return int(std::min<size_t>({chunks, size_t(hw), size_t(plan.max_workers)}));
}

std::shared_ptr<MappedFile> MappedFile::map_fd(int fd) {
  std::shared_ptr<MappedFile> m(new MappedFile());
  m->fd_ = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (m->fd_ < 0) io_fail(std::string("cannot duplicate the file descriptor: ") + std::strerror(errno));
  struct stat st{};
  if (::fstat(m->fd_, &st) != 0) io_fail(std::string("cannot stat the file: ") + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) io_fail("not a regular file");
  m->size_ = uint64_t(st.st_size);
  if (m->size_ == 0) return m;  // nothing to map; the header check reports the empty file
  void* p = ::mmap(nullptr, size_t(m->size_), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, m->fd_, 0);
  if (p == MAP_FAILED) io_fail(std::string("cannot map the file: ") + std::strerror(errno));
  m->data_ = static_cast<uint8_t*>(p);
  m->mapped_ = true;
  return m;
}

std::shared_ptr<MappedFile> MappedFile::hold(std::string bytes) {
  std::shared_ptr<MappedFile> m(new MappedFile());
  m->bytes_ = std::move(bytes);
  m->data_ = reinterpret_cast<uint8_t*>(m->bytes_.data());
  m->size_ = m->bytes_.size();
  return m;
}

MappedFile::~MappedFile() {
  if (mapped_) ::munmap(data_, size_t(size_));
  if (fd_ >= 0) ::close(fd_);
}

void MappedFile::read(uint64_t offset, void* dst, uint64_t n, bool from_map) const {
  if (fd_ < 0 || from_map) {
    std::memcpy(dst, data_ + offset, n);
    return;
  }
  auto* out = static_cast<uint8_t*>(dst);
  while (n > 0) {
    ssize_t got = ::pread(fd_, out, size_t(n), off_t(offset));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) io_fail(detail::str_cat("reading ", n, " bytes at byte ", offset, " failed: ", std::strerror(errno)));
    if (got == 0) io_fail(detail::str_cat("the file ends at byte ", offset, ", before the data it declared (was it truncated?)"));
    out += got, offset += uint64_t(got), n -= uint64_t(got);
  }
}

std::vector<Chunk> plan_chunks(const Header& h, const std::vector<const Entry*>& entries, uint64_t chunk_bytes) {
  std::vector<size_t> order(entries.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return entries[a]->begin < entries[b]->begin; });
  std::vector<Chunk> chunks;
  for (size_t i : order) {
    const Entry& e = *entries[i];
    for (uint64_t pos = e.begin; pos < e.end;) {
      uint64_t file_pos = h.data_start + pos;
      if (chunks.empty() || chunks.back().file_offset + chunks.back().len != file_pos || chunks.back().len == chunk_bytes)
        chunks.push_back(Chunk{file_pos, 0, {}});
      Chunk& c = chunks.back();
      uint64_t take = std::min(e.end - pos, chunk_bytes - c.len);
      c.pieces.push_back(Piece{i, pos - e.begin, c.len, take});
      c.len += take;
      pos += take;
    }
  }
  return chunks;
}

void run_staged(const MappedFile& file, const std::vector<Chunk>& chunks, StagingSink& sink, int threads) {
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  std::mutex error_mu;
  auto work = [&](int w) {
    try {
      for (int turn = 0;; ++turn) {
        size_t i = next.fetch_add(1);
        if (i >= chunks.size() || failed.load()) return;
        int slot = 2 * w + (turn & 1);
        sink.wait(slot);
        sink.transfer(slot, chunks[i], file);
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mu);
      if (!error) error = std::current_exception();
      failed = true;
    }
  };
  if (threads <= 1) {
    work(0);
  } else {
    std::vector<std::thread> pool;
    for (int w = 0; w < threads; ++w) pool.emplace_back(work, w);
    for (auto& t : pool) t.join();
  }
  if (error) std::rethrow_exception(error);
}

OpenFile open_fd(int fd) {
  auto file = MappedFile::map_fd(fd);
  Header h = parse_header(file->data(), file->size());
  return OpenFile{std::move(file), std::move(h)};
}

OpenFile open_bytes(std::string bytes) {
  auto file = MappedFile::hold(std::move(bytes));
  Header h = parse_header(file->data(), file->size());
  return OpenFile{std::move(file), std::move(h)};
}

std::vector<Tensor> load_tensors(const OpenFile& f, const std::vector<const Entry*>& entries, Device device,
                                 Backend backend) {
  std::vector<std::pair<ScalarType, DimVector>> reps;
  for (const Entry* e : entries) reps.push_back(representation(*e, f.header));  // all checked before any is made
  std::vector<Tensor> out;
  out.reserve(entries.size());
  if (device.is_cpu() && backend == Backend::Mmap) {
    for (size_t i = 0; i < entries.size(); ++i) out.push_back(view_of_map(f, *entries[i], reps[i].first, reps[i].second));
    return out;
  }
  if (device.is_cuda()) device = device_for_load(device);
  for (auto& [dtype, sizes] : reps) out.push_back(empty_tensor(sizes, dtype, device));
  const StagingPlan plan = staging_plan(device.is_cuda());
  std::vector<Chunk> chunks = plan_chunks(f.header, entries, plan.chunk_bytes);
  if (device.is_cuda()) {
    stage_to_device(*f.file, chunks, out, plan);
  } else {
    HostSink sink(out);
    run_staged(*f.file, chunks, sink, staging_workers(chunks.size(), plan));
  }
  return out;
}

}  // namespace vt::safetensors
