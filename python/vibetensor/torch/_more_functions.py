"""More of torch's top-level functions, composed over dispatcher ops so they run on any device and differentiate
through their parts: tile, randperm, tril/triu_indices, diag, diag_embed, nan_to_num, bucketize, searchsorted,
meshgrid, std_mean/var_mean, aminmax, logaddexp(2), hypot, unique, bincount, histc, cdist, kron, finfo, iinfo.

Costs worth knowing: searchsorted/bucketize compare every value against every boundary (memory values x
boundaries, no binary search kernel here); unique, bincount, histc (with min == max) read a size or range back
to the host to size their result, as torch's do."""
from __future__ import annotations

import builtins
import collections
import math
import warnings

import numpy as np

from .._C import core as _core
from . import _functions as F
from . import _out
from . import _select_ops as S

Tensor = _core.Tensor
_dt = _core.dtype
_op = _core.op


def _is_float(dtype):
    return dtype.is_floating_point


def _as_tensor(x, like=None):
    if isinstance(x, Tensor):
        return x
    return F.tensor(x, device=like.device if like is not None else None)


# ---- shapes and factories ----
def tile(input, dims):
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    # torch pads dims with leading 1s when it is shorter than the input's rank; repeat does the rest
    dims = (1,) * builtins.max(input.dim() - len(dims), 0) + dims
    from ._composite_ops import repeat
    return repeat(input, dims)


def randperm(n, *, generator=None, dtype=None, layout=None, device=None, requires_grad=False, pin_memory=False):
    F._check_layout(layout, "randperm")
    if n < 0:
        raise RuntimeError(f"randperm: n must be non-negative, got {n}")
    dtype = dtype or _dt.int64
    # the sort order of n uniform keys is a uniform permutation (ties have probability ~n^2 / 2^24 in float32,
    # so the keys are float64)
    keys = F.rand(n, dtype=_dt.float64, device=device, generator=generator)
    perm = S.argsort(keys) if n else F.arange(0, dtype=_dt.int64, device=device)
    return F._requiring_grad(perm.to(dtype), requires_grad)


def _tri_indices(row, col, offset, dtype, device, lower):
    if row < 0 or col < 0:
        raise RuntimeError(f"row must be non-negative, got {row}" if row < 0 else f"col must be non-negative, got {col}")
    dtype = dtype or _dt.int64
    if dtype not in (_dt.int32, _dt.int64):
        raise RuntimeError(f"\"{'tril' if lower else 'triu'}_indices\" not implemented for '{dtype}'")
    r = F.arange(row, device=device).unsqueeze(-1)
    c = F.arange(col, device=device).unsqueeze(0)
    mask = (c - r <= offset) if lower else (c - r >= offset)
    # nonzero lists the kept positions in row-major order, which is torch's order
    return F.nonzero(mask).t().contiguous().to(dtype)


def tril_indices(row, col, offset=0, *, dtype=None, device=None, layout=None, pin_memory=False):
    F._check_layout(layout, "tril_indices")
    return _tri_indices(row, col, offset, dtype, device, True)


def triu_indices(row, col, offset=0, *, dtype=None, device=None, layout=None, pin_memory=False):
    F._check_layout(layout, "triu_indices")
    return _tri_indices(row, col, offset, dtype, device, False)


def diag_embed(input, offset=0, dim1=-2, dim2=-1):
    ndim = input.dim() + 1
    d1, d2 = F._wrap(dim1, ndim), F._wrap(dim2, ndim)
    if d1 == d2:
        raise RuntimeError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
    x = input.reshape(1) if input.dim() == 0 else input
    m = x.shape[-1] + builtins.abs(offset)
    # zeros, then x copied onto the diagonal view: two kernels, and the copy records x's gradient (CopySlices)
    out = F.zeros(*x.shape[:-1], m, m, dtype=input.dtype, device=input.device)
    out.diagonal(offset, -2, -1).copy_(x)
    return out if (d1, d2) == (ndim - 2, ndim - 1) else F.movedim(out, [-2, -1], [d1, d2])


def diag(input, diagonal=0):
    if input.dim() == 1:  # diag_embed's zeros and copy onto the diagonal, without its dim bookkeeping
        m = input.shape[0] + builtins.abs(diagonal)
        out = F.zeros(m, m, dtype=input.dtype, device=input.device)
        out.diagonal(diagonal).copy_(input)
        return out
    if input.dim() == 2:
        return input.diagonal(diagonal).clone()
    raise RuntimeError(f"diag(): Supports 1D or 2D tensors. Got {input.dim()}D")


def meshgrid(*tensors, indexing=None):
    if len(tensors) == 1 and not isinstance(tensors[0], Tensor):
        tensors = tuple(tensors[0])
    if indexing is None:
        warnings.warn("torch.meshgrid: in an upcoming release, it will be required to pass the indexing argument.",
                      UserWarning, stacklevel=2)
        indexing = "ij"
    if indexing not in ("ij", "xy"):
        raise RuntimeError(f"torch.meshgrid: indexing must be one of \"xy\" or \"ij\", but received: {indexing}")
    if not tensors:
        raise RuntimeError("torch.meshgrid expects a non-empty TensorList")
    for t in tensors:
        if t.dim() > 1:
            raise RuntimeError(f"torch.meshgrid: Expected 0D or 1D tensor in the tensor list but got: {t}")
    if builtins.any(t.dtype != tensors[0].dtype for t in tensors):
        raise RuntimeError("torch.meshgrid: expects all tensors to have the same dtype")
    if builtins.any(t.device != tensors[0].device for t in tensors):
        raise RuntimeError("torch.meshgrid: expects all tensors to have the same device")
    shape = [t.numel() for t in tensors]
    k = len(tensors)
    outs = [t.reshape(*[-1 if i == j else 1 for j in range(k)]).expand(*shape) for i, t in enumerate(tensors)]
    if indexing == "xy" and k >= 2:  # 'xy' is 'ij' with the first two output dims swapped
        outs = [o.transpose(0, 1) for o in outs]
    return tuple(outs)


# ---- reductions ----
def var_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    if isinstance(dim, builtins.bool):
        dim, unbiased = None, dim
    return F.var(input, dim, unbiased, keepdim, correction=correction), F.mean(input, dim, keepdim)


def std_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    if isinstance(dim, builtins.bool):
        dim, unbiased = None, dim
    return F.std(input, dim, unbiased, keepdim, correction=correction), F.mean(input, dim, keepdim)


aminmax_result = collections.namedtuple("aminmax", ["min", "max"])


def aminmax(input, *, dim=None, keepdim=False):
    if dim is None and input.numel() == 0:
        raise RuntimeError("aminmax(): cannot compute aminmax over an empty dimension as the operation has no "
                           "identity.")
    if dim is None:
        mn, mx = F.amin(input), F.amax(input)
        if keepdim:
            shape = [1] * input.dim()
            mn, mx = mn.reshape(*shape), mx.reshape(*shape)
        return aminmax_result(mn, mx)
    if input.dim() and input.shape[F._wrap(dim, input.dim())] == 0:
        raise IndexError(f"aminmax(): Expected reduction dim {dim} to have non-zero size.")
    return aminmax_result(F.amin(input, dim, keepdim), F.amax(input, dim, keepdim))


# ---- elementwise ----
def _float_pair(a, b, name):
    a = _as_tensor(a, b if isinstance(b, Tensor) else None)
    b = _as_tensor(b, a)
    t = _core.promote_types(a.dtype, b.dtype)
    if not _is_float(t):  # torch has no integer kernel either
        raise NotImplementedError(f"\"{name}_cpu\" not implemented for '{t}'")
    return a.to(t), b.to(t)


def _logaddexp(a, b, base2):
    a, b = _float_pair(a, b, "logaddexp2" if base2 else "logaddexp")
    m = _op("vt::maximum")(a, b)
    d = -(a - b).abs()
    out = m + (d.exp2().log1p() / math.log(2) if base2 else d.exp().log1p())
    # a == b == +-inf: a - b is nan, but the answer is that infinity
    return F.where((a == b) & a.isinf(), a, out)


def logaddexp(input, other):
    return _logaddexp(input, other, False)


def logaddexp2(input, other):
    return _logaddexp(input, other, True)


def hypot(input, other):
    if not (isinstance(input, Tensor) and isinstance(other, Tensor)):
        raise TypeError("hypot(): arguments 'input' and 'other' must be Tensors")
    t = _core.promote_types(input.dtype, other.dtype)
    if not _is_float(t):
        raise NotImplementedError(f"\"hypot_cpu\" not implemented for '{t}'")
    a, b = input.to(t).abs(), other.to(t).abs()
    # scaled by the larger magnitude so a*a does not overflow (1e20 in float32) or underflow
    m = _op("vt::maximum")(a, b)
    s = F.where(m == 0, F.ones_like(m), m)
    s = F.where(s.isinf(), F.ones_like(m), s)
    out = s * ((a / s).square() + (b / s).square()).sqrt()
    return F.where(a.isinf() | b.isinf(), F.full_like(m, math.inf), out)


def nan_to_num(input, nan=0.0, posinf=None, neginf=None):
    if not _is_float(input.dtype):
        return input.clone()
    fi = finfo(input.dtype)
    posinf = fi.max if posinf is None else posinf
    neginf = fi.min if neginf is None else neginf
    return input.masked_fill(input.isnan(), nan).masked_fill(input == math.inf, posinf) \
        .masked_fill(input == -math.inf, neginf)


# ---- searching and counting ----
def searchsorted(sorted_sequence, input, *, out_int32=False, right=False, side=None, sorter=None):
    if side is not None:
        if side not in ("left", "right"):
            raise RuntimeError(f"torch.searchsorted(): side can only be 'left' or 'right' but got {side}")
        if right and side == "left":
            raise RuntimeError("torch.searchsorted(): side and right can't be set to opposites, got side of left "
                               "while right was True")
        right = side == "right"
    scalar = not isinstance(input, Tensor)
    values = _as_tensor(input, sorted_sequence)
    seq = sorted_sequence
    if sorter is not None:
        if tuple(sorter.shape) != tuple(seq.shape):
            raise RuntimeError("torch.searchsorted(): boundary and sorter must have the same size, but got boundary "
                               f"tensor {list(seq.shape)} and got sorter tensor {list(sorter.shape)}")
        if sorter.dtype != _dt.int64:
            raise RuntimeError(f"torch.searchsorted(): sorter must be a tensor of long dtype but got dtype {sorter.dtype}")
        seq = seq.gather(-1, sorter)
    if seq.dim() == 0:
        raise RuntimeError("torch.searchsorted(): boundaries tensor should have positive dimension, but got 0 "
                           "dimension")
    if seq.dim() > 1 and (scalar or tuple(seq.shape[:-1]) != tuple(values.shape[:-1])):
        raise RuntimeError("torch.searchsorted(): boundaries tensor should be 1 dimension or the first N-1 "
                           "dimensions of boundaries tensor and input value tensor must match, but we got "
                           f"boundaries tensor {list(seq.shape)} and input value tensor {list(values.shape)}")
    t = _core.promote_types(seq.dtype, values.dtype)
    seq, values = seq.to(t), values.to(t)
    out_dtype = _dt.int32 if out_int32 else _dt.int64
    n = seq.shape[-1]
    # NaN boundaries: torch's answer is where its binary search ends up (a NaN compares neither way), so
    # search as it does; checked on the CPU only (on a GPU the check would wait for the device)
    if n <= _SEARCH_COUNT_MAX and not (t.is_floating_point and seq.device.type == "cpu"
                                       and bool(seq.isnan().any())):
        # the insertion index is how many boundaries lie before the value (< left, <= right); a NaN value sorts
        # after every boundary. One broadcast compare: cheapest for short sequences
        v = values.unsqueeze(-1)
        s = seq if seq.dim() == 1 else seq.unsqueeze(-2)
        before = (s <= v) if right else (s < v)
        if t.is_floating_point:
            before = before | v.isnan()
        return before.sum(-1, dtype=out_dtype)
    # torch's binary search on every value at once: log2(n) rounds of gather and compare
    lo = F.zeros(tuple(values.shape), dtype=_dt.int64, device=values.device)
    hi = F.full(tuple(values.shape), n, dtype=_dt.int64, device=values.device)
    for _ in range(n.bit_length()):
        mid = lo + ((hi - lo) >> 1)
        safe = mid.clamp(max=max(n - 1, 0))
        mid_val = seq.take(safe) if seq.dim() == 1 else seq.gather(-1, safe)
        go_right = ~(mid_val > values) if right else ~(mid_val >= values)
        active = lo < hi
        lo = F.where(active & go_right, mid + 1, lo)
        hi = F.where(active & ~go_right, mid, hi)
    return lo.to(out_dtype) if out_int32 else lo


_SEARCH_COUNT_MAX = 128  # longer sequences: the binary search (the compare would take n bytes per value)


def bucketize(input, boundaries, *, out_int32=False, right=False):
    if boundaries.dim() != 1:
        raise RuntimeError(f"boundaries tensor must be 1 dimension, but got dim({boundaries.dim()})")
    return searchsorted(boundaries, input, out_int32=out_int32, right=right)


def unique(input, sorted=True, return_inverse=False, return_counts=False, dim=None):
    if dim is not None:
        raise NotImplementedError("unique(dim=...) is not supported by vibetensor; only dim=None")
    # sorted runs of equal values: their starts give the values, the run index of each element its inverse. The
    # result's size is only known after nonzero reads the starts back to the host (as torch's unique syncs).
    flat = input.flatten()
    n = flat.numel()
    vals, perm = S.sort(flat, stable=True) if n else (flat, F.arange(0, device=input.device))
    if n:
        start = F.cat([F.ones(1, dtype=_dt.bool, device=input.device), vals[1:] != vals[:-1]])
    else:
        start = F.zeros(0, dtype=_dt.bool, device=input.device)
    starts = F.nonzero(start).flatten()
    out = vals.index_select(0, starts)
    res = [out]
    if return_inverse:
        run = start.cumsum(0) - 1
        inv = F.zeros(n, dtype=_dt.int64, device=input.device).scatter(0, perm, run) if n else run
        res.append(inv.reshape(*input.shape) if input.dim() else inv.reshape([]))
    if return_counts:
        ends = F.cat([starts[1:], F.full([1], n, dtype=_dt.int64, device=input.device)]) if n else starts
        res.append(ends - starts)
    return res[0] if len(res) == 1 else tuple(res)


def bincount(input, weights=None, minlength=0):
    if input.dim() != 1 or input.dtype.is_floating_point or input.dtype == _dt.bool:
        raise RuntimeError("bincount only supports 1-d non-negative integral inputs.")
    if minlength < 0:
        raise RuntimeError("minlength should be >= 0")
    if weights is not None and (weights.dim() != 1 or weights.shape[0] != input.shape[0]):
        raise RuntimeError("weights should be 1-d and have the same length as input")
    if input.numel() and builtins.int(F.amin(input).item()) < 0:
        raise RuntimeError("bincount only supports 1-d non-negative integral inputs.")
    size = builtins.max(builtins.int(F.amax(input).item()) + 1 if input.numel() else 0, minlength)
    idx = input.to(_dt.int64)
    if weights is None:
        src, dtype = F.ones(input.numel(), dtype=_dt.int64, device=input.device), _dt.int64
    else:  # torch counts float32 weights in float32 and every other dtype in float64
        dtype = weights.dtype if weights.dtype == _dt.float32 else _dt.float64
        src = weights.to(dtype)
    return F.zeros(size, dtype=dtype, device=input.device).scatter_add(0, idx, src)


def histc(input, bins=100, min=0, max=0):
    if not _is_float(input.dtype):
        raise RuntimeError(f"\"histogram_cpu\" not implemented for '{input.dtype}'")
    if bins <= 0:
        raise RuntimeError("torch.histc: bins must be > 0, but got " + str(bins))
    lo, hi = builtins.float(min), builtins.float(max)
    if lo == hi and input.numel():
        lo, hi = builtins.float(F.amin(input).item()), builtins.float(F.amax(input).item())
    if lo == hi:
        lo, hi = lo - 1, hi + 1
    if lo > hi:
        raise RuntimeError("torch.histc: max must be larger than min")
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise RuntimeError(f"torch.histc: range of [{lo}, {hi}] is not finite")
    x = input.flatten().detach()
    inside = (x >= lo) & (x <= hi)
    pos = ((x.to(_dt.float64) - lo) * bins / (hi - lo)).floor().to(_dt.int64).clamp(0, bins - 1)
    # elements outside [min, max] land in bin 0 with weight 0
    w = inside.to(input.dtype)
    pos = pos.masked_fill(~inside, 0)
    return F.zeros(bins, dtype=input.dtype, device=input.device).scatter_add(0, pos, w)


# ---- products and distances ----
def cdist(x1, x2, p=2.0, compute_mode="use_mm_for_euclid_dist_if_necessary"):
    if x1.dim() < 2 or x2.dim() < 2:
        which, t = ("X1", x1) if x1.dim() < 2 else ("X2", x2)
        raise RuntimeError(f"cdist only supports at least 2D tensors, {which} got: {t.dim()}D")
    for which, t in (("X1", x1), ("X2", x2)):
        if not _is_float(t.dtype):
            raise RuntimeError(f"cdist only supports floating-point dtypes, {which} got: {t.dtype}")
    if x1.shape[-1] != x2.shape[-1]:
        raise RuntimeError(f"X1 and X2 must have the same number of columns. X1: {x1.shape[-1]} X2: {x2.shape[-1]}")
    if p < 0:
        raise RuntimeError("cdist only supports non-negative p values")
    if compute_mode not in ("use_mm_for_euclid_dist_if_necessary", "use_mm_for_euclid_dist",
                            "donot_use_mm_for_euclid_dist"):
        raise ValueError(f"{compute_mode} is not a valid value for compute_mode")
    diff = x1.unsqueeze(-2) - x2.unsqueeze(-3)  # (..., P, R, M), the batch dims broadcast
    if x1.shape[-1] == 0:
        return diff.sum(-1)
    if p == 0:
        return (diff != 0).sum(-1, dtype=diff.dtype)
    return _op("vt::norm")(diff, p, [-1], False)


def kron(input, other):
    k = builtins.max(input.dim(), other.dim())
    a = input.reshape(*([1] * (k - input.dim()) + list(input.shape)))
    b = other.reshape(*([1] * (k - other.dim()) + list(other.shape)))
    # a's dim i and b's dim i interleave: (a0, 1, a1, 1, ...) * (1, b0, 1, b1, ...), then merge each pair
    ai, bi = [], []
    for sa, sb in zip(a.shape, b.shape):
        ai += [sa, 1]
        bi += [1, sb]
    out = a.reshape(*ai) * b.reshape(*bi) if k else a * b
    return out.reshape(*[sa * sb for sa, sb in zip(a.shape, b.shape)]) if k else out


# ---- dtype information ----
_BF16 = dict(bits=16, eps=0.0078125, max=3.3895313892515355e+38, tiny=1.1754943508222875e-38, resolution=0.01)


class finfo:
    """Machine limits of a floating dtype: bits, eps, max, min, tiny (= smallest_normal), resolution, dtype."""

    def __init__(self, type=None):
        type = type or _dt.float32
        if not isinstance(type, _dt) or not type.is_floating_point:
            raise TypeError(f"finfo(): argument 'type' must be a floating point dtype, not {type}")
        name = str(type).rsplit(".", 1)[-1]
        if name == "bfloat16":
            info = dict(_BF16)
        else:
            f = np.finfo(name)
            # torch's resolution is exactly 10**-precision (NumPy's is that rounded to the dtype)
            info = dict(bits=f.bits, eps=builtins.float(f.eps), max=builtins.float(f.max),
                        tiny=builtins.float(f.tiny), resolution=10.0 ** -f.precision)
        self.bits, self.eps, self.max = info["bits"], info["eps"], info["max"]
        self.min = -self.max
        self.tiny = self.smallest_normal = info["tiny"]
        self.resolution = info["resolution"]
        self.dtype = name

    def __repr__(self):
        return (f"finfo(resolution={self.resolution}, min={self.min:g}, max={self.max:g}, eps={self.eps:g}, "
                f"smallest_normal={self.smallest_normal:g}, tiny={self.tiny:g}, dtype={self.dtype})")


class iinfo:
    """Machine limits of an integer dtype: bits, max, min, dtype."""

    def __init__(self, type):
        if not isinstance(type, _dt) or type.is_floating_point or type == _dt.bool:
            raise TypeError(f"iinfo(): argument 'type' must be an integer dtype, not {type}")
        name = str(type).rsplit(".", 1)[-1]
        i = np.iinfo(name)
        self.bits, self.min, self.max, self.dtype = i.bits, builtins.int(i.min), builtins.int(i.max), name

    def __repr__(self):
        return f"iinfo(min={self.min}, max={self.max}, dtype={self.dtype})"


# out= where torch's functions take it (Note [out= by copy])
searchsorted, bucketize, logaddexp, logaddexp2, hypot, nan_to_num, kron, diag, histc, aminmax = (
    _out.accepts_out(f) for f in (searchsorted, bucketize, logaddexp, logaddexp2, hypot, nan_to_num, kron, diag,
                                  histc, aminmax))


# Tensor methods where torch has them (attached when the package imports this module)
def _unique_method(self, sorted=True, return_inverse=False, return_counts=False, dim=None):
    return unique(self, sorted, return_inverse, return_counts, dim)


_METHODS = {
    "tile": lambda self, *dims: tile(self, dims[0] if len(dims) == 1 and not isinstance(dims[0], int) else dims),
    "diag": diag, "diag_embed": diag_embed, "nan_to_num": nan_to_num, "logaddexp": logaddexp,
    "logaddexp2": logaddexp2, "hypot": hypot, "aminmax": aminmax, "unique": _unique_method, "bincount": bincount,
    "histc": histc, "kron": kron,
}
for _name, _fn in _METHODS.items():
    setattr(Tensor, _name, _fn)
