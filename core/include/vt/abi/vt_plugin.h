/* vt_plugin.h: the C ABI between vibetensor (the host) and native plugins. Plain C99, also valid C++.
 *
 * A plugin is a shared library that exports two functions, vt_plugin_abi_version (write
 * VT_PLUGIN_DEFINE_ABI_VERSION() once) and vt_plugin_init. The host dlopens it, checks the version, then calls
 * vt_plugin_init with a table of host entry points (vt_host_api) and a registrar. In init the plugin defines ops
 * by schema string and gives each a kernel per dispatch key; the registrations are staged and take effect only
 * if init returns VT_OK. A kernel receives a vt_call (its arguments, its results) and reaches tensors, the
 * TensorIterator, CUDA streams and device memory through the table.
 *
 * Note [Plugin ABI versioning]
 * VT_PLUGIN_ABI_MAJOR changes only when something already published changes; the host refuses any other
 * major. VT_PLUGIN_ABI_MINOR grows when entries or struct fields are appended: vt_host_api and every struct with
 * a struct_size field are append-only, so a plugin built against an older minor sees a prefix of what the host
 * has. Structs the plugin fills (vt_iter_config) or asks the host to fill (vt_tensor_info, vt_iter_operand)
 * carry their size, so the host reads or writes only the fields the plugin's header knew and defaults the
 * rest. A plugin built against a newer minor than the host is refused, since it may call entries the host lacks.
 *
 * Note [Plugin error channel]
 * No C++ exception crosses this boundary, in either direction. Every host entry returns a vt_status; when it is
 * not VT_OK, the host has also stored a message for the calling thread (read it with last_error). A kernel or
 * init reports failure by returning a non-VT_OK status, after set_error for its own message; returning the
 * status of a failed host entry passes the host's message on. The host raises the Python exception that
 * matches the status (VT_ERROR_VALUE: ValueError, ...) with the message, prefixed by the op's name.
 *
 * Note [Plugin handle ownership]
 * vt_tensor and vt_iter are opaque handles. Handles handed to or created during a kernel call belong to that
 * call and die when the kernel returns: a kernel never releases anything. tensor_retain gives a handle that
 * outlives the call (a communicator's buffers); release it with tensor_release. Handles created outside any
 * kernel call (in init, or on a plugin's own thread) are of that owned kind too.
 *
 * Threads: kernels may run concurrently on several threads; host entries are thread-safe. A CPU for_each may
 * call the loop from several threads at once. Plugins are never unloaded.
 */
#ifndef VT_PLUGIN_H_
#define VT_PLUGIN_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VT_PLUGIN_ABI_MAJOR 1
#define VT_PLUGIN_ABI_MINOR 1
#define VT_PLUGIN_ABI_VERSION ((uint32_t)VT_PLUGIN_ABI_MAJOR << 16 | (uint32_t)VT_PLUGIN_ABI_MINOR)

#if defined(_WIN32)
#define VT_PLUGIN_EXPORT __declspec(dllexport)
#else
#define VT_PLUGIN_EXPORT __attribute__((visibility("default")))
#endif

typedef enum vt_status {
  VT_OK = 0,
  VT_ERROR_RUNTIME = 1,          /* RuntimeError */
  VT_ERROR_VALUE = 2,            /* ValueError: a bad argument value */
  VT_ERROR_TYPE = 3,             /* TypeError: a bad argument type or dtype */
  VT_ERROR_INDEX = 4,            /* IndexError */
  VT_ERROR_NOT_IMPLEMENTED = 5,  /* NotImplementedError */
  VT_ERROR_OUT_OF_MEMORY = 6,    /* vibetensor.OutOfMemoryError */
  VT_ERROR_CUDA = 7,             /* RuntimeError: a CUDA call failed */
  VT_ERROR_INTERNAL = 8,         /* RuntimeError: a bug; the message says where */
  VT_ERROR_TIMEOUT = 9           /* vibetensor.fabric.FabricTimeoutError (a TimeoutError): a bounded wait
                                    expired (since 1.1) */
} vt_status;

/* Element types and devices in DLPack's terms (same layout and codes as DLDataType and DLDevice). */
typedef struct vt_dtype {
  uint8_t code; /* 0 int, 1 uint, 2 float, 4 bfloat, 6 bool */
  uint8_t bits; /* 0 means "unset" where a dtype is optional */
  uint16_t lanes;
} vt_dtype;
#define VT_DTYPE_CODE_INT 0
#define VT_DTYPE_CODE_UINT 1
#define VT_DTYPE_CODE_FLOAT 2
#define VT_DTYPE_CODE_BFLOAT 4
#define VT_DTYPE_CODE_BOOL 6

typedef struct vt_device {
  int32_t device_type; /* 1 CPU, 2 CUDA (DLPack's kDLCPU, kDLCUDA) */
  int32_t device_id;   /* vibetensor's device index; 0 for the CPU */
} vt_device;
#define VT_DEVICE_CPU 1
#define VT_DEVICE_CUDA 2

typedef enum vt_dispatch_key { VT_KEY_CPU = 0, VT_KEY_CUDA = 1 } vt_dispatch_key;

typedef enum vt_device_policy {
  VT_POLICY_SAME_DEVICE = 0,  /* all tensor arguments on one device (0-dim CPU tensors may join any) */
  VT_POLICY_MULTI_DEVICE = 1  /* arguments (Tensor[] elements too) may live on different devices; the kernel
                                 checks devices itself. The CUDA kernel runs when any argument is on CUDA. */
} vt_device_policy;

typedef struct vt_tensor_s* vt_tensor;
typedef struct vt_iter_s* vt_iter;
typedef struct vt_call_s vt_call;
typedef struct vt_registrar_s vt_registrar;

/* A kernel: reads its arguments from `call`, sets its results, returns VT_OK or an error (Note [Plugin error
 * channel]). `user_data` is what impl_op was given. */
typedef vt_status (*vt_kernel_fn)(vt_call* call, void* user_data);

/* Filled by tensor_info. Pointers stay valid while the handle lives. Strides are in elements. */
typedef struct vt_tensor_info {
  uint32_t struct_size; /* set by the caller: sizeof(vt_tensor_info) */
  vt_dtype dtype;
  vt_device device;
  int32_t ndim;
  const int64_t* sizes;
  const int64_t* strides;
  void* data; /* the first element (storage offset applied) */
  int64_t numel;
  int32_t is_contiguous;
} vt_tensor_info;

/* A Scalar argument: an integer, a floating value or a bool, as the caller passed it. */
typedef struct vt_scalar {
  int32_t kind; /* 0 integer, 1 floating, 2 bool */
  int64_t i;    /* integer or bool value */
  double f;     /* floating value (also set, converted, for the other kinds) */
} vt_scalar;

/* TensorIterator plans (the host's broadcasting, type promotion, overlap checks and dim coalescing). */
typedef enum vt_iter_kind { VT_ITER_ELEMENTWISE = 0, VT_ITER_REDUCTION = 1 } vt_iter_kind;
typedef struct vt_iter_config {
  uint32_t struct_size; /* sizeof(vt_iter_config) */
  int32_t kind;         /* a vt_iter_kind (struct fields are fixed-width: an enum's size is the compiler's) */
  int32_t noutputs;          /* elementwise: 1 or more; reduction: 1. A NULL output (or array) is allocated */
  const vt_tensor* outputs;
  int32_t ninputs;           /* reduction: exactly 1 */
  const vt_tensor* inputs;
  int32_t promote_inputs_to_common_dtype; /* cast inputs to torch's result type */
  int32_t promote_integer_inputs_to_float;
  int32_t check_mem_overlap;
  vt_dtype output_dtype;     /* dtype of allocated outputs when it differs from the common one; bits 0: unset */
  /* Reductions: the dims folded (all when ndims is 0), whether they stay as size 1, and the value every output
   * element starts from (0 for sums, -inf for maxima). The output operand has stride 0 on reduced dims. */
  int32_t reduce_ndims;
  const int64_t* reduce_dims;
  int32_t keepdim;
  double reduce_init;
} vt_iter_config;

typedef struct vt_iter_info {
  uint32_t struct_size;
  int32_t ndim;          /* iteration dims, 0 innermost */
  const int64_t* shape;  /* in iteration order */
  int64_t numel;
  int32_t ntensors;      /* outputs first, then inputs */
  int32_t noutputs;
  vt_dtype common_dtype;
  vt_device device;
} vt_iter_info;

/* One operand as a kernel sees it: CPU and CUDA kernels index it with these byte strides. */
typedef struct vt_iter_operand {
  uint32_t struct_size;
  void* data;
  vt_dtype dtype;
  const int64_t* byte_strides; /* ndim of them, iteration order */
} vt_iter_operand;

/* The CPU loop of for_each: a 2-D block; data[i] and strides[i] (inner) / strides[ntensors + i] (outer) are
 * operand i's pointer and byte strides. May run on several threads at once. Non-VT_OK stops the loop. */
typedef vt_status (*vt_loop2d_fn)(void* ctx, char** data, const int64_t* strides, int64_t n0, int64_t n1);

typedef struct vt_host_api {
  uint32_t struct_size; /* sizeof the host's table: entries past a plugin's header are absent below it */
  uint32_t abi_version; /* the host's VT_PLUGIN_ABI_VERSION */

  /* ---- errors (Note [Plugin error channel]) ---- */
  vt_status (*set_error)(vt_status status, const char* message);  /* returns `status` */
  const char* (*last_error)(void);  /* this thread's last message; "" if none. Valid until the next host call */

  /* ---- registration, during init only (staged until init returns VT_OK) ---- */
  /* schema: "ns::op(Tensor self, Tensor other, *, Scalar alpha=1) -> Tensor" ("-> ()" for no result) */
  vt_status (*define_op)(vt_registrar* reg, const char* schema, vt_device_policy policy);
  vt_status (*impl_op)(vt_registrar* reg, const char* op_name, vt_dispatch_key key, vt_kernel_fn fn,
                       void* user_data);

  /* ---- a kernel's arguments and results (index = schema position) ---- */
  vt_status (*arg_count)(vt_call* call, int32_t* out);
  vt_status (*arg_is_none)(vt_call* call, int32_t i, int32_t* out);
  vt_status (*arg_tensor)(vt_call* call, int32_t i, vt_tensor* out);  /* NULL for None */
  vt_status (*arg_tensor_list_size)(vt_call* call, int32_t i, int64_t* out);
  vt_status (*arg_tensor_list_item)(vt_call* call, int32_t i, int64_t j, vt_tensor* out);
  vt_status (*arg_int)(vt_call* call, int32_t i, int64_t* out);
  vt_status (*arg_double)(vt_call* call, int32_t i, double* out);
  vt_status (*arg_bool)(vt_call* call, int32_t i, int32_t* out);
  vt_status (*arg_scalar)(vt_call* call, int32_t i, vt_scalar* out);
  vt_status (*arg_int_list)(vt_call* call, int32_t i, int64_t* size, const int64_t** data);
  vt_status (*set_result)(vt_call* call, int32_t i, vt_tensor t);

  /* ---- tensors ---- */
  vt_status (*tensor_info)(vt_tensor t, vt_tensor_info* out);
  vt_status (*empty)(int32_t ndim, const int64_t* sizes, vt_dtype dtype, vt_device device, vt_tensor* out);
  vt_status (*empty_like)(vt_tensor t, vt_tensor* out);
  vt_status (*tensor_retain)(vt_tensor t, vt_tensor* out);  /* Note [Plugin handle ownership] */
  vt_status (*tensor_release)(vt_tensor t);
  vt_status (*tensor_mark_written)(vt_tensor t); /* bump the version counter after writing in place */

  /* ---- TensorIterator ---- */
  vt_status (*iter_build)(const vt_iter_config* config, vt_iter* out);
  vt_status (*iter_info)(vt_iter it, vt_iter_info* out);
  vt_status (*iter_operand)(vt_iter it, int32_t i, vt_iter_operand* out);
  vt_status (*iter_for_each)(vt_iter it, vt_loop2d_fn loop, void* ctx);    /* CPU; casts outputs back */
  vt_status (*iter_finish)(vt_iter it);  /* after a CUDA launch over the operands: cast outputs back */
  vt_status (*iter_output)(vt_iter it, int32_t i, vt_tensor* out);  /* the result as the caller sees it */
  vt_status (*iter_release)(vt_iter it);  /* only for iterators built outside a kernel call */

  /* ---- CUDA (devices are vibetensor indices) ---- */
  vt_status (*cuda_device_count)(int32_t* out);
  vt_status (*cuda_current_stream)(int32_t device, void** stream);  /* a cudaStream_t */
  /* The physical CUDA ordinal behind a vibetensor device (several may share one under emulation). */
  vt_status (*cuda_physical_device)(int32_t device, int32_t* ordinal);
  /* Device memory from the caching allocator, ordered on `stream` (NULL: the device's current stream). */
  vt_status (*cuda_malloc)(int32_t device, size_t nbytes, void* stream, void** out);
  vt_status (*cuda_free)(int32_t device, void* ptr);
  /* The cuda_malloc block `ptr` of `device` is also used on `stream` of `stream_device` (another device when a
   * peer reads it; NULL: that device's current stream): its free waits for the work queued there so far. */
  vt_status (*cuda_record_stream)(int32_t device, void* ptr, int32_t stream_device, void* stream);
  /* The same for a CUDA tensor's memory (a no-op for memory the caching allocator does not own). */
  vt_status (*tensor_record_stream)(vt_tensor t, int32_t stream_device, void* stream);

  /* ---- since 1.1 ---- */
  /* Whether kernels running on `device` may dereference `peer`'s memory now: 1 when both are one physical GPU
   * (emulation) or the host holds a peer mapping device -> peer (a Fabric over both enabled it after its
   * functional check), else 0. A plugin that reads peers through unified addresses checks every pair. */
  vt_status (*cuda_peer_access)(int32_t device, int32_t peer, int32_t* out);
} vt_host_api;

/* The two exported entry points. */
VT_PLUGIN_EXPORT uint32_t vt_plugin_abi_version(void);
VT_PLUGIN_EXPORT vt_status vt_plugin_init(const vt_host_api* host, vt_registrar* reg);

#define VT_PLUGIN_DEFINE_ABI_VERSION() \
  VT_PLUGIN_EXPORT uint32_t vt_plugin_abi_version(void) { return VT_PLUGIN_ABI_VERSION; }

/* Whether the host's table has entry `field` (always true for entries of the plugin's own minor or older). */
#define VT_HOST_HAS(host, field) (offsetof(vt_host_api, field) + sizeof((host)->field) <= (host)->struct_size)

#ifdef __cplusplus
}
#endif
#endif /* VT_PLUGIN_H_ */
