"""optim.LBFGS vs torch in float64: parameter trajectories and returned losses step by step on a least-squares
and a Rosenbrock problem (both line_search_fn options, small histories, max_eval, tolerances), the state and
state_dict keys, and the error cases."""
import numpy as np
import pytest
import torch

import vibetensor.torch as vt
from vibetensor.torch.optim.lbfgs import LBFGS

TOL = dict(rtol=1e-9, atol=1e-11)


def least_squares(m, params, A, b):
    (x,) = params
    return ((m.from_numpy(A.copy()).matmul(x) - m.from_numpy(b.copy())) ** 2).sum()


def rosenbrock(m, params, *_):
    (x,) = params
    return ((1 - x[:-1]) ** 2).sum() + 100 * ((x[1:] - x[:-1] ** 2) ** 2).sum()


def two_params(m, params, A, b):  # a loss over two parameters, to exercise the flattening
    w, c = params
    r = m.from_numpy(A.copy()).matmul(w) + c - m.from_numpy(b.copy())
    return (r * r).sum() + (w * w).sum() * 0.1


def run(problem, init, steps, data, **kw):
    out = {}
    for m, opt_cls in ((torch, torch.optim.LBFGS), (vt, LBFGS)):
        params = [m.from_numpy(v.copy()).requires_grad_() for v in init]
        opt = opt_cls(params, **kw)

        def closure():
            opt.zero_grad()
            loss = problem(m, params, *data)
            loss.backward()
            return loss
        traj = []
        for _ in range(steps):
            loss = opt.step(closure)
            traj.append((float(loss), [p.detach().numpy().copy() for p in params]))
        out[m.__name__] = (traj, opt)
    return out


def compare(out):
    (tt, topt), (vt_, vopt) = out["torch"], out["vibetensor.torch"]
    for (lt, pt), (lv, pv) in zip(tt, vt_):
        np.testing.assert_allclose(lv, lt, **TOL)
        for a, b in zip(pv, pt):
            np.testing.assert_allclose(a, b, **TOL)
    ts, vs = topt.state_dict(), vopt.state_dict()
    assert list(vs) == list(ts)
    assert list(vs["state"]) == list(ts["state"])
    for k in ts["state"]:
        assert list(vs["state"][k]) == list(ts["state"][k])
    assert vs["param_groups"] == ts["param_groups"]
    st_t, st_v = topt.state[topt.param_groups[0]["params"][0]], vopt.state[vopt.param_groups[0]["params"][0]]
    assert st_v["func_evals"] == st_t["func_evals"] and st_v["n_iter"] == st_t["n_iter"]


@pytest.mark.parametrize("kw", [
    {}, dict(line_search_fn="strong_wolfe"), dict(lr=0.5, max_iter=5, history_size=2),
    dict(max_iter=7, max_eval=9, history_size=3, line_search_fn="strong_wolfe"),
    dict(max_iter=3, max_eval=3, line_search_fn="strong_wolfe"), dict(max_iter=20, max_eval=4),
])
def test_least_squares(kw):
    rng = np.random.default_rng(0)
    A, b = rng.standard_normal((8, 5)), rng.standard_normal(8)
    compare(run(least_squares, [rng.standard_normal(5)], 3, (A, b), **kw))


@pytest.mark.parametrize("kw", [
    dict(lr=0.1, max_iter=10), dict(line_search_fn="strong_wolfe"), dict(line_search_fn="strong_wolfe", history_size=4),
    dict(line_search_fn="strong_wolfe", tolerance_change=1e-3, tolerance_grad=1e-3),
])
def test_rosenbrock(kw):
    compare(run(rosenbrock, [np.array([-1.2, 1.0, 0.5, -0.3])], 4, (), **kw))


def test_two_params():
    rng = np.random.default_rng(1)
    A, b = rng.standard_normal((6, 3)), rng.standard_normal(6)
    compare(run(two_params, [rng.standard_normal(3), rng.standard_normal(1)], 2, (A, b),
                line_search_fn="strong_wolfe", max_iter=6))


def test_converged_returns_immediately():
    x = vt.zeros(3, dtype=vt.float64).requires_grad_()
    opt = LBFGS([x])
    calls = []

    def closure():
        calls.append(1)
        opt.zero_grad()
        loss = (x * x).sum()
        loss.backward()
        return loss
    assert float(opt.step(closure)) == 0.0
    assert len(calls) == 1 and float(x.abs().sum()) == 0.0


def test_errors():
    x = vt.zeros(3).requires_grad_()
    with pytest.raises(ValueError):
        LBFGS([x], lr=-1.0)
    with pytest.raises(RuntimeError):
        LBFGS([x], line_search_fn="armijo")
    with pytest.raises(ValueError):
        LBFGS([{"params": [x]}, {"params": [vt.zeros(2).requires_grad_()]}])
    with pytest.raises(TypeError):
        LBFGS([x]).step()
    with pytest.raises(ValueError):
        LBFGS([])


@pytest.mark.parametrize("source", ["torch", "vibetensor.torch"])
def test_load_state_dict_resumes(source):
    """A state saved by torch's or vibetensor's LBFGS after two steps continues with torch's third step."""
    rng = np.random.default_rng(2)
    A, b = rng.standard_normal((8, 5)), rng.standard_normal(8)
    kw = dict(line_search_fn="strong_wolfe", max_iter=2, history_size=4)
    out = run(least_squares, [rng.standard_normal(5)], 2, (A, b), **kw)
    src_opt = out[source][1]
    src_state = src_opt.state[src_opt.param_groups[0]["params"][0]]
    x0 = out["torch"][0][1][1][0]  # the parameters after two steps
    x = vt.from_numpy(x0.copy()).requires_grad_()
    opt = LBFGS([x], **kw)
    opt.load_state_dict(src_opt.state_dict())
    st = opt.state[x]
    assert st["n_iter"] == src_state["n_iter"] and len(st["old_dirs"]) == len(src_state["old_dirs"]) > 0
    assert isinstance(st["t"], (int, float)) and isinstance(st["old_dirs"][0], vt.Tensor)
    xt = torch.from_numpy(x0.copy()).requires_grad_()
    topt = torch.optim.LBFGS([xt], **kw)
    topt.load_state_dict(out["torch"][1].state_dict())
    for m, o, p in ((vt, opt, x), (torch, topt, xt)):
        def closure(m=m, o=o, p=p):
            o.zero_grad()
            loss = least_squares(m, [p], A, b)
            loss.backward()
            return loss
        o.step(closure)
    np.testing.assert_allclose(x.detach().numpy(), xt.detach().numpy(), **TOL)
