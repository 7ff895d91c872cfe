"""Safetensors for vibetensor tensors, shaped like `safetensors.torch` (and `safetensors.safe_open`).

The work happens in C++ (vibetensor._C.io): every rule of the format is checked before any tensor is made, so a
bad file raises SafetensorError (with `.rule`, `.tensor` and `.offset`) and returns nothing. CPU loads view a
private memory map of the file (zero-copy, writable, the file never changes); `backend="pread"` reads into
fresh memory instead. Loads to a CUDA device read through pinned buffers straight into device memory on the
current stream. Written files are byte-identical to the package's for the same tensors and metadata (the
package writes several metadata keys in hash order; we sort them).

What this module checks before saving, as `safetensors.torch` does: a dict of tensors, contiguous tensors, no
two tensors overlapping in memory, metadata of strings.
"""
from __future__ import annotations

import os
from collections import defaultdict

from .._C import core as _core
from .._C import io as _io

SafetensorError = _io.SafetensorError
_VT_FRAMEWORKS = ("vt", "vibetensor", "pt")
_NUMPY_FRAMEWORKS = ("np", "numpy")


def _open(filename):
    fd = os.open(os.fspath(filename), os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        return _io.open_fd(fd)
    finally:
        os.close(fd)


def _device(device):
    return f"cuda:{device}" if isinstance(device, int) and not isinstance(device, bool) else device


def load_file(filename, device="cpu", *, backend="mmap"):
    """All tensors of `filename` as a dict keyed by name (in name order) on `device`."""
    f = _open(filename)
    names = f.keys()
    return dict(zip(names, f.load(names, _device(device), backend)))


def load(data):
    """All tensors of a safetensors image held in `data` (bytes), as a dict keyed by name."""
    f = _io.open_bytes(bytes(data))
    names = f.keys()
    return dict(zip(names, f.load(names, "cpu", "mmap")))


def _shared_groups(tensors):
    """Names of tensors whose bytes overlap in one storage (safetensors.torch's rule for shared tensors)."""
    by_storage = defaultdict(list)
    for name, t in tensors.items():
        if t._storage_ptr() != 0 and t._storage_nbytes() != 0:
            by_storage[(str(t.device), t._storage_ptr(), t._storage_nbytes())].append(name)
    failing = []
    for names in by_storage.values():
        areas = sorted((tensors[n].data_ptr(), tensors[n].data_ptr() + tensors[n].nbytes, n) for n in names)
        group, last_stop = {areas[0][2]}, areas[0][1]
        for start, stop, name in areas[1:]:
            if start < last_stop:
                group.add(name)
            else:
                if len(group) > 1:
                    failing.append(group)
                group = {name}
            last_stop = max(last_stop, stop)
        if len(group) > 1:
            failing.append(group)
    return failing


def _items(tensors, metadata):
    if not isinstance(tensors, dict):
        raise ValueError(f"Expected a dict of [str, Tensor] but received {type(tensors)}")
    for k, v in tensors.items():
        if not isinstance(k, str):
            raise TypeError(f"tensor names must be str, got {type(k).__name__} ({k!r})")
        if not isinstance(v, _core.Tensor):
            raise ValueError(f"Key `{k}` is invalid, expected vibetensor Tensor but received {type(v)}")
    failing = _shared_groups(tensors)
    if failing:
        raise RuntimeError(
            f"Some tensors share memory, this will lead to duplicate memory on disk and potential differences when "
            f"loading them again: {failing}. Save a clone of all but one of each group, or only the full tensor "
            f"and reslice at load time."
        )
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise TypeError(f"metadata must be a dict of str to str, got {type(metadata).__name__}")
        for k, v in metadata.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise TypeError(f"metadata must map str to str; got {k!r}: {v!r}")
        metadata = list(metadata.items())
    return list(tensors.items()), metadata


def save(tensors, metadata=None):
    """The safetensors image of `tensors` (a dict of contiguous tensors) with optional str->str metadata."""
    return _io.save_bytes(*_items(tensors, metadata))


def save_file(tensors, filename, metadata=None):
    """Writes `tensors` (a dict of contiguous tensors) and optional str->str metadata to `filename`."""
    items, metadata = _items(tensors, metadata)
    _io.save_file(items, metadata, os.fspath(filename))


class safe_open:
    """A lazily read safetensors file, as `safetensors.safe_open`: keys(), offset_keys(), metadata(),
    get_tensor(name), get_slice(name), get_tensors(). `framework` "vt" (or "pt", read as vibetensor tensors)
    or "numpy"; tensors are made on `device`. Usable as a context manager; the file stays mapped while this
    object or a CPU tensor loaded from it lives."""

    def __init__(self, filename, framework="vt", device="cpu", *, backend="mmap"):
        if framework not in _VT_FRAMEWORKS + _NUMPY_FRAMEWORKS:
            raise ValueError(f"framework must be one of {_VT_FRAMEWORKS + _NUMPY_FRAMEWORKS}, got {framework!r}")
        if framework in _NUMPY_FRAMEWORKS and _core.device(_device(device)).type != "cpu":
            raise ValueError(f"framework {framework!r} gives NumPy arrays, which live on the CPU, not {device}")
        self._file = _open(filename)
        self._numpy = framework in _NUMPY_FRAMEWORKS
        self._device = _device(device)
        self._backend = backend

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._file = None

    def _handle(self):
        if self._file is None:
            raise SafetensorError("the file was closed (the `with` block of safe_open has ended)")
        return self._file

    def keys(self):
        return self._handle().keys()

    def offset_keys(self):
        return self._handle().offset_keys()

    def metadata(self):
        pairs = self._handle().metadata()
        return None if pairs is None else dict(pairs)

    def _convert(self, t):
        return t.numpy() if self._numpy else t

    def get_tensor(self, name):
        (t,) = self._handle().load([name], self._device, self._backend)
        return self._convert(t)

    def get_tensors(self):
        names = self.offset_keys()
        return {n: self._convert(t) for n, t in zip(names, self._handle().load(names, self._device, self._backend))}

    def get_slice(self, name):
        dtype, shape = self._handle().entry(name)
        return _Slice(self, name, dtype, shape)


class _Slice:
    """A tensor of an open file, read only when indexed: `get_shape()`, `get_dtype()` (the file's dtype
    string), and basic indexing (ints, slices with positive steps, Ellipsis) giving a contiguous tensor."""

    def __init__(self, owner, name, dtype, shape):
        self._owner, self._name, self._dtype, self._shape = owner, name, dtype, shape

    def get_shape(self):
        return list(self._shape)

    def get_dtype(self):
        return self._dtype

    def __getitem__(self, index):
        items = index if isinstance(index, tuple) else (index,)
        for i in items:
            if isinstance(i, slice) and i.step is not None and i.step <= 0:
                raise ValueError("step must be greater than zero")
        # The CPU view of the map costs nothing; only the selected part is copied (to the device, if any, and
        # always under backend "pread", which promises that nothing keeps the file).
        (whole,) = self._owner._handle().load([self._name], "cpu", "mmap")
        part = whole[index]
        part = part.clone() if self._owner._backend == "pread" and part.is_contiguous() else part.contiguous()
        device = self._owner._device
        if _core.device(device).type != "cpu":
            part = part.to(device)
        return self._owner._convert(part)
