"""nn.init (bounds, moments, fans, errors), nn.utils (clip_grad_norm_/clip_grad_value_ against torch on the same
gradients, with foreach None/True/False over every floating dtype and mixed dtypes, get_total_norm and
clip_grads_with_norm_, error_if_nonfinite; parameters_to_vector), and vt.optim beyond SGD/AdamW basics: Adam (L2 weight decay, amsgrad,
maximize, both paths) and per-group options against torch, closures, add_param_group, state_dict round trips
with torch, and the lr schedulers' sequences against torch's to the last bit."""
import math

import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from foreach_cases import check_clip, check_clip_nonfinite, check_total_norm_then_clip


# ---- nn.init ----
def test_init_distributions_and_fans():
    vt.manual_seed(0)
    w = vt.empty(256, 128)
    vt.nn.init.xavier_uniform_(w)
    bound = math.sqrt(6 / (256 + 128))
    a = w.numpy()
    assert a.max() <= bound and a.min() >= -bound and a.std() == pytest.approx(bound / math.sqrt(3), rel=0.05)
    vt.nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")
    assert w.numpy().std() == pytest.approx(math.sqrt(2 / 256), rel=0.05)
    vt.nn.init.kaiming_uniform_(w, a=math.sqrt(5))
    assert np.abs(w.numpy()).max() <= 1 / math.sqrt(128) + 1e-7
    vt.nn.init.trunc_normal_(w, std=1.0, a=-0.5, b=0.5)
    assert np.abs(w.numpy()).max() <= 0.5 and w.numpy().std() > 0.2
    vt.nn.init.normal_(w, mean=2.0, std=0.5)
    assert w.numpy().mean() == pytest.approx(2.0, abs=0.01)
    c = vt.empty(8, 4, 3, 3)
    assert vt.nn.init._calculate_fan_in_and_fan_out(c) == torch.nn.init._calculate_fan_in_and_fan_out(
        torch.empty(8, 4, 3, 3))
    q = vt.empty(6, 10)
    vt.nn.init.orthogonal_(q)
    np.testing.assert_allclose(q.numpy() @ q.numpy().T, np.eye(6), atol=1e-5)
    for name in ("zeros_", "ones_"):
        getattr(vt.nn.init, name)(q)
    vt.nn.init.constant_(q, 0.25)
    assert set(q.numpy().ravel().tolist()) == {0.25}
    for nl, p in [("relu", None), ("leaky_relu", 0.2), ("tanh", None), ("linear", None), ("selu", None)]:
        assert vt.nn.init.calculate_gain(nl, p) == pytest.approx(torch.nn.init.calculate_gain(nl, p))
    with pytest.raises(ValueError):
        vt.nn.init.xavier_uniform_(vt.empty(5))
    p = vt.nn.Parameter(vt.empty(3, 3))
    vt.nn.init.normal_(p)
    assert p.is_leaf and p.requires_grad  # initialisers record no history


# ---- nn.utils ----
def grads_pair(rng, scale=3.0):
    shapes = [(4, 5), (5,), (3, 2, 2)]
    vs, ts = [], []
    for s in shapes:
        g = (rng.standard_normal(s) * scale).astype(np.float32)
        v, t = vt.nn.Parameter(vt.zeros(*s)), torch.nn.Parameter(torch.zeros(*s))
        v.grad, t.grad = vt.from_numpy(g.copy()), torch.from_numpy(g.copy())
        vs.append(v)
        ts.append(t)
    return vs, ts


@pytest.mark.parametrize("norm_type", [2.0, 1.0, float("inf"), 3.0])
@pytest.mark.parametrize("max_norm", [0.5, 1e6])
def test_clip_grad_norm_matches_torch(norm_type, max_norm, rng):
    vs, ts = grads_pair(rng)
    tn = torch.nn.utils.clip_grad_norm_(ts, max_norm, norm_type)
    vn = vt.nn.utils.clip_grad_norm_(vs, max_norm, norm_type)
    assert vn.dim() == 0
    np.testing.assert_allclose(vn.item(), tn.item(), rtol=1e-5)
    for v, t in zip(vs, ts):
        np.testing.assert_allclose(v.grad.numpy(), t.grad.numpy(), rtol=1e-5, atol=1e-7)


CLIP_DTYPES = [("float32",), ("float64",), ("bfloat16",), ("float16",), ("float32", "bfloat16", "float64")]


@pytest.mark.parametrize("foreach", [None, True, False])
@pytest.mark.parametrize("dtypes", CLIP_DTYPES, ids="+".join)
@pytest.mark.parametrize("norm_type", [2.0, 1.0, float("inf"), 3.0])
def test_clip_grad_norm_foreach_matches_torch(norm_type, dtypes, foreach, rng):
    check_clip(rng, dtypes, norm_type, 0.5, foreach, "cpu")


@pytest.mark.parametrize("foreach", [None, True, False])
def test_clip_grad_norm_nonfinite_and_halves(foreach, rng):
    check_clip_nonfinite(rng, foreach, "cpu")
    check_total_norm_then_clip(rng, foreach, "cpu")


def test_clip_grad_value_nonfinite_and_vectors(rng):
    vs, ts = grads_pair(rng)
    torch.nn.utils.clip_grad_value_(ts, 0.7)
    vt.nn.utils.clip_grad_value_(vs, 0.7)
    for v, t in zip(vs, ts):
        np.testing.assert_array_equal(v.grad.numpy(), t.grad.numpy())
    vs[0].grad[0, 0] = float("inf")
    with pytest.raises(RuntimeError, match="non-finite"):
        vt.nn.utils.clip_grad_norm_(vs, 1.0, error_if_nonfinite=True)
    assert vt.nn.utils.clip_grad_norm_([vt.nn.Parameter(vt.ones(2))], 1.0).item() == 0.0  # no grads
    vec = vt.nn.utils.parameters_to_vector(vs)
    tvec = torch.nn.utils.parameters_to_vector(ts)
    assert tuple(vec.shape) == tuple(tvec.shape)
    vt.nn.utils.vector_to_parameters(vt.arange(vec.numel(), dtype=vt.float32), vs)
    assert vs[1].tolist() == list(range(20, 25))


# ---- optimizers ----
def twin_params(rng, shapes=((4, 3), (3,), (2, 2))):
    vs, ts = [], []
    for s in shapes:
        a = rng.standard_normal(s).astype(np.float32)
        vs.append(vt.nn.Parameter(vt.from_numpy(a.copy())))
        ts.append(torch.nn.Parameter(torch.from_numpy(a.copy())))
    return vs, ts


def run_steps(vopt, topt, vs, ts, rng, steps=5, closure=False):
    for _ in range(steps):
        for v, t in zip(vs, ts):
            g = rng.standard_normal(tuple(t.shape)).astype(np.float32)
            v.grad, t.grad = vt.from_numpy(g.copy()), torch.from_numpy(g.copy())
        if closure:
            assert vopt.step(lambda: 1.5) == 1.5
            topt.step(lambda: 1.5)
        else:
            vopt.step()
            topt.step()
    for v, t in zip(vs, ts):
        np.testing.assert_allclose(v.detach().numpy(), t.detach().numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("fused", [None, False])
@pytest.mark.parametrize("kw", [dict(), dict(weight_decay=0.1), dict(amsgrad=True, weight_decay=0.05),
                                dict(maximize=True, weight_decay=0.1), dict(betas=(0.8, 0.9), eps=1e-6)])
@pytest.mark.parametrize("name", ["Adam", "AdamW"])
def test_adam_family_matches_torch(name, kw, fused, rng):
    vs, ts = twin_params(rng)
    extra = {} if fused is None else {"foreach": False}
    vopt = getattr(vt.optim, name)(vs, lr=1e-2, **kw, **extra)
    topt = getattr(torch.optim, name)(ts, lr=1e-2, **kw, foreach=False)
    run_steps(vopt, topt, vs, ts, rng, closure=True)


def test_param_groups_with_their_own_options(rng):
    vs, ts = twin_params(rng)
    groups = lambda ps: [{"params": [ps[0]], "weight_decay": 0.3, "lr": 0.05}, {"params": ps[1:]}]  # noqa: E731
    vopt = vt.optim.SGD(groups(vs), lr=0.01, momentum=0.9, nesterov=True)
    topt = torch.optim.SGD(groups(ts), lr=0.01, momentum=0.9, nesterov=True)
    assert [g["lr"] for g in vopt.param_groups] == [0.05, 0.01]
    assert set(vopt.param_groups[1]) <= set(topt.param_groups[1]) and vopt.param_groups[1]["weight_decay"] == 0
    run_steps(vopt, topt, vs, ts, rng)
    extra_v, extra_t = twin_params(rng, ((3,),))
    vopt.add_param_group({"params": extra_v, "lr": 0.2})
    topt.add_param_group({"params": extra_t, "lr": 0.2})
    run_steps(vopt, topt, vs + extra_v, ts + extra_t, rng)
    with pytest.raises(ValueError, match="more than one parameter group"):
        vopt.add_param_group({"params": [vs[0]]})
    with pytest.raises(ValueError, match="empty parameter list"):
        vt.optim.Adam([])
    with pytest.raises(TypeError):
        vt.optim.Adam(vs[0])
    with pytest.raises(ValueError, match="Invalid beta parameter at index 0"):
        vt.optim.Adam(vs, betas=(1.0, 0.9))


def test_state_dict_round_trips_with_torch(rng):
    vs, ts = twin_params(rng)
    vopt, topt = vt.optim.AdamW(vs, lr=1e-2), torch.optim.AdamW(ts, lr=1e-2, foreach=False)
    run_steps(vopt, topt, vs, ts, rng, steps=3)
    sd = vopt.state_dict()
    assert sd["param_groups"][0]["params"] == [0, 1, 2] and set(sd["state"][0]) == {"step", "exp_avg", "exp_avg_sq"}
    # vibetensor's state into torch, and torch's into vibetensor: both continue identically
    topt2 = torch.optim.AdamW(ts, lr=1e-2, foreach=False)
    topt2.load_state_dict({"state": {i: {k: (torch.tensor(float(v)) if k == "step" else torch.from_numpy(v.numpy().copy()))
                                         for k, v in s.items()} for i, s in sd["state"].items()},
                           "param_groups": sd["param_groups"]})
    vopt2 = vt.optim.AdamW(vs, lr=0.5)
    vopt2.load_state_dict(topt.state_dict())
    assert vopt2.param_groups[0]["lr"] == 1e-2 and vopt2.state[vs[0]]["step"] == 3
    run_steps(vopt2, topt2, vs, ts, rng, steps=2)
    with pytest.raises(ValueError, match="different number of parameter groups"):
        vopt2.load_state_dict({"state": {}, "param_groups": []})


def sequences(make, steps=12, opt="SGD", **okw):
    out = []
    for m in (vt, torch):
        p = [m.nn.Parameter(m.zeros(2)), m.nn.Parameter(m.zeros(1))]
        o = getattr(m.optim, opt)([{"params": [p[0]]}, {"params": [p[1]], "lr": 0.5}], lr=0.1, **okw)
        s = make(m.optim.lr_scheduler, o)
        lrs = [s.get_last_lr()]
        for _ in range(steps):
            o.step()
            s.step()
            lrs.append(s.get_last_lr())
        out.append((lrs, [g.get("momentum", g.get("betas")) for g in o.param_groups]))
    return out


@pytest.mark.parametrize("make", [
    lambda L, o: L.LambdaLR(o, lambda e: 0.9 ** e),
    lambda L, o: L.LambdaLR(o, [lambda e: 1.0 / (e + 1), lambda e: 0.5]),
    lambda L, o: L.StepLR(o, step_size=3, gamma=0.5),
    lambda L, o: L.CosineAnnealingLR(o, T_max=5, eta_min=0.01),
    lambda L, o: L.LinearLR(o, start_factor=0.25, total_iters=4),
    lambda L, o: L.SequentialLR(o, [L.LinearLR(o, 0.1, total_iters=3), L.CosineAnnealingLR(o, T_max=6)],
                                milestones=[3]),
    lambda L, o: L.OneCycleLR(o, max_lr=[1.0, 0.3], total_steps=12),
    lambda L, o: L.OneCycleLR(o, max_lr=1.0, total_steps=12, anneal_strategy="linear", three_phase=True),
], ids=["lambda", "lambda-per-group", "step", "cosine", "linear", "sequential", "onecycle", "onecycle-3"])
def test_schedulers_match_torch_exactly(make):
    (vl, vm), (tl, tm) = sequences(make, opt="SGD", momentum=0.9)
    assert vl == tl and vm == tm


def test_onecycle_cycles_adam_beta1_and_scheduler_state():
    (vl, vb), (tl, tb) = sequences(lambda L, o: L.OneCycleLR(o, max_lr=0.1, total_steps=12), opt="Adam")
    assert vl == tl and vb == tb
    p = [vt.nn.Parameter(vt.zeros(1))]
    o = vt.optim.SGD(p, lr=0.1)
    s = vt.optim.lr_scheduler.StepLR(o, 2)
    s.step()
    s2 = vt.optim.lr_scheduler.StepLR(vt.optim.SGD(p, lr=0.1), 2)
    s2.load_state_dict(s.state_dict())
    assert s2.last_epoch == 1
    with pytest.raises(ValueError, match="total_steps"):
        vt.optim.lr_scheduler.OneCycleLR(o, max_lr=0.1)
    with pytest.raises(ValueError, match="Starting multiplicative factor"):
        vt.optim.lr_scheduler.LinearLR(o, start_factor=0)
