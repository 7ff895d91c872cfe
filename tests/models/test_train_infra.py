"""train_infra.py's script functions run on torch and on vibetensor: every value they log (collated batches,
losses, lrs, momenta, grad norms, scales, hook outputs, checkpoints) and the final weights agree. Where the
two libraries' random streams differ by contract (vibetensor's generator is not torch's Mersenne Twister), the
test feeds torch's index stream to both and checks each library's own sampler for seeded replay instead."""
import math

import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from side_by_side import DEVICES, load_torch_weights
from swap_import import pair

TMOD, VMOD = pair("train_infra.py")


def same(v, t, path="", rtol=1e-9, atol=1e-12):
    """Recursive comparison of a vibetensor structure with torch's: same containers, types, dtypes, values."""
    if isinstance(t, torch.Tensor):
        assert isinstance(v, vt.Tensor), f"{path}: {type(v)}"
        assert str(v.dtype).split(".")[-1] == str(t.dtype).split(".")[-1], f"{path}: {v.dtype} vs {t.dtype}"
        assert tuple(v.shape) == tuple(t.shape), f"{path}: {tuple(v.shape)} vs {tuple(t.shape)}"
        np.testing.assert_allclose(v.detach().cpu().numpy(), t.detach().cpu().numpy(), rtol=rtol, atol=atol,
                                   err_msg=path)
    elif isinstance(t, dict):
        assert isinstance(v, dict) and list(v) == list(t), f"{path}: keys {list(v)} vs {list(t)}"
        for k in t:
            same(v[k], t[k], f"{path}.{k}", rtol, atol)
    elif isinstance(t, (list, tuple)):
        assert type(v) is type(t) and len(v) == len(t), f"{path}: {type(v)} {len(v)} vs {type(t)} {len(t)}"
        for i, (a, b) in enumerate(zip(v, t)):
            same(a, b, f"{path}[{i}]", rtol, atol)
    elif isinstance(t, float):
        assert isinstance(v, float) and (v == t or math.isclose(v, t, rel_tol=rtol, abs_tol=atol)
                                         or (math.isnan(v) and math.isnan(t))), f"{path}: {v} vs {t}"
    else:
        assert v == t, f"{path}: {v!r} vs {t!r}"


def weight_norm_tol(device, rtol=1e-9, atol=1e-12):
    """InfraNet's head is weight-normed: torch's CUDA weight-norm kernel takes the norm's reciprocal in float32
    (8.8e-9 from the exact float64 value on an H100; vt's is exact), so on CUDA its float64 reference is good to
    about 1e-8, and its gradients (of order 1e-3) to about 1e-9 absolute."""
    return dict(rtol=max(rtol, 1e-6), atol=max(atol, 1e-9)) if device == "cuda" else dict(rtol=rtol, atol=atol)


def data(n=14, seed=0):
    r = np.random.default_rng(seed)
    return r.standard_normal((n, 6)), r.integers(0, 3, size=n)


def models(device="cpu"):
    torch.manual_seed(0)
    tm, vm = TMOD.InfraNet().double().to(device), VMOD.InfraNet().double().to(device)
    assert list(vm.state_dict()) == list(tm.state_dict())
    load_torch_weights(vm, tm)
    return tm, vm


def inputs(device, x, y):
    return (torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)), (vt.from_numpy(x).to(device),
                                                                             vt.from_numpy(y).to(device))


def test_collated_batches_match_for_torchs_index_stream():
    x, y = data()
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(5)).tolist()
    tb, vb = TMOD.collated_batches(x, y, order), VMOD.collated_batches(x, y, order)
    same(vb, tb)
    assert len(tb["dict"]) == 3 and tb["dict"][0]["meta"]["pair"][1].shape == (4, 2)  # drop_last, nested lists
    assert isinstance(tb["named"][0][1], tuple) and isinstance(tb["dict"][0]["meta"]["name"], list)


@pytest.mark.parametrize("lib", ["torch", "vt"])
def test_seeded_samplers_and_split_replay_within_each_library(lib):
    L = torch if lib == "torch" else vt
    data_mod = TMOD if lib == "torch" else VMOD
    tds = data_mod.datasets(*data())[0]

    def draw(seed):
        g = L.Generator().manual_seed(seed)
        a, b = L.utils.data.random_split(tds, [0.75, 0.25], generator=g)
        w = list(L.utils.data.WeightedRandomSampler([0.0, 1.0, 3.0, 0.0], 40, generator=g))
        s = list(L.utils.data.SubsetRandomSampler([2, 5, 7, 11], generator=g))
        return a.indices, b.indices, w, s

    first = draw(3)
    assert first == draw(3)
    a, b, w, s = first
    assert (len(a), len(b)) == (11, 3) and sorted(a + b) == list(range(14))
    assert set(w) <= {1, 2} and w.count(2) > w.count(1)  # zero-weight rows never drawn
    assert sorted(s) == [2, 5, 7, 11]


@pytest.mark.parametrize("device", DEVICES)
def test_nn_utils_trace_matches_torch(device):
    tm, vm = models(device)
    (tx, ty), (vx, vy) = inputs(device, *data())
    tl, vl = TMOD.nn_utils_trace(tm, tx, ty), VMOD.nn_utils_trace(vm, vx, vy)
    same(vl, tl, **weight_norm_tol(device))
    assert tl["raised"] is True and tl["after_remove"] == [False, True]
    assert tl["orthogonality"].item() < 1e-12
    mask = tl["pruned"][1]
    assert tl["pruned"][4] and (mask.sum(1) == 0).sum() == 2 and (mask == 0).sum() >= 14
    assert not tl["pruned_final"][1] and "inp.weight" in tl["pruned_final"][0]


@pytest.mark.parametrize("device", DEVICES)
def test_hooks_and_autograd_grad_match_torch(device):
    tm, vm = models(device)
    (tx, ty), (vx, vy) = inputs(device, *data())
    tl, vl = TMOD.hook_trace(tm, tx, ty), VMOD.hook_trace(vm, vx, vy)
    same(vl, tl, **weight_norm_tol(device))
    assert len(tl["bwd"]) == 1 and tl["unused_none"][1] is None
    seen = [n for n, _ in tl["global_seen"]]  # parametrizations are modules too: the global hook sees them
    assert seen[:4] == ["Linear", "Symmetric", "ParametrizationList", "ParametrizedLinear"] and len(tl["pre"]) == 1


def test_orthogonal_parametrization_trains_like_torch():
    r = np.random.default_rng(4)
    w, x = r.standard_normal((5, 5)), r.standard_normal((3, 5))
    tl, vl = TMOD.orthogonal_trace(w, torch.from_numpy(x)), VMOD.orthogonal_trace(w, vt.from_numpy(x))
    same(vl, tl, rtol=1e-9, atol=1e-12)
    q = tl["cayley"][1]
    assert torch.allclose(q @ q.T, torch.eye(5, dtype=q.dtype)) and tl["cayley"][0][-1] < tl["cayley"][0][0]


@pytest.mark.parametrize("kind", ["sequential", "chained", "cyclic", "onecycle3", "onecycle_linear",
                                  "warm_restarts"])
def test_scheduler_chains_log_the_same_lrs_and_momenta(kind):
    same(VMOD.schedule_trace(kind), TMOD.schedule_trace(kind), kind, rtol=1e-12)


@pytest.mark.parametrize("kw", [dict(mode="min", factor=0.5, patience=1, threshold=0.1, cooldown=1, min_lr=0.1),
                                dict(mode="max", factor=0.3, patience=0, threshold_mode="abs", threshold=0.5),
                                dict(mode="min", patience=2, eps=0.2, min_lr=[0.05])])
def test_reduce_on_plateau_matches_torch(kw):
    metrics = [5.0, 4.8, 4.7, 4.9, 3.0, 3.1, 3.05, 3.2, 2.0, 2.5, 2.6, 2.7, 2.8]
    same(VMOD.plateau_trace(metrics, **kw), TMOD.plateau_trace(metrics, **kw), str(kw), rtol=1e-12)


@pytest.mark.parametrize("device", DEVICES)
def test_training_script_with_checkpoint_round_trip_matches_torch(device):
    tm, vm = models(device)
    x, y = data(n=20, seed=1)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(2)).tolist()
    tl = TMOD.train_script(tm, x, y, order)
    vl = VMOD.train_script(vm, x, y, order)
    tol = weight_norm_tol(device, rtol=1e-7, atol=1e-10)
    if device == "cuda":  # twelve SGD steps carry torch's 1e-8 head errors into every weight
        tol = dict(rtol=1e-5, atol=1e-8)
    same(vl, tl, **tol)
    assert tl["loss"][-1] < tl["loss"][0]
    ts = tm.state_dict()
    for k, v in vm.state_dict().items():
        same(v, ts[k], k, **tol)


def test_grad_scaler_skips_inf_steps_like_torch():
    tm, vm = models()
    (tx, ty), (vx, vy) = inputs("cpu", *data())
    tl, vl = TMOD.scaler_trace(tm, tx, ty), VMOD.scaler_trace(vm, vx, vy)
    same(vl, tl, rtol=1e-9, atol=1e-12)
    assert tl["scale"] == [256.0, 128.0, 128.0, 64.0, 64.0]
    ts = tm.state_dict()
    for k, v in vm.state_dict().items():
        same(v, ts[k], k)


@pytest.mark.parametrize("mod", [TMOD, VMOD], ids=["torch", "vt"])
def test_rng_state_replay_within_each_library(mod):
    a, b, a2, b2, c, c2, dtype = mod.rng_trace(7)
    for first, replay in ((a, a2), (b, b2), (c, c2)):
        assert first.tolist() == replay.tolist()
    # torch's state is its Mersenne Twister's bytes; vibetensor's is Philox's [seed, offset] (documented in random.py)
    assert str(dtype).endswith("uint8" if mod is TMOD else "int64") and sorted(c.tolist()) == list(range(6))
    assert mod.rng_trace(7)[0].tolist() == a.tolist() and mod.rng_trace(8)[0].tolist() != a.tolist()
