// copy_ and fill_ for CUDA tensors. copy_ moves bytes between host and device (and between devices) with
// cudaMemcpyAsync on the current stream when both sides are dense with one dtype; otherwise it stages through
// a dense buffer on the side that has the kernels it needs: dtype casts and strided layouts on the GPU run as
// an elementwise op (Note [Copy as elementwise]), transposes through shared-memory tiles (Note [Tiled
// transpose]); on the CPU the CPU copy_. The kernels are checked against the CPU copy in the tests
// (tests/cuda/test_cuda_tensors.py, tests/cuda/test_cuda_copy_kernel.py).
//
// Host memory decides how a host<->device copy waits (as torch's copy_):
//   pageable host memory: a download waits for its stream (the CPU reads the result next); an upload does not
//     (the driver has copied the source out before cudaMemcpyAsync returns). Never captured into a graph.
//   pinned host memory (Note [Pinned host memory]): with non_blocking=True nothing waits, and the copy's stream
//     is recorded on the pinned block so the block is not reused before the copy ends; the caller synchronizes
//     (stream/event) before touching the host side. With non_blocking=False the stream is waited for. Inside a
//     graph capture the copy is captured (nothing waits: it runs at each replay; the pinned tensor must outlive
//     the graph, like any static input).
#include <cuda_runtime.h>

#include "../ops/convert.h"
#include "../ops/copy_iterator.h"
#include "../ops/cuda/loops.cuh"
#include "tiled_transpose.h"
#include "vt/core/dispatcher.h"
#include "vt/core/ops.h"
#include "vt/core/tensor_iterator.h"
#include "vt/cuda/check.h"
#include "vt/cuda/device.h"
#include "vt/cuda/event.h"
#include "vt/cuda/guard.h"
#include "vt/cuda/kernel_errors.h"
#include "vt/cuda/memory.h"
#include "vt/cuda/peer_access.h"

namespace vt {
namespace {

// Element conversion for the copy's elementwise kernel (src and dst dtypes are the functor's argument and result).
template <typename Dst, typename Src> struct CastTo {
  __host__ __device__ Dst operator()(Src v) const { return cpu::convert<Dst>(v); }
};

// fill_'s value as a functor of no inputs (the elementwise loops write it with 16-byte vectors where dense).
template <typename T> struct FillWith {
  T value;
  __host__ __device__ T operator()() const { return value; }
};

cudaStream_t stream_of(const Tensor& t) {
  return reinterpret_cast<cudaStream_t>(cuda::current_stream(t.device().index));
}

using cuda::DeviceGuard;

bool dense_same(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.is_contiguous() && b.is_contiguous() && DimVector(a.sizes()) == DimVector(b.sizes());
}

// Device-side copy with cast and any strides (src broadcast to dst's shape) on dst's device; src may live on a
// peer device (read through unified addresses, Note [Cross-device copy ordering]). Note [Copy as elementwise]:
// the copy is an elementwise op over a TensorIterator, as torch's: the iterator coalesces the dims both sides
// share, dense layouts take 16-byte vectors (a contiguous cast such as bf16 -> fp32 too) and any other layout
// the strided kernel's 32-bit multiply-shift offsets; a layout that reads and writes along different dims (a
// transpose) of one dtype moves through shared-memory tiles instead (Note [Tiled transpose]).
void device_copy(const Tensor& dst, const Tensor& src) {
  TensorIterator it = copy_iterator(dst, src);
  if (cuda::try_tiled_transpose(it)) return;
  VT_DISPATCH_ALL(dst.dtype(), "copy_", [&] {
    using dst_t = scalar_t;
    VT_DISPATCH_ALL(src.dtype(), "copy_", [&] { cuda::gpu_kernel(it, CastTo<dst_t, scalar_t>{}); });
  });
}

// Whether the current stream of `on`'s device captures; asked on that device (handle 0 names the legacy stream of
// whatever device is current).
bool capturing(const Tensor& on) {
  DeviceGuard g(on.device().index);
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  VT_CUDA_CHECK(cudaStreamIsCapturing(stream_of(on), &capture));
  return capture != cudaStreamCaptureStatusNone;
}

[[noreturn]] void refuse_captured_host_copy(const Tensor& on, const char* why) {
  VT_FAIL("copy_: a copy between the host and ", on.device().str(), " cannot be captured in a CUDA graph ", why);
}

// One dense host<->device copy of `bytes` on the current stream of the device side `on`.
void host_device_copy(const Tensor& self, const Tensor& src, const Tensor& on, bool non_blocking) {
  DeviceGuard g(on.device().index);
  cudaStream_t stream = stream_of(on);
  bool upload = self.is_cuda();
  const Tensor& host = upload ? src : self;
  bool in_capture = capturing(on);
  cuda::HostMemory mem = cuda::host_memory_kind(host.storage()->data(), non_blocking || in_capture);
  bool pinned = mem != cuda::HostMemory::Pageable;
  if (in_capture && !pinned)  // the graph would replay it from pageable memory the driver staged at capture
    refuse_captured_host_copy(on, "from pageable host memory; pin the host tensor (pin_memory()) to capture the "
                                  "copy, or copy into a static device tensor before the capture");
  VT_CUDA_CHECK(cudaMemcpyAsync(self.data_ptr(), src.data_ptr(), size_t(self.nbytes()),
                                upload ? cudaMemcpyHostToDevice : cudaMemcpyDeviceToHost, stream));
  if (in_capture) return;  // runs at each replay; the caller synchronizes after replay()
  if (pinned) {
    if (mem == cuda::HostMemory::PinnedCached) cuda::record_host_use(host.storage()->data(), on.device().index,
                                                                     reinterpret_cast<cuda::StreamId>(stream));
    if (non_blocking) return;  // the caller synchronizes before touching the host side (as in torch)
    VT_CUDA_CHECK(cudaStreamSynchronize(stream));
    cuda::raise_kernel_errors();  // Note [Deferred kernel errors]
  } else if (!upload) {  // a pageable destination is read by the CPU right after: wait for this copy only
    VT_CUDA_CHECK(cudaStreamSynchronize(stream));
    cuda::raise_kernel_errors();
  }
}

// Note [Cross-device copy ordering]
// A copy between two GPUs runs on the source's current stream (as torch's). Before it, that stream waits for the
// destination's current stream (whatever last wrote or read the destination there is done); after it, the
// destination's current stream waits for the copy, so later work there - including the free of the destination
// block, which is stream-ordered on it - sees the bytes. The source is only used on its own current stream, so
// neither block needs a record_stream. The host never waits.
void peer_copy(const Tensor& self, const Tensor& src, size_t bytes) {
  cuda::Stream copy_stream = cuda::current(src.device().index), dst_stream = cuda::current(self.device().index);
  cuda::wait_stream(copy_stream, dst_stream);
  {
    DeviceGuard g(copy_stream.device);
    VT_CUDA_CHECK(cudaMemcpyPeerAsync(self.data_ptr(), cuda::physical_device(self.device().index), src.data_ptr(),
                                      cuda::physical_device(src.device().index), bytes, copy_stream.native()));
  }
  cuda::wait_stream(dst_stream, copy_stream);
}

Tensor copy_cuda(const Tensor& self, const Tensor& src, bool non_blocking) {
  VT_CHECK(DimVector(broadcast_shapes(self.sizes(), src.sizes())) == DimVector(self.sizes()),
           "copy_: source of shape ", shape_str(src.sizes()), " cannot be broadcast to destination shape ",
           shape_str(self.sizes()));  // empty ones too: [0] <- [0, 0] is refused, as torch's
  if (self.numel() == 0) return self;
  self.bump_version();
  Device sd = self.device(), rd = src.device();
  if (dense_same(self, src)) {
    size_t bytes = size_t(self.nbytes());
    if (sd.is_cuda() && rd.is_cuda() && sd != rd) {
      peer_copy(self, src, bytes);
    } else if (sd.is_cuda() && rd.is_cuda()) {
      DeviceGuard g(sd.index);
      VT_CUDA_CHECK(cudaMemcpyAsync(self.data_ptr(), src.data_ptr(), bytes, cudaMemcpyDeviceToDevice, stream_of(self)));
    } else {
      host_device_copy(self, src, sd.is_cuda() ? self : src, non_blocking);
    }
    return self;
  }
  if (sd.is_cuda() && rd == sd) {
    device_copy(self, src);
    return self;
  }
  const Tensor& on = sd.is_cuda() ? self : src;
  if (!(sd.is_cuda() && rd.is_cuda()) && capturing(on))  // the CPU half would run only at capture
    refuse_captured_host_copy(on, "when it needs a cast or a layout change on the CPU; capture a dense copy of "
                                  "one dtype between a pinned host tensor and the device");
  if (sd.is_cuda() && rd.is_cpu()) {  // cast/arrange on the CPU, then one dense upload
    // Staged in pinned memory for a non-blocking upload: the copy then leaves before the staging buffer is
    // reused (its free waits for the copy's stream).
    Tensor staged = non_blocking ? cuda::empty_pinned(self.sizes(), self.dtype())
                                 : empty_tensor(self.sizes(), self.dtype(), kCPU);
    ops::copy_(staged, src);
    if (self.is_contiguous()) return copy_cuda(self, staged, non_blocking);
    Tensor dense = empty_tensor(self.sizes(), self.dtype(), sd);
    copy_cuda(dense, staged, non_blocking);
    device_copy(self, dense);
  } else if (sd.is_cpu() && rd.is_cuda()) {  // one dense download in src's dtype, then the CPU copy_ (waits)
    Tensor dense = src.is_contiguous() ? src : ops::contiguous(src);
    Tensor host = empty_tensor(dense.sizes(), dense.dtype(), kCPU);
    copy_cuda(host, dense, false);
    ops::copy_(self, host);
  } else {  // two devices: bring src over densely in its dtype, then arrange on self's device
    Tensor dense = src.is_contiguous() ? src : ops::contiguous(src);
    Tensor here = empty_tensor(dense.sizes(), dense.dtype(), sd);
    copy_cuda(here, dense, non_blocking);
    device_copy(self, here);
  }
  return self;
}

Tensor fill_cuda(const Tensor& self, const Scalar& value) {
  check_scalar_fits(value, self.dtype());
  self.bump_version();
  if (self.numel() == 0) return self;
  // fill is idempotent: a written-to tensor whose elements share memory (an expanded view) is fine, as in torch
  TensorIterator it = TensorIteratorConfig().add_output(self).check_mem_overlap(false).name("fill_").build();
  VT_DISPATCH_ALL(self.dtype(), "fill_", [&] { cuda::gpu_kernel(it, FillWith<scalar_t>{value.to<scalar_t>()}); });
  return self;
}

}  // namespace

void cuda::copy_reading_peer(const Tensor& dst, const Tensor& src) {
  VT_CHECK(dst.is_cuda() && src.is_cuda(), "copy_reading_peer: both tensors must be on CUDA devices");
  if (dst.numel() == 0) return;
  dst.bump_version();
  device_copy(dst, src);
}

VT_LIBRARY(vt, copy_cuda) {
  m.impl("copy_", DispatchKey::CUDA, &copy_cuda);
  m.impl("fill_", DispatchKey::CUDA, &fill_cuda);
}

}  // namespace vt
