/* Helpers shared by the reference plugins: the host table kept at init, and a check macro that passes a failed
 * host call's status (and with it the host's message) up to the caller. Only vt_plugin.h is included: the
 * reference plugins are built exactly as an out-of-tree plugin would be. */
#ifndef REF_COMMON_H_
#define REF_COMMON_H_

#include <string.h>

#include "vt/abi/vt_plugin.h"

/* Set by vt_plugin_init; the table lives as long as the process. */
static const vt_host_api* host;

#define REF_TRY(expr)                  \
  do {                                 \
    vt_status ref_status_ = (expr);    \
    if (ref_status_ != VT_OK) return ref_status_; \
  } while (0)

static int ref_dtype_is(vt_dtype d, uint8_t code, uint8_t bits) { return d.code == code && d.bits == bits; }

#define REF_F32(d) ref_dtype_is(d, VT_DTYPE_CODE_FLOAT, 32)
#define REF_F64(d) ref_dtype_is(d, VT_DTYPE_CODE_FLOAT, 64)
#define REF_I32(d) ref_dtype_is(d, VT_DTYPE_CODE_INT, 32)
#define REF_I64(d) ref_dtype_is(d, VT_DTYPE_CODE_INT, 64)

/* The tensor's metadata (an error status if the handle is bad). */
static vt_status ref_info(vt_tensor t, vt_tensor_info* info) {
  info->struct_size = sizeof(*info);
  return host->tensor_info(t, info);
}

/* A TensorIterator plan's config with one output (NULL: the host allocates it) and `ninputs` inputs; the
 * caller sets the flags it wants on top. */
static void ref_iter_config(vt_iter_config* cfg, vt_iter_kind kind, const vt_tensor* out, int32_t ninputs,
                            const vt_tensor* inputs) {
  memset(cfg, 0, sizeof(*cfg));
  cfg->struct_size = sizeof(*cfg);
  cfg->kind = kind;
  cfg->noutputs = 1;
  cfg->outputs = out;
  cfg->ninputs = ninputs;
  cfg->inputs = inputs;
}

#endif /* REF_COMMON_H_ */
