"""torch's _foreach family: an op applied to every tensor of a list, with torch's overloads for the second
operand (a Scalar, a list of Scalars, a list of Tensors, a 0-dim Tensor) and its list checks.

_foreach_norm and the 0-dim-Tensor overload of _foreach_mul_ on floating tensors are vibetensor's multi-tensor
kernels (vt::_foreach_norm, vt::_foreach_mul_ in core/src/ops/foreach.h); every other op is composed from the
per-tensor vt op, so out-of-place results carry autograd as torch's do. Out-of-place ops return a tuple, in-place
ones the list they were given (torch's return values). A 0-dim tensor where torch has no Tensor overload is
taken as a Scalar (its .item()), as torch's argument parser does.
"""
import numbers

from .._C import core as _core

_norm = _core.op("vt::_foreach_norm")
_mul = _core.op("vt::_foreach_mul_")
_Tensor = _core.Tensor

UNARY = ("abs", "acos", "asin", "atan", "ceil", "cos", "cosh", "erf", "erfc", "exp", "expm1", "floor", "frac",
         "lgamma", "log", "log10", "log1p", "log2", "neg", "reciprocal", "round", "rsqrt", "sigmoid", "sign", "sin",
         "sinh", "sqrt", "tan", "tanh", "trunc")
# binary ops -> whether torch has a Tensor (0-dim) overload, and whether it takes alpha
BINARY = {"add": (True, True), "sub": (False, True), "mul": (True, False), "div": (True, False),
          "maximum": (False, False), "minimum": (False, False), "clamp_min": (False, False),
          "clamp_max": (False, False), "pow": (False, False)}


def _vt():
    from .. import torch

    return torch


def _tensors(name, xs, arg=0):
    """A tensor-list argument as a list, with torch's checks."""
    if isinstance(xs, _Tensor) or not isinstance(xs, (list, tuple)):
        raise TypeError(f"{name}(): argument {arg} must be a list or tuple of Tensors, not {type(xs).__name__}")
    for i, t in enumerate(xs):
        if not isinstance(t, _Tensor):
            raise TypeError(f"expected Tensor as element {i} in argument {arg}, but got {type(t).__name__}")
    if arg == 0 and not xs:
        raise RuntimeError("Tensor list must have at least one tensor.")
    return list(xs)


def _same_length(self, other):
    if len(self) != len(other):
        raise RuntimeError(f"Tensor lists must have the same number of tensors, got {len(self)} and {len(other)}")


def _is_scalar(x):
    return isinstance(x, numbers.Number)


def _check_scalar_tensor(x):
    """A tensor where torch's signature has a Scalar or a scalar Tensor must be 0-dim (read nothing: a device
    tensor's value would cost a synchronisation, and a copy a graph capture cannot record)."""
    if x.dim() != 0:
        raise RuntimeError(f"scalar tensor expected to be 0 dim but it has {x.dim()} dimensions and {x.numel()} "
                           "elements.")


def _operands(name, self, other, tensor_overload, arg=1):
    """The per-tensor second operands of a binary/ternary foreach op, and which overload they are."""
    if isinstance(other, _Tensor):
        if tensor_overload:
            _check_scalar_tensor(other)  # the tensor itself is the operand
            return [other] * len(self), "Tensor"
        if other.dim() != 0 or other.requires_grad:  # no Tensor overload: a 0-dim constant passes as a Scalar
            raise TypeError(f"{name}(): argument {arg} must be a Scalar, a list of Scalars or a list of Tensors, "
                            f"not a {other.dim()}-dim Tensor{' that requires grad' if other.requires_grad else ''}")
        return [other.item()] * len(self), "Scalar"
    if isinstance(other, (list, tuple)):
        if other and isinstance(other[0], _Tensor):
            other = _tensors(name, other, arg)
            _same_length(self, other)
            return other, "List"
        for i, s in enumerate(other):
            if not _is_scalar(s):
                raise TypeError(f"{name}(): expected a number as element {i} of the scalar list, but got "
                                f"{type(s).__name__}")
        if len(other) != len(self):
            raise RuntimeError("Tensor list must have same number of elements as scalar list.")
        return list(other), "ScalarList"
    if _is_scalar(other):
        return [other] * len(self), "Scalar"
    raise TypeError(f"{name}(): argument {arg} must be a Scalar, a list of Scalars, a list of Tensors or a 0-dim "
                    f"Tensor, not {type(other).__name__}")


def _check_alpha(name, kind, alpha, takes_alpha):
    if alpha is not None and not (takes_alpha and kind in ("List", "Tensor")):
        raise TypeError(f"{name}(): alpha is only accepted with a list of Tensors"
                        f"{' or a 0-dim Tensor' if name.startswith('_foreach_add') else ''} as other, not with "
                        f"a {kind} other" if takes_alpha else f"{name}() got an unexpected keyword argument 'alpha'")


def _binary_fn(t, o, op):
    vt = _vt()
    if op == "clamp_min":
        return vt.clamp(t, min=o)
    if op == "clamp_max":
        return vt.clamp(t, max=o)
    return getattr(vt, op)(t, o)


def _make_unary(op):
    def out_of_place(self):
        f = getattr(_vt(), op)
        return tuple(f(t) for t in _tensors(f"_foreach_{op}", self))

    def in_place(self):
        for t in _tensors(f"_foreach_{op}_", self):
            getattr(t, op + "_")()
        return self

    out_of_place.__name__, in_place.__name__ = f"_foreach_{op}", f"_foreach_{op}_"
    out_of_place.__doc__ = f"torch._foreach_{op}: {op} of every tensor of a list, as a tuple."
    in_place.__doc__ = f"torch._foreach_{op}_: {op} of every tensor of a list, in place."
    return out_of_place, in_place


def _make_binary(op, tensor_overload, takes_alpha):
    def out_of_place(self, other, *, alpha=None):
        name = f"_foreach_{op}"
        if op == "pow" and _is_scalar(self):  # torch's ScalarAndTensor overload: a Scalar base
            return tuple(_vt().pow(self, e) for e in _tensors(name, other, 1))
        self = _tensors(name, self)
        others, kind = _operands(name, self, other, tensor_overload)
        _check_alpha(name, kind, alpha, takes_alpha)
        if alpha is not None:
            return tuple(getattr(_vt(), op)(t, o, alpha=alpha) for t, o in zip(self, others))
        return tuple(_binary_fn(t, o, op) for t, o in zip(self, others))

    def in_place(self, other, *, alpha=None):
        name = f"_foreach_{op}_"
        tensors = _tensors(name, self)
        others, kind = _operands(name, tensors, other, tensor_overload)
        _check_alpha(name, kind, alpha, takes_alpha)
        if op == "mul" and kind == "Tensor" and all(t.dtype.is_floating_point for t in tensors):
            _mul(tensors, other)  # vibetensor's multi-tensor kernel
            return self
        for t, o in zip(tensors, others):
            if alpha is not None:
                getattr(t, op + "_")(o, alpha=alpha)
            elif op in ("maximum", "minimum"):  # no Tensor.maximum_: computed, then written back
                t.copy_(_binary_fn(t, o, op))
            else:
                getattr(t, op + "_")(o)
        return self

    out_of_place.__name__, in_place.__name__ = f"_foreach_{op}", f"_foreach_{op}_"
    out_of_place.__doc__ = f"torch._foreach_{op}: {op}(self[i], other[i]) for a Scalar, Scalar list, Tensor list" \
                           f"{' or 0-dim Tensor' if tensor_overload else ''} other, as a tuple."
    in_place.__doc__ = f"torch._foreach_{op}_: self[i].{op}_(other[i]), in place; returns self."
    return out_of_place, in_place


def _lerp_args(name, self, tensors1, weight):
    self = _tensors(name, self)
    tensors1 = _tensors(name, tensors1, 1)
    _same_length(self, tensors1)
    weights, _ = _operands(name, self, weight, False, arg=2)
    return self, tensors1, weights


def _foreach_lerp(self, tensors1, weight):
    """torch._foreach_lerp: lerp(self[i], tensors1[i], weight[i]) for a Scalar, Scalar list or Tensor list
    weight, as a tuple."""
    self, tensors1, weights = _lerp_args("_foreach_lerp", self, tensors1, weight)
    lerp = _vt().lerp
    return tuple(lerp(a, b, w) for a, b, w in zip(self, tensors1, weights))


def _foreach_lerp_(self, tensors1, weight):
    """torch._foreach_lerp_: self[i].lerp_(tensors1[i], weight[i]); returns self."""
    tensors, tensors1, weights = _lerp_args("_foreach_lerp_", self, tensors1, weight)
    for a, b, w in zip(tensors, tensors1, weights):
        a.lerp_(b, w)
    return self


def _pointwise_args(name, self, tensor1, tensor2, value):
    self = _tensors(name, self)
    for i, xs in ((1, tensor1), (2, tensor2)):
        _same_length(self, _tensors(name, xs, i))
    if isinstance(value, _Tensor):  # torch's Tensor overload: a 1-D tensor of one scalar per tensor
        if value.dim() != 1:
            raise RuntimeError(f"Expected packed scalar Tensor to be of dimension 1. Got {value.dim()} instead.")
        if value.numel() != len(self):
            raise RuntimeError(f"Expected length of scalars to match input of length {len(self)} but got "
                               f"{value.numel()} instead.")
        return self, value.tolist()
    if isinstance(value, (list, tuple)):
        values, _ = _operands(name, self, list(value), False, arg=3)
        return self, values
    if not _is_scalar(value):
        raise TypeError(f"{name}(): value must be a Scalar, a list of Scalars or a 1-D Tensor, not "
                        f"{type(value).__name__}")
    return self, [value] * len(self)


def _make_pointwise(op):
    def out_of_place(self, tensor1, tensor2, value=1, *, scalars=None):
        name = f"_foreach_{op}"
        tensors, values = _pointwise_args(name, self, tensor1, tensor2, value if scalars is None else scalars)
        f = getattr(_vt(), op)
        return tuple(f(t, a, b, value=v) for t, a, b, v in zip(tensors, tensor1, tensor2, values))

    def in_place(self, tensor1, tensor2, value=1, *, scalars=None):
        name = f"_foreach_{op}_"
        tensors, values = _pointwise_args(name, self, tensor1, tensor2, value if scalars is None else scalars)
        for t, a, b, v in zip(tensors, tensor1, tensor2, values):
            getattr(t, op + "_")(a, b, value=v)
        return self

    out_of_place.__name__, in_place.__name__ = f"_foreach_{op}", f"_foreach_{op}_"
    out_of_place.__doc__ = f"torch._foreach_{op}: {op}(self[i], tensor1[i], tensor2[i], value=v[i]) for a " \
                           "Scalar, Scalar list or 1-D Tensor of scalars, as a tuple."
    in_place.__doc__ = f"torch._foreach_{op}_: self[i].{op}_(tensor1[i], tensor2[i], value=v[i]); returns self."
    return out_of_place, in_place


def _foreach_norm(self, ord=2, dtype=None):
    """The norm of each tensor of `self`, as a tuple of 0-dim tensors (each on its tensor's device, in its dtype
    or `dtype`): torch._foreach_norm."""
    return tuple(_norm(list(self), ord, dtype=dtype))


def _foreach_max(self):
    """torch._foreach_max: the largest element of each tensor, as a tuple of 0-dim tensors."""
    return tuple(_vt().max(t) for t in _tensors("_foreach_max", self))


def _foreach_clone(self):
    """torch._foreach_clone: a copy of each tensor, as a tuple."""
    return tuple(t.clone() for t in _tensors("_foreach_clone", self))


def _foreach_copy_(self, src, non_blocking=False):
    """torch._foreach_copy_: self[i].copy_(src[i]) (broadcasting src[i]); returns self."""
    tensors = _tensors("_foreach_copy_", self)
    src = _tensors("_foreach_copy_", src, 1)
    _same_length(tensors, src)
    for t, s in zip(tensors, src):
        t.copy_(s, non_blocking=non_blocking)
    return self


def _foreach_zero_(self):
    """torch._foreach_zero_: zeroes every tensor in place; returns self."""
    for t in _tensors("_foreach_zero_", self):
        t.zero_()
    return self


FUNCTIONS = {f.__name__: f for f in (_foreach_norm, _foreach_max, _foreach_clone, _foreach_copy_, _foreach_zero_,
                                     _foreach_lerp, _foreach_lerp_)}
for _op in UNARY:
    FUNCTIONS.update((f.__name__, f) for f in _make_unary(_op))
for _op, (_tensor_overload, _alpha) in BINARY.items():
    FUNCTIONS.update((f.__name__, f) for f in _make_binary(_op, _tensor_overload, _alpha))
for _op in ("addcmul", "addcdiv"):
    FUNCTIONS.update((f.__name__, f) for f in _make_pointwise(_op))
globals().update(FUNCTIONS)
__all__ = sorted(FUNCTIONS)
