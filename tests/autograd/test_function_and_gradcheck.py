"""Custom vt.autograd.Function (PyNode), finite-difference gradcheck in float64, and second-order gradients
(create_graph) against torch."""
import numpy as np
import pytest
import torch

import vibetensor.torch as vt
from vibetensor.autograd import Function, gradcheck, gradgradcheck


def rand64(*shape, seed=0, requires_grad=True):
    a = np.random.default_rng(seed).standard_normal(shape)
    return vt.from_numpy(a).requires_grad_(requires_grad)


class Cube(Function):
    @staticmethod
    def forward(ctx, x, scale):
        ctx.save_for_backward(x)
        ctx.scale = scale
        return x * x * x * scale

    @staticmethod
    def backward(ctx, g):
        x, = ctx.saved_tensors
        return g * 3 * x * x * ctx.scale, None


class MulAdd(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b + a

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        ga = g * (b + 1) if ctx.needs_input_grad[0] else None
        gb = g * a if ctx.needs_input_grad[1] else None
        return ga, gb


class WrongShape(Function):
    @staticmethod
    def forward(ctx, x):
        return x * 2

    @staticmethod
    def backward(ctx, g):
        return vt.ones(5, dtype=g.dtype)


def test_custom_function_forward_and_backward():
    x = rand64(4)
    y = Cube.apply(x, 2.0)
    assert y.grad_fn.name() == "CubeBackward"
    y.sum().backward()
    xn = x.detach().numpy()
    np.testing.assert_allclose(x.grad.numpy(), 6 * xn * xn, rtol=1e-12)


def test_custom_function_needs_input_grad_and_broadcast_grads():
    a = rand64(3, 4)
    b = rand64(4, seed=1, requires_grad=False)
    MulAdd.apply(a, b).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), np.broadcast_to(b.numpy() + 1, (3, 4)), rtol=1e-12)
    assert b.grad is None


def test_custom_function_gradcheck():
    assert gradcheck(lambda a, b: MulAdd.apply(a, b), (rand64(2, 3), rand64(2, 3, seed=2)))


def test_custom_function_without_grad_returns_plain_output():
    x = rand64(3, requires_grad=False)
    assert Cube.apply(x, 1.0).grad_fn is None
    with vt.no_grad():
        assert Cube.apply(rand64(3), 1.0).grad_fn is None


def test_custom_function_shape_mismatch_names_function_and_shapes():
    x = rand64(2, 3)
    with pytest.raises(RuntimeError, match=r"Function WrongShapeBackward returned an invalid gradient at index 0 - "
                                           r"got \[5\] but expected shape compatible with \[2, 3\]"):
        WrongShape.apply(x).sum().backward()


def test_custom_function_saved_tensor_version_check():
    x = rand64(3)
    h = x * 1
    y = Cube.apply(h, 1.0)
    h.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


GRADCHECK_FNS = {
    "mul_add_broadcast": (lambda a, b: a * b + b, [(2, 3), (3,)]),
    "div": (lambda a, b: a / (b * b + 1), [(2, 3), (2, 3)]),
    "pow": (lambda a, b: (a * a + 1) ** b, [(3,), (3,)]),
    "exp_log_sqrt": (lambda a: ((a * a + 1).log() + (a * a + 1).sqrt()).exp(), [(2, 3)]),
    "activations": (lambda a: a.tanh() + a.sigmoid() + vt.nn.functional.gelu(a) + vt.nn.functional.silu(a), [(5,)]),
    "gelu_tanh": (lambda a: vt.nn.functional.gelu(a, approximate="tanh"), [(5,)]),
    "reductions": (lambda a: a.sum(0) * a.mean(1, keepdim=True), [(3, 4)]),
    "views": (lambda a: a.t().reshape(2, 6)[1, 1:5:2] * a[0].unsqueeze(0).expand(2, 2), [(6, 2)]),
    "mm": (lambda a, b: a @ b, [(2, 3), (3, 4)]),
    "bmm": (lambda a, b: vt.bmm(a, b), [(2, 2, 3), (2, 3, 2)]),
    "where_masked_fill": (lambda a, b: vt.where(a > 0, a, b).masked_fill(b > 0.5, 0.0), [(2, 3), (2, 3)]),
    "cast_roundtrip": (lambda a: a.to(vt.float32).to(vt.float64) * 0 + a * 2, [(3,)]),
}


@pytest.mark.parametrize("name", sorted(GRADCHECK_FNS))
def test_gradcheck(name):
    fn, shapes = GRADCHECK_FNS[name]
    inputs = tuple(rand64(*s, seed=i + 3) for i, s in enumerate(shapes))
    assert gradcheck(fn, inputs)


def test_gradcheck_catches_a_wrong_formula():
    class Wrong(Function):
        @staticmethod
        def forward(ctx, x):
            return x * x

        @staticmethod
        def backward(ctx, g):
            return g * 3
    assert not gradcheck(lambda x: Wrong.apply(x), (rand64(3),), raise_exception=False)


SECOND_ORDER = {
    "mul": lambda m, a, b: (a * b * a).sum(),
    "exp": lambda m, a, b: (a.exp() * b).sum(),
    "tanh": lambda m, a, b: (a.tanh() * b).sum(),
    "sum": lambda m, a, b: (a.sum(1) ** 2).sum() + (a * b).sum(),
    "mm": lambda m, a, b: (m.mm(a, b.t()) ** 2).sum(),
    "sigmoid_div_pow": lambda m, a, b: (a.sigmoid() / (b * b + 1) + a ** 3).sum(),
}


@pytest.mark.parametrize("name", sorted(SECOND_ORDER))
def test_second_order_against_torch(name):
    fn = SECOND_ORDER[name]
    rng = np.random.default_rng(7)
    a_np, b_np = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    results = []
    for m in (torch, vt):
        a = m.tensor(a_np, dtype=m.float64, requires_grad=True)
        b = m.tensor(b_np, dtype=m.float64, requires_grad=True)
        ga, gb = m.autograd.grad(fn(m, a, b), [a, b], create_graph=True)
        assert ga.requires_grad
        (ga * ga).sum().backward()
        results.append((ga.detach().numpy(), a.grad.numpy(), b.grad.numpy()))
    for got, want in zip(results[1], results[0]):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["mul", "exp", "tanh", "mm"])
def test_gradgradcheck(name):
    fn = SECOND_ORDER[name]
    assert gradgradcheck(lambda a, b: fn(vt, a, b), (rand64(2, 3, seed=1), rand64(2, 3, seed=2)))


def test_create_graph_through_a_scatter_view():
    # The select backward scatters into zeros with an in-place copy; under create_graph that copy is recorded
    # (CopySlices), so the gradient differentiates again.
    a = rand64(3, 4)
    g, = vt.autograd.grad((a[1] ** 2).sum(), a, create_graph=True)
    assert g.requires_grad
    (g * g).sum().backward()
    expected = np.zeros((3, 4))
    expected[1] = 8 * a.detach().numpy()[1]
    np.testing.assert_allclose(a.grad.numpy(), expected, rtol=1e-12)
