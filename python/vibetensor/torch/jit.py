"""torch.jit for code that uses it: vibetensor runs Python as written, so TorchScript's entry points give back
what they were given - `script` and `trace` the module or function itself (it computes what the scripted or
traced one would), the decorators `ignore`, `unused`, `export`, `interface` and `script_if_tracing` the function,
`annotate` the value - and `is_scripting()` / `is_tracing()` are False, which sends code down its eager branch as
under torch outside TorchScript. `fork` runs the call at once and `wait` reads its future (what torch computes,
without the parallelism), `isinstance` checks typed containers (List[int], Dict[str, Tensor], Optional, ...) as
torch's eager one does, and `Attribute`, `Error` and `ScriptModule` are there for code that names them.
Serialised TorchScript (`save` / `load` / `freeze` / `optimize_for_inference`) has no vibetensor form: those
raise."""
from __future__ import annotations

import builtins
import collections
import typing
import warnings

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


# torch's eager Attribute (outside TorchScript it only records the value and its declared type)
Attribute = collections.namedtuple("Attribute", ["value", "type"])


class Error(Exception):
    """torch.jit.Error: what TorchScript raises for a failed `raise` in scripted code; never raised here."""


class ScriptModule:
    """No module is a ScriptModule in vibetensor (script gives back the module itself), so isinstance checks against
    it are False, as for an eager torch module."""


class Future:
    """The result of fork: computed when fork is called (an exception propagates from fork itself, as from torch's
    eager fork)."""

    def __init__(self, fn, args, kwargs):
        self._value = fn(*args, **kwargs)

    def done(self):
        return True

    def wait(self):
        return self._value

    value = wait

    def then(self, callback):
        return Future(callback, (self,), {})

    def add_done_callback(self, callback):
        callback(self)


def fork(func, *args, **kwargs):
    return Future(func, args, kwargs)


def wait(future):
    return future.wait()


def _check(obj, target):
    """torch.jit.isinstance's eager rule: containers checked element by element against their declared types."""
    origin, args = typing.get_origin(target), typing.get_args(target)
    if origin is None:
        if target in (list, dict, tuple, typing.List, typing.Dict, typing.Tuple):
            name = getattr(target, "__name__", None) or getattr(target, "_name", "").lower()
            raise RuntimeError(f"Attempted to use {name} without a contained type. Please add a contained type, e.g. "
                               f"{name}[int]")
        return target is typing.Any or builtins.isinstance(obj, target)
    if origin is typing.Union:
        return any(_check(obj, a) for a in args)
    if origin is list:
        if not builtins.isinstance(obj, list):
            return False
        if not obj:
            _empty_warning()
        return all(_check(x, args[0]) for x in obj)
    if origin is dict:
        if not builtins.isinstance(obj, dict):
            return False
        if not obj:
            _empty_warning()
        return all(_check(k, args[0]) and _check(v, args[1]) for k, v in obj.items())
    if origin is tuple:
        if not builtins.isinstance(obj, tuple):
            return False
        return len(obj) == len(args) and all(_check(x, a) for x, a in zip(obj, args))
    return builtins.isinstance(obj, origin)


def _empty_warning():
    warnings.warn("The inner type of a container is lost when calling torch.jit.isinstance in eager mode. For "
                  "example, List[int] would become list and therefore falsely return True for List[float] or "
                  "List[str].")


def isinstance(obj, target_type):  # noqa: A001  (torch's name)
    return _check(obj, target_type)


def _unsupported(name):
    def fail(*args, **kwargs):
        raise NotImplementedError(f"torch.jit.{name}: vibetensor has no TorchScript archives; save the state_dict "
                                  "with vibetensor.torch.save instead")
    return fail


save = _unsupported("save")
load = _unsupported("load")
freeze = _unsupported("freeze")
optimize_for_inference = _unsupported("optimize_for_inference")
