// Host entries for CUDA: device count, each vibetensor device's current stream and physical ordinal, and
// device memory from the caching allocator (Note [Stream-ordered free]). Everything here works on a machine
// without a GPU in the sense that it fails with a clear message instead of crashing.
#include "plugin_host.h"
#include "vt/cuda/device.h"
#include "vt/cuda/memory.h"
#include "vt/cuda/peer_access.h"

namespace vt::abi {

namespace {

int checked_device(int32_t device) {
  VT_CHECK_VALUE(device >= 0, "CUDA device index ", device, " is negative");
  cuda::check_device(Device(DeviceType::CUDA, device));
  return device;
}

cuda::StreamId stream_or_current(int device, void* stream) {
  return stream ? reinterpret_cast<cuda::StreamId>(stream) : cuda::current_stream(device);
}

vt_status cuda_device_count(int32_t* out) noexcept {
  return guarded([&] {
    VT_CHECK_VALUE(out != nullptr, "cuda_device_count: output pointer is NULL");
    *out = cuda::device_count();
  });
}

vt_status cuda_current_stream(int32_t device, void** stream) noexcept {
  return guarded([&] {
    VT_CHECK_VALUE(stream != nullptr, "cuda_current_stream: output pointer is NULL");
    *stream = reinterpret_cast<void*>(cuda::current_stream(checked_device(device)));
  });
}

vt_status cuda_physical_device(int32_t device, int32_t* ordinal) noexcept {
  return guarded([&] {
    VT_CHECK_VALUE(ordinal != nullptr, "cuda_physical_device: output pointer is NULL");
    *ordinal = cuda::physical_device(checked_device(device));  // Note [Emulated devices]
  });
}

vt_status cuda_malloc(int32_t device, size_t nbytes, void* stream, void** out) noexcept {
  return guarded([&] {
    VT_CHECK_VALUE(out != nullptr, "cuda_malloc: output pointer is NULL");
    int d = checked_device(device);
    *out = cuda::device_allocator(d).allocate(nbytes, stream_or_current(d, stream));
  });
}

vt_status cuda_free(int32_t device, void* ptr) noexcept {
  return guarded([&] {
    if (ptr) cuda::device_allocator(checked_device(device)).free(ptr);
  });
}

// The stream may belong to another device than the memory (a peer reading it): its events are made there.
vt_status cuda_record_stream(int32_t device, void* ptr, int32_t stream_device, void* stream) noexcept {
  return guarded([&] {
    int d = checked_device(device), sd = checked_device(stream_device);
    VT_CHECK_VALUE(ptr != nullptr, "cuda_record_stream: pointer is NULL");
    cuda::device_allocator(d).record_stream(ptr, stream_or_current(sd, stream), sd);
  });
}

vt_status tensor_record_stream(vt_tensor t, int32_t stream_device, void* stream) noexcept {
  return guarded([&] {
    const Tensor& x = unwrap(t, "tensor_record_stream: the tensor");
    VT_CHECK_VALUE(x.is_cuda(), "tensor_record_stream: expected a CUDA tensor, got one on ", x.device().str());
    int sd = checked_device(stream_device);
    cuda::device_allocator(x.device().index).try_record_stream(x.storage()->data(), stream_or_current(sd, stream), sd);
  });
}

// Note [Peer mapping lifetime]: a pair is usable while someone holds its mapping (a Fabric, the probe).
vt_status cuda_peer_access(int32_t device, int32_t peer, int32_t* out) noexcept {
  return guarded([&] {
    VT_CHECK_VALUE(out != nullptr, "cuda_peer_access: output pointer is NULL");
    int d = checked_device(device), p = checked_device(peer);
    *out = d == p || cuda::peer_path(d, p) == cuda::PeerPath::Native || cuda::peer_access_refcount(d, p) > 0;
  });
}

}  // namespace

void fill_cuda_entries(vt_host_api& t) {
  t.cuda_device_count = cuda_device_count;
  t.cuda_current_stream = cuda_current_stream;
  t.cuda_physical_device = cuda_physical_device;
  t.cuda_malloc = cuda_malloc;
  t.cuda_free = cuda_free;
  t.cuda_record_stream = cuda_record_stream;
  t.tensor_record_stream = tensor_record_stream;
  t.cuda_peer_access = cuda_peer_access;
}

}  // namespace vt::abi
