"""a @ b and a.matmul(b): matrices go to mm from C++, other ranks through vibetensor.torch's matmul; operands that
are not tensors raise torch's TypeErrors."""
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
