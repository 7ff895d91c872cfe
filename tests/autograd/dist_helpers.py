"""Shared pieces of the vt.distributions tests: equal float64 parameters as vt and torch leaves, value
comparison that treats NaN/inf like torch does, a gradient check that backpropagates the same random
cotangent through a vt and a torch output and compares the parameter gradients, and ``Outputs`` which gathers
compared outputs for one such check."""
import numpy as np
import torch

import vibetensor.torch as vt

TOL = dict(rtol=1e-9, atol=1e-11)


def pair(a, grad=False):
    """The same array as a vt tensor and a torch tensor (leaves requiring grad when asked)."""
    a = np.asarray(a)
    v, t = vt.from_numpy(a.copy()), torch.from_numpy(a.copy())
    if grad:
        v.requires_grad_(True)
        t.requires_grad_(True)
    return v, t


def close(v, t, **tol):
    t = t.detach() if isinstance(t, torch.Tensor) else torch.as_tensor(t)
    assert tuple(v.shape) == tuple(t.shape), (tuple(v.shape), tuple(t.shape))
    np.testing.assert_allclose(v.detach().numpy(), t.numpy(), **(tol or TOL))


def check_grads(out_v, out_t, leaves_v, leaves_t, rng, **tol):
    """Same random cotangent through both outputs; compare the leaves' gradients."""
    w = rng.standard_normal(tuple(out_t.shape))
    (out_v * vt.from_numpy(w.copy())).sum().backward()
    (out_t * torch.from_numpy(w.copy())).sum().backward()
    for i, (lv, lt) in enumerate(zip(leaves_v, leaves_t)):
        if lt.grad is None:
            assert lv.grad is None, f"leaf {i}: vt has a gradient where torch has none"
            continue
        assert lv.grad is not None, f"leaf {i}: no gradient"
        close(lv.grad, lt.grad, **tol)


class Outputs:
    """vt/torch output pairs, each compared as it is added, whose sums then go through one gradient check."""

    def __init__(self):
        self.v, self.t = [], []

    def add(self, v, t, compare=True, **tol):
        if compare:
            close(v, t, **tol)
        self.v.append(v)
        self.t.append(t)

    def check_grads(self, shape, leaves_v, leaves_t, rng, **tol):
        """Sum the outputs, broadcast to ``shape``, and compare the leaves' gradients."""
        out_v, out_t = self.v[0], self.t[0]
        for v, t in zip(self.v[1:], self.t[1:]):
            out_v, out_t = out_v + v, out_t + t
        check_grads(out_v.expand(shape), out_t.expand(shape), leaves_v, leaves_t, rng, **tol)
