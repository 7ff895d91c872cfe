"""torch.compiler for code that asks about it: nothing is ever being compiled (vibetensor runs eagerly; see
vibetensor.torch.compile), so `is_compiling()` and `is_dynamo_compiling()` are False, `disable` and
`allow_in_graph` give the function back (as a decorator with or without arguments), and `reset()` has nothing
to clear."""
from __future__ import annotations


def is_compiling():
    return False


def is_dynamo_compiling():
    return False


def disable(fn=None, recursive=True, *, reason=None):
    return (lambda f: f) if fn is None else fn


def allow_in_graph(fn):
    return fn


def assume_constant_result(fn):
    return fn


def reset():
    return None
