"""a @ b, a.matmul(b) and vt.matmul: matrices go to mm from C++, other ranks to vt::matmul (a C++ composite over mm
and _bmm_nd, core/src/ops/matmul_composite.cpp): values and gradients as torch's for every rank pair, broadcast
batch dims and empty operands; torch's errors for sizes that do not multiply; operands that are not tensors raise
torch's TypeErrors."""
import numpy as np
import pytest
import torch

import vibetensor.torch as vt
from helpers import assert_same

RANKS = [(3,), (2, 3), (4, 2, 3), (2, 1, 2, 3)]


@pytest.mark.parametrize("b_shape", [(3,), (3, 5), (4, 3, 5), (1, 4, 3, 5)], ids=str)
@pytest.mark.parametrize("a_shape", RANKS, ids=str)
@pytest.mark.parametrize("form", ["operator", "method"])
def test_every_rank_pair_matches_torch(a_shape, b_shape, form, rng):
    a, b = rng.standard_normal(a_shape).astype(np.float32), rng.standard_normal(b_shape).astype(np.float32)
    ta, tb, va, vb = torch.from_numpy(a), torch.from_numpy(b), vt.from_numpy(a), vt.from_numpy(b)
    want = ta @ tb if form == "operator" else ta.matmul(tb)
    got = va @ vb if form == "operator" else va.matmul(vb)
    assert_same(got, want, atol=1e-5, rtol=1e-5)


def test_matrices_of_mismatched_sizes_raise_as_torch():
    with pytest.raises(RuntimeError, match=r"cannot be multiplied \(2x3 and 2x3\)"):
        vt.ones(2, 3) @ vt.ones(2, 3)


@pytest.mark.parametrize("expr", [lambda m: m.ones(2, 3) @ 2, lambda m: 2 @ m.ones(2, 3),
                                  lambda m: m.ones(2, 3).matmul(2.5)], ids=["tensor@int", "int@tensor", "method"])
def test_numbers_are_type_errors_as_in_torch(expr):
    with pytest.raises(TypeError) as want:
        expr(torch)
    with pytest.raises(TypeError) as got:
        expr(vt)
    # torch's wording changed between releases (2.11 names the argument, 2.13 gives Python's operator message);
    # ours must name the number's type either way.
    number_type = "float" if "float" in str(want.value) else "int"
    assert number_type in str(got.value)


def test_gradients_flow_through_the_matrix_path():
    a, b = vt.ones(2, 3, requires_grad=True), vt.ones(3, 4, requires_grad=True)
    (a @ b).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), np.full((2, 3), 4.0))
    np.testing.assert_array_equal(b.grad.numpy(), np.full((3, 4), 2.0))


PAIRS = [((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 4)), ((5, 2, 3), (3, 4)), ((5, 2, 3), (3,)), ((3,), (5, 3, 4)),
         ((5, 2, 3), (5, 3, 4)), ((1, 2, 3), (5, 3, 4)), ((2, 1, 2, 3), (5, 3, 4)), ((2, 3), (7, 3, 2)),
         ((4, 1, 2, 3), (1, 6, 3, 5)), ((0, 2, 3), (3, 4)), ((2, 0), (0, 3)), ((3, 2, 0), (3, 0, 4))]


@pytest.mark.parametrize("a_shape,b_shape", PAIRS, ids=str)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_values_and_gradients_match_torch(a_shape, b_shape, dtype, rng):
    a, b = rng.standard_normal(a_shape).astype(dtype), rng.standard_normal(b_shape).astype(dtype)
    va, vb = vt.from_numpy(a).requires_grad_(), vt.from_numpy(b).requires_grad_()
    ta, tb = torch.from_numpy(a).requires_grad_(), torch.from_numpy(b).requires_grad_()
    got, want = vt.matmul(va, vb), torch.matmul(ta, tb)
    assert_same(got.detach(), want.detach(), atol=1e-5, rtol=1e-5)
    g = rng.standard_normal(tuple(want.shape)).astype(dtype)
    got.backward(vt.from_numpy(g))
    want.backward(torch.from_numpy(g))
    assert_same(va.grad, ta.grad, atol=1e-5, rtol=1e-5)
    assert_same(vb.grad, tb.grad, atol=1e-5, rtol=1e-5)


def test_noncontiguous_operands_and_integer_and_16_bit_dtypes(rng):
    a = rng.standard_normal((3, 4, 5)).astype(np.float32)
    b = rng.standard_normal((5, 3, 6)).astype(np.float32)
    va, vb, ta, tb = vt.from_numpy(a), vt.from_numpy(b), torch.from_numpy(a), torch.from_numpy(b)
    assert_same(va.transpose(1, 2) @ vb[:4].transpose(0, 1)[:, :4], ta.transpose(1, 2) @ tb[:4].transpose(0, 1)[:, :4],
                atol=1e-5, rtol=1e-5)
    ints = rng.integers(-5, 5, size=(2, 3, 4))
    assert_same(vt.from_numpy(ints) @ vt.from_numpy(ints).transpose(1, 2),
                torch.from_numpy(ints) @ torch.from_numpy(ints).transpose(1, 2))
    half = vt.from_numpy(a).to(vt.bfloat16) @ vt.from_numpy(b[:, 0]).to(vt.bfloat16)
    want = torch.from_numpy(a).bfloat16() @ torch.from_numpy(b[:, 0]).bfloat16()
    assert half.dtype == vt.bfloat16 and half.shape == want.shape
    np.testing.assert_allclose(half.float().numpy(), want.float().numpy(), rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("a_shape,b_shape", [((3,), (4,)), ((2, 3), (4, 5)), ((5, 2, 3), (4, 5)),
                                             ((2, 2, 3), (3, 3, 4)), ((), (3,)), ((3,), ())], ids=str)
def test_sizes_that_do_not_multiply_raise_torchs_error(a_shape, b_shape):
    with pytest.raises(RuntimeError) as want:
        torch.matmul(torch.ones(a_shape), torch.ones(b_shape))
    with pytest.raises(RuntimeError) as got:
        vt.matmul(vt.ones(a_shape), vt.ones(b_shape))
    assert str(want.value)[:60] in str(got.value)  # torch's wording of the dot's sizes differs after that by release


def test_free_function_refuses_numbers_as_torch():
    for args in ((vt.ones(3), 2), (2.5, vt.ones(3))):
        with pytest.raises(TypeError, match="must be Tensor, not (int|float)"):
            vt.matmul(*args)
