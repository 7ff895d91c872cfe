"""torch.jit for code that uses it: vibetensor runs Python as written, so TorchScript's entry points give back
what they were given - `script` and `trace` the module or function itself (it computes what the scripted or
traced one would), the decorators `ignore`, `unused`, `export`, `interface` and `script_if_tracing` the function,
`annotate` the value - and `is_scripting()` / `is_tracing()` are False, which sends code down its eager branch as
under torch outside TorchScript. Serialised TorchScript (`save` / `load`) has no vibetensor form: those raise."""
from __future__ import annotations

import typing

Final = typing.Final


def script(obj, optimize=None, _frames_up=0, _rcb=None, example_inputs=None):
    return obj


def trace(func, example_inputs=None, *args, **kwargs):
    return func


def trace_module(mod, inputs, *args, **kwargs):
    return mod


def ignore(drop=False, **kwargs):
    if callable(drop):  # used bare: @torch.jit.ignore
        return drop
    return lambda fn: fn


def unused(fn):
    return fn


def export(fn):
    return fn


def interface(obj):
    return obj


def annotate(the_type, the_value):
    return the_value


def is_scripting():
    return False


def is_tracing():
    return False


def script_if_tracing(fn):
    """torch's decorator that scripts fn only when called under tracing: never the case here, so fn itself."""
    return fn


_script_if_tracing = script_if_tracing  # the private name torchvision's ops decorate with


def _unsupported(name):
    def fail(*args, **kwargs):
        raise NotImplementedError(f"torch.jit.{name}: vibetensor has no TorchScript archives; save the state_dict "
                                  "with vibetensor.torch.save instead")
    return fail


save = _unsupported("save")
load = _unsupported("load")
freeze = _unsupported("freeze")
