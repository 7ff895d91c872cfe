"""The geometric models of tests/models/geometric.py, loaded once with torch and once with vibetensor swapped in for
torch, with the same weights: the EGNN's features and coordinates and every gradient (mean or sum aggregation,
attention, normalised differences, edge attributes; float32 and float64), its E(3) equivariance (rotated,
reflected and translated inputs give rotated and translated coordinates and the same features), the segment sums
against numpy, Adam steps on a coordinate denoising loss; the rotation utilities (quaternions, the 6D
representation, Kabsch by SVD) against torch and their defining properties, and the aligned RMSD's invariance and
gradient. On the CPU and, where both see a GPU, on the GPU (marker cuda)."""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from side_by_side import both, close, DEVICES, load_torch_weights, train_side_by_side
from swap_import import pair

tgeo, vgeo = pair("geometric.py")

CONFIGS = {"mean": dict(), "sum-attention-normalized": dict(attention=True, normalize=True, coords_agg="sum",
                                                            tanh=True), "no-residual": dict(residual=False)}


def build(seed=0, device="cpu", dtype="float32", edge_dim=0, **cfg):
    torch.manual_seed(seed)
    tm = tgeo.EGNN(3, 8, 2, edge_dim=edge_dim, **cfg)
    vm = vgeo.EGNN(3, 8, 2, edge_dim=edge_dim, **cfg)
    load_torch_weights(vm, tm)
    if dtype == "float64":
        tm.double()
        vm.double()
    return tm.to(device), vm.to(device)


def graph(seed, n=6, dtype=np.float32):
    r = np.random.default_rng(seed)
    return r.standard_normal((n, 3)).astype(dtype), r.standard_normal((n, 3)).astype(dtype)


def random_rotation(seed):
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((3, 3)))
    return q  # orthogonal: a rotation or a reflection


def test_segment_sums_and_edges_match_numpy_and_torch():
    r = np.random.default_rng(1)
    data = r.standard_normal((7, 3))
    ids = np.array([0, 2, 2, 4, 0, 2, 1])
    (td, ti), (vd, vi) = both("cpu", data, ids)
    expect = np.zeros((5, 3))
    np.add.at(expect, ids, data)
    np.testing.assert_allclose(vgeo.unsorted_segment_sum(vd, vi, 5).numpy(), expect, rtol=1e-12)
    counts = np.maximum(np.bincount(ids, minlength=5), 1)[:, None]
    np.testing.assert_allclose(vgeo.unsorted_segment_mean(vd, vi, 5).numpy(), expect / counts, rtol=1e-12)
    close(vgeo.unsorted_segment_mean(vd, vi, 5), tgeo.unsorted_segment_mean(td, ti, 5), rtol=1e-12)
    edges = vgeo.full_edges(4)
    np.testing.assert_array_equal(edges.numpy(), tgeo.full_edges(4).numpy())
    assert tuple(edges.shape) == (2, 12) and edges.dtype == vt.int64 and (edges[0] != edges[1]).all().item()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_egnn_forward_and_gradients_match_torch(name, dtype, device):
    tm, vm = build(seed=2, device=device, dtype=dtype, **CONFIGS[name])
    assert list(vm.state_dict()) == list(tm.state_dict())
    npd = np.float32 if dtype == "float32" else np.float64
    (th, tx), (vh, vx) = both(device, *graph(2, dtype=npd))
    tx.requires_grad_()
    vx.requires_grad_()
    te, ve = tgeo.full_edges(6, device=device), vgeo.full_edges(6, device=device)
    (tho, txo), (vho, vxo) = tm(th, tx, te), vm(vh, vx, ve)
    tol = dict(rtol=1e-4, atol=1e-6) if dtype == "float32" else dict(rtol=1e-10, atol=1e-13)
    close(vho, tho, **tol)
    close(vxo, txo, **tol)
    tl = tho.pow(2).sum() + (txo - tx.detach()).pow(2).sum() * 1e4
    vl = vho.pow(2).sum() + (vxo - vx.detach()).pow(2).sum() * 1e4
    tl.backward()
    vl.backward()
    close(vx.grad, tx.grad, rtol=1e-3 if dtype == "float32" else 1e-8, atol=1e-6)
    tp = dict(tm.named_parameters())
    for n, p in vm.named_parameters():
        assert p.grad is not None, n
        close(p.grad, tp[n].grad, rtol=1e-3 if dtype == "float32" else 1e-8, atol=1e-6)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_egnn_is_e3_equivariant(name):
    _, vm = build(seed=3, dtype="float64", **CONFIGS[name])
    with vt.no_grad():
        for layer in vm.layers:  # coordinate updates large enough to see (the init's gain is 0.001)
            layer.coord_mlp[2].weight.mul_(300.0)
    h, x = graph(3, dtype=np.float64)
    rot, shift = random_rotation(3), np.array([[0.5, -2.0, 1.0]])
    edges = vgeo.full_edges(6)
    with vt.no_grad():
        h1, x1 = vm(vt.from_numpy(h), vt.from_numpy(x), edges)
        h2, x2 = vm(vt.from_numpy(h), vt.from_numpy(x @ rot.T + shift), edges)
    assert np.abs(x1.numpy() - x).max() > 1e-2  # the coordinates did move
    np.testing.assert_allclose(h2.numpy(), h1.numpy(), rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(x2.numpy(), x1.numpy() @ rot.T + shift, rtol=1e-9, atol=1e-10)


def test_egnn_with_edge_attributes_matches_torch():
    tm, vm = build(seed=4, edge_dim=2)
    (th, tx), (vh, vx) = both("cpu", *graph(4))
    te, ve = tgeo.full_edges(6), vgeo.full_edges(6)
    attr = np.random.default_rng(4).standard_normal((30, 2)).astype(np.float32)
    (ta,), (va,) = both("cpu", attr)
    (tho, txo), (vho, vxo) = tm(th, tx, te, ta), vm(vh, vx, ve, va)
    close(vho, tho)
    close(vxo, txo)


@pytest.mark.parametrize("device", DEVICES)
def test_denoising_training_matches_torch(device):
    tm, vm = build(seed=5, device=device, **CONFIGS["sum-attention-normalized"])
    topt = torch.optim.Adam(tm.parameters(), lr=1e-2)
    vopt = vt.optim.Adam(vm.parameters(), lr=1e-2)
    h, x = graph(5)
    noisy = x + 0.3 * np.random.default_rng(5).standard_normal(x.shape).astype(np.float32)
    (th, tx, tn), (vh, vx, vn) = both(device, h, x, noisy)
    te, ve = tgeo.full_edges(6, device=device), vgeo.full_edges(6, device=device)
    train_side_by_side(tm, vm, topt, vopt, lambda step: ((tm(th, tn, te)[1] - tx).pow(2).mean() * 100,
                                                         (vm(vh, vn, ve)[1] - vx).pow(2).mean() * 100), 5)


def test_rotation_representations_match_torch():
    r = np.random.default_rng(6)
    q = r.standard_normal((5, 4))
    d6 = r.standard_normal((2, 3, 6))
    (tq, td), (vq, vd) = both("cpu", q, d6)
    td.requires_grad_()
    vd.requires_grad_()
    vmat = vgeo.quaternion_to_matrix(vq)
    close(vmat, tgeo.quaternion_to_matrix(tq), rtol=1e-12, atol=1e-14)
    tR, vR = tgeo.rotation_6d_to_matrix(td), vgeo.rotation_6d_to_matrix(vd)
    close(vR, tR, rtol=1e-12, atol=1e-14)
    for m in (vmat.numpy(), vR.detach().numpy().reshape(-1, 3, 3)):  # proper rotations
        np.testing.assert_allclose(m @ m.transpose(0, 2, 1), np.broadcast_to(np.eye(3), m.shape), atol=1e-12)
        np.testing.assert_allclose(np.linalg.det(m), 1.0, rtol=1e-12)
    w = r.standard_normal((2, 3, 3, 3))
    (tR * torch.from_numpy(w)).sum().backward()
    (vR * vt.from_numpy(w)).sum().backward()
    close(vd.grad, td.grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("reflect", [False, True])
def test_kabsch_alignment_and_rmsd_match_torch(reflect):
    """Q is P rotated (or reflected: the sign fix still returns a proper rotation), moved and noised."""
    r = np.random.default_rng(7)
    P = r.standard_normal((3, 7, 3))
    rots = np.stack([random_rotation(10 + i) for i in range(3)])
    rots = rots * np.sign(np.linalg.det(rots))[:, None, None] * (-1 if reflect else 1)
    Q = P @ rots.transpose(0, 2, 1) + r.standard_normal((3, 1, 3)) + 0.01 * r.standard_normal(P.shape)
    (tP, tQ), (vP, vQ) = both("cpu", P, Q)
    tP.requires_grad_()
    vP.requires_grad_()
    (tR, tt), (vR, vtr) = tgeo.kabsch(tP, tQ), vgeo.kabsch(vP, vQ)
    close(vR, tR, rtol=1e-9, atol=1e-11)
    close(vtr, tt, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(np.linalg.det(vR.detach().numpy()), 1.0, rtol=1e-12)
    if not reflect:
        np.testing.assert_allclose(vR.detach().numpy(), rots, atol=0.02)
    tl, vl = tgeo.aligned_rmsd(tP, tQ), vgeo.aligned_rmsd(vP, vQ)
    close(vl, tl, rtol=1e-9, atol=1e-12)
    assert (vl.detach().numpy() < 0.05).all() != reflect
    tl.sum().backward()
    vl.sum().backward()
    close(vP.grad, tP.grad, rtol=1e-6, atol=1e-9)
    # invariant to a rigid motion of P
    moved = vt.from_numpy(P @ random_rotation(20).T * np.sign(np.linalg.det(random_rotation(20))) + 3.0)
    close(vgeo.aligned_rmsd(moved, vQ), vl, rtol=1e-8, atol=1e-10)
