// copy_ and fill_ for CUDA tensors. copy_ moves bytes between host and device (and between devices) with
// cudaMemcpyAsync on the current stream when both sides are dense with one dtype; otherwise it stages through
// a dense buffer on the side that has the kernels it needs: dtype casts and strided layouts on the GPU use
// strided_cast_kernel, on the CPU the CPU copy_. Every kernel here checks itself against the CPU in the
// tests (tests/cuda/test_cuda_tensors.py).
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

// Element index -> storage offset for a strided tensor (sizes/strides in elements), passed by value.
struct OffsetCalc {
  int ndim = 0;
  int64_t sizes[kMaxDims];
  int64_t strides[kMaxDims];
  explicit OffsetCalc(const Tensor& t) : ndim(int(t.dim())) {
    for (int d = 0; d < ndim; ++d) sizes[d] = t.sizes()[size_t(d)], strides[d] = t.strides()[size_t(d)];
  }
  __device__ int64_t offset(int64_t i) const {
    int64_t off = 0;
#pragma unroll 1  // a loop: unrolled, its 64-bit divisions made each of the hundred dtype-pair kernels far larger
    for (int d = ndim - 1; d >= 0; --d) {
      off += (i % sizes[d]) * strides[d];
      i /= sizes[d];
    }
    return off;
  }
};

template <typename Dst, typename Src>
__global__ void strided_cast_kernel(Dst* dst, OffsetCalc dc, const Src* src, OffsetCalc sc, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    dst[dc.offset(i)] = cpu::convert<Dst>(src[sc.offset(i)]);
}

template <typename T>
__global__ void fill_kernel(T* dst, OffsetCalc dc, T value, int64_t n, bool dense) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    dst[dense ? i : dc.offset(i)] = value;
}

cudaStream_t stream_of(const Tensor& t) {
  return reinterpret_cast<cudaStream_t>(cuda::current_stream(t.device().index));
}

int grid_for(int64_t n) { return int(std::min<int64_t>((n + 255) / 256, 65535)); }

using cuda::DeviceGuard;

bool dense_same(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.is_contiguous() && b.is_contiguous() && DimVector(a.sizes()) == DimVector(b.sizes());
}

// Device-side copy with cast and arbitrary strides (src broadcast to dst's shape), both on one device.
void device_copy(const Tensor& dst, const Tensor& src_in) {
  Tensor src = ops::expand(src_in, dst.sizes());
  DeviceGuard g(dst.device().index);
  int64_t n = dst.numel();
  OffsetCalc dc(dst), sc(src);
  VT_DISPATCH_ALL(dst.dtype(), "copy_", [&] {
    using dst_t = scalar_t;
    VT_DISPATCH_ALL(src.dtype(), "copy_", [&] {
      strided_cast_kernel<dst_t, scalar_t><<<grid_for(n), 256, 0, stream_of(dst)>>>(
          dst.data<dst_t>(), dc, src.data<scalar_t>(), sc, n);
    });
  });
  VT_CUDA_CHECK(cudaGetLastError());
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
  int64_t n = self.numel();
  if (n == 0) return self;
  DeviceGuard g(self.device().index);
  OffsetCalc dc(self);
  VT_DISPATCH_ALL(self.dtype(), "fill_", [&] {
    fill_kernel<scalar_t><<<grid_for(n), 256, 0, stream_of(self)>>>(self.data<scalar_t>(), dc, value.to<scalar_t>(),
                                                                    n, self.is_contiguous());
  });
  VT_CUDA_CHECK(cudaGetLastError());
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
