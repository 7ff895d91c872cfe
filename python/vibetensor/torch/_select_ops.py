"""Selection and sorting ops, torch-shaped: gather, the scatters, index_select, masked_select, sort, argsort,
topk, multinomial, and the index family (index_put_, index_add_, index_copy_, index_fill_).

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
  - index_put_: the dispatcher's vt::index_put_ (the op behind __setitem__) behind torch's argument checks;
  - index_add_ / index_copy_: self viewed with `dim` in front (movedim), then index_put_ of source (times
    alpha) at the 1-D index, accumulating for add. Gradients are index_put_'s: self's passes through (add) or
    is zeroed where overwritten (copy); source gets the gradient gathered at the index (times alpha).
    torch rejects negative indices here, which index_put_ would wrap: an index on the CPU is range-checked
    with one host read (raising torch's CPU kernel's error), one on a GPU has its negative entries moved far
    out of index_put_'s range, so that its kernel reports them at the next synchronization (torch asserts there).
  - index_fill_: masked_fill_ with a mask that is True at the index along `dim`, built by an index_put_ into
    zeros (which checks the range, negative indices wrapping as in torch's kernel). The value's gradient is
    then the gradient summed over the filled positions, each once however often the index repeats it (torch's).
The out-of-place forms (index_put, index_add, ...) run the in-place form on a clone.
"""
import builtins
import math
import numbers

from .._C import core as _core
from . import _functions as F
from ._out import _torch_name

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
        raise RuntimeError("multinomial only supports floating-point dtypes for input, got: "
                           f"{_torch_name(input.dtype)}")
    if num_samples <= 0:
        raise RuntimeError("cannot sample n_sample <= 0 samples")
    n_cat = input.shape[-1]
    if not replacement and num_samples > n_cat:
        raise RuntimeError("cannot sample n_sample > prob_dist.size(-1) samples without replacement")
    from ..autograd import no_grad

    from ._generator import drawing_from

    with no_grad(), drawing_from(generator):
        p = input.detach().to(_core.dtype.float64 if input.dtype == _core.dtype.float64 else _core.dtype.float32)
        rows = p if p.dim() == 2 else p.unsqueeze(0)
        total = rows.sum(-1)
        # one read back of three reductions (a sync on a GPU): the least and largest probability (NaN propagates
        # into both) and the least row sum
        lo, hi, least_total = F.stack([rows.amin(), rows.amax(), total.amin()]).tolist()
        if not (lo >= 0 and math.isfinite(hi)):
            raise RuntimeError("probability tensor contains either `inf`, `nan` or element < 0")
        if least_total <= 0:
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


# ---- the index family: index_put_, index_add_, index_copy_, index_fill_ ----
_index_put = _core.op("vt::index_put_")
_int64, _int32 = _core.dtype.int64, _core.dtype.int32
_INDEX_DTYPES = (_int64, _int32, _core.dtype.uint8, _core.dtype.bool)
_NEGATIVE_INDEX_MARK = -(1 << 62)  # kNegativeIndexMark of vt/cuda/kernel_errors.h: reported as the original index
# torch's names of scalar types, which its messages use
_TYPE_NAMES = {"float32": "Float", "float64": "Double", "float16": "Half", "bfloat16": "BFloat16", "int64": "Long",
               "int32": "Int", "int16": "Short", "int8": "Char", "uint8": "Byte", "bool": "Bool"}


def _type_name(dtype):
    return _TYPE_NAMES.get(dtype.name, dtype.name)


def _check_args(fn, dim, **tensors):
    """The TypeErrors of torch's argument parser: dim an integer, index and source tensors."""
    if isinstance(dim, builtins.bool) or not isinstance(dim, numbers.Integral):
        raise TypeError(f"{fn}(): argument 'dim' (position 1) must be int, not {type(dim).__name__}")
    for pos, (name, t) in enumerate(tensors.items(), 2):
        if not isinstance(t, Tensor):
            raise TypeError(f"{fn}(): argument '{name}' (position {pos}) must be Tensor, not {type(t).__name__}")


def _check_writable(self):
    """torch refuses an in-place write to a leaf that requires grad before looking at the arguments; the
    index_put_ below would refuse it too, but on a view of self, with another message."""
    from ..autograd import is_grad_enabled

    if self.requires_grad and self.is_leaf and is_grad_enabled():
        raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")


def _written_nothing(self):
    """self, its version bumped as by any in-place op: torch counts one that had nothing to write as a write."""
    return self.masked_fill_(F.zeros([], dtype=_core.dtype.bool, device=self.device), 0)


def index_put_(self, indices, values, accumulate=False):
    if not isinstance(indices, (tuple, list)):
        raise TypeError(f"index_put_(): argument 'indices' (position 1) must be tuple of Tensors, not "
                        f"{type(indices).__name__}")
    for k, i in enumerate(indices):  # torch's binding takes no None here (vt::index_put_ itself does)
        if not isinstance(i, Tensor):
            raise TypeError(f"expected Tensor as element {k} in argument 0, but got {type(i).__name__}")
    if not isinstance(values, Tensor):
        raise TypeError(f"index_put_(): argument 'values' (position 2) must be Tensor, not {type(values).__name__}")
    _check_writable(self)
    for i in indices:
        if i.dtype not in _INDEX_DTYPES:
            raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
    if values.dtype != self.dtype:  # vt::index_put_ converts (for __setitem__); torch's index_put_ refuses
        raise RuntimeError(f"Index put requires the source and destination dtypes match, got "
                           f"{_type_name(self.dtype)} for the destination and {_type_name(values.dtype)} for the "
                           f"source.")
    if not indices:
        raise RuntimeError("index_put_(): expected at least one index tensor")  # torch fails later, as a RuntimeError
    _core._check_inplace_overlap(self, [values, *indices], "index_put_")
    _index_put(self, list(indices), values, builtins.bool(accumulate))
    return self


def index_put(input, indices, values, accumulate=False):
    return index_put_(input.clone(), indices, values, accumulate)


def _first_out_of_range(index, size):
    """The first entry of index outside [0, size), or None; one host read (two when there is one)."""
    if index.numel() == 0:
        return None
    lo, hi = F.stack([index.min(), index.max()]).tolist()
    if lo >= 0 and hi < size:
        return None
    return next(v for v in index.reshape([-1]).tolist() if not 0 <= v < size)


def _in_range_or_reported(index, size, error):
    """index (1-D) for an index_put_ along a dim of `size` whose entries must lie in [0, size). On the CPU it is
    checked here and error(value) raised; on a device, negative entries are moved far below -size, where
    index_put_'s kernel reports them (as the user's value) at the next synchronization instead of wrapping them
    (no host sync on the way; Note [Deferred kernel errors])."""
    if index.device.type == "cpu":
        bad = _first_out_of_range(index, size)
        if bad is not None:
            raise error(bad)
        return index
    index = index.to(_int64)
    return F.where(index < 0, index + _NEGATIVE_INDEX_MARK, index)


def _dim_in_front(self, dim, source):
    """(self, source) viewed with `dim` first, 0-dim ones as 1-element vectors: index_put_ then writes source's
    rows at index along dim 0."""
    target = self.unsqueeze(0) if self.dim() == 0 else self.movedim(dim, 0)
    rows = source.reshape([1]) if source.dim() == 0 else source.movedim(dim, 0)
    return target, rows


def _alpha_in(dtype, alpha):
    """alpha as torch's kernel uses it: converted to self's dtype (1.5 adds once to an integer tensor)."""
    if dtype == _core.dtype.bool:
        return builtins.bool(alpha)
    return alpha if dtype.is_floating_point else builtins.int(alpha)


def index_add_(self, dim, index, source, *, alpha=1):
    _check_args("index_add", dim, index=index, source=source)
    _check_writable(self)
    nd = self.dim()
    dim = F._wrap(dim, builtins.max(nd, 1))
    if index.dim() > 1:
        raise IndexError(f"index_add_(): Index is supposed to be a vector, but got dim: {index.dim()} with type: "
                         f"{_type_name(index.dtype)} and size: {list(index.shape)}")
    if index.dtype not in (_int64, _int32):
        raise RuntimeError(f"index_add_(): Expected dtype int32/int64 for index but got: {_type_name(index.dtype)}")
    if source.dtype != self.dtype:
        raise RuntimeError(f"index_add_(): self ({_type_name(self.dtype)}) and source ({_type_name(source.dtype)}) "
                           f"must have the same scalar type")
    if not (dim == 0 or dim < source.dim()):
        raise RuntimeError(f"index_add_(): Indexing dim {dim} is out of bounds of the source tensor with dim "
                           f"{source.dim()}")
    n = index.numel()
    rows = 1 if source.dim() == 0 else source.shape[dim]
    if n != rows:
        raise RuntimeError(f"index_add_(): Number of indices ({n}) should be equal to source.size(dim): ({rows}), "
                           f"for dim: {dim}")
    self_rest, source_rest = list(self.shape), list(source.shape)
    if nd and source.dim():
        del self_rest[dim], source_rest[dim]
    if self_rest != source_rest:
        raise RuntimeError(f"source tensor shape must match self tensor shape, excluding the specified dimension. "
                           f"Got self.shape = {list(self.shape)} source.shape = {list(source.shape)}")
    _core._check_inplace_overlap(self, [index, source], "index_add_")
    # torch's CPU kernel: vectors (and 0-dim) check every index; for more dims nothing is checked when nothing is
    # written, and the outer dims go through scatter_add, whose error is a RuntimeError naming the index.
    if nd > 1 and (n == 0 or self.numel() == 0):
        return _written_nothing(self)
    size = self.shape[dim] if nd else 1
    if nd > 1 and dim in (0, nd - 1):
        def error(v):
            return RuntimeError(f"index {v} is out of bounds for dimension {dim} with size {size}")
    else:
        def error(v):
            return IndexError("index out of range in self")
    index = _in_range_or_reported(index.reshape([-1]), size, error)
    target, rows = _dim_in_front(self, dim, source)
    alpha = _alpha_in(self.dtype, alpha)
    if alpha is not True and alpha != 1:
        rows = rows * alpha
    _index_put(target, [index], rows, True)
    return self


def index_add(input, dim, index, source, *, alpha=1):
    return index_add_(input.clone(), dim, index, source, alpha=alpha)


def index_copy_(self, dim, index, source):
    _check_args("index_copy", dim, index=index, source=source)
    _check_writable(self)
    nd = self.dim()
    dim = F._wrap(dim, builtins.max(nd, 1))
    if index.dim() > 1:
        raise IndexError(f"index_copy_(): Index should have dimension 1 or 0 (got {index.dim()})")
    n = index.numel()
    if source.dim() == 0 and n != 1:
        raise IndexError(f"index_copy_(): When source is scalar, index should have one element (got {n})")
    if source.dim() != nd and source.dim() != 0 and nd != 0:
        raise IndexError(f"index_copy_(): When source and destination are not scalars, their dimensionality must "
                         f"match. Source dimensionality ({source.dim()}), destination dimensionality ({nd})")
    if index.dtype != _int64:
        raise RuntimeError(f"index_copy_(): Expected a long tensor for index, but got {_type_name(index.dtype)}")
    if source.dtype != self.dtype:
        raise RuntimeError(f"index_copy_(): self and source expected to have the same dtype, but got (self) "
                           f"{_type_name(self.dtype)} and (source) {_type_name(source.dtype)}")
    self_slice, source_slice = list(self.shape), list(source.shape)
    for s in (self_slice, source_slice):
        if s:
            del s[dim]
    if self_slice != source_slice:
        raise RuntimeError(f"index_copy_(): Source/destination tensor must have same slice shapes. Destination slice "
                           f"shape: {' '.join(map(str, self_slice))} at dimension {dim} and source slice shape: "
                           f"{' '.join(map(str, source_slice))} at dimension 0.")
    if source.dim() and n != source.shape[dim]:
        raise IndexError(f"index_copy_(): Number of indices ({n}) should be equal to source.size(dim) "
                         f"({source.shape[dim]})")
    _core._check_inplace_overlap(self, [index, source], "index_copy_")
    if source.numel() == 0:  # torch's kernel runs over source: nothing to copy, nothing checked
        return _written_nothing(self)
    size = self.shape[dim] if nd else 1
    index = _in_range_or_reported(index.reshape([-1]), size, lambda v: IndexError(
        f"index_copy_(): index {v} is out of bounds for dimension {dim} with size {size}"))
    target, rows = _dim_in_front(self, dim, source)
    _index_put(target, [index], rows, False)
    return self


def index_copy(input, dim, index, source):
    return index_copy_(input.clone(), dim, index, source)


def _fill_value(self, value):
    """value as a 0-dim tensor of self's dtype on self's device (numbers are converted as torch's Scalar is, with
    its overflow check)."""
    if isinstance(value, Tensor):
        value = value.to(self.dtype)
        return value if value.device == self.device else value.to(self.device)
    return F.full([], value, dtype=self.dtype, device=self.device)


def index_fill_(self, dim, index, value):
    _check_args("index_fill", dim, index=index)
    if isinstance(value, Tensor):
        if value.dim() != 0:
            raise RuntimeError(f"index_fill_ only supports a 0-dimensional value tensor, but got tensor with "
                               f"{value.dim()} dimension(s).")
    elif not isinstance(value, numbers.Number):
        raise TypeError(f"index_fill_(): argument 'value' must be Number or Tensor, not {type(value).__name__}")
    _check_writable(self)
    if index.dtype != _int64:
        raise IndexError("index_fill_(): Expected dtype int64 for index.")
    if isinstance(value, complex):
        raise RuntimeError("index_fill_(): Converting complex Scalar to non-complex type is not supported")
    nd = builtins.max(self.dim(), 1)
    dim = F._wrap(dim, nd)
    if index.dim() > 1:
        raise RuntimeError("Index has to be a vector/scalar")
    _core._check_inplace_overlap(self, [index], "index_fill_")
    others = list(self.shape) or [1]
    size, others[dim] = others[dim], 1
    if index.numel() == 0 or 0 in others:  # torch's kernel runs over the other dims times the index: no check
        return _written_nothing(self)
    # True along dim at the index; index_put_ checks it against [-size, size) and names `dim` in its error
    mask_shape = [1] * nd
    mask_shape[dim] = size
    mask = F.zeros(*mask_shape, dtype=_core.dtype.bool, device=self.device)
    true = F.ones([], dtype=_core.dtype.bool, device=self.device)
    _index_put(mask, [None] * dim + [index.reshape([-1])], true, False)
    self.masked_fill_(mask if self.dim() else mask.reshape([]), _fill_value(self, value))
    return self


def index_fill(input, dim, index, value):
    return index_fill_(input.clone(), dim, index, value)
