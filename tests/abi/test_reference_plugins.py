"""Differential tests of the CPU reference plugin (plugins/reference/ref_cpu.c) against vibetensor's built-in
ops, and against torch where vibetensor has no single built-in: every dtype each op claims, strided and
broadcast inputs, empty and 0-dim shapes, and the errors for what an op does not take."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import vibetensor.torch as vt
from helpers import NONCONTIG_KINDS, assert_same, pair

CLAIMED = ["float32", "float64", "int32", "int64"]
SHAPES = [(), (0,), (5,), (3, 4), (2, 3, 5), (1, 4, 1, 3)]


def same_as_builtin(actual, expected, dtype):
    assert actual.dtype == expected.dtype and tuple(actual.shape) == tuple(expected.shape)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == "float32" else dict(rtol=1e-12, atol=1e-12)
    if dtype.startswith("int"):
        np.testing.assert_array_equal(actual.numpy(), expected.numpy())
    else:
        np.testing.assert_allclose(actual.numpy(), expected.numpy(), **tol)


@pytest.mark.parametrize("dtype", CLAIMED)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("layout", [None] + NONCONTIG_KINDS)
def test_add_matches_builtin(ref_plugin, rng, dtype, shape, layout):
    a = pair(shape, dtype, noncontig=layout, rng=rng).v
    b = pair(shape, dtype, noncontig="transpose" if layout else None, rng=rng).v
    out = vt.ops.ref.add(a, b)
    same_as_builtin(out, vt.add(a, b), dtype)
    assert out.is_contiguous()


def test_add_refuses_what_it_does_not_claim(ref_plugin):
    with pytest.raises(ValueError, match="ref::add: self and other must have the same shape .*does not broadcast"):
        vt.ops.ref.add(vt.ones(2, 3), vt.ones(3))
    with pytest.raises(TypeError, match="ref::add: self and other must have the same dtype"):
        vt.ops.ref.add(vt.ones(3), vt.ones(3, dtype=vt.float64))
    with pytest.raises(TypeError, match="ref::add supports float32, float64, int32 and int64"):
        vt.ops.ref.add(vt.ones(3, dtype=vt.float16), vt.ones(3, dtype=vt.float16))
    with pytest.raises(TypeError, match="missing required argument 'other'"):
        vt.ops.ref.add(vt.ones(3))


BROADCASTS = [((3, 4), (3, 4), (3, 4)), ((3, 1), (1, 4), (4,)), ((), (2, 3), (3,)), ((2, 1, 3), (4, 1), ()),
              ((0, 3), (1, 3), (3,))]


@pytest.mark.parametrize("dtypes", [("float32",) * 3, ("float64",) * 3, ("int32",) * 3, ("int64",) * 3,
                                    ("float32", "float64", "float32"), ("int32", "int64", "int32"),
                                    ("int64", "float32", "int32")], ids="-".join)
@pytest.mark.parametrize("shapes", BROADCASTS, ids=str)
@pytest.mark.parametrize("layout", [None, "transpose", "slice"])
def test_addcmul_matches_torch(ref_plugin, rng, dtypes, shapes, layout):
    ps = [pair(s, d, noncontig=layout if len(s) > 1 else None, rng=rng) for s, d in zip(shapes, dtypes)]
    value = 3 if all(d.startswith("int") for d in dtypes) else -0.5
    out = vt.ops.ref.addcmul(ps[0].v, ps[1].v, ps[2].v, value=value)
    expected = torch.addcmul(ps[0].t, ps[1].t, ps[2].t, value=value)
    assert_same(out, expected)
    # and against vibetensor's own ops for the same expression
    builtin = ps[0].v + value * (ps[1].v * ps[2].v)
    assert_same(out, torch.from_numpy(builtin.numpy()), check_dtype=True)


def test_addcmul_errors(ref_plugin):
    with pytest.raises(RuntimeError, match="shape|broadcast"):
        vt.ops.ref.addcmul(vt.ones(2, 3), vt.ones(4), vt.ones(3))
    with pytest.raises(RuntimeError, match="argument value must not be a floating point number"):
        vt.ops.ref.addcmul(vt.ones(3, dtype=vt.int32), vt.ones(3, dtype=vt.int32), vt.ones(3, dtype=vt.int32), value=0.5)
    with pytest.raises(TypeError, match="ref::addcmul supports"):
        vt.ops.ref.addcmul(vt.ones(3, dtype=vt.bool), vt.ones(3, dtype=vt.bool), vt.ones(3, dtype=vt.bool))


@pytest.mark.parametrize("dtype", CLAIMED)
@pytest.mark.parametrize("shape, dims", [((3, 4), [0]), ((3, 4), [1]), ((3, 4), [0, 1]), ((2, 3, 4), [0, 2]),
                                         ((2, 3, 4), [-1]), ((5,), []), ((0, 3), [0]), ((4, 0), [1]), ((), [])],
                         ids=str)
@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("layout", [None, "transpose", "expand"])
def test_sum_dim_matches_builtin(ref_plugin, rng, dtype, shape, dims, keepdim, layout):
    x = pair(shape, dtype, noncontig=layout, rng=rng).v
    out = vt.ops.ref.sum_dim(x, dims, keepdim)
    expected = vt.sum(x, dims, keepdim=keepdim) if dims else vt.sum(x).reshape([1] * x.dim() if keepdim else [])
    same_as_builtin(out, expected, dtype)


def test_sum_dim_errors(ref_plugin):
    with pytest.raises(IndexError, match="out of range"):
        vt.ops.ref.sum_dim(vt.ones(2, 3), [2])
    with pytest.raises(RuntimeError, match="dim 0 appears multiple times"):
        vt.ops.ref.sum_dim(vt.ones(2, 3), [0, -2])
    with pytest.raises(TypeError, match="ref::sum_dim supports"):
        vt.ops.ref.sum_dim(vt.ones(2, dtype=vt.bool), [0])


@pytest.mark.parametrize("dtype", CLAIMED)
def test_fill_all_mutates_a_list_and_returns_nothing(ref_plugin, rng, dtype):
    a = pair((3, 4), dtype, noncontig="transpose", rng=rng).v
    b = vt.zeros(5, dtype=getattr(vt, dtype))
    base = vt.zeros(2, 6, dtype=getattr(vt, dtype))
    c = base[:, ::3]
    empty = vt.zeros(0, dtype=getattr(vt, dtype))
    version = c._version if hasattr(c, "_version") else None
    assert vt.ops.ref.fill_all_([a, b, c, empty], 2.0) is None
    assert (a.numpy() == 2).all() and (b.numpy() == 2).all()
    np.testing.assert_array_equal(base.numpy(), np.tile([2, 0, 0], (2, 2)).astype(base.numpy().dtype))
    if version is not None:
        assert c._version > version
    assert vt.ops.ref.fill_all_([], 1.0) is None


def test_fill_all_errors(ref_plugin):
    with pytest.raises(TypeError, match="ref::fill_all_ supports"):
        vt.ops.ref.fill_all_([vt.zeros(2, dtype=vt.bool)], 1.0)
    x = vt.ones(2, requires_grad=True)
    with pytest.raises(NotImplementedError, match="in-place op has no autograd formula"):
        vt.ops.ref.fill_all_([x * 1], 1.0)


def test_plugin_ops_under_autograd(ref_plugin):
    """Plugin ops get the autograd slot when they are defined: forward records a node, backward says the
    derivative is missing until one is registered (tests/autograd/test_extension_autograd.py covers the rest)."""
    x = vt.ones(3, requires_grad=True)
    y = vt.ops.ref.add(x, x)
    assert y.requires_grad and y.grad_fn is not None
    with pytest.raises(NotImplementedError, match="the derivative for 'ref::add' is not implemented; register"):
        y.sum().backward()
    with vt.no_grad():
        assert not vt.ops.ref.add(x, x).requires_grad


def test_plugin_op_with_a_registered_backward(ref_plugin, rng):
    """register_autograd works for plugin ops as for library ops: addcmul's gradients against torch's."""
    import vibetensor.library as vlib

    def setup_context(ctx, inputs, output):
        self, t1, t2, value = inputs
        ctx.save_for_backward(t1, t2)
        ctx.value = value

    def backward(ctx, grad):
        t1, t2 = ctx.saved_tensors
        return grad, grad * t2 * ctx.value, grad * t1 * ctx.value, None

    vlib.register_autograd("ref::addcmul", backward, setup_context=setup_context)
    arrays = [rng.standard_normal(s) for s in ((3, 1), (1, 4), (4,))]
    xs = [vt.tensor(a, requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    vt.ops.ref.addcmul(*xs, value=0.5).sum().backward()
    torch.addcmul(*ts, value=0.5).sum().backward()
    for x, t in zip(xs, ts):  # broadcast dims are summed away by the engine, as torch does
        np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-12)
