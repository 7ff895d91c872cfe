"""vt.utils.checkpoint against torch.utils.checkpoint: the same outputs and gradients (inputs and parameters),
dropout drawing the same mask in the recomputation, tuple outputs, non-tensor and keyword arguments, inputs
that do not require grad, checkpoint_sequential, and the recomputation really happening in backward."""
import numpy as np
import pytest
import torch
import torch.utils.checkpoint as tcp

import vibetensor.torch as vt
import vibetensor.torch.utils.checkpoint as vcp


def pair(seed=0):
    t = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.GELU(), torch.nn.Linear(7, 3)).double()
    v = vt.nn.Sequential(vt.nn.Linear(5, 7), vt.nn.GELU(), vt.nn.Linear(7, 3)).double()
    v.load_state_dict({k: vt.from_numpy(p.detach().numpy().copy()) for k, p in t.state_dict().items()})
    x = np.random.default_rng(seed).standard_normal((4, 5))
    return t, v, x


@pytest.mark.parametrize("input_grad", [True, False])
@pytest.mark.parametrize("use_reentrant", [False, None])
def test_gradients_match_torch(input_grad, use_reentrant):
    t, v, x = pair()
    xt = torch.from_numpy(x).requires_grad_(input_grad)
    xv = vt.from_numpy(x.copy()).requires_grad_(input_grad)
    yt = tcp.checkpoint(lambda a, s: t(a) * s, xt, 2.0, use_reentrant=False)
    yv = vcp.checkpoint(lambda a, s: v(a) * s, xv, 2.0, use_reentrant=use_reentrant)
    np.testing.assert_allclose(yv.detach().numpy(), yt.detach().numpy(), rtol=1e-12)
    (yt ** 2).sum().backward()
    (yv ** 2).sum().backward()
    for (n, pt), (_, pv) in zip(t.named_parameters(), v.named_parameters()):
        np.testing.assert_allclose(pv.grad.numpy(), pt.grad.numpy(), rtol=1e-10, err_msg=n)
    if input_grad:
        np.testing.assert_allclose(xv.grad.numpy(), xt.grad.numpy(), rtol=1e-10)


def test_recomputes_in_backward_and_keeps_the_dropout_mask():
    calls = []
    drop = vt.nn.Dropout(0.5)
    w = vt.randn(6, 6, dtype=vt.float64, requires_grad=True)

    def block(a, *, scale):
        calls.append(vt.is_grad_enabled())
        return drop(a @ w) * scale, a.sum()

    x = vt.randn(3, 6, dtype=vt.float64, requires_grad=True)
    vt.manual_seed(5)
    y, s = vcp.checkpoint(block, x, scale=3.0)
    assert calls == [False]  # forward ran without recording history
    (y.sum() + s).backward()
    assert calls == [False, True]  # ... and ran again, recording, in backward
    gx, gw = x.grad.clone(), w.grad.clone()
    x.grad, w.grad = None, None
    vt.manual_seed(5)
    y2, s2 = block(x, scale=3.0)  # the plain call with the same RNG state: the same mask, the same gradients
    np.testing.assert_array_equal(y2.detach().numpy(), y.detach().numpy())
    (y2.sum() + s2).backward()
    np.testing.assert_allclose(x.grad.numpy(), gx.numpy(), rtol=1e-12)
    np.testing.assert_allclose(w.grad.numpy(), gw.numpy(), rtol=1e-12)


def test_checkpoint_sequential_and_no_grad():
    t, v, x = pair(1)
    yt = tcp.checkpoint_sequential(t, 2, torch.from_numpy(x), use_reentrant=False)
    yv = vcp.checkpoint_sequential(v, 2, vt.from_numpy(x.copy()))
    np.testing.assert_allclose(yv.detach().numpy(), yt.detach().numpy(), rtol=1e-12)
    yt.sum().backward()
    yv.sum().backward()
    for pt, pv in zip(t.parameters(), v.parameters()):
        np.testing.assert_allclose(pv.grad.numpy(), pt.grad.numpy(), rtol=1e-10)
    with vt.no_grad():
        assert not vcp.checkpoint(v, vt.from_numpy(x.copy())).requires_grad
    with pytest.raises(ValueError):
        vcp.checkpoint_sequential(v, 0, vt.from_numpy(x.copy()))
