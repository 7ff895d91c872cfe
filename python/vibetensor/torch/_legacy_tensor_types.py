"""torch's legacy CPU tensor types: torch.LongTensor, torch.FloatTensor, ... as older public code still writes them
(`torch.LongTensor(batch_ids)` in a collate function, `x.type(torch.FloatTensor)`, `isinstance(x,
torch.LongTensor)`).

Each is a class of the metaclass _TensorType, never instantiated itself, as torch's `torch.tensortype`:
  - called with a sequence or a NumPy array, the tensor of that data in its dtype (values cast as torch casts them:
    torch.LongTensor([1.7]) is [1]); with ints or nothing, an uninitialized tensor of that size (torch.Size is a
    tuple here, so a shape passed as one object is data, as torch reads a plain tuple); with a tensor of its dtype,
    that tensor, of another dtype torch's TypeError;
  - isinstance(t, torch.LongTensor): a CPU tensor of dtype int64 (a Parameter included), as torch's;
  - .dtype and .is_cuda, so Tensor.type(cls) and Module.type(cls) cast to it.
"""
from __future__ import annotations

from .._C import core as _core

_NAMES = {"FloatTensor": "float32", "DoubleTensor": "float64", "HalfTensor": "float16", "BFloat16Tensor": "bfloat16",
          "LongTensor": "int64", "IntTensor": "int32", "ShortTensor": "int16", "CharTensor": "int8",
          "ByteTensor": "uint8", "BoolTensor": "bool"}


class _TensorType(type):
    """The type of the legacy tensor types (torch.tensortype)."""

    def __instancecheck__(cls, obj):
        return isinstance(obj, _core.Tensor) and obj.dtype == cls.dtype and not obj.is_cuda

    def __call__(cls, *args, device=None):
        from . import _functions as F

        if not args or all(isinstance(a, int) and not isinstance(a, bool) for a in args):
            return F.empty(args if args else (0,), dtype=cls.dtype, device=device)
        if len(args) > 1:
            raise TypeError(f"new() received an invalid combination of arguments - got {args!r}")
        data = args[0]
        if isinstance(data, _core.Tensor):
            if data.dtype != cls.dtype:
                raise TypeError(f"expected {cls.__name__}'s dtype {cls.dtype} (got {data.dtype})")
            return data
        if isinstance(data, str):
            raise TypeError("new(): invalid data type 'str'")
        if isinstance(data, (int, float, bool)):
            raise TypeError(f"new(): data must be a sequence (got {type(data).__name__})")
        return F.tensor(data, dtype=cls.dtype, device=device)

    def __repr__(cls):
        return f"<class 'torch.{cls.__name__}'>"


def _make(name, dtype_name):
    cls = _TensorType(name, (), {"dtype": getattr(_core.dtype, dtype_name), "is_cuda": False, "is_sparse": False,
                                 "__module__": "torch", "__doc__": f"torch.{name}: CPU tensors of {dtype_name}."})
    return cls


FloatTensor, DoubleTensor, HalfTensor, BFloat16Tensor, LongTensor, IntTensor, ShortTensor, CharTensor, ByteTensor, \
    BoolTensor = (_make(n, d) for n, d in _NAMES.items())
TYPES = (FloatTensor, DoubleTensor, HalfTensor, BFloat16Tensor, LongTensor, IntTensor, ShortTensor, CharTensor,
         ByteTensor, BoolTensor)


def legacy_new(*args, device=None):
    """torch.Tensor(...) (vt.Tensor's __new__, core/bindings/tensor.cpp): FloatTensor's rules, float32 being the
    default dtype, except that a tensor of any dtype comes back as itself (an alias), as torch's does."""
    if len(args) == 1 and isinstance(args[0], _core.Tensor):
        return args[0]
    return FloatTensor(*args, device=device)
