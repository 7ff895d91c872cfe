"""Shared pieces of the autograd tests: the same random inputs as vt and torch leaves, and a check that runs a
function on both sides, backpropagates the same upstream gradient, and compares outputs and input gradients."""
from __future__ import annotations

import numpy as np
import torch

import vibetensor.torch as vt

TOL = {"float32": dict(rtol=1e-4, atol=1e-5), "float64": dict(rtol=1e-10, atol=1e-12)}


def leaves(shapes, dtype="float64", seed=0, positive=False, noncontig=False):
    """One (vt, torch) pair of leaf tensors per shape, with equal values. noncontig: each tensor is the transpose
    of a contiguous buffer (a non-contiguous leaf; shapes of rank >= 2)."""
    rng = np.random.default_rng(seed)
    out = []
    for shape in shapes:
        a = rng.standard_normal(shape)
        if positive:
            a = np.abs(a) + 0.5
        a = a.astype(dtype)
        if noncontig and len(shape) >= 2:
            buf = np.ascontiguousarray(np.swapaxes(a, -1, -2))
            v = vt.from_numpy(buf.copy()).transpose(-1, -2)
            t = torch.from_numpy(buf.copy()).transpose(-1, -2)
            assert not v.is_contiguous()
            v = v.detach().requires_grad_()
            t = t.detach().requires_grad_()
        else:
            v = vt.from_numpy(a.copy()).requires_grad_()
            t = torch.from_numpy(a.copy()).requires_grad_()
        out.append((v, t))
    return out


def to_np(x):
    if isinstance(x, torch.Tensor):
        return x.detach().numpy()
    return x.detach().numpy()


def check_grads(fn, pairs, dtype="float64", seed=1):
    """fn(m, *tensors) on both sides; backward with the same random upstream gradient; compare."""
    vs, ts = [p[0] for p in pairs], [p[1] for p in pairs]
    out_t = fn(torch, *ts)
    out_v = fn(vt, *vs)
    np.testing.assert_allclose(to_np(out_v), to_np(out_t), **TOL[dtype])
    g = np.random.default_rng(seed).standard_normal(tuple(out_t.shape)).astype(dtype)
    out_t.backward(torch.from_numpy(g.copy()))
    out_v.backward(vt.from_numpy(g.copy()))
    for i, (v, t) in enumerate(zip(vs, ts)):
        if t.grad is None:
            assert v.grad is None, f"input {i}: vt has a gradient where torch has none"
            continue
        assert v.grad is not None, f"input {i}: no gradient"
        assert tuple(v.grad.shape) == tuple(t.grad.shape)
        assert v.grad.dtype == getattr(vt, dtype)
        np.testing.assert_allclose(to_np(v.grad), to_np(t.grad), **TOL[dtype], err_msg=f"input {i}")
    return out_v, out_t
