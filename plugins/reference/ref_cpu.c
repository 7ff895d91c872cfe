/* The CPU reference plugin: four ops that show the ways a plugin computes, each checked against vibetensor's
 * built-in ops by tests/abi/test_reference_plugins.py.
 *
 *   ref::add(Tensor self, Tensor other) -> Tensor
 *       plain C over the tensors' own strides: same shape and dtype (float32, float64, int32, int64), no
 *       broadcasting; the result is contiguous.
 *   ref::addcmul(Tensor self, Tensor tensor1, Tensor tensor2, *, Scalar value=1) -> Tensor
 *       self + value * tensor1 * tensor2 through the host's TensorIterator: broadcasting, type promotion and
 *       strided inputs for free; the loop sees 2-D blocks with byte strides.
 *   ref::sum_dim(Tensor self, int[] dim, bool keepdim=False) -> Tensor
 *       a reduction plan of the TensorIterator (the output has stride 0 on reduced dims); int32 sums to int64.
 *   ref::fill_all_(Tensor[] tensors, float value) -> ()
 *       mutates every tensor of a list and returns nothing; device policy "multi device".
 */
#include <stdio.h>
#include <string.h>

#include "ref_common.h"

VT_PLUGIN_DEFINE_ABI_VERSION()

/* Element offset of the `linear`-th element (row-major order) of a tensor with these sizes and strides. */
static int64_t offset_of(int64_t linear, int32_t ndim, const int64_t* sizes, const int64_t* strides) {
  int64_t off = 0;
  for (int32_t d = ndim - 1; d >= 0; --d) {
    off += (linear % sizes[d]) * strides[d];
    linear /= sizes[d];
  }
  return off;
}

/* ---- ref::add ---- */
#define ADD_LOOP(T)                                                                     \
  for (int64_t k = 0; k < ia.numel; ++k) {                                              \
    T x = ((const T*)ia.data)[offset_of(k, ia.ndim, ia.sizes, ia.strides)];             \
    T y = ((const T*)ib.data)[offset_of(k, ib.ndim, ib.sizes, ib.strides)];             \
    ((T*)io.data)[k] = (T)(x + y);                                                      \
  }

static vt_status add_kernel(vt_call* call, void* user_data) {
  vt_tensor a, b, out;
  vt_tensor_info ia, ib, io;
  (void)user_data;
  REF_TRY(host->arg_tensor(call, 0, &a));
  REF_TRY(host->arg_tensor(call, 1, &b));
  REF_TRY(ref_info(a, &ia));
  REF_TRY(ref_info(b, &ib));
  if (ia.ndim != ib.ndim || memcmp(ia.sizes, ib.sizes, sizeof(int64_t) * (size_t)ia.ndim) != 0)
    return host->set_error(VT_ERROR_VALUE, "self and other must have the same shape (ref::add does not broadcast; "
                                           "ref::addcmul does)");
  if (memcmp(&ia.dtype, &ib.dtype, sizeof(vt_dtype)) != 0)
    return host->set_error(VT_ERROR_TYPE, "self and other must have the same dtype");
  REF_TRY(host->empty_like(a, &out));
  REF_TRY(ref_info(out, &io));
  if (REF_F32(ia.dtype)) ADD_LOOP(float)
  else if (REF_F64(ia.dtype)) ADD_LOOP(double)
  else if (REF_I32(ia.dtype)) ADD_LOOP(int32_t)
  else if (REF_I64(ia.dtype)) ADD_LOOP(int64_t)
  else return host->set_error(VT_ERROR_TYPE, "ref::add supports float32, float64, int32 and int64");
  return host->set_result(call, 0, out);
}

/* ---- ref::addcmul ---- */
struct addcmul_ctx {
  vt_dtype dtype;
  double fvalue;
  int64_t ivalue;
};

#define ADDCMUL_LOOP(T, V)                                                                     \
  for (int64_t j = 0; j < n1; ++j) {                                                           \
    char* o = data[0] + j * strides[4];                                                        \
    const char* s = data[1] + j * strides[5];                                                  \
    const char* p = data[2] + j * strides[6];                                                  \
    const char* q = data[3] + j * strides[7];                                                  \
    for (int64_t i = 0; i < n0; ++i)                                                           \
      *(T*)(o + i * strides[0]) = (T)(*(const T*)(s + i * strides[1]) +                        \
                                      (V) * *(const T*)(p + i * strides[2]) * *(const T*)(q + i * strides[3])); \
  }

static vt_status addcmul_loop(void* ctx, char** data, const int64_t* strides, int64_t n0, int64_t n1) {
  const struct addcmul_ctx* c = (const struct addcmul_ctx*)ctx;
  if (REF_F32(c->dtype)) ADDCMUL_LOOP(float, (float)c->fvalue)
  else if (REF_F64(c->dtype)) ADDCMUL_LOOP(double, c->fvalue)
  else if (REF_I32(c->dtype)) ADDCMUL_LOOP(int32_t, (int32_t)c->ivalue)
  else ADDCMUL_LOOP(int64_t, c->ivalue)
  return VT_OK;
}

static vt_status addcmul_kernel(vt_call* call, void* user_data) {
  vt_tensor in[3], out = NULL, result;
  vt_scalar value;
  vt_iter it;
  vt_iter_info info;
  vt_iter_config cfg;
  struct addcmul_ctx ctx;
  int32_t i;
  (void)user_data;
  for (i = 0; i < 3; ++i) REF_TRY(host->arg_tensor(call, i, &in[i]));
  REF_TRY(host->arg_scalar(call, 3, &value));
  ref_iter_config(&cfg, VT_ITER_ELEMENTWISE, &out, 3, in);
  cfg.promote_inputs_to_common_dtype = 1;
  cfg.check_mem_overlap = 1;
  REF_TRY(host->iter_build(&cfg, &it));
  info.struct_size = sizeof(info);
  REF_TRY(host->iter_info(it, &info));
  ctx.dtype = info.common_dtype;
  ctx.fvalue = value.f;
  ctx.ivalue = value.i;
  if (!REF_F32(info.common_dtype) && !REF_F64(info.common_dtype) && !REF_I32(info.common_dtype) &&
      !REF_I64(info.common_dtype))
    return host->set_error(VT_ERROR_TYPE, "ref::addcmul supports float32, float64, int32 and int64");
  if (info.common_dtype.code == VT_DTYPE_CODE_INT && value.kind == 1)
    return host->set_error(VT_ERROR_RUNTIME, "For integral input tensors, argument value must not be a floating "
                                             "point number.");
  REF_TRY(host->iter_for_each(it, addcmul_loop, &ctx));
  REF_TRY(host->iter_output(it, 0, &result));
  return host->set_result(call, 0, result);
}

/* ---- ref::sum_dim ---- */
#define SUM_LOOP(TO, TI)                                                       \
  for (int64_t j = 0; j < n1; ++j) {                                           \
    char* o = data[0] + j * strides[2];                                        \
    const char* x = data[1] + j * strides[3];                                  \
    for (int64_t i = 0; i < n0; ++i) *(TO*)(o + i * strides[0]) += (TO) * (const TI*)(x + i * strides[1]); \
  }

static vt_status sum_loop(void* ctx, char** data, const int64_t* strides, int64_t n0, int64_t n1) {
  vt_dtype in = *(const vt_dtype*)ctx;
  if (REF_F32(in)) SUM_LOOP(float, float)
  else if (REF_F64(in)) SUM_LOOP(double, double)
  else if (REF_I32(in)) SUM_LOOP(int64_t, int32_t)
  else SUM_LOOP(int64_t, int64_t)
  return VT_OK;
}

static vt_status sum_dim_kernel(vt_call* call, void* user_data) {
  vt_tensor self, out = NULL, result;
  vt_tensor_info si;
  int64_t ndims;
  const int64_t* dims;
  int32_t keepdim;
  vt_iter it;
  vt_iter_config cfg;
  (void)user_data;
  REF_TRY(host->arg_tensor(call, 0, &self));
  REF_TRY(host->arg_int_list(call, 1, &ndims, &dims));
  REF_TRY(host->arg_bool(call, 2, &keepdim));
  REF_TRY(ref_info(self, &si));
  if (!REF_F32(si.dtype) && !REF_F64(si.dtype) && !REF_I32(si.dtype) && !REF_I64(si.dtype))
    return host->set_error(VT_ERROR_TYPE, "ref::sum_dim supports float32, float64, int32 and int64");
  ref_iter_config(&cfg, VT_ITER_REDUCTION, &out, 1, &self);
  cfg.reduce_ndims = (int32_t)ndims;
  cfg.reduce_dims = dims;
  cfg.keepdim = keepdim;
  cfg.reduce_init = 0.0;
  if (REF_I32(si.dtype)) {  /* as torch: integer sums are int64 */
    cfg.output_dtype.code = VT_DTYPE_CODE_INT;
    cfg.output_dtype.bits = 64;
    cfg.output_dtype.lanes = 1;
  }
  REF_TRY(host->iter_build(&cfg, &it));
  REF_TRY(host->iter_for_each(it, sum_loop, &si.dtype));
  REF_TRY(host->iter_output(it, 0, &result));
  return host->set_result(call, 0, result);
}

/* ---- ref::fill_all_ ---- */
#define FILL_LOOP(T) \
  for (int64_t k = 0; k < ti.numel; ++k) ((T*)ti.data)[offset_of(k, ti.ndim, ti.sizes, ti.strides)] = (T)value;

static vt_status fill_all_kernel(vt_call* call, void* user_data) {
  int64_t n, j;
  double value;
  (void)user_data;
  REF_TRY(host->arg_tensor_list_size(call, 0, &n));
  REF_TRY(host->arg_double(call, 1, &value));
  for (j = 0; j < n; ++j) {
    vt_tensor t;
    vt_tensor_info ti;
    REF_TRY(host->arg_tensor_list_item(call, 0, j, &t));
    if (!t) return host->set_error(VT_ERROR_VALUE, "ref::fill_all_: the list holds None");
    REF_TRY(ref_info(t, &ti));
    if (ti.device.device_type != VT_DEVICE_CPU)
      return host->set_error(VT_ERROR_VALUE, "ref::fill_all_: the CPU kernel got a tensor on another device");
    if (REF_F32(ti.dtype)) FILL_LOOP(float)
    else if (REF_F64(ti.dtype)) FILL_LOOP(double)
    else if (REF_I32(ti.dtype)) FILL_LOOP(int32_t)
    else if (REF_I64(ti.dtype)) FILL_LOOP(int64_t)
    else return host->set_error(VT_ERROR_TYPE, "ref::fill_all_ supports float32, float64, int32 and int64");
    REF_TRY(host->tensor_mark_written(t));
  }
  return VT_OK;
}

VT_PLUGIN_EXPORT vt_status vt_plugin_init(const vt_host_api* h, vt_registrar* reg) {
  host = h;
  REF_TRY(h->define_op(reg, "ref::add(Tensor self, Tensor other) -> Tensor", VT_POLICY_SAME_DEVICE));
  REF_TRY(h->impl_op(reg, "ref::add", VT_KEY_CPU, add_kernel, NULL));
  REF_TRY(h->define_op(reg, "ref::addcmul(Tensor self, Tensor tensor1, Tensor tensor2, *, Scalar value=1) -> Tensor",
                       VT_POLICY_SAME_DEVICE));
  REF_TRY(h->impl_op(reg, "ref::addcmul", VT_KEY_CPU, addcmul_kernel, NULL));
  REF_TRY(h->define_op(reg, "ref::sum_dim(Tensor self, int[] dim, bool keepdim=False) -> Tensor", VT_POLICY_SAME_DEVICE));
  REF_TRY(h->impl_op(reg, "ref::sum_dim", VT_KEY_CPU, sum_dim_kernel, NULL));
  REF_TRY(h->define_op(reg, "ref::fill_all_(Tensor[] tensors, float value) -> ()", VT_POLICY_MULTI_DEVICE));
  REF_TRY(h->impl_op(reg, "ref::fill_all_", VT_KEY_CPU, fill_all_kernel, NULL));
  return VT_OK;
}
