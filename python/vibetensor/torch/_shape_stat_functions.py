"""torch's top-level functions for shapes, indexing and order statistics, composed over dispatcher ops so they run
on any device and differentiate through their parts: tensor_split, h/v/d/column/row_stack, count_nonzero, diff,
isin, as_tensor, is_floating_point, is_complex, clip, empty_strided, scalar_tensor, is_nonzero, rot90, argwhere,
take_along_dim, block_diag, cartesian_prod, combinations, kthvalue, median, nanmedian, mode, quantile,
nanquantile, nansum, nanmean, cummax, cummin, logcumsumexp.

Costs worth knowing: the order statistics sort along the reduced dim (one sort kernel, no selection kernel);
isin compares every element against every test element; mode counts equal pairs (n^2 per row); cummax, cummin
and logcumsumexp are log2(n) steps of a Hillis-Steele scan; combinations builds its index table on the host."""
from __future__ import annotations

import builtins
import collections
import itertools
import math

import numpy as np

from .._C import core as _core
from . import _functions as F
from . import _out
from . import _select_ops as S
from ._composite_ops import flip

Tensor = _core.Tensor
_dt = _core.dtype
_op = _core.op

values_indices = {n: collections.namedtuple(n, ["values", "indices"])
                  for n in ("kthvalue", "median", "nanmedian", "mode", "cummax", "cummin")}


def _dims_of(dim, ndim):
    if dim is None:
        return list(range(ndim))
    dims = [dim] if isinstance(dim, int) else list(dim)
    return [F._wrap(d, builtins.max(ndim, 1)) for d in dims]


# ---- splitting and stacking ----
def tensor_split(input, indices_or_sections, dim=0):
    if input.dim() == 0:
        raise RuntimeError("tensor_split expected at least a 1-dimensional tensor, but got a tensor with 0 dims")
    d = F._wrap(dim, input.dim())
    n = input.shape[d]
    ios = indices_or_sections
    if isinstance(ios, Tensor):
        if ios.dtype != _dt.int64:
            raise RuntimeError("tensor_split expected tensor_indices_or_sections to have dtype of long, but got "
                               f"{ios.dtype}")
        if ios.dim() > 1:
            raise RuntimeError("tensor_split expected tensor_indices_or_sections to be a zero-dimensional or "
                               f"one-dimensional tensor, but got a tensor with {ios.dim()} dims")
        ios = builtins.int(ios.item()) if ios.dim() == 0 else [builtins.int(v) for v in ios.tolist()]
    if isinstance(ios, int):
        if ios <= 0:
            raise RuntimeError(f"number of sections must be larger than 0, got {ios}")
        # the first n % sections pieces hold one element more
        q, r = divmod(n, ios)
        bounds = list(itertools.accumulate([q + 1] * r + [q] * (ios - r), initial=0))
    else:
        bounds = [0, *ios, n]
    pieces = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        rng = range(n)[a:b]  # slice semantics: negative indices wrap, out-of-range ones clip, a > b is empty
        start = rng.start if len(rng) else builtins.min(builtins.max(a if a >= 0 else a + n, 0), n)
        pieces.append(input.narrow(d, start, len(rng)))
    return tuple(pieces)


def _atleast(t, k):
    if t.dim() >= k:
        return t
    if k == 3 and t.dim() == 2:
        return t.unsqueeze(-1)
    if k == 3:  # () and (N,) become (1, N, 1), as torch
        return t.reshape(1, -1, 1)
    return t.reshape(*([1] * (k - t.dim())), *t.shape)


def _tensors(tensors, name):
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError(f"{name} expects a non-empty TensorList")
    return tensors


def hstack(tensors):
    ts = [_atleast(t, 1) for t in _tensors(tensors, "hstack")]
    return F.cat(ts, 0 if ts[0].dim() == 1 else 1)


def vstack(tensors):
    return F.cat([_atleast(t, 2) for t in _tensors(tensors, "vstack")], 0)


def row_stack(tensors):
    return vstack(tensors)


def dstack(tensors):
    return F.cat([_atleast(t, 3) for t in _tensors(tensors, "dstack")], 2)


def column_stack(tensors):
    ts = _tensors(tensors, "column_stack")
    return F.cat([t.reshape(-1, 1) if t.dim() <= 1 else t for t in ts], 1)


# ---- counting and differences ----
def count_nonzero(input, dim=None):
    dims = _dims_of(dim, input.dim())
    nz = input != 0
    return nz.sum(dims, dtype=_dt.int64) if input.dim() else nz.to(_dt.int64)


def diff(input, n=1, dim=-1, prepend=None, append=None):
    if input.dim() == 0:
        raise RuntimeError("diff expects input to be at least one-dimensional")
    if n < 0:
        raise RuntimeError(f"order must be non-negative but got {n}")
    d = F._wrap(dim, input.dim())
    if n == 0:  # torch ignores prepend and append then
        return input.clone()
    parts = []
    for name, t in (("prepend", prepend), ("input", input), ("append", append)):
        if t is None:
            continue
        if not isinstance(t, Tensor):
            raise TypeError(f"diff(): argument '{name}' must be Tensor, not {type(t).__name__}")
        if t.dim() != input.dim():
            raise RuntimeError("diff expects prepend or append to be the same dimension as input")
        parts.append(t)
    x = F.cat(parts, d) if len(parts) > 1 else input
    for _ in range(n):
        m = x.shape[d]
        if m == 0:
            break
        hi, lo = x.narrow(d, 1, m - 1), x.narrow(d, 0, m - 1)
        x = (hi != lo) if x.dtype == _dt.bool else hi - lo  # bool differences are xor, as torch
    return x


def isin(elements, test_elements, *, assume_unique=False, invert=False):
    if not isinstance(elements, Tensor) and not isinstance(test_elements, Tensor):
        raise TypeError("isin() received an invalid combination of arguments - got (Number, Number)")
    like = elements if isinstance(elements, Tensor) else test_elements
    e = elements if isinstance(elements, Tensor) else F.tensor(elements, device=like.device)
    t = test_elements if isinstance(test_elements, Tensor) else F.tensor(test_elements, device=like.device)
    common = _core.promote_types(e.dtype, t.dtype)
    e, t = e.to(common), t.to(common).flatten()
    if t.numel() == 0:
        hit = F.zeros(*e.shape, dtype=_dt.bool, device=e.device)
    else:
        hit = (e.unsqueeze(-1) == t).any(-1)
    return ~hit if invert else hit


# ---- construction and predicates ----
def as_tensor(data, dtype=None, device=None):
    if isinstance(data, Tensor):  # the same tensor when nothing changes, else a converted copy (as torch)
        dev = F._device(device) if device is not None else data.device
        if (dtype is None or dtype == data.dtype) and dev == data.device:
            return data
        return data.to(dtype or data.dtype).to(dev)
    dev = F._factory_device(device)  # the default device when device is None
    if isinstance(data, np.ndarray) and data.dtype.kind in "biuf" and (dev is None or dev == F._device("cpu")):
        t = F.from_numpy(data)  # torch shares the array's memory when dtype and device allow
        return t if dtype is None or dtype == t.dtype else t.to(dtype)
    return F.tensor(data, dtype=dtype, device=device)


def is_floating_point(input):
    return input.dtype.is_floating_point


def is_complex(input):
    return False  # vibetensor has no complex dtypes


def clip(input, min=None, max=None):
    return F.clamp(input, min, max)


def empty_strided(size, stride, *, dtype=None, layout=None, device=None, requires_grad=False, pin_memory=False):
    F._check_layout(layout, "empty_strided")
    size, stride = tuple(size), tuple(stride)
    if len(size) != len(stride):
        raise RuntimeError("mismatch in length of strides and shape")
    if builtins.any(s < 0 for s in size):
        raise RuntimeError(f"Trying to create tensor with negative dimension: {list(size)}")
    extent = 0 if 0 in size else 1 + builtins.sum((s - 1) * st for s, st in zip(size, stride))
    buf = F.empty(extent, dtype=dtype or _dt.float32, device=device)
    return F._requiring_grad(buf.as_strided(size, stride), requires_grad)


def scalar_tensor(s, *, dtype=None, layout=None, device=None, requires_grad=False, pin_memory=False):
    F._check_layout(layout, "scalar_tensor")
    return F._requiring_grad(F.full([], s, dtype=dtype or _dt.float32, device=device), requires_grad)


def is_nonzero(input):
    if input.numel() == 0:
        raise RuntimeError("Boolean value of Tensor with no values is ambiguous")
    if input.numel() > 1:
        raise RuntimeError("Boolean value of Tensor with more than one value is ambiguous")
    return builtins.bool(input.item() != 0)


# ---- rotation and indexing ----
def rot90(input, k=1, dims=(0, 1)):
    dims = list(dims)
    if len(dims) != 2:
        raise RuntimeError(f"expected total rotation dims == 2, but got dims = {len(dims)}")
    if input.dim() < 2:
        raise RuntimeError(f"expected total dims >= 2, but got total dims = {input.dim()}")
    a, b = F._wrap(dims[0], input.dim()), F._wrap(dims[1], input.dim())
    if a == b:
        raise RuntimeError(f"expected rotation dims to be different, but got dim0 = {a} and dim1 = {b}")
    k %= 4
    if k == 1:
        return flip(input, [b]).transpose(a, b)
    if k == 2:
        return flip(input, [a, b])
    if k == 3:
        return flip(input, [a]).transpose(a, b)
    return input.clone()


def argwhere(input):
    return F.nonzero(input)


def take_along_dim(input, indices, dim=None):
    if indices.dtype != _dt.int64:
        raise RuntimeError(f"torch.take_along_dim(): dtype of indices should be Long but got {indices.dtype}")
    if dim is None:
        return input.flatten().gather(0, indices.flatten())
    if input.dim() != indices.dim():
        raise RuntimeError("torch.take_along_dim(): input and indices should have the same number of dimensions, "
                           f"but got {input.dim()} dimensions for input, and {indices.dim()} dimensions for indices")
    d = F._wrap(dim, input.dim())
    # every dim but `dim` broadcasts between the two
    si, sx = list(input.shape), list(indices.shape)
    si[d] = sx[d] = 1
    common = F.broadcast_shapes(tuple(si), tuple(sx))
    xi = list(common)
    xi[d] = input.shape[d]
    ii = list(common)
    ii[d] = indices.shape[d]
    return input.expand(*xi).gather(d, indices.expand(*ii))


def block_diag(*tensors):
    mats = []
    for i, t in enumerate(tensors):
        if t.dim() > 2:
            raise RuntimeError("torch.block_diag: Input tensors must have 2 or fewer dimensions. Input "
                               f"{i} has {t.dim()} dimensions")
        mats.append(t.reshape(1, 1) if t.dim() == 0 else t.reshape(1, -1) if t.dim() == 1 else t)
    if not mats:
        return F.empty(1, 0)
    dtype = mats[0].dtype
    for m in mats[1:]:
        dtype = _core.promote_types(dtype, m.dtype)
    dev = mats[0].device
    cols = builtins.sum(m.shape[1] for m in mats)
    rows, left = [], 0
    for m in mats:
        r, c = m.shape
        # each block's rows: zeros to its left, the block, zeros to its right
        row = [F.zeros(r, left, dtype=dtype, device=dev), m.to(dtype), F.zeros(r, cols - left - c, dtype=dtype,
                                                                                device=dev)]
        rows.append(F.cat(row, 1))
        left += c
    return F.cat(rows, 0)


def cartesian_prod(*tensors):
    for t in tensors:
        if t.dim() != 1:
            raise RuntimeError(f"Expect a 1D vector, but got shape {list(t.shape)}")
    if len(tensors) == 1:
        return tensors[0]
    grids = [g.reshape(-1) for g in _meshgrid_ij(tensors)]
    return F.stack(grids, 1)


def _meshgrid_ij(tensors):
    shape = [t.numel() for t in tensors]
    k = len(tensors)
    return [t.reshape(*[-1 if i == j else 1 for j in range(k)]).expand(*shape) for i, t in enumerate(tensors)]


def combinations(input, r=2, with_replacement=False):
    if input.dim() != 1:
        raise RuntimeError(f"Expect a 1D vector, but got shape {list(input.shape)}")
    if r < 0:
        raise RuntimeError(f"Expect a non-negative number, but got {r}")
    if r == 0:
        return F.empty(0, dtype=input.dtype, device=input.device)
    n = input.shape[0]
    gen = itertools.combinations_with_replacement if with_replacement else itertools.combinations
    idx = list(gen(range(n), r))
    if not idx:
        return F.empty(0, r, dtype=input.dtype, device=input.device)
    table = F.tensor(idx, dtype=_dt.int64, device=input.device)
    return input.index_select(0, table.flatten()).reshape(len(idx), r)


# ---- order statistics ----
def _reduced_dim(input, dim, name):
    d = F._wrap(dim, builtins.max(input.dim(), 1))
    if input.dim() and input.shape[d] == 0:
        raise IndexError(f"{name}(): Expected reduction dim {d} to have non-zero size.")
    return d


def _pick(input, d, pos, keepdim, perm):
    """The element at sorted position pos (a tensor with a size-1 dim d) of each row: its values gathered from the
    input (so gradients flow to it) and its index in the input."""
    idx = perm.gather(d, pos)
    vals = input.gather(d, idx)
    if not keepdim:
        vals, idx = vals.squeeze(d), idx.squeeze(d)
    return vals, idx


def _row_sort(input, dim):
    x = input.reshape(1) if input.dim() == 0 else input
    return x, S.sort(x.detach(), dim, stable=True)


def kthvalue(input, k, dim=-1, keepdim=False):
    d = _reduced_dim(input, dim, "kthvalue")
    x, (srt, perm) = _row_sort(input, d)
    n = x.shape[d]
    if not 1 <= k <= n:
        raise RuntimeError(f"kthvalue(): selected number k out of range for dimension {dim}")
    shape = list(x.shape)
    shape[d] = 1
    pos = F.full(shape, k - 1, dtype=_dt.int64, device=x.device)
    v, i = _pick(x, d, pos, keepdim or input.dim() == 0, perm)
    if input.dim() == 0:
        v, i = v.reshape([]), i.reshape([])
    return values_indices["kthvalue"](v, i)


def _nan_count(srt, d):
    if not srt.dtype.is_floating_point:
        return F.zeros(*[1 if i == d else s for i, s in enumerate(srt.shape)], dtype=_dt.int64, device=srt.device)
    return srt.isnan().sum(d, keepdim=True, dtype=_dt.int64)


def _median(input, dim, keepdim, ignore_nan, name):
    if dim is None:
        if input.numel() == 0:
            return F.full([], math.nan, dtype=input.dtype, device=input.device)
        from ._composite_ops import evenly_distributed  # ties share the gradient, as torch's

        return evenly_distributed(input, _median(input.detach().flatten(), 0, False, ignore_nan, name)[0])
    d = _reduced_dim(input, dim, name)
    x, (srt, perm) = _row_sort(input, d)
    n = x.shape[d]
    nans = _nan_count(srt, d)
    if ignore_nan:  # the lower median of the non-NaN values; all NaN gives the first NaN
        pos = ((n - nans - 1) // 2).clamp(0, n - 1)
    else:  # a NaN in the row is the median: the first one, sorted after every number
        pos = F.where(nans > 0, n - nans, F.full_like(nans, (n - 1) // 2))
    v, i = _pick(x, d, pos, keepdim or input.dim() == 0, perm)
    if input.dim() == 0:
        v, i = v.reshape([]), i.reshape([])
    return values_indices[name](v, i)


def median(input, dim=None, keepdim=False):
    return _median(input, dim, keepdim, False, "median")


def nanmedian(input, dim=None, keepdim=False):
    return _median(input, dim, keepdim, True, "nanmedian")


def mode(input, dim=-1, keepdim=False):
    x = input.reshape(1) if input.dim() == 0 else input
    d = _reduced_dim(x, dim, "mode")
    xs = F.movedim(x.detach(), d, -1)
    srt = S.sort(xs, -1)[0]

    def equal(a, b):  # NaNs count as one value (torch's choice among NaNs is implementation-defined)
        eq = a == b
        return eq | (a.isnan() & b.isnan()) if a.dtype.is_floating_point else eq

    # how often each sorted value occurs in its row; the first largest count is the smallest most frequent value
    # (NaN sorts last, so it is the mode only when strictly the most frequent)
    counts = equal(srt.unsqueeze(-1), srt.unsqueeze(-2)).sum(-1)
    best = counts.argmax(-1, keepdim=True)
    value = srt.gather(-1, best)
    # torch's index is one occurrence of the value: here the last
    n = xs.shape[-1]
    where = F.where(equal(xs, value), F.arange(n, device=x.device).expand(*xs.shape), F.full_like(xs, -1, dtype=_dt.int64))
    idx = F.amax(where, -1, keepdim=True) if n else where[..., :1]
    idx = F.movedim(idx, -1, d)
    v = x.gather(d, idx)
    if not (keepdim or input.dim() == 0):
        v, idx = v.squeeze(d), idx.squeeze(d)
    if input.dim() == 0:
        v, idx = v.reshape([]), idx.reshape([])
    return values_indices["mode"](v, idx)


_INTERPOLATIONS = ("linear", "lower", "higher", "midpoint", "nearest")


def _quantile(input, q, dim, keepdim, interpolation, ignore_nan, name):
    if input.dtype not in (_dt.float32, _dt.float64):
        raise RuntimeError(f"{name}() input tensor must be either float or double dtype")
    if interpolation not in _INTERPOLATIONS:
        raise RuntimeError(f"{name}() interpolation must be one of linear, lower, higher, midpoint or nearest. Got "
                           f"{interpolation}")
    scalar_q = not isinstance(q, Tensor)
    if scalar_q:
        if not 0 <= q <= 1:
            raise RuntimeError(f"{name}() q must be in the range [0, 1] but got {q}")
        qt = F.full([], builtins.float(q), dtype=input.dtype, device=input.device)
    else:
        if q.dim() > 1:
            raise RuntimeError(f"{name}() q must be a scalar or 1D tensor")
        if q.dtype != input.dtype:
            raise RuntimeError(f"{name}() q tensor must be same dtype as the input tensor")
        if q.device != input.device:
            raise RuntimeError(f"{name}() q tensor must be on the same device as the input tensor")
        if q.numel() and not builtins.bool(((q >= 0) & (q <= 1)).all()):  # reads back, as torch's check does
            raise RuntimeError(f"{name}() q values must be in the range [0, 1]")
        qt = q.detach()
    if input.numel() == 0:
        raise RuntimeError(f"{name}() input tensor must be non-empty")
    if dim is None:
        x, d = input.flatten(), 0
    else:
        d = F._wrap(dim, builtins.max(input.dim(), 1))
        x = input.reshape(1) if input.dim() == 0 else input
    x = F.movedim(x, d, -1)
    n = x.shape[-1]
    srt, perm = S.sort(x.detach(), -1, stable=True)
    vals = x.gather(-1, perm)  # sorted values that carry gradients
    nans = _nan_count(srt, -1)
    m = (n - nans) if ignore_nan else F.full_like(nans, n)
    # one rank per q: shape (..., Q), computed in the input's dtype as torch does (a float32 q * (n - 1) can
    # round onto an integer that float64 misses, which changes lower/higher/nearest)
    qs = qt.reshape(*([1] * (x.dim() - 1)), -1)
    rank = qs * (m - 1).clamp_min(0).to(input.dtype)
    lo = rank.floor().to(_dt.int64)
    hi = rank.ceil().to(_dt.int64)
    if interpolation == "lower":
        out = vals.gather(-1, lo)
    elif interpolation == "higher":
        out = vals.gather(-1, hi)
    elif interpolation == "nearest":
        out = vals.gather(-1, rank.round().to(_dt.int64))  # half to even, as torch's round
    else:
        a, b = vals.gather(-1, lo), vals.gather(-1, hi)
        w = F.full_like(rank, 0.5) if interpolation == "midpoint" else rank - lo.to(input.dtype)
        out = a + (b - a) * w
    # quantile: a NaN in the row is the answer; nanquantile: only a row of NaNs is
    bad = (m == 0) if ignore_nan else (nans > 0)
    out = out.masked_fill(bad.expand(*out.shape), math.nan)
    out = F.movedim(out, -1, 0)  # the q dim leads
    if dim is None:
        shape = [1] * input.dim() if keepdim else []
    else:
        shape = list(input.shape) if input.dim() else []
        if shape:
            if keepdim:
                shape[d] = 1
            else:
                del shape[d]
        elif keepdim:
            shape = []
    out = out.reshape(*([qt.numel()] if not scalar_q and qt.dim() else []), *shape)
    return out


def quantile(input, q, dim=None, keepdim=False, *, interpolation="linear"):
    return _quantile(input, q, dim, keepdim, interpolation, False, "quantile")


def nanquantile(input, q, dim=None, keepdim=False, *, interpolation="linear"):
    return _quantile(input, q, dim, keepdim, interpolation, True, "nanquantile")


# ---- NaN-ignoring reductions ----
def nansum(input, dim=None, keepdim=False, *, dtype=None):
    x = input.masked_fill(input.isnan(), 0) if input.dtype.is_floating_point else input
    dims = _dims_of(dim, input.dim()) if dim is not None or keepdim else None
    return x.sum(dims, keepdim, dtype=dtype) if dims is not None else x.sum(dtype=dtype)


def nanmean(input, dim=None, keepdim=False, *, dtype=None):
    if not input.dtype.is_floating_point:
        raise RuntimeError("nanmean(): expected input to have floating point or complex dtype but got "
                           f"{_out._torch_name(input.dtype)}")
    count = nansum((~input.isnan()).to(dtype or input.dtype), dim, keepdim)
    return nansum(input, dim, keepdim, dtype=dtype) / count


# ---- scans ----
def _scan(x, d, combine):
    """Inclusive Hillis-Steele scan along d: log2(n) steps, each combining an element with the one `step` before."""
    n = x.shape[d]
    step = 1
    while step < n:
        head = x.narrow(d, 0, step)
        x = F.cat([head, combine(x.narrow(d, 0, n - step), x.narrow(d, step, n - step))], d)
        step *= 2
    return x


def _cum_extreme(input, dim, largest, name):
    x = input.reshape(1) if input.dim() == 0 else input
    d = F._wrap(dim, x.dim())
    n = x.shape[d]
    shape = [1] * x.dim()
    shape[d] = n
    pos = F.arange(n, device=x.device).reshape(*shape).expand(*x.shape).contiguous()
    v0 = x.detach()
    if x.dtype == _dt.bool:
        v0 = v0.to(_dt.uint8)

    def combine(a, b):
        (va, ia), (vb, ib) = a, b
        # the later element wins ties and NaNs (NaN ranks above every number), as torch's cummax/cummin
        take_b = (vb >= va) if largest else (vb <= va)
        if v0.dtype.is_floating_point:
            take_b = take_b | vb.isnan()
        return F.where(take_b, vb, va), F.where(take_b, ib, ia)

    vals, idx = v0, pos
    step = 1
    while step < n:
        va, ia = vals.narrow(d, 0, n - step), idx.narrow(d, 0, n - step)
        vb, ib = vals.narrow(d, step, n - step), idx.narrow(d, step, n - step)
        nv, ni = combine((va, ia), (vb, ib))
        vals = F.cat([vals.narrow(d, 0, step), nv], d)
        idx = F.cat([idx.narrow(d, 0, step), ni], d)
        step *= 2
    out = x.gather(d, idx)  # the values, with gradients to the chosen elements
    if input.dim() == 0:
        out, idx = out.reshape([]), idx.reshape([])
    return values_indices[name](out, idx)


def cummax(input, dim):
    return _cum_extreme(input, dim, True, "cummax")


def cummin(input, dim):
    return _cum_extreme(input, dim, False, "cummin")


def _logaddexp(a, b):
    m = _op("vt::maximum")(a, b).detach()
    m = m.masked_fill(m.isinf(), 0)  # rows of -inf (or +inf) keep a finite shift
    return m + ((a - m).exp() + (b - m).exp()).log()


def logcumsumexp(input, dim):
    if not input.dtype.is_floating_point:
        raise NotImplementedError(f"\"logcumsumexp_out_cpu\" not implemented for '{_out._torch_name(input.dtype)}'")
    x = input.reshape(1) if input.dim() == 0 else input
    d = F._wrap(dim, x.dim())
    out = _scan(x, d, _logaddexp) if x.shape[d] else x.clone()
    return out.reshape([]) if input.dim() == 0 else out


# out= where torch's functions take it (Note [out= by copy])
(hstack, vstack, row_stack, dstack, column_stack, diff, isin, clip, take_along_dim, kthvalue, mode, quantile,
 nanquantile, nansum, nanmean, cummax, cummin, logcumsumexp) = (
    _out.accepts_out(f) for f in (hstack, vstack, row_stack, dstack, column_stack, diff, isin, clip, take_along_dim,
                                  kthvalue, mode, quantile, nanquantile, nansum, nanmean, cummax, cummin,
                                  logcumsumexp))
median = _out.accepts_out(median)
nanmedian = _out.accepts_out(nanmedian)


def _clip_(self, min=None, max=None):
    return self.clamp_(min, max)


# Tensor methods where torch has them (attached when the package imports this module)
_METHODS = {
    "tensor_split": tensor_split, "count_nonzero": count_nonzero, "diff": diff, "is_complex": is_complex,
    "clip": clip, "clip_": _clip_, "is_nonzero": is_nonzero, "rot90": rot90, "argwhere": argwhere,
    "take_along_dim": take_along_dim, "kthvalue": kthvalue, "median": median, "nanmedian": nanmedian, "mode": mode,
    "quantile": quantile, "nanquantile": nanquantile, "nansum": nansum, "nanmean": nanmean, "cummax": cummax,
    "cummin": cummin, "logcumsumexp": logcumsumexp,
}
for _name, _fn in _METHODS.items():
    setattr(Tensor, _name, _fn)
