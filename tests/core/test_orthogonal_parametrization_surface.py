"""nn.utils.parametrizations.orthogonal against torch's: the matrix_exp, cayley and householder maps (and the
default choice) on square, wide and tall weights: the parametrized weight equals torch's (the initial weight,
orthogonalised), the state_dict layout (original, base) is torch's, and gradients reach `original` as torch's do.
A non-square weight is completed to a square base with random columns, from each library's own stream: there the
test copies torch's base in before comparing gradients. Errors for bad maps and vectors are torch's."""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from vibetensor.torch.nn.utils.parametrizations import orthogonal as vt_orthogonal

LIBS = ((torch, torch.nn.utils.parametrizations.orthogonal), (vt, vt_orthogonal))


def build(L, orth, w, mp):
    m = L.nn.Linear(w.shape[1], w.shape[0], bias=False).double()
    with L.no_grad():
        m.weight.copy_(L.tensor(w))
    return orth(m, "weight", mp)


@pytest.mark.parametrize("mp", ["matrix_exp", "cayley", "householder", None])
@pytest.mark.parametrize("shape", [(4, 4), (3, 5), (5, 3)])
def test_orthogonal_matches_torch(mp, shape):
    w = np.random.default_rng(0).standard_normal(shape)
    tm, vm = (build(L, orth, w, mp) for L, orth in LIBS)
    assert sorted(vm.state_dict()) == sorted(tm.state_dict())
    np.testing.assert_allclose(vm.weight.detach().numpy(), tm.weight.detach().numpy(), atol=1e-12)
    with vt.no_grad():  # the same base for both (its random completion columns differ for a non-square weight)
        vm.parametrizations.weight[0].base.copy_(vt.from_numpy(tm.parametrizations.weight[0].base.numpy().copy()))
    x = np.linspace(-1, 2, shape[1])
    step = 0.1 * (1 - np.eye(*shape))  # a step off the diagonal, which householder reads as signs (int())
    with torch.no_grad():
        tm.parametrizations.weight.original.add_(torch.from_numpy(step))
    with vt.no_grad():
        vm.parametrizations.weight.original.add_(vt.from_numpy(step))
    (tm(torch.from_numpy(x)) ** 3).sum().backward()
    (vm(vt.from_numpy(x)) ** 3).sum().backward()
    q = vm.weight.detach().numpy()
    np.testing.assert_allclose(q, tm.weight.detach().numpy(), atol=1e-12)
    gram = q @ q.T if shape[0] <= shape[1] else q.T @ q
    np.testing.assert_allclose(gram, np.eye(min(shape)), atol=1e-12)
    np.testing.assert_allclose(vm.parametrizations.weight.original.grad.numpy(),
                               tm.parametrizations.weight.original.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_a_non_orthogonal_assignment_is_orthogonalised_like_torch():
    w = np.random.default_rng(1).standard_normal((3, 3))
    tm, vm = (build(L, orth, np.eye(3), None) for L, orth in LIBS)
    tm.weight = torch.from_numpy(w)
    vm.weight = vt.from_numpy(w)
    np.testing.assert_allclose(vm.weight.detach().numpy(), tm.weight.detach().numpy(), atol=1e-12)


@pytest.mark.parametrize("args", [("weight", "qr"), ("bias",), ("nothing",)], ids=["bad_map", "vector", "no_name"])
def test_errors_match_torch(args):
    errors = []
    for L, orth in LIBS:
        m = L.nn.Linear(3, 3)
        with pytest.raises(ValueError) as e:
            orth(m, *args)
        errors.append(str(e.value))
    assert errors[1] == errors[0]
