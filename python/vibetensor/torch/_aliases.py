"""torch's alias names and small compositions that public model code calls as functions or Tensor methods:
broadcast_to, broadcast_tensors/broadcast_shapes, gcd/lcm, nextafter, swapaxes/swapdims, moveaxis, ravel, the arc* names, asinh/acosh/atanh, fmax/fmin, isposinf/isneginf/
isreal, inner, take, positive, the greater/less/not_equal names, conj/resolve_conj/resolve_neg/real (identities:
there are no complex dtypes here), diagflat, msort, fix, narrow_copy, split_with_sizes, select/slice/diagonal
_scatter, sum_to_size, hsplit/vsplit/dsplit, cov/corrcoef, unique_consecutive (dim=None), Tensor.type(),
fill_diagonal_, H/mH/adjoint, and in-place forms (cumsum_, clamp_min_, subtract_, ...). Each is
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


def broadcast_shapes(*shapes):
    """torch.broadcast_shapes: the shape every given shape broadcasts to (NumPy's rules)."""
    shapes = [(s,) if isinstance(s, int) else tuple(s) for s in shapes]
    ndim = max((len(s) for s in shapes), default=0)
    out = [1] * ndim
    for s in shapes:
        for i, n in enumerate(s, ndim - len(s)):
            if n != 1 and out[i] != 1 and n != out[i]:
                raise RuntimeError(f"Shape mismatch: objects cannot be broadcast to a single shape.  Mismatch is "
                                   f"between arg {shapes.index(s)} and the shape {out} at dimension {i}.")
            out[i] = n if out[i] == 1 else out[i]
    return tuple(out)


def broadcast_tensors(*tensors):
    tensors = tensors[0] if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)) else tensors
    shape = broadcast_shapes(*(tuple(t.shape) for t in tensors))
    return tuple(t.expand(*shape) for t in tensors)


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


def cov(input, *, correction=1, fweights=None, aweights=None):
    """torch.cov: rows are variables, columns observations; unweighted (the weights are refused)."""
    if fweights is not None or aweights is not None:
        raise NotImplementedError("cov: fweights and aweights are not supported")
    if input.dim() > 2:
        raise RuntimeError(f"cov(): expected input to have two or fewer dimensions but got an input with "
                           f"{input.dim()} dimensions")
    x = _float(input.reshape(1, -1) if input.dim() < 2 else input)
    n = x.shape[1]
    centred = x - x.mean(1, keepdim=True)
    out = centred @ centred.transpose(0, 1) / max(n - correction, 0)
    return out.reshape(()) if input.dim() < 2 or x.shape[0] == 1 else out


def corrcoef(input):
    c = cov(input)
    if c.dim() == 0:
        return c / c
    d = c.diagonal().sqrt()
    return (c / d.reshape(-1, 1) / d.reshape(1, -1)).clamp(-1, 1)


def _unique_consecutive_dim(input, return_inverse, return_counts, dim):
    """Runs of equal slices along dim (each slice compared whole), as torch's unique_consecutive(dim=)."""
    nd = input.dim()
    if nd == 0:
        raise IndexError(f"Dimension specified as {dim} but tensor has no dimensions")
    if not -nd <= dim < nd:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-nd}, {nd - 1}], but got {dim})")
    dim = dim % nd
    if any(size == 0 for d, size in enumerate(input.shape) if d != dim):
        raise RuntimeError("There are 0 sized dimensions, and they aren't selected, so unique cannot be applied")
    x = input.movedim(dim, 0)
    n = x.shape[0]
    if n == 0:
        starts = F.zeros(0, dtype=_dt.int64, device=input.device)
        new_run = starts
    else:
        new_run = F.ones(n, dtype=_dt.bool, device=input.device)
        if n > 1:
            new_run[1:] = (x[1:] != x[:-1]).reshape(n - 1, -1).any(1)
        starts = new_run.nonzero().reshape(-1)
    result = [x.index_select(0, starts).movedim(0, dim)]
    if return_inverse:
        result.append(new_run.to(_dt.int64).cumsum(0) - 1 if n else starts)
    if return_counts:
        result.append(F.cat([starts[1:], F.tensor([n], device=input.device)]) - starts if n else starts)
    return result[0] if len(result) == 1 else tuple(result)


def unique_consecutive(input, return_inverse=False, return_counts=False, dim=None):
    """torch.unique_consecutive: each run of equal values of the flattened input once (dim=None), or each run of
    equal slices along dim; reads the number of runs back to the host to size the result, as torch's does."""
    if dim is not None:
        return _unique_consecutive_dim(input, return_inverse, return_counts, dim)
    flat = input.reshape(-1)
    if flat.numel() == 0:
        out = flat.clone()
        starts = F.zeros(0, dtype=_dt.int64, device=input.device)
    else:
        new_run = F.ones(flat.numel(), dtype=_dt.bool, device=input.device)
        new_run[1:] = flat[1:] != flat[:-1]
        starts = new_run.nonzero().reshape(-1)
        out = flat[starts]
    result = [out]
    if return_inverse:
        inv = (new_run.to(_dt.int64).cumsum(0) - 1) if flat.numel() else starts
        result.append(inv.reshape(input.shape))
    if return_counts:
        ends = F.cat([starts[1:], F.tensor([flat.numel()], device=input.device)]) if flat.numel() else starts
        result.append(ends - starts)
    return result[0] if len(result) == 1 else tuple(result)


def fill_diagonal_(self, fill_value, wrap=False):
    """Tensor.fill_diagonal_: the main diagonal (all indices equal) set to fill_value; wrap restarts it every
    cols + 1 rows of a tall matrix, as NumPy's and torch's do."""
    if self.dim() < 2 or (self.dim() > 2 and len(set(self.shape)) != 1):
        raise RuntimeError("all dimensions of input must be of equal length" if self.dim() > 2
                           else "dimensions must larger than 1")
    if self.dim() == 2:
        rows, cols = self.shape
        positions = list(range(0, rows * cols, cols + 1))  # row-major flat positions of the diagonal
        if not wrap:
            positions = positions[:min(rows, cols)]
        pos = F.tensor(positions, dtype=_dt.int64, device=self.device)
        self[pos // cols, pos % cols] = fill_value
        return self
    ar = F.arange(self.shape[0], device=self.device)
    self[(ar,) * self.dim()] = fill_value
    return self


def gcd(input, other):
    """torch.gcd of integer tensors (non-negative result, gcd(0, 0) = 0): Euclid's steps on whole tensors until
    every remainder is 0 (at most ~90 steps for int64; one host read per step)."""
    if input.dtype.is_floating_point or other.dtype.is_floating_point or input.dtype == _dt.bool:
        raise RuntimeError(f"\"gcd_cpu\" not implemented for '{str(input.dtype).split('.')[-1].capitalize()}'")
    a, b = broadcast_tensors(input.abs(), other.abs())
    while bool((b != 0).any()):
        nz = b != 0
        a, b = F.where(nz, b, a), F.where(nz, a.remainder(F.where(nz, b, 1)), 0)
    return a


def lcm(input, other):
    g = gcd(input, other)
    return F.where(g == 0, 0, (input // F.where(g == 0, 1, g) * other).abs())


def nextafter(input, other):
    """The next float after input toward other, by stepping the bit pattern (float32 and float64)."""
    bits_dtype = {_dt.float32: _dt.int32, _dt.float64: _dt.int64}.get(input.dtype)
    if bits_dtype is None:
        raise RuntimeError(f"nextafter: float32 and float64 only, got {input.dtype}")
    x, y = broadcast_tensors(input, other.to(input.dtype))
    bits = x.contiguous().view(bits_dtype)
    up = (y > x) == (x >= 0)  # away from zero when moving toward y's side of x's sign
    step = F.where(up, 1, -1).to(bits_dtype)
    # from +-0: the smallest subnormal toward y, +1 or the sign bit plus 1 as the bit pattern
    negative_tiny = -2 ** (31 if bits_dtype == _dt.int32 else 63) + 1
    from_zero = F.where(y > 0, 1, negative_tiny).to(bits_dtype)
    nxt = F.where(x == 0, from_zero, bits + step).view(input.dtype)
    return F.where(x.isnan() | y.isnan(), x + y, F.where(x == y, y, nxt))


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
    "broadcast_to": broadcast_to, "broadcast_shapes": broadcast_shapes, "broadcast_tensors": broadcast_tensors,
    "swapaxes": swapaxes, "swapdims": swapaxes, "moveaxis": moveaxis, "ravel": ravel,
    "narrow_copy": narrow_copy, "split_with_sizes": split_with_sizes, "hsplit": hsplit, "vsplit": vsplit,
    "dsplit": dsplit, "asinh": asinh, "acosh": acosh, "atanh": atanh, "arcsinh": asinh, "arccosh": acosh,
    "arctanh": atanh, "arcsin": lambda x: x.asin(), "arccos": lambda x: x.acos(), "arctan": lambda x: x.atan(),
    "arctan2": lambda x, y: x.atan2(y), "fmax": fmax, "fmin": fmin, "isposinf": isposinf, "isneginf": isneginf,
    "isreal": isreal, "fix": fix, "positive": positive, "inner": inner, "take": take, "msort": msort,
    "diagflat": diagflat, "conj": conj, "conj_physical": conj, "resolve_conj": conj, "resolve_neg": conj,
    "gcd": gcd, "lcm": lcm, "nextafter": nextafter,
    "real": real, "is_conj": is_conj, "cov": cov, "corrcoef": corrcoef, "unique_consecutive": unique_consecutive, "is_neg": is_conj, "select_scatter": select_scatter,
    "slice_scatter": slice_scatter, "diagonal_scatter": diagonal_scatter,
    "greater": lambda x, y: x > y, "greater_equal": lambda x, y: x >= y, "less": lambda x, y: x < y,
    "less_equal": lambda x, y: x <= y, "not_equal": lambda x, y: x != y,
}


_TYPE_NAMES = {"float32": "FloatTensor", "float64": "DoubleTensor", "float16": "HalfTensor",
               "bfloat16": "BFloat16Tensor", "int64": "LongTensor", "int32": "IntTensor", "int16": "ShortTensor",
               "int8": "CharTensor", "uint8": "ByteTensor", "bool": "BoolTensor"}


def _type(self, dtype):
    """Tensor.type(): torch's type string ('torch.FloatTensor', 'torch.cuda.FloatTensor'); with a dtype (or such
    a string), the tensor converted to it."""
    if dtype is None:
        name = _TYPE_NAMES[str(self.dtype).split(".")[-1]]
        return f"torch.cuda.{name}" if self.is_cuda else f"torch.{name}"
    if isinstance(dtype, str):
        by_name = {v: k for k, v in _TYPE_NAMES.items()}
        dtype = getattr(_dt, by_name[dtype.split(".")[-1]])
    elif isinstance(dtype, type) and isinstance(getattr(dtype, "dtype", None), _dt):  # torch.LongTensor, ...
        dtype = dtype.dtype
    return self.to(dtype)


def _matrix_h(self):
    if self.dim() != 2:
        raise RuntimeError(f"tensor.H is only supported on matrices (2-D tensors). Got {self.dim()}-D tensor.")
    return self.transpose(0, 1)


def _inplace(fn):
    def method(self, *args, **kwargs):
        return self.copy_(fn(self, *args, **kwargs))
    return method


METHODS = dict(FUNCTIONS)
del METHODS["is_conj"], METHODS["is_neg"]
METHODS.update({
    "is_conj": lambda self: False, "is_neg": lambda self: False, "sum_to_size": sum_to_size,
    "real": property(real),  # a property on torch's Tensor
    "fill_diagonal_": fill_diagonal_,
    "type": lambda self, dtype=None, non_blocking=False: _type(self, dtype),
    "H": property(_matrix_h),
    "mH": property(lambda self: self.transpose(-2, -1)), "adjoint": lambda self: self.transpose(-2, -1),
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
    "gcd_": _inplace(gcd), "lcm_": _inplace(lcm), "nextafter_": _inplace(nextafter),
    "hypot_": _inplace(lambda s, o: s.hypot(o)), "heaviside_": _inplace(lambda s, v: s.heaviside(v)),
    "ldexp_": _inplace(lambda s, o: s.ldexp(o)), "float_power_": _inplace(lambda s, e: s.float_power(e)),
    "nan_to_num_": _inplace(lambda s, nan=0.0, posinf=None, neginf=None: s.nan_to_num(nan, posinf, neginf)),
})

for _name, _fn in METHODS.items():
    if not hasattr(Tensor, _name):  # the compiled class's own (arctan2, greater, ...) stay
        setattr(Tensor, _name, _fn)
