"""autograd.Function outputs that are not tensors, against torch: backward receives one gradient per output of
forward, None at the non-tensor ones (before, vibetensor handed over only the tensor outputs' gradients, so a
backward indexing them by position read the wrong one), and torch.utils.checkpoint of a function returning such
a tuple (a T5 block's (hidden, None, position_bias)) gives torch's gradients."""
import numpy as np
import pytest
import torch
import vibetensor.autograd as vag
import vibetensor.torch as vt
from vibetensor.torch.utils.checkpoint import checkpoint as vt_checkpoint

X = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)


def make(lib, base, seen):
    class WithNone(base):
        @staticmethod
        def forward(ctx, x, scale):
            return x * 2, None, x.sum(0) * scale, "label"

        @staticmethod
        def backward(ctx, g_double, g_none, g_sum, g_label):
            seen.append([None if g is None else tuple(g.shape) for g in (g_double, g_none, g_sum, g_label)])
            return g_double * 2 + g_sum * 3, None
    return WithNone


@pytest.mark.parametrize("use_sum", [True, False])
def test_backward_gets_a_gradient_per_output_with_none_at_the_non_tensors(use_sum):
    results = []
    for lib, base in ((torch, torch.autograd.Function), (vt, vag.Function)):
        seen = []
        x = lib.from_numpy(X.copy()).requires_grad_(True)
        doubled, nothing, summed, label = make(lib, base, seen).apply(x, 3.0)
        assert nothing is None and label == "label"
        loss = doubled.sum() + (summed * summed).sum() if use_sum else doubled.sum()
        loss.backward()
        results.append((seen, x.grad.numpy()))
    (tseen, tgrad), (vseen, vgrad) = results
    assert vseen == tseen == [[(2, 3), None, (3,), None]]
    np.testing.assert_allclose(vgrad, tgrad, rtol=1e-6)


def block(lib):
    """A transformer block's shape of result: (hidden, no cache, position bias)."""
    def run(h, w, bias):
        scores = h @ w + bias
        return lib.tanh(scores), None, bias * 2
    return run


def test_checkpoint_of_a_tuple_with_none_matches_torch():
    r = np.random.default_rng(1)
    h, w, b = (r.standard_normal(s).astype(np.float32) for s in ((4, 3), (3, 3), (3,)))
    grads = []
    for lib, ckpt in ((torch, torch.utils.checkpoint.checkpoint), (vt, vt_checkpoint)):
        th, tw, tb = (lib.from_numpy(a.copy()).requires_grad_(True) for a in (h, w, b))
        out, cache, bias2 = ckpt(block(lib), th, tw, tb, use_reentrant=False)
        assert cache is None
        (out.sum() + (bias2 * out[0]).sum()).backward()
        grads.append([t.grad.numpy() for t in (th, tw, tb)])
    tgrads, vgrads = grads
    for v, t in zip(vgrads, tgrads):
        np.testing.assert_allclose(v, t, rtol=1e-5, atol=1e-6)
