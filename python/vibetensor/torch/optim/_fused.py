"""The fused path of SGD, Adam and AdamW: one vt::_fused_sgd_ / vt::_fused_adamw_ call per (device, dtype) of a
parameter group instead of ~11 small ops per parameter. State tensors live in the optimizer's per-parameter
state under torch's names (exp_avg, exp_avg_sq, momentum_buffer; step as a Python int), so a step may switch
between this path and the per-parameter one. With capturable=True (Adam/AdamW) each step count is a float32 0-dim
tensor on the parameter's device, as torch's, which vt::_fused_adamw_capturable_ increments and reads there: the
step can be captured in a CUDA graph and every replay takes the next step."""
from ..._C import core as _core
from .._functions import empty_like, zeros_like

_fused_adamw = _core.op("vt::_fused_adamw_")
_fused_adamw_capturable = _core.op("vt::_fused_adamw_capturable_")
_fused_sgd = _core.op("vt::_fused_sgd_")


def check_flags(params, foreach, fused):
    """torch's constructor checks of the foreach/fused keywords; True when the fused kernels are asked for."""
    if fused and foreach:
        raise RuntimeError("`fused` and `foreach` cannot be `True` together.")
    if fused:
        for g in params:
            for p in g["params"]:
                if not p.dtype.is_floating_point:
                    raise RuntimeError("`fused=True` requires all the params to be floating point Tensors, got "
                                       f"{p.dtype}")


def use_fused(group):
    """fused=False or foreach=False picks the per-parameter path; otherwise (the default, fused=True, and
    foreach=True, which the multi-tensor fused kernel serves) floating parameters take the fused path."""
    if group["fused"] is False or (group["fused"] is None and group["foreach"] is False):
        return False
    if group.get("amsgrad"):
        return False
    return all(p.dtype.is_floating_point for p in group["params"])


def lr_value(group):
    """The group's lr as a number: a 1-element tensor lr (torch takes one, as torch.compile'd loops keep it) gives
    its value, as torch's non-capturable paths read it."""
    lr = group["lr"]
    return lr.item() if isinstance(lr, _core.Tensor) else lr


def _by_device_and_dtype(params):
    """Parameters with a gradient, in order, grouped by (device, dtype): one fused call each."""
    buckets = {}
    for p in params:
        grad = p.grad
        if grad is not None:
            buckets.setdefault((str(p.device), p.dtype), []).append((p, grad))
    return buckets.values()


def adamw_step(group, state_of, decoupled=True):
    """AdamW; with decoupled=False, Adam's L2 penalty: the kernel gets grad + weight_decay * param (negated first
    under maximize, as torch's Adam) and no decay of its own."""
    b1, b2 = group["betas"]
    weight_decay, maximize = group["weight_decay"], group["maximize"]
    l2 = not decoupled and weight_decay != 0
    for items in _by_device_and_dtype(group["params"]):
        if l2:
            items = [(p, (-g if maximize else g).add(p, alpha=weight_decay)) for p, g in items]
        params, grads, exp_avgs, exp_avg_sqs, steps = [], [], [], [], []
        capturable = bool(group.get("capturable"))
        for p, grad in items:
            st = state_of(p)
            if not st:
                st["step"] = 0
                st["exp_avg"] = zeros_like(p)
                st["exp_avg_sq"] = zeros_like(p)
            step_is_tensor = isinstance(st["step"], _core.Tensor)
            if capturable and not step_is_tensor:  # the count moves to the device (the op increments it)
                st["step"] = _step_tensor(st["step"], p.device)
            elif not capturable:
                st["step"] = (int(st["step"].item()) if step_is_tensor else st["step"]) + 1
            params.append(p)
            grads.append(grad)
            exp_avgs.append(st["exp_avg"])
            exp_avg_sqs.append(st["exp_avg_sq"])
            steps.append(st["step"])
        kw = dict(lr=lr_value(group), beta1=b1, beta2=b2, weight_decay=0.0 if l2 else weight_decay, eps=group["eps"],
                  maximize=maximize and not l2)
        (_fused_adamw_capturable if capturable else _fused_adamw)(params, grads, exp_avgs, exp_avg_sqs, steps, **kw)


def _step_tensor(count, device):
    from .. import full

    return full((), float(count), dtype=_core.dtype.float32, device=device)


def sgd_step(group, state_of):
    kw = dict(lr=lr_value(group), momentum=group["momentum"], dampening=group["dampening"],
              weight_decay=group["weight_decay"], nesterov=group["nesterov"], maximize=group["maximize"])
    for items in _by_device_and_dtype(group["params"]):
        if not group["momentum"]:
            _fused_sgd([p for p, _ in items], [g for _, g in items], [], **kw)
            continue
        # Parameters whose buffer exists and those taking their first step (the buffer becomes the gradient)
        # are two calls, as torch's is_first_step is one flag per call.
        old, new = ([], [], []), ([], [], [])
        for p, grad in items:
            st = state_of(p)
            buf = st.get("momentum_buffer")
            lists = old
            if buf is None:
                buf = st["momentum_buffer"] = empty_like(p)
                lists = new
            lists[0].append(p)
            lists[1].append(grad)
            lists[2].append(buf)
        for lists, first in ((old, False), (new, True)):
            if lists[0]:
                _fused_sgd(*lists, is_first_step=first, **kw)
