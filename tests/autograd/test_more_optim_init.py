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
from vibetensor.torch.optim.adadelta_radam_asgd import ASGD, Adadelta, RAdam

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
    ("CyclicLR", lambda m: {"base_lr": 0.01, "max_lr": [0.1, 0.5], "step_size_up": 3}),
    ("CyclicLR", lambda m: {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 2, "step_size_down": 5,
                            "mode": "triangular2", "base_momentum": [0.7, 0.5], "max_momentum": 0.95}),
    ("CyclicLR", lambda m: {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 3, "mode": "exp_range", "gamma": 0.9}),
    ("CyclicLR", lambda m: {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 2, "scale_fn": Mul(0.8),
                            "scale_mode": "iterations", "cycle_momentum": False}),
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
        assert [g.get("momentum") for g in vopt.param_groups] == [g.get("momentum") for g in topt.param_groups]
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


@pytest.mark.parametrize("name,kw", [s for s in SCHED if s[0] not in ("MultiplicativeLR", "CyclicLR")])
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


# ---- nn.init.dirac_ ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape,groups", [((4, 2, 3), 1), ((4, 2, 3), 2), ((6, 3, 3, 5), 3), ((2, 5, 3, 3), 1),
                                          ((4, 4, 2, 2, 3), 2), ((3, 3, 1), 1)])
def test_dirac_matches_torch(shape, groups):
    from vibetensor.torch.nn.init_more import dirac_
    w = vt.nn.Parameter(vt.randn(*shape))
    out = dirac_(w, groups)
    assert out is w and w.requires_grad and w.grad_fn is None  # filled under no_grad
    expect = torch.nn.init.dirac_(torch.empty(shape), groups)
    np.testing.assert_array_equal(w.detach().numpy(), expect.numpy())
    # the identity property: a conv with it passes (per group) the input channels through
    if len(shape) == 4 and groups == 1 and shape[0] >= shape[1]:
        x = vt.randn(2, shape[1], 7, 8)
        y = vt.nn.functional.conv2d(x, w.detach(), padding=(shape[2] // 2, shape[3] // 2))
        np.testing.assert_allclose(y[:, :shape[1]].numpy(), x.numpy(), atol=1e-6)


@pytest.mark.parametrize("shape,groups,msg", [((3, 3), 1, "3, 4, or 5 dimensions"),
                                              ((3, 3, 3, 3, 3, 3), 1, "3, 4, or 5 dimensions"),
                                              ((5, 2, 3), 2, "divisible by groups")])
def test_dirac_errors_match_torch(shape, groups, msg):
    from vibetensor.torch.nn.init_more import dirac_
    with pytest.raises(ValueError, match=msg):
        torch.nn.init.dirac_(torch.empty(shape), groups)
    with pytest.raises(ValueError, match=msg):
        dirac_(vt.empty(*shape), groups)


# ---- nn.Module methods ---------------------------------------------------------------------------------------

import vibetensor.torch.nn.module_more  # noqa: E402,F401  (attaches the methods)


class Net:
    @staticmethod
    def make(m):
        net = m.nn.Sequential(m.nn.Linear(3, 4), m.nn.BatchNorm1d(4), m.nn.Sequential(m.nn.Tanh(), m.nn.Linear(4, 2)))
        return net


def test_get_buffer_and_set_submodule_match_torch():
    for m in (torch, vt):
        net = Net.make(m)
        assert net.get_buffer("1.running_mean") is net[1].running_mean
        with pytest.raises(AttributeError, match="has no attribute `nope`"):
            net.get_buffer("1.nope")
        with pytest.raises(AttributeError, match="`weight` is not a buffer"):
            net.get_buffer("1.weight")
        new = m.nn.ReLU()
        net.set_submodule("2.0", new)
        assert net[2][0] is new and net.get_submodule("2.0") is new
        with pytest.raises(ValueError, match="without a target name"):
            net.set_submodule("", new)
        with pytest.raises(ValueError, match="is not an nn.Module"):
            net.set_submodule("2.0", 3)
        with pytest.raises(AttributeError, match="has no attribute `zz`"):
            net.set_submodule("2.zz", new, strict=True)
        net.set_submodule("2.zz", new)
        assert net[2].zz is new and list(net[2]._modules) == ["0", "1", "zz"]
        with pytest.raises(AttributeError, match="`weight` is not an nn.Module"):
            net.set_submodule("0.weight", new)


@pytest.mark.parametrize("dst", ["float64", "float16", "torch.DoubleTensor", "torch.HalfTensor"])
def test_module_type_casts_everything_like_torch(dst):
    tn, vn = Net.make(torch), Net.make(vt)
    tdst = getattr(torch, dst) if "." not in dst else dst
    vdst = getattr(vt, dst) if "." not in dst else dst
    assert tn.type(tdst) is tn and vn.type(vdst) is vn
    tsd, vsd = tn.state_dict(), vn.state_dict()
    assert list(tsd) == list(vsd)
    for k in tsd:
        assert str(vsd[k].dtype).split(".")[1] == str(tsd[k].dtype).split(".")[1], k
    with pytest.raises(TypeError):
        vn.type("nonsense")


def test_reassigned_parameter_and_module_keep_their_place_like_torch():
    for m in (torch, vt):
        lin = m.nn.Linear(2, 2)
        lin.weight = m.nn.Parameter(m.zeros(2, 2))
        assert list(lin.state_dict()) == ["weight", "bias"]
        seq = m.nn.Sequential(m.nn.Tanh(), m.nn.ReLU())
        setattr(seq, "0", m.nn.Sigmoid())
        assert type(seq[0]).__name__ == "Sigmoid" and list(seq._modules) == ["0", "1"]


def test_to_empty_keeps_shapes_and_dtypes():
    net = Net.make(vt).double()
    before = {k: (tuple(v.shape), v.dtype) for k, v in net.state_dict().items()}
    assert net.to_empty(device="cpu") is net
    assert {k: (tuple(v.shape), v.dtype) for k, v in net.state_dict().items()} == before
    assert all(isinstance(p, vt.nn.Parameter) and p.requires_grad for p in net.parameters())


def hooked(m, log, replace=None):
    m.manual_seed(0)
    lin = m.nn.Linear(3, 2).double()
    with m.no_grad():
        lin.weight.copy_(m.tensor([[1.0, -2.0, 0.5], [0.3, 0.2, -1.0]], dtype=m.float64))

    def hook(mod, gi, go):
        log.append(("hook", [None if g is None else g.detach().numpy().copy() for g in gi],
                    [g.detach().numpy().copy() for g in go]))
        if replace == "grad_input":
            return tuple(None if g is None else g * 10 for g in gi)

    def pre(mod, go):
        log.append(("pre", [g.detach().numpy().copy() for g in go]))
        if replace == "grad_output":
            return tuple(g * 3 for g in go)
    lin.register_full_backward_hook(hook)
    lin.register_full_backward_pre_hook(pre)
    return lin


@pytest.mark.parametrize("replace", [None, "grad_input", "grad_output"])
@pytest.mark.parametrize("input_grad", [True, False])
def test_full_backward_hooks_match_torch(replace, input_grad):
    res = {}
    for m in (torch, vt):
        log = []
        lin = hooked(m, log, replace)
        x = m.tensor([[1.0, 2.0, 3.0], [-1.0, 0.5, 2.0]], dtype=m.float64).requires_grad_(input_grad)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            (lin(x) * m.tensor([1.0, -3.0], dtype=m.float64)).sum().backward()
        res[m] = (log, lin.weight.grad.numpy().copy(), None if x.grad is None else x.grad.numpy().copy())
    (tl, tw, tx), (vl, vw, vx) = res[torch], res[vt]
    assert [e[0] for e in vl] == [e[0] for e in tl]
    for te, ve in zip(tl, vl):
        for ta, va in zip(te[1:], ve[1:]):
            assert len(ta) == len(va)
            for a, b in zip(ta, va):
                assert (a is None) == (b is None)
                if a is not None:
                    np.testing.assert_allclose(b, a, rtol=1e-12)
    np.testing.assert_allclose(vw, tw, rtol=1e-12)
    assert (vx is None) == (tx is None)
    if tx is not None:
        np.testing.assert_allclose(vx, tx, rtol=1e-12)


def test_backward_hook_handles_non_tensor_args_and_removal():
    class Scale(vt.nn.Module):
        def forward(self, x, k, y):
            return x * k + y

    mod, log = Scale(), []
    h = mod.register_full_backward_hook(lambda m, gi, go: log.append([None if g is None else g.shape for g in gi]))
    x, y = vt.ones(2, requires_grad=True), vt.ones(2)
    mod(x, 3.0, y).sum().backward()
    assert log == [[(2,), None, None]] and x.grad.numpy().tolist() == [3.0, 3.0]
    h.remove()
    mod(x, 3.0, y).sum().backward()
    assert len(log) == 1


def test_forward_pre_hook_with_kwargs_and_named_modules_duplicates_match_torch():
    for m in (torch, vt):
        lin = m.nn.Linear(2, 2)
        seen = []

        def pre(mod, args, kwargs):
            seen.append(sorted(kwargs))
            return (args[0] * 0,), kwargs
        lin.register_forward_pre_hook(pre, with_kwargs=True)
        out = lin(m.ones(1, 2))
        assert seen == [[]]
        np.testing.assert_allclose(out.detach().numpy(), lin.bias.detach().numpy()[None], rtol=1e-6)
        shared = m.nn.Linear(2, 2)
        net = m.nn.Sequential(shared, shared)
        assert [n for n, _ in net.named_modules()] == ["", "0"]
        assert [n for n, _ in net.named_modules(remove_duplicate=False)] == ["", "0", "1"]


# ---- vt.backends.cudnn ---------------------------------------------------------------------------------------

def test_cudnn_flags_like_torch():
    from vibetensor.torch._backends_cudnn import cudnn
    # torch's defaults, written out: the live torch flags depend on what other tests in the process set (on torch
    # 2.11, setting torch.backends.cuda.matmul.allow_tf32 also turns cudnn's off).
    defaults = {"enabled": True, "benchmark": False, "deterministic": False, "allow_tf32": True,
                "benchmark_limit": None}  # None: torch without cuDNN, as vibetensor is
    for name, value in defaults.items():
        assert getattr(cudnn, name) == value, name
    assert cudnn.is_available() is False and cudnn.version() is None
    cudnn.benchmark = True
    try:
        assert cudnn.benchmark is True
        with cudnn.flags(enabled=False, deterministic=True):
            assert cudnn.enabled is False and cudnn.deterministic is True and cudnn.benchmark is False
        assert cudnn.enabled is True and cudnn.deterministic is False and cudnn.benchmark is True
    finally:
        cudnn.benchmark = False


def test_cyclic_lr_cycles_adam_beta1_and_errors():
    tp, vp = [torch.zeros(2, requires_grad=True)], [vt.nn.Parameter(vt.zeros(2))]
    topt, vopt = torch.optim.Adam(tp, lr=0.1), vt.optim.Adam(vp, lr=0.1)
    ts = torch.optim.lr_scheduler.CyclicLR(topt, 0.001, 0.01, step_size_up=2)
    vs = vsched.CyclicLR(vopt, 0.001, 0.01, step_size_up=2)
    for _ in range(7):
        assert vs.get_last_lr() == ts.get_last_lr()
        assert vopt.param_groups[0]["betas"] == topt.param_groups[0]["betas"]
        ts.step()
        vs.step()
    for mod, opt, nomom in ((torch.optim.lr_scheduler, topt, torch.optim.Adagrad(tp)),
                            (vsched, vopt, vt.optim.Adagrad(vp))):
        with pytest.raises(ValueError, match="mode is invalid and scale_fn is None"):
            mod.CyclicLR(opt, 0.1, 1.0, mode="zigzag")
        with pytest.raises(ValueError, match="must support momentum or beta1"):
            mod.CyclicLR(nomom, 0.1, 1.0)
        with pytest.raises(ValueError, match="max_lr must have the same length as optimizer.param_groups"):
            mod.CyclicLR(opt, 0.1, [1.0, 2.0])
        with pytest.raises(TypeError, match="is not an Optimizer"):
            mod.CyclicLR(object(), 0.1, 1.0)


def test_public_names_are_wired():
    for name in ("Adadelta", "RAdam", "ASGD"):
        assert getattr(vt.optim, name) is VT_OPT[name]
    for name in ("MultiplicativeLR", "MultiStepLR", "ConstantLR", "ExponentialLR", "PolynomialLR",
                 "CosineAnnealingWarmRestarts", "CyclicLR", "ChainedScheduler"):
        assert getattr(vt.optim.lr_scheduler, name) is getattr(vsched, name)
    from vibetensor.torch.nn.init_more import dirac_
    assert vt.nn.init.dirac_ is dirac_
    assert vt.backends.cudnn.deterministic is False
    assert callable(vt.nn.Linear(2, 2).register_full_backward_hook)
