"""Assigning Tensor.data of another dtype while a graph that uses the leaf is still alive: torch's set_data drops
the leaf's cached gradient accumulator when the dtype or device changes, so later gradients arrive in the new
dtype. vibetensor's Tensor.data setter (core/bindings/autograd.cpp) does the same: an AccumulateGrad kept from
before would still record float32, and the engine would cast every later float64 gradient to it.
Public code meets it as `nn.utils.weight_norm(conv)` followed by `model.double()`: weight_norm computes the
`weight` attribute once at registration, a graph over weight_g and weight_v that stays alive."""
import numpy as np
import torch
import vibetensor.torch as vt

def _grad_after_dtype_swap(lib):
    p = lib.nn.Parameter(lib.ones(3))
    kept = p * 2  # a live graph holds p's gradient accumulator, made while p was float32
    p.data = p.data.double()
    (p * lib.full((3,), 1 + 2 ** -30, dtype=lib.float64)).sum().backward()
    assert kept.requires_grad
    return p.grad


def test_torch_drops_the_accumulator():
    g = _grad_after_dtype_swap(torch)
    assert g.dtype == torch.float64 and g.tolist() == [1 + 2 ** -30] * 3


def test_gradient_keeps_the_new_dtype():
    g = _grad_after_dtype_swap(vt)
    assert g.dtype == vt.float64
    assert g.tolist() == [1 + 2 ** -30] * 3


def test_without_a_live_graph_the_new_dtype_is_kept():
    p = vt.nn.Parameter(vt.ones(3))
    (p * 2).sum()  # the graph (and with it the accumulator) is freed at once
    p.data = p.data.double()
    (p * vt.full((3,), 1 + 2 ** -30, dtype=vt.float64)).sum().backward()
    assert p.grad.dtype == vt.float64 and p.grad.tolist() == [1 + 2 ** -30] * 3


def test_weight_norm_then_double_gives_float64_gradients():
    grads = {}
    for lib in (torch, vt):
        torch.manual_seed(0)
        conv = torch.nn.utils.weight_norm(torch.nn.Conv1d(2, 3, 3))
        sd = {k: v.detach().numpy().astype(np.float64) for k, v in conv.state_dict().items()}
        m = lib.nn.utils.weight_norm(lib.nn.Conv1d(2, 3, 3)).double()
        m.load_state_dict({k: lib.from_numpy(v.copy()) for k, v in sd.items()})
        m(lib.from_numpy(np.random.default_rng(1).standard_normal((2, 2, 8)))).sum().backward()
        assert str(m.weight_v.grad.dtype).endswith("float64"), lib.__name__
        grads[lib] = m.weight_v.grad.numpy()
    np.testing.assert_allclose(grads[vt], grads[torch], rtol=1e-12, atol=1e-15)
