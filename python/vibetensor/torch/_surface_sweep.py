"""Tensor API names vibetensor lacked, composed over existing ops: bitwise_left_shift/bitwise_right_shift (the
functions, methods, in-place methods and the << >> <<= >>= operators), Tensor.layout (vt.strided) and the
is_meta/is_sparse/is_quantized/... flags (all False: vibetensor has only strided dense tensors), share_memory_ /
is_shared, the legacy Tensor.new, new_empty_strided, as_subclass, apply_/map_, resize_as_, histogram, the
hardshrink/prelu methods, absolute_/arctan2_/addmv_, unsafe_chunk/unsafe_split/unsafe_split_with_sizes.

Shifts follow torch's integer semantics (two's complement wrap-around): a << b is a * 2**b in a's dtype (0 when b
is negative or at least the bit width), a >> b is floor(a / 2**b) (an arithmetic shift: sign-filled when b is
negative or too wide; 0 for unsigned). The powers of two come from a per-dtype table indexed by b.

share_memory_: torch moves a CPU tensor's storage into shared memory for torch.multiprocessing; vibetensor cannot
move a storage from Python, so share_memory_ leaves CPU tensors where they are and is_shared() says so (False);
CUDA tensors count as shared, as torch's."""
from __future__ import annotations

import collections

from .._C import core as _core
from . import _functions as F
from ._out import _torch_name

Tensor = _core.Tensor
_dt = _core.dtype


def _vt():  # the package, for functions defined after _functions (imported lazily: the package imports us)
    from .. import torch
    return torch

# ---- bit shifts ----
_BITS = {_dt.int8: 8, _dt.uint8: 8, _dt.int16: 16, _dt.int32: 32, _dt.int64: 64}
_POW2 = {}


def _pow2(dtype, device):
    """[2**0, ..., 2**(bits-1)] in dtype, the top one wrapped (1 << (bits-1) is the minimum of a signed type)."""
    key = (dtype, str(device))
    if key not in _POW2:
        bits = _BITS[dtype]
        vals = [1 << k for k in range(bits)]
        if dtype != _dt.uint8:
            vals[-1] = -(1 << (bits - 1))
        _POW2[key] = F.tensor(vals, dtype=dtype, device=device)
    return _POW2[key]


def _shift_operands(a, b, kernel):
    if not isinstance(a, Tensor):
        a = F.tensor(a, device=b.device) if isinstance(b, Tensor) else F.tensor(a)
    dtype = F.result_type(a, b)
    if dtype not in _BITS:
        raise NotImplementedError(f'"{kernel}_cpu" not implemented for \'{_torch_name(dtype)}\'')
    b = b.to(dtype) if isinstance(b, Tensor) else F.tensor(b, dtype=dtype, device=a.device)
    return a.to(dtype), b, dtype


def _lshift(a, b):
    a, b, dtype = _shift_operands(a, b, "lshift")
    bits = _BITS[dtype]
    ok = (b >= 0) & (b < bits)
    k = F.where(ok, b, 0).to(_dt.int64)
    return F.where(ok, a * _pow2(dtype, a.device)[k], 0).to(dtype)


def _rshift(a, b):
    a, b, dtype = _shift_operands(a, b, "rshift")
    bits = _BITS[dtype]
    top = bits if dtype == _dt.uint8 else bits - 1  # a signed type's top power of two is negative: sign-fill there
    ok = (b >= 0) & (b < top)
    k = F.where(ok, b, 0).to(_dt.int64)
    fill = F.zeros_like(a) if dtype == _dt.uint8 else F.where(a < 0, -1, 0).to(dtype)
    return F.where(ok, a // _pow2(dtype, a.device)[k], fill).to(dtype)


def bitwise_left_shift(input, other, *, out=None):
    res = _lshift(input, other)
    return res if out is None else out.copy_(res)


def bitwise_right_shift(input, other, *, out=None):
    res = _rshift(input, other)
    return res if out is None else out.copy_(res)


def _inplace_shift(fn):
    def method(self, other):
        rt = F.result_type(self, other)
        if rt != self.dtype and not _vt().can_cast(rt, self.dtype):
            raise RuntimeError(f"result type {_torch_name(rt)} can't be cast to the desired output type "
                               f"{_torch_name(self.dtype)}")
        return self.copy_(fn(self, other))
    return method


# ---- layouts and the backend flags ----
class layout:
    """torch.layout's stand-in: vibetensor tensors are all strided (dense); the others exist for comparisons."""

    def __init__(self, name):
        self._name = name

    def __repr__(self):
        return f"vt.{self._name}"

    def __reduce__(self):
        return self._name


strided, sparse_coo, sparse_csr, sparse_csc, sparse_bsr, sparse_bsc, jagged, _mkldnn = (
    layout(n) for n in ("strided", "sparse_coo", "sparse_csr", "sparse_csc", "sparse_bsr", "sparse_bsc", "jagged",
                        "_mkldnn"))

_FALSE_FLAGS = ("is_meta", "is_sparse", "is_sparse_csr", "is_quantized", "is_nested", "is_mkldnn", "is_vulkan",
                "is_xpu", "is_mps", "is_ipu", "is_xla", "is_maia", "is_mtia")


def share_memory_(self):
    return self  # see the module docstring: CPU storages stay private, CUDA ones are shareable as they are


def is_shared(self):
    return self.is_cuda


# ---- constructors ----
def new(self, *args, device=None):
    """The legacy constructor: new() an empty 1-D tensor, new(*sizes) / new(Size or tuple of ints) an
    uninitialised one, new(list) a copy of the data, new(tensor) an alias of a tensor of this dtype; always self's
    dtype, and self's device unless one is given."""
    device = self.device if device is None else device
    if len(args) == 1 and isinstance(args[0], Tensor):
        other = args[0]
        if other.dtype != self.dtype:
            raise TypeError(f"expected {_torch_name(self.dtype)} tensor (got {_torch_name(other.dtype)} tensor)")
        return other.view_as(other).detach() if other.requires_grad else other.view_as(other)
    if not args:
        return F.empty(0, dtype=self.dtype, device=device)
    if len(args) == 1 and isinstance(args[0], tuple) and all(isinstance(a, int) for a in args[0]):
        # torch reads a Size as sizes and a plain tuple as data; vibetensor's Size (and .shape) is a plain tuple,
        # so a tuple of ints is sizes here (x.new(x.shape) is the idiom); pass a list for data
        args = args[0]
    if all(isinstance(a, int) and not isinstance(a, bool) for a in args):
        for a in args:
            if a < 0:
                raise RuntimeError(f"Trying to create tensor with negative dimension {a}: {list(args)}")
        return F.empty(*args, dtype=self.dtype, device=device)
    if len(args) == 1:
        data = args[0]
        if isinstance(data, (list, tuple)):
            return F.tensor(data, dtype=self.dtype, device=device)
        if isinstance(data, str):
            raise TypeError(f"new(): invalid data type '{type(data).__name__}'")
        raise TypeError(f"new(): data must be a sequence (got {type(data).__name__})")
    raise TypeError(f"new() received an invalid combination of arguments - got {tuple(type(a).__name__ for a in args)}")


def new_empty_strided(self, size, stride, *, dtype=None, layout=None, device=None, pin_memory=False,
                      requires_grad=False):
    out = _vt().empty_strided(tuple(size), tuple(stride), dtype=self.dtype if dtype is None else dtype,
                          device=self.device if device is None else device)
    return out.requires_grad_() if requires_grad else out


def as_subclass(self, cls):
    """vibetensor's compiled Tensor cannot be re-classed from Python: as_subclass(Tensor) (or a base of it) gives
    an alias on the autograd graph, as torch's; a Python subclass is refused."""
    if isinstance(cls, type) and issubclass(Tensor, cls):
        return self.view_as(self)
    raise TypeError(f"as_subclass: vibetensor cannot make a {getattr(cls, '__name__', cls)!r} instance from Python "
                    "(its Tensor type is compiled); only as_subclass(vt.Tensor) is supported")


# ---- apply_ / map_ (CPU, elementwise Python callables, as torch's) ----
def _check_python_fn(self, name):
    if self.requires_grad:
        raise RuntimeError(f"Can't call {name}() on Variable that requires grad. Use var.detach().{name}() "
                           "instead.")
    if not self.is_cpu:
        raise TypeError(f"{name} is only implemented on CPU tensors")


def _cast(dtype):
    if dtype == _dt.bool:
        return bool
    return float if dtype.is_floating_point else int


def apply_(self, callable):
    _check_python_fn(self, "apply_")
    cast = _cast(self.dtype)
    flat = self.reshape(-1).tolist()
    vals = [cast(callable(v)) for v in flat]
    return self.copy_(F.tensor(vals, dtype=self.dtype).reshape(self.shape))


def map_(self, tensor, callable):
    _check_python_fn(self, "map_")
    if tensor.dtype != self.dtype:
        raise TypeError(f"map_: expected torch.{_torch_name(self.dtype)}Tensor for 'other' (got "
                        f"torch.{_torch_name(tensor.dtype)}Tensor)")
    cast = _cast(self.dtype)
    other = tensor.expand(self.shape).reshape(-1).tolist()
    vals = [cast(callable(a, b)) for a, b in zip(self.reshape(-1).tolist(), other)]
    return self.copy_(F.tensor(vals, dtype=self.dtype).reshape(self.shape))


def resize_as_(self, the_template, memory_format=None):
    return self.resize_(tuple(the_template.shape))


# ---- histogram ----
histogram_result = collections.namedtuple("histogram", ["hist", "bin_edges"])


def histogram(input, bins, *, range=None, weight=None, density=False, out=None):
    """torch.histogram: counts (or summed weights) of input's elements per bin; bins an int (equal bins over range,
    or over [min, max] of the input, widened by 0.5 on each side when they are equal) or a 1-D tensor of edges.
    Bin i holds edges[i] <= x < edges[i + 1], the last one also its right edge; elements outside are left out.
    density=True divides by the total and the bin widths."""
    if not input.dtype.is_floating_point:
        raise NotImplementedError(f"\"histogramdd\" not implemented for '{_torch_name(input.dtype)}'")
    x = input.reshape(-1)
    if weight is not None:
        if tuple(weight.shape) != tuple(input.shape):
            raise RuntimeError("torch.histogramdd: if weight tensor is provided it should have the same shape as the "
                               "input tensor excluding its innermost dimension, but got input with shape "
                               f"{list(input.reshape(-1, 1).shape)} and weight with shape {list(weight.shape)}")
        if weight.dtype != input.dtype:
            raise RuntimeError("torch.histogramdd: if weight tensor is provided, input tensor and weight tensor "
                               f"should have the same dtype, but got input({_torch_name(input.dtype).lower()}), and "
                               f"weight({_torch_name(weight.dtype).lower()})")
    if isinstance(bins, Tensor):
        if bins.dim() != 1:
            raise RuntimeError(f"torch.histogramdd: bins tensor should have one dimension, but got {bins.dim()} "
                               "dimensions in the bins tensor for dimension 0")
        edges = bins.to(input.dtype)
    else:
        if bins <= 0:
            raise RuntimeError(f"torch.histogram(): bins must be > 0, but got {bins} for dimension 0")
        if range is not None:
            lo, hi = float(range[0]), float(range[1])
        elif x.numel():
            lo, hi = float(x.min().item()), float(x.max().item())
        else:
            lo, hi = 0.0, 1.0
        if lo > hi:
            raise RuntimeError(f"torch.histogramdd: min should not exceed max, but got min {lo:g} max {hi:g} for "
                               "dimension 0")
        if lo - lo != 0 or hi - hi != 0:
            raise RuntimeError(f"torch.histogramdd: dimension 0's range [{lo:g}, {hi:g}] is not finite")
        if lo == hi:
            lo, hi = lo - 0.5, hi + 0.5
        edges = F.linspace(lo, hi, bins + 1, dtype=input.dtype, device=input.device)
    nb = edges.shape[0] - 1
    x = x.detach()
    w = F.ones_like(x) if weight is None else weight.reshape(-1).detach()
    if nb <= 0 or x.numel() == 0:
        hist = F.zeros(max(nb, 0), dtype=input.dtype, device=input.device)
    else:
        idx = _vt().searchsorted(edges, x, right=True) - 1
        idx = F.where(x == edges[-1], nb - 1, idx)  # the last bin keeps its right edge
        inside = (x >= edges[0]) & (x <= edges[-1]) & (idx >= 0) & (idx < nb)
        hist = F.zeros(nb, dtype=input.dtype, device=input.device).scatter_add(
            0, F.where(inside, idx, 0), F.where(inside, w, 0.0).to(input.dtype))
    if density:
        hist = hist / (hist.sum() * (edges[1:] - edges[:-1]))
    res = histogram_result(hist, edges)
    if out is not None:
        out[0].resize_(tuple(hist.shape)).copy_(hist)
        out[1].resize_(tuple(edges.shape)).copy_(edges)
        return histogram_result(*out)
    return res


# ---- aliases and in-place forms ----
def _inplace(fn):
    def method(self, *args, **kwargs):
        return self.copy_(fn(self, *args, **kwargs))
    return method


def addmv_(self, mat, vec, *, beta=1, alpha=1):
    return self.copy_(_vt().addmv(self, mat, vec, beta=beta, alpha=alpha))


def unsafe_chunk(input, chunks, dim=0):
    return tuple(F.chunk(input, chunks, dim))


def unsafe_split(tensor, split_size, dim=0):
    if not isinstance(split_size, int):  # (sections go to unsafe_split_with_sizes, as torch's)
        raise TypeError(f"unsafe_split(): argument 'split_size' (position 1) must be int, not "
                        f"{type(split_size).__name__}")
    return tuple(F.split(tensor, split_size, dim))


def unsafe_split_with_sizes(input, split_sizes, dim=0):
    return tuple(_vt().split_with_sizes(input, split_sizes, dim))


FUNCTIONS = {
    "bitwise_left_shift": bitwise_left_shift, "bitwise_right_shift": bitwise_right_shift, "histogram": histogram,
    "unsafe_chunk": unsafe_chunk, "unsafe_split": unsafe_split, "unsafe_split_with_sizes": unsafe_split_with_sizes,
    "strided": strided, "sparse_coo": sparse_coo, "sparse_csr": sparse_csr, "sparse_csc": sparse_csc,
    "sparse_bsr": sparse_bsr, "sparse_bsc": sparse_bsc, "jagged": jagged, "layout": layout,
}


def _hardshrink(self, lambd=0.5):
    from .nn import functional
    return functional.hardshrink(self, lambd)


def _prelu(self, weight):
    from .nn import functional
    return functional.prelu(self, weight)


METHODS = {
    "bitwise_left_shift": lambda self, other: _lshift(self, other),
    "bitwise_right_shift": lambda self, other: _rshift(self, other),
    "bitwise_left_shift_": _inplace_shift(_lshift), "bitwise_right_shift_": _inplace_shift(_rshift),
    "__lshift__": lambda self, other: _lshift(self, other), "__rshift__": lambda self, other: _rshift(self, other),
    "__rlshift__": lambda self, other: _lshift(other, self), "__rrshift__": lambda self, other: _rshift(other, self),
    "__ilshift__": _inplace_shift(_lshift), "__irshift__": _inplace_shift(_rshift),
    "share_memory_": share_memory_, "is_shared": is_shared, "new": new, "new_empty_strided": new_empty_strided,
    "as_subclass": as_subclass, "apply_": apply_, "map_": map_, "resize_as_": resize_as_,
    "histogram": lambda self, bins, *, range=None, weight=None, density=False: histogram(
        self, bins, range=range, weight=weight, density=density),
    "hardshrink": _hardshrink, "prelu": _prelu,
    "absolute_": lambda self: self.abs_(), "arctan2_": lambda self, other: self.atan2_(other), "addmv_": addmv_,
    "unsafe_chunk": unsafe_chunk, "unsafe_split": unsafe_split, "unsafe_split_with_sizes": unsafe_split_with_sizes,
}

for _method, _fn in METHODS.items():
    if not hasattr(Tensor, _method):
        setattr(Tensor, _method, _fn)
if not hasattr(Tensor, "layout"):
    Tensor.layout = property(lambda self: strided)
for _flag in _FALSE_FLAGS:
    if not hasattr(Tensor, _flag):
        setattr(Tensor, _flag, property(lambda self: False))
