"""Ops on a device that is not the current one: one op or a few of each CUDA kernel family run on tensors of
cuda:1 while cuda:0 is current (and the reverse), against the same op on the current device. A kernel must make
its tensors' device current before it launches, allocates or calls cuBLAS on that device's stream: on real GPUs a
launch onto another device's stream fails ("invalid resource handle"), and the default stream (handle 0) is the
legacy stream of whatever device is current, so the work would run on the wrong GPU. Under VT_EMULATE_DEVICES
the logical devices share one context, so there these tests check the results and that every op leaves the
caller's current device as it was; on real GPUs they catch a missing device guard."""
import numpy as np
import pytest

import vibetensor.torch as vt

from fabric_helpers import need

pytestmark = [pytest.mark.cuda, pytest.mark.multigpu(2)]
F = vt.nn.functional


def _index_put(d, t):
    y = t["x"].clone()
    y.index_put_((t["perm"][:16],), t["x"][:16] * 3)  # unique indices: deterministic
    counts = vt.zeros(64, dtype=vt.int64, device=d).index_put_((t["idx"],), vt.ones(40, dtype=vt.int64, device=d),
                                                              accumulate=True)
    return y, counts


def _scatter(d, t):
    sums = vt.zeros(64, 8, dtype=vt.int64, device=d).scatter_add_(1, t["gidx"], t["gsrc"])  # integers: exact
    placed = vt.zeros(64, 48, device=d).scatter_(1, t["perm48"], t["x"])  # a permutation per row: no collisions
    return vt.gather(t["x"], 1, t["gidx"]), sums, placed


def _backward(d, t):
    x, w, b = (t[k].clone().requires_grad_() for k in ("x", "w", "b"))
    g, beta = (t[k].clone().requires_grad_() for k in ("g", "beta"))
    h = F.layer_norm(F.gelu(F.linear(x, w, b)), (32,), g, beta)
    loss = (F.log_softmax(h, dim=1) * t["h_weight"]).sum()
    loss.backward()
    return x.grad, w.grad, b.grad, g.grad, beta.grad


def _optimizers(d, t):
    outs = []
    for cls, kwargs in ((vt.optim.AdamW, dict(lr=1e-2, weight_decay=0.1)), (vt.optim.SGD, dict(lr=0.1, momentum=0.9))):
        ps = [t["w"].clone(), t["b"].clone()]
        opt = cls(ps, **kwargs)
        for _ in range(2):
            ps[0].grad, ps[1].grad = t["w"] * 0.5, t["b"] - 1
            opt.step()
        outs += ps
    ps = [t["w"].clone(), t["b"].clone()]
    ps[0].grad, ps[1].grad = t["w"].clone(), t["b"].clone()
    total = vt.nn.utils.clip_grad_norm_(ps, 0.5)  # the foreach norm and scale
    return [total, ps[0].grad, ps[1].grad] + outs


def _random(d, t):
    vt.manual_seed(1234)  # one Philox stream: the same seed gives the same numbers on every device
    return vt.rand(1000, device=d), vt.randn(37, 5, device=d)


# name -> fn(device string, inputs on that device) -> tensor or tuple of tensors, all on that device
CASES = {
    "elementwise": lambda d, t: ((t["x"] * 2.5 + 1).exp(), vt.where(t["x"] > 0, t["x"], -t["x"]),
                                 t["x"].t() + t["x"].t(), t["x"][:, ::3].sigmoid(), t["x"] < t["x"].mean()),
    "copy_cast_fill": lambda d, t: (t["x"].t().contiguous(), t["x"].to(vt.float16), t["x"].t().to(vt.float64),
                                    vt.full((5, 3), 2.5, device=d), vt.arange(17, device=d),
                                    vt.empty(48, 64, dtype=vt.float64, device=d).copy_(t["x_host"].t())),
    "reductions": lambda d, t: (t["x"].sum(), t["x"].sum(dim=0), t["x"].amax(dim=1), t["x"].argmax(dim=1),
                                t["x"].var(dim=0), vt.logsumexp(t["x"], 1), vt.cumsum(t["x"], dim=1),
                                t["long_row"].sum()),
    "index": lambda d, t: (t["x"][t["idx"]], t["x"][:, t["idx"][:8] % 48], t["x"][t["idx_host"]],
                           t["x"][t["x"] > 0.5], vt.nonzero(t["x"] > 1.0)),
    "index_put": _index_put,
    "gather_scatter": _scatter,
    "sort_topk": lambda d, t: (*vt.sort(t["x"], dim=1), *vt.topk(t["x"], 5, dim=1),
                               vt.argsort(t["x"][:, 0], descending=True)),
    "matmul": lambda d, t: (t["x"] @ t["w"].t(), vt.bmm(t["x"].reshape(4, 16, 48), t["w"].t().expand(4, 48, 32)),
                            t["a4"].permute(1, 0, 2, 3) @ t["b4"], t["x"].double() @ t["w"].double().t(),
                            F.linear(t["x"], t["w"], t["b"])),
    "nn": lambda d, t: (F.softmax(t["x"], dim=1), F.log_softmax(t["x"], dim=0),
                        F.layer_norm(t["x"], (48,), t["ln_w"], t["ln_b"]), F.rms_norm(t["x"], (48,)),
                        F.cross_entropy(t["x"], t["target"]), F.embedding(t["idx"], t["x"])),
    "conv": lambda d, t: (F.conv2d(t["img"], t["kernel"], padding=1), F.unfold(t["img"], 3)),
    "backward": _backward,
    "optimizers": _optimizers,
    "random": _random,
}


@pytest.fixture(params=[(0, 1), (1, 0)], ids=["current0-on1", "current1-on0"])
def devices(request):
    need(2)
    current, other = request.param
    prev = vt.cuda.current_device()
    vt.cuda.set_device(current)
    yield current, other
    vt.cuda.set_device(prev)


def _inputs(rng):
    def normal(*shape):
        return vt.from_numpy(rng.standard_normal(shape).astype(np.float32))

    def ints(high, *shape):
        return vt.from_numpy(rng.integers(0, high, shape).astype(np.int64))

    return {
        "x": normal(64, 48), "w": normal(32, 48), "b": normal(32), "g": normal(32), "beta": normal(32),
        "ln_w": normal(48), "ln_b": normal(48), "h_weight": normal(64, 32), "a4": normal(3, 2, 8, 6),
        "b4": normal(2, 3, 6, 4), "img": normal(2, 3, 9, 9), "kernel": normal(4, 3, 3, 3),
        "long_row": normal(1 << 18), "idx": ints(64, 40), "gidx": ints(8, 64, 8), "gsrc": ints(100, 64, 8),
        "target": ints(48, 64), "perm": vt.from_numpy(rng.permutation(64).astype(np.int64)),
        "perm48": vt.from_numpy(np.stack([rng.permutation(48) for _ in range(64)]).astype(np.int64)),
    }


def _run(fn, device, inputs, host_only):
    d = f"cuda:{device}"
    t = {k: v.to(d) for k, v in inputs.items()}
    t.update(host_only)  # CPU operands: indices that move to the device, a source copied with a cast
    before = vt.cuda.current_device()
    out = fn(d, t)
    assert vt.cuda.current_device() == before, "the op changed the caller's current device"
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    for o in outs:
        assert o.device == vt.device(d)
    for k in range(vt.cuda.device_count()):  # errors of work queued anywhere surface here
        vt.cuda.synchronize(k)
    return [o.detach().cpu() for o in outs]


@pytest.mark.parametrize("name", sorted(CASES))
def test_op_on_a_device_that_is_not_current(name, devices, rng):
    current, other = devices
    inputs = _inputs(rng)
    host_only = {"idx_host": inputs["idx"][:16], "x_host": inputs["x"]}
    there = _run(CASES[name], other, inputs, host_only)
    assert vt.cuda.current_device() == current
    here = _run(CASES[name], current, inputs, host_only)
    assert len(there) == len(here)
    for i, (a, b) in enumerate(zip(there, here)):
        assert a.dtype == b.dtype and a.shape == b.shape, (name, i)
        if a.dtype.is_floating_point:
            # Same kernels and (under emulation) the same GPU: equal up to a GEMM that may pick another algorithm
            # on another real GPU.
            np.testing.assert_allclose(a.double().numpy(), b.double().numpy(), rtol=1e-5, atol=1e-5,
                                       err_msg=f"{name}: output {i}")
        else:
            assert vt.equal(a, b), f"{name}: output {i}"
