"""vt.save / vt.load: torch's call shapes (save(obj, f); load(f, map_location=None, weights_only=None)) over
vibetensor's own file format. Files are NOT torch's .pt format: torch cannot read them and vt cannot read torch's
(load recognises torch's zip archive and says so); move checkpoints between the two through NumPy arrays.

Format (version 1): the 8 bytes b"VTSAVE1\\n", then one pickle stream of `obj`. Tensors (and devices) leave the
pickle through persistent ids, so no vibetensor class is ever pickled by reference:
  ("tensor", key, dtype name, shape, device string, requires_grad, is Parameter, C-order bytes)
  ("tensor_ref", key)         a later reference to a tensor object already written (identity kept on load)
  ("device", device string)
Bytes are the tensor's elements in C order on the host (bfloat16 as its 16-bit patterns); a view is saved as its
own data (storage sharing between different tensor objects is not kept, unlike torch). dtypes pickle as
vibetensor._C.core.dtype.

Note [weights_only]
load(weights_only=True), the default as in torch >= 2.6, unpickles through a restricted Unpickler: only tensors,
devices, dtypes, builtins containers/numbers/strings/bytes, collections.OrderedDict and collections.Counter (torch
allows it too: MultiStepLR keeps its milestones in one, so its state_dict holds it); any other global (a class,
a function such as os.system) raises pickle.UnpicklingError before anything of it runs. weights_only=False allows
arbitrary objects: use it only on files you trust.
"""
import io
import os
import pickle

import numpy as np

from .._C import core as _core
from . import _functions as F

_MAGIC = b"VTSAVE1\n"
_DTYPES = {str(d).split(".")[-1]: d for d in _core.dtype.__members__.values()}
_SAFE_GLOBALS = {
    ("collections", "OrderedDict"), ("collections", "Counter"), ("builtins", "set"), ("builtins", "frozenset"),
    ("builtins", "dict"), ("builtins", "list"), ("builtins", "tuple"), ("builtins", "int"), ("builtins", "float"),
    ("builtins", "complex"), ("builtins", "bool"), ("builtins", "str"), ("builtins", "bytes"),
    ("builtins", "bytearray"), ("builtins", "slice"), ("builtins", "range"), ("vibetensor._C.core", "dtype"),
}


def _dtype_name(dtype):
    return str(dtype).split(".")[-1]


def _tensor_bytes(t):
    host = t.detach()
    if host.device.type != "cpu":
        host = host.to("cpu")
    if host.dtype == _core.dtype.bfloat16:  # NumPy has no bfloat16: its bit patterns as int16
        host = host.view(_core.dtype.int16)
    return np.ascontiguousarray(host.numpy()).tobytes()


class _Pickler(pickle.Pickler):
    def __init__(self, file, protocol):
        super().__init__(file, protocol)
        self._seen = {}  # id(tensor) -> key; the tensors themselves are kept alive so ids stay unique
        self._keep = []

    def persistent_id(self, obj):
        if isinstance(obj, _core.Tensor):
            key = self._seen.get(id(obj))
            if key is not None:
                return ("tensor_ref", key)
            key = self._seen[id(obj)] = len(self._seen)
            self._keep.append(obj)
            return ("tensor", key, _dtype_name(obj.dtype), tuple(obj.shape), str(obj.device),
                    bool(obj.requires_grad), bool(getattr(obj, "_is_parameter", False)), _tensor_bytes(obj))
        if isinstance(obj, _core.device):
            return ("device", str(obj))
        return None


def _target_device(location, map_location):
    if map_location is None:
        return location
    if isinstance(map_location, dict):
        return str(map_location.get(location, location))
    return str(map_location)


def _check_device(device):
    if device.startswith("cuda"):
        from .. import cuda

        if not cuda.is_available():
            raise RuntimeError("Attempting to deserialize object on a CUDA device but cuda.is_available() is "
                               "False. If you are running on a CPU-only machine, please use vt.load with "
                               "map_location='cpu' to map your tensors to the CPU.")


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, map_location, weights_only):
        super().__init__(file)
        self._map_location = map_location
        self._weights_only = weights_only
        self._tensors = {}

    def find_class(self, module, name):
        if self._weights_only and (module, name) not in _SAFE_GLOBALS:
            raise pickle.UnpicklingError(
                f"Weights only load failed: unsupported global {module}.{name}. vt.load(weights_only=True) allows "
                "only tensors, dtypes, devices, builtin containers/numbers/strings, OrderedDict and Counter; pass "
                "weights_only=False only if you trust the file (it can run arbitrary code).")
        return super().find_class(module, name)

    def persistent_load(self, pid):
        kind = pid[0] if isinstance(pid, tuple) and pid else None
        if kind == "tensor_ref" and len(pid) == 2 and pid[1] in self._tensors:
            return self._tensors[pid[1]]
        if kind == "device" and len(pid) == 2 and isinstance(pid[1], str):
            return _core.device(pid[1])
        if kind != "tensor" or len(pid) != 8:
            raise pickle.UnpicklingError(f"malformed vt.save file: unknown tensor record {str(pid)[:80]}")
        _, key, dtype_name, shape, location, requires_grad, is_param, data = pid
        dtype = _DTYPES.get(dtype_name) if isinstance(dtype_name, str) else None
        host_dtype = _core.dtype.int16 if dtype == _core.dtype.bfloat16 else dtype
        np_dtype = F.empty(0, dtype=host_dtype).numpy().dtype if dtype is not None else None
        ok = (dtype is not None and isinstance(shape, tuple) and all(isinstance(d, int) and d >= 0 for d in shape)
              and isinstance(data, bytes) and isinstance(location, str)
              and len(data) == int(np.prod(shape, dtype=np.float64)) * np_dtype.itemsize)
        if not ok:  # rejected before any tensor of it is made
            raise pickle.UnpicklingError(f"malformed vt.save file: tensor record {key!r} (dtype {dtype_name!r}, shape "
                                         f"{shape!r}, {len(data) if isinstance(data, bytes) else '?'} data bytes) "
                                         "is inconsistent")
        array = np.frombuffer(data, dtype=np_dtype).reshape(shape).copy()
        t = F.from_numpy(array)
        if dtype == _core.dtype.bfloat16:
            t = t.view(dtype)
        if callable(self._map_location) and not isinstance(self._map_location, (str, _core.device)):
            t = self._map_location(t, location)  # torch passes a storage; here the loaded CPU tensor
        else:
            device = _target_device(location, self._map_location)
            if device != "cpu":
                _check_device(device)
                t = t.to(device)
        if is_param:
            from .nn.parameter import Parameter

            t = Parameter(t, requires_grad=requires_grad)
        elif requires_grad:
            t.requires_grad_(True)
        self._tensors[key] = t
        return t


def save(obj, f, pickle_module=None, pickle_protocol=2, _use_new_zipfile_serialization=True,
         _disable_byteorder_record=False):
    """Write obj (tensors nested in dicts, lists, tuples, numbers, strings...) to a path or a binary file object."""
    if pickle_module is not None and pickle_module is not pickle:
        raise NotImplementedError("vt.save writes with the standard pickle module only")
    if isinstance(f, (str, os.PathLike)):
        with open(f, "wb") as fh:
            return save(obj, fh, pickle_protocol=pickle_protocol)
    if not hasattr(f, "write"):
        raise AttributeError(f"expected 'f' to be string, path, or a file-like object with a 'write' attribute, "
                             f"got {type(f).__name__}")
    buf = io.BytesIO()
    buf.write(_MAGIC)
    _Pickler(buf, max(int(pickle_protocol), 3)).dump(obj)  # protocol 3+: bytes pickle without _codecs
    f.write(buf.getvalue())


def load(f, map_location=None, pickle_module=None, *, weights_only=None, mmap=None, **pickle_load_args):
    """Read what vt.save wrote. map_location: None (the saved devices), a device or its string, a dict
    {saved device string: device}, or a callable(tensor, saved device string) -> tensor. weights_only defaults to
    True (Note [weights_only])."""
    if mmap:
        raise NotImplementedError("vt.load(mmap=True) is not supported")
    if isinstance(f, (str, os.PathLike)):
        with open(f, "rb") as fh:
            return load(fh, map_location, pickle_module, weights_only=weights_only)
    if not hasattr(f, "read"):
        raise AttributeError(f"expected 'f' to be string, path, or a file-like object with a 'read' attribute, "
                             f"got {type(f).__name__}")
    weights_only = True if weights_only is None else bool(weights_only)
    head = f.read(len(_MAGIC))
    if head != _MAGIC:
        if head[:2] == b"PK" or head[:1] == b"\x80":
            raise RuntimeError("this file is not a vt.save file: it looks like torch's .pt format (a zip archive or "
                               "a legacy pickle), which vibetensor cannot read; load it with torch and convert "
                               "the tensors through NumPy (vt.from_numpy(t.numpy()))")
        raise RuntimeError("this file is not a vt.save file (its header is missing)")
    if isinstance(map_location, _core.device):
        map_location = str(map_location)
    return _Unpickler(f, map_location, weights_only).load()


__all__ = ["save", "load"]
