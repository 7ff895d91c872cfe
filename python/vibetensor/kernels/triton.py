"""Launching `@triton.jit` kernels on vibetensor tensors and streams.

    @triton.jit
    def add_kernel(x, y, out, n, BLOCK: tl.constexpr): ...

    vk.launch_triton(add_kernel, (triton.cdiv(n, 1024),), x, y, out, n, BLOCK=1024)
    add = vk.triton_kernel(add_kernel)          # or keep Triton's spelling:
    add[(triton.cdiv(n, 1024),)](x, y, out, n, BLOCK=1024)

vibetensor tensors give Triton what its launcher reads (data_ptr(), dtype, device, stride(), element_size()),
so they pass as kernel arguments unchanged. What Triton cannot know is vibetensor's current device and stream:
it asks its active driver, which asks torch. The hook installs a router into that driver once
(Note [Triton stream routing]) and launches after the checks of Note [Kernel launch checks].

Note [Triton stream routing]
Triton's JIT reads `driver.active.get_current_device()` and `get_current_stream(device)` at every launch
(and the device again when it loads a compiled binary). The router replaces both on the active driver: while
this thread is inside a vibetensor launch (a thread-local plan) they answer the launch's GPU and vibetensor
stream; otherwise they call the functions they replaced, so Triton launches on torch tensors in this or any
other thread behave exactly as before.
"""
from __future__ import annotations

import threading

from ._launch import current_device, plan_launch

_routing = threading.local()
_install_lock = threading.Lock()
_installed_on = None


def _install_router():
    global _installed_on
    from triton.runtime import driver

    active = driver.active
    with _install_lock:
        if _installed_on is active:
            return
        their_device, their_stream = active.get_current_device, active.get_current_stream

        def get_current_device():
            plan = getattr(_routing, "plan", None)
            return plan.physical if plan is not None else their_device()

        def get_current_stream(device=None):
            plan = getattr(_routing, "plan", None)
            if plan is not None:
                return plan.stream
            return their_stream() if device is None else their_stream(device)

        active.get_current_device = get_current_device
        active.get_current_stream = get_current_stream
        _installed_on = active


def _arg_names(fn):
    while fn is not None:  # JITFunction, or an Autotuner/Heuristics wrapping one in .fn
        names = getattr(fn, "arg_names", None)
        if names is not None:
            return list(names)
        fn = getattr(fn, "fn", None)
    raise TypeError("launch_triton expects a @triton.jit function (or an autotuned one)")


def launch_triton(fn, grid, *args, strided=(), stream=None, **kwargs):
    """Runs `fn[grid](*args, **kwargs)` on the tensors' device and vibetensor's current stream there (or
    `stream`). `strided`: names or positions of tensor arguments the kernel indexes with strides (True: all)."""
    names = _arg_names(fn)
    bound = [(names[i] if i < len(names) else None, i, a) for i, a in enumerate(args)]
    bound += [(k, names.index(k) if k in names else -1, v) for k, v in kwargs.items()]
    plan = plan_launch(getattr(fn, "__name__", "triton kernel"), bound, strided, stream)
    _install_router()
    outer = getattr(_routing, "plan", None)
    with current_device(plan.device):
        _routing.plan = plan
        try:
            return fn[grid](*args, **kwargs)
        finally:
            _routing.plan = outer


class TritonKernel:
    """A @triton.jit function launched the vibetensor way with Triton's spelling: `kernel[grid](*args)`."""

    def __init__(self, fn, strided=()):
        self.fn, self.strided = fn, strided

    def __getitem__(self, grid):
        return lambda *args, stream=None, **kwargs: launch_triton(self.fn, grid, *args, strided=self.strided,
                                                                  stream=stream, **kwargs)

    def __repr__(self):
        return f"TritonKernel({self.fn!r})"


def triton_kernel(fn=None, *, strided=()):
    """Wraps a @triton.jit function (also usable as a decorator above @triton.jit)."""
    if fn is None:
        return lambda f: TritonKernel(f, strided)
    return TritonKernel(fn, strided)
