"""torch's alias names and small compositions that public model code calls as functions or Tensor methods:
broadcast_to, swapaxes/swapdims, moveaxis, ravel, the arc* names, asinh/acosh/atanh, fmax/fmin, isposinf/isneginf/
isreal, inner, take, positive, the greater/less/not_equal names, conj/resolve_conj/resolve_neg/real (identities:
there are no complex dtypes here), diagflat, msort, fix, narrow_copy, split_with_sizes, select/slice/diagonal
_scatter, sum_to_size, hsplit/vsplit/dsplit, and in-place forms (cumsum_, clamp_min_, subtract_, ...). Each is
composed over dispatcher ops, so it runs on every device and differentiates through its parts.

asinh, acosh and atanh use log1p forms that keep their accuracy near 0 (asinh, atanh) and near 1 (acosh):
asinh(x) = sign(x) log1p(|x| + x^2 / (1 + sqrt(1 + x^2))), acosh(x) = log1p(t + sqrt(t (x + 1))) with t = x - 1,
atanh(x) = 0.5 log1p(2x / (1 - x)); asinh and acosh switch to log(2|x|) past 2^28, where x^2 would overflow."""
from __future__ import annotations

import math

from .._C import core as _core
from . import _functions as F

Tensor = _core.Tensor
_dt = _core.dtype


def _float(x):
    return x if x.dtype.is_floating_point else x.to(_dt.float32)


# ---- shapes ----
def broadcast_to(input, size):
    return input.expand(*size) if not isinstance(size, int) else input.expand(size)


def swapaxes(input, axis0, axis1):
    return input.transpose(axis0, axis1)


def moveaxis(input, source, destination):
    return input.movedim(source, destination)


def ravel(input):
    return input.reshape(-1)


def narrow_copy(input, dim, start, length):
    return input.narrow(dim, start, length).clone()


def split_with_sizes(input, split_sizes, dim=0):
    return input.split(list(split_sizes), dim)


def _split_along(name, dim, min_dim):
    def split(input, indices_or_sections):
        if input.dim() < min_dim:
            raise RuntimeError(f"torch.{name} requires a tensor with at least {min_dim} dimension, but got a tensor "
                               f"with {input.dim()} dimensions!")
        d = 0 if (name == "hsplit" and input.dim() == 1) else dim
        if isinstance(indices_or_sections, int) and input.shape[d] % indices_or_sections:
            raise RuntimeError(f"torch.{name} attempted to split along dimension {d}, but the size of the dimension "
                               f"{input.shape[d]} is not divisible by the split_size {indices_or_sections}!")
        return input.tensor_split(indices_or_sections, d)
    return split


hsplit, vsplit, dsplit = _split_along("hsplit", 1, 1), _split_along("vsplit", 0, 2), _split_along("dsplit", 2, 3)


def sum_to_size(input, *size):
    size = tuple(size[0]) if len(size) == 1 and not isinstance(size[0], int) else size
    lead = input.dim() - len(size)
    if lead < 0 or any(s != 1 and s != n for s, n in zip(size, input.shape[lead:])):
        raise RuntimeError(f"size {list(size)} is not expandable to size {list(input.shape)}.")
    dims = list(range(lead)) + [lead + i for i, s in enumerate(size) if s == 1 and input.shape[lead + i] != 1]
    out = input.sum(dims, keepdim=True) if dims else input
    return out.reshape(size) if lead else out


# ---- math ----
def asinh(input):
    x = _float(input)
    a = x.abs()
    small = (a + a * a / (1 + (1 + a * a).sqrt())).log1p()
    big = (a.clamp(min=1.0)).log() + math.log(2.0)  # asinh(a) = log(2a) + O(1 / a^2) past 2^28
    return F.where(a > 2.0 ** 28, big, small) * x.sign()


def acosh(input):
    x = _float(input)
    t = x - 1
    big = x.clamp(min=1.0).log() + math.log(2.0)  # acosh(x) = log(2x) + O(1 / x^2) past 2^28
    return F.where(x > 2.0 ** 28, big, (t + (t * (x + 1)).sqrt()).log1p())


def atanh(input):
    x = _float(input)
    return 0.5 * (2 * x / (1 - x)).log1p()


def fmax(input, other):
    return F.where(input.isnan(), other, F.where(other.isnan(), input, input.maximum(other)))


def fmin(input, other):
    return F.where(input.isnan(), other, F.where(other.isnan(), input, input.minimum(other)))


def isposinf(input):
    return input == math.inf if input.dtype.is_floating_point else F.zeros_like(input, dtype=_dt.bool)


def isneginf(input):
    return input == -math.inf if input.dtype.is_floating_point else F.zeros_like(input, dtype=_dt.bool)


def isreal(input):
    return F.ones_like(input, dtype=_dt.bool)


def fix(input):
    return input.trunc()


def positive(input):
    if input.dtype == _dt.bool:
        raise TypeError("The `+` operator, on a bool tensor is not supported.")
    return input


def inner(input, other):
    if input.dim() == 0 or other.dim() == 0:
        return input * other
    if input.shape[-1] != other.shape[-1]:
        raise RuntimeError(f"inner() the last dimension must match on both input tensors but got shapes "
                           f"{list(input.shape)} and {list(other.shape)}")
    k = input.shape[-1]
    out = input.reshape(-1, k) @ other.reshape(-1, k).transpose(0, 1)
    return out.reshape(tuple(input.shape[:-1]) + tuple(other.shape[:-1]))


def take(input, index):
    return input.reshape(-1)[index]


def msort(input):
    return input.sort(0).values


def diagflat(input, offset=0):
    return input.reshape(-1).diag(offset)


# complex numbers are not supported: these are torch's answers for real tensors
def conj(input):
    return input


def real(input):
    return input


def is_conj(input):
    return False


def _scatter_into(view_of):
    def scatter(input, src, *args, **kwargs):
        out = input.clone()
        view_of(out, *args, **kwargs).copy_(src)
        return out
    return scatter


select_scatter = _scatter_into(lambda t, dim, index: t.select(dim, index))
slice_scatter = _scatter_into(
    lambda t, dim=0, start=None, end=None, step=1: t[(slice(None),) * (dim % t.dim()) + (slice(start, end, step),)])
diagonal_scatter = _scatter_into(
    lambda t, offset=0, dim1=0, dim2=1: t.diagonal(offset=offset, dim1=dim1, dim2=dim2))

FUNCTIONS = {
    "broadcast_to": broadcast_to, "swapaxes": swapaxes, "swapdims": swapaxes, "moveaxis": moveaxis, "ravel": ravel,
    "narrow_copy": narrow_copy, "split_with_sizes": split_with_sizes, "hsplit": hsplit, "vsplit": vsplit,
    "dsplit": dsplit, "asinh": asinh, "acosh": acosh, "atanh": atanh, "arcsinh": asinh, "arccosh": acosh,
    "arctanh": atanh, "arcsin": lambda x: x.asin(), "arccos": lambda x: x.acos(), "arctan": lambda x: x.atan(),
    "arctan2": lambda x, y: x.atan2(y), "fmax": fmax, "fmin": fmin, "isposinf": isposinf, "isneginf": isneginf,
    "isreal": isreal, "fix": fix, "positive": positive, "inner": inner, "take": take, "msort": msort,
    "diagflat": diagflat, "conj": conj, "conj_physical": conj, "resolve_conj": conj, "resolve_neg": conj,
    "real": real, "is_conj": is_conj, "is_neg": is_conj, "select_scatter": select_scatter,
    "slice_scatter": slice_scatter, "diagonal_scatter": diagonal_scatter,
    "greater": lambda x, y: x > y, "greater_equal": lambda x, y: x >= y, "less": lambda x, y: x < y,
    "less_equal": lambda x, y: x <= y, "not_equal": lambda x, y: x != y,
}


def _inplace(fn):
    def method(self, *args, **kwargs):
        return self.copy_(fn(self, *args, **kwargs))
    return method


METHODS = dict(FUNCTIONS)
del METHODS["is_conj"], METHODS["is_neg"]
METHODS.update({
    "is_conj": lambda self: False, "is_neg": lambda self: False, "sum_to_size": sum_to_size,
    "real": property(real),  # a property on torch's Tensor
    "is_signed": lambda self: self.dtype not in (_dt.bool, _dt.uint8),
    "is_same_size": lambda self, other: tuple(self.shape) == tuple(other.shape),
    "cumsum_": _inplace(lambda s, dim, dtype=None: s.cumsum(dim, dtype=dtype)),
    "cumprod_": _inplace(lambda s, dim, dtype=None: s.cumprod(dim, dtype=dtype)),
    "clamp_min_": _inplace(lambda s, min: s.clamp(min=min)), "clamp_max_": _inplace(lambda s, max: s.clamp(max=max)),
    "subtract_": lambda s, other, alpha=1: s.sub_(other, alpha=alpha),
    "multiply_": lambda s, other: s.mul_(other), "divide_": lambda s, other, rounding_mode=None: s.div_(
        other, rounding_mode=rounding_mode), "true_divide_": lambda s, other: s.div_(other),
    "negative_": lambda s: s.neg_(), "greater_": lambda s, o: s.gt_(o), "greater_equal_": lambda s, o: s.ge_(o),
    "less_": lambda s, o: s.lt_(o), "less_equal_": lambda s, o: s.le_(o), "not_equal_": lambda s, o: s.ne_(o),
    "fix_": lambda s: s.trunc_(), "arcsin_": lambda s: s.asin_(), "arccos_": lambda s: s.acos_(),
    "arctan_": lambda s: s.atan_(), "asinh_": _inplace(asinh), "acosh_": _inplace(acosh), "atanh_": _inplace(atanh),
    "arcsinh_": _inplace(asinh), "arccosh_": _inplace(acosh), "arctanh_": _inplace(atanh),
    "nan_to_num_": _inplace(lambda s, nan=0.0, posinf=None, neginf=None: s.nan_to_num(nan, posinf, neginf)),
})

for _name, _fn in METHODS.items():
    if not hasattr(Tensor, _name):  # the compiled class's own (arctan2, greater, ...) stay
        setattr(Tensor, _name, _fn)
