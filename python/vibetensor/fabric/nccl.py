"""NCCL's C API through ctypes: the reference backend, one communicator per ordered device set.

libnccl comes from the nvidia-nccl wheel (site-packages/nvidia/nccl/lib) or the system; nothing links it at
build time. One process drives every GPU: ncclCommInitAll builds the communicators, each call is a group of one
operation per device on that device's current vibetensor stream (as torch.cuda.nccl), so it is stream-ordered
and needs no host synchronization. NCCL refuses two ranks on one GPU, so emulated devices cannot use it: the
caller gets a FabricError saying so and naming the "p2p" backend.
"""
from __future__ import annotations

import ctypes
import glob
import os
import sys

from .errors import FabricError

def _dtype_name(dtype) -> str:
    """"float32" for vt.float32 and torch.float32 alike (vibetensor's dtypes print as "vt.<name>")."""
    return str(dtype).rsplit(".", 1)[-1]


_DTYPES = {"float32": 7, "float64": 8, "float16": 6, "bfloat16": 9, "int32": 2, "int64": 4, "uint8": 1, "int8": 0}
_OPS = {"sum": 0, "prod": 1, "max": 2, "min": 3, "avg": 4}
_lib = None
_load_error: str | None = None  # why NCCL could not be loaded, found once ("auto" asks on every collective)
_comms: dict[tuple[int, ...], list] = {}


def _load():
    global _lib, _load_error
    if _lib is not None:
        return _lib
    if _load_error is not None:
        raise FabricError(_load_error)
    candidates = []
    for base in sys.path:
        candidates += sorted(glob.glob(os.path.join(base, "nvidia", "nccl", "lib", "libnccl.so*")))
    candidates.append("libnccl.so.2")
    errors = []
    for name in candidates:
        try:
            lib = ctypes.CDLL(name)
            lib.ncclGetErrorString.restype = ctypes.c_char_p
            _lib = lib
            return lib
        except OSError as e:
            errors.append(str(e))
    _load_error = "NCCL is not available (install the nvidia-nccl-cu13 wheel): " + "; ".join(errors[-2:])
    raise FabricError(_load_error)


def available() -> bool:
    try:
        _load()
        return True
    except FabricError:
        return False


def version() -> str | None:
    try:
        lib = _load()
    except FabricError:
        return None
    v = ctypes.c_int()
    if lib.ncclGetVersion(ctypes.byref(v)) != 0:
        return None
    c = v.value
    return f"{c // 10000}.{(c % 10000) // 100}.{c % 100}" if c >= 10000 else str(c)


def _check(rc, what):
    if rc != 0:
        raise FabricError(f"NCCL {what} failed: {_lib.ncclGetErrorString(rc).decode()} (code {rc})")


def communicators(devices: list[int]) -> list:
    import vibetensor.cuda as vcuda

    if vcuda.is_emulated():
        raise FabricError("NCCL refuses several ranks on one GPU, and these devices are emulated "
                          f"({vcuda.emulation_label()}): use backend='p2p'")
    physical = [vcuda.physical_device(d) for d in devices]
    key = tuple(devices)
    if key not in _comms:
        lib = _load()
        comms = (ctypes.c_void_p * len(devices))()
        devlist = (ctypes.c_int * len(devices))(*physical)
        _check(lib.ncclCommInitAll(comms, len(devices), devlist), "ncclCommInitAll")
        _comms[key] = list(comms)
    return _comms[key]


def run(kind: str, ins, outs, op: str, root: int, devices: list[int]) -> None:
    """One NCCL collective over per-device tensors, enqueued on each device's current stream."""
    import vibetensor.cuda as vcuda

    lib = _load()
    comms = communicators(devices)
    dt = _DTYPES.get(_dtype_name(ins[0].dtype))
    if dt is None:
        raise FabricError(f"NCCL backend: dtype {ins[0].dtype} is not supported")
    _check(lib.ncclGroupStart(), "ncclGroupStart")
    try:
        for r, d in enumerate(devices):
            stream = ctypes.c_void_p(vcuda.current_stream(d).cuda_stream)
            comm = ctypes.c_void_p(comms[r])
            src, dst = ctypes.c_void_p(ins[r].data_ptr()), ctypes.c_void_p(outs[r].data_ptr())
            if kind == "all_reduce":
                rc = lib.ncclAllReduce(src, dst, ctypes.c_size_t(ins[r].numel()), dt, _OPS[op], comm, stream)
            elif kind == "reduce_scatter":
                rc = lib.ncclReduceScatter(src, dst, ctypes.c_size_t(outs[r].numel()), dt, _OPS[op], comm, stream)
            elif kind == "all_gather":
                rc = lib.ncclAllGather(src, dst, ctypes.c_size_t(ins[r].numel()), dt, comm, stream)
            elif kind == "broadcast":
                rc = lib.ncclBroadcast(src, dst, ctypes.c_size_t(ins[r].numel()), dt, root, comm, stream)
            elif kind == "reduce":
                rc = lib.ncclReduce(src, dst, ctypes.c_size_t(ins[r].numel()), dt, _OPS[op], root, comm, stream)
            else:
                raise FabricError(f"NCCL backend: unknown collective {kind}")
            _check(rc, kind)
    finally:
        _check(lib.ncclGroupEnd(), "ncclGroupEnd")


# ---- one rank per process (torchrun): the path beyond one machine ----

class UniqueId(ctypes.Structure):
    _fields_ = [("internal", ctypes.c_char * 128)]  # NCCL_UNIQUE_ID_BYTES


def unique_id() -> bytes:
    """A new communicator id (rank 0 makes it; every rank receives the same bytes)."""
    lib = _load()
    uid = UniqueId()
    _check(lib.ncclGetUniqueId(ctypes.byref(uid)), "ncclGetUniqueId")
    return bytes(uid)  # all 128 bytes (reading the c_char field would stop at its first NUL)


def init_rank(nranks: int, rank: int, uid: bytes, device: int):
    """This process's communicator: rank `rank` of `nranks`, on vibetensor device `device`."""
    import vibetensor.cuda as vcuda

    lib = _load()
    if len(uid) != 128:
        raise FabricError(f"NCCL unique id must be 128 bytes, got {len(uid)}")
    vcuda.set_device(device)  # NCCL binds the communicator to the current device
    comm = ctypes.c_void_p()
    _check(lib.ncclCommInitRank(ctypes.byref(comm), nranks, UniqueId.from_buffer_copy(uid), rank), "ncclCommInitRank")
    return comm


def run_rank(kind: str, comm, x, out, op: str) -> None:
    """One collective of this process's rank, on the current stream of x's device."""
    import vibetensor.cuda as vcuda

    lib = _load()
    dt = _DTYPES.get(_dtype_name(x.dtype))
    if dt is None:
        raise FabricError(f"NCCL backend: dtype {x.dtype} is not supported")
    stream = ctypes.c_void_p(vcuda.current_stream(x.device.index).cuda_stream)
    src, dst = ctypes.c_void_p(x.data_ptr()), ctypes.c_void_p(out.data_ptr())
    if kind == "all_reduce":
        rc = lib.ncclAllReduce(src, dst, ctypes.c_size_t(x.numel()), dt, _OPS[op], comm, stream)
    elif kind == "reduce_scatter":
        rc = lib.ncclReduceScatter(src, dst, ctypes.c_size_t(out.numel()), dt, _OPS[op], comm, stream)
    elif kind == "all_gather":
        rc = lib.ncclAllGather(src, dst, ctypes.c_size_t(x.numel()), dt, comm, stream)
    else:
        raise FabricError(f"NCCL backend: unknown collective {kind}")
    _check(rc, kind)
