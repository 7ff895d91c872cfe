"""einsum pairs with nothing to contract (Note [einsum pairs without a contraction] in
python/vibetensor/torch/_einsum.py) against torch: outer, elementwise and broadcast products, contracted labels of
size 1, their values and gradients, the dtype they promote mixed operands to (Mamba's float64 dt times float32
A), and torch's RuntimeError when a real contraction gets mixed dtypes."""
import numpy as np
import pytest
import torch

import vibetensor.torch as vt

# (equation, operand shapes): products that contract nothing, or only labels one side holds at size 1
PRODUCTS = [("bd,dn->bdn", [(2, 3), (3, 4)]), ("bd,bd->bd", [(2, 3), (2, 3)]), ("i,j->ij", [(2,), (3,)]),
            ("bd,d->bd", [(2, 3), (3,)]), ("ij,jk->ik", [(2, 1), (1, 4)]), ("ij,kj->ik", [(2, 1), (4, 1)]),
            ("bld,bln,bld->bldn", [(2, 5, 3), (2, 5, 4), (2, 5, 3)]), ("...d,dn->...dn", [(2, 5, 3), (3, 4)]),
            ("bij,bjk->bik", [(2, 3, 1), (1, 1, 4)]), ("i,->i", [(3,), ()]), ("ij,ji->ij", [(2, 3), (3, 2)]),
            ("bd,dn->bn", [(2, 3), (3, 4)])]  # the last contracts d: the GEMM path, for contrast


def operands(shapes, seed):
    r = np.random.default_rng(seed)
    return [r.standard_normal(s) for s in shapes]


@pytest.mark.parametrize("eq,shapes", PRODUCTS)
def test_values_and_gradients_match_torch(eq, shapes):
    arrs = operands(shapes, len(eq))
    outs = []
    for lib in (torch, vt):
        xs = [lib.from_numpy(a.copy()).requires_grad_() for a in arrs]
        y = lib.einsum(eq, *xs)
        w = lib.from_numpy(np.linspace(-1, 1, max(y.numel(), 1)).reshape(tuple(y.shape)))
        (y * w).sum().backward()
        outs.append([y.detach().numpy()] + [x.grad.numpy() for x in xs])
    for v, t in zip(outs[1], outs[0]):
        assert v.shape == t.shape
        np.testing.assert_allclose(v, t, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("eq,shapes", PRODUCTS[:-1])
@pytest.mark.parametrize("first", ["float64", "float32"])
def test_mixed_dtypes_promote_as_torch(eq, shapes, first):
    arrs = operands(shapes, 1)
    kinds = [first] + ["float32" if first == "float64" else "float64"] * (len(arrs) - 1)
    results = []
    for lib in (torch, vt):
        xs = [lib.from_numpy(a.astype(k)) for a, k in zip(arrs, kinds)]
        y = lib.einsum(eq, *xs)
        results.append((str(y.dtype).split(".")[-1], y.numpy()))
    assert results[1][0] == results[0][0] == "float64"
    np.testing.assert_allclose(results[1][1], results[0][1], rtol=1e-6)


@pytest.mark.parametrize("eq,shapes", [("ij,j->i", [(2, 3), (3,)]), ("ij,ij->", [(2, 3), (2, 3)]),
                                       ("bd,dn->bn", [(2, 3), (3, 4)]), ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 2)])])
def test_a_real_contraction_of_mixed_dtypes_raises_as_torch(eq, shapes):
    arrs = operands(shapes, 2)
    for lib in (torch, vt):
        xs = [lib.from_numpy(a.astype("float32" if k else "float64")) for k, a in enumerate(arrs)]
        with pytest.raises(RuntimeError):
            lib.einsum(eq, *xs)


def test_integer_outer_product_stays_integer():
    a, b = np.arange(3), np.arange(4)
    t = torch.einsum("i,j->ij", torch.from_numpy(a), torch.from_numpy(b))
    v = vt.einsum("i,j->ij", vt.from_numpy(a), vt.from_numpy(b))
    assert v.dtype == vt.int64 and t.dtype == torch.int64
    np.testing.assert_array_equal(v.numpy(), t.numpy())


@pytest.mark.parametrize("eq,shapes", PRODUCTS + [("ij,jk,kl->il", [(2, 3), (3, 4), (4, 2)]),
                                                  ("ij,jk,k->ij", [(2, 3), (3, 4), (4,)])])
def test_under_autocast_each_piece_casts_as_torch(eq, shapes):
    """torch's einsum has no autocast rule of its own: its GEMMs run in bfloat16, its plain products do not."""
    arrs = [a.astype(np.float32) for a in operands(shapes, 3)]
    results = []
    for lib in (torch, vt):
        with lib.autocast("cpu", dtype=lib.bfloat16):  # opt_einsum's order where installed, in both
            y = lib.einsum(eq, *[lib.from_numpy(a.copy()) for a in arrs])
        results.append((str(y.dtype).split(".")[-1], y.float().numpy()))
    assert results[1][0] == results[0][0]
    np.testing.assert_allclose(results[1][1], results[0][1], rtol=1e-6, atol=1e-6)
