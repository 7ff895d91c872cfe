// The ring plugin's entry point: the ops it registers, their argument checks, and the hand-off to a
// communicator. Everything a call needs is checked here before any kernel is launched, so a bad call changes
// nothing (no launch, no communicator state).
//
//   ring::all_reduce(Tensor[] inputs, Tensor[] outputs, int op=0, int algorithm=0, int timeout_ms=0) -> ()
//   ring::reduce_scatter(Tensor[] inputs, Tensor[] outputs, int op=0, int timeout_ms=0) -> ()
//   ring::all_gather(Tensor[] inputs, Tensor[] outputs, int timeout_ms=0) -> ()
//       One contiguous CUDA tensor per rank, each on its own device (rank = list position); `outputs` empty
//       means in place (all_reduce). op: 0 sum, 1 avg, 2 max, 3 min. algorithm: 0 auto, 1 one_shot, 2 two_shot,
//       3 ring. timeout_ms <= 0: VT_RING_TIMEOUT_MS or 10 s. dtypes float32, float16, bfloat16.
//   ring::check(int[] devices) -> ()         raises the timeout a kernel recorded (FabricTimeoutError)
//   ring::status(int[] devices) -> Tensor    int64 [exists, broken, error state, rank, device, block, step,
//                                             peer, waited ns, calls, nranks, emulated]
//   ring::destroy(int[] devices) -> ()       synchronises the devices and frees the communicator
//   ring::inject_fault(int[] devices, int rank) -> ()   the next call does not launch `rank` (a hung peer)
#include <cstdio>
#include <string>
#include <vector>

#include "comm.h"

extern "C" VT_PLUGIN_DEFINE_ABI_VERSION()

namespace {

const vt_host_api* host = nullptr;

#define RING_TRY(expr)                              \
  do {                                              \
    vt_status ring_status_ = (expr);                \
    if (ring_status_ != VT_OK) return ring_status_; \
  } while (0)

template <typename... A>
vt_status fail(vt_status s, const char* fmt, A... args) {
  char msg[400];
  std::snprintf(msg, sizeof msg, fmt, args...);
  return host->set_error(s, msg);
}

struct Buffer {
  vt_tensor handle;
  vt_tensor_info info;
  int64_t bytes() const { return info.numel * (info.dtype.bits / 8); }
  const char* begin() const { return static_cast<const char*>(info.data); }
};

vt_status read_list(vt_call* call, int arg, const char* op, const char* name, std::vector<Buffer>& out) {
  int64_t n = 0;
  RING_TRY(host->arg_tensor_list_size(call, arg, &n));
  for (int64_t j = 0; j < n; ++j) {
    Buffer b{};
    RING_TRY(host->arg_tensor_list_item(call, arg, j, &b.handle));
    if (!b.handle) return fail(VT_ERROR_TYPE, "%s: %s[%lld] is None", op, name, (long long)j);
    b.info.struct_size = sizeof(b.info);
    RING_TRY(host->tensor_info(b.handle, &b.info));
    if (b.info.device.device_type != VT_DEVICE_CUDA)
      return fail(VT_ERROR_VALUE, "%s: %s[%lld] is on the CPU; collectives take CUDA tensors", op, name, (long long)j);
    if (!b.info.is_contiguous)
      return fail(VT_ERROR_VALUE, "%s: %s[%lld] is not contiguous", op, name, (long long)j);
    out.push_back(b);
  }
  return VT_OK;
}

vt_status dtype_of(const vt_dtype& d, const char* op, ring::DType* out) {
  if (d.lanes == 1 && d.code == VT_DTYPE_CODE_FLOAT && d.bits == 32) *out = ring::DType::F32;
  else if (d.lanes == 1 && d.code == VT_DTYPE_CODE_FLOAT && d.bits == 16) *out = ring::DType::F16;
  else if (d.lanes == 1 && d.code == VT_DTYPE_CODE_BFLOAT && d.bits == 16) *out = ring::DType::BF16;
  else return fail(VT_ERROR_TYPE, "%s: dtype code %d bits %d is not supported (float32, float16, bfloat16)", op,
                   int(d.code), int(d.bits));
  return VT_OK;
}

// Two byte ranges: identical (in place), disjoint, or - an error - partly overlapping.
bool partly_overlap(const char* a, int64_t na, const char* b, int64_t nb) {
  if (na == 0 || nb == 0) return false;
  return !(a == b && na == nb) && a < b + nb && b < a + na;
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

// Checks the lists and fills a Collective. ratio_in/ratio_out: elements of an input/output per `count`.
vt_status prepare(vt_call* call, ring::Kind kind, const char* op_name, ring::Collective& c, std::vector<int>& devices,
                  std::vector<Buffer>& ins, std::vector<Buffer>& outs) {
  RING_TRY(read_list(call, 0, op_name, "inputs", ins));
  RING_TRY(read_list(call, 1, op_name, "outputs", outs));
  const int64_t n = int64_t(ins.size());
  if (n == 0) return fail(VT_ERROR_VALUE, "%s: inputs is empty; give one tensor per device", op_name);
  if (n > ring::kMaxRanks) return fail(VT_ERROR_VALUE, "%s: %lld ranks; at most %d", op_name, (long long)n, ring::kMaxRanks);
  if (outs.empty() && kind != ring::Kind::AllReduce)
    return fail(VT_ERROR_VALUE, "%s: outputs is empty; this collective needs one output per rank", op_name);
  if (!outs.empty() && int64_t(outs.size()) != n)
    return fail(VT_ERROR_VALUE, "%s: %lld outputs for %lld inputs", op_name, (long long)outs.size(), (long long)n);
  RING_TRY(dtype_of(ins[0].info.dtype, op_name, &c.dtype));
  c.kind = kind;
  c.elem_size = ins[0].info.dtype.bits / 8;
  const int64_t in_numel = ins[0].info.numel;
  const int64_t out_numel = kind == ring::Kind::AllReduce ? in_numel : kind == ring::Kind::ReduceScatter ? in_numel / n : in_numel * n;
  if (kind == ring::Kind::ReduceScatter && in_numel % n != 0)
    return fail(VT_ERROR_VALUE, "%s: inputs have %lld elements, not a multiple of %lld ranks", op_name,
                (long long)in_numel, (long long)n);
  c.count = kind == ring::Kind::ReduceScatter ? out_numel : in_numel;
  c.in_place = outs.empty();
  c.vec16 = true;
  for (int64_t r = 0; r < n; ++r) {
    const Buffer& in = ins[size_t(r)];
    const int dev = in.info.device.device_id;
    for (int64_t q = 0; q < r; ++q)
      if (devices[size_t(q)] == dev)
        return fail(VT_ERROR_VALUE, "%s: inputs[%lld] and inputs[%lld] are both on cuda:%d; give one tensor per device",
                    op_name, (long long)q, (long long)r, dev);
    devices.push_back(dev);
    const vt_dtype d0 = ins[0].info.dtype;
    if (in.info.dtype.code != d0.code || in.info.dtype.bits != d0.bits)
      return fail(VT_ERROR_TYPE, "%s: inputs[%lld] has another dtype than inputs[0]", op_name, (long long)r);
    if (in.info.numel != in_numel)
      return fail(VT_ERROR_VALUE, "%s: inputs[%lld] has %lld elements but inputs[0] has %lld", op_name, (long long)r,
                  (long long)in.info.numel, (long long)in_numel);
    const void* out_ptr = in.info.data;
    if (!outs.empty()) {
      const Buffer& out = outs[size_t(r)];
      if (out.info.device.device_id != dev)
        return fail(VT_ERROR_VALUE, "%s: outputs[%lld] is on cuda:%d but inputs[%lld] on cuda:%d", op_name, (long long)r,
                    out.info.device.device_id, (long long)r, dev);
      if (out.info.dtype.code != d0.code || out.info.dtype.bits != d0.bits)
        return fail(VT_ERROR_TYPE, "%s: outputs[%lld] has another dtype than the inputs", op_name, (long long)r);
      if (out.info.numel != out_numel)
        return fail(VT_ERROR_VALUE, "%s: outputs[%lld] has %lld elements; expected %lld", op_name, (long long)r,
                    (long long)out.info.numel, (long long)out_numel);
      // In place means the very same bytes: all_reduce's output is its input; reduce_scatter's output is
      // input chunk r, all_gather's input is output chunk r (as NCCL's in-place forms).
      const char* o = out.begin();
      const char* i = in.begin();
      const int64_t chunk = c.count * c.elem_size;
      const bool same = kind == ring::Kind::AllReduce ? o == i
                        : kind == ring::Kind::ReduceScatter ? o == i + r * chunk
                                                            : i == o + r * chunk;
      if (!same && partly_overlap(o, out.bytes(), i, in.bytes()))
        return fail(VT_ERROR_VALUE, "%s: outputs[%lld] overlaps inputs[%lld] without being its in-place position",
                    op_name, (long long)r, (long long)r);
      if (kind == ring::Kind::AllReduce && same) c.in_place = true;
      out_ptr = out.info.data;
    }
    c.in.push_back(in.info.data);
    c.out.push_back(const_cast<void*>(out_ptr));
    c.vec16 = c.vec16 && aligned16(in.info.data) && aligned16(out_ptr);
  }
  if (kind != ring::Kind::AllReduce) c.vec16 = c.vec16 && (c.count * c.elem_size) % 16 == 0;
  return VT_OK;
}

vt_status read_op(vt_call* call, int arg, const char* op_name, int* out) {
  int64_t op = 0;
  RING_TRY(host->arg_int(call, arg, &op));
  if (op < 0 || op > 3) return fail(VT_ERROR_VALUE, "%s: op %lld is not 0 sum, 1 avg, 2 max or 3 min", op_name, (long long)op);
  *out = int(op);
  return VT_OK;
}

vt_status launch(vt_call* call, ring::Collective& c, const std::vector<int>& devices, std::vector<Buffer>& written) {
  ring::Comm* comm = nullptr;
  RING_TRY(ring::Comm::get(host, devices, &comm));
  RING_TRY(comm->run(c));
  for (Buffer& b : written) RING_TRY(host->tensor_mark_written(b.handle));
  (void)call;
  return VT_OK;
}

vt_status all_reduce(vt_call* call, void*) {
  ring::Collective c{};
  std::vector<int> devices;
  std::vector<Buffer> ins, outs;
  RING_TRY(prepare(call, ring::Kind::AllReduce, "ring::all_reduce", c, devices, ins, outs));
  RING_TRY(read_op(call, 2, "ring::all_reduce", &c.op));
  int64_t algo = 0;
  RING_TRY(host->arg_int(call, 3, &algo));
  if (algo < 0 || algo > 3)
    return fail(VT_ERROR_VALUE, "ring::all_reduce: algorithm %lld is not 0 auto, 1 one_shot, 2 two_shot or 3 ring",
                (long long)algo);
  c.algo = ring::Algo(algo);
  RING_TRY(host->arg_int(call, 4, &c.timeout_ms));
  return launch(call, c, devices, outs.empty() ? ins : outs);
}

vt_status reduce_scatter(vt_call* call, void*) {
  ring::Collective c{};
  std::vector<int> devices;
  std::vector<Buffer> ins, outs;
  RING_TRY(prepare(call, ring::Kind::ReduceScatter, "ring::reduce_scatter", c, devices, ins, outs));
  RING_TRY(read_op(call, 2, "ring::reduce_scatter", &c.op));
  RING_TRY(host->arg_int(call, 3, &c.timeout_ms));
  return launch(call, c, devices, outs);
}

vt_status all_gather(vt_call* call, void*) {
  ring::Collective c{};
  std::vector<int> devices;
  std::vector<Buffer> ins, outs;
  RING_TRY(prepare(call, ring::Kind::AllGather, "ring::all_gather", c, devices, ins, outs));
  RING_TRY(host->arg_int(call, 2, &c.timeout_ms));
  return launch(call, c, devices, outs);
}

vt_status read_devices(vt_call* call, std::vector<int>& out) {
  int64_t n = 0;
  const int64_t* d = nullptr;
  RING_TRY(host->arg_int_list(call, 0, &n, &d));
  out.assign(d, d + n);
  return VT_OK;
}

vt_status check(vt_call* call, void*) {
  std::vector<int> devices;
  RING_TRY(read_devices(call, devices));
  ring::Comm* comm = ring::Comm::find(devices);
  return comm ? comm->check() : VT_OK;
}

vt_status status(vt_call* call, void*) {
  std::vector<int> devices;
  RING_TRY(read_devices(call, devices));
  std::vector<int64_t> s(12, 0);
  if (ring::Comm* comm = ring::Comm::find(devices)) {
    s[0] = 1;
    std::vector<int64_t> rest = comm->status();
    std::copy(rest.begin(), rest.end(), s.begin() + 1);
  }
  const int64_t size = int64_t(s.size());
  vt_tensor t = nullptr;
  RING_TRY(host->empty(1, &size, vt_dtype{VT_DTYPE_CODE_INT, 64, 1}, vt_device{VT_DEVICE_CPU, 0}, &t));
  vt_tensor_info info{};
  info.struct_size = sizeof(info);
  RING_TRY(host->tensor_info(t, &info));
  std::copy(s.begin(), s.end(), static_cast<int64_t*>(info.data));
  return host->set_result(call, 0, t);
}

vt_status destroy(vt_call* call, void*) {
  std::vector<int> devices;
  RING_TRY(read_devices(call, devices));
  return ring::Comm::destroy(host, devices);
}

vt_status inject_fault(vt_call* call, void*) {
  std::vector<int> devices;
  RING_TRY(read_devices(call, devices));
  int64_t rank = -1;
  RING_TRY(host->arg_int(call, 1, &rank));
  if (rank < 0 || rank >= int64_t(devices.size()))
    return fail(VT_ERROR_VALUE, "ring::inject_fault: rank %lld is not in [0, %lld)", (long long)rank, (long long)devices.size());
  ring::Comm* comm = nullptr;
  RING_TRY(ring::Comm::get(host, devices, &comm));
  comm->skip_rank_once(int(rank));
  return VT_OK;
}

struct OpDef {
  const char* schema;
  const char* name;
  vt_kernel_fn fn;
};

const OpDef kOps[] = {
    {"ring::all_reduce(Tensor[] inputs, Tensor[] outputs, int op=0, int algorithm=0, int timeout_ms=0) -> ()",
     "ring::all_reduce", all_reduce},
    {"ring::reduce_scatter(Tensor[] inputs, Tensor[] outputs, int op=0, int timeout_ms=0) -> ()",
     "ring::reduce_scatter", reduce_scatter},
    {"ring::all_gather(Tensor[] inputs, Tensor[] outputs, int timeout_ms=0) -> ()", "ring::all_gather", all_gather},
    {"ring::check(int[] devices) -> ()", "ring::check", check},
    {"ring::status(int[] devices) -> Tensor", "ring::status", status},
    {"ring::destroy(int[] devices) -> ()", "ring::destroy", destroy},
    {"ring::inject_fault(int[] devices, int rank) -> ()", "ring::inject_fault", inject_fault},
};

}  // namespace

extern "C" VT_PLUGIN_EXPORT vt_status vt_plugin_init(const vt_host_api* h, vt_registrar* reg) {
  host = h;
  if (!VT_HOST_HAS(h, cuda_peer_access))
    return h->set_error(VT_ERROR_NOT_IMPLEMENTED, "the ring plugin needs plugin ABI 1.1 (vt_host_api::cuda_peer_access)");
  for (const OpDef& op : kOps) {
    RING_TRY(h->define_op(reg, op.schema, VT_POLICY_MULTI_DEVICE));
    // The CPU key too: a call with CPU tensors (or none) reaches the checks, which name what is wrong.
    RING_TRY(h->impl_op(reg, op.name, VT_KEY_CUDA, op.fn, nullptr));
    RING_TRY(h->impl_op(reg, op.name, VT_KEY_CPU, op.fn, nullptr));
  }
  return VT_OK;
}
