"""Selection and sorting ops, torch-shaped: gather, the scatters, index_select, masked_select, sort, argsort,
topk, multinomial.

gather, the scatters, sort and topk are dispatcher ops with CPU and CUDA kernels and backward formulas
(core/src/ops/gather_scatter.cpp, sort.cpp). The rest are compositions over dispatcher ops, chosen so they
stay on the device and differentiate through their parts:
  - index_select: a gather with the index expanded across the other dims (one kernel; gradient by scatter_add);
  - masked_select: boolean indexing of input and mask broadcast together (gradient through indexing);
  - argsort: sort's indices;
  - multinomial (not differentiable): without replacement, the k largest of p / E with E ~ Exp(1) (the
    exponential race torch's kernels use, a topk); with replacement, counting the CDF entries below uniform
    draws. Draws come from vibetensor's generator, so samples differ from torch's while distributions match.
    The validity checks read one flag back (a host sync), as torch's CPU kernel checks too.
"""
import builtins
import numbers

from .._C import core as _core
from . import _functions as F

Tensor = _core.Tensor
_op = _core.op
_gather = _core.op("vt::gather")
_sort = _core.op("vt::sort")
_topk = _core.op("vt::topk")


def gather(input, dim, index, *, sparse_grad=False):
    return _gather(input, dim, index)


def _src(input, index, src, value, reduce=None):
    """A scatter's source: a tensor, or a number. vt::scatter takes the number itself (cast to input's dtype
    after its dim and shape checks, as torch's); the legacy reduce= form gets it broadcast to index's shape."""
    if value is not None:
        src = value
    if isinstance(src, Tensor):
        return src
    if not isinstance(src, numbers.Number):
        raise TypeError(f"scatter(): expected a Tensor or a number as src, got {type(src).__name__}")
    if reduce is None:
        return src
    return F.full(list(index.shape), src, dtype=input.dtype, device=input.device)


_LEGACY_REDUCE = {"add": "sum", "multiply": "prod"}


def scatter(input, dim, index, src=None, *, value=None, reduce=None):
    src = _src(input, index, src, value, reduce)
    if reduce is not None:
        if reduce not in _LEGACY_REDUCE:
            raise RuntimeError(f"reduce argument must be either add or multiply, got {reduce}")
        return _op("vt::scatter_reduce")(input, dim, index, src, _LEGACY_REDUCE[reduce])
    return _op("vt::scatter")(input, dim, index, src)


def scatter_(self, dim, index, src=None, *, value=None, reduce=None):
    src = _src(self, index, src, value, reduce)
    if reduce is not None:
        if reduce not in _LEGACY_REDUCE:
            raise RuntimeError(f"reduce argument must be either add or multiply, got {reduce}")
        _op("vt::scatter_reduce_")(self, dim, index, src, _LEGACY_REDUCE[reduce])
    else:
        _op("vt::scatter_")(self, dim, index, src)
    return self


def scatter_add(input, dim, index, src):
    return _op("vt::scatter_add")(input, dim, index, src)


def scatter_add_(self, dim, index, src):
    _op("vt::scatter_add_")(self, dim, index, src)
    return self


def scatter_reduce(input, dim, index, src, reduce, *, include_self=True):
    return _op("vt::scatter_reduce")(input, dim, index, src, reduce, include_self=include_self)


def scatter_reduce_(self, dim, index, src, reduce, *, include_self=True):
    _op("vt::scatter_reduce_")(self, dim, index, src, reduce, include_self=include_self)
    return self


def index_select(input, dim, index):
    if index.dim() > 1:
        raise IndexError("index_select(): Index is supposed to be a vector")
    if index.dtype not in (_core.dtype.int64, _core.dtype.int32):
        raise RuntimeError(f"index_select(): Expected dtype int32 or int64 for index, got {index.dtype}")
    if input.dim() == 0:
        return _gather(input, dim, index.reshape([]) if index.numel() == 1 else index)
    dim = F._wrap(dim, input.dim())
    shape = list(input.shape)
    shape[dim] = index.numel()
    view = [1] * input.dim()
    view[dim] = index.numel()
    return _gather(input, dim, index.reshape(view).expand(*shape))


def masked_select(input, mask):
    if mask.dtype != _core.dtype.bool:
        raise RuntimeError(f"masked_select: expected BoolTensor for mask, got {mask.dtype}")
    shape = F.broadcast_shapes(tuple(input.shape), tuple(mask.shape))
    return input.expand(*shape)[mask.expand(*shape)]


class _SortResult(tuple):
    """(values, indices), also readable as .values / .indices, like torch's return types."""

    def __new__(cls, pair):
        return super().__new__(cls, pair)

    values = property(lambda self: self[0])
    indices = property(lambda self: self[1])


def sort(input, dim=-1, descending=False, *, stable=False):
    return _SortResult(_sort(input, dim, descending, stable=builtins.bool(stable)))


def argsort(input, dim=-1, descending=False, *, stable=False):
    return _sort(input, dim, descending, stable=builtins.bool(stable))[1]


def topk(input, k, dim=-1, largest=True, sorted=True):
    return _SortResult(_topk(input, k, dim, largest, sorted))


def multinomial(input, num_samples, replacement=False, *, generator=None):
    if input.dim() not in (1, 2):
        raise RuntimeError("prob_dist must be 1 or 2 dim")
    if not input.dtype.is_floating_point:
        raise RuntimeError(f"multinomial only supports floating-point dtypes for input, got: {input.dtype}")
    if num_samples <= 0:
        raise RuntimeError("cannot sample n_sample <= 0 samples")
    n_cat = input.shape[-1]
    if not replacement and num_samples > n_cat:
        raise RuntimeError("cannot sample n_sample > prob_dist.size(-1) samples without replacement")
    from ..autograd import no_grad

    with no_grad():
        p = input.detach().to(_core.dtype.float64 if input.dtype == _core.dtype.float64 else _core.dtype.float32)
        rows = p if p.dim() == 2 else p.unsqueeze(0)
        bad = ((rows < 0) | ~rows.isfinite()).any()
        total = rows.sum(-1)
        empty = (total <= 0).any()
        flags = F.stack([bad, empty]).tolist()
        if flags[0]:
            raise RuntimeError("probability tensor contains either `inf`, `nan` or element < 0")
        if flags[1]:
            raise RuntimeError("invalid multinomial distribution (sum of probabilities <= 0)")
        if replacement:
            cdf = (rows / total.unsqueeze(-1)).cumsum(-1)  # [B, K]
            u = F.rand(rows.shape[0], num_samples, 1, dtype=cdf.dtype, device=cdf.device)
            picks = (cdf.unsqueeze(1) < u).sum(-1).clamp(max=n_cat - 1)  # [B, n]
        else:
            # Exp(1) arrival times; the k earliest of wait / p win. Zero-probability categories come last (as
            # torch's, which samples them once the others are used up).
            wait = -(1 - F.rand_like(rows)).log()
            race = F.where(rows > 0, rows / wait, F.full([], -1.0, dtype=rows.dtype))
            picks = _topk(race, num_samples, -1, True, True)[1]
        return picks if input.dim() == 2 else picks.squeeze(0)
