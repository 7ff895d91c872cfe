"""The formulas of core/src/autograd/formulas_{more,reduce,index}.cpp against torch on the same inputs (float64
and float32, broadcasting, non-contiguous inputs, ties and zeros where the rule matters), by finite differences
in float64 (gradcheck), and second order (gradgradcheck, and create_graph results against torch)."""
import numpy as np
import pytest
import torch

import vibetensor.torch as vt
from vibetensor.autograd import gradcheck, gradgradcheck

from ag_helpers import check_grads, leaves, to_np

DTYPES = ["float64", "float32"]


def F(m):
    return m.nn.functional


UNARY = {
    "exp2": lambda m, a: a.exp2(),
    "expm1": lambda m, a: a.expm1(),
    "log2": lambda m, a: (a * a + 0.5).log2(),
    "log10": lambda m, a: (a * a + 0.5).log10(),
    "log1p": lambda m, a: (a * a).log1p(),
    "sin": lambda m, a: a.sin(),
    "cos": lambda m, a: a.cos(),
    "tan": lambda m, a: (a * 0.5).tan(),
    "asin": lambda m, a: (a.tanh() * 0.9).asin(),
    "acos": lambda m, a: (a.tanh() * 0.9).acos(),
    "atan": lambda m, a: a.atan(),
    "sinh": lambda m, a: a.sinh(),
    "cosh": lambda m, a: a.cosh(),
    "erf": lambda m, a: a.erf(),
    "erfc": lambda m, a: a.erfc(),
    "reciprocal": lambda m, a: (a * a + 0.5).reciprocal(),
    "square": lambda m, a: m.square(a),
    "frac": lambda m, a: (a * 3).frac() * a,
    "sign_floor_ceil_trunc_round": lambda m, a: a * ((a * 3).sign() + (a * 3).floor() + (a * 3).ceil()
                                                     + (a * 3).trunc() + (a * 3).round()),
    "abs": lambda m, a: a.abs(),
    "logsigmoid": lambda m, a: F(m).logsigmoid(a * 4),
    "mish": lambda m, a: F(m).mish(a * 3),
    "softplus": lambda m, a: F(m).softplus(a * 3),
    "softplus_beta_threshold": lambda m, a: F(m).softplus(a * 3, beta=2.0, threshold=4.0),
    "leaky_relu": lambda m, a: F(m).leaky_relu(a, 0.2),
    "elu": lambda m, a: F(m).elu(a, alpha=1.5),
    "hardtanh": lambda m, a: F(m).hardtanh(a * 2, -1.5, 1.0),
    "clamp": lambda m, a: a.clamp(-0.5, 0.7),
    "clamp_min": lambda m, a: a.clamp(min=-0.5),
    "clamp_max": lambda m, a: a.clamp_max(0.3),
    "clamp_crossed": lambda m, a: a.clamp(0.5, -0.5),  # min > max: every element is max, no gradient
    "amax_all": lambda m, a: a.amax(),
    "amax_dim": lambda m, a: a.amax(1),
    "amax_dims_keepdim": lambda m, a: a.amax((0, 2), keepdim=True),
    "amin_neg_dim": lambda m, a: a.amin(-1),
    "max_all": lambda m, a: a.max(),
    "min_all": lambda m, a: a.min(),
    "max_dim": lambda m, a: a.max(1).values,
    "max_dim_keepdim": lambda m, a: a.max(-1, keepdim=True)[0],
    "min_dim": lambda m, a: m.min(a, 0).values,
    "prod_all": lambda m, a: a.prod(),
    "prod_dim": lambda m, a: a.prod(1),
    "prod_keepdim": lambda m, a: a.prod(2, keepdim=True),
    "cumsum": lambda m, a: a.cumsum(1),
    "cumsum_last": lambda m, a: a.cumsum(-1),
    "cumprod": lambda m, a: a.cumprod(2),
    "cumprod_first": lambda m, a: a.cumprod(0),
    "cat_self": lambda m, a: m.cat([a, a * 2, a[:, :1]], 1),
    "stack": lambda m, a: m.stack([a, a.exp()], 1),
    "split": lambda m, a: m.cat([p * (i + 1) for i, p in enumerate(a.split([1, 2], 1))], 1),
    "chunk": lambda m, a: a.chunk(2, -1)[1] * 3,
    "unbind": lambda m, a: a.unbind(1)[2] * a.unbind(1)[0],
    "diagonal": lambda m, a: a.diagonal(1, 1, 2) * 2,
    "diagonal_neg": lambda m, a: a.diagonal(-1, 2, 0) * 2,
    "as_strided": lambda m, a: a.as_strided((3, 2), (4, 2), 1) * 2,
    "as_strided_overlap": lambda m, a: a.as_strided((4, 3), (2, 1), 3) * 2,
    "as_strided_broadcast": lambda m, a: a.as_strided((3, 4), (0, 1), 5) * 2,
}


def inplace(name):
    def fn(m, a):
        y = a * 1.5
        getattr(y, name)()
        return y
    return fn


INPLACE = {name + "_": inplace(name + "_") for name in
           ["exp", "sin", "cos", "tanh", "sigmoid", "sqrt", "reciprocal", "neg", "abs", "erf", "floor", "atan"]}
INPLACE["sqrt_"] = lambda m, a: (a * a + 0.5).sqrt_()
INPLACE["reciprocal_"] = lambda m, a: (a * a + 0.5).reciprocal_()
INPLACE["clamp_"] = lambda m, a: (a * 1).clamp_(-0.3, 0.4)
INPLACE["relu_"] = lambda m, a: F(m).relu(a * 1, inplace=True)
INPLACE["silu_"] = lambda m, a: F(m).silu(a * 1, inplace=True)
INPLACE["mish_"] = lambda m, a: F(m).mish(a * 1, inplace=True)
INPLACE["elu_inplace"] = lambda m, a: F(m).elu(a * 1, inplace=True)
INPLACE["pow_"] = lambda m, a: (a * a + 0.5).pow_(1.5)
INPLACE["fill_"] = lambda m, a: (a * 1).fill_(2.0) * a
INPLACE["zero_"] = lambda m, a: (a * 1).zero_() + a
INPLACE["uniform_"] = lambda m, a: (a * 1).uniform_() * 0 + a


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary(name, dtype):
    check_grads(UNARY[name], leaves([(2, 3, 4)], dtype), dtype)


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_noncontiguous(name):
    check_grads(UNARY[name], leaves([(2, 3, 4)], noncontig=True))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(INPLACE))
def test_inplace_variants(name, dtype):
    check_grads(INPLACE[name], leaves([(2, 3, 4)], dtype), dtype)


BINARY = {
    "maximum": lambda m, a, b: m.maximum(a, b),
    "minimum": lambda m, a, b: m.minimum(a, b),
    "atan2": lambda m, a, b: m.atan2(a, b),
    "remainder": lambda m, a, b: m.remainder(a * 3, b),
    "fmod": lambda m, a, b: m.fmod(a * 3, b),
    "clamp_min_tensor": lambda m, a, b: a.clamp(min=b),
    "clamp_max_tensor": lambda m, a, b: a.clamp_max(b),
    "clamp_both_tensor": lambda m, a, b: a.clamp(b - 0.3, b + 0.4),
    "cat": lambda m, a, b: m.cat([a, b.expand(a.shape)], 0),
    "mul_": lambda m, a, b: (a * 1).mul_(b),
    "div_": lambda m, a, b: (a * 1).div_(b * b + 0.5),
    "atan2_": lambda m, a, b: (a * 1).atan2_(b),
    "pow_tensor_": lambda m, a, b: (a * a + 0.5).pow_(b),
    "gt_": lambda m, a, b: (a * 1).gt_(b) * a,
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(BINARY))
@pytest.mark.parametrize("shapes", [((3, 4), (3, 4)), ((2, 3, 4), (3, 1)), ((3, 4), ())])
def test_binary(name, shapes, dtype):
    if name == "cat" or name.endswith("_"):
        shapes = (shapes[0], shapes[0][-1:] if name == "cat" else shapes[1])
    check_grads(BINARY[name], leaves(shapes, dtype), dtype)


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_noncontiguous(name):
    check_grads(BINARY[name], leaves([(3, 4), (3, 4)], noncontig=True))


def test_clamp_tensor_and_number_bounds():
    # A tensor bound that is not 0-dim beside a number is torch's TypeError (its two overloads); both tensors
    # broadcast and carry gradients.
    def fn(m, a, b):
        return m.clamp(a, b, m.tensor(0.5, dtype=a.dtype))
    check_grads(fn, leaves([(3, 4), (4,)]))
    with pytest.raises(TypeError, match="invalid combination of arguments"):
        vt.clamp(vt.ones(3, 4), vt.ones(4), 0.5)


def pair(vals, dtype="float64"):
    arr = np.array(vals, dtype=dtype)
    return vt.tensor(arr.tolist(), dtype=getattr(vt, dtype), requires_grad=True), \
        torch.tensor(arr.tolist(), dtype=getattr(torch, dtype), requires_grad=True)


@pytest.mark.parametrize("fn", [
    lambda m, a: a.amax(),              # three-way tie: a third each
    lambda m, a: a.max(),
    lambda m, a: a.reshape(2, 3).amax(1),
    lambda m, a: a.reshape(2, 3).max(1).values,   # the index torch returned takes all of it
    lambda m, a: a.reshape(2, 3).min(0).values,
    lambda m, a: a.min(),
    lambda m, a: m.maximum(a, m.ones_like(a) * 2.0),  # ties with the other input: half each
    lambda m, a: a.clamp(1.0, 2.0),     # at the bounds: the gradient passes
    lambda m, a: F(m).hardtanh(a, -1.0, 2.0),  # at the bounds: it does not
    lambda m, a: a.clamp(min=m.full_like(a, 2.0)),
    lambda m, a: F(m).elu(a - 1.0) + F(m).leaky_relu(a - 1.0),  # a kink at zero
])
def test_ties_and_kinks(fn):
    check_grads(fn, [pair([2.0, 1.0, 2.0, -1.0, 2.0, 0.5])])


@pytest.mark.parametrize("vals", [
    [1.5, 2.0, -0.5, 3.0],     # no zero
    [1.5, 0.0, -0.5, 3.0],     # one zero: it takes the product of the others
    [0.0, 2.0, 0.0, 3.0],      # two zeros: no gradient anywhere
])
@pytest.mark.parametrize("fn", [
    lambda m, a: a.prod(),
    lambda m, a: a.reshape(2, 2).prod(1),
    lambda m, a: a.reshape(2, 2).prod(0, keepdim=True),
    lambda m, a: a.cumprod(0),
    lambda m, a: a.reshape(2, 2).cumprod(1),
])
def test_zeros_in_products(vals, fn):
    check_grads(fn, [pair(vals)])
    a = vt.tensor(vals, dtype=vt.float64, requires_grad=True)
    assert gradgradcheck(lambda x: fn(vt, x), (a,))


def test_cumprod_zeros_second_order_matches_torch():
    vals = [1.5, 0.0, -0.5, 0.0, 2.0]
    results = []
    for m in (torch, vt):
        a = m.tensor(vals, dtype=m.float64, requires_grad=True)
        g, = m.autograd.grad((a.cumprod(0) * m.arange(1, 6, dtype=m.float64)).sum(), a, create_graph=True)
        (g * g).sum().backward()
        results.append((to_np(g), to_np(a.grad)))
    np.testing.assert_allclose(results[1][0], results[0][0], rtol=1e-12)
    np.testing.assert_allclose(results[1][1], results[0][1], rtol=1e-12)


def test_max_dim_returns_indices_without_grad():
    a, _ = pair([1.0, 3.0, 2.0, 5.0, 4.0, 0.0])
    values, indices = a.reshape(2, 3).max(1)
    assert values.grad_fn.name() == "MaxBackward0"
    assert not indices.requires_grad and indices.grad_fn is None


@pytest.mark.parametrize("dtype", DTYPES)
def test_cat_stack_many_inputs_and_empty(dtype):
    def fn(m, a, b, c):
        return m.cat([a, m.empty(0, dtype=a.dtype), b, c.t()], 0) * 2
    check_grads(fn, leaves([(2, 3), (1, 3), (3, 4)], dtype), dtype)
    check_grads(lambda m, a, b: m.stack([a, b, a], -1), leaves([(2, 3), (2, 3)], dtype), dtype)
    (a, ta), (b, tb) = leaves([(2, 3), (2, 3)], dtype)
    c = vt.zeros(2, 3, dtype=getattr(vt, dtype))  # only some inputs require grad
    vt.cat([c, a, c], 1).sum().backward()
    assert a.grad is not None and b.grad is None


def index_put(m, x, indices, values, accumulate):
    if m is torch:
        return x.index_put_(tuple(indices), values, accumulate=accumulate)
    return vt.ops.vt.index_put_(x, list(indices), values, accumulate)


@pytest.mark.parametrize("accumulate", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
def test_index_put_gradients(accumulate, dtype):
    def fn(m, a, v):
        x = a * 2
        idx = m.tensor([2, 0, 2])  # a repeated row
        index_put(m, x, [idx], v, accumulate)
        return x * a
    check_grads(fn, leaves([(3, 4), (3, 4)], dtype), dtype)
    check_grads(fn, leaves([(3, 4), (4,)], dtype), dtype)  # values broadcast over the rows

    def setitem(m, a, v):
        x = a * 1
        x[m.tensor([0, 2]), 1:3] = v
        return x
    check_grads(setitem, leaves([(3, 4), (2, 2)], dtype), dtype)


def test_index_put_into_fresh_tensor_makes_history():
    (v, tv), = leaves([(2,)])
    for m, val in ((vt, v), (torch, tv)):
        x = m.zeros(4, dtype=m.float64)
        index_put(m, x, [m.tensor([3, 1])], val * 3, False)
        assert x.requires_grad
        (x * m.arange(4, dtype=m.float64)).sum().backward()
    np.testing.assert_allclose(v.grad.numpy(), tv.grad.numpy())


@pytest.mark.parametrize("expr,name", [
    (lambda x: x.sin(), "SinBackward0"), (lambda x: x.amax(), "AmaxBackward0"), (lambda x: x.max(), "MaxBackward1"),
    (lambda x: x.prod(), "ProdBackward0"), (lambda x: x.prod(0), "ProdBackward1"),
    (lambda x: x.cumsum(0), "CumsumBackward0"), (lambda x: x.cumprod(0), "CumprodBackward0"),
    (lambda x: vt.cat([x, x]), "CatBackward0"), (lambda x: x.clamp(0, 1), "ClampBackward1"),
    (lambda x: x.clamp(min=x * 0), "ClampBackward0"), (lambda x: vt.maximum(x, x), "MaximumBackward0"),
    (lambda x: vt.nn.functional.hardtanh(x), "HardtanhBackward0"), (lambda x: vt.square(x), "PowBackward0"),
    (lambda x: vt.remainder(x, 2.0), "RemainderBackward0"), (lambda x: vt.remainder(x, x), "RemainderBackward1"),
    (lambda x: x.as_strided((2,), (1,), 0), "AsStridedBackward0"), (lambda x: x.diagonal(), "DiagonalBackward0"),
])
def test_node_names_match_torch(expr, name):
    x = vt.ones(2, 2, dtype=vt.float64, requires_grad=True)
    assert expr(x).grad_fn.name() == name


def rand64(*shape, seed=0):
    return vt.from_numpy(np.random.default_rng(seed).standard_normal(shape)).requires_grad_()


GRADCHECK = dict(UNARY)
GRADCHECK.pop("sign_floor_ceil_trunc_round")  # finite differences straddle the jumps
GRADCHECK.pop("frac")


@pytest.mark.parametrize("name", sorted(GRADCHECK))
def test_gradcheck_unary(name):
    fn = GRADCHECK[name]
    assert gradcheck(lambda a: fn(vt, a), (rand64(2, 3, 4, seed=5),))


@pytest.mark.parametrize("name", sorted(BINARY))
def test_gradcheck_binary(name):
    fn = BINARY[name]
    shapes = ((3, 4), (4,)) if name == "cat" else ((3, 4), (3, 4))
    assert gradcheck(lambda a, b: fn(vt, a, b), (rand64(*shapes[0], seed=1), rand64(*shapes[1], seed=2)))


SECOND_ORDER = ["exp2", "log2", "sin", "cos", "tan", "asin", "atan", "sinh", "erf", "reciprocal", "square",
                "logsigmoid", "mish", "softplus", "elu", "leaky_relu", "clamp", "amax_dim", "max_all", "max_dim",
                "prod_dim", "prod_all", "cumsum", "cumprod", "cat_self", "stack", "split", "unbind", "diagonal",
                "as_strided", "as_strided_overlap", "as_strided_broadcast"]


@pytest.mark.parametrize("name", SECOND_ORDER)
def test_gradgradcheck_unary(name):
    fn = UNARY[name]
    assert gradgradcheck(lambda a: fn(vt, a), (rand64(2, 3, 4, seed=6),))


@pytest.mark.parametrize("name", ["maximum", "atan2", "remainder", "clamp_both_tensor", "cat", "mul_", "div_"])
def test_gradgradcheck_binary(name):
    fn = BINARY[name]
    shapes = ((3, 4), (4,)) if name == "cat" else ((3, 4), (3, 4))
    assert gradgradcheck(lambda a, b: fn(vt, a, b), (rand64(*shapes[0], seed=1), rand64(*shapes[1], seed=2)))


@pytest.mark.parametrize("name", ["sin", "mish", "softplus", "elu", "prod_dim", "prod_all", "cumprod", "tan"])
def test_second_order_against_torch(name):
    fn = UNARY[name]
    results = []
    for m in (torch, vt):
        a = m.tensor(np.random.default_rng(8).standard_normal((2, 3, 4)).tolist(), dtype=m.float64,
                     requires_grad=True)
        out = fn(m, a)
        w = m.tensor(np.random.default_rng(9).standard_normal(tuple(out.shape)).tolist(), dtype=m.float64)
        g, = m.autograd.grad((out * w).sum(), a, create_graph=True)
        (g * g.sin()).sum().backward()
        results.append((to_np(g), to_np(a.grad)))
    for got, want in zip(results[1], results[0]):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_index_and_index_put_second_order():
    def fn(a, v):
        x = a * a
        vt.ops.vt.index_put_(x, [vt.tensor([1, 1, 0])], v * v, True)
        return x[vt.tensor([0, 2, 0])]
    assert gradgradcheck(fn, (rand64(3, 4, seed=1), rand64(3, 4, seed=2)))
