"""Note [Norms of 16-bit inputs]: batch/instance/group norm of a bfloat16 or float16 input with float32 weight,
bias and running statistics (a float32 layer after a 16-bit one) against torch: the result in the input's dtype,
values and input/weight gradients close, running statistics still float32."""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt


def both(a, dtype):
    return vt.from_numpy(a.copy()).to(getattr(vt, dtype)), torch.from_numpy(a.copy()).to(getattr(torch, dtype))


CALLS = {
    "batch_norm_train": lambda m, x, w, b, rm, rv: m.nn.functional.batch_norm(x, rm, rv, w, b, training=True),
    "batch_norm_eval": lambda m, x, w, b, rm, rv: m.nn.functional.batch_norm(x, rm, rv, w, b, training=False),
    "instance_norm": lambda m, x, w, b, rm, rv: m.nn.functional.instance_norm(x, rm, rv, w, b),
    "group_norm": lambda m, x, w, b, rm, rv: m.nn.functional.group_norm(x, 2, w, b),
}


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("name", list(CALLS))
def test_16_bit_input_with_float32_parameters_like_torch(name, dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4, 5)).astype(np.float32) * 2 + 1
    w, b = rng.uniform(0.5, 1.5, 4).astype(np.float32), rng.standard_normal(4).astype(np.float32)
    (xv, xt), (wv, wt), (bv, bt) = both(x, dtype), both(w, "float32"), both(b, "float32")
    rmv, rmt = both(np.zeros(4, np.float32), "float32")
    rvv, rvt = both(np.ones(4, np.float32), "float32")
    for a in (xv, xt, wv, wt, bv, bt):
        a.requires_grad_()
    ov, ot = CALLS[name](vt, xv, wv, bv, rmv, rvv), CALLS[name](torch, xt, wt, bt, rmt, rvt)
    assert str(ov.dtype).split(".")[-1] == str(ot.dtype).split(".")[-1] == dtype
    tol = 3e-2 if dtype == "bfloat16" else 3e-3
    np.testing.assert_allclose(ov.float().detach().numpy(), ot.float().detach().numpy(), rtol=tol, atol=tol)
    g = rng.standard_normal(x.shape).astype(np.float32)
    ov.backward(vt.from_numpy(g.copy()).to(ov.dtype))
    ot.backward(torch.from_numpy(g.copy()).to(ot.dtype))
    for v, t in ((xv, xt), (wv, wt), (bv, bt)):
        assert str(v.grad.dtype).split(".")[-1] == str(t.grad.dtype).split(".")[-1]
        np.testing.assert_allclose(v.grad.float().numpy(), t.grad.float().numpy(), rtol=5 * tol,
                                   atol=5 * tol * float(np.abs(t.grad.float().numpy()).max()))
    assert rmv.dtype == vt.float32
    np.testing.assert_allclose(rmv.numpy(), rmt.numpy(), rtol=tol, atol=tol)
