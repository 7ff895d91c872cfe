"""Tensor.__getitem__ / __setitem__ with torch semantics.

Basic indices (ints, slices, None, Ellipsis) become views (select, slice, unsqueeze); integer tensors, lists
and boolean masks then go through the `index` / `index_put_` ops, which place the broadcast index shape where
torch and NumPy put it. NumPy arrays index as the tensors they convert to, as in torch (minibatch indices from
np.random.permutation, masks computed in NumPy); NumPy integer scalars as ints.
"""
from __future__ import annotations

import numpy as np

from .._C import core as _core

_index = _core.op("vt::index")
_index_put = _core.op("vt::index_put_")
_slice = _core.op("vt::slice")
_select = _core.op("vt::select")
_unsqueeze = _core.op("vt::unsqueeze")


def _as_index_tensor(obj):
    from . import tensor as _tensor

    if isinstance(obj, _core.Tensor):
        return obj
    arr = np.asarray(obj)
    if arr.dtype == np.bool_:
        return _tensor(arr.tolist(), dtype=_core.dtype.bool)
    # torch makes any other sequence (a list, a NumPy array) a long index, casting its data: an empty list
    # (float to NumPy: HF's `scores[i, banned_tokens] = -inf` with nothing banned) and float arrays included
    if arr.dtype.kind in "US" or (arr.dtype.kind == "O" and any(isinstance(e, str) for e in arr.flat)):
        raise TypeError("new(): invalid data type 'str'")  # torch's, from building the index tensor
    if arr.dtype.kind not in "iuf" or (arr.dtype.kind == "f" and arr.ndim == 0):  # but a float alone is refused
        raise IndexError(
            "only integers, slices (`:`), ellipsis (`...`), None and long or byte Variables are valid indices "
            f"(got {type(obj).__name__})"
        )
    return _tensor(arr.astype(np.int64))


def _from_ndarray(arr):
    if arr.dtype == np.uint8:  # torch reads a byte array as a (deprecated) mask, as it reads a uint8 tensor
        from . import tensor as _tensor

        return _tensor(arr.tolist(), dtype=_core.dtype.uint8)
    return _as_index_tensor(arr)


_INT64_MIN, _INT64_MAX = -2**63, 2**63 - 1


def _clamp_bound(b):
    """Slice bounds beyond int64 select as far as they can, as torch truncates them (x[2**62:2**70] is empty)."""
    if b is None:
        return None
    b = b.__index__()
    return min(max(b, _INT64_MIN), _INT64_MAX)


def _is_mask(i):
    """A boolean tensor, or a uint8 one: torch still reads a byte tensor as a mask (deprecated)."""
    return isinstance(i, _core.Tensor) and i.dtype in (_core.dtype.bool, _core.dtype.uint8)


def _consumed(i):
    """How many dims of the indexed tensor an index element uses up."""
    if i is None or i is Ellipsis or isinstance(i, bool):
        return 0
    if isinstance(i, str):
        raise TypeError(f"tensor indices must be integers, slices, None, Ellipsis or tensors, not str ({i!r})")
    if _is_mask(i):
        return i.dim()
    return 1


def _apply(t, index):
    """Returns (view, advanced): the basic-indexed view and, per dim of the view, an advanced index or None."""
    if not isinstance(index, tuple):
        index = (index,)
    # an ndarray has __index__ (for 0-dim ones) and is no list: convert it first, so that a mask counts its dims
    index = tuple(_from_ndarray(i) if isinstance(i, np.ndarray) else i for i in index)
    if sum(1 for i in index if i is Ellipsis) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    consumed = sum(_consumed(i) for i in index)
    if consumed > t.dim():
        raise IndexError(f"too many indices for tensor of dimension {t.dim()}")
    dim = 0
    advanced = []
    for i in index:
        if i is Ellipsis:
            at = next(k for k, j in enumerate(index) if j is Ellipsis)  # identity: `==` on tensors is elementwise
            span = t.dim() - dim - sum(_consumed(j) for j in index[at + 1:])
            advanced.extend([None] * span)
            dim += span
        elif i is None:
            t = _unsqueeze(t, dim)
            advanced.append(None)
            dim += 1
        elif isinstance(i, bool) or (_is_mask(i) and i.dim() == 0):
            # A 0-dim boolean (or byte) adds a dim of length 1 (True, nonzero) or 0 (False), as in NumPy.
            t = _unsqueeze(t, dim)
            from . import tensor as _tensor

            advanced.append(_tensor([bool(i)]))
            dim += 1
        elif isinstance(i, slice):
            step = 1 if i.step is None else int(i.step)
            if step <= 0:
                raise ValueError("step must be greater than zero")
            if t.dim() == 0:
                raise IndexError("invalid index of a 0-dim tensor")
            t = _slice(t, dim, _clamp_bound(i.start), _clamp_bound(i.stop), step)
            advanced.append(None)
            dim += 1
        elif isinstance(i, int) or (hasattr(i, "__index__") and not isinstance(i, (_core.Tensor, list, tuple))
                                    and getattr(i, "ndim", 0) == 0) or (  # a NumPy array has __index__, but to fail
                isinstance(i, _core.Tensor) and i.dim() == 0 and not i.dtype.is_floating_point):
            # a 0-dim integer tensor indexes as its int does, a view (torch reads it, a host sync on a GPU)
            if t.dim() == 0:
                raise IndexError("invalid index of a 0-dim tensor. Use `tensor.item()` to convert a 0-dim tensor "
                                 "to a number")
            t = _select(t, dim, int(i))
        else:
            it = _as_index_tensor(i)
            advanced.append(it)
            # A k-dim mask covers k dims; index_put_/index expand it, so the next k-1 slots are taken by it.
            dim += it.dim() if _is_mask(it) else 1
    return t, advanced


def getitem(t, index):
    view, adv = _apply(t, index)
    if all(a is None for a in adv):
        return view
    while adv and adv[-1] is None:
        adv.pop()
    return _index(view, adv)


def _fills_by_one_mask(index):
    """Whether index holds one advanced entry and it is a boolean tensor with dims: torch writes a 0-dim value
    through it by masked_fill, converting the value's dtype, where any other advanced write refuses a mismatch."""
    items = index if isinstance(index, tuple) else (index,)
    advanced = [i for i in items if isinstance(i, (_core.Tensor, list, np.ndarray))]
    return (len(advanced) == 1 and isinstance(advanced[0], _core.Tensor)
            and advanced[0].dtype == _core.dtype.bool and advanced[0].dim() > 0)


def setitem(t, index, value):
    view, adv = _apply(t, index)
    converts = not isinstance(value, _core.Tensor) or (value.dim() == 0 and _fills_by_one_mask(index))
    if not isinstance(value, _core.Tensor):
        from . import tensor as _tensor

        value = _tensor(value, dtype=t.dtype)
    # Leading size-1 dims of the value beyond the target's rank are dropped, as torch does.
    while value.dim() > view.dim() and value.shape[0] == 1:
        value = value.squeeze(0)
    if all(a is None for a in adv):
        view.copy_(value)
        return
    while adv and adv[-1] is None:
        adv.pop()
    if not converts and value.dtype != t.dtype:
        from ._select_ops import _type_name as _dtype_name

        raise RuntimeError(f"Index put requires the source and destination dtypes match, got "
                           f"{_dtype_name(t.dtype)} for the destination and {_dtype_name(value.dtype)} for the "
                           f"source.")
    _index_put(view, adv, value)
