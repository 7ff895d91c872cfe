"""Autograd for ops defined after import (vibetensor.library here; native plugins in tests/abi/): every op gets an
autograd slot when it is defined, so its outputs carry history and backward either runs the backward registered
with register_autograd (torch.library's convention) or says the derivative is missing; composite=True ops
record the graph of the vibetensor ops their kernel calls. Gradients are checked against torch."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

import vibetensor.library as vlib
import vibetensor.torch as vt
from vibetensor.autograd import gradcheck

_names = (f"agext{i}" for i in itertools.count())


def numpy_square_op():
    """An op whose CPU kernel leaves vibetensor (NumPy), as in the issue's example."""
    ns = next(_names)
    lib = vlib.Library(ns, "DEF")
    lib.define("square(Tensor x) -> Tensor")
    lib.impl("square", lambda x: vt.from_numpy(x.numpy() ** 2), "CPU")
    return ns, getattr(vt.ops, ns).square


def test_op_without_backward_says_so_instead_of_dropping_the_gradient():
    ns, square = numpy_square_op()
    x = vt.tensor([2.0], requires_grad=True)
    y = square(x)
    assert y.requires_grad and y.grad_fn is not None
    with pytest.raises(NotImplementedError, match=f"the derivative for '{ns}::square' is not implemented; "
                                                  "register a backward with vibetensor.library.register_autograd"):
        (y + x).sum().backward()
    with vt.no_grad():  # outside autograd nothing changes
        assert not square(x).requires_grad


def test_register_autograd_gives_the_right_gradient():
    ns, square = numpy_square_op()

    def setup_context(ctx, inputs, output):
        (x,) = inputs
        ctx.save_for_backward(x)

    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 2 * x

    vlib.register_autograd(f"{ns}::square", backward, setup_context=setup_context)
    x = vt.tensor([2.0], requires_grad=True)
    (square(x) + x).sum().backward()
    assert x.grad.tolist() == [5.0]  # d/dx (x^2 + x) at 2
    xd = vt.tensor(np.random.default_rng(0).standard_normal(5), dtype=vt.float64, requires_grad=True)
    assert gradcheck(square, (xd,))


def test_register_autograd_with_non_tensor_and_keyword_arguments(rng):
    ns = next(_names)
    lib = vlib.Library(ns, "DEF")
    lib.define("scaled_mul(Tensor a, Tensor b, float k, *, bool negate=False) -> Tensor")

    def kernel(a, b, k, *, negate):
        out = vt.from_numpy(a.numpy() * b.numpy() * k)
        return -out if negate else out

    lib.impl("scaled_mul", kernel, "CPU")

    def setup_context(ctx, inputs, output):
        a, b, k, negate = inputs
        ctx.save_for_backward(a, b)
        ctx.sign = (-1.0 if negate else 1.0) * k

    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        ga = grad * b * ctx.sign if ctx.needs_input_grad[0] else None
        gb = grad * a * ctx.sign if ctx.needs_input_grad[1] else None
        return ga, gb, None, None

    vlib.register_autograd(f"{ns}::scaled_mul", backward, setup_context=setup_context)
    an, bn = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    a, b = vt.tensor(an, requires_grad=True), vt.tensor(bn)
    out = getattr(vt.ops, ns).scaled_mul(a, b, 1.5, negate=True)
    g = rng.standard_normal((2, 3))
    out.backward(vt.tensor(g))
    ta = torch.tensor(an, requires_grad=True)
    (ta * torch.tensor(bn) * -1.5).backward(torch.tensor(g))
    np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy(), rtol=1e-12)
    assert b.grad is None


def test_composite_op_records_the_graph_of_its_kernel(rng):
    ns = next(_names)
    lib = vlib.Library(ns, "DEF")
    lib.define("softplus2(Tensor x, float beta) -> Tensor", composite=True)
    lib.impl("softplus2", lambda x, beta: (1 + (x * beta).exp()).log() / beta, "CPU")
    op = getattr(vt.ops, ns).softplus2
    assert op.composite
    xn = rng.standard_normal((3, 4))
    x = vt.tensor(xn, requires_grad=True)
    op(x, 2.0).sum().backward()
    tx = torch.tensor(xn, requires_grad=True)
    torch.nn.functional.softplus(tx, beta=2.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-10)


def test_builtin_composites_come_from_the_flag():
    """The ops that used to be listed by hand as decompositions are composite through def()."""
    for name in ("softmax", "log_softmax", "layer_norm", "rms_norm", "var", "std", "norm", "embedding",
                 "cross_entropy", "dropout"):
        assert getattr(vt.ops.vt, name).composite, name
    assert not vt.ops.vt.mul.composite
    assert not vt.ops.vt.logsumexp.composite  # its gradient is torch's formula (LogsumexpBackward0)


def test_register_autograd_errors():
    with pytest.raises(ValueError, match="no operator named 'nowhere::op'"):
        vlib.register_autograd("nowhere::op", lambda ctx, g: g)
    with pytest.raises(TypeError, match="expects a callable backward"):
        vlib.register_autograd("vt::mul", None)
