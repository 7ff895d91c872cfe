"""copy.deepcopy and pickling of tensors and devices, as torch's: what copy.deepcopy(model) and multiprocessing
need (modules deep-copy their parameters, buffers and their Python attributes through these).

A deep copy is a new leaf with the same values, dtype, device, requires_grad, a deep copy of .grad and of the
tensor's Python attributes (so a Parameter stays a Parameter); a tensor with history is refused with torch's
message. Pickles hold a tensor's bytes on the host (through a same-width integer view, so bfloat16 and bool
travel too) and rebuild it on its device; views are pickled as their own data, and two views of one storage
come back as two storages (torch keeps the sharing)."""
from __future__ import annotations

import copy

import numpy as np

from .._C import core as _core

Tensor = _core.Tensor
_INT_OF_SIZE = {1: "uint8", 2: "int16", 4: "int32", 8: "int64"}


def _deepcopy(self, memo):
    if id(self) in memo:
        return memo[id(self)]
    if self.grad_fn is not None:
        raise RuntimeError("Only Tensors created explicitly by the user (graph leaves) support the deepcopy "
                           "protocol at the moment.")
    new = self.detach().clone()
    memo[id(self)] = new
    if self.requires_grad:
        new.requires_grad_(True)
    if self.grad is not None:
        new.grad = copy.deepcopy(self.grad, memo)
    for k, v in self.__dict__.items():  # _is_parameter and any attribute user code set
        setattr(new, k, copy.deepcopy(v, memo))
    return new


def _rebuild(dtype_name, int_name, shape, data, device, requires_grad, attrs):
    from . import _functions as F

    ints = np.frombuffer(data, dtype=int_name).reshape(shape)
    t = F.from_numpy(ints.copy()).view(getattr(_core.dtype, dtype_name))
    if device != "cpu":
        t = t.to(device)
    if requires_grad:
        t.requires_grad_(True)
    for k, v in attrs.items():
        setattr(t, k, v)
    return t


def _reduce_ex(self, protocol):
    host = self.detach().cpu().contiguous()
    int_name = _INT_OF_SIZE[host.element_size()]
    ints = host.view(getattr(_core.dtype, int_name)).numpy()
    return _rebuild, (str(self.dtype).rsplit(".", 1)[-1], int_name, tuple(self.shape), ints.tobytes(),
                      str(self.device), self.requires_grad, dict(self.__dict__))


def _reduce_device(self):
    return _core.device, (str(self),)


def attach():
    Tensor.__deepcopy__ = _deepcopy
    Tensor.__reduce_ex__ = _reduce_ex
    _core.device.__reduce__ = _reduce_device
