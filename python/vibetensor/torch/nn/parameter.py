"""Parameter: a leaf tensor that requires grad and that Module registers when assigned as an attribute.

vibetensor's Tensor is a compiled class, so a Parameter is the tensor itself, marked; `isinstance(t, Parameter)`
reads the mark (the metaclass below), as torch code expects."""
from ._tensor_api import Tensor


class _ParameterMeta(type):
    def __instancecheck__(cls, obj):
        return isinstance(obj, Tensor) and getattr(obj, "_is_parameter", False)


class Parameter(metaclass=_ParameterMeta):
    def __new__(cls, data=None, requires_grad=True):
        from .. import _functions as F

        t = (F.empty(0) if data is None else data).detach()
        t.requires_grad_(requires_grad)
        t._is_parameter = True
        return t
