"""Tensor methods written in Python, attached to the C++ Tensor class at import. Hot paths (operators, views,
shape queries, sum) are bound in C++ (core/bindings/tensor.cpp), the autograd surface (requires_grad, grad,
grad_fn, detach, register_hook...) in core/bindings/autograd.cpp; these are the rest of torch's Tensor API."""
from __future__ import annotations

import numpy as np

from .._C import autograd as _autograd
from .._C import core as _core
from .._C import cuda as _core_cuda
from . import _functions as F
from ._generator import drawing_from
from . import _tensor_copy
from . import _tensor_str

Tensor = _core.Tensor
_op = _core.op
_to_dtype = _op("vt::to_dtype")
_dtype = _core.dtype
_is_grad_enabled = _autograd.is_grad_enabled

# Ops whose schema is (Tensor self, ...) and whose method takes the same arguments.
_METHOD_OPS = """
exp exp_ exp2 exp2_ expm1 expm1_ log log_ log2 log2_ log10 log10_ log1p log1p_ sqrt sqrt_ rsqrt rsqrt_ sin sin_
cos cos_ tan tan_ asin asin_ acos acos_ atan atan_ sinh sinh_ cosh cosh_ tanh tanh_ erf erf_ erfc erfc_
reciprocal reciprocal_ sigmoid sigmoid_ frac frac_ neg neg_ square_ abs abs_ sign sign_ relu relu_
floor floor_ ceil ceil_ trunc trunc_ round round_ isnan isinf isfinite logical_not bitwise_not bitwise_not_
floor_divide floor_divide_ remainder remainder_ fmod fmod_ pow pow_ maximum minimum atan2 atan2_
bitwise_and bitwise_and_ bitwise_or bitwise_or_ bitwise_xor bitwise_xor_ eq eq_ ne ne_ lt lt_ le le_ gt gt_ ge ge_
logical_and logical_and_ logical_or logical_or_ logical_xor logical_xor_ div div_ cumsum cumprod
mm bmm argmax argmin nonzero squeeze as_strided uniform_ normal_ random_
""".split()


def _method(name):
    handle = _op(name)
    fast = _core.fast_op(name, method=True)
    if not isinstance(fast, _core.OpHandle) and not name.endswith("_"):
        return fast  # a plain C++ function: as a class attribute it binds like a method
    if handle.name.endswith("_"):  # in place: return the very object, like torch
        def m(self, *args, **kwargs):
            handle(self, *args, **kwargs)
            return self
    else:
        def m(self, *args, **kwargs):
            return handle(self, *args, **kwargs)

    m.__name__ = handle.name.split("::")[1]
    m.__doc__ = handle.schema
    return m


def _drawing_method(name):
    """uniform_/normal_/random_ with torch's generator= (vibetensor.torch._generator)."""
    handle = _op("vt::" + name)

    def m(self, *args, generator=None, **kwargs):
        with drawing_from(generator):
            handle(self, *args, **kwargs)
        return self

    m.__name__ = name
    return m


def _attach():
    for name in _METHOD_OPS:
        setattr(Tensor, name, _method("vt::" + name))
    for name in ("uniform_", "normal_", "random_"):
        setattr(Tensor, name, _drawing_method(name))
    aliases = {
        "negative": "neg", "absolute": "abs", "multiply": "mul", "divide": "div", "true_divide": "div",
        "subtract": "sub", "greater": "gt", "less": "lt", "greater_equal": "ge", "less_equal": "le",
        "not_equal": "ne", "arctan2": "atan2",
    }
    for alias, name in aliases.items():
        setattr(Tensor, alias, getattr(Tensor, name))
    for name in ("square", "round", "mean", "prod", "max", "min", "var", "std", "norm", "logsumexp", "amax", "amin", "all", "any",
                 "split", "chunk", "unbind", "movedim", "clamp"):
        setattr(Tensor, name, getattr(F, name))
    for name, fn in _EXTRA.items():
        setattr(Tensor, name, fn)


# memory_format= of to(): set by _memory_format.py, (self, result, memory_format, copy) -> the result in that format
_to_memory_format = None


def to(self, *args, **kwargs):
    """to(dtype), to(device), to(device, dtype), to(other); copies only when something changes.
    non_blocking=True: copies between pinned host memory and a device do not wait (the caller synchronizes);
    a non-blocking download lands in pinned memory, as torch's. memory_format= as torch's."""
    if len(args) == 1 and not kwargs:  # to(dtype) and to(its own device), the calls of every training loop
        a = args[0]
        if isinstance(a, _dtype):
            return self if self.dtype == a else _to_dtype(self, a)
        if (isinstance(a, str) and a == "cpu" and self.is_cpu) or (isinstance(a, _core.device) and a == self.device):
            return self
    memory_format = kwargs.pop("memory_format", None)
    dtype = kwargs.pop("dtype", None)
    device = kwargs.pop("device", None)
    copy = kwargs.pop("copy", False)
    non_blocking = kwargs.pop("non_blocking", False)
    flags = [a for a in args if isinstance(a, bool)]  # to(device, dtype, non_blocking, copy) positionally
    if flags:
        non_blocking, copy = flags[0], flags[1] if len(flags) > 1 else copy
    for a in args:
        if isinstance(a, bool):
            continue
        elif isinstance(a, _dtype):
            dtype = a
        elif isinstance(a, Tensor):
            dtype, device = a.dtype, a.device
        elif a is not None:
            device = a
    out = self
    if device is not None:
        dev = _core.device(device) if not isinstance(device, _core.device) else device
        if dev != self.device:
            pin = non_blocking and dev.type == "cpu"  # an asynchronous download needs a pinned destination
            out = _core.empty(list(self.shape), dtype=dtype or self.dtype, device=dev, pin_memory=pin).copy_(
                out, non_blocking=non_blocking)
    if dtype is not None and out.dtype != dtype:
        out = _to_dtype(out, dtype)
    if copy and out is self:
        out = self.clone()
    return out if memory_format is None else _to_memory_format(self, out, memory_format, copy)


def numpy(self, *, force=False):
    if not self.is_cpu:
        raise TypeError(f"can't convert {self.device} device type tensor to numpy. Use Tensor.cpu() to copy the "
                        "tensor to host memory first.")
    if self.dtype == _dtype.bfloat16:
        raise TypeError("Got unsupported ScalarType BFloat16")
    return np.from_dlpack(self)


def tolist(self):
    src = self.float() if self.dtype in (_dtype.bfloat16, _dtype.float16) else self
    return np.from_dlpack(src if src.is_cpu else to(src, "cpu")).tolist()


def _values_for_print(self):
    t = self.detach().to("cpu")  # printing records no autograd history
    if t.dtype.is_floating_point:
        return numpy(t.to(_dtype.float64))
    if t.dtype == _dtype.bool:
        return numpy(t)
    return numpy(t.to(_dtype.int64))


def __repr__(self, *, tensor_contents=None):
    fn = self.grad_fn
    text = _tensor_str.format_tensor(_values_for_print(self), self.dtype.name, str(self.device),
                                     requires_grad=self.requires_grad, grad_fn=fn.name() if fn is not None else None)
    # nn.Parameter is this tensor, marked (nn/parameter.py): it prints as torch's Parameter does
    return "Parameter containing:\n" + text if getattr(self, "_is_parameter", False) else text


def __iter__(self):
    if self.dim() == 0:
        raise TypeError("iteration over a 0-d tensor")
    return iter(self.unbind(0))


def __array__(self, dtype=None, copy=None):
    a = numpy(self)
    return a if dtype is None else a.astype(dtype)


def __format__(self, format_spec):
    # as torch's: a 0-dim tensor formats as its number (f"{loss:.4f}"), any other only with an empty spec
    if self.dim() == 0 and type(self) is _core.Tensor:
        return self.item().__format__(format_spec)
    return object.__format__(self, format_spec)


def _cast(dtype):
    def m(self):  # to(self, dtype) without its argument parsing: the same tensor, or a converted copy
        return self if self.dtype == dtype else _to_dtype(self, dtype)
    return m


def record_stream(self, stream):
    """Marks this tensor's memory as used on `stream`: it is reused only after `stream` passes its free
    (Note [Stream-ordered free])."""
    _core_cuda.record_stream(self, stream.cuda_stream, stream.device_index)


def clamp_(self, min=None, max=None):
    if (isinstance(min, Tensor) or isinstance(max, Tensor)) and not all(
            b is None or isinstance(b, Tensor) for b in (min, max)):
        min, max = F._clamp_scalars("clamp_", self, min, max)  # a number beside a tensor: torch's Scalar overload
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        _core._check_inplace_overlap(self, [b for b in (min, max) if isinstance(b, Tensor)], "clamp_")
        # Out of place, then copied back; clamp saves its input, so under autograd it gets a copy.
        src = self.clone() if self.requires_grad and _is_grad_enabled() else self
        return self.copy_(F.clamp(src, min, max))
    _op("vt::clamp_")(self, min, max)
    return self


def masked_fill(self, mask, value):
    """Out of place, self and mask broadcast together (the result may be larger than self, as torch's)."""
    if isinstance(mask, Tensor) and mask.shape == self.shape:  # the common case (attention masks), no shape math
        return masked_fill_(self.clone(), mask, value)
    shape = F.broadcast_shapes(tuple(self.shape), tuple(mask.shape))
    base = self.clone() if tuple(self.shape) == shape else self.expand(*shape).contiguous()
    return base.masked_fill_(mask, value)


_masked_fill_, _softmax, _log_softmax = _op("vt::masked_fill_"), _op("vt::softmax"), _op("vt::log_softmax")


def masked_fill_(self, mask, value):
    if not isinstance(value, Tensor):
        # a number into a floating tensor: made as full([], value, dtype) makes it (one rounding from the double),
        # in C++ (tensor()'s fast path); other dtypes check the number's range in full
        made = _core._number_tensor(value, self.dtype) if self.is_floating_point() else None
        value = made if made is not None else F.full([], value, dtype=self.dtype)
    _masked_fill_(self, mask, value)
    return self


def view_as(self, other):
    return self.view(list(other.shape))


def _T(self):
    return self.permute(list(reversed(range(self.dim()))))


def t(self):
    if self.dim() > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {self.dim()}D")
    return self if self.dim() < 2 else self.transpose(0, 1)


def unflatten(self, dim, sizes):
    dim = dim % self.dim()
    shape = list(self.shape)
    return self.reshape(shape[:dim] + list(sizes) + shape[dim + 1:])


_EXTRA = {
    "to": to, "numpy": numpy, "tolist": tolist, "__repr__": __repr__, "__str__": __repr__, "__iter__": __iter__,
    "__array__": __array__,  # __getitem__, __setitem__: in C++ (core/bindings/indexing.cpp), _indexing behind them
    # above NumPy's: `np.float64(2) * t`, `np.log(2) - t` defer to the tensor's reflected operators and give tensors
    # (with their autograd), as torch's, instead of NumPy converting the tensor and returning an ndarray
    "__array_priority__": 1000, "__format__": __format__,
    # torch divides a number by a tensor as the tensor's reciprocal times the number (torch/_tensor.py __rdiv__):
    # in float16/bfloat16 (and by an ulp in float32) that rounds otherwise than one division would
    "__rtruediv__": lambda self, other: self.reciprocal() * other,
    "__rdiv__": lambda self, other: self.reciprocal() * other,
    "float": _cast(_dtype.float32), "double": _cast(_dtype.float64), "half": _cast(_dtype.float16),
    "bfloat16": _cast(_dtype.bfloat16), "int": _cast(_dtype.int32), "long": _cast(_dtype.int64),
    "short": _cast(_dtype.int16), "char": _cast(_dtype.int8), "byte": _cast(_dtype.uint8), "bool": _cast(_dtype.bool),
    "type_as": lambda self, other: to(self, other.dtype),
    "cpu": lambda self: self if self.is_cpu else to(self, "cpu"),
    "cuda": lambda self, device=None, non_blocking=False: to(self, device or "cuda", non_blocking=non_blocking),
    "masked_fill": masked_fill, "clamp_": clamp_, "record_stream": record_stream,
    "softmax": lambda self, dim, dtype=None: _softmax(self, dim, dtype),  # positional: no keyword parsing
    "log_softmax": lambda self, dim, dtype=None: _log_softmax(self, dim, dtype),
    # matmul, __matmul__: in C++, F.matmul behind them; a number @ a tensor is Python's TypeError, as in torch
    "__rmatmul__": lambda self, other: F.matmul(other, self) if isinstance(other, Tensor) else NotImplemented,
    "masked_fill_": masked_fill_, "view_as": view_as, "reshape_as": view_as,
    "expand_as": lambda self, other: self.expand(list(other.shape)), "T": property(_T), "mT": property(
        lambda self: self.transpose(-2, -1)), "t": t, "unflatten": unflatten,
    "where": lambda self, cond, other: F.where(cond, self, other),
    "nonzero": lambda self, *, as_tuple=False: F.nonzero(self, as_tuple=as_tuple),
    "clamp_min": lambda self, min: F.clamp(self, min=min), "clamp_max": lambda self, max: F.clamp(self, max=max),
    "new_zeros": lambda self, *size, dtype=None, device=None, layout=None: F.zeros(
        *size, dtype=dtype or self.dtype, device=device or self.device, layout=layout),
    "new_ones": lambda self, *size, dtype=None, device=None, layout=None: F.ones(
        *size, dtype=dtype or self.dtype, device=device or self.device, layout=layout),
    "new_empty": lambda self, *size, dtype=None, device=None, layout=None: F.empty(
        *size, dtype=dtype or self.dtype, device=device or self.device, layout=layout),
    "new_full": lambda self, size, v, dtype=None, device=None, layout=None: F.full(
        size, v, dtype=dtype or self.dtype, device=device or self.device, layout=layout),
    "new_tensor": lambda self, data, dtype=None, device=None: F.tensor(data, dtype=dtype or self.dtype,
                                                                       device=device or self.device),
    "is_floating_point": lambda self: self.dtype.is_floating_point,
    "dim_order": lambda self: tuple(sorted(range(self.dim()), key=lambda d: -self.stride(d))),
    "__contains__": lambda self, v: builtin_bool((self == v).any()),
    "logical_not_": lambda self: self.copy_(self.logical_not()),
    "equal": lambda self, other: F.equal(self, other),
    "allclose": lambda self, other, rtol=1e-5, atol=1e-8, equal_nan=False: F.allclose(self, other, rtol, atol,
                                                                                      equal_nan),
    "isclose": lambda self, other, rtol=1e-5, atol=1e-8, equal_nan=False: F.isclose(self, other, rtol, atol,
                                                                                    equal_nan),
}


def builtin_bool(x):
    return bool(x.item())


_attach()
_tensor_copy.attach()  # copy.deepcopy and pickle
