"""Adadelta, RAdam, ASGD, the extra lr schedulers, the extra nn.init functions and nn.Module methods against
torch: float64 trajectories equal torch's after every step; state_dicts hold torch's keys and load both ways; lr
sequences (step() and step(epoch)) and scheduler state_dicts equal torch's; init functions have torch's shapes,
statistics and errors and run under no_grad; module methods behave as torch's."""
import math
import warnings

import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from vibetensor.torch.optim import lr_scheduler_more as vsched
from vibetensor.torch.optim.more_optimizers2 import ASGD, Adadelta, RAdam

VT_OPT = {"Adadelta": Adadelta, "RAdam": RAdam, "ASGD": ASGD}
CASES = [
    ("Adadelta", {}), ("Adadelta", {"rho": 0.5, "eps": 1e-3, "weight_decay": 0.1, "lr": 0.5}),
    ("Adadelta", {"maximize": True}),
    ("RAdam", {}), ("RAdam", {"weight_decay": 0.1}), ("RAdam", {"weight_decay": 0.1, "decoupled_weight_decay": True}),
    # betas[1] small so rho_t passes 5 within the run: both branches of the rectification are taken
    ("RAdam", {"betas": (0.8, 0.5), "eps": 1e-3, "maximize": True, "lr": 0.05}),
    ("ASGD", {}), ("ASGD", {"lambd": 0.1, "alpha": 0.5, "t0": 2, "weight_decay": 0.1, "lr": 0.1}),
    ("ASGD", {"t0": 0, "maximize": True}),
]
SHAPES = [(3, 4), (5,), (), (2, 0, 3), (1, 7)]


def to_vt(a):
    return vt.from_numpy(np.array(a, copy=True))


def make_params(rng):
    arrays = [rng.standard_normal(s) for s in SHAPES]
    return [torch.tensor(a, requires_grad=True) for a in arrays], [vt.nn.Parameter(to_vt(a)) for a in arrays]


def set_grads(tp, vp, rng, skip=None):
    for i, (t, v) in enumerate(zip(tp, vp)):
        if i == skip:
            t.grad, v.grad = None, None
            continue
        g = rng.standard_normal(tuple(t.shape))
        t.grad, v.grad = torch.tensor(g), to_vt(g)


def run(topt, vopt, tp, vp, rng, steps):
    for k in range(steps):
        set_grads(tp, vp, rng, skip=1 if k == 2 else None)
        topt.step()
        vopt.step()
        for t, v in zip(tp, vp):
            np.testing.assert_allclose(v.detach().numpy(), t.detach().numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name,kw", CASES)
def test_trajectory_and_state_match_torch(name, kw, rng):
    tp, vp = make_params(rng)
    topt, vopt = getattr(torch.optim, name)(tp, **kw), VT_OPT[name](vp, **kw)
    run(topt, vopt, tp, vp, rng, 8)
    assert vopt.state_dict()["param_groups"] == topt.state_dict()["param_groups"]
    tstate, vstate = topt.state_dict()["state"], vopt.state_dict()["state"]
    assert sorted(tstate) == sorted(vstate)
    for i in tstate:
        assert sorted(tstate[i]) == sorted(vstate[i])
        for key, tv in tstate[i].items():
            vv = vstate[i][key]
            if key in ("step", "eta", "mu"):
                assert float(vv) == pytest.approx(float(tv), rel=1e-7)
            else:
                np.testing.assert_allclose(vv.numpy(), tv.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name,kw", [CASES[1], CASES[5], CASES[8]])
def test_state_dict_loads_from_torch_and_continues(name, kw, rng):
    tp, vp = make_params(rng)
    topt = getattr(torch.optim, name)(tp, **kw)
    set_grads(tp, vp, rng)
    topt.step()
    for t, v in zip(tp, vp):
        v.detach().copy_(to_vt(t.detach().numpy()))
    vopt = VT_OPT[name](vp, **kw)
    sd = topt.state_dict()
    # torch's load casts state tensors to the parameter's dtype (ASGD's float32 eta, mu become float64), so
    # the reference is a torch optimizer loaded from the same state
    tp = [t.detach().clone().requires_grad_() for t in tp]
    topt = getattr(torch.optim, name)(tp, **kw)
    topt.load_state_dict(sd)
    vopt.load_state_dict({"state": {i: {k: (v if k == "step" else to_vt(v.numpy())) for k, v in s.items()}
                                    for i, s in sd["state"].items()}, "param_groups": sd["param_groups"]})
    run(topt, vopt, tp, vp, rng, 3)


def test_per_group_options(rng):
    tp, vp = make_params(rng)
    topt = torch.optim.RAdam([{"params": tp[:2]}, {"params": tp[2:], "lr": 0.1, "betas": (0.5, 0.6)}])
    vopt = RAdam([{"params": vp[:2]}, {"params": vp[2:], "lr": 0.1, "betas": (0.5, 0.6)}])
    run(topt, vopt, tp, vp, rng, 6)


@pytest.mark.parametrize("name,kw,msg", [
    ("Adadelta", {"lr": -1}, "Invalid learning rate"), ("Adadelta", {"rho": 1.5}, "Invalid rho value"),
    ("Adadelta", {"eps": -1}, "Invalid epsilon value"), ("Adadelta", {"weight_decay": -1}, "Invalid weight_decay"),
    ("RAdam", {"betas": (1.0, 0.9)}, "Invalid beta parameter at index 0"),
    ("RAdam", {"betas": (0.9, -0.1)}, "Invalid beta parameter at index 1"), ("RAdam", {"lr": -1}, "learning rate"),
    ("RAdam", {"weight_decay": -1}, "Invalid weight_decay"), ("ASGD", {"lr": -0.1}, "Invalid learning rate"),
    ("ASGD", {"weight_decay": -1}, "Invalid weight_decay"),
])
def test_argument_errors_match_torch(name, kw, msg):
    with pytest.raises(ValueError, match=msg):
        getattr(torch.optim, name)([torch.zeros(1, requires_grad=True)], **kw)
    with pytest.raises(ValueError, match=msg):
        VT_OPT[name]([vt.nn.Parameter(vt.zeros(1))], **kw)


def test_closure_is_evaluated_and_returned():
    p = vt.nn.Parameter(vt.ones(3))
    opt = Adadelta([p])

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss
    assert float(opt.step(closure)) == 3.0
    assert p.grad is not None


# ---- lr schedulers -------------------------------------------------------------------------------------------

class Mul:
    def __init__(self, f):
        self.f = f

    def __call__(self, epoch):
        return self.f ** (epoch % 3)


SCHED = [
    ("MultiplicativeLR", lambda m: {"lr_lambda": Mul(0.9)}),
    ("MultiplicativeLR", lambda m: {"lr_lambda": [lambda e: 0.95, lambda e: 1.01]}),
    ("MultiStepLR", lambda m: {"milestones": [2, 5, 5, 9], "gamma": 0.3}),
    ("ConstantLR", lambda m: {}), ("ConstantLR", lambda m: {"factor": 0.5, "total_iters": 3}),
    ("ExponentialLR", lambda m: {"gamma": 0.7}),
    ("PolynomialLR", lambda m: {}), ("PolynomialLR", lambda m: {"total_iters": 7, "power": 2.5}),
    ("CosineAnnealingWarmRestarts", lambda m: {"T_0": 3}),
    ("CosineAnnealingWarmRestarts", lambda m: {"T_0": 2, "T_mult": 2, "eta_min": 0.01}),
]


def two_group_opts():
    tp = [torch.zeros(2, requires_grad=True), torch.zeros(1, requires_grad=True)]
    vp = [vt.nn.Parameter(vt.zeros(2)), vt.nn.Parameter(vt.zeros(1))]
    topt = torch.optim.SGD([{"params": tp[:1]}, {"params": tp[1:], "lr": 0.3}], lr=0.1)
    vopt = vt.optim.SGD([{"params": vp[:1]}, {"params": vp[1:], "lr": 0.3}], lr=0.1)
    return topt, vopt


def comparable(state):
    return {k: (v if k != "lr_lambdas" else [None if s is None else dict(s) for s in v]) for k, v in state.items()
            if k not in ("_get_lr_called_within_step",)}


@pytest.mark.parametrize("name,kw", SCHED)
def test_scheduler_sequence_and_state_dict_match_torch(name, kw):
    topt, vopt = two_group_opts()
    ts, vs = getattr(torch.optim.lr_scheduler, name)(topt, **kw(torch)), getattr(vsched, name)(vopt, **kw(vt))
    for _ in range(14):
        assert vs.get_last_lr() == ts.get_last_lr()
        assert [g["lr"] for g in vopt.param_groups] == [g["lr"] for g in topt.param_groups]
        topt.step()
        ts.step()
        vs.step()
    tsd, vsd = ts.state_dict(), vs.state_dict()
    assert sorted(vsd) == sorted(k for k in tsd if k != "_get_lr_called_within_step")
    for k in vsd:
        assert vsd[k] == tsd[k], k
    # a fresh scheduler loaded from torch's state continues on torch's sequence
    topt2, vopt2 = two_group_opts()
    vs2 = getattr(vsched, name)(vopt2, **kw(vt))
    vs2.load_state_dict({k: v for k, v in tsd.items() if k != "_get_lr_called_within_step"})
    for g, lr in zip(vopt2.param_groups, ts.get_last_lr()):
        g["lr"] = lr
    for _ in range(4):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ts.step()
        vs2.step()
        assert vs2.get_last_lr() == ts.get_last_lr()


@pytest.mark.parametrize("name,kw", [s for s in SCHED if s[0] != "MultiplicativeLR"])
def test_scheduler_step_epoch_closed_form(name, kw):
    topt, vopt = two_group_opts()
    ts, vs = getattr(torch.optim.lr_scheduler, name)(topt, **kw(torch)), getattr(vsched, name)(vopt, **kw(vt))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for e in [3, 7, 1, 12, 5]:
            ts.step(e)
            vs.step(e)
            assert vs.get_last_lr() == pytest.approx(ts.get_last_lr(), rel=1e-15)


def test_cosine_warm_restarts_fractional_epochs_and_errors():
    topt, vopt = two_group_opts()
    ts = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(topt, T_0=2, T_mult=3)
    vs = vsched.CosineAnnealingWarmRestarts(vopt, T_0=2, T_mult=3)
    for e in np.linspace(0, 20, 37):
        ts.step(float(e))
        vs.step(float(e))
        assert vs.get_last_lr() == pytest.approx(ts.get_last_lr(), rel=1e-15)
        assert vs.last_epoch == ts.last_epoch and vs.T_i == ts.T_i
    for kw, msg in [({"T_0": 0}, "positive integer T_0"), ({"T_0": 2.0}, "positive integer T_0"),
                    ({"T_0": 2, "T_mult": 0}, "T_mult >= 1"), ({"T_0": 2, "eta_min": "x"}, "eta_min")]:
        with pytest.raises(ValueError, match=msg):
            torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(topt, **kw)
        with pytest.raises(ValueError, match=msg):
            vsched.CosineAnnealingWarmRestarts(vopt, **kw)
    with pytest.raises(ValueError, match="non-negative epoch"):
        vs.step(-1)


def test_scheduler_argument_errors():
    topt, vopt = two_group_opts()
    for mod, opt in ((torch.optim.lr_scheduler, topt), (vsched, vopt)):
        with pytest.raises(ValueError, match="between 0 and 1"):
            mod.ConstantLR(opt, factor=1.5)
        with pytest.raises(ValueError, match="Expected 2 lr_lambdas, but got 1"):
            mod.MultiplicativeLR(opt, [lambda e: 1.0])
        with pytest.raises(TypeError, match="lr_lambda should be a function"):
            mod.MultiplicativeLR(opt, 3)
        with pytest.raises(ValueError, match="at least one scheduler"):
            mod.ChainedScheduler([])


def test_chained_scheduler_matches_torch():
    topt, vopt = two_group_opts()
    tch = torch.optim.lr_scheduler.ChainedScheduler([
        torch.optim.lr_scheduler.ConstantLR(topt, factor=0.1, total_iters=2),
        torch.optim.lr_scheduler.ExponentialLR(topt, gamma=0.9)])
    vch = vsched.ChainedScheduler([vsched.ConstantLR(vopt, factor=0.1, total_iters=2),
                                   vsched.ExponentialLR(vopt, gamma=0.9)])
    for _ in range(8):
        assert vch.get_last_lr() == tch.get_last_lr()
        tch.step()
        vch.step()
    tsd, vsd = tch.state_dict(), vch.state_dict()
    assert sorted(vsd) == sorted(tsd) and vsd["_last_lr"] == tsd["_last_lr"]
    assert [sorted(s) for s in vsd["_schedulers"]] == [sorted(k for k in s if k != "_get_lr_called_within_step")
                                                        for s in tsd["_schedulers"]]
    other = vt.optim.SGD([vt.nn.Parameter(vt.zeros(1))], lr=0.1)
    with pytest.raises(ValueError, match="belong to the same optimizer"):
        vsched.ChainedScheduler([vsched.ExponentialLR(vopt, 0.9), vsched.ExponentialLR(other, 0.9)])
