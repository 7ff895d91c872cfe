"""vt.amp.GradScaler against torch.amp.GradScaler: identical models trained side by side through scale /
(unscale_ + clip) / step / update with inf and NaN injected at chosen steps, comparing parameters, the scale
(exactly) and the growth tracker after every step; growth and backoff arithmetic with odd factors and at float32's
edge; update(new_scale); state_dict, load_state_dict and pickling; scale() on nested outputs; every error case;
enabled=False; and the same training on CUDA when vibetensor has a device."""
import pickle
import warnings

import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from vibetensor.torch.amp.grad_scaler import GradScaler

INF, NAN = float("inf"), float("nan")
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]


def to_vt(t, device="cpu"):
    return vt.from_numpy(t.detach().numpy().copy()).to(device)


def host(t):
    t = t.detach().to("cpu")
    return (t.float() if t.dtype in (torch.bfloat16, vt.bfloat16) else t).numpy()


def mlp(m, dims=(5, 8, 7, 3)):
    layers = []
    for i in range(len(dims) - 1):
        layers.append(m.nn.Linear(dims[i], dims[i + 1]))
        if i < len(dims) - 2:
            layers.append(m.nn.ReLU())
    return m.nn.Sequential(*layers)


def twin_models(device="cpu", dtype="float32"):
    tm, vm = mlp(torch).to(getattr(torch, dtype)), mlp(vt)
    vm.load_state_dict({k: to_vt(v) for k, v in tm.state_dict().items()})
    vm.to(device, getattr(vt, dtype))
    return tm, vm


def both_scalers(**kw):
    return torch.amp.GradScaler("cpu", **kw), GradScaler("cpu", **kw)


def assert_same_state(ts, vs, tparams, vparams):
    assert vs.get_scale() == ts.get_scale()
    assert vs._get_growth_tracker() == ts._get_growth_tracker()
    for tp, vp in zip(tparams, vparams):
        np.testing.assert_allclose(host(vp), host(tp), rtol=1e-6, atol=1e-7)


def opt_pair(name, tm, vm, lr=None):
    kw = {"SGD": dict(lr=0.05, momentum=0.9), "Adam": dict(lr=1e-2), "AdamW": dict(lr=1e-2, weight_decay=0.1)}[name]
    kw["lr"] = lr or kw["lr"]
    return getattr(torch.optim, name)(tm.parameters(), **kw), getattr(vt.optim, name)(vm.parameters(), **kw)


# step -> what is multiplied into the loss there (inf gives inf/NaN gradients, NaN gives NaN gradients)
POISON = {2: INF, 3: NAN, 7: -INF}


def train_side_by_side(rng, opt_name, device, steps=10, clip=False, loss_mult=1.0, dtype="float32", lr=None,
                       **scaler_kw):
    tm, vm = twin_models(device, dtype)
    topt, vopt = opt_pair(opt_name, tm, vm, lr)
    ts, vs = torch.amp.GradScaler("cpu", **scaler_kw), GradScaler(device, **scaler_kw)
    scales = []
    for i in range(steps):
        x = rng.standard_normal((6, 5)).astype(dtype)
        y = rng.standard_normal((6, 3)).astype(dtype)
        losses = []
        for m, model, opt, s, conv in ((torch, tm, topt, ts, torch.from_numpy),
                                       (vt, vm, vopt, vs, lambda a: vt.from_numpy(a).to(device))):
            opt.zero_grad()
            loss = m.nn.functional.mse_loss(model(conv(x)), conv(y)) * loss_mult
            if i in POISON:
                loss = loss * POISON[i]
            s.scale(loss).backward()
            if clip:
                s.unscale_(opt)
                m.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
            losses.append(s.step(opt))
            s.update()
        assert losses == [None, None]
        scales.append(ts.get_scale())
        assert_same_state(ts, vs, list(tm.parameters()), list(vm.parameters()))
        assert vs._scale.device.type == device and vs._scale.dtype == vt.float32 and tuple(vs._scale.shape) == ()
        assert vs._growth_tracker.dtype == vt.int32
    return scales


def grew_and_backed_off(scales):
    steps = np.diff(np.log2(scales))
    return (steps > 0).any() and (steps < 0).any()


# float32 rounding differences between two backward passes grow through Adam's normalisation past rtol 1e-6
# (without any scaler too), so the Adam runs are float64: the scaler's part is compared, not the optimizer's
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("opt_name, dtype", [("SGD", "float32"), ("SGD", "float64"), ("Adam", "float64"),
                                             ("AdamW", "float64")])
def test_training_matches_torch(rng, opt_name, dtype, device):
    scales = train_side_by_side(rng, opt_name, device, dtype=dtype, init_scale=2.0**10, growth_interval=2)
    assert grew_and_backed_off([2.0**10] + scales)


@pytest.mark.parametrize("device", DEVICES)
def test_training_with_unscale_and_clip(rng, device):
    scales = train_side_by_side(rng, "SGD", device, clip=True, init_scale=3.0, growth_factor=1.5,
                                backoff_factor=0.25, growth_interval=3)
    assert grew_and_backed_off([3.0] + scales)


@pytest.mark.parametrize("device", DEVICES)
def test_huge_init_scale_overflows_then_settles(rng, device):
    # 2**127 times a large loss overflows float32 gradients, so the first step is skipped; the backoff lands far
    # from overflow (the steps after it must not sit at float32's edge, where rounding decides)
    scales = train_side_by_side(rng, "SGD", device, steps=6, loss_mult=1e8, lr=1e-12, init_scale=2.0**127,
                                backoff_factor=2.0**-40, growth_interval=1)
    assert scales[:2] == [2.0**87, 2.0**88] and grew_and_backed_off(scales)


def manual_pair(dtype=np.float32, shape=(3,)):
    tp = torch.nn.Parameter(torch.from_numpy(np.ones(shape, dtype)))
    vp = vt.nn.Parameter(vt.from_numpy(np.ones(shape, dtype)))
    return tp, vp, torch.optim.SGD([tp], lr=0.5), vt.optim.SGD([vp], lr=0.5)


def manual_step(ts, vs, tp, vp, topt, vopt, grad):
    ts.scale(torch.ones(1))
    vs.scale(vt.ones(1))
    tp.grad = torch.from_numpy(grad.copy())
    vp.grad = vt.from_numpy(grad.copy())
    assert (ts.step(topt) is None) and (vs.step(vopt) is None)
    found_t, found_v = ts._found_inf_per_device(topt), vs._found_inf_per_device(vopt)
    assert [f.item() for f in found_v.values()] == [f.item() for f in found_t.values()]
    np.testing.assert_array_equal(host(vp.grad), host(tp.grad))  # unscaled in place, inf/NaN kept
    ts.update()
    vs.update()
    assert_same_state(ts, vs, [tp], [vp])


@pytest.mark.parametrize("kw", [dict(init_scale=1.7, growth_factor=1.1, backoff_factor=0.3, growth_interval=1),
                                dict(init_scale=2.0, growth_interval=3),
                                dict(init_scale=3e38, growth_interval=1),  # growth would overflow: scale kept
                                dict(init_scale=1e-30, growth_factor=1e10, backoff_factor=1e-9, growth_interval=2),
                                dict(init_scale=5.0, growth_interval=0)])  # never grows: tracker keeps counting
def test_growth_and_backoff_arithmetic(rng, kw):
    ts, vs = both_scalers(**kw)
    tp, vp, topt, vopt = manual_pair()
    for i in range(14):
        grad = rng.standard_normal(3).astype(np.float32)
        if i % 5 == 4:
            grad[rng.integers(3)] = [INF, -INF, NAN][i % 3]
        manual_step(ts, vs, tp, vp, topt, vopt, grad)


def test_grad_dtypes_and_edge_values():
    ts, vs = both_scalers(init_scale=4.0)
    # a float64 gradient far beyond float32's range is finite; bfloat16 gradients may be unscaled; empty ones too
    tps, vps = [[m.nn.Parameter(m.ones(n, dtype=getattr(m, dt))) for n, dt in [(2, "float64"), (3, "bfloat16"),
                                                                              (0, "float32")]] for m in (torch, vt)]
    topt, vopt = torch.optim.SGD(tps, lr=0.5), vt.optim.SGD(vps, lr=0.5)
    for g64, gbf in [([1e300, -3.0], [1.0, 2.0, 4.0]), ([1.0, 2.0], [1.0, INF, 2.0]), ([NAN, 1.0], [1, 2, 3])]:
        ts.scale(torch.ones(1))
        vs.scale(vt.ones(1))
        for tp, vp, g in zip(tps, vps, [g64, gbf, []]):
            tp.grad = torch.tensor(g, dtype=tp.dtype)
            vp.grad = vt.tensor(g, dtype=vp.dtype)
        ts.step(topt)
        vs.step(vopt)
        ts.update()
        vs.update()
        assert_same_state(ts, vs, tps, vps)
        for tp, vp in zip(tps, vps):
            np.testing.assert_array_equal(host(vp.grad.to(vt.float32)), host(tp.grad.float()))


def test_several_optimizers_share_one_scaler():
    ts, vs = both_scalers(init_scale=8.0, growth_interval=1)
    ta, va, ta_opt, va_opt = manual_pair()
    tb, vb, tb_opt, vb_opt = manual_pair(shape=(2, 2))
    for ga, gb in [([1.0, 2.0, 3.0], [[1.0, INF], [0.0, 1.0]]), ([1.0, 1.0, 1.0], [[1.0, 1.0], [2.0, 2.0]])]:
        ts.scale(torch.ones(1))
        vs.scale(vt.ones(1))
        for p, q, g in [(ta, va, ga), (tb, vb, gb)]:
            p.grad = torch.tensor(g)
            q.grad = vt.tensor(g)
        for t_opt, v_opt in [(ta_opt, va_opt), (tb_opt, vb_opt)]:
            ts.step(t_opt)
            vs.step(v_opt)
            assert len(vs._per_optimizer_states) == len(ts._per_optimizer_states)
        ts.update()  # one optimizer's inf backs the shared scale off
        vs.update()
        assert_same_state(ts, vs, [ta, tb], [va, vb])
        assert len(vs._per_optimizer_states) == 0


def test_step_passes_arguments_and_return_value():
    ts, vs = both_scalers()
    tp, vp, topt, vopt = manual_pair()
    for m, s, p, opt in [(torch, ts, tp, topt), (vt, vs, vp, vopt)]:
        s.scale(m.ones(1))
        p.grad = m.ones(3)
        assert s.step(opt, lambda: 7.5) == 7.5  # a positional closure is passed on (only closure= is refused)
        s.update()
        s.scale(m.ones(1))
        p.grad = m.full((3,), INF)
        assert s.step(opt, lambda: 7.5) is None


@pytest.mark.parametrize("new_scale", [5.0, np.float64(2.5), INF, "tensor", "tensor64", "tensor_int"])
def test_update_with_new_scale(new_scale):
    ts, vs = both_scalers(growth_interval=10)
    tp, vp, topt, vopt = manual_pair()
    manual_step(ts, vs, tp, vp, topt, vopt, np.ones(3, np.float32))
    ts.scale(torch.ones(1))
    vs.scale(vt.ones(1))
    tp.grad, vp.grad = torch.ones(3), vt.ones(3)
    ts.step(topt)
    vs.step(vopt)
    conv = {"tensor": (torch.tensor(7.0), vt.tensor(7.0)),
            "tensor64": (torch.tensor(4.0, dtype=torch.float64), vt.tensor(4.0, dtype=vt.float64)),
            "tensor_int": (torch.tensor(9, dtype=torch.int32), vt.tensor(9, dtype=vt.int32))}
    tn, vn = conv.get(new_scale, (new_scale, new_scale))
    ts.update(tn)
    vs.update(vn)
    assert vs.get_scale() == ts.get_scale() and vs._get_growth_tracker() == ts._get_growth_tracker() == 1
    assert len(vs._per_optimizer_states) == 0


def test_update_new_scale_errors():
    vs = GradScaler("cpu")
    vs.scale(vt.ones(1))
    with pytest.raises(AttributeError):  # an int is neither a float nor a tensor, as in torch
        vs.update(5)
    reason = "new_scale should be a float or a 1-element"
    with pytest.raises(AssertionError, match=reason):
        vs.update(vt.tensor([1.0, 2.0]))
    with pytest.raises(AssertionError, match=reason):
        vs.update(vt.tensor(3.0).requires_grad_(True))
    assert vs.get_scale() == 2.0**16


def test_scale_outputs():
    vs = GradScaler("cpu", init_scale=3.0)
    assert vs.get_scale() == 3.0 and vs._scale is None  # made lazily, on the outputs' device
    x = vt.tensor([1.0, 2.0], requires_grad=True)
    out = vs.scale([x, (x * 2, [x])])
    assert type(out) is list and type(out[1]) is tuple and type(out[1][1]) is list
    np.testing.assert_array_equal(host(out[1][0]), [6.0, 12.0])
    lazy = vs.scale(t for t in [x])
    assert isinstance(lazy, map) and host(list(lazy)[0]).tolist() == [3.0, 6.0]
    vs.scale(x).sum().backward()  # differentiable through the scale
    assert host(x.grad).tolist() == [3.0, 3.0]
    for tdt, vdt in [(torch.float16, vt.float16), (torch.bfloat16, vt.bfloat16), (torch.float64, vt.float64),
                     (torch.int64, vt.int64)]:
        tr = torch.amp.GradScaler("cpu", init_scale=3.0).scale(torch.ones(2, dtype=tdt))
        vr = vs.scale(vt.ones(2, dtype=vdt))
        assert str(vr.dtype).split(".")[-1] == str(tr.dtype).split(".")[-1]
        np.testing.assert_array_equal(host(vr.to(vt.float64)), tr.double().numpy())
    for bad in [1.0, [1.0], (x, 2)]:
        with pytest.raises(ValueError, match="outputs must be a Tensor or an iterable of Tensors"):
            vs.scale(bad)


def test_state_dict_round_trip(rng):
    ts, vs = both_scalers(init_scale=4.0, growth_factor=3.0, backoff_factor=0.25, growth_interval=5)
    assert vs.state_dict() == ts.state_dict()
    tp, vp, topt, vopt = manual_pair()
    for i in range(7):
        manual_step(ts, vs, tp, vp, topt, vopt, np.array([1.0, INF if i == 1 else 2.0, 3.0], np.float32))
        tsd, vsd = ts.state_dict(), vs.state_dict()
        assert vsd == tsd and list(vsd) == list(tsd)
        assert [type(v) for v in vsd.values()] == [type(v) for v in tsd.values()]
    fresh = GradScaler("cpu")
    fresh.load_state_dict(vsd)
    assert fresh.state_dict() == vsd and fresh._scale is None
    fresh.scale(vt.ones(1))
    assert fresh._scale.item() == vsd["scale"] and fresh._growth_tracker.item() == vsd["_growth_tracker"]
    live = GradScaler("cpu")
    live.scale(vt.ones(1))
    live.load_state_dict(dict(vsd, scale=16.0, _growth_tracker=3))  # fills the existing tensors
    assert live._scale.item() == 16.0 and live._growth_tracker.item() == 3
    fresh.load_state_dict(ts.state_dict())  # torch's dict loads, and vt's loads into torch
    ts2 = torch.amp.GradScaler("cpu")
    ts2.load_state_dict(live.state_dict())
    assert ts2.state_dict() == live.state_dict()
    with pytest.raises(RuntimeError, match="The source state dict is empty"):
        fresh.load_state_dict({})
    with pytest.raises(KeyError):
        fresh.load_state_dict({"scale": 2.0})


def test_pickle():
    vs = GradScaler("cpu", init_scale=8.0, growth_interval=3)
    tp, vp, topt, vopt = manual_pair()
    ts = torch.amp.GradScaler("cpu", init_scale=8.0, growth_interval=3)
    manual_step(ts, vs, tp, vp, topt, vopt, np.ones(3, np.float32))
    back = pickle.loads(pickle.dumps(vs))
    assert back.state_dict() == vs.state_dict() and back._scale is None and back._growth_tracker is None
    vs.scale(vt.ones(1))
    vp.grad = vt.ones(3)
    vs.unscale_(vopt)
    with pytest.raises(AssertionError, match="may only be pickled at the beginning of an iteration"):
        pickle.dumps(vs)


def test_check_inf_per_device_leaves_grads():
    vs = GradScaler("cpu", init_scale=4.0)
    tp, vp, topt, vopt = manual_pair()
    vs.scale(vt.ones(1))
    vp.grad = vt.tensor([4.0, NAN, 8.0])
    found = vs._check_inf_per_device(vopt)
    assert [f.item() for f in found.values()] == [1.0] and found is vs._found_inf_per_device(vopt)
    assert host(vp.grad)[[0, 2]].tolist() == [4.0, 8.0]
    vp.grad = vt.tensor([4.0, 5.0, 8.0])
    assert [f.item() for f in vs._check_inf_per_device(vopt).values()] == [0.0]


def test_error_cases():
    vs = GradScaler("cpu")
    tp, vp, topt, vopt = manual_pair()
    vp.grad = vt.ones(3)
    for name, call in [("unscale_", lambda: vs.unscale_(vopt)), ("step", lambda: vs.step(vopt)),
                       ("update", lambda: vs.update())]:
        with pytest.raises(AssertionError, match=rf"Attempted {name} but _scale is None\.  This may indicate"):
            call()
    vs.scale(vt.ones(1))
    with pytest.raises(RuntimeError, match="Closure use is not currently supported if GradScaler is enabled."):
        vs.step(vopt, closure=lambda: 1.0)
    vs.unscale_(vopt)
    with pytest.raises(RuntimeError, match=r"unscale_\(\) has already been called on this optimizer since the last "
                                           r"update\(\)\."):
        vs.unscale_(vopt)
    vs.step(vopt)
    with pytest.raises(RuntimeError, match=r"unscale_\(\) is being called after step\(\)\."):
        vs.unscale_(vopt)
    with pytest.raises(RuntimeError, match=r"step\(\) has already been called since the last update\(\)\."):
        vs.step(vopt)
    vs.update()
    with pytest.raises(AssertionError, match="No inf checks were recorded prior to update."):
        vs.update()
    # fp16 gradients are refused before any gradient is touched, and the optimizer stays ready
    p32, p16 = vt.nn.Parameter(vt.ones(2)), vt.nn.Parameter(vt.ones(2, dtype=vt.float16))
    p32.grad, p16.grad = vt.full((2,), 4.0), vt.ones(2, dtype=vt.float16)
    o16 = vt.optim.SGD([p32, p16], lr=0.1)
    with pytest.raises(ValueError, match="Attempting to unscale FP16 gradients."):
        vs.unscale_(o16)
    assert host(p32.grad).tolist() == [4.0, 4.0] and vs._per_optimizer_states[id(o16)]["stage"].name == "READY"
    # an optimizer whose parameters have no gradients
    q = vt.nn.Parameter(vt.ones(2))
    with pytest.raises(AssertionError, match="No inf checks were recorded for this optimizer."):
        vs.step(vt.optim.SGD([q], lr=0.1))
    with pytest.raises(AssertionError, match="The growth factor must be > 1.0."):
        GradScaler("cpu", growth_factor=1.0)
    with pytest.raises(AssertionError, match="The backoff factor must be < 1.0."):
        GradScaler("cpu", backoff_factor=1.0)
    GradScaler("cpu", growth_factor=1.0, enabled=False)  # not checked when disabled, as torch


def test_disabled_is_a_pass_through():
    vs, ts = GradScaler("cpu", enabled=False), torch.amp.GradScaler("cpu", enabled=False)
    x = vt.ones(2)
    assert vs.scale(x) is x and not vs.is_enabled()
    tp, vp, topt, vopt = manual_pair()
    vp.grad, tp.grad = vt.full((3,), INF), torch.full((3,), INF)
    assert vs.unscale_(vopt) is None and host(vp.grad).tolist() == [INF] * 3
    assert vs.step(vopt, closure=lambda: 2.5) == ts.step(topt, closure=lambda: 2.5) == 2.5  # step runs regardless
    assert vs.update() is None and vs.update(3.0) is None
    assert vs.get_scale() == ts.get_scale() == 1.0 and vs._get_growth_tracker() == 0
    assert vs.state_dict() == ts.state_dict() == {}
    vs.load_state_dict({})
    for getter in ["get_growth_factor", "get_backoff_factor", "get_growth_interval"]:
        with pytest.raises(AttributeError):
            getattr(ts, getter)()
        with pytest.raises(AttributeError):
            getattr(vs, getter)()
    vs.set_growth_factor(3.0)
    assert vs.get_growth_factor() == 3.0
    assert pickle.loads(pickle.dumps(vs)).get_growth_factor() == 3.0


def test_setters_and_getters():
    ts, vs = both_scalers(init_scale=4, growth_factor=3.0, backoff_factor=0.125, growth_interval=7)
    for s in (ts, vs):
        assert (s.get_scale(), s.get_growth_factor(), s.get_backoff_factor(), s.get_growth_interval()) == \
            (4, 3.0, 0.125, 7)
        s.set_growth_factor(5.0)
        s.set_backoff_factor(0.75)
        s.set_growth_interval(2)
    tp, vp, topt, vopt = manual_pair()
    for g in [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0], [1.0, INF, 1.0], [1.0, 1.0, 1.0], [2.0, 2.0, 2.0]]:
        manual_step(ts, vs, tp, vp, topt, vopt, np.array(g, np.float32))


@pytest.mark.skipif(vt.cuda.is_available(), reason="vibetensor has a CUDA device here")
def test_cuda_unavailable_warns_and_disables():
    with pytest.warns(UserWarning, match=r"GradScaler is enabled, but CUDA is not available\.  Disabling\."):
        vs = GradScaler()
    assert not vs.is_enabled() and vs._device == "cuda" and vs.get_scale() == 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not GradScaler("cuda", enabled=False).is_enabled()  # no warning when not asked for
        assert GradScaler("cpu").is_enabled()


@pytest.mark.cuda
def test_cuda_available_stays_enabled():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        vs = GradScaler()
    assert vs.is_enabled()
    out = vs.scale(vt.ones(2, device="cuda"))
    assert vs._scale.device.type == "cuda" and host(out).tolist() == [2.0**16] * 2
    # NaN alone (no inf) is caught on the device too
    p = vt.nn.Parameter(vt.ones(3, device="cuda"))
    p.grad = vt.tensor([1.0, NAN, 1.0]).to("cuda")
    opt = vt.optim.SGD([p], lr=0.1)
    assert vs.step(opt) is None and host(p)[0] == 1.0
    vs.update()
    assert vs.get_scale() == 2.0**15 and vs._get_growth_tracker() == 0
