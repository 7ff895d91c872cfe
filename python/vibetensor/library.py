"""vibetensor.library: define ops and override kernels from Python, torch.library-style.

    lib = vibetensor.library.Library("mylib", "DEF")
    lib.define("scale(Tensor self, float k) -> Tensor")
    lib.impl("scale", lambda self, k: self * k, "CPU")        # a backend kernel written in Python
    vt.ops.mylib.scale(x, 2.0)

    with vibetensor.library.Library("vt", "IMPL") as lib:    # a Python override in front of a built-in op
        lib.impl("add", my_add, "Python")                      # my_add may call vt.ops.vt.add.redispatch(...)

Python kernels go through the dispatcher's boxed path: every call, C++ callers included (`a + b`), reaches
them. Python overrides are removed when the Library is closed; ops a Library defined stay defined (the
dispatcher never unregisters an op that callers may hold).

Autograd: every op defined here (or by a native plugin) gets an autograd slot when it is defined. Its backward
raises "the derivative for 'ns::op' is not implemented" until one is registered with `register_autograd`
(torch.library's name and calling convention); an op whose kernel is made of differentiable vibetensor ops is
defined with `composite=True` instead and records the graph of those ops.
"""
from __future__ import annotations

from ._C import core as _core

_KEYS = ("CPU", "CUDA", "Any", "Python")


class Library:
    def __init__(self, ns: str, kind: str = "FRAGMENT"):
        if kind not in ("DEF", "IMPL", "FRAGMENT"):
            raise ValueError(f"Library kind must be DEF, IMPL or FRAGMENT, got {kind!r}")
        if not ns.isidentifier():
            raise ValueError(f"namespace must be an identifier, got {ns!r}")
        self.ns, self.kind = ns, kind
        self._overrides: list[str] = []

    def _qualname(self, name: str) -> str:
        return name if "::" in name else f"{self.ns}::{name}"

    def define(self, schema: str, *, composite: bool = False) -> str:
        """Registers a new op from a schema-lite string; RuntimeError if the name is taken. `composite=True`: the
        kernels call differentiable vibetensor ops, so autograd records those instead of needing a backward."""
        if self.kind == "IMPL":
            raise RuntimeError("define() needs a Library of kind DEF or FRAGMENT")
        _core.define(self.ns, schema, bool(composite))
        return self._qualname(schema.split("(", 1)[0].strip())

    def impl(self, name: str, fn, dispatch_key: str = "CPU"):
        """Registers `fn` as the op's kernel for `dispatch_key`, or as its Python override ("Python")."""
        if dispatch_key not in _KEYS:
            raise ValueError(f"unknown dispatch key {dispatch_key!r}; expected one of {', '.join(_KEYS)}")
        if not callable(fn):
            raise TypeError(f"impl() expects a callable, got {type(fn).__name__}")
        qual = self._qualname(name)
        _core.register_python_kernel(qual, dispatch_key, fn)
        if dispatch_key == "Python":
            self._overrides.append(qual)
        return fn

    def close(self):
        """Removes the Python overrides this Library installed."""
        while self._overrides:
            _core.remove_python_override(self._overrides.pop())

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def register_autograd(qualname: str, backward, *, setup_context=None):
    """Makes op `qualname` differentiable, as torch.library.register_autograd: `setup_context(ctx, inputs, output)`
    saves what backward needs (ctx.save_for_backward, attributes), and `backward(ctx, *grads)` returns one gradient
    per op argument (None for arguments that take none). Replaces any backward the op had."""
    if not callable(backward):
        raise TypeError(f"register_autograd() expects a callable backward, got {type(backward).__name__}")
    if setup_context is not None and not callable(setup_context):
        raise TypeError(f"setup_context must be callable or None, got {type(setup_context).__name__}")
    from .autograd.function import Function

    op = _core.op(qualname)  # ValueError naming the op when it does not exist
    arguments = op.arguments

    class _Backward(Function):
        @staticmethod
        def forward(ctx, *inputs):
            pos = [v for v, (_, kw) in zip(inputs, arguments) if not kw]
            kwargs = {name: v for v, (name, kw) in zip(inputs, arguments) if kw}
            output = op.redispatch(*pos, **kwargs)  # grad mode is off here: this reaches the backend kernel
            if setup_context is not None:
                setup_context(ctx, inputs, output)
            return output

        @staticmethod
        def backward(ctx, *grads):
            result = backward(ctx, *grads)
            return result if isinstance(result, tuple) else (result,)

    _Backward.__name__ = qualname.split("::")[-1].title().replace("_", "") + "Backward"

    def autograd_kernel(*args, **kwargs):
        inputs = list(args) + [kwargs[name] for name, kw in arguments if kw]
        return _Backward.apply(*inputs)

    _core.register_autograd_kernel(qualname, autograd_kernel)


def redispatch(qualname: str, *args, **kwargs):
    """Calls op `qualname` below the Python-override layer: what an override uses to reach the original."""
    return _core.op(qualname).redispatch(*args, **kwargs)
