"""More of torch's Tensor API, composed over dispatcher ops: frexp, put_/put (flat indexing as if contiguous),
index_reduce_/index_reduce ('prod', 'mean', 'amax', 'amin'), the in-place view ops (unsqueeze_, squeeze_, t_,
transpose_, swapdims_, swapaxes_, as_strided_) and Tensor.register_post_accumulate_grad_hook. Argument checks
and their messages follow torch 2.13.

The in-place view ops change the tensor's own sizes and strides (the same Python object, the same storage):
Tensor._inplace_view_ (core/bindings/autograd.cpp) gives the tensor the geometry of the out-of-place view and,
under grad mode, that view's history, as torch rebases a non-leaf's grad_fn (UnsqueezeBackward, ...)."""
from __future__ import annotations

import collections
import weakref

from .._C import autograd as _ag
from .._C import core as _core
from ..autograd.function import Function
from . import _functions as F
from . import _out

Tensor = _core.Tensor
_dt = _core.dtype
_name = _out._torch_name  # torch's dtype names in messages: Float, Double, Long, ...

# ---- frexp ----
frexp_result = collections.namedtuple("frexp", ["mantissa", "exponent"])

# per float dtype: the integer of its width, mantissa bits, frexp's exponent bias (IEEE bias - 1: the mantissa is
# in [0.5, 1)), the smallest normal, and the power of two that makes any subnormal normal
_FREXP = {_dt.float32: (_dt.int32, 23, 126, 2.0 ** -126, 64), _dt.float64: (_dt.int64, 52, 1022, 2.0 ** -1022, 128)}


def frexp(input, *, out=None):
    """torch.frexp: input = mantissa * 2 ** exponent, |mantissa| in [0.5, 1), exponent int32; 0, inf and NaN give
    themselves and exponent 0. The exponent is read from the bits (subnormals scaled into the normal range first);
    the mantissa is input times two exact powers of two, so it is exact and its gradient is 2 ** -exponent, as
    torch's. float16/bfloat16 go through float32, where each of their values (subnormals too) is normal."""
    if not input.dtype.is_floating_point:
        raise RuntimeError("torch.frexp() only supports floating-point dtypes")
    if out is not None:
        return _out.write("frexp", frexp(input), out)
    x = input if input.dtype in _FREXP else input.float()
    bits, shift, bias, tiny, scale = _FREXP[x.dtype]
    a = x.detach().abs()
    sub = (a < tiny) & (a != 0)
    a = F.where(sub, a * 2.0 ** scale, a)
    field = a.view(bits) // (2 ** shift)  # the biased exponent (abs cleared the sign bit)
    e = (field - bias - sub.to(bits) * scale) * (x.detach().isfinite() & (a != 0)).to(bits)

    def pow2(k):  # 2 ** k as x's dtype, built from its bits (k stays within the normal range)
        return ((k + (bias + 1)) * (2 ** shift)).view(x.dtype)

    half = e // 2  # two steps, as 2 ** -e alone overflows for the smallest subnormals
    mantissa = x * pow2(-half) * pow2(half - e)
    return frexp_result(mantissa.to(input.dtype), e.to(_dt.int32))


# ---- put ----
def _check_leaf_inplace(self):
    if self.requires_grad and _ag.is_grad_enabled():
        if self.is_leaf:
            raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")
        base = self._base
        if base is not None and base.is_leaf and base.requires_grad:
            raise RuntimeError("a view of a leaf Variable that requires grad is being used in an in-place operation.")


def put_(self, index, source, accumulate=False):
    """Tensor.put_: self viewed as 1-D in row-major order (whatever its strides) gets source's values at index
    (negative from the end), summed with accumulate. The flat positions become one index per dimension, so a
    strided self is written where it lies, and the write is index_put_ (its gradient as torch's put's)."""
    if index.dtype != _dt.int64:
        raise RuntimeError(f"put_(): Expected a long tensor for index, but got {_name(index.dtype)}")
    if source.dtype != self.dtype:
        raise RuntimeError(f"put_(): self and source expected to have the same dtype, but got self.dtype = "
                           f"{_name(self.dtype)} and source.dtype = {_name(source.dtype)}")
    if source.numel() != index.numel():
        raise IndexError(f"put_(): Expected source and index to have the same number of elements, but got "
                         f"source.numel() = {source.numel()}, index.numel() = {index.numel()}")
    n = self.numel()
    if n == 0 and index.numel():
        raise IndexError("put_(): Tried to put elements into an empty tensor")
    _check_leaf_inplace(self)
    if index.numel() == 0:
        return self
    flat = index.reshape(-1)
    bad = (flat < -n) | (flat >= n)
    if bool(bad.any()):
        first = int(flat[bad.nonzero()[0, 0]])
        raise IndexError(f"out of range: tried to access index {first} on a tensor of {n} elements.")
    flat = F.where(flat < 0, flat + n, flat)
    target = self if self.dim() else self.unsqueeze(0)  # a 0-dim self: written through a 1-element view
    coords = []
    for size in reversed(target.shape):  # row-major unravel: the last dimension varies fastest
        coords.append(flat % size)
        flat = flat // size
    target.index_put_(tuple(reversed(coords)), source.reshape(-1), bool(accumulate))
    return self


def put(input, index, source, accumulate=False):
    return put_(input.clone(), index, source, accumulate)


# ---- index_reduce ----
_REDUCES = ("prod", "mean", "amax", "amin")


class IndexReduce(Function):
    """index_reduce's gradient for 'prod', 'amax' and 'amin', as torch's index_reduce_backward: scatter_reduce has
    no 'prod' gradient, and torch's index_reduce counts self among the ties of amax/amin even where include_self
    is False (its gradient there is then zeroed). For prod, zeros are masked out of the products: a source element
    that is the only zero at its target gets the product of the others, those at a target with two zeros get 0."""

    @staticmethod
    def forward(ctx, self, source, dim, index, reduce, include_self):  # index: expanded to source's shape
        result = self.scatter_reduce(dim, index, source, reduce, include_self=include_self)
        ctx.dim, ctx.reduce, ctx.include_self = dim, reduce, include_self
        ctx.save_for_backward(self, source, index, result)
        return result

    @staticmethod
    def backward(ctx, grad):
        self, source, index, result = ctx.saved_tensors
        dim, include_self = ctx.dim, ctx.include_self
        if ctx.reduce == "prod":
            masked_self = self.masked_fill(self == 0, 1)
            masked_result = masked_self.scatter_reduce(dim, index, source, "prod", include_self=include_self)
            grad_self = grad * masked_result / masked_self
            src_zero = source == 0
            zeros_at = F.zeros_like(self).scatter_add(dim, index, src_zero.to(self.dtype)).gather(dim, index)
            single_zero = src_zero & (zeros_at == 1)
            without_zero = self.scatter_reduce(dim, index, source.masked_fill(single_zero, 1), "prod",
                                               include_self=include_self)
            grad_source = F.where(single_zero, (grad * without_zero).gather(dim, index),
                                  (grad * result).gather(dim, index) / source.masked_fill(src_zero, 1))
        else:  # amax / amin: the elements equal to the result share its gradient evenly
            self_is = (self == result).to(grad.dtype)
            source_is = (source == result.gather(dim, index)).to(grad.dtype)
            share = grad / self_is.scatter_add(dim, index, source_is)
            grad_self, grad_source = self_is * share, source_is * share.gather(dim, index)
        if not include_self:  # the indexed positions of self were replaced
            hit = F.zeros_like(self).scatter_add(dim, index, F.ones_like(source))
            grad_self = grad_self * (hit == 0).to(grad_self.dtype)
        return grad_self, grad_source, None, None, None, None


def _index_reduce_checks(self, dim, index, source, reduce, name):
    if reduce not in _REDUCES:
        raise RuntimeError(f"index_reduce(): Expected reduce to be one of prod, mean, amax or amin but got {reduce}.")
    nd = max(self.dim(), 1)
    if not -nd <= dim < nd:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-nd}, {nd - 1}], but got {dim})")
    dim %= nd
    if index.dim() > 1:
        raise IndexError(f"{name}(): Index is supposed to be a vector, but got dim: {index.dim()} with type: "
                         f"{_name(index.dtype)} and size: {list(index.shape)}")
    if index.dtype not in (_dt.int32, _dt.int64):
        raise RuntimeError(f"{name}(): Expected dtype int32/int64 for index but got: {_name(index.dtype)}")
    if self.dtype != source.dtype:
        raise RuntimeError(f"{name}(): self ({_name(self.dtype)}) and source ({_name(source.dtype)}) must have the "
                           f"same scalar type")
    if self.dtype == _dt.bool:
        raise NotImplementedError("\"index_func_\" not implemented for 'Bool'")  # torch's dispatch error
    self_shape, src_shape = list(self.shape), list(source.shape)
    if not self_shape and not src_shape:  # 0-dim self and source: one element each, as 1-D
        self_shape = src_shape = [1]
    if dim < len(src_shape) and index.numel() != src_shape[dim]:
        raise RuntimeError(f"{name}(): Number of indices ({index.numel()}) should be equal to source.size(dim): "
                           f"({src_shape[dim]}), for dim: {dim}")
    if len(src_shape) != len(self_shape) or any(a != b for d, (a, b) in enumerate(zip(src_shape, self_shape))
                                                if d != dim):
        raise RuntimeError(f"source tensor shape must match self tensor shape, excluding the specified dimension. "
                           f"Got self.shape = {list(self.shape)} source.shape = {list(source.shape)}")
    if index.numel() and bool(((index < 0) | (index >= self_shape[dim])).any()):
        raise IndexError("index out of range in self")
    return dim


def _index_reduce(self, dim, index, source, reduce, include_self, name):
    """self reduced with source: scatter_reduce with index spread along dim over source's shape (0-dim self and
    source as one element each); 'prod', 'amax' and 'amin' through IndexReduce when a gradient is wanted."""
    dim = _index_reduce_checks(self, dim, index, source, reduce, name)
    s, src = (self, source) if self.dim() else (self.reshape(1), source.reshape(1))
    index = index.to(_dt.int64).reshape([-1 if d == dim else 1 for d in range(s.dim())]).expand(*src.shape)
    include_self = bool(include_self)
    if reduce != "mean" and _ag.is_grad_enabled() and (s.requires_grad or src.requires_grad):
        return IndexReduce.apply(s, src, dim, index, reduce, include_self).reshape(self.shape)
    return s.scatter_reduce(dim, index, src, reduce, include_self=include_self).reshape(self.shape)


def index_reduce(input, dim, index, source, reduce, *, include_self=True):
    """torch.index_reduce: source's slices along dim reduced into input's slices index[i] ('prod', 'mean' (integers
    floor-divided), 'amax', 'amin'), with input's own values when include_self."""
    return _index_reduce(input, dim, index, source, reduce, include_self, "index_reduce_")


def index_reduce_(self, dim, index, source, reduce, *, include_self=True):
    if (self.requires_grad or source.requires_grad) and _ag.is_grad_enabled():
        _check_leaf_inplace(self)
        # the backward reads self as it was: a copy of it is reduced (torch saves the original self likewise)
        return self.copy_(_index_reduce(self.clone(), dim, index, source, reduce, include_self, "index_reduce_"))
    if not self.dim():
        return self.copy_(_index_reduce(self, dim, index, source, reduce, include_self, "index_reduce_"))
    dim = _index_reduce_checks(self, dim, index, source, reduce, "index_reduce_")
    index = index.to(_dt.int64).reshape([-1 if d == dim else 1 for d in range(self.dim())]).expand(*source.shape)
    return self.scatter_reduce_(dim, index, source, reduce, include_self=bool(include_self))


# ---- in-place view ops ----
def _inplace_view(make):
    def method(self, *args, **kwargs):
        _check_leaf_inplace(self)
        return self._inplace_view_(lambda s: make(s, *args, **kwargs))
    return method


def _t(self):
    if self.dim() > 2:
        raise RuntimeError(f"t_() expects a tensor with <= 2 dimensions, but self is {self.dim()}D")
    return self.t()


def _as_strided(self, size, stride, storage_offset=None):
    """as_strided_'s geometry, with torch's checks and messages (offset, strides, the storage's extent)."""
    size, stride = tuple(size), tuple(stride)
    offset = self.storage_offset() if storage_offset is None else storage_offset
    if offset < 0:
        raise RuntimeError(f"Tensor: invalid storage offset {offset}")
    if any(st < 0 for st in stride):
        raise RuntimeError(f"as_strided: Negative strides are not supported at the moment, got strides: "
                           f"{list(stride)}")
    if len(size) == len(stride) and all(n > 0 for n in size):
        need = (offset + 1 + sum((n - 1) * st for n, st in zip(size, stride))) * self.element_size()
        if need > self._storage_nbytes():
            raise RuntimeError(f"setStorage: sizes {list(size)}, strides {list(stride)}, storage offset {offset}, and "
                               f"itemsize {self.element_size()} requiring a storage size of {need} are out of bounds "
                               f"for storage of size {self._storage_nbytes()}")
    return self.as_strided(size, stride, offset)


# ---- post-accumulate-grad hooks ----
class _PostAccumulateGradHandle:
    """What register_post_accumulate_grad_hook returns: remove() takes the hook out of the engine and drops the
    tensor's reference to it."""

    def __init__(self, engine_handle, hooks, call):
        self._engine_handle, self._hooks, self._call = engine_handle, hooks, call

    def remove(self):
        self._engine_handle.remove()
        if self._call in self._hooks:
            self._hooks.remove(self._call)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def register_post_accumulate_grad_hook(self, hook):
    """hook(tensor) after backward has accumulated into this leaf's .grad (torch's rules: leaves that require grad;
    the hook returns None). The hook gets this Python object, as torch's does (so it can key a dict of
    per-parameter optimizers): the closure holding it lives in the tensor's __dict__, a cycle the garbage collector
    sees, and the engine holds it only weakly."""
    def call(_leaf):
        return hook(self)

    ref = weakref.ref(call)
    handle = self._register_post_accumulate_grad_hook(lambda leaf: None if ref() is None else ref()(leaf))
    hooks = self.__dict__.setdefault("_post_accumulate_grad_hooks", [])
    hooks.append(call)
    return _PostAccumulateGradHandle(handle, hooks, call)


FUNCTIONS = {"frexp": frexp, "put": put, "index_reduce": index_reduce}

METHODS = {
    "frexp": lambda self: frexp(self), "put_": put_, "put": put, "index_reduce_": index_reduce_,
    "index_reduce": index_reduce,
    "unsqueeze_": _inplace_view(lambda s, dim: s.unsqueeze(dim)),
    "squeeze_": _inplace_view(lambda s, dim=None: s.squeeze() if dim is None else s.squeeze(dim)),
    "t_": _inplace_view(_t),
    "transpose_": _inplace_view(lambda s, dim0, dim1: s.transpose(dim0, dim1)),
    "swapdims_": _inplace_view(lambda s, dim0, dim1: s.transpose(dim0, dim1)),
    "swapaxes_": _inplace_view(lambda s, axis0, axis1: s.transpose(axis0, axis1)),
    "as_strided_": _inplace_view(_as_strided),
    "register_post_accumulate_grad_hook": register_post_accumulate_grad_hook,
}

for _method, _fn in METHODS.items():
    if not hasattr(Tensor, _method):
        setattr(Tensor, _method, _fn)
