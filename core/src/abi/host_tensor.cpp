// Host entries for tensors (queries in DLPack terms, new tensors, handle lifetime) and the TensorIterator:
// plans built with the host's broadcasting, promotion and overlap checks, exported as per-operand descriptors
// (pointer, dtype, byte strides in iteration order) for CPU and CUDA kernels, plus a CPU for_each.
#include "plugin_host.h"
#include "vt/core/ops.h"
#include "vt/core/parallel.h"

#include <atomic>
#include <mutex>

namespace vt::abi {

ScalarType dtype_from_abi(vt_dtype d) {
  struct Entry {
    uint8_t code, bits;
    ScalarType type;
  };
  static constexpr Entry table[] = {
      {VT_DTYPE_CODE_BOOL, 8, ScalarType::Bool},     {VT_DTYPE_CODE_UINT, 8, ScalarType::UInt8},
      {VT_DTYPE_CODE_INT, 8, ScalarType::Int8},      {VT_DTYPE_CODE_INT, 16, ScalarType::Int16},
      {VT_DTYPE_CODE_INT, 32, ScalarType::Int32},    {VT_DTYPE_CODE_INT, 64, ScalarType::Int64},
      {VT_DTYPE_CODE_FLOAT, 16, ScalarType::Float16}, {VT_DTYPE_CODE_BFLOAT, 16, ScalarType::BFloat16},
      {VT_DTYPE_CODE_FLOAT, 32, ScalarType::Float32}, {VT_DTYPE_CODE_FLOAT, 64, ScalarType::Float64}};
  for (const Entry& e : table)
    if (e.code == d.code && e.bits == d.bits && d.lanes == 1) return e.type;
  VT_FAIL_KIND(Type, "unsupported dtype (code ", int(d.code), ", bits ", int(d.bits), ", lanes ", d.lanes, ")");
}

vt_dtype dtype_to_abi(ScalarType t) {
  uint8_t bits = uint8_t(itemsize(t) * 8);
  uint8_t code = t == ScalarType::Bool ? VT_DTYPE_CODE_BOOL
                 : t == ScalarType::UInt8 ? VT_DTYPE_CODE_UINT
                 : t == ScalarType::BFloat16 ? VT_DTYPE_CODE_BFLOAT
                 : is_floating(t) ? VT_DTYPE_CODE_FLOAT
                                  : VT_DTYPE_CODE_INT;
  return vt_dtype{code, bits, 1};
}

Device device_from_abi(vt_device d) {
  if (d.device_type == VT_DEVICE_CPU) return kCPU;
  VT_CHECK_VALUE(d.device_type == VT_DEVICE_CUDA, "unsupported device type ", d.device_type,
                 " (expected VT_DEVICE_CPU or VT_DEVICE_CUDA)");
  VT_CHECK_VALUE(d.device_id >= 0 && d.device_id < 128, "CUDA device index ", d.device_id, " out of range");
  return Device(DeviceType::CUDA, d.device_id);
}

vt_device device_to_abi(Device d) {
  return d.is_cpu() ? vt_device{VT_DEVICE_CPU, 0} : vt_device{VT_DEVICE_CUDA, d.index};
}

namespace {

// ---- tensors ----
vt_status tensor_info(vt_tensor t, vt_tensor_info* out) noexcept {
  return guarded([&] {
    const Tensor& x = unwrap(t, "tensor_info: the tensor");
    vt_tensor_info info{};
    info.dtype = dtype_to_abi(x.dtype());
    info.device = device_to_abi(x.device());
    info.ndim = int32_t(x.dim());
    info.sizes = x.sizes().data();
    info.strides = x.strides().data();
    info.data = x.data_ptr();
    info.numel = x.numel();
    info.is_contiguous = x.is_contiguous();
    write_versioned(info, out, "vt_tensor_info");
  });
}

vt_status empty(int32_t ndim, const int64_t* sizes, vt_dtype dtype, vt_device device, vt_tensor* out) noexcept {
  return guarded([&] {
    VT_CHECK_VALUE(out != nullptr, "empty: output pointer is NULL");
    VT_CHECK_VALUE(ndim >= 0 && ndim <= 64 && (ndim == 0 || sizes != nullptr), "empty: bad ndim ", ndim,
                   " or NULL sizes");
    DimVector shape(IntArrayRef(sizes, size_t(ndim)));
    for (int64_t s : shape) VT_CHECK_VALUE(s >= 0, "empty: negative size ", s);
    *out = make_handle(ops::empty(shape, dtype_from_abi(dtype), device_from_abi(device)));
  });
}

vt_status empty_like(vt_tensor t, vt_tensor* out) noexcept {
  return guarded([&] {
    const Tensor& x = unwrap(t, "empty_like: the tensor");
    VT_CHECK_VALUE(out != nullptr, "empty_like: output pointer is NULL");
    *out = make_handle(ops::empty(x.sizes(), x.dtype(), x.device()));
  });
}

vt_status tensor_retain(vt_tensor t, vt_tensor* out) noexcept {
  return guarded([&] {
    const Tensor& x = unwrap(t, "tensor_retain: the tensor");
    VT_CHECK_VALUE(out != nullptr, "tensor_retain: output pointer is NULL");
    *out = new vt_tensor_s{x, true};
  });
}

vt_status tensor_release(vt_tensor t) noexcept {
  return guarded([&] {
    if (!t) return;
    VT_CHECK_VALUE(t->owned, "tensor_release: this handle belongs to a kernel call and dies with it; only handles "
                             "from tensor_retain (or made outside a kernel call) are released");
    delete t;
  });
}

vt_status tensor_mark_written(vt_tensor t) noexcept {
  return guarded([&] { unwrap(t, "tensor_mark_written: the tensor").bump_version(); });
}

// ---- TensorIterator ----
std::vector<Tensor> tensors_of(const vt_tensor* handles, int32_t n, bool allow_null, const char* what) {
  VT_CHECK_VALUE(n >= 0 && n <= int32_t(kMaxOperands) && (n == 0 || handles || allow_null), "iter_build: bad ",
                 what, " count ", n, " (at most ", kMaxOperands, ") or a NULL array");
  std::vector<Tensor> out;
  for (int32_t i = 0; i < n; ++i) {  // a NULL output array: every output is allocated
    vt_tensor h = handles ? handles[i] : nullptr;
    VT_CHECK_VALUE(allow_null || h, "iter_build: ", what, " ", i, " is NULL");
    out.push_back(h ? h->tensor : Tensor());
  }
  return out;
}

// A reduction plan: the output has the input's rank, size 1 (stride 0 in the plan) on reduced dims, and starts
// filled with reduce_init; the caller's result is that tensor, or a view without the reduced dims.
TensorIterator build_reduction(const vt_iter_config& c, Tensor& result) {
  VT_CHECK_VALUE(c.ninputs == 1 && c.noutputs == 1, "iter_build: a reduction has one input and one output");
  Tensor self = tensors_of(c.inputs, 1, false, "input")[0];
  Tensor out = tensors_of(c.outputs, 1, true, "output")[0];
  int64_t nd = self.dim();
  std::vector<bool> mask(size_t(std::max<int64_t>(nd, 1)), c.reduce_ndims == 0);
  VT_CHECK_VALUE(c.reduce_ndims >= 0 && (c.reduce_ndims == 0 || c.reduce_dims), "iter_build: bad reduce_ndims");
  for (int32_t i = 0; i < c.reduce_ndims; ++i) {
    int64_t d = wrap_dim(c.reduce_dims[i], nd);
    VT_CHECK(!mask[size_t(d)], "iter_build: dim ", d, " appears multiple times in the list of dims");
    mask[size_t(d)] = true;
  }
  DimVector keep(self.sizes()), squeezed;
  for (int64_t d = 0; d < nd; ++d) {
    if (mask[size_t(d)]) keep[size_t(d)] = 1;
    if (c.keepdim || !mask[size_t(d)]) squeezed.push_back(keep[size_t(d)]);
  }
  ScalarType out_dtype = c.output_dtype.bits ? dtype_from_abi(c.output_dtype) : self.dtype();
  if (out.defined()) {
    IntArrayRef want = c.keepdim ? IntArrayRef(keep) : IntArrayRef(squeezed);
    VT_CHECK(std::equal(want.begin(), want.end(), out.sizes().begin(), out.sizes().end()),
             "iter_build: the reduction output has shape ", shape_str(out.sizes()), ", expected ", shape_str(want));
    out_dtype = out.dtype();
  }
  Tensor acc = out.defined() ? ops::view(out, keep) : ops::empty(keep, out_dtype, self.device());
  ops::fill_(acc, Scalar(c.reduce_init));
  result = out.defined() ? out : (c.keepdim || nd == 0) ? acc : ops::view(acc, squeezed);
  return TensorIteratorConfig()
      .add_output(acc)
      .add_input(self)
      .is_reduction(true)
      .check_all_same_dtype(false)
      .enforce_safe_casting_to_output(false)
      .cast_inputs(false)
      .common_dtype(self.dtype())
      .check_mem_overlap(false)
      .name("plugin reduction")
      .build();
}

TensorIterator build_elementwise(const vt_iter_config& c) {
  VT_CHECK_VALUE(c.noutputs >= 1, "iter_build: an elementwise plan needs at least one output");
  VT_CHECK_VALUE(c.noutputs + c.ninputs <= int32_t(kMaxOperands), "iter_build: at most ", kMaxOperands, " operands");
  TensorIteratorConfig cfg;
  for (const Tensor& t : tensors_of(c.outputs, c.noutputs, true, "output")) cfg.add_output(t);
  for (const Tensor& t : tensors_of(c.inputs, c.ninputs, false, "input")) cfg.add_input(t);
  cfg.promote_inputs_to_common_dtype(c.promote_inputs_to_common_dtype != 0)
      .promote_integer_inputs_to_float(c.promote_integer_inputs_to_float != 0)
      .check_all_same_dtype(c.promote_inputs_to_common_dtype == 0)
      .check_mem_overlap(c.check_mem_overlap != 0)
      .name("plugin op");
  if (c.output_dtype.bits) cfg.output_dtype(dtype_from_abi(c.output_dtype));
  return cfg.build();
}

vt_status iter_build(const vt_iter_config* config, vt_iter* out) noexcept {
  return guarded([&] {
    vt_iter_config c = read_versioned(config, "vt_iter_config");
    VT_CHECK_VALUE(out != nullptr, "iter_build: output pointer is NULL");
    VT_CHECK_VALUE(c.kind == VT_ITER_ELEMENTWISE || c.kind == VT_ITER_REDUCTION, "iter_build: unknown kind ", int(c.kind));
    Tensor result;
    TensorIterator it = c.kind == VT_ITER_REDUCTION ? build_reduction(c, result) : build_elementwise(c);
    auto h = std::unique_ptr<vt_iter_s>(new vt_iter_s{std::move(it), vt_iter_kind(c.kind), false, std::move(result), {}});
    for (int i = 0; i < h->it.ntensors(); ++i) {
      std::vector<int64_t> s(size_t(h->it.ndim()));
      for (int d = 0; d < h->it.ndim(); ++d) s[size_t(d)] = h->it.stride(i, d);
      h->strides.push_back(std::move(s));
    }
    *out = keep_iter(std::move(h));
  });
}

vt_status iter_info(vt_iter it, vt_iter_info* out) noexcept {
  return guarded([&] {
    const TensorIterator& x = unwrap(it).it;
    vt_iter_info info{};
    info.ndim = x.ndim();
    info.shape = x.shape().data();
    info.numel = x.numel();
    info.ntensors = x.ntensors();
    info.noutputs = x.noutputs();
    info.common_dtype = dtype_to_abi(x.common_dtype());
    info.device = device_to_abi(x.device());
    write_versioned(info, out, "vt_iter_info");
  });
}

vt_status iter_operand(vt_iter it, int32_t i, vt_iter_operand* out) noexcept {
  return guarded([&] {
    vt_iter_s& h = unwrap(it);
    VT_CHECK_INDEX(i >= 0 && i < h.it.ntensors(), "iter_operand: operand ", i, " out of range (", h.it.ntensors(), ")");
    vt_iter_operand op{};
    op.data = h.it.operand(i).data_ptr();
    op.dtype = dtype_to_abi(h.it.dtype(i));
    op.byte_strides = h.strides[size_t(i)].data();
    write_versioned(op, out, "vt_iter_operand");
  });
}

// The plugin's loop may run on pool threads: its first failure (status and that thread's message) is kept,
// later blocks are skipped, and the caller's thread reports it.
vt_status iter_for_each(vt_iter it, vt_loop2d_fn loop, void* ctx) noexcept {
  return guarded([&] {
    vt_iter_s& h = unwrap(it);
    VT_CHECK_VALUE(loop != nullptr, "iter_for_each: loop is NULL");
    VT_CHECK_VALUE(h.it.device().is_cpu(), "iter_for_each runs CPU loops; this plan's tensors are on ",
                   h.it.device().str(), " (launch a kernel over iter_operand's descriptors instead)");
    std::atomic<int> failed{VT_OK};
    std::mutex mu;
    std::string message;
    auto body = [&](char** data, const int64_t* strides, int64_t n0, int64_t n1) {
      if (failed.load(std::memory_order_relaxed) != VT_OK) return;
      vt_status st;
      try {
        st = loop(ctx, data, strides, n0, n1);
      } catch (...) {
        set_error_message("the loop let a C++ exception escape through the C plugin ABI");
        st = VT_ERROR_INTERNAL;
      }
      if (st == VT_OK) return;
      std::lock_guard<std::mutex> g(mu);
      if (failed.load() == VT_OK) message = error_message(), failed.store(st);
    };
    if (h.kind == VT_ITER_REDUCTION) h.it.reduce_for_each(body);
    else h.it.for_each(body);
    if (failed.load() != VT_OK) {
      detail::fail(error_kind_of(vt_status(failed.load())), message.empty() ? "the plugin's loop failed" : message);
    }
  });
}

vt_status iter_finish(vt_iter it) noexcept {
  return guarded([&] { unwrap(it).it.cast_outputs(); });
}

vt_status iter_output(vt_iter it, int32_t i, vt_tensor* out) noexcept {
  return guarded([&] {
    vt_iter_s& h = unwrap(it);
    VT_CHECK_VALUE(out != nullptr, "iter_output: output pointer is NULL");
    VT_CHECK_INDEX(i >= 0 && i < h.it.noutputs(), "iter_output: output ", i, " out of range (", h.it.noutputs(), ")");
    *out = make_handle(h.kind == VT_ITER_REDUCTION ? h.reduction_result : h.it.output(i));
  });
}

vt_status iter_release(vt_iter it) noexcept {
  return guarded([&] {
    if (!it) return;
    VT_CHECK_VALUE(it->owned, "iter_release: this iterator belongs to a kernel call and dies with it");
    delete it;
  });
}

}  // namespace

void fill_tensor_entries(vt_host_api& t) {
  t.tensor_info = tensor_info;
  t.empty = empty;
  t.empty_like = empty_like;
  t.tensor_retain = tensor_retain;
  t.tensor_release = tensor_release;
  t.tensor_mark_written = tensor_mark_written;
  t.iter_build = iter_build;
  t.iter_info = iter_info;
  t.iter_operand = iter_operand;
  t.iter_for_each = iter_for_each;
  t.iter_finish = iter_finish;
  t.iter_output = iter_output;
  t.iter_release = iter_release;
}

}  // namespace vt::abi
