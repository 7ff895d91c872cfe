"""torch.autograd.Variable, the pre-0.4 wrapper that old public model code still writes
(`Variable(torch.from_numpy(a))`, `Variable(x, requires_grad=True)`): as in torch, calling it returns a tensor that
shares the data, detached from any graph, requiring grad when asked; every tensor is an instance of it."""
from __future__ import annotations

import warnings

from .._C import core as _core


class _VariableMeta(type):
    def __instancecheck__(cls, other):
        return isinstance(other, _core.Tensor)


class Variable(metaclass=_VariableMeta):
    def __new__(cls, data=None, requires_grad=False, volatile=False):
        if data is None:
            data = _core.zeros([0], dtype=_core.dtype.float32, device="cpu")
        if not isinstance(data, _core.Tensor):
            raise TypeError(f"Variable data has to be a tensor, but got {type(data).__name__}")
        if volatile:
            warnings.warn("volatile was removed and now has no effect. Use `with torch.no_grad():` instead.",
                          UserWarning, stacklevel=2)
        out = data.detach()
        if requires_grad:
            out.requires_grad_(True)
        return out


Variable.__module__ = "vibetensor.autograd.variable"
