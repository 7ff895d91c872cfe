#pragma once
// Storage: one refcounted allocation (data pointer, byte size, device) that tensors view.
//
// Note [Storage owns its pointer]
// A Storage holds its memory through a DataPtr whose deleter returns it to whoever produced it (the CPU
// allocator, the CUDA caching allocator, or a DLPack producer's deleter). Tensors never free memory; the last
// reference to the Storage does, exactly once. Views share the Storage, so a view keeps its base's memory alive.
//
// Note [Version counter]
// Every Storage carries one version counter, bumped by each in-place write through any tensor that views it.
// Autograd records the version when it saves a tensor and refuses to use it if the version moved.
//
// Note [Inference tensors]
// Memory allocated while inference mode is on (torch.inference_mode) belongs to inference tensors, and so do all
// views of it (a view of a normal tensor made in inference mode stays normal: inference-ness lives in the
// Storage). As torch's, they never record history: outside inference mode an in-place write to one raises (the
// check rides on bump_version, which every in-place op calls before it writes), autograd refuses to save one for
// backward, and requires_grad cannot be set on one. Out-of-place ops read them freely and give normal tensors.
#include <atomic>
#include <cstddef>
#include <memory>

#include "vt/autograd/grad_mode.h"
#include "vt/core/device.h"

namespace vt {

struct DataPtr {
  void* ptr = nullptr;
  void* ctx = nullptr;                 // handed to the deleter
  void (*deleter)(void*) = nullptr;    // may be null for memory the storage does not own

  DataPtr() = default;
  DataPtr(void* p, void* c, void (*d)(void*)) : ptr(p), ctx(c), deleter(d) {}
  DataPtr(const DataPtr&) = delete;
  DataPtr& operator=(const DataPtr&) = delete;
  DataPtr(DataPtr&& o) noexcept : ptr(o.ptr), ctx(o.ctx), deleter(o.deleter) { o.deleter = nullptr; }
  DataPtr& operator=(DataPtr&& o) noexcept {  // frees what this held, then takes o's
    if (this != &o) {
      if (deleter) deleter(ctx);
      ptr = o.ptr, ctx = o.ctx, deleter = o.deleter;
      o.deleter = nullptr;
    }
    return *this;
  }
  ~DataPtr() {
    if (deleter) deleter(ctx);
  }
};

class Storage {
 public:
  Storage(DataPtr data, size_t nbytes, Device device)
      : data_(std::move(data)), nbytes_(nbytes), device_(device),
        inference_(autograd::tls_grad_mode.inference) {}
  void* data() const { return data_.ptr; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }
  uint32_t version() const { return version_.load(std::memory_order_relaxed); }
  void bump_version() {
    check_writable();
    version_.fetch_add(1, std::memory_order_relaxed);
  }
  // Raises for an inference tensor outside inference mode (Note [Inference tensors]); ops that bump the version
  // only after writing call it first.
  void check_writable() const {
    if (inference_ && !autograd::tls_grad_mode.inference) refuse_inference_write();
  }
  bool is_inference() const { return inference_; }
  // Note [Storage growth]: resize_ past the end moves new memory into the storage itself (after copying the old
  // bytes there), so every tensor viewing it sees the new memory, as with torch's resize_. Like torch's, not
  // safe against another thread reading the storage meanwhile.
  void replace_data(DataPtr data, size_t nbytes) {
    data_ = std::move(data);
    nbytes_ = nbytes;
  }
  DataPtr take_data() { return std::move(data_); }

 private:
  DataPtr data_;
  size_t nbytes_;
  Device device_;
  std::atomic<uint32_t> version_{0};
  bool inference_;
  [[noreturn]] static void refuse_inference_write();
};

// Fresh, uninitialised storage of `nbytes` on `device`. CPU memory is 64-byte aligned.
std::shared_ptr<Storage> allocate_storage(size_t nbytes, Device device);

// Live CPU storages made by allocate_storage (Note [CPU memory accounting] in cpu_allocator.cpp): bytes in
// allocation units (64 bytes; 64 KiB size classes from 1 MiB up), and how many.
struct CpuMemoryStats {
  int64_t allocated_bytes = 0;
  int64_t allocations = 0;
};
CpuMemoryStats cpu_memory_stats();

}  // namespace vt
