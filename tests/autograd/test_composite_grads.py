"""Gradients of composite ops (softmax, log_softmax, layer_norm, rms_norm, var, std, logsumexp, norm) through their
decompositions, against torch on the same inputs (float64 and float32) and by finite differences."""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt

CASES = {
    "softmax": lambda m, x: m.softmax(x, -1),
    "softmax_dim0": lambda m, x: m.softmax(x, 0),
    "log_softmax": lambda m, x: m.log_softmax(x, -1),
    "layer_norm": lambda m, x: m.nn.functional.layer_norm(x, (x.shape[-1],)),
    "rms_norm": lambda m, x: m.nn.functional.rms_norm(x, (x.shape[-1],)),
    "var": lambda m, x: x.var(-1),
    "std_all": lambda m, x: x.std(),
    "logsumexp": lambda m, x: m.logsumexp(x, -1),
    "norm": lambda m, x: m.norm(x, dim=-1),
}


def run(m, fn, x_np, w_np, dtype):
    x = (torch if m is torch else vt).from_numpy(x_np.astype(dtype))
    x.requires_grad_(True)
    out = fn(m, x)
    w = (torch if m is torch else vt).from_numpy(w_np[: out.numel()].reshape(tuple(out.shape)).astype(dtype))
    (out * w).sum().backward()
    return out.detach().numpy(), x.grad.numpy()


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_grad_matches_torch(name, dtype, rng):
    x = rng.standard_normal((4, 7))
    x[1, 3] = 40.0  # a dominant entry: the max shift matters for softmax/logsumexp
    w = rng.standard_normal(28)
    tol = {"rtol": 1e-10, "atol": 1e-12} if dtype == "float64" else {"rtol": 2e-5, "atol": 2e-6}
    vo, vg = run(vt, CASES[name], x, w, dtype)
    to, tg = run(torch, CASES[name], x, w, dtype)
    np.testing.assert_allclose(vo, to, **tol)
    np.testing.assert_allclose(vg, tg, **tol, err_msg=f"{name} gradient")


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "layer_norm", "logsumexp"])
def test_gradcheck(name, rng):
    x = vt.from_numpy(rng.standard_normal((3, 5))).requires_grad_(True)
    assert vt.autograd.gradcheck(lambda t: CASES[name](vt, t), (x,))


def test_layer_norm_module_with_affine_trains_like_torch(rng):
    tm, vm = torch.nn.LayerNorm(6), vt.nn.LayerNorm(6)
    with torch.no_grad():
        tm.weight.copy_(torch.from_numpy(rng.standard_normal(6).astype(np.float32)))
        tm.bias.copy_(torch.from_numpy(rng.standard_normal(6).astype(np.float32)))
    vm.load_state_dict({k: vt.from_numpy(v.numpy().copy()) for k, v in tm.state_dict().items()})
    x = rng.standard_normal((5, 6)).astype(np.float32)
    for m, mod in ((torch, tm), (vt, vm)):
        (mod(m.from_numpy(x)) ** 2).mean().backward()
    for name in ("weight", "bias"):
        np.testing.assert_allclose(getattr(vm, name).grad.numpy(), getattr(tm, name).grad.numpy(), rtol=1e-5,
                                   atol=1e-6)


def test_embedding_grad_accumulates_duplicates(rng):
    w = rng.standard_normal((10, 4))
    idx = np.array([[1, 2, 1], [9, 1, 0]])
    grads = []
    for m in (vt, torch):
        wt = m.from_numpy(w.copy()).requires_grad_(True)
        (m.nn.functional.embedding(m.from_numpy(idx), wt) ** 2).sum().backward()
        grads.append(wt.grad.numpy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-12)


@pytest.mark.parametrize("kw", [{}, {"reduction": "sum"}, {"reduction": "none"}, {"label_smoothing": 0.2},
                                {"ignore_index": 3}, {"weight": True}, {"weight": True, "label_smoothing": 0.1}])
def test_cross_entropy_grad(kw, rng):
    x = rng.standard_normal((6, 5))
    t = np.array([1, 3, 4, 0, 3, 2])
    cw = rng.uniform(0.5, 2.0, 5)
    grads = []
    for m in (vt, torch):
        xt = m.from_numpy(x.copy()).requires_grad_(True)
        args = dict(kw)
        if args.pop("weight", False):
            args["weight"] = m.from_numpy(cw.copy())
        loss = m.nn.functional.cross_entropy(xt, m.from_numpy(t), **args)
        (loss.sum() if loss.dim() else loss).backward()
        grads.append(xt.grad.numpy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-10, atol=1e-12)


def test_cross_entropy_probability_target_grad(rng):
    x = rng.standard_normal((4, 3))
    p = rng.dirichlet(np.ones(3), size=4)
    grads = []
    for m in (vt, torch):
        xt = m.from_numpy(x.copy()).requires_grad_(True)
        m.nn.functional.cross_entropy(xt, m.from_numpy(p)).backward()
        grads.append(xt.grad.numpy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-10, atol=1e-12)


def test_dropout_grad_uses_the_same_mask():
    x = vt.ones(2000, dtype=vt.float64).requires_grad_(True)
    y = vt.nn.functional.dropout(x, 0.25, training=True)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), y.detach().numpy())  # d y_i / d x_i = y_i / x_i with x = 1
    assert 0.15 < (x.grad.numpy() == 0).mean() < 0.35
