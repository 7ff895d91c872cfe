"""Gradient clipping over all parameters at once.

Note [Clipping without host syncs]
clip_grad_norm_ never reads a value back: each gradient's norm is a 0-dim device tensor, the total norm is the
norm of their stack, and the scale min(1, max_norm / (total + 1e-6)) stays a 0-dim tensor that every gradient
is multiplied by in place. So on a GPU the whole clip is queued work (for float32 gradients and the 2-norm:
a square, a sum and a multiply per gradient, plus a few small ops), never waiting on the device; only
error_if_nonfinite=True reads the total back. (A multi-tensor kernel, as torch's foreach norm, would take the
per-gradient launches down to a handful; not done yet.)
"""
from ...._C import core as _core
from ....autograd import no_grad
from .. import _tensor_api


def _grads(parameters):
    if isinstance(parameters, _tensor_api.Tensor):
        parameters = [parameters]
    return [p.grad for p in parameters if p.grad is not None]


def get_total_norm(tensors, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """The norm of the norms of `tensors` (a 0-dim tensor on the first one's device)."""
    from ... import _functions as vt

    if isinstance(tensors, _tensor_api.Tensor):
        tensors = [tensors]
    tensors = list(tensors)
    norm_type = float(norm_type)
    if not tensors:
        return vt.tensor(0.0)
    first = tensors[0].device
    if norm_type == 2.0 and all(t.dtype == _core.dtype.float32 for t in tensors):
        # the common case in two launches per tensor: its sum of squares, then one sqrt of their sum
        squares = [(t * t).sum().to(first) for t in tensors]
        total = vt.stack(squares).sum().sqrt()
    else:
        total = vt.norm(vt.stack([vt.norm(t, norm_type).to(first) for t in tensors]), norm_type)
    if error_if_nonfinite and bool(total.isnan() | total.isinf()):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, so "
                           "it cannot be clipped. To disable this error and scale the gradients by the non-finite "
                           "norm anyway, set `error_if_nonfinite=False`")
    return total


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """Scales all gradients together so their total norm is at most max_norm; returns the total norm before
    clipping (Note [Clipping without host syncs])."""
    from ... import _functions as vt

    grads = _grads(parameters)
    with no_grad():
        total = get_total_norm(grads, norm_type, error_if_nonfinite)
        if not grads:
            return total
        scale = vt.clamp(float(max_norm) / (total + 1e-6), max=1.0)
        for g in grads:
            g.mul_(scale.to(g.device))
    return total


def clip_grad_value_(parameters, clip_value, foreach=None):
    """Clamps every gradient elementwise into [-clip_value, clip_value]."""
    clip_value = float(clip_value)
    with no_grad():
        for g in _grads(parameters):
            g.clamp_(-clip_value, clip_value)
