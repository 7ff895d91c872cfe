"""Memory formats, torch's: vt.contiguous_format, vt.channels_last (NHWC strides for a 4-D NCHW tensor),
vt.channels_last_3d (NDHWC for 5-D) and vt.preserve_format, and the memory_format= argument of
Tensor.contiguous / is_contiguous / clone / to and of empty_like, zeros_like, ones_like, full_like, rand_like
and randn_like.

A tensor in a given layout is made by copying it permuted into that layout's dimension order (a contiguous copy)
and viewing the copy back in the logical order, so the result stays differentiable; where only the strides of
size-1 dimensions differ from torch's, the view is an as_strided over the copy with torch's exact strides.
preserve_format follows torch: a non-overlapping, dense tensor keeps its strides; any other takes the format its
strides suggest (channels_last when they are ordered like it, else contiguous).
Without memory_format=, clone() and the *_like factories keep vibetensor's behaviour (a contiguous result; torch's
default is preserve_format)."""
from .._C import core as _core
from . import _functions as F
from . import _tensor

Tensor = _core.Tensor


class memory_format:
    """One of the four formats; compared by identity, as torch's."""

    def __init__(self, name):
        self._name = name

    def __repr__(self):
        return f"vt.{self._name}"

    def __reduce__(self):
        return self._name  # pickles as the module-level singleton


contiguous_format = memory_format("contiguous_format")
channels_last = memory_format("channels_last")
channels_last_3d = memory_format("channels_last_3d")
preserve_format = memory_format("preserve_format")
# torch's own name for contiguous_format in its library code (F.gumbel_softmax's zeros_like): the same object
legacy_contiguous_format = contiguous_format

# dimension orders from the fastest-varying (stride 1) dimension outwards
_ORDER = {channels_last: (1, 3, 2, 0), channels_last_3d: (1, 4, 3, 2, 0)}
_RANK = {channels_last: 4, channels_last_3d: 5}

_orig_contiguous = Tensor.contiguous
_orig_is_contiguous = Tensor.is_contiguous
_orig_clone = Tensor.clone


def _check_format(fmt):
    if not isinstance(fmt, memory_format):
        raise TypeError(f"memory_format must be a vt.memory_format, but got {type(fmt).__name__}")


def _check_rank(t, fmt):
    if fmt in _RANK and t.dim() != _RANK[fmt]:
        raise RuntimeError(f"required rank {_RANK[fmt]} tensor to use {fmt._name} format")


def _format_strides(shape, fmt):
    """torch's strides of `shape` laid out in `fmt` (no rounding-up of size-0/1 dims, as torch's)."""
    if fmt not in _ORDER:
        strides, acc = [0] * len(shape), 1
        for d in reversed(range(len(shape))):
            strides[d] = acc
            acc *= max(shape[d], 1)
        return strides
    strides, acc = [0] * len(shape), 1
    for d in _ORDER[fmt]:
        strides[d] = acc
        acc *= shape[d]
    return strides


def _is_format_contiguous(t, fmt):
    """torch's is_contiguous(memory_format): the strides of every dim of size != 1 follow fmt's order exactly."""
    if fmt not in _ORDER:
        return _orig_is_contiguous(t)
    if t.dim() != _RANK[fmt]:
        return False
    shape, strides, expected = tuple(t.shape), t.stride(), 1
    for d in _ORDER[fmt]:
        if shape[d] != 1:
            if strides[d] != expected:
                return False
            expected *= shape[d]
    return True


def _strides_like(shape, strides, fmt):
    """Whether the strides are ordered like fmt's (torch's test behind suggest_memory_format); ambiguous -> no."""
    if strides[1] == 0:
        return False
    low = 0
    for d in _ORDER[fmt]:
        if shape[d] == 0 or strides[d] < low:
            return False
        if d == 0 and low == strides[1]:
            return False
        low = strides[d] * shape[d] if shape[d] > 1 else strides[d]
    return True


def suggest_memory_format(t):
    shape, strides = tuple(t.shape), t.stride()
    for fmt in (channels_last, channels_last_3d):
        if t.dim() == _RANK[fmt] and _strides_like(shape, strides, fmt):
            return fmt
    return contiguous_format


def _non_overlapping_and_dense(t):
    if _orig_is_contiguous(t):
        return True
    dims = sorted((st, sz) for sz, st in zip(tuple(t.shape), t.stride()) if sz >= 2)
    expected = 1
    for st, sz in dims:
        if st != expected:
            return False
        expected *= sz
    return True


def _copy_with_strides(t, strides):
    """A differentiable copy of t whose strides are `strides` (those of a non-overlapping, dense layout)."""
    shape = tuple(t.shape)
    order = sorted(range(t.dim()), key=lambda d: (-strides[d], d))
    inverse = [order.index(d) for d in range(t.dim())]
    copy = _orig_clone(t.permute(*order)).permute(*inverse)
    return copy if list(copy.stride()) == list(strides) else copy.as_strided(shape, list(strides), 0)


def _target_strides(t, fmt):
    if fmt is preserve_format:
        if _non_overlapping_and_dense(t):
            return list(t.stride())
        fmt = suggest_memory_format(t)
    return _format_strides(tuple(t.shape), fmt)


def contiguous(self, memory_format=contiguous_format):
    _check_format(memory_format)
    if memory_format is contiguous_format:
        # the very object when nothing moves, as torch's (the compiled contiguous() wraps it anew)
        return self if _orig_is_contiguous(self) else _orig_contiguous(self)
    if memory_format is preserve_format:
        if _orig_is_contiguous(self):
            return self
        raise RuntimeError("preserve memory format is unsupported by the contiguous operator")
    _check_rank(self, memory_format)
    if _is_format_contiguous(self, memory_format):
        return self
    return _copy_with_strides(self, _format_strides(tuple(self.shape), memory_format))


def is_contiguous(self, memory_format=contiguous_format):
    _check_format(memory_format)
    return _is_format_contiguous(self, memory_format)


def clone(self, *, memory_format=None):
    if memory_format is None:
        return _orig_clone(self)
    _check_format(memory_format)
    _check_rank(self, memory_format)
    if memory_format is contiguous_format:
        return _orig_clone(self).contiguous()
    return _copy_with_strides(self, _target_strides(self, memory_format))


def _to_format(self, out, memory_format, copy):
    """to(..., memory_format=): `out` is to()'s result without the format."""
    _check_format(memory_format)
    _check_rank(self, memory_format)
    if memory_format is preserve_format:
        if out is self:
            return out
        target = _target_strides(self, preserve_format)
    else:
        if out is self and suggest_memory_format(self) is memory_format:
            return self  # torch's to() aliases when the suggested format already matches
        target = _format_strides(tuple(self.shape), memory_format)
    if list(out.stride()) == target and (out is not self or copy):
        return out
    return _copy_with_strides(out, target)


def empty_like(t, *, dtype=None, layout=None, device=None, requires_grad=False, memory_format=None):
    if layout is None and memory_format is None and isinstance(t, Tensor):  # the C++ factory: ~1 us, not ~2
        out = _core.empty(list(t.shape), dtype=dtype or t.dtype, device=t.device if device is None else device)
        return out.requires_grad_(True) if requires_grad else out
    F._check_layout(layout, "empty_like")
    if memory_format is None:
        out = F.empty_like(t, dtype=dtype, device=device)
    else:
        _check_format(memory_format)
        _check_rank(t, memory_format)
        flat = F.empty_like(t.reshape(-1), dtype=dtype, device=device)
        out = flat.as_strided(tuple(t.shape), _target_strides(t, memory_format), 0)
    return out.requires_grad_(True) if requires_grad else out


def _like(base, fill, factory=None):
    """base's factory (t, *, dtype, device) with torch's memory_format= and requires_grad=: with a format, an
    empty tensor of that layout filled in place by fill(out). `factory`, where given, is the C++ factory
    (_core.zeros, _core.ones) the plain call goes to: t's shape, dtype and device, as base makes them."""
    def like(t, *args, dtype=None, layout=None, device=None, requires_grad=False, memory_format=None, **kwargs):
        if factory is not None and not args and not kwargs and layout is None and memory_format is None \
                and isinstance(t, Tensor):
            out = factory(list(t.shape), dtype=dtype or t.dtype, device=t.device if device is None else device)
            return out.requires_grad_(True) if requires_grad else out
        F._check_layout(layout, base.__name__)
        if memory_format is None:
            out = base(t, *args, dtype=dtype, device=device, **kwargs)
        else:
            out = fill(empty_like(t, dtype=dtype, device=device, memory_format=memory_format), *args)
        return out.requires_grad_(True) if requires_grad else out
    like.__name__ = base.__name__
    like.__doc__ = f"{base.__name__}(input, ..., memory_format=None): {base.__name__} with torch's memory formats."
    return like


zeros_like = _like(F.zeros_like, lambda out: out.zero_(), _core.zeros)
ones_like = _like(F.ones_like, lambda out: out.fill_(1), _core.ones)
full_like = _like(F.full_like, lambda out, value: out.fill_(value))
rand_like = _like(F.rand_like, lambda out: out.uniform_(0.0, 1.0),
                  lambda shape, dtype, device: F._uniform_(_core.empty(shape, dtype=dtype, device=device), 0.0, 1.0))
randn_like = _like(F.randn_like, lambda out: out.normal_(0.0, 1.0),
                   lambda shape, dtype, device: F._normal_(_core.empty(shape, dtype=dtype, device=device), 0.0, 1.0))


_tensor._to_memory_format = _to_format
for _name, _fn in {"contiguous": contiguous, "is_contiguous": is_contiguous, "clone": clone}.items():
    setattr(Tensor, _name, _fn)
