"""torch's layout= keyword on the factories (zeros, ones, empty, full, rand, randn, randint, arange, eye,
linspace, the *_like ones, Tensor.new_*, randperm, normal, tril/triu_indices, empty_strided, scalar_tensor):
vt.strided, None and x.layout are taken (results as torch's with layout=torch.strided), the sparse and mkldnn
layouts are refused with NotImplementedError and a non-layout with TypeError (as torch's argument parser)."""
import numpy as np
import pytest
import torch

import vibetensor.torch as vt

X = vt.ones(2, 3)

# name -> (vt call, torch call) taking the layout; deterministic ones are compared by value
DETERMINISTIC = {
    "zeros": (lambda L: vt.zeros(2, 3, layout=L), lambda L: torch.zeros(2, 3, layout=L)),
    "zeros_size_kw": (lambda L: vt.zeros(size=(2, 3), layout=L, dtype=vt.float64),
                      lambda L: torch.zeros(size=(2, 3), layout=L, dtype=torch.float64)),
    "ones": (lambda L: vt.ones((4,), layout=L), lambda L: torch.ones((4,), layout=L)),
    "full": (lambda L: vt.full((2, 2), 7.5, layout=L), lambda L: torch.full((2, 2), 7.5, layout=L)),
    "arange": (lambda L: vt.arange(1, 9, 3, layout=L), lambda L: torch.arange(1, 9, 3, layout=L)),
    "eye": (lambda L: vt.eye(3, 4, layout=L), lambda L: torch.eye(3, 4, layout=L)),
    "linspace": (lambda L: vt.linspace(0, 1, 5, layout=L), lambda L: torch.linspace(0, 1, 5, layout=L)),
    "zeros_like": (lambda L: vt.zeros_like(X, layout=L), lambda L: torch.zeros_like(torch.ones(2, 3), layout=L)),
    "ones_like": (lambda L: vt.ones_like(X, layout=L), lambda L: torch.ones_like(torch.ones(2, 3), layout=L)),
    "full_like": (lambda L: vt.full_like(X, 2, layout=L), lambda L: torch.full_like(torch.ones(2, 3), 2, layout=L)),
    "new_zeros": (lambda L: X.new_zeros(3, layout=L), lambda L: torch.ones(2, 3).new_zeros(3, layout=L)),
    "new_ones": (lambda L: X.new_ones((2,), layout=L), lambda L: torch.ones(2, 3).new_ones((2,), layout=L)),
    "new_full": (lambda L: X.new_full((2,), 3, layout=L), lambda L: torch.ones(2, 3).new_full((2,), 3, layout=L)),
    "tril_indices": (lambda L: vt.tril_indices(3, 4, layout=L), lambda L: torch.tril_indices(3, 4, layout=L)),
    "triu_indices": (lambda L: vt.triu_indices(3, 3, 1, layout=L), lambda L: torch.triu_indices(3, 3, 1, layout=L)),
    "scalar_tensor": (lambda L: vt.scalar_tensor(2.5, layout=L), lambda L: torch.scalar_tensor(2.5, layout=L)),
}
# shape-only ones (random or uninitialised values)
SHAPED = {
    "empty": (lambda L: vt.empty(2, 3, layout=L), (2, 3)),
    "empty_size_kw": (lambda L: vt.empty(size=(4,), layout=L), (4,)),
    "rand": (lambda L: vt.rand(2, 5, layout=L), (2, 5)),
    "randn": (lambda L: vt.randn((3,), layout=L), (3,)),
    "randint": (lambda L: vt.randint(0, 4, (2, 2), layout=L), (2, 2)),
    "empty_like": (lambda L: vt.empty_like(X, layout=L), (2, 3)),
    "rand_like": (lambda L: vt.rand_like(X, layout=L), (2, 3)),
    "randn_like": (lambda L: vt.randn_like(X, layout=L), (2, 3)),
    "new_empty": (lambda L: X.new_empty(4, layout=L), (4,)),
    "randperm": (lambda L: vt.randperm(5, layout=L), (5,)),
    "normal": (lambda L: vt.normal(0.0, 1.0, (2, 3), layout=L), (2, 3)),
    "empty_strided": (lambda L: vt.empty_strided((2, 3), (1, 2), layout=L), (2, 3)),
}
ALL = {**{k: v[0] for k, v in DETERMINISTIC.items()}, **{k: v[0] for k, v in SHAPED.items()}}


@pytest.mark.parametrize("name", sorted(DETERMINISTIC))
@pytest.mark.parametrize("layout", ["strided", "none", "of_tensor"])
def test_deterministic_factories_take_strided(name, layout):
    fv, ft = DETERMINISTIC[name]
    lv = {"strided": vt.strided, "none": None, "of_tensor": X.layout}[layout]
    lt = None if layout == "none" else torch.strided
    v, t = fv(lv), ft(lt)
    assert tuple(v.shape) == tuple(t.shape)
    assert str(v.dtype).split(".")[-1] == str(t.dtype).split(".")[-1]
    np.testing.assert_array_equal(v.numpy(), t.numpy())
    assert v.layout is vt.strided


@pytest.mark.parametrize("name", sorted(SHAPED))
@pytest.mark.parametrize("layout", [vt.strided, None])
def test_shaped_factories_take_strided(name, layout):
    fn, shape = SHAPED[name]
    assert tuple(fn(layout).shape) == shape


@pytest.mark.parametrize("name", sorted(ALL))
@pytest.mark.parametrize("layout", ["sparse_coo", "sparse_csr", "sparse_csc", "sparse_bsr", "jagged"])
def test_other_layouts_refused(name, layout):
    with pytest.raises(NotImplementedError, match="layout"):
        ALL[name](getattr(vt, layout))


@pytest.mark.parametrize("name", ["zeros", "ones", "empty", "full", "arange", "rand", "zeros_like", "randperm"])
def test_non_layout_is_a_type_error(name):
    with pytest.raises(TypeError, match="layout"):
        ALL[name]("strided")
    with pytest.raises(TypeError):  # torch's parser refuses it as well
        getattr(torch, name)(*([torch.ones(2)] if name.endswith("like") else [2]), layout="strided")


def test_requires_grad_and_dtype_pass_through_the_wrappers():
    z = vt.zeros(2, 3, dtype=vt.float64, requires_grad=True, layout=vt.strided)
    assert z.requires_grad and z.dtype == vt.float64
    assert vt.ones(3, dtype=vt.int64).dtype == vt.int64
    assert tuple(vt.empty((2, 0)).shape) == (2, 0)
    with pytest.raises(TypeError):
        vt.zeros(2, bogus=1)
