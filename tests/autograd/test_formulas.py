"""Every backward formula against torch on the same inputs: float64 and float32, broadcasting, non-contiguous
inputs, node names."""
import numpy as np
import pytest
import torch

import vibetensor.torch as vt

from ag_helpers import check_grads, leaves

DTYPES = ["float64", "float32"]

BINARY = {
    "add": lambda m, a, b: a + b,
    "add_alpha": lambda m, a, b: m.add(a, b, alpha=2.5),
    "sub": lambda m, a, b: a - b,
    "sub_alpha": lambda m, a, b: m.sub(a, b, alpha=-1.5),
    "mul": lambda m, a, b: a * b,
    "div": lambda m, a, b: a / b,
    "pow_tensor": lambda m, a, b: a.abs() ** b,
    "where": lambda m, a, b: m.where(a > b, a, b),
}

UNARY = {
    "neg": lambda m, a: -a,
    "exp": lambda m, a: a.exp(),
    "log": lambda m, a: (a * a + 0.5).log(),
    "sqrt": lambda m, a: (a * a + 0.5).sqrt(),
    "tanh": lambda m, a: a.tanh(),
    "sigmoid": lambda m, a: a.sigmoid(),
    "relu": lambda m, a: a.relu(),
    "gelu": lambda m, a: m.nn.functional.gelu(a),
    "gelu_tanh": lambda m, a: m.nn.functional.gelu(a, approximate="tanh"),
    "silu": lambda m, a: m.nn.functional.silu(a),
    "pow_scalar": lambda m, a: a ** 3,
    "pow_half": lambda m, a: (a * a + 0.5) ** 0.5,
    "pow_zero": lambda m, a: a ** 0,
    "rpow": lambda m, a: 2.0 ** a,
    "scalar_ops": lambda m, a: (2 * a - 1) / 3 + 0.5,
    "rdiv": lambda m, a: 1.0 / (a * a + 1),
    "sum_all": lambda m, a: a.sum(),
    "sum_dim": lambda m, a: a.sum(1),
    "sum_dims_keepdim": lambda m, a: a.sum((0, 2), keepdim=True),
    "sum_neg_dim": lambda m, a: a.sum(-1),
    "mean_all": lambda m, a: a.mean(),
    "mean_dim": lambda m, a: a.mean(dim=(1,)),
    "mean_keepdim": lambda m, a: a.mean(-1, keepdim=True),
    "view": lambda m, a: a.contiguous().view(6, 4) * 2,
    "reshape": lambda m, a: a.reshape(4, -1) * 2,
    "permute": lambda m, a: a.permute(2, 0, 1) * 2,
    "transpose": lambda m, a: a.transpose(0, 2) * 2,
    "unsqueeze": lambda m, a: a.unsqueeze(1) * 2,
    "squeeze": lambda m, a: a.unsqueeze(0).squeeze(0) * 2,
    "expand": lambda m, a: a[:, :1].expand(2, 5, 4) * 2,
    "select": lambda m, a: a.select(1, 2) * 2,
    "index_int": lambda m, a: a[1] * 2,
    "slice": lambda m, a: a[:, 1:3] * 2,
    "slice_step": lambda m, a: a[..., ::2] * 2,
    "narrow": lambda m, a: a.narrow(2, 1, 2) * 2,
    "flatten": lambda m, a: a.flatten(1) * 2,
    "to_float32": lambda m, a: a.to(m.float32) * 2,
    "clone": lambda m, a: a.clone() * 2,
    "contiguous": lambda m, a: a.transpose(0, 1).contiguous() * 2,
    "masked_fill": lambda m, a: a.masked_fill(a > 0.3, 1.5),
    "chain": lambda m, a: ((a.exp() * a).tanh() - a.sigmoid() * 2).sum(-1),
    "reuse": lambda m, a: a * a + a.exp() * a,
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(BINARY))
@pytest.mark.parametrize("shapes", [((3, 4), (3, 4)), ((2, 3, 4), (3, 1)), ((4,), (2, 1, 4)), ((3, 4), ())])
def test_binary(name, shapes, dtype):
    check_grads(BINARY[name], leaves(shapes, dtype), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_and_shape(name, dtype):
    check_grads(UNARY[name], leaves([(2, 3, 4)], dtype), dtype)


@pytest.mark.parametrize("name", ["mul", "div", "add", "where"])
def test_binary_noncontiguous(name):
    check_grads(BINARY[name], leaves([(3, 4), (3, 4)], noncontig=True))


@pytest.mark.parametrize("name", ["exp", "sum_dim", "permute", "slice", "tanh"])
def test_unary_noncontiguous(name):
    check_grads(UNARY[name], leaves([(2, 3, 4)], noncontig=True))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fn", [
    lambda m, a, b: m.mm(a, b),
    lambda m, a, b: a @ b,
    lambda m, a, b: m.matmul(a, b).relu(),
])
def test_mm(fn, dtype):
    check_grads(fn, leaves([(3, 4), (4, 5)], dtype), dtype)
    check_grads(fn, leaves([(3, 4), (4, 5)], dtype, noncontig=True), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_bmm_and_batched_matmul(dtype):
    check_grads(lambda m, a, b: m.bmm(a, b), leaves([(2, 3, 4), (2, 4, 5)], dtype), dtype)
    check_grads(lambda m, a, b: a @ b, leaves([(2, 3, 4), (4, 5)], dtype), dtype)
    check_grads(lambda m, a, b: a @ b, leaves([(4,), (4, 5)], dtype), dtype)


def test_mixed_dtype_inputs_get_their_own_dtype():
    (a, ta), = leaves([(3,)], "float32")
    (b, tb), = leaves([(3,)], "float64", seed=3)
    (a * b).sum().backward()
    (ta * tb).sum().backward()
    assert a.grad.dtype == vt.float32 and b.grad.dtype == vt.float64
    np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy(), rtol=1e-6)


def test_inplace_masked_fill_on_nonleaf():
    def fn(m, a):
        y = a * 2
        y.masked_fill_(a > 0, 0.0)
        return y
    check_grads(fn, leaves([(4, 5)]))


def test_inplace_add_on_nonleaf():
    def fn(m, a, b):
        y = a * 1.0
        y.add_(b, alpha=2)
        y.sub_(a)
        return y
    check_grads(fn, leaves([(3, 4), (3, 4)]))


@pytest.mark.parametrize("expr,name", [
    (lambda x: x + x, "AddBackward0"), (lambda x: x * x, "MulBackward0"), (lambda x: x.exp(), "ExpBackward0"),
    (lambda x: x ** 2, "PowBackward0"), (lambda x: x ** x, "PowBackward1"), (lambda x: x.sum(), "SumBackward0"),
    (lambda x: x.sum(0), "SumBackward1"), (lambda x: x.mean(), "MeanBackward0"), (lambda x: x.t(), "TransposeBackward0"),
    (lambda x: x.view(4), "ViewBackward0"), (lambda x: x @ x, "MmBackward0"), (lambda x: x.relu(), "ReluBackward0"),
    (lambda x: x.to(vt.float32), "ToCopyBackward0"), (lambda x: x[0], "SelectBackward0"),
])
def test_node_names_match_torch(expr, name):
    x = vt.ones(2, 2, dtype=vt.float64, requires_grad=True)
    assert expr(x).grad_fn.name() == name


def test_no_formula_raises_at_backward():
    x = vt.ones(3, requires_grad=True)
    y = x.floor_divide(x)  # no formula (nor in torch): forward works, backward says what is missing
    assert y.requires_grad
    with pytest.raises(NotImplementedError, match="vt::floor_divide"):
        y.sum().backward()


def test_non_float_outputs_do_not_require_grad():
    x = vt.ones(3, requires_grad=True)
    assert not (x > 0).requires_grad
    assert not x.argmax().requires_grad
    assert not x.to(vt.int64).requires_grad
