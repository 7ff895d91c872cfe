"""Second-order gradients through ops whose derivative is a mask (piecewise-linear activations, max pooling),
against torch: the first-order gradient taken with create_graph=True stays connected to the op's input (with a
zero derivative), so it requires grad, a backward through it works, and a parameter reached only through the mask
gets a zero gradient, not None. Gradient penalties (WGAN-GP, R1) differentiate exactly this. The C++ formulas
link the input (Note [Masks keep the input in the graph]); the Python composites (threshold, prelu, max pooling)
through _InputInGraph in python/vibetensor/torch/_math_functions.py."""
import numpy as np
import pytest
import torch

import vibetensor.torch as vt

OPS = {
    "relu": (lambda L, x: L.nn.functional.relu(x), []),
    "leaky_relu": (lambda L, x: L.nn.functional.leaky_relu(x, 0.2), []),
    "hardtanh": (lambda L, x: L.nn.functional.hardtanh(x), []),
    "relu6": (lambda L, x: L.nn.functional.relu6(x), []),
    "threshold": (lambda L, x: L.nn.functional.threshold(x, 0.1, 0.0), []),
    "prelu": (lambda L, x: L.nn.functional.prelu(x, L.tensor([0.25])), []),
    "max_pool1d": (lambda L, x: L.nn.functional.max_pool1d(x.unsqueeze(0), 2).squeeze(0), []),
    "max_pool2d": (lambda L, x: L.nn.functional.max_pool2d(x.reshape(1, 2, 2), 2, padding=1).reshape(1, 4), []),
    "abs": (lambda L, x: x.abs(), []),
    "elu": (lambda L, x: L.nn.functional.elu(x), []),
    "hardswish": (lambda L, x: L.nn.functional.hardswish(x), []),
}


@pytest.mark.parametrize("name", [pytest.param(k, marks=m) for k, (_, m) in OPS.items()])
def test_penalty_through_the_mask_matches_torch(name):
    f = OPS[name][0]
    grads = {}
    for lib in (torch, vt):
        x = lib.tensor([[0.7, -1.0, 2.0, -0.2]], requires_grad=True)
        b = lib.tensor([0.1, 0.2, -0.3, 0.05], requires_grad=True)  # a bias before the op, as in a critic
        g, = lib.autograd.grad(f(lib, x + b).sum(), x, create_graph=True)
        assert g.requires_grad, lib.__name__
        (g * g).sum().backward()
        # (torch may hand back an unmaterialised zero tensor, as for abs: adding 0 makes it a plain one)
        grads[lib] = [np.array((t + 0).tolist()) for t in (b.grad, x.grad)]
    for v, t in zip(grads[vt], grads[torch]):
        np.testing.assert_allclose(v, t, rtol=1e-6, atol=1e-7)
