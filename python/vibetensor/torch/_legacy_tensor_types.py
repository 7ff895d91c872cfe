"""torch's legacy tensor types - vt.FloatTensor, DoubleTensor, HalfTensor, BFloat16Tensor, ByteTensor, CharTensor,
ShortTensor, IntTensor, LongTensor, BoolTensor (the CPU ones) - as older public model code still uses them:
nn.Parameter(torch.FloatTensor([init])) (FCOS's Scale), torch.FloatTensor(n, m).uniform_(), x.type(torch.LongTensor),
isinstance(x, torch.FloatTensor).

Like torch's, they are not Tensor subclasses but classes whose metaclass answers isinstance (a CPU tensor of that
dtype: a Parameter included) and whose call builds a tensor: no arguments -> an empty tensor of size (0,); ints or a
size -> an uninitialised tensor of that size; a tensor of the same dtype -> an alias of it (a wrong dtype is a
TypeError); a list or an array -> that data in the type's dtype; device= other than the CPU is torch's RuntimeError.
One deviation: vibetensor's sizes are plain tuples, so a tuple of ints is read as a size (torch.FloatTensor(
x.size())), where torch reads a plain tuple as data (a list is data in both)."""
import numpy as np

from .._C import core as _core

Tensor = _core.Tensor
_dt = _core.dtype


class tensortype(type):
    """The metaclass of the legacy types (torch's is torch.tensortype)."""

    def __instancecheck__(cls, obj):
        return isinstance(obj, Tensor) and obj.dtype == cls.dtype and not obj.is_cuda

    def __call__(cls, *args, device=None, **kwargs):
        from . import _functions as F

        if kwargs:
            raise TypeError(f"new() received an invalid combination of arguments - got unexpected keyword argument(s) "
                            f"{', '.join(sorted(kwargs))}; {cls.__name__}() takes sizes, data or a tensor, and "
                            f"device=")
        if device is not None:
            kind = device if isinstance(device, str) else getattr(device, "type", str(device))
            if str(kind).split(":")[0] != "cpu":
                raise RuntimeError(f"legacy constructor expects device type: cpu but device type: "
                                   f"{str(kind).split(':')[0]} was passed")
        if not args:
            return F.empty((0,), dtype=cls.dtype)
        if all(isinstance(a, int) and not isinstance(a, bool) for a in args):
            return F.empty(tuple(args), dtype=cls.dtype)
        if len(args) > 1:
            raise TypeError(f"new(): expected sizes as ints or one data argument, got {len(args)} arguments of types "
                            f"({', '.join(type(a).__name__ for a in args)})")
        data = args[0]
        if isinstance(data, Tensor):
            if data.dtype != cls.dtype or data.is_cuda:
                raise TypeError(f"expected a CPU tensor of dtype {cls.dtype} for {cls.__name__} (got "
                                f"{'a CUDA' if data.is_cuda else 'a CPU'} tensor of dtype {data.dtype})")
            return data.view(tuple(data.shape))
        if isinstance(data, tuple) and all(isinstance(a, int) and not isinstance(a, bool) for a in data):
            return F.empty(data, dtype=cls.dtype)  # a size (vibetensor's sizes are tuples)
        if isinstance(data, str):
            raise TypeError(f"new(): invalid data type '{type(data).__name__}'")
        if not isinstance(data, (list, tuple, np.ndarray)):
            raise TypeError(f"new(): data must be a sequence (got {type(data).__name__})")
        return F.tensor(data.tolist() if isinstance(data, np.ndarray) else data, dtype=cls.dtype)


_TYPES = {"DoubleTensor": _dt.float64, "FloatTensor": _dt.float32, "HalfTensor": _dt.float16,
          "BFloat16Tensor": _dt.bfloat16, "ByteTensor": _dt.uint8, "CharTensor": _dt.int8, "ShortTensor": _dt.int16,
          "IntTensor": _dt.int32, "LongTensor": _dt.int64, "BoolTensor": _dt.bool}


def _make(name, dtype):
    return tensortype(name, (), {"dtype": dtype, "is_cuda": False, "is_sparse": False, "__module__": "vibetensor.torch",
                                 "__doc__": f"torch.{name}: CPU tensors of dtype {dtype} (legacy constructor)."})


DoubleTensor, FloatTensor, HalfTensor, BFloat16Tensor, ByteTensor, CharTensor, ShortTensor, IntTensor, LongTensor, \
    BoolTensor = (_make(n, d) for n, d in _TYPES.items())

__all__ = list(_TYPES)
