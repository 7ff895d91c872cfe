"""Running a function with this thread's autocast suspended (Note [Autocast suspension] in vt/core/autocast.h):
for the calls torch never autocasts although they reach ops with a policy - out= forms, in-place forms, the
Python composites of ops that are native kernels in torch - and for the policy wrappers' bodies. Standalone, so
that modules imported before vibetensor.torch.amp can use it."""
from .._C import autograd as _ag


def call_without_autocast(fn, *args, **kwargs):
    state = _ag._get_autocast()
    if not (state[0] or state[1]) or state[4]:  # no region enabled, or already suspended: nothing to do
        return fn(*args, **kwargs)
    _ag._set_autocast(state[0], state[1], state[2], state[3], True, state[5])
    try:
        return fn(*args, **kwargs)
    finally:
        _ag._set_autocast(*state)


def region_dtype(t):
    """The lower-precision dtype of this thread's autocast region for t's device type, or None outside one (or
    while suspended)."""
    state = _ag._get_autocast()
    k = 1 if t.is_cuda else 0
    return state[2 + k] if state[k] and not state[4] else None
