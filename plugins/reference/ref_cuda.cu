// The CUDA reference plugin: what a device plugin needs from the host, in two ops.
//
//   ref_cuda::add(Tensor self, Tensor other, *, Scalar alpha=1) -> Tensor
//       out = self + alpha * other through a TensorIterator plan (broadcasting, promotion, strided operands):
//       the kernel reads each operand's pointer and byte strides from iter_operand and runs on the current
//       stream of the tensors' vibetensor device, on the physical GPU behind it. float32, float64, int32, int64.
//   ref_cuda::scale_all_(Tensor[] tensors, float k) -> ()
//       multiplies contiguous float32 tensors that may live on different devices, each on its own device's
//       current stream: the shape of a collective (one launch per device, nothing returned, arguments mutated).
//
// Kernels are checked against vibetensor's built-in ops by tests/abi/test_reference_cuda.py (GPU only).
#include <cuda_runtime.h>

#include <cstdio>
#include <cstring>

extern "C" {
#include "ref_common.h"
}

extern "C" VT_PLUGIN_DEFINE_ABI_VERSION()

namespace {

constexpr int kMaxDims = 16;  // vibetensor's limit on tensor rank
constexpr int kOperands = 3;  // out, self, other

// Operand geometry passed by value: the iteration shape (dim 0 innermost) and byte strides per operand.
struct Geometry {
  int ndim;
  long long shape[kMaxDims];
  long long strides[kOperands][kMaxDims];
  char* data[kOperands];
};

template <typename T>
__global__ void add_kernel(Geometry g, long long numel, T alpha) {
  for (long long k = blockIdx.x * (long long)blockDim.x + threadIdx.x; k < numel; k += (long long)gridDim.x * blockDim.x) {
    long long rest = k, off[kOperands] = {0, 0, 0};
    for (int d = 0; d < g.ndim; ++d) {
      long long idx = rest % g.shape[d];
      rest /= g.shape[d];
      for (int i = 0; i < kOperands; ++i) off[i] += idx * g.strides[i][d];
    }
    const T x = *reinterpret_cast<const T*>(g.data[1] + off[1]);
    const T y = *reinterpret_cast<const T*>(g.data[2] + off[2]);
    *reinterpret_cast<T*>(g.data[0] + off[0]) = x + alpha * y;
  }
}

__global__ void scale_kernel(float* p, long long n, float k) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    p[i] *= k;
}

// Makes the physical GPU behind vibetensor device `device` current for a scope.
struct DeviceScope {
  int previous = -1;
  vt_status enter(int32_t device) {
    int32_t ordinal;
    REF_TRY(host->cuda_physical_device(device, &ordinal));
    if (cudaGetDevice(&previous) != cudaSuccess || cudaSetDevice(ordinal) != cudaSuccess)
      return host->set_error(VT_ERROR_CUDA, "ref_cuda: cannot make the device current");
    return VT_OK;
  }
  ~DeviceScope() {
    if (previous >= 0) cudaSetDevice(previous);
  }
};

vt_status launch_status(const char* what) {
  cudaError_t e = cudaGetLastError();
  if (e == cudaSuccess) return VT_OK;
  char msg[256];
  std::snprintf(msg, sizeof msg, "ref_cuda: %s launch failed: %s", what, cudaGetErrorString(e));
  return host->set_error(VT_ERROR_CUDA, msg);
}

unsigned blocks_for(long long n) { return unsigned(n / 256 + 1 < 4096 ? n / 256 + 1 : 4096); }

template <typename T>
void launch_add(const Geometry& g, long long numel, T alpha, cudaStream_t stream) {
  add_kernel<T><<<blocks_for(numel), 256, 0, stream>>>(g, numel, alpha);
}

vt_status add(vt_call* call, void*) {
  vt_tensor in[2], out = nullptr, result;
  vt_scalar alpha;
  REF_TRY(host->arg_tensor(call, 0, &in[0]));
  REF_TRY(host->arg_tensor(call, 1, &in[1]));
  REF_TRY(host->arg_scalar(call, 2, &alpha));
  vt_iter_config cfg;
  ref_iter_config(&cfg, VT_ITER_ELEMENTWISE, &out, 2, in);
  cfg.promote_inputs_to_common_dtype = 1;
  cfg.check_mem_overlap = 1;
  vt_iter it;
  REF_TRY(host->iter_build(&cfg, &it));
  vt_iter_info info;
  info.struct_size = sizeof info;
  REF_TRY(host->iter_info(it, &info));
  vt_dtype dt = info.common_dtype;
  if (!REF_F32(dt) && !REF_F64(dt) && !REF_I32(dt) && !REF_I64(dt))
    return host->set_error(VT_ERROR_TYPE, "ref_cuda::add supports float32, float64, int32 and int64");
  if (dt.code == VT_DTYPE_CODE_INT && alpha.kind == 1)
    return host->set_error(VT_ERROR_RUNTIME, "For integral input tensors, argument alpha must not be a floating "
                                             "point number.");
  if (info.device.device_type != VT_DEVICE_CUDA)
    return host->set_error(VT_ERROR_VALUE, "ref_cuda::add: the CUDA kernel got CPU tensors");
  if (info.ndim > kMaxDims) return host->set_error(VT_ERROR_VALUE, "ref_cuda::add: too many dims");
  Geometry g{};
  g.ndim = info.ndim;
  for (int d = 0; d < info.ndim; ++d) g.shape[d] = info.shape[d];
  for (int i = 0; i < kOperands; ++i) {
    vt_iter_operand op;
    op.struct_size = sizeof op;
    REF_TRY(host->iter_operand(it, i, &op));
    g.data[i] = static_cast<char*>(op.data);
    for (int d = 0; d < info.ndim; ++d) g.strides[i][d] = op.byte_strides[d];
  }
  if (info.numel > 0) {
    DeviceScope scope;
    REF_TRY(scope.enter(info.device.device_id));
    void* stream;
    REF_TRY(host->cuda_current_stream(info.device.device_id, &stream));
    cudaStream_t s = static_cast<cudaStream_t>(stream);
    if (REF_F32(dt)) launch_add<float>(g, info.numel, float(alpha.f), s);
    else if (REF_F64(dt)) launch_add<double>(g, info.numel, alpha.f, s);
    else if (REF_I32(dt)) launch_add<int>(g, info.numel, int(alpha.i), s);
    else launch_add<long long>(g, info.numel, (long long)alpha.i, s);
    REF_TRY(launch_status("add"));
  }
  REF_TRY(host->iter_finish(it));
  REF_TRY(host->iter_output(it, 0, &result));
  return host->set_result(call, 0, result);
}

vt_status scale_all(vt_call* call, void*) {
  int64_t n;
  double k;
  REF_TRY(host->arg_tensor_list_size(call, 0, &n));
  REF_TRY(host->arg_double(call, 1, &k));
  for (int64_t j = 0; j < n; ++j) {  // checked before any launch: a bad element leaves every tensor untouched
    vt_tensor t;
    vt_tensor_info ti;
    REF_TRY(host->arg_tensor_list_item(call, 0, j, &t));
    if (!t) return host->set_error(VT_ERROR_VALUE, "ref_cuda::scale_all_: the list holds None");
    REF_TRY(ref_info(t, &ti));
    if (ti.device.device_type != VT_DEVICE_CUDA || !REF_F32(ti.dtype) || !ti.is_contiguous)
      return host->set_error(VT_ERROR_VALUE, "ref_cuda::scale_all_ takes contiguous float32 CUDA tensors");
  }
  for (int64_t j = 0; j < n; ++j) {
    vt_tensor t;
    vt_tensor_info ti;
    REF_TRY(host->arg_tensor_list_item(call, 0, j, &t));
    REF_TRY(ref_info(t, &ti));
    if (ti.numel == 0) continue;
    DeviceScope scope;
    REF_TRY(scope.enter(ti.device.device_id));
    void* stream;
    REF_TRY(host->cuda_current_stream(ti.device.device_id, &stream));
    scale_kernel<<<blocks_for(ti.numel), 256, 0, static_cast<cudaStream_t>(stream)>>>(static_cast<float*>(ti.data),
                                                                                      ti.numel, float(k));
    REF_TRY(launch_status("scale_all_"));
    REF_TRY(host->tensor_mark_written(t));
  }
  return VT_OK;
}

}  // namespace

extern "C" VT_PLUGIN_EXPORT vt_status vt_plugin_init(const vt_host_api* h, vt_registrar* reg) {
  host = h;
  REF_TRY(h->define_op(reg, "ref_cuda::add(Tensor self, Tensor other, *, Scalar alpha=1) -> Tensor", VT_POLICY_SAME_DEVICE));
  REF_TRY(h->impl_op(reg, "ref_cuda::add", VT_KEY_CUDA, add, nullptr));
  REF_TRY(h->define_op(reg, "ref_cuda::scale_all_(Tensor[] tensors, float k) -> ()", VT_POLICY_MULTI_DEVICE));
  REF_TRY(h->impl_op(reg, "ref_cuda::scale_all_", VT_KEY_CUDA, scale_all, nullptr));
  return VT_OK;
}
