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
