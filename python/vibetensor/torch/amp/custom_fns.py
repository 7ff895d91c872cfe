"""torch.amp.custom_fwd / custom_bwd: decorators for the forward and backward of an autograd Function, so that a
Function written for full precision behaves inside an autocast region. custom_fwd runs forward as the region
says (or, with cast_inputs=dtype, casts the floating inputs to dtype and runs forward with autocast off);
custom_bwd runs backward with the autocast state forward saw, which backward would otherwise not have."""
import functools

from ._composites import _cast
from .autocast_mode import autocast, get_autocast_dtype, is_autocast_enabled


def custom_fwd(fwd=None, *, device_type, cast_inputs=None):
    """Decorates an autograd Function's forward(ctx, ...)."""
    if fwd is None:
        return functools.partial(custom_fwd, device_type=device_type, cast_inputs=cast_inputs)

    @functools.wraps(fwd)
    def decorate_fwd(*args, **kwargs):
        ctx = args[0]
        ctx._dtype = get_autocast_dtype(device_type)
        if cast_inputs is None:
            ctx._fwd_used_autocast = is_autocast_enabled(device_type)
            return fwd(*args, **kwargs)
        ctx._fwd_used_autocast = False
        if not is_autocast_enabled(device_type):
            return fwd(*args, **kwargs)
        with autocast(device_type, enabled=False):
            return fwd(*_cast(args, device_type, cast_inputs), **_cast(kwargs, device_type, cast_inputs))
    return decorate_fwd


def custom_bwd(bwd=None, *, device_type):
    """Decorates an autograd Function's backward(ctx, ...) (its forward must use custom_fwd)."""
    if bwd is None:
        return functools.partial(custom_bwd, device_type=device_type)

    @functools.wraps(bwd)
    def decorate_bwd(*args, **kwargs):
        ctx = args[0]
        with autocast(device_type, dtype=ctx._dtype, enabled=ctx._fwd_used_autocast):
            return bwd(*args, **kwargs)
    return decorate_bwd
