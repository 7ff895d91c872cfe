"""torch.nn.modules.module's global hooks (register_module_forward_pre_hook, register_module_forward_hook,
register_module_full_backward_pre_hook, register_module_full_backward_hook) against torch's: which modules they
see and in what order relative to each module's own hooks, what their return values replace, and that removing
the handle stops them."""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt


def net(L):
    L.manual_seed(0)
    return L.nn.Sequential(L.nn.Linear(3, 2), L.nn.Tanh())


def load(vm, tm):
    vm.load_state_dict({k: vt.from_numpy(v.detach().numpy().copy()) for k, v in tm.state_dict().items()})


X = np.arange(6, dtype=np.float32).reshape(2, 3) / 7


def run_both(script):
    tm, vm = net(torch), net(vt)
    load(vm, tm)
    return script(torch, tm, torch.from_numpy(X)), script(vt, vm, vt.from_numpy(X))


def check(script):
    t, v = run_both(script)
    assert v["log"] == t["log"]
    for k in t:
        if k != "log":
            np.testing.assert_allclose(np.asarray(v[k]), np.asarray(t[k]), rtol=1e-6, atol=1e-7, err_msg=k)
    return t


def test_forward_hooks_see_every_module_before_its_own_hooks_and_replace_args_and_output():
    def script(L, m, x):
        log = []
        mm = L.nn.modules.module
        own = m[0].register_forward_pre_hook(lambda mod, a: log.append("own_pre"))
        own2 = m[0].register_forward_hook(lambda mod, a, o: log.append("own_fwd"))
        h1 = mm.register_module_forward_pre_hook(lambda mod, a: log.append("pre " + type(mod).__name__)
                                                 or (a[0] * 2,))
        h2 = mm.register_module_forward_hook(lambda mod, a, o: log.append("fwd " + type(mod).__name__) or o + 1)
        out = m(x)
        for h in (h1, h2, own, own2):
            h.remove()
        plain = m(x)
        return {"log": log, "out": out.tolist(), "plain": plain.tolist()}

    t = check(script)
    assert t["log"][:3] == ["pre Sequential", "pre Linear", "own_pre"] and t["out"] != t["plain"]


def test_global_forward_hook_with_kwargs():
    def script(L, m, x):
        log = []
        h = L.nn.modules.module.register_module_forward_hook(
            lambda mod, a, kw, o: log.append((type(mod).__name__, sorted(kw), len(a))), with_kwargs=True)
        m(x)
        h.remove()
        return {"log": log}

    assert check(script)["log"] == [("Linear", [], 1), ("Tanh", [], 1), ("Sequential", [], 1)]


def test_global_backward_hooks_run_before_the_modules_own_and_may_replace_grads():
    def script(L, m, x):
        log = []
        mm = L.nn.modules.module
        xin = x.clone().requires_grad_(True)
        own = m[0].register_full_backward_hook(lambda mod, gi, go: log.append("own_bwd"))
        h1 = mm.register_module_full_backward_pre_hook(
            lambda mod, go: log.append("bpre " + type(mod).__name__) or (go[0] * 3,))
        h2 = mm.register_module_full_backward_hook(
            lambda mod, gi, go: log.append("bwd " + type(mod).__name__) or tuple(
                None if g is None else g * 0.5 for g in gi))
        m(xin).sum().backward()
        for h in (h1, h2, own):
            h.remove()
        return {"log": log, "x_grad": xin.grad.tolist(), "w_grad": m[0].weight.grad.tolist()}

    t = check(script)
    assert "own_bwd" in t["log"] and t["log"].index("bwd Linear") < t["log"].index("own_bwd")


def test_removed_global_hooks_leave_calls_plain():
    def script(L, m, x):
        log = []
        mm = L.nn.modules.module
        handles = [mm.register_module_forward_pre_hook(lambda mod, a: log.append(1)),
                   mm.register_module_forward_hook(lambda mod, a, o: log.append(2)),
                   mm.register_module_full_backward_hook(lambda mod, gi, go: log.append(3)),
                   mm.register_module_full_backward_pre_hook(lambda mod, go: log.append(4))]
        for h in handles:
            h.remove()
        xin = x.clone().requires_grad_(True)
        m(xin).sum().backward()
        return {"log": log, "x_grad": xin.grad.tolist()}

    assert check(script)["log"] == []


@pytest.mark.parametrize("name", ["register_module_forward_pre_hook", "register_module_forward_hook",
                                  "register_module_full_backward_pre_hook", "register_module_full_backward_hook"])
def test_importable_from_torch_nn_modules_module(name):
    import vibetensor.torch.nn.modules.module as vmm

    assert callable(getattr(vmm, name)) and name in vmm.__all__
    assert name in torch.nn.modules.module.__all__
