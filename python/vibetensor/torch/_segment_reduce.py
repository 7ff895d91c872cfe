"""vt.segment_reduce(data, reduce, *, lengths=None, indices=None, offsets=None, axis=0, unsafe=False,
initial=None), torch's: consecutive segments of `data` along `axis` (sized by lengths, or bounded by offsets,
batched over data's leading dimensions) reduced by sum, mean, max/amax, min/amin or prod; an empty segment gives
`initial` where one is given, else the reduction's identity (mean: nan). Composed from differentiable vt ops
(index_add, scatter_reduce, prod), so gradients flow to data as torch's do (max and min split them among ties)."""
from .._C import core as _core
from . import _functions as F

_REDUCE = {"sum": "sum", "mean": "mean", "max": "amax", "amax": "amax", "min": "amin", "amin": "amin",
           "prod": "prod"}


def segment_reduce(data, reduce, *, lengths=None, indices=None, offsets=None, axis=0, unsafe=False, initial=None):
    if reduce not in _REDUCE:
        raise RuntimeError(f"reduce argument must be either sum, prod, mean, amax or amin, got {reduce}")
    if indices is not None:
        raise RuntimeError("segment_reduce(): indices based reduction is not supported yet.")
    if lengths is None and offsets is None:
        raise RuntimeError("segment_reduce(): Either lengths or offsets must be defined.")
    i64 = _core.dtype.int64
    if lengths is None:
        offsets = offsets.to(i64)
        lengths = offsets[..., 1:] - offsets[..., :-1]
    lengths = lengths.to(i64)
    axis = axis % data.dim() if data.dim() else 0
    if lengths.dim() != axis + 1 or tuple(lengths.shape[:-1]) != tuple(data.shape[:axis]):
        raise RuntimeError(f"segment_reduce(): Expected lengths of shape {list(data.shape[:axis])} + "
                           f"[segments] for axis {axis}, but got {list(lengths.shape)}")
    n = data.shape[axis]
    if not unsafe:
        if lengths.numel() and bool((lengths < 0).any()):
            raise RuntimeError("lengths contains negative value!")
        if lengths.numel() and bool((lengths.sum(-1) != n).any()):
            raise RuntimeError("segment_reduce(): Expected all rows of lengths along axis to sum to "
                               "data.size(lengths.dim()-1) when !unsafe.")
    kind = _REDUCE[reduce]
    lead, segs, rest = lengths.shape[:-1], lengths.shape[-1], tuple(data.shape[axis + 1:])
    rows = 1
    for s in lead:
        rows *= s
    flat = data.reshape(rows * n, *rest)
    lens = lengths.reshape(rows, segs)
    # the segment of each position: a count of segment starts at or before it, row by row (empty segments
    # start where the next one does and are skipped over; the extra slot n takes the starts at the end)
    starts = lens.cumsum(-1) - lens
    row_base = F.arange(rows, dtype=i64, device=data.device).unsqueeze(1)
    marks = F.zeros(rows * (n + 1), dtype=i64, device=data.device).index_add(
        0, (row_base * (n + 1) + starts.clamp(0, n)).reshape(-1), F.ones(rows * segs, dtype=i64, device=data.device))
    seg = marks.reshape(rows, n + 1)[:, :n].cumsum(1) - 1
    target = (row_base * segs + seg.clamp(0, max(segs - 1, 0))).reshape(-1)
    count = lens.reshape(-1).to(data.dtype).reshape(rows * segs, *([1] * len(rest)))
    base_shape = (rows * segs, *rest)
    if kind in ("sum", "mean"):
        out = F.zeros(base_shape, dtype=data.dtype, device=data.device).index_add(0, target, flat)
        if initial is not None:
            out = out + initial
        if kind == "mean":
            mean = out / count
            out = mean if initial is None else F.where(count == 0, F.full_like(out, initial), mean)
    elif kind == "prod":
        # scatter_reduce's prod has no derivative in vt's core: each segment is laid out padded with ones and
        # multiplied along its row (prod's derivative copes with zeros)
        width = max(int(lens.max().item()) if lens.numel() else 0, 1)
        pos = F.arange(n, dtype=i64, device=data.device).unsqueeze(0) - starts.gather(1, seg.clamp(0, max(segs - 1, 0)))
        slot = target * width + pos.reshape(-1)
        padded = F.ones((rows * segs * width, *rest), dtype=data.dtype, device=data.device).index_copy(0, slot, flat)
        out = padded.reshape(rows * segs, width, *rest).prod(1)
        if initial is not None:
            out = out * initial
    else:
        identity = {"amax": float("-inf"), "amin": float("inf")}[kind]
        fill = identity if initial is None else initial
        index = target.reshape(-1, *([1] * len(rest))).expand(rows * n, *rest)
        out = F.full(base_shape, fill, dtype=data.dtype, device=data.device).scatter_reduce(
            0, index, flat, kind, include_self=initial is not None)
    return out.reshape(*lead, segs, *rest)
