"""The fused optimizer kernels (vt::_fused_adamw_, vt::_fused_sgd_) on the CPU, through vt.optim and directly:
against torch's optimizers over several steps (float32 to rounding, float64 tightly), against vibetensor's
per-parameter path, over mixed shapes (0-dim, empty, odd sizes, rows spanning several thread-pool chunks),
transposed gradients, non-contiguous parameters, bfloat16 parameters, parameters without a gradient, and
every argument error. tests/cuda/test_cuda_optim.py is the CUDA kernel's twin."""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from helpers import round_to

SHAPES = [(), (0,), (7,), (3, 5), (0, 4), (33, 17), (2, 3, 5), (1,), (130, 257)]
TOL = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-14)}

ADAMW = {
    "default": dict(lr=1e-2),
    "betas_wd": dict(lr=3e-3, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1),
    "maximize": dict(lr=1e-2, weight_decay=0.05, maximize=True),
}
SGD = {
    "plain": dict(lr=0.05),
    "momentum_wd": dict(lr=0.05, momentum=0.9, weight_decay=1e-3),
    "dampening": dict(lr=0.05, momentum=0.9, dampening=0.3),
    "nesterov_max": dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-2, maximize=True),
}


def as_numpy(t):
    return t.detach().float().numpy() if t.dtype == vt.bfloat16 else t.detach().numpy()


def params_pair(rng, shapes, dtype):
    vals = [np.asarray(rng.standard_normal(s), dtype) for s in shapes]
    return [torch.nn.Parameter(torch.from_numpy(v.copy())) for v in vals], \
           [vt.nn.Parameter(vt.from_numpy(v.copy())) for v in vals]


def set_grads(rng, tps, vps, transposed=False, skip=()):
    """Same random gradients on both sides; with `transposed`, vt's 2-D gradients are transposed views."""
    for i, (tp, vp) in enumerate(zip(tps, vps)):
        if i in skip:
            tp.grad = vp.grad = None
            continue
        g = np.asarray(rng.standard_normal(tuple(tp.shape)), tp.detach().numpy().dtype)
        tp.grad = torch.from_numpy(g.copy())
        vp.grad = vt.from_numpy(g.T.copy()).t() if transposed and g.ndim == 2 else vt.from_numpy(g.copy())


def assert_same_state(topt, vopt, tps, vps, tol, names):
    for i, (tp, vp) in enumerate(zip(tps, vps)):
        np.testing.assert_allclose(as_numpy(vp), tp.detach().numpy(), err_msg=f"param {i}", **tol)
        tst, vst = topt.state.get(tp, {}), vopt.state.get(id(vp), {})
        for name in names:
            if tst.get(name) is None:
                assert vst.get(name) is None, (i, name)
                continue
            np.testing.assert_allclose(as_numpy(vst[name]), tst[name].numpy(), err_msg=f"{name} {i}", **tol)
        if "step" in tst:
            assert vst["step"] == int(tst["step"])


def run_parity(rng, cls, kwargs, dtype, steps=4, transposed=False, skip=(), fused=True):
    tps, vps = params_pair(rng, SHAPES, dtype)
    topt = getattr(torch.optim, cls)(tps, **kwargs)
    vopt = getattr(vt.optim, cls)(vps, fused=fused, **kwargs)
    names = ("exp_avg", "exp_avg_sq") if cls == "AdamW" else ("momentum_buffer",)
    for _ in range(steps):
        set_grads(rng, tps, vps, transposed, skip)
        topt.step()
        vopt.step()
        assert_same_state(topt, vopt, tps, vps, TOL[dtype], names)
    return vps


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("setting", list(ADAMW))
def test_fused_adamw_matches_torch(setting, dtype, rng):
    run_parity(rng, "AdamW", ADAMW[setting], dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("setting", list(SGD))
def test_fused_sgd_matches_torch(setting, dtype, rng):
    run_parity(rng, "SGD", SGD[setting], dtype)


@pytest.mark.parametrize("cls,kwargs", [("AdamW", ADAMW["betas_wd"]), ("SGD", SGD["nesterov_max"])])
def test_transposed_grads_and_missing_grads(cls, kwargs, rng):
    """Transposed (non-contiguous) gradients are read in the param's order; params without a grad are skipped
    and get no state."""
    vps = run_parity(rng, cls, kwargs, np.float64, transposed=True, skip=(3,))
    assert vps[3].grad is None


def schedule_data(rng, steps=5):
    """Initial values and per-step gradients over SHAPES, float32."""
    vals = [np.asarray(rng.standard_normal(s), np.float32) for s in SHAPES]
    return vals, [[np.asarray(rng.standard_normal(s), np.float32) for s in SHAPES] for _ in range(steps)]


def run_schedule(cls, kwargs, vals, grads, flag, schedule):
    """Steps of vt.optim.<cls> from vals with one gradient list per step, setting param_groups[0][flag] to the
    schedule's entry before each step; returns the params and the optimizer."""
    ps = [vt.nn.Parameter(vt.from_numpy(v.copy())) for v in vals]
    opt = getattr(vt.optim, cls)(ps, **kwargs)
    for on, gs in zip(schedule, grads):
        opt.param_groups[0][flag] = on
        for p, g in zip(ps, gs):
            p.grad = vt.from_numpy(g.copy())
        opt.step()
    return ps, opt


@pytest.mark.parametrize("cls,kwargs", [("AdamW", ADAMW["betas_wd"]), ("SGD", SGD["momentum_wd"]),
                                        ("SGD", SGD["dampening"])])
def test_fused_matches_per_parameter_path_and_switches(cls, kwargs, rng):
    """The fused and per-parameter paths give the same trajectory and share state: three fused steps then two
    per-parameter ones equal five per-parameter steps."""
    vals, grads = schedule_data(rng)
    runs = []
    for schedule in ([True] * 5, [True] * 3 + [False] * 2, [False] * 5):
        ps, _ = run_schedule(cls, kwargs, vals, grads, "fused", schedule)
        runs.append([as_numpy(p) for p in ps])
    for a, b, c in zip(*runs):
        np.testing.assert_allclose(a, c, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(b, c, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("cls,kwargs", [("AdamW", ADAMW["betas_wd"]), ("SGD", SGD["momentum_wd"]),
                                        ("SGD", SGD["nesterov_max"])])
def test_bfloat16_params_update_in_float(cls, kwargs, rng):
    """bfloat16 params and state, each step computed in float from the stored values and rounded back: against
    torch's float32 optimizer whose params and state are rounded to bfloat16 after every step (to a bfloat16
    rounding, relative and at magnitude 1: the two may round a value on a tie differently, and the next steps
    carry that difference to values that cancel towards 0). torch's own fused CPU SGD is no oracle
    here: in torch 2.13 it mis-updates bfloat16 rows of some sizes (561 elements)."""
    vals = [np.asarray(rng.standard_normal(s), np.float32) for s in [(7,), (33, 17), (130, 257)]]
    tps = [torch.nn.Parameter(torch.from_numpy(v).to(torch.bfloat16).float()) for v in vals]
    vps = [vt.nn.Parameter(vt.from_numpy(v).to(vt.bfloat16)) for v in vals]
    topt = getattr(torch.optim, cls)(tps, **kwargs)
    vopt = getattr(vt.optim, cls)(vps, fused=True, **kwargs)
    for _ in range(3):
        for tp, vp in zip(tps, vps):
            g = np.asarray(rng.standard_normal(tuple(tp.shape)), np.float32)
            tp.grad = torch.from_numpy(g).to(torch.bfloat16).float()
            vp.grad = vt.from_numpy(g).to(vt.bfloat16)
        topt.step()
        vopt.step()
        round_to(topt, torch.bfloat16)
        for tp, vp in zip(tps, vps):
            assert vp.dtype == vt.bfloat16
            np.testing.assert_allclose(as_numpy(vp), tp.detach().numpy(), rtol=2 ** -6, atol=2 ** -8)


def test_direct_op_non_contiguous_params_and_state(rng):
    """A transposed param and state are updated through contiguous stand-ins and written back in place."""
    shape = (6, 4)
    p, g, m, v = (rng.standard_normal(shape) for _ in range(4))
    v = np.abs(v)
    ref = [vt.from_numpy(a.copy()) for a in (p, g, m, v)]
    bases = [vt.from_numpy(a.T.copy()) for a in (p, g, m, v)]
    views = [b.t() for b in bases]
    kw = dict(lr=0.01, beta1=0.9, beta2=0.99, weight_decay=0.1, eps=1e-8)
    vt.ops.vt._fused_adamw_([ref[0]], [ref[1]], [ref[2]], [ref[3]], [3], **kw)
    assert vt.ops.vt._fused_adamw_([views[0]], [views[1]], [views[2]], [views[3]], [3], **kw) is None
    for r, b in zip(ref, bases):
        np.testing.assert_array_equal(b.numpy().T, r.numpy())


def test_direct_op_against_formula():
    """One AdamW step on known values, against the update written out in float64."""
    p, g, m, v = np.array([1.0, -2.0, 0.5]), np.array([0.1, 0.2, -0.3]), np.array([0.01, 0.0, 0.2]), \
        np.array([0.04, 0.0, 0.01])
    lr, b1, b2, wd, eps, t = 0.1, 0.9, 0.999, 0.01, 1e-8, 7
    ts = [vt.from_numpy(a.copy()) for a in (p, g, m, v)]
    vt.ops.vt._fused_adamw_([ts[0]], [ts[1]], [ts[2]], [ts[3]], [t], lr=lr, beta1=b1, beta2=b2,
                            weight_decay=wd, eps=eps)
    m2, v2 = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
    p2 = p * (1 - lr * wd) - lr / (1 - b1 ** t) * m2 / (np.sqrt(v2) / np.sqrt(1 - b2 ** t) + eps)
    for got, want in zip(ts[::2] + ts[3:], [p2, m2, v2]):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-15)


# ------------------------------------------------------------------------------------------- errors

def lists(shapes=((3,), (2, 2)), dtype=vt.float32):
    return [[vt.zeros(*s, dtype=dtype) for s in shapes] for _ in range(4)]


KW = dict(lr=0.1, beta1=0.9, beta2=0.999, weight_decay=0.0, eps=1e-8)


def test_errors_list_lengths_and_steps():
    p, g, m, v = lists()
    with pytest.raises(ValueError, match=r"got 2 params but 1 grads"):
        vt.ops.vt._fused_adamw_(p, g[:1], m, v, [1, 1], **KW)
    with pytest.raises(ValueError, match=r"got 2 params but 1 exp_avg_sqs"):
        vt.ops.vt._fused_adamw_(p, g, m, v[:1], [1, 1], **KW)
    with pytest.raises(ValueError, match=r"got 1 steps for 2 params"):
        vt.ops.vt._fused_adamw_(p, g, m, v, [1], **KW)
    with pytest.raises(ValueError, match=r"steps\[1\] is 0"):
        vt.ops.vt._fused_adamw_(p, g, m, v, [1, 0], **KW)
    with pytest.raises(ValueError, match=r"betas must be in \[0, 1\)"):
        vt.ops.vt._fused_adamw_(p, g, m, v, [1, 1], **dict(KW, beta1=1.0))
    with pytest.raises(ValueError, match=r"got 2 params but 1 momentum_buffers"):
        vt.ops.vt._fused_sgd_(p, g, m[:1], lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match=r"momentum is 0 but 2 momentum buffers"):
        vt.ops.vt._fused_sgd_(p, g, m, lr=0.1)
    with pytest.raises(ValueError, match="Nesterov"):
        vt.ops.vt._fused_sgd_(p, g, m, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True)


def test_errors_shapes_dtypes():
    p, g, m, v = lists()
    g[1] = vt.zeros(4)
    with pytest.raises(RuntimeError, match=r"grads\[1\] has shape \[4\] but params\[1\] has shape \[2, 2\]"):
        vt.ops.vt._fused_adamw_(p, g, m, v, [1, 1], **KW)
    p, g, m, v = lists()
    v[0] = vt.zeros(1, 3)
    with pytest.raises(RuntimeError, match=r"exp_avg_sqs\[0\] has shape \[1, 3\] but params\[0\] has shape \[3\]"):
        vt.ops.vt._fused_adamw_(p, g, m, v, [1, 1], **KW)
    p, g, m, v = lists()
    m[1] = vt.zeros(2, 2, dtype=vt.float64)
    with pytest.raises(TypeError, match=r"exp_avgs\[1\] has dtype float64 but params\[1\] has dtype float32"):
        vt.ops.vt._fused_adamw_(p, g, m, v, [1, 1], **KW)
    p, g, m, v = lists()
    p[1] = vt.zeros(2, 2, dtype=vt.float64)
    with pytest.raises(TypeError, match=r"params\[1\] has dtype float64 but params\[0\] has float32"):
        vt.ops.vt._fused_sgd_(p, g, [], lr=0.1)
    p, g, m, v = lists(dtype=vt.int64)
    with pytest.raises(TypeError, match=r"params\[0\] has dtype int64; fused optimizers update floating"):
        vt.ops.vt._fused_sgd_(p, g, [], lr=0.1)


def test_errors_at_the_optimizer():
    p = vt.nn.Parameter(vt.ones(3))
    with pytest.raises(RuntimeError, match="cannot be `True` together"):
        vt.optim.AdamW([p], fused=True, foreach=True)
    q = vt.zeros(3, dtype=vt.int64)
    with pytest.raises(RuntimeError, match="floating point"):
        vt.optim.SGD([q], lr=0.1, fused=True)
    with pytest.raises(NotImplementedError, match="no_grad"):  # the op records no history
        vt.ops.vt._fused_sgd_([p], [vt.ones(3)], [], lr=0.1)
    opt = vt.optim.SGD([p], lr=0.1)
    p.grad = vt.ones(3)
    opt.step()  # with grad mode on: the step itself runs under no_grad
    np.testing.assert_allclose(p.detach().numpy(), 0.9)


@pytest.mark.parametrize("cls", ["AdamW", "Adam"])
def test_capturable_steps_live_on_the_device_and_match_the_host_counts(cls, rng):
    """capturable=True keeps each step count in a float32 0-dim tensor that vt::_fused_adamw_capturable_
    increments: the trajectory is bit-identical to the host-counted one (the bias corrections are computed from
    the same integer in double), matches torch's, and switching capturable off carries the count over."""
    kwargs = dict(lr=3e-3, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)
    vals, grads = schedule_data(rng)
    runs = []
    for schedule in ([True] * 5, [False] * 5, [True] * 3 + [False] * 2):
        ps, opt = run_schedule(cls, kwargs, vals, grads, "capturable", schedule)
        step = opt.state[id(ps[2])]["step"]
        if schedule[-1]:
            assert isinstance(step, vt.Tensor) and step.dtype == vt.float32 and step.dim() == 0
        assert int(step) == 5
        runs.append([as_numpy(p) for p in ps])
    for a, b, c in zip(*runs):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(c, b)
    tps = [torch.nn.Parameter(torch.from_numpy(v.copy())) for v in vals]
    topt = getattr(torch.optim, cls)(tps, **kwargs)
    for gs in grads:
        for p, g in zip(tps, gs):
            p.grad = torch.from_numpy(g.copy())
        topt.step()
    for a, tp in zip(runs[0], tps):
        np.testing.assert_allclose(a, tp.detach().numpy(), **TOL[np.float32])


def test_capturable_op_checks_its_step_tensors():
    from vibetensor._C import core as C

    op = C.op("vt::_fused_adamw_capturable_")
    p, g, m, v = (vt.ones(3) for _ in range(4))
    kw = dict(lr=1e-3, beta1=0.9, beta2=0.999, weight_decay=0.0, eps=1e-8)
    with pytest.raises(ValueError, match="got 0 state_steps for 1 params"):
        op([p], [g], [m], [v], [], **kw)
    with pytest.raises(ValueError, match=r"state_steps\[0\] must be a float32 tensor of one element"):
        op([p], [g], [m], [v], [vt.zeros((), dtype=vt.float64)], **kw)
    with pytest.raises(ValueError, match=r"state_steps\[0\] must be a float32 tensor of one element"):
        op([p], [g], [m], [v], [vt.zeros(2)], **kw)
    step = vt.zeros(())
    op([p], [g], [m], [v], [step], **kw)
    assert float(step) == 1.0
    with pytest.raises(NotImplementedError, match="capturable=True runs on the fused path"):
        ps = [vt.nn.Parameter(vt.ones(2))]
        ps[0].grad = vt.ones(2)
        vt.optim.AdamW(ps, capturable=True, fused=False).step()
