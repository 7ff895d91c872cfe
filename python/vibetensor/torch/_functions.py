"""torch-shaped free functions over the dispatcher's ops.

Most functions are OpHandles (each call is parsed against the op's schema in C++); the ones here need
torch's Python-level conveniences: overloads (max(t) / max(t, dim) / max(a, b)), varargs shapes, `unbiased`,
namedtuple results, and compositions (stack, split, chunk, movedim...).
"""
from __future__ import annotations

import builtins
import collections
import math

import numpy as np

from .._C import core as _core
from ._factory_layout import _c_empty, _check_layout
from ._generator import draw
from . import _default_device
from ._tensor_infer import numpy_aware_dtype

Tensor = _core.Tensor
dtype = _core.dtype
_op = _core.op
_full = _op("vt::full")

min_max = collections.namedtuple("return_types", ["values", "indices"])


def _device(device):
    """A device object, checked to exist: a missing CUDA device is named in the error."""
    if device is None:
        return None
    dev = device if isinstance(device, _core.device) else _core.device(device)
    if dev.type == "cuda":
        from .. import cuda

        n = cuda.device_count()
        if n == 0:
            raise RuntimeError(f"cannot use device {dev}: {cuda.unavailable_reason()}")
        if (dev.index or 0) >= n:
            raise RuntimeError(f"device {dev} does not exist: this machine has {n} CUDA device(s)")
    return dev


def _factory_device(device):
    """A factory's device: the one given, else the default device (_default_device.py), else None (the CPU)."""
    return _device(device if device is not None else _default_device.current())


# ---- factories ----
# empty/zeros/ones(*size, dtype=, layout=, device=) are parsed in C++ (core/bindings/tensor.cpp): they are hot. They
# call back for a layout= and, once a default device was ever set, for it (Note [Factory hooks]).
empty, zeros, ones = _core.empty, _core.zeros, _core.ones
_core._set_factory_hooks(_check_layout, lambda: _device(_default_device.current()))  # checked as the others


def _requiring_grad(t, requires_grad):
    """Factories' requires_grad=True: the new tensor is a leaf that requires grad."""
    return t.requires_grad_() if requires_grad else t


full = _core.full  # in C++ as the factories above


arange = _core.arange  # in C++ as full


def linspace(start, end, steps, *, dtype=None, layout=None, device=None, requires_grad=False):
    if layout is not None:
        _check_layout(layout, "linspace")
    out = _op("vt::linspace")(start, end, steps, dtype=dtype, device=_factory_device(device))
    return _requiring_grad(out, requires_grad)


def eye(n, m=None, *, dtype=None, layout=None, device=None, requires_grad=False):
    if layout is not None:
        _check_layout(layout, "eye")
    return _requiring_grad(_op("vt::eye")(n, m, dtype=dtype, device=_factory_device(device)), requires_grad)


def _like(t, dtype, device):
    return dtype or t.dtype, _device(device) if device is not None else t.device  # not the default device


def empty_like(t, *, dtype=None, device=None):
    d, dev = _like(t, dtype, device)
    return _core.empty(list(t.shape), dtype=d, device=dev)  # the C++ factory: no generic op call


def zeros_like(t, *, dtype=None, device=None):
    d, dev = _like(t, dtype, device)
    return full(t.shape, 0, dtype=d, device=dev)


def ones_like(t, *, dtype=None, device=None):
    d, dev = _like(t, dtype, device)
    return full(t.shape, 1, dtype=d, device=dev)


def full_like(t, fill_value, *, dtype=None, device=None):
    d, dev = _like(t, dtype, device)
    return full(t.shape, fill_value, dtype=d, device=dev)


def _random_size(name, size, kw):
    """rand/randn's sizes: positional, or size=; neither is torch's TypeError (it was a KeyError here)."""
    if size:
        return size
    if "size" not in kw:
        raise TypeError(f'{name}() missing 1 required positional arguments: "size"')
    return (kw.pop("size"),)


_uniform_, _normal_, _random_ = _op("vt::uniform_"), _op("vt::normal_"), _op("vt::random_")


def rand(*size, dtype=None, layout=None, device=None, generator=None, requires_grad=False, **kw):
    if layout is not None:
        _check_layout(layout, "rand")
    t = _c_empty(*_random_size("rand", size, kw), dtype=dtype, device=_factory_device(device))
    return _requiring_grad(draw(generator, _uniform_, t, 0.0, 1.0), requires_grad)


def randn(*size, dtype=None, layout=None, device=None, generator=None, requires_grad=False, **kw):
    if layout is not None:
        _check_layout(layout, "randn")
    t = _c_empty(*_random_size("randn", size, kw), dtype=dtype, device=_factory_device(device))
    return _requiring_grad(draw(generator, _normal_, t, 0.0, 1.0), requires_grad)


def randint(low, high=None, size=None, *, dtype=None, layout=None, device=None, generator=None):
    if layout is not None:
        _check_layout(layout, "randint")
    if size is None:  # randint(high, size)
        low, high, size = 0, low, high
    t = _c_empty(tuple(size), dtype=dtype or _core.dtype.int64, device=_factory_device(device))  # () is 0-dim
    return draw(generator, _random_, t, low, high)


def rand_like(t, *, dtype=None, device=None):
    return _uniform_(empty_like(t, dtype=dtype, device=device), 0.0, 1.0)


def randn_like(t, *, dtype=None, device=None):
    return _normal_(empty_like(t, dtype=dtype, device=device), 0.0, 1.0)


def _infer_dtype(arr):
    if arr.dtype == np.bool_:
        return _core.dtype.bool
    if arr.dtype.kind in "iu":
        return _core.dtype.int64 if arr.dtype != np.uint8 else _core.dtype.uint8
    if arr.dtype.kind == "f":
        return _core.dtype.float32
    raise TypeError(f"can't convert data of type {arr.dtype} to a tensor")


_INT_BOUNDS = {"uint8": (-255, 255), "int8": (-128, 127), "int16": (-2**15, 2**15 - 1), "int32": (-2**31, 2**31 - 1),
               "int64": (-2**63, 2**63 - 1)}


def _check_fits(arr, target):
    """Python numbers must fit the dtype they become (torch: "value cannot be converted to type int8 without
    overflow"); NumPy arrays are cast as they are, as torch casts them. A negative int may wrap into uint8, as
    in torch. Float targets take inf; bool takes anything."""
    name = str(target).split(".")[-1]
    if arr.size == 0 or name not in _INT_BOUNDS:
        return
    lo, hi = _INT_BOUNDS[name]
    if arr.dtype.kind == "f":
        lo, hi = (0, 255) if name == "uint8" else (lo, hi)
        if np.isnan(arr).any():
            bad = math.nan
        else:
            small, big = float(arr.min()), float(arr.max())
            bad = small if small < lo else big if big > hi else None
    elif arr.dtype.kind in "iu":
        small, big = int(arr.min()), int(arr.max())
        bad = small if small < lo else big if big > hi else None
    else:
        return
    if bad is not None:
        raise RuntimeError(f"value cannot be converted to type {name} without overflow: {bad}")


def _as_int64_values(arr, what):
    """Python ints beyond int64 (NumPy makes them uint64 or object arrays) are refused as torch refuses them."""
    if arr.dtype == np.uint64:
        if arr.size and int(arr.max()) > 2**63 - 1:
            raise ValueError(f"Overflow when unpacking long long: {what} holds {int(arr.max())}, beyond int64")
        return arr.astype(np.int64)
    return arr


def tensor(data, *, dtype=None, device=None, requires_grad=False):
    """A new tensor holding a copy of `data` (nested lists, numbers, NumPy arrays or tensors)."""
    t = _core._number_tensor(data, dtype)  # a Python number, made as below, or None
    if t is None and isinstance(data, (list, tuple)):
        t = _core._sequence_tensor(data, dtype)  # Python numbers in lists (Note [Tensors from Python lists])
    if t is not None:
        dev = _factory_device(device)
        return _requiring_grad(t if dev is None else t.to(dev), requires_grad)
    if isinstance(data, Tensor):  # a copy without history, as torch (which also warns)
        out = data.detach().clone() if dtype is None else data.detach().to(dtype)
        dev = _factory_device(device)
        return _requiring_grad(out if dev is None else out.to(dev), requires_grad)
    try:
        arr = np.asarray(data) if not isinstance(data, np.ndarray) else data
    except ValueError as e:  # ragged nesting: a number where a sequence belongs is a TypeError in torch
        kinds = {isinstance(x, (list, tuple)) for x in data} if isinstance(data, (list, tuple)) else {True}
        raise (TypeError if len(kinds) > 1 else ValueError)(
            f"tensor(): data must be nested sequences of equal length ({e})") from None
    if arr.dtype == object:
        leaves = arr.ravel()
        if builtins.any(isinstance(v, int) and not -2**63 <= v < 2**63 for v in leaves):
            raise ValueError("Overflow when unpacking long long: an integer in the data is outside the int64 range")
        odd = next((v for v in leaves if not isinstance(v, (bool, int, float))), data)
        raise RuntimeError(f"Could not infer dtype of {type(odd).__name__}")
    target = _core.parse_dtype(dtype) if dtype is not None else None
    if target is None and not isinstance(data, np.ndarray):
        target = numpy_aware_dtype(data)  # NumPy leaves keep their dtypes, as in torch
        target = _infer_dtype(arr) if target is None else target
    if isinstance(data, np.ndarray) and arr.dtype.kind not in "biuf":
        raise TypeError(f"can't convert np.ndarray of type {arr.dtype}")
    if not isinstance(data, np.ndarray):
        arr = _as_int64_values(arr, "the data")
        _check_fits(arr, target)
    if arr.dtype == np.float16 or arr.dtype.kind in "biuf":
        src = np.array(arr, order="C", copy=True)  # keeps 0-d arrays 0-d, unlike ascontiguousarray
        if src.dtype == np.uint64 and src.size and int(src.max()) > 2**63 - 1:
            raise TypeError("can't convert np.ndarray of type numpy.uint64 holding values beyond the int64 range "
                            "(vibetensor has no uint64 dtype)")
        if src.dtype.kind == "u" and src.dtype != np.uint8:
            src = src.astype(np.int64)
        t = _core.from_dlpack_capsule(src.__dlpack__())
    else:
        raise TypeError(f"can't convert data of type {arr.dtype}")
    if target is not None and t.dtype != target:
        t = t.to(target)
    dev = _factory_device(device)
    return _requiring_grad(t if dev is None else t.to(dev), requires_grad)


def from_numpy(arr):
    """A tensor sharing memory with the NumPy array `arr` (zero-copy, like torch.from_numpy)."""
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"expected np.ndarray (got {type(arr).__name__})")
    if arr.dtype.kind not in "biuf" or (arr.dtype.kind == "u" and arr.dtype != np.uint8):
        raise TypeError(
            f"can't convert np.ndarray of type numpy.{arr.dtype}. The only supported types are: float64, float32, "
            "float16, int64, int32, int16, int8, uint8, and bool.")
    if builtins.any(s % arr.itemsize for s in arr.strides) or builtins.any(s < 0 for s in arr.strides):
        raise ValueError("At least one stride in the given numpy array is negative or not a multiple of the element "
                         "size; this is not supported. (You can probably work around this by making a copy of your "
                         "array with array.copy().)")
    if not arr.flags.writeable:
        arr = arr.view()
        arr.flags.writeable = False
    return _core.from_dlpack_capsule(_export(arr))


def _export(arr):
    try:
        return arr.__dlpack__(max_version=(1, 0))
    except (TypeError, BufferError):
        return arr.__dlpack__()


def from_dlpack(ext):
    """A tensor viewing the memory of any DLPack producer (or an unconsumed capsule)."""
    if hasattr(ext, "__dlpack__"):
        kw = {}
        if hasattr(ext, "__dlpack_device__") and ext.__dlpack_device__()[0] in (2, 13):
            # The producer orders its pending work before our current stream (1 = the legacy default).
            from .. import cuda

            kw["stream"] = cuda.current_stream(ext.__dlpack_device__()[1]).cuda_stream or 1
        try:
            cap = ext.__dlpack__(max_version=(1, 1), **kw)
        except TypeError:
            cap = ext.__dlpack__(**kw)
        return _core.from_dlpack_capsule(cap)
    return _core.from_dlpack_capsule(ext)


# ---- reductions with torch's overloads ----
def _dims(dim):
    if dim is None:
        return None
    return [dim] if isinstance(dim, int) else list(dim)


def sum(input, dim=None, keepdim=False, *, dtype=None):
    return input.sum(dim, keepdim, dtype=dtype)


def mean(input, dim=None, keepdim=False, *, dtype=None):
    return _op("vt::mean")(input, _dims(dim), keepdim, dtype=dtype)


def prod(input, dim=None, keepdim=False, *, dtype=None):
    return _op("vt::prod")(input, _dims(dim), keepdim, dtype=dtype)


def _extreme(name, input, dim=None, keepdim=False, *, other=None):
    if isinstance(dim, Tensor):
        return _op("vt::maximum" if name == "max" else "vt::minimum")(input, dim)
    if dim is None:
        return _op(f"vt::{name}")(input)
    return min_max(*_op(f"vt::{name}_dim")(input, dim, keepdim))


def max(input, dim=None, keepdim=False):
    return _extreme("max", input, dim, keepdim)


def min(input, dim=None, keepdim=False):
    return _extreme("min", input, dim, keepdim)


def _correction(unbiased, correction):
    if correction is not None:
        return correction
    return 1 if unbiased in (None, True) else 0


def var(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    if isinstance(dim, builtins.bool):  # var(x, False): the legacy `unbiased` positional
        dim, unbiased = None, dim
    return _op("vt::var")(input, _dims(dim), correction=_correction(unbiased, correction), keepdim=keepdim)


def std(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    if isinstance(dim, builtins.bool):
        dim, unbiased = None, dim
    return _op("vt::std")(input, _dims(dim), correction=_correction(unbiased, correction), keepdim=keepdim)


def norm(input, p="fro", dim=None, keepdim=False, dtype=None):
    if isinstance(p, str) and p != "fro":  # torch's matrix-norm orders: "fro" (the 2-norm of the elements), "nuc"
        if p == "nuc":
            raise NotImplementedError("norm: the nuclear norm (p='nuc') needs an SVD, which vibetensor lacks")
        raise RuntimeError(f"linalg.matrix_norm: Order {p} not supported.")
    p = 2 if p in ("fro", None) else p
    return _op("vt::norm")(input, p, _dims(dim), keepdim)


def logsumexp(input, dim, keepdim=False):
    return _op("vt::logsumexp")(input, _dims(dim), keepdim)


def amax(input, dim=(), keepdim=False):
    return _op("vt::amax")(input, _dims(dim), keepdim)


def amin(input, dim=(), keepdim=False):
    return _op("vt::amin")(input, _dims(dim), keepdim)


def all(input, dim=None, keepdim=False):
    return _op("vt::all")(input, _dims(dim), keepdim)


def any(input, dim=None, keepdim=False):
    return _op("vt::any")(input, _dims(dim), keepdim)


def allclose(a, b, rtol=1e-5, atol=1e-8, equal_nan=False):
    return builtins.bool(isclose(a, b, rtol, atol, equal_nan).all())


def isclose(a, b, rtol=1e-5, atol=1e-8, equal_nan=False):
    a, b = (x if isinstance(x, Tensor) else tensor(x) for x in (a, b))
    t = _core.promote_types(a.dtype, b.dtype)
    a, b = a.to(t), b.to(t)
    if not t.is_floating_point:
        return a == b
    close = (a - b).abs() <= atol + rtol * b.abs()
    close = close | (a == b)
    if equal_nan:
        close = close | (a.isnan() & b.isnan())
    return close


def equal(a, b):
    # torch's CUDA kernel answers True for a tensor and an identical view of it without comparing (so a NaN
    # equals itself there); its CPU kernel compares.
    if a.is_cuda and a.data_ptr() == b.data_ptr() and a.dtype == b.dtype and a.device == b.device and \
            tuple(a.shape) == tuple(b.shape) and a.stride() == b.stride():
        return True
    return tuple(a.shape) == tuple(b.shape) and builtins.bool((a == b).all())


# ---- shape compositions ----
def _wrap(dim, ndim):
    if not -ndim <= dim < ndim:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-ndim}, {ndim - 1}], but got {dim})")
    return dim % ndim


def stack(tensors, dim=0):
    return _stack(tensors, dim)  # parsed and checked in C++ (core/bindings/tensor.cpp), as cat's


_stack = _core.stack


def split(t, split_size_or_sections, dim=0):
    n = t.size(dim)
    if isinstance(split_size_or_sections, int):
        s = split_size_or_sections
        if s <= 0 and n > 0:
            raise RuntimeError(f"split_size can only be 0 if dimension size is 0, but got dimension size of {n}")
        sizes = [builtins.min(s, n - i) for i in range(0, n, s)] if n else [0]
    else:
        sizes = list(split_size_or_sections)
        if builtins.sum(sizes) != n:
            raise RuntimeError(f"split_with_sizes expects split_sizes to sum exactly to {n} (input tensor's size at "
                               f"dimension {dim}), but got split_sizes={sizes}")
    return tuple(_op("vt::split_with_sizes")(t, sizes, dim))


def chunk(t, chunks, dim=0):
    if chunks <= 0:
        raise RuntimeError(f"chunk expects `chunks` to be greater than 0, got: {chunks}")
    n = t.size(dim)
    if n == 0:  # torch returns `chunks` empty pieces
        return tuple(t.narrow(dim, 0, 0) for _ in range(chunks))
    return split(t, -(-n // chunks), dim)


def unbind(t, dim=0):
    return tuple(_op("vt::unbind")(t, dim))


def movedim(t, source, destination):
    src = [source] if isinstance(source, int) else list(source)
    dst = [destination] if isinstance(destination, int) else list(destination)
    nd = t.dim()
    if len(src) != len(dst):
        raise RuntimeError(f"movedim: Invalid source or destination dims: source ({src} dims) should contain the "
                           f"same number of dims as destination ({dst} dims)")
    src = [_wrap(s, builtins.max(nd, 1)) for s in src]
    dst = [_wrap(d, builtins.max(nd, 1)) for d in dst]
    order = [d for d in range(nd) if d not in src]
    perm = [None] * nd
    for s, d in zip(src, dst):
        perm[d] = s
    rest = iter(order)
    perm = [p if p is not None else next(rest) for p in perm]
    return t.permute(perm)


def cat(tensors, dim=0):  # a Python signature for out= (Note [out= by copy]); parsed and checked in C++
    return _cat(tensors, dim)


_cat = _core.cat


def square(input):
    """x * x; bool squares to int64, as in torch (it is pow(x, 2))."""
    if input.dtype == _core.dtype.bool:
        input = input.long()
    return _op("vt::square")(input)


def round(input, decimals=0):
    """Round half to even; with `decimals`, at that many decimal places (as torch: scale, round, unscale)."""
    if decimals == 0:
        return _op("vt::round")(input)
    scale = 10.0 ** decimals
    return _op("vt::round")(input * scale) / scale


def matmul(input, other):
    """torch.matmul: dot (1-D x 1-D), matrix-vector, vector-matrix, matrix product, and batched products with
    broadcast batch dims (vt::matmul, core/src/ops/matmul_composite.cpp)."""
    for i, (name, t) in enumerate((("input", input), ("other", other))):
        if not isinstance(t, Tensor):
            raise TypeError(f"matmul(): argument '{name}' (position {i + 1}) must be Tensor, not {type(t).__name__}")
    return _matmul(input, other)


_matmul = _op("vt::matmul")


def t(input):
    return input.t()


def nonzero_tuple(t):
    """nonzero(as_tuple=True): one index tensor per dim; a 0-dim tensor counts as 1-D, as in torch."""
    return tuple((t.reshape(1) if t.dim() == 0 else t).nonzero().unbind(1))


def nonzero(input, *, as_tuple=False):
    return nonzero_tuple(input) if as_tuple else _op("vt::nonzero")(input)


def where(condition, input=None, other=None):
    if input is None and other is None:
        return nonzero_tuple(condition)
    return _op("vt::where")(condition, input, other)


def clamp(input, min=None, max=None):
    """torch's two overloads: bounds that are tensors (or None) broadcast, as maximum/minimum; number bounds take
    the Scalar overload (_clamp_scalars)."""
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        if (min is None or isinstance(min, Tensor)) and (max is None or isinstance(max, Tensor)):
            return _op("vt::clamp_tensor")(input, min, max)
        min, max = _clamp_scalars("clamp", input, min, max)
    return _op("vt::clamp")(input, min, max)


def _clamp_scalars(name, input, min, max):
    """A number beside a tensor bound selects torch's Scalar overload, whose argument parser also takes a 0-dim
    tensor that does not require grad, as its value: clamp(bool_x, tensor(0.5, float16), 0.5) computes in
    float32 (the bool input meets a float number), not float16. Any other tensor there is torch's TypeError."""
    def scalar(b):
        if not isinstance(b, Tensor):
            return b
        if b.dim() == 0 and not b.requires_grad:
            return b.item()
        got = ", ".join(type(a).__name__ for a in ([input] if name == "clamp" else []) + [min, max])
        raise TypeError(f"{name}() received an invalid combination of arguments - got ({got}), but expected one of:\n"
                        f" * ({'Tensor input, ' if name == 'clamp' else ''}Tensor min = None, Tensor max = None)\n"
                        f" * ({'Tensor input, ' if name == 'clamp' else ''}Number min = None, Number max = None)")
    return scalar(min), scalar(max)


def result_type(a, b):
    """torch.result_type: Python numbers take part as wrapped numbers, so a tiny add applies the real rules."""
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        a = _full([], a)
    return _op("vt::add")(a, b).dtype


def broadcast_shapes(*shapes):
    out = []
    for s in shapes:
        s = list(s)
        if len(s) > len(out):
            out = [1] * (len(s) - len(out)) + out
        for i in range(1, len(s) + 1):
            a, b = out[-i], s[-i]
            if a != b and a != 1 and b != 1:
                raise RuntimeError(f"Shape mismatch: objects cannot be broadcast to a single shape. Mismatch is "
                                   f"between arg 0 and arg {i}")
            out[-i] = b if a == 1 else a
    return tuple(out)
