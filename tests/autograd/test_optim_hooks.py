"""Optimizer hooks against torch: step pre/post hooks (per optimizer and global) - call order, arguments, a pre
hook that replaces (args, kwargs), removal, a post hook that clips - and the state_dict / load_state_dict hooks
with their return-value semantics, run as the same scenario on both libraries and compared."""
import numpy as np
import pytest
import torch
import torch.optim.optimizer as torch_optimizer
import vibetensor.torch as vt
from vibetensor.torch.optim import _hooks
from vibetensor.torch.optim import optimizer as vt_optimizer


def params(m, seed=0, shapes=((3, 4), (5,))):
    rng = np.random.default_rng(seed)
    return [m.nn.Parameter(m.tensor(rng.standard_normal(s))) for s in shapes]


def set_grads(m, ps, seed):
    rng = np.random.default_rng(seed)
    for p in ps:
        p.grad = m.tensor(rng.standard_normal(tuple(p.shape)))


def np_of(t):
    return np.array(t.detach().tolist())


@pytest.fixture(autouse=True)
def no_global_hooks_left():
    yield
    assert not _hooks._global_optimizer_pre_hooks
    assert not _hooks._global_optimizer_post_hooks


def step_order_scenario(m, optim_mod):
    ps = params(m)
    opt = m.optim.SGD(ps, lr=0.1)
    log = []

    def rec(tag):
        def hook(o, args, kwargs):
            log.append((tag, o is opt, len(args), args[0] is opt, sorted(kwargs)))
        return hook

    handles = [optim_mod.register_optimizer_step_pre_hook(rec("gpre")),
               optim_mod.register_optimizer_step_post_hook(rec("gpost")),
               opt.register_step_post_hook(rec("post1")), opt.register_step_pre_hook(rec("pre1")),
               opt.register_step_pre_hook(rec("pre2")), opt.register_step_post_hook(rec("post2"))]
    set_grads(m, ps, 1)
    opt.step()
    log.append("--")
    opt.step(closure=None)
    log.append("--")
    handles[3].remove()
    handles[0].remove()
    handles[3].remove()  # twice is harmless
    opt.step(lambda: 1.0)
    log.append("--")
    for h in handles:
        h.remove()
    opt.step()
    return log, [np_of(p) for p in ps]


def test_step_hooks_order_arguments_and_removal():
    got = step_order_scenario(vt, vt_optimizer)
    want = step_order_scenario(torch, torch_optimizer)
    assert got[0] == want[0]
    assert got[0][0][0] == "gpre" and got[0][-1] == "--" and len(got[0]) == 6 + 1 + 6 + 1 + 4 + 1
    for g, w in zip(got[1], want[1]):
        np.testing.assert_allclose(g, w, rtol=1e-12)


def replace_args_scenario(m):
    ps = params(m)
    opt = m.optim.Adam(ps, lr=0.01)
    calls = []

    def new_closure():
        calls.append("new")
        return 7.0

    def pre(o, args, kwargs):
        assert args[0] is o
        return (o,), {"closure": new_closure}

    seen = []
    h = opt.register_step_pre_hook(pre)
    opt.register_step_post_hook(lambda o, args, kwargs: seen.append((len(args), sorted(kwargs))))
    set_grads(m, ps, 2)
    out1 = opt.step(lambda: 1.0)
    h.remove()
    out2 = opt.step(lambda: 3.0)
    return out1, out2, calls, seen


def test_pre_hook_replaces_args_and_kwargs():
    assert replace_args_scenario(vt) == replace_args_scenario(torch) == (7.0, 3.0, ["new"], [(1, ["closure"]),
                                                                                           (2, [])])


@pytest.mark.parametrize("m", [vt, torch], ids=["vt", "torch"])
@pytest.mark.parametrize("bad", [1, (1, 2, 3), [(), {}]])
def test_pre_hook_bad_result_raises(m, bad):
    ps = params(m)
    opt = m.optim.SGD(ps, lr=0.1)
    set_grads(m, ps, 3)
    opt.register_step_pre_hook(lambda o, a, k: bad)
    with pytest.raises(RuntimeError, match=r"must return None or a tuple of \(new_args, new_kwargs\)"):
        opt.step()


def clip_scenario(m, name, kw):
    ps = params(m, 4)
    opt = getattr(m.optim, name)(ps, **kw)
    norms = []

    def clip(o, args, kwargs):
        with m.no_grad():
            for g in o.param_groups:
                for p in g["params"]:
                    p.clamp_(-0.3, 0.3)
        norms.append(sum(float((p * p).sum().detach()) for p in ps))

    opt.register_step_post_hook(clip)
    for i in range(4):
        set_grads(m, ps, 10 + i)
        opt.step()
    return [np_of(p) for p in ps], norms


@pytest.mark.parametrize("name,kw", [("SGD", dict(lr=0.2, momentum=0.9)), ("Adam", dict(lr=0.1)),
                                     ("AdamW", dict(lr=0.1, foreach=False)), ("RMSprop", dict(lr=0.05))])
def test_post_hook_that_clips(name, kw):
    got, want = clip_scenario(vt, name, kw), clip_scenario(torch, name, kw)
    for g, w in zip(got[0], want[0]):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)
        assert np.abs(g).max() <= 0.3
    np.testing.assert_allclose(got[1], want[1], rtol=1e-10)


def test_global_hooks_apply_to_every_optimizer_and_context_removal():
    log = []
    a = vt.optim.SGD(params(vt, 1), lr=0.1)
    b = vt.optim.Adam(params(vt, 2), lr=0.1)
    with vt_optimizer.register_optimizer_step_post_hook(lambda o, args, kw: log.append(type(o).__name__)):
        a.step()
        b.step()
    a.step()
    assert log == ["SGD", "Adam"]


def test_subclass_step_calling_super_runs_hooks_once():
    # torch runs them twice here once a plain SGD has been built (both classes' steps are hooked); vt once
    class MySGD(vt.optim.SGD):
        def step(self, closure=None):
            return super().step(closure)

    vt.optim.SGD(params(vt), lr=0.1)
    opt = MySGD(params(vt), lr=0.1)
    log = []
    opt.register_step_pre_hook(lambda o, a, k: log.append("pre"))
    opt.register_step_post_hook(lambda o, a, k: log.append("post"))
    opt.step()
    assert log == ["pre", "post"]


def state_dict_scenario(m):
    ps = params(m, 5)
    opt = m.optim.Adam(ps, lr=0.01, betas=(0.8, 0.9))
    set_grads(m, ps, 6)
    opt.step()
    log = []
    opt.register_state_dict_pre_hook(lambda o: log.append(("pre", o is opt)))
    opt.register_state_dict_pre_hook(lambda o: log.append(("pre0", o is opt)), prepend=True)

    def add_key(o, sd):
        log.append(("post", sorted(sd)))
        out = dict(sd)
        out["extra"] = 42
        return out

    h = opt.register_state_dict_post_hook(add_key)
    opt.register_state_dict_post_hook(lambda o, sd: log.append(("post_none", sorted(sd))))
    sd = opt.state_dict()
    log.append(("keys", sorted(sd), sd["extra"]))
    h.remove()
    log.append(("after_remove", sorted(opt.state_dict())))

    opt2 = m.optim.Adam(params(m, 7), lr=0.5)

    def fix(o, sd2):
        log.append(("lpre", sorted(sd2), sd2 is sd))
        sd2.pop("extra", None)
        groups = [dict(g, lr=0.02) for g in sd2["param_groups"]]
        return {"state": sd2["state"], "param_groups": groups}

    opt2.register_load_state_dict_pre_hook(fix)
    opt2.register_load_state_dict_pre_hook(lambda o, sd2: log.append(("lpre0", sorted(sd2))), prepend=True)
    opt2.register_load_state_dict_post_hook(lambda o: log.append(("lpost", o.param_groups[0]["lr"])))
    opt2.load_state_dict(sd)
    log.append(("caller_dict_kept", sorted(sd)))
    set_grads(m, opt2.param_groups[0]["params"], 8)
    opt2.step()
    return log, [np_of(p) for p in opt2.param_groups[0]["params"]], opt2.param_groups[0]["betas"]


def test_state_dict_hooks_round_trip():
    got, want = state_dict_scenario(vt), state_dict_scenario(torch)
    assert got[0] == want[0]
    assert got[2] == want[2] == (0.8, 0.9)
    for g, w in zip(got[1], want[1]):
        np.testing.assert_allclose(g, w, rtol=1e-10)


def test_load_state_dict_hook_keeps_torch_state_loadable():
    """A torch optimizer's state_dict goes through a vt load pre hook that rewrites it, then loads."""
    tps = params(torch, 9)
    topt = torch.optim.SGD(tps, lr=0.1, momentum=0.9)
    set_grads(torch, tps, 1)
    topt.step()
    vps = params(vt, 9)
    vopt = vt.optim.SGD(vps, lr=0.3, momentum=0.9)
    vopt.register_load_state_dict_pre_hook(lambda o, sd: None)  # None keeps the dict as it is
    vopt.load_state_dict(topt.state_dict())
    assert vopt.param_groups[0]["lr"] == 0.1
    set_grads(torch, tps, 2)
    set_grads(vt, vps, 2)
    with torch.no_grad():
        for t, v in zip(tps, params(torch, 9)):
            t.copy_(v)
    topt.step()
    vopt.step()
    for t, v in zip(tps, vps):
        np.testing.assert_allclose(np_of(v), np_of(t), rtol=1e-12)


@pytest.mark.parametrize("m", [vt, torch], ids=["vt", "torch"])
def test_add_param_group(m):
    a, b = params(m, 1), params(m, 2)
    opt = m.optim.SGD(a, lr=0.1, momentum=0.5)
    opt.add_param_group({"params": b[0], "lr": 0.2})
    assert len(opt.param_groups) == 2 and opt.param_groups[1]["momentum"] == 0.5
    assert opt.param_groups[1]["lr"] == 0.2 and len(opt.param_groups[1]["params"]) == 1
    with pytest.raises(ValueError, match="some parameters appear in more than one parameter group"):
        opt.add_param_group({"params": [a[0]]})
    with pytest.raises(TypeError, match="param_group must be a dict"):
        opt.add_param_group([b[1]])
    assert len(opt.param_groups) == 2
