"""vt.backends.opt_einsum (torch.backends.opt_einsum's surface) and einsum's contraction along a path: its flags and
their errors against torch's where opt_einsum is missing; the pair-by-pair contraction (each product appended to
the end of the operand list, as opt_einsum's paths count) against numpy, through a stand-in opt_einsum whose
contract_path returns chosen paths; and, where the real package is installed, einsum under bfloat16 autocast
against torch's (the same order puts the 16-bit roundings in the same places)."""
import numpy as np
import pytest
import torch

import vibetensor.torch as vt
from vibetensor.torch._backends_opt_einsum import opt_einsum as vt_opt

CASES = [  # equation, operand shapes, paths to try
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)], [[(0, 1), (0, 1)], [(1, 2), (0, 1)], [(0, 2), (0, 1)]]),
    ("ij,jk,kl,l->i", [(3, 4), (4, 5), (5, 2), (2,)], [[(2, 3), (1, 2), (0, 1)], [(0, 3), (0, 1), (0, 1)]]),
    ("bij,bjk,bk->bi", [(2, 3, 4), (2, 4, 5), (1, 5)], [[(1, 2), (0, 1)], [(0, 2), (0, 1)]]),
    ("...ij,jk,ii->...k", [(2, 3, 4), (4, 2), (3, 3)], [[(1, 2), (0, 1)], [(0, 2), (0, 1)]]),
    ("ab,bc,cd,de->", [(2, 3), (3, 2), (2, 4), (4, 3)], [[(0, 1), (1, 2), (0, 1)], [(2, 3), (0, 1), (0, 1)]]),
]


class _StandIn:
    """An opt_einsum whose contract_path hands back a chosen path and records its calls."""

    def __init__(self, path):
        self.path, self.calls = path, []

    def contract_path(self, equation, *operands, optimize):
        self.calls.append((equation, tuple(tuple(o.shape) for o in operands), optimize))
        return self.path, "stand-in"


@pytest.fixture
def stand_in(monkeypatch):
    def install(path):
        fake = _StandIn(path)
        monkeypatch.setattr(vt_opt, "_checked", True)
        monkeypatch.setattr(vt_opt, "_module", fake)
        monkeypatch.setattr(vt_opt, "_enabled", None)
        monkeypatch.setattr(vt_opt, "_strategy", "auto")
        return fake
    return install


@pytest.mark.parametrize("case", range(len(CASES)))
def test_contraction_along_each_path_matches_numpy(stand_in, case, rng):
    equation, shapes, paths = CASES[case]
    arrs = [rng.standard_normal(s) for s in shapes]
    want = np.einsum(equation, *arrs)
    for path in paths:
        fake = stand_in(path)
        got = vt.einsum(equation, *[vt.from_numpy(a) for a in arrs])
        assert fake.calls == [(equation, tuple(shapes), "auto")], "the path must come from contract_path"
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-12, atol=1e-12, err_msg=str(path))
    fake = stand_in(paths[0])
    vt_opt.enabled = False  # disabled: left to right, contract_path not asked
    np.testing.assert_allclose(vt.einsum(equation, *[vt.from_numpy(a) for a in arrs]).numpy(), want, rtol=1e-12,
                               atol=1e-12)
    assert fake.calls == []


def test_gradients_through_a_path(stand_in, rng):
    stand_in([(1, 2), (0, 1)])
    arrs = [rng.standard_normal(s) for s in [(2, 3), (3, 4), (4, 5)]]
    vs, ts = [vt.from_numpy(a).requires_grad_() for a in arrs], [torch.from_numpy(a).requires_grad_() for a in arrs]
    vt.einsum("ij,jk,kl->il", *vs).sum().backward()
    torch.einsum("ij,jk,kl->il", *ts).sum().backward()
    for v, t in zip(vs, ts):
        np.testing.assert_allclose(v.grad.numpy(), t.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_two_operands_never_ask_for_a_path(stand_in, rng):
    fake = stand_in([(0, 1)])
    vt.einsum("ij,jk->ik", vt.from_numpy(rng.standard_normal((2, 3))), vt.from_numpy(rng.standard_normal((3, 2))))
    assert fake.calls == []


def test_strategy_flags_and_errors(stand_in):
    stand_in([(0, 1), (0, 1)])
    assert vt_opt.is_available() and vt_opt.enabled and vt_opt.strategy == "auto"
    with vt.backends.opt_einsum.flags(strategy="greedy"):
        assert vt_opt.strategy == "greedy"
    assert vt_opt.strategy == "auto"
    with pytest.raises(ValueError, match="must be one of the following"):
        vt_opt.strategy = "fastest"
    with vt.backends.opt_einsum.flags(enabled=False):
        assert not vt_opt.enabled
        with pytest.raises(ValueError, match="not enabled"):
            vt_opt.strategy = "greedy"
    assert vt_opt.enabled


@pytest.mark.skipif(torch.backends.opt_einsum.is_available(), reason="the surface without opt_einsum")
def test_without_the_package_as_torch():
    assert vt.backends.opt_einsum.is_available() is False and vt.backends.opt_einsum.get_opt_einsum() is None
    assert vt.backends.opt_einsum.enabled is torch.backends.opt_einsum.enabled is False
    assert vt.backends.opt_einsum.strategy is torch.backends.opt_einsum.strategy is None
    a = [np.ones((2, 3)), np.ones((3, 4)), np.ones((4, 2))]
    for lib in (torch, vt):  # flags check their arguments; assignments only store them
        with pytest.raises(ValueError, match="opt_einsum is not available, so setting `enabled` to True"):
            with lib.backends.opt_einsum.flags(enabled=True):
                pass
        with pytest.raises(ValueError, match="setting `strategy` to greedy will not be meaningful"):
            with lib.backends.opt_einsum.flags(strategy="greedy"):
                pass
        try:
            lib.backends.opt_einsum.enabled, lib.backends.opt_einsum.strategy = True, "greedy"
            assert lib.backends.opt_einsum.enabled is True and lib.backends.opt_einsum.strategy == "greedy"
            out = lib.einsum("ij,jk,kl->il", *[lib.from_numpy(x) for x in a])  # still left to right
            np.testing.assert_array_equal(out.numpy(), np.full((2, 2), 12.0))
        finally:
            lib.backends.opt_einsum.enabled, lib.backends.opt_einsum.strategy = False, None


@pytest.mark.skipif(not torch.backends.opt_einsum.is_available(), reason="needs the opt_einsum package")
@pytest.mark.parametrize("case", range(len(CASES)))
def test_autocast_products_follow_torchs_order(case, rng):
    equation, shapes, _ = CASES[case]
    arrs = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        want = torch.einsum(equation, *[torch.from_numpy(a) for a in arrs])
    with vt.autocast("cpu", dtype=vt.bfloat16):
        got = vt.einsum(equation, *[vt.from_numpy(a) for a in arrs])
    assert str(got.dtype).split(".")[-1] == str(want.dtype).split(".")[-1]
    np.testing.assert_allclose(got.float().numpy(), want.float().numpy(), rtol=1e-2, atol=1e-2)
