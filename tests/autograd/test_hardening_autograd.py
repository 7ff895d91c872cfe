"""Regression tests of issue 12 ("hardening the core"), the autograd classes: concurrent accumulation into one
leaf, index tensors modified after they were used, gradients at the points where roots and atan2 are not
differentiable, hooks and kernels that return gradients of the wrong shape or dtype, and retain_grad across an
in-place op. Each is checked against torch."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading

import pytest
import torch

import vibetensor.library as vlib
import vibetensor.torch as vt


def both(fn):
    """fn(m) for m = vt and torch; returns the two results as Python lists (or the exceptions raised)."""
    out = []
    for m in (vt, torch):
        try:
            out.append(fn(m))
        except Exception as e:  # noqa: BLE001
            out.append(e)
    return out


# ---- item 4: concurrent backward into one leaf ----

def test_concurrent_backward_into_one_leaf_loses_no_update():
    x = vt.ones(4096, requires_grad=True)
    y = (x * 2.0).sum()
    threads, per_thread = 8, 10
    barrier = threading.Barrier(threads)

    def work():
        barrier.wait()
        for _ in range(per_thread):
            y.backward(retain_graph=True)

    for _ in range(5):
        x.grad = None
        ts = [threading.Thread(target=work) for _ in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert x.grad.min().item() == x.grad.max().item() == 2.0 * threads * per_thread


def test_concurrent_backward_into_a_retained_non_leaf():
    x = vt.ones(1024, requires_grad=True)
    h = x * 1.0
    h.retain_grad()
    y = (h * 3.0).sum()
    ts = [threading.Thread(target=lambda: [y.backward(retain_graph=True) for _ in range(10)]) for _ in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert h.grad.min().item() == h.grad.max().item() == 3.0 * 80
    assert x.grad.min().item() == 3.0 * 80


# ---- item 5: index tensors modified before backward ----

@pytest.mark.parametrize("case", ["getitem", "embedding"])
def test_modified_index_tensors_are_refused_at_backward(case):
    def run(m):
        a = m.arange(6.0).requires_grad_()
        i = m.tensor([0, 2])
        if case == "getitem":
            y = a[i]
        else:
            y = m.nn.functional.embedding(i, a.reshape(6, 1) * 1.0)
        i.add_(1)
        y.sum().backward()
        return a.grad.tolist()

    v, t = both(run)
    assert isinstance(t, RuntimeError) and isinstance(v, RuntimeError), (v, t)
    assert "modified by an inplace operation" in str(v)


def test_unmodified_index_tensors_still_differentiate():
    def run(m):
        a = m.arange(6.0).requires_grad_()
        i = m.tensor([0, 2, 2])
        (a[i] * m.tensor([1.0, 2.0, 3.0])).sum().backward()
        return a.grad.tolist()

    v, t = both(run)
    assert v == t


# ---- item 8: gradients at non-differentiable points ----

@pytest.mark.parametrize("name, fn", [
    ("norm", lambda m, x: x.norm()),
    ("norm p=3", lambda m, x: x.norm(p=3)),
    ("norm p=0.5", lambda m, x: x.norm(p=0.5)),
    ("norm p=1", lambda m, x: x.norm(p=1)),
    ("norm dim", lambda m, x: x.reshape(2, 2).norm(dim=1).sum()),
    ("std", lambda m, x: (x + 1.0).std()),
    ("std dim", lambda m, x: (x + 1.0).reshape(2, 2).std(dim=1).sum()),
    ("var", lambda m, x: (x + 1.0).var()),
])
def test_no_nan_gradient_at_zero(name, fn):
    def run(m):
        x = m.zeros(4, requires_grad=True)
        fn(m, x).backward()
        return x.grad.tolist()

    v, t = both(run)
    assert v == t, (v, t)


def test_atan2_gradient_at_the_origin_is_zero():
    def run(m):
        a = m.tensor([0.0, 1.0], requires_grad=True)
        b = m.tensor([0.0, 2.0], requires_grad=True)
        m.atan2(a, b).sum().backward()
        return [round(v, 6) for v in a.grad.tolist() + b.grad.tolist()]

    v, t = both(run)
    assert v == t, (v, t)


@pytest.mark.parametrize("other", [50000, -46341, 2**31 - 1, 7])
def test_atan2_gradient_with_an_integer_operand_against_float64(other):
    """Note [atan2's integer operand]: d/dy atan2(y, x) = x / (x^2 + y^2) with x an int32 tensor past 46340, whose
    square wraps in int32 (torch's gradient there has the wrong sign); float64 is the reference."""
    y = vt.tensor([1.0, -3.5, 1e4], requires_grad=True)
    vt.atan2(y, vt.tensor(other, dtype=vt.int32)).sum().backward()
    yd = torch.tensor([1.0, -3.5, 1e4], dtype=torch.float64)
    want = (other / (other * other + yd * yd)).tolist()
    assert y.grad.tolist() == pytest.approx(want, rel=1e-6), (y.grad.tolist(), want)


def test_zero_safe_roots_keep_second_order_gradients():
    x = vt.tensor([3.0, 4.0], requires_grad=True)
    xt = torch.tensor([3.0, 4.0], requires_grad=True)
    gv, = vt.autograd.grad(x.norm(), x, create_graph=True)
    gt, = torch.autograd.grad(xt.norm(), xt, create_graph=True)
    assert gv.tolist() == pytest.approx(gt.tolist())
    hv, = vt.autograd.grad(gv.sum(), x)
    ht, = torch.autograd.grad(gt.sum(), xt)
    assert hv.tolist() == pytest.approx(ht.tolist())


# ---- item 9: hooks and kernels returning gradients of the wrong shape or dtype ----

@pytest.mark.parametrize("leaf", [True, False])
@pytest.mark.parametrize("bad", ["shape", "dtype"])
def test_a_hook_may_not_change_shape_or_dtype(leaf, bad):
    def run(m):
        x = m.ones(3, requires_grad=True)
        h = x if leaf else x * 2.0
        h.register_hook(lambda g: m.ones(5) if bad == "shape" else g.long())
        (h * 1.0).sum().backward()
        return x.grad.tolist()

    v, t = both(run)
    assert isinstance(t, RuntimeError) and isinstance(v, RuntimeError), (v, t)
    assert "hook has changed the" in str(v) and "internal" not in str(v).lower()


def test_a_hook_returning_the_same_shape_still_replaces_the_gradient():
    def run(m):
        x = m.ones(3, requires_grad=True)
        h = x * 2.0
        h.register_hook(lambda g: g * 10.0)
        x.register_hook(lambda g: g + 1.0)
        h.sum().backward()
        return x.grad.tolist()

    v, t = both(run)
    assert v == t


def test_a_kernel_returning_the_wrong_shape_is_a_user_error():
    # A CPU kernel registered from Python replaces the built-in one for good: run it in its own interpreter.
    code = textwrap.dedent("""
        import vibetensor.library as vlib
        import vibetensor.torch as vt
        lib = vlib.Library("vt", "IMPL")
        lib.impl("expm1", lambda self: vt.zeros(2, 1), "CPU")   # promises [3], returns [2, 1]
        x = vt.ones(3, requires_grad=True)
        try:
            (vt.expm1(x) * 1.0).sum().backward()
        except RuntimeError as e:
            print(e)
    """)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    msg = r.stdout
    assert "invalid gradient" in msg and "report" not in msg and "internal" not in msg.lower(), msg


def test_a_custom_function_returning_a_broadcastable_gradient_is_summed_down():
    class Scale(vt.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2.0

        @staticmethod
        def backward(ctx, g):
            return g.expand(4, 3) * 2.0  # a [4, 3] gradient for a [3] input: summed, as torch

    x = vt.ones(3, requires_grad=True)
    Scale.apply(x).sum().backward()
    assert x.grad.tolist() == [8.0, 8.0, 8.0]


# ---- item 10: retain_grad follows in-place ops ----

@pytest.mark.parametrize("op", ["mul_", "add_", "view_mul_"])
def test_retain_grad_sees_the_gradient_of_the_latest_version(op):
    def run(m):
        x = m.ones(3, requires_grad=True)
        y = x * 1.0
        y.retain_grad()
        if op == "mul_":
            y.mul_(3.0)
        elif op == "add_":
            y.add_(1.0)
        else:
            y[:2].mul_(5.0)
        (y * 2.0).sum().backward()
        return y.grad.tolist(), x.grad.tolist()

    v, t = both(run)
    assert v == t, (v, t)
