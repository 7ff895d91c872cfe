"""vt.addr / addbmm / cross and their Tensor methods (addr_, addbmm_) against torch: values and float64 gradients
over beta/alpha (0 included: torch ignores input then), broadcasting input, non-contiguous operands, empty
batches, bool and integer addr, cross's default dim (with torch's deprecation warning), and the errors."""
import warnings

import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from ag_helpers import check_grads, leaves


def pair(a):
    return vt.from_numpy(a.copy()), torch.from_numpy(a.copy())


def same(v, t):
    np.testing.assert_allclose(v.detach().numpy(), t.detach().numpy(), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("beta,alpha", [(1, 1), (0.5, -2), (0, 3), (2, 0)])
@pytest.mark.parametrize("input_shape", [(3, 4), (4,), (3, 1), ()])
def test_addr_values_and_grads(beta, alpha, input_shape):
    check_grads(lambda m, i, a, b: m.addr(i, a, b, beta=beta, alpha=alpha), leaves([input_shape, (3,), (4,)]))
    check_grads(lambda m, i, a, b: i.addr(a, b, beta=beta, alpha=alpha), leaves([input_shape, (3,), (4,)], seed=2))


def test_addr_bool_int_noncontiguous_inplace_and_errors():
    rng = np.random.default_rng(0)
    for beta, alpha in [(1, 1), (0, 1), (1, 0), (True, False)]:
        i, a, b = rng.random((3, 4)) > 0.5, rng.random(3) > 0.5, rng.random(4) > 0.5
        (iv, it), (av, at), (bv, bt) = pair(i), pair(a), pair(b)
        assert vt.addr(iv, av, bv, beta=beta, alpha=alpha).tolist() == torch.addr(it, at, bt, beta=beta,
                                                                                  alpha=alpha).tolist()
    i, a, b = (rng.integers(-5, 5, s) for s in [(3, 4), (3,), (4,)])
    (iv, it), (av, at), (bv, bt) = pair(i), pair(a), pair(b)
    assert vt.addr(iv, av, bv, beta=2, alpha=3).tolist() == torch.addr(it, at, bt, beta=2, alpha=3).tolist()
    m = rng.standard_normal((6, 8))
    (mv, mt) = pair(m)
    same(vt.addr(mv[::2, ::2], mv[0, ::3], mv[1, :4]), torch.addr(mt[::2, ::2], mt[0, ::3], mt[1, :4]))
    iv2, it2 = pair(rng.standard_normal((3, 4)))
    av2, at2 = pair(rng.standard_normal(3))
    bv2, bt2 = pair(rng.standard_normal(4))
    assert iv2.addr_(av2, bv2, alpha=2) is iv2
    it2.addr_(at2, bt2, alpha=2)
    same(iv2, it2)
    for bad in [lambda m: m.addr(m.zeros(3, 4), m.zeros(3, 1), m.zeros(4)),
                lambda m: m.addr(m.zeros(3, 4), m.zeros(3), m.zeros(4, 1)),
                lambda m: m.addr(m.zeros(2, 4), m.zeros(3), m.zeros(4))]:
        with pytest.raises(RuntimeError):
            bad(torch)
        with pytest.raises(RuntimeError):
            bad(vt)
    with pytest.raises(RuntimeError, match="addr: Expected 1-D argument vec1, but got 2-D"):
        vt.addr(vt.zeros(3, 4), vt.zeros(3, 1), vt.zeros(4))


@pytest.mark.parametrize("beta,alpha", [(1, 1), (0.5, -2), (0, 3)])
@pytest.mark.parametrize("batch,input_shape", [(3, (2, 4)), (1, (4,)), (5, (2, 1))])
def test_addbmm_values_and_grads(beta, alpha, batch, input_shape):
    shapes = [input_shape, (batch, 2, 5), (batch, 5, 4)]
    check_grads(lambda m, i, a, b: m.addbmm(i, a, b, beta=beta, alpha=alpha), leaves(shapes))
    check_grads(lambda m, i, a, b: i.addbmm(a, b, beta=beta, alpha=alpha),
                leaves(shapes, seed=3, noncontig=1 not in input_shape))  # a transposed (2, 1) is contiguous


def test_addbmm_empty_batch_inplace_and_errors():
    rng = np.random.default_rng(1)
    (iv, it) = pair(rng.standard_normal((2, 4)))
    a, b = np.zeros((0, 2, 5)), np.zeros((0, 5, 4))
    same(vt.addbmm(iv, *pair(a)[:1], pair(b)[0], beta=2), torch.addbmm(it, torch.from_numpy(a), torch.from_numpy(b),
                                                                    beta=2))
    (av, at), (bv, bt) = pair(rng.standard_normal((3, 2, 5))), pair(rng.standard_normal((3, 5, 4)))
    assert iv.addbmm_(av, bv) is iv
    it.addbmm_(at, bt)
    same(iv, it)
    for bad in [lambda m: m.addbmm(m.zeros(2, 4), m.zeros(2, 5), m.zeros(3, 5, 4)),
                lambda m: m.addbmm(m.zeros(2, 4), m.zeros(3, 2, 5), m.zeros(3, 4, 4)),
                lambda m: m.addbmm(m.zeros(3, 4), m.zeros(3, 2, 5), m.zeros(3, 5, 4))]:
        with pytest.raises(RuntimeError):
            bad(torch)
        with pytest.raises(RuntimeError):
            bad(vt)


@pytest.mark.parametrize("shapes,dim", [([(4, 3), (4, 3)], 1), ([(3, 5), (3, 5)], 0), ([(2, 3, 3), (1, 3, 3)], -1),
                                        ([(2, 3, 3), (2, 3, 3)], None), ([(3,), (3,)], None)])
def test_cross_values_and_grads(shapes, dim):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the default dim's deprecation warning (checked below)
        check_grads(lambda m, a, b: m.cross(a, b, dim=dim), leaves(shapes))
        check_grads(lambda m, a, b: a.cross(b) if dim is None else a.cross(b, dim), leaves(shapes, seed=4))


def test_cross_default_dim_warns_and_errors_like_torch():
    # torch warns once per process (so only vibetensor's warning is checked), vibetensor at every such call
    with pytest.warns(UserWarning, match="Using torch.cross without specifying the dim arg is deprecated"):
        vt.cross(vt.ones(4, 3), vt.ones(4, 3))
    for m in (torch, vt):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(RuntimeError, match="no dimension of size 3 in input"):
                m.cross(m.ones(4, 2), m.ones(4, 2))
        with pytest.raises(RuntimeError):
            m.cross(m.ones(4, 3), m.ones(4, 3), dim=0)


@pytest.mark.parametrize("op,shapes", [("addmm", [(2, 4), (2, 5), (5, 4)]), ("baddbmm", [(3, 2, 4), (3, 2, 5), (3, 5, 4)]),
                                       ("addmv", [(2,), (2, 5), (5,)])])
def test_beta_zero_still_gives_input_a_zero_gradient(op, shapes):
    """torch's rule for every add-a-product op: beta=0 ignores input's values (NaN included) but input still gets
    a gradient, of zeros."""
    check_grads(lambda m, i, a, b: getattr(m, op)(i, a, b, beta=0, alpha=2), leaves(shapes))
    (a, _), (b, _) = leaves(shapes[1:])
    out = getattr(vt, op)(vt.full(shapes[0], float("nan")), a, b, beta=0)
    assert not vt.isnan(out).any().item()
