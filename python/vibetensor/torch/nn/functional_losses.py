"""Loss functions and similarity measures of torch.nn.functional, composed from differentiable vt ops:
mse/l1/smooth_l1/huber, binary_cross_entropy (+ with_logits), nll_loss, kl_div, margin_ranking_loss,
cosine_similarity, normalize and pairwise_distance, with torch's signatures, reductions, checks and results."""
import warnings

from ..._C import autograd as _ag
from ..._C import core as _core
from ...autograd import Function


def _F():
    from .. import _functions

    return _functions


def _reduction_of(size_average, reduce, reduction):
    """The legacy size_average/reduce pair, when either is given, overrides reduction (as torch's)."""
    if size_average is None and reduce is None:
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    reduction = "none" if not reduce else ("mean" if size_average else "sum")
    warnings.warn(f"size_average and reduce args will be deprecated, please use reduction='{reduction}' instead.")
    return reduction


def _check_reduction(reduction):
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{reduction} is not a valid value for reduction")


def _reduce(loss, reduction):
    _check_reduction(reduction)
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _warn_size(input, target):
    # torch broadcasts a target of another size (and warns); a pair that cannot broadcast fails in the op
    if tuple(target.shape) != tuple(input.shape):
        warnings.warn(f"Using a target size ({tuple(target.shape)}) that is different to the input size "
                      f"({tuple(input.shape)}). This will likely lead to incorrect results due to broadcasting. "
                      "Please ensure they have the same size.", stacklevel=3)


def _weighted(loss, weight, input, reduction, mean_by_weight):
    """An elementwise weight of input's exact size. mse/l1 take the weighted mean (sum(w l) / sum(w)); huber
    takes the plain mean of w l, as torch does."""
    if weight is None:
        return _reduce(loss, reduction)
    if tuple(weight.shape) != tuple(input.shape):
        raise ValueError("Weights and input must have the same size.")
    _check_reduction(reduction)
    loss = loss * weight
    if reduction == "mean" and mean_by_weight:
        return loss.sum() / weight.sum()
    return _reduce(loss, reduction)


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    reduction = _reduction_of(size_average, reduce, reduction)
    _check_reduction(reduction)
    _warn_size(input, target)
    return _weighted((input - target).square(), weight, input, reduction, True)


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    reduction = _reduction_of(size_average, reduce, reduction)
    _check_reduction(reduction)
    _warn_size(input, target)
    return _weighted((input - target).abs(), weight, input, reduction, True)


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean", beta=1.0):
    """0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta; beta == 0 is the L1 loss."""
    reduction = _reduction_of(size_average, reduce, reduction)
    _check_reduction(reduction)
    if beta < 0:
        raise RuntimeError("smooth_l1_loss does not support negative values for beta.")
    _warn_size(input, target)
    d = (input - target).abs()
    if beta == 0:
        return _reduce(d, reduction)
    return _reduce(_F().where(d < beta, d.square() * (0.5 / beta), d - 0.5 * beta), reduction)


def huber_loss(input, target, reduction="mean", delta=1.0, weight=None):
    """0.5 d^2 where |d| < delta, else delta (|d| - 0.5 delta): smooth_l1 scaled by delta."""
    _check_reduction(reduction)
    if delta <= 0:
        raise RuntimeError("huber_loss does not support non-positive values for delta.")
    _warn_size(input, target)
    d = (input - target).abs()
    loss = _F().where(d < delta, d.square() * 0.5, (d - 0.5 * delta) * delta)
    return _weighted(loss, weight, input, reduction, False)


def _check_in_unit(x, what):
    if x.numel() and bool(((x >= 0) & (x <= 1)).logical_not().any()):  # NaN fails too, as torch's check
        raise RuntimeError(f"all elements of {what} should be between 0 and 1")


def _weight_without_grad(fn, weight, name="weight"):
    # torch's kernels take no gradient for weight and refuse one that asks for it
    if weight is not None and weight.requires_grad and _ag.is_grad_enabled():
        raise RuntimeError(f"The function '{fn}' is not differentiable with respect to argument '{name}'. This "
                           "input cannot have requires_grad True.")


def _expand_weight(weight, input):
    if weight is None:
        return None
    if _F().broadcast_shapes(tuple(weight.shape), tuple(input.shape)) != tuple(input.shape):
        raise RuntimeError(f"weight of shape {tuple(weight.shape)} cannot be broadcast to the input's shape "
                           f"{tuple(input.shape)}")
    return weight


class _BinaryCrossEntropy(Function):
    """The pointwise loss with torch's gradients, finite where x is 0 or 1: (x - t) / max(x (1 - x), 1e-12)
    for x and log(1 - x) - log(x) for t (composed through the clamped logs, those points would give NaN)."""

    @staticmethod
    def forward(ctx, x, t):
        ctx.save_for_backward(x, t)
        return -(t * x.log().clamp(min=-100.0) + (1 - t) * (1 - x).log().clamp(min=-100.0))

    @staticmethod
    def backward(ctx, g):
        x, t = ctx.saved_tensors
        gx = g * (x - t) / (x * (1 - x)).clamp(min=1e-12) if ctx.needs_input_grad[0] else None
        gt = g * ((1 - x).log() - x.log()) if ctx.needs_input_grad[1] else None
        return gx, gt


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None, reduction="mean"):
    """-w (t log x + (1 - t) log(1 - x)), each log clamped at -100 as torch's (so x = 0 or 1 stays finite)."""
    reduction = _reduction_of(size_average, reduce, reduction)
    _check_reduction(reduction)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"Using a target size ({tuple(target.shape)}) that is different to the input size "
                         f"({tuple(input.shape)}) is deprecated. Please ensure they have the same size.")
    if input.dtype != target.dtype:
        raise RuntimeError(f"Found dtype {target.dtype} but expected {input.dtype}")
    _check_in_unit(input, "input")
    _check_in_unit(target, "target")
    _weight_without_grad("binary_cross_entropy", weight)
    weight = _expand_weight(weight, input)
    loss = _BinaryCrossEntropy.apply(input, target)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None, reduction="mean",
                                     pos_weight=None):
    """-w (p t log sigmoid(x) + (1 - t) log sigmoid(-x)), p = pos_weight broadcast along the last dim; written
    with logsigmoid so large |x| neither overflows nor loses the loss."""
    reduction = _reduction_of(size_average, reduce, reduction)
    _check_reduction(reduction)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"Target size ({tuple(target.shape)}) must be the same as input size "
                         f"({tuple(input.shape)})")
    if not target.dtype.is_floating_point:
        raise RuntimeError(f"result type {input.dtype} can't be cast to the desired output type {target.dtype}")
    _weight_without_grad("binary_cross_entropy_with_logits", weight)
    _weight_without_grad("binary_cross_entropy_with_logits", pos_weight, "pos_weight")
    from . import functional as F

    log_p, log_q = F.logsigmoid(input), F.logsigmoid(-input)
    loss = -(target * log_p if pos_weight is None else pos_weight * target * log_p) - (1 - target) * log_q
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean"):
    """-w[t] x[n, t] over the class dim (1, or 0 for an unbatched [C] input); ignore_index positions add
    nothing, and 'mean' divides by the summed weights of the rest."""
    reduction = _reduction_of(size_average, reduce, reduction)
    _check_reduction(reduction)
    F = _F()
    if input.dim() < 1:
        raise ValueError(f"Expected 1 or more dimensions (got {input.dim()})")
    if target.dtype not in (_core.dtype.int64, _core.dtype.uint8):
        raise RuntimeError(f"expected target dtype to be Long or Byte, but got {target.dtype}")
    target = target.to(_core.dtype.int64)
    unbatched = input.dim() == 1
    if unbatched:  # [C] with a 0-d target or a 1-d one of size 1; the loss is 0-d
        if target.numel() != 1 or target.dim() > 1:
            raise ValueError(f"For 1D input, 1D target must have size 1, but got target size: "
                             f"{target.numel()}")
        input, target = input.unsqueeze(0), target.reshape(1)
    elif input.shape[0] != (target.shape[0] if target.dim() else 0):
        raise ValueError(f"Expected input batch_size ({input.shape[0]}) to match target batch_size "
                         f"({target.shape[0] if target.dim() else 0}).")
    elif input.dim() == 2 and target.dim() != 1:
        raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
    elif input.dim() == 4 and target.dim() != 3:
        raise RuntimeError(f"only batches of spatial targets supported (3D tensors) but got targets of "
                           f"dimension: {target.dim()}")
    expected = tuple(input.shape[:1]) + tuple(input.shape[2:])
    if tuple(target.shape) != expected:
        raise RuntimeError(f"Expected target size {list(expected)}, got {list(target.shape)}")
    classes = input.shape[1]
    if weight is not None and (weight.dim() != 1 or weight.numel() != classes):
        raise RuntimeError(f"weight tensor should be defined either for all {classes} classes or no classes but "
                           f"got weight tensor of shape: {list(weight.shape)}")
    _weight_without_grad("nll_loss", weight)
    valid = target != ignore_index
    # On the GPU the gather below checks the targets on the device and reports a bad one at the next
    # synchronization (Note [Deferred kernel errors]): a host check here would synchronize every call.
    if target.numel() and not target.is_cuda and bool((valid & ((target < 0) | (target >= classes))).any()):
        bad = target[valid & ((target < 0) | (target >= classes))][0].item()
        raise IndexError(f"Target {bad} is out of bounds.")
    safe = F.where(valid, target, 0)
    picked = input.gather(1, safe.unsqueeze(1)).squeeze(1)
    w = valid.to(input.dtype)
    if weight is not None:
        w = w * weight[safe]
    # ignored positions give 0 even where their input is infinite (a masked-out log-probability)
    loss = F.where(valid, -picked * w, 0.0)
    if reduction == "none":
        return loss.squeeze(0) if unbatched else loss
    if reduction == "sum":
        return loss.sum()
    # with no weight left, torch's mean is NaN yet its gradient 0: divide by 1 there and add a constant NaN
    total = w.sum()
    empty = total == 0
    return loss.sum() / F.where(empty, 1.0, total) + F.where(empty, float("nan"), 0.0).to(loss.dtype)


def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
    """Pointwise t (log t - x) (input holds log-probabilities; target too when log_target), summed or averaged;
    'batchmean' divides the sum by the batch size. t log t is 0 where t == 0."""
    reduction = _reduction_of(size_average, reduce, reduction)
    if reduction not in ("none", "mean", "sum", "batchmean"):
        raise ValueError(f"{reduction} is not a valid value for reduction")
    if reduction == "mean":
        warnings.warn("reduction: 'mean' divides the total loss by both the batch size and the support size."
                      "'batchmean' divides only by the batch size, and aligns with the KL div math definition."
                      "'mean' will be changed to behave the same as 'batchmean' in the next major release.")
    if log_target:
        loss = target.exp() * (target - input)
    else:
        # log of 1 where t == 0, so t log t is 0 there with a finite gradient; t < 0 still gives NaN
        loss = target * _F().where(target == 0, 1.0, target).log() - target * input
    if reduction == "batchmean":
        return loss.sum() / input.shape[0] if input.dim() else loss.sum()
    return _reduce(loss, reduction)


def margin_ranking_loss(input1, input2, target, margin=0, size_average=None, reduce=None, reduction="mean"):
    """max(0, -y (x1 - x2) + margin), elementwise over broadcast inputs of one rank."""
    reduction = _reduction_of(size_average, reduce, reduction)
    _check_reduction(reduction)
    if not input1.dim() == input2.dim() == target.dim():
        raise RuntimeError(f"margin_ranking_loss : All input tensors should have same dimension but got sizes: "
                           f"input1: {tuple(input1.shape)}, input2: {tuple(input2.shape)}, "
                           f"target: {tuple(target.shape)} ")
    return _reduce((-target * (input1 - input2) + margin).clamp(min=0), reduction)


def cosine_similarity(x1, x2, dim=1, eps=1e-8):
    """sum(x1 / max(|x1|, eps) * x2 / max(|x2|, eps)) along dim, after broadcasting x1 against x2 (each
    normalised first, so the result stays within [-1, 1])."""
    shape = _F().broadcast_shapes(tuple(x1.shape), tuple(x2.shape))
    x1, x2 = x1.expand(*shape), x2.expand(*shape)

    def floored(n):
        # torch floors the norm's value at eps outside autograd: the gradient still flows as through the norm
        return n + (n.clamp(min=eps) - n).detach()
    return ((x1 / floored(x1.norm(2, dim, True))) * (x2 / floored(x2.norm(2, dim, True)))).sum(dim)


def normalize(input, p=2.0, dim=1, eps=1e-12, out=None):
    """input / max(||input||_p, eps) along dim."""
    result = input / input.norm(p, dim, True).clamp(min=eps)
    return result if out is None else out.copy_(result)


def pairwise_distance(x1, x2, p=2.0, eps=1e-6, keepdim=False):
    """||x1 - x2 + eps||_p over the last dim (of the broadcast pair)."""
    return (x1 - x2 + eps).norm(p, max(x1.dim(), x2.dim()) - 1, keepdim)
