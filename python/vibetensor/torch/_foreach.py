"""torch's foreach ops that gradient clipping is made of (vt::_foreach_norm and vt::_foreach_mul_, in
core/src/ops/foreach.h): a whole list of tensors in a few multi-tensor launches per (device, dtype) group
instead of a few ops per tensor."""
from .._C import core as _core

_norm = _core.op("vt::_foreach_norm")
_mul = _core.op("vt::_foreach_mul_")


def _foreach_norm(self, ord=2, dtype=None):
    """The norm of each tensor of `self`, as a tuple of 0-dim tensors (each on its tensor's device, in its dtype
    or `dtype`): torch._foreach_norm."""
    return tuple(_norm(list(self), ord, dtype=dtype))


def _foreach_mul_(self, other):
    """Multiplies every tensor of `self` in place by `other`, a 0-dim tensor on the CPU or on the tensors'
    device: torch._foreach_mul_'s Tensor overload (its Scalar and list overloads are not implemented)."""
    if not isinstance(other, _core.Tensor):
        raise TypeError(f"_foreach_mul_(): other must be a 0-dim Tensor, not {type(other).__name__} (vt implements "
                        "torch's Tensor overload only)")
    _mul(list(self), other)
