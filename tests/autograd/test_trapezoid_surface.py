"""vt.trapezoid, vt.trapz and vt.cumulative_trapezoid against torch: sample points x (1-D along dim, full
shape, broadcast from fewer dimensions) or a spacing dx, along any dim; integer y, one sample, an empty dim;
gradients of y and x; the errors torch raises; and the ROC AUC of a score vector by the trapezoidal rule."""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt

Y = np.random.default_rng(0).standard_normal((3, 5))
X1 = np.array([0.0, 0.5, 1.5, 1.7, 3.0])
CALLS = [
    ("plain", lambda L, y, x: L.trapezoid(y)), ("dx", lambda L, y, x: L.trapezoid(y, dx=0.25)),
    ("x1d", lambda L, y, x: L.trapezoid(y, x)), ("dim0", lambda L, y, x: L.trapezoid(y, dim=0, dx=2)),
    ("xfull", lambda L, y, x: L.trapezoid(y, x * L.ones(3, 1, dtype=x.dtype))),
    ("xrow", lambda L, y, x: L.trapezoid(y, x.reshape(1, 5))),
    ("trapz", lambda L, y, x: L.trapz(y, x, dim=-1)), ("trapz_dx", lambda L, y, x: L.trapz(y, dx=3)),
    ("cum", lambda L, y, x: L.cumulative_trapezoid(y)), ("cum_x", lambda L, y, x: L.cumulative_trapezoid(y, x)),
    ("cum_dim0", lambda L, y, x: L.cumulative_trapezoid(y, dx=0.5, dim=0)),
]


@pytest.mark.parametrize("name,call", CALLS, ids=[c[0] for c in CALLS])
def test_values_and_gradients_match_torch(name, call):
    got = []
    for lib in (torch, vt):
        y, x = lib.from_numpy(Y.copy()).requires_grad_(), lib.from_numpy(X1.copy()).requires_grad_()
        out = call(lib, y, x)
        (out * lib.from_numpy(np.arange(out.numel(), dtype=np.float64).reshape(tuple(out.shape)) + 1)).sum().backward()
        got.append((out.detach().numpy(), y.grad.numpy(), None if x.grad is None else x.grad.numpy()))
    (to, tyg, txg), (vo, vyg, vxg) = got
    assert vo.shape == to.shape
    np.testing.assert_allclose(vo, to, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(vyg, tyg, rtol=1e-12, atol=1e-14)
    assert (vxg is None) == (txg is None)
    if txg is not None:
        np.testing.assert_allclose(vxg, txg, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name,call", [
    ("int", lambda L: L.trapezoid(L.tensor([1, 2, 3]))), ("one", lambda L: L.trapezoid(L.tensor([1.5]))),
    ("empty", lambda L: L.trapezoid(L.ones(2, 0))),
    ("cum_empty", lambda L: L.cumulative_trapezoid(L.ones(0, 3), dim=0)),
    ("int_x", lambda L: L.trapezoid(L.tensor([1.0, 2.0, 4.0]), L.tensor([0, 1, 3]))),
], ids=lambda v: v if isinstance(v, str) else "")
def test_edge_cases_match_torch(name, call):
    t, v = call(torch), call(vt)
    assert tuple(v.shape) == tuple(t.shape) and str(v.dtype).split(".")[-1] == str(t.dtype).split(".")[-1]
    np.testing.assert_allclose(v.numpy(), t.numpy())


@pytest.mark.parametrize("call", [
    lambda L: L.trapezoid(L.ones(2, 3), L.tensor([0.0, 1.0])),
    lambda L: L.trapezoid(L.tensor([True, False])),
    lambda L: L.trapezoid(L.ones(3), L.tensor([0.0, 1.0, 2.0]), dx=1),
    lambda L: L.cumulative_trapezoid(L.ones(3), L.tensor([0.0, 1.0])),
], ids=["x_length", "bool_y", "x_and_dx", "cum_x_length"])
def test_errors_match_torch(call):
    got = []
    for lib in (torch, vt):
        with pytest.raises(Exception) as info:
            call(lib)
        got.append((type(info.value), str(info.value).split("\n")[0].replace("torch.", "")))
    assert got[1][0] is got[0][0]
    assert got[1][1].split(" - got")[0] == got[0][1].split(" - got")[0]


def test_roc_auc_by_the_trapezoidal_rule():
    """Metric code's AUC: sort by score, cumulative true and false positive rates, integrate."""
    r = np.random.default_rng(1)
    scores, labels = r.standard_normal(50), (r.random(50) < 0.4).astype(np.float64)
    ref = (scores[labels == 1][:, None] > scores[labels == 0][None, :]).mean()
    for lib in (torch, vt):
        s, y = lib.from_numpy(scores), lib.from_numpy(labels)
        order = lib.argsort(s, descending=True)
        tps = lib.cumsum(y[order], 0)
        fps = lib.cumsum(1 - y[order], 0)
        tpr = lib.cat([lib.zeros(1, dtype=tps.dtype), tps / tps[-1]])
        fpr = lib.cat([lib.zeros(1, dtype=fps.dtype), fps / fps[-1]])
        np.testing.assert_allclose(lib.trapezoid(tpr, fpr).item(), ref, rtol=1e-12)
