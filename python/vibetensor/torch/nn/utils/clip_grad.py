"""Gradient clipping over all parameters at once.

Note [Clipping without host syncs]
clip_grad_norm_ never reads a value back: each gradient's norm is a 0-dim device tensor, the total norm is the
norm of the vector of those norms, and the scale min(1, max_norm / (total + 1e-6)) stays a 0-dim tensor that
every gradient is multiplied by in place. So on a GPU the whole clip is queued work, never waiting on the
device; only error_if_nonfinite=True reads the total back. As torch's, the gradients are grouped by (device,
dtype), and by default (foreach=None or True) each group's norms are one vt._foreach_norm and its scaling one
vt._foreach_mul_ (core/src/ops/foreach.h): two launches for the norms and one for the scaling of up to ~170
gradients of a group, plus a handful for the total and the scale (and a concatenation of the groups' norms
when there are several), whatever the number of gradients. foreach=False takes the per-gradient path: a norm
(for float32 and the 2-norm: a square and a sum) and a multiply per gradient.
"""
from ...._C import core as _core
from ....autograd import no_grad
from ... import _foreach
from .. import _tensor_api


def _grads(parameters):
    if isinstance(parameters, _tensor_api.Tensor):
        parameters = [parameters]
    return [p.grad for p in parameters if p.grad is not None]


def _by_device_and_dtype(tensors):
    """The tensors grouped by (device, dtype), in first-seen order (torch's _group_tensors_by_device_and_dtype)."""
    groups = {}
    for t in tensors:
        groups.setdefault((t.device, t.dtype), []).append(t)
    return groups.values()


def _as_vector(norms):
    """One group's norms as a 1-D tensor. vt._foreach_norm returns them as consecutive elements of one buffer
    (core/src/ops/foreach.h), so this is a view of it, without the ~3 us per norm of a stack; a stack should
    that ever change."""
    n = len(norms)
    if norms[-1].data_ptr() - norms[0].data_ptr() == (n - 1) * norms[0].element_size():
        return norms[0].as_strided((n,), (1,))
    from ... import _functions as vt

    return vt.stack(norms)


def _per_tensor_norms(tensors, norm_type, first):
    if norm_type == 2.0 and all(t.dtype == _core.dtype.float32 for t in tensors):
        # the common case in two launches per tensor: its sum of squares, then one sqrt of their sum
        return [(t * t).sum().to(first) for t in tensors], True
    from ... import _functions as vt

    return [vt.norm(t, norm_type).to(first) for t in tensors], False


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
    with no_grad():
        if foreach is False:
            norms, squares = _per_tensor_norms(tensors, norm_type, first)
            total = vt.stack(norms).sum().sqrt() if squares else vt.norm(vt.stack(norms), norm_type)
        else:
            vectors = [_as_vector(_foreach._foreach_norm(group, norm_type)) for group in _by_device_and_dtype(tensors)]
            vectors = [v if v.device == first else v.to(first) for v in vectors]
            total = _foreach._foreach_norm([vectors[0] if len(vectors) == 1 else vt.cat(vectors)], norm_type)[0]
    if error_if_nonfinite and bool(total.isnan() | total.isinf()):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, so "
                           "it cannot be clipped. To disable this error and scale the gradients by the non-finite "
                           "norm anyway, set `error_if_nonfinite=False`")
    return total


def clip_grads_with_norm_(parameters, max_norm, total_norm, foreach=None):
    """Scales all gradients by min(1, max_norm / (total_norm + 1e-6)) in place, given their total norm."""
    from ... import _functions as vt

    grads = _grads(parameters)
    if not grads:
        return
    with no_grad():
        scale = vt.clamp(float(max_norm) / (total_norm + 1e-6), max=1.0)
        for group in _by_device_and_dtype(grads):
            scale_here = scale.to(group[0].device)
            if foreach is False:
                for g in group:
                    g.mul_(scale_here)
            else:
                _foreach._foreach_mul_(group, scale_here)


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """Scales all gradients together so their total norm is at most max_norm; returns the total norm before
    clipping (Note [Clipping without host syncs])."""
    if isinstance(parameters, _tensor_api.Tensor):
        parameters = [parameters]
    parameters = list(parameters)
    with no_grad():
        total = get_total_norm(_grads(parameters), norm_type, error_if_nonfinite, foreach)
        clip_grads_with_norm_(parameters, max_norm, total, foreach)
    return total


def clip_grad_norm(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """Deprecated spelling of clip_grad_norm_ (a FutureWarning, as torch's)."""
    import warnings

    warnings.warn("`torch.nn.utils.clip_grad_norm` is now deprecated in favor of `torch.nn.utils.clip_grad_norm_`.",
                  FutureWarning, stacklevel=2)
    return clip_grad_norm_(parameters, max_norm, norm_type, error_if_nonfinite, foreach)


def clip_grad_value_(parameters, clip_value, foreach=None):
    """Clamps every gradient elementwise into [-clip_value, clip_value]."""
    clip_value = float(clip_value)
    with no_grad():
        for g in _grads(parameters):
            g.clamp_(-clip_value, clip_value)
