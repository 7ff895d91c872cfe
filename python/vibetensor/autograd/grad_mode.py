"""Grad-mode switches: no_grad, enable_grad, set_grad_enabled, inference_mode. Each is a context manager and a
decorator, like torch's. The mode is per thread and lives in C++ (vt/autograd/grad_mode.h), where ops read it."""
from __future__ import annotations

import functools

from .._C import autograd as _ag

is_grad_enabled = _ag.is_grad_enabled
is_inference_mode_enabled = _ag.is_inference_mode_enabled


class _Mode:
    """Base: subclasses say which (grad_enabled, inference) state to enter; the previous state is restored."""

    def _target(self):
        raise NotImplementedError

    def __enter__(self):
        self._prev = _ag._get_mode()
        grad, inference = self._target()
        _ag._set_mode(grad, inference)
        return self

    def __exit__(self, *exc):
        _ag._set_mode(*self._prev)
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__(*self._args()):
                return fn(*args, **kwargs)
        return wrapper

    def _args(self):
        return ()


class no_grad(_Mode):
    """Ops inside record no autograd history."""

    def _target(self):
        return False, _ag._get_mode()[1]


class enable_grad(_Mode):
    """Re-enables recording inside a no_grad region."""

    def _target(self):
        return True, _ag._get_mode()[1]


class set_grad_enabled(_Mode):
    """set_grad_enabled(mode): sets grad mode at once (as a function) or for a `with` block (as a context)."""

    def __init__(self, mode: bool):
        self.mode = bool(mode)
        self._prev = _ag._get_mode()
        _ag._set_mode(self.mode, self._prev[1])

    def __enter__(self):
        return self

    def __call__(self, fn):
        _ag._set_mode(*self._prev)  # as a decorator it sets the mode only while fn runs
        return super().__call__(fn)

    def _args(self):
        return (self.mode,)


class inference_mode(_Mode):
    """No history is recorded and is_inference_mode_enabled() is True inside (no_grad semantics; tensors made
    here are ordinary tensors, not torch's inference tensors)."""

    def __init__(self, mode: bool = True):
        self.mode = bool(mode)

    def _target(self):
        prev = _ag._get_mode()
        return (False, True) if self.mode else prev

    def _args(self):
        return (self.mode,)
