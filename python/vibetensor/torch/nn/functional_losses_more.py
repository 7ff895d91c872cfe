"""More losses of torch.nn.functional, composed from differentiable vt ops: triplet_margin_loss (+ with a
distance function), poisson_nll_loss, gaussian_nll_loss, the multi-label and multi-class margin losses,
soft_margin_loss, hinge_embedding_loss and cosine_embedding_loss, with torch's signatures, reductions and
checks."""
import math

from ..._C import core as _core
from .functional_losses import _check_reduction, _reduce, _reduction_of, _weight_without_grad, pairwise_distance
from .. import _functions


def _F():
    return _functions  # imported above: vibetensor.torch imports _functions before nn


def _same_rank(anchor, positive, negative):
    a, p, n = anchor.dim(), positive.dim(), negative.dim()
    if not a == p == n:
        raise RuntimeError(f"The anchor, positive, and negative tensors are expected to have the same number of "
                           f"dimensions, but got: anchor {a}D, positive {p}D, and negative {n}D inputs")


def _triplet(d_pos, d_neg, d_swap, margin, reduction):
    if d_swap is not None:  # the harder of the two negatives: the one nearer its counterpart
        d_neg = d_neg.minimum(d_swap)
    return _reduce((d_pos - d_neg + margin).clamp(min=0), reduction)


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False, size_average=None,
                        reduce=None, reduction="mean"):
    """max(d(a, p) - d(a, n) + margin, 0), d the p-norm distance over the last dim; swap takes
    min(d(a, n), d(p, n)) for the negative's distance."""
    reduction = _reduction_of(size_average, reduce, reduction)
    _check_reduction(reduction)
    _same_rank(anchor, positive, negative)
    d_swap = pairwise_distance(positive, negative, p, eps) if swap else None
    return _triplet(pairwise_distance(anchor, positive, p, eps), pairwise_distance(anchor, negative, p, eps),
                    d_swap, margin, reduction)


def triplet_margin_with_distance_loss(anchor, positive, negative, *, distance_function=None, margin=1.0,
                                      swap=False, reduction="mean"):
    if margin <= 0:
        raise ValueError(f"margin must be greater than 0, got {margin}")
    _check_reduction(reduction)
    _same_rank(anchor, positive, negative)
    dist = pairwise_distance if distance_function is None else distance_function
    d_swap = dist(positive, negative) if swap else None
    return _triplet(dist(anchor, positive), dist(anchor, negative), d_swap, margin, reduction)


def poisson_nll_loss(input, target, log_input=True, full=False, size_average=None, eps=1e-8, reduce=None,
                     reduction="mean"):
    """exp(x) - t x (log_input) or x - t log(x + eps); full adds Stirling's t log t - t + log(2 pi t) / 2
    where t > 1."""
    reduction = _reduction_of(size_average, reduce, reduction)
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(reduction + " is not a valid value for reduction")
    loss = input.exp() - target * input if log_input else input - target * (input + eps).log()
    if full:
        F = _F()
        big = target > 1
        safe = F.where(big, target, 2.0)  # the term is 0 elsewhere; keep its log finite there
        stirling = safe * safe.log() - safe + 0.5 * (2 * math.pi * safe).log()
        loss = loss + F.where(big, stirling, 0.0)
    return _reduce(loss, reduction)


def gaussian_nll_loss(input, target, var, full=False, eps=1e-6, reduction="mean"):
    """(log max(var, eps) + (x - t)^2 / max(var, eps)) / 2 (+ log(2 pi) / 2 when full). var may be one
    dim short of input, or differ from it in one size-1 dim (a shared variance), or a float."""
    F = _F()
    if isinstance(var, (int, float)):
        if var < 0:
            raise ValueError("var has negative entry/entries")
        var = F.full(tuple(input.shape), float(var), dtype=input.dtype, device=input.device)
    elif bool((var < 0).any()):
        raise ValueError("var has negative entry/entries")
    ishape, vshape = tuple(input.shape), tuple(var.shape)
    if vshape != ishape:
        if ishape[:-1] == vshape:
            var = var.unsqueeze(-1)
        elif not (len(ishape) == len(vshape) and sum(v for i, v in zip(ishape, vshape) if i != v) == 1):
            raise ValueError("var is of incorrect size")
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(reduction + " is not valid")
    # torch clamps a copy of var outside autograd: the gradient flows as through var itself
    var = var + (var.clamp(min=eps) - var).detach()
    loss = 0.5 * (var.log() + (input - target).square() / var)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce(loss, reduction)


def soft_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """log(1 + exp(-y x)), as -logsigmoid(y x) (no overflow for large |x|)."""
    from . import functional as F

    reduction = _reduction_of(size_average, reduce, reduction)
    _check_reduction(reduction)
    _weight_without_grad("soft_margin_loss", target, "target")  # torch's kernel takes no target gradient
    return _reduce(-F.logsigmoid(input * target), reduction)


def hinge_embedding_loss(input, target, margin=1.0, size_average=None, reduce=None, reduction="mean"):
    """x where y == 1, max(0, margin - x) where y == -1 (any other y adds both terms, as torch's)."""
    reduction = _reduction_of(size_average, reduce, reduction)
    _check_reduction(reduction)
    F = _F()
    hinge = F.where(target != 1, (margin - input).clamp(min=0), 0.0)
    return _reduce(hinge + F.where(target != -1, input, 0.0), reduction)


def cosine_embedding_loss(input1, input2, target, margin=0, size_average=None, reduce=None, reduction="mean"):
    """1 - cos(x1, x2) where y == 1, max(0, cos(x1, x2) - margin) where y == -1; cos over the last dim with
    1e-12 added to each squared norm."""
    reduction = _reduction_of(size_average, reduce, reduction)
    _check_reduction(reduction)
    F = _F()
    tdim = target.dim()
    if tdim > 1:
        raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
    if input1.dim() != tdim + 1 or input2.dim() != tdim + 1:
        raise RuntimeError(f"{tdim}D target tensor expects {tdim + 1}D input tensors, but found inputs with sizes "
                           f"{list(input1.shape)} and {list(input2.shape)}.")
    dot = (input1 * input2).sum(tdim)
    n1, n2 = input1.square().sum(tdim) + 1e-12, input2.square().sum(tdim) + 1e-12
    cos = dot / (n1 * n2).sqrt()
    loss = F.where(target == 1, 1 - cos, 0.0) + F.where(target == -1, (cos - margin).clamp(min=0), 0.0)
    return _reduce(loss, reduction)


def multilabel_soft_margin_loss(input, target, weight=None, size_average=None, reduce=None, reduction="mean"):
    """The mean over classes (the last dim) of -w (y log sigmoid(x) + (1 - y) log sigmoid(-x))."""
    from . import functional as F

    reduction = _reduction_of(size_average, reduce, reduction)
    loss = -(target * F.logsigmoid(input) + (1 - target) * F.logsigmoid(-input))
    if weight is not None:
        loss = loss * weight
    loss = loss.sum(input.dim() - 1) / input.shape[-1]
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(reduction + " is not valid")
    return _reduce(loss, reduction)


def _as_batch(input):
    """[C] or [N, C] (a 0-d input as [1]); the result as [N, C] and whether it was unbatched."""
    if input.dim() > 2 or (input.dim() == 2 and input.shape[1] == 0) or (input.dim() == 1 and not input.numel()):
        raise RuntimeError(f"Expected non-empty vector or matrix with optional 0-dim batch size, but got: "
                           f"{list(input.shape)}")
    if input.dim() < 2:
        return input.reshape(1, -1), True
    return input, False


def multi_margin_loss(input, target, p=1, margin=1.0, weight=None, size_average=None, reduce=None,
                      reduction="mean"):
    """sum over i != y of w[y] max(0, margin - x[y] + x[i])^p, divided by the number of classes."""
    reduction = _reduction_of(size_average, reduce, reduction)
    if p not in (1, 2):
        raise ValueError("only p == 1 and p == 2 supported")
    if weight is not None and weight.dim() != 1:
        raise ValueError("weight must be one-dimensional")
    _check_reduction(reduction)
    F = _F()
    tshape = tuple(target.shape)
    x, unbatched = _as_batch(input)
    n, c = x.shape
    if target.dim() > 1 or target.numel() != n:
        raise RuntimeError(f"multi_margin_loss: target tensor should be 1-D with size equal to the number of "
                           f"input samples (batch size). Expected target size [{n}], but got {list(tshape)}. "
                           f"Input has shape {list(input.shape)}.")
    if target.dtype != _core.dtype.int64:
        raise RuntimeError(f"expected scalar type Long but found {_type_name(target.dtype)}")
    if weight is not None and weight.numel() != c:
        raise RuntimeError(f"inconsistent weight size, expected {c} but got {list(weight.shape)}")
    y = target.reshape(n)
    if n and bool(((y < 0) | (y >= c)).any()):
        raise RuntimeError("target out of range")
    picked = x.gather(1, y.unsqueeze(1))
    z = (margin - picked + x).clamp(min=0)
    if p == 2:
        z = z.square()
    if weight is not None:
        z = z * weight[y].unsqueeze(1)
    others = F.arange(c, device=x.device).unsqueeze(0) != y.unsqueeze(1)
    loss = F.where(others, z, 0.0).sum(1) / c
    if unbatched:
        loss = loss.reshape(tshape)
    return _reduce(loss, reduction)


def _type_name(dt):
    names = {"float32": "Float", "float64": "Double", "int32": "Int", "int64": "Long", "bool": "Bool",
             "float16": "Half", "bfloat16": "BFloat16", "uint8": "Byte", "int8": "Char", "int16": "Short"}
    return names.get(str(dt).split(".")[-1], str(dt))


def multilabel_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """target holds each sample's class indices, ended by the first -1; the loss is the sum over those j and
    every non-target i of max(0, 1 - (x[j] - x[i])), divided by the number of classes."""
    reduction = _reduction_of(size_average, reduce, reduction)
    _check_reduction(reduction)
    F = _F()
    x, unbatched = _as_batch(input)
    n, c = x.shape
    fits = target.dim() <= 1 and target.numel() == c if unbatched else tuple(target.shape) == (n, c)
    if not fits:
        raise RuntimeError(f"inconsistent target size: {list(target.shape)} for input of size: "
                           f"{list(input.shape)}")
    if target.dtype != _core.dtype.int64:
        raise RuntimeError(f"expected scalar type Long but found {_type_name(target.dtype)}")
    y = target.reshape(n, c)
    if y.numel() and bool(((y < -1) | (y >= c)).any()):
        raise RuntimeError("argument #2 'target' is out of range")
    # positions before the first -1 name targets
    live = (y == -1).to(_core.dtype.int64).cumsum(1) == 0
    safe = F.where(live, y, 0)
    is_target = F.zeros(n, c, dtype=_core.dtype.int64, device=x.device).scatter_add(
        1, safe, live.to(_core.dtype.int64)) > 0
    xj = x.gather(1, safe)  # [N, C]: the target scores (slots past the end masked below)
    margins = (1 - xj.unsqueeze(2) + x.unsqueeze(1)).clamp(min=0)  # [N, j, i]
    pair = live.unsqueeze(2) & is_target.logical_not().unsqueeze(1)
    loss = F.where(pair, margins, 0.0).sum((1, 2)) / c
    if unbatched:
        loss = loss.reshape(())
    return _reduce(loss, reduction)
