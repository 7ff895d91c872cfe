"""torch's config modules (torch._dynamo.config, torch._inductor.config) for code that sets them at import time,
as gpt-fast and many inference scripts do: each holds torch's documented defaults for its commonly set options,
which change nothing here (vibetensor runs eagerly); an option torch does not have is refused as torch refuses it
(AttributeError "... does not exist"), and `patch(...)` sets options for a `with` block or a decorated function."""
from __future__ import annotations

import contextlib
import types


def _public(name):
    return name.replace("vibetensor.torch", "torch", 1)


class ConfigModule(types.ModuleType):
    def __setattr__(self, name, value):
        if name.startswith("_") or name in self.__dict__:
            return super().__setattr__(name, value)
        raise AttributeError(f"{_public(self.__name__)}.{name} does not exist")

    def __getattr__(self, name):  # only reached for a name the module does not hold
        raise AttributeError(f"{_public(self.__name__)}.{name} does not exist")

    def patch(self, arg1=None, arg2=None, **changes):
        """patch("name", value), patch({"name": value}) or patch(name=value): a context manager and decorator."""
        if isinstance(arg1, str):
            changes = {arg1: arg2}
        elif isinstance(arg1, dict):
            changes = dict(arg1)
        return _Patch(self, changes)


class SubConfig:
    """A nested group of options (torch._inductor.config.triton): the same refusal of unknown names."""

    def __init__(self, qualname, **defaults):
        object.__setattr__(self, "_qualname", qualname)
        for k, v in defaults.items():
            object.__setattr__(self, k, v)

    def __setattr__(self, name, value):
        if name not in self.__dict__:
            raise AttributeError(f"{self._qualname}.{name} does not exist")
        object.__setattr__(self, name, value)

    def __getattr__(self, name):
        raise AttributeError(f"{self._qualname}.{name} does not exist")


class _Patch(contextlib.ContextDecorator):
    def __init__(self, module, changes):
        for name in changes:  # refuse an unknown option now, as torch does
            getattr(module, name)
        self.module, self.changes, self.saved = module, changes, []

    def __enter__(self):
        self.saved.append({k: getattr(self.module, k) for k in self.changes})
        for k, v in self.changes.items():
            setattr(self.module, k, v)
        return self

    def __exit__(self, *exc):
        for k, v in self.saved.pop().items():
            setattr(self.module, k, v)
        return False


def install(module_name):
    """Turns the named (already imported) module into a ConfigModule."""
    import sys

    sys.modules[module_name].__class__ = ConfigModule
