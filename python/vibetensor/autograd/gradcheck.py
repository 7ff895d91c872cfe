"""Finite-difference gradient checks, torch.autograd.gradcheck-shaped: the analytical Jacobian (one backward per
output element) against central differences, on float64 inputs. gradgradcheck applies the same check to the
gradient itself (create_graph backward), which is how second derivatives are tested."""
from __future__ import annotations

import numpy as np

from .._C import core as _core

Tensor = _core.Tensor


def _outputs(fn, inputs):
    out = fn(*inputs)
    return [out] if isinstance(out, Tensor) else [o for o in out if isinstance(o, Tensor)]


def _from_numpy(arr, like):
    import vibetensor.torch as vt
    return vt.from_numpy(np.array(arr, order="C", copy=True)).to(like.device)  # keeps 0-d arrays 0-d


def _numerical(fn, inputs, idx, eps):
    """d(outputs)/d(inputs[idx]) by central differences: rows are input elements, columns output elements."""
    base = inputs[idx].detach().cpu().numpy().astype(np.float64)
    cols = []
    for j in range(base.size):
        vals = []
        for sign in (1.0, -1.0):
            arr = base.copy()
            arr.reshape(-1)[j] += sign * eps
            args = list(inputs)
            args[idx] = _from_numpy(arr, inputs[idx]).requires_grad_(inputs[idx].requires_grad)  # fn may differentiate
            vals.append(np.concatenate([o.detach().cpu().numpy().astype(np.float64).reshape(-1)
                                        for o in _outputs(fn, args)]))
        cols.append((vals[0] - vals[1]) / (2 * eps))
    return np.stack(cols) if cols else np.zeros((0, 0))


def _analytical(fn, inputs, diff_idx):
    from . import grad
    outs = _outputs(fn, inputs)
    sizes = [o.numel() for o in outs]
    total = sum(sizes)
    jac = [np.zeros((inputs[i].numel(), total)) for i in diff_idx]
    col = 0
    for k, o in enumerate(outs):
        for j in range(sizes[k]):
            onehot = np.zeros(sizes[k])
            onehot[j] = 1.0
            grads_out = [_from_numpy(onehot.reshape(tuple(o.shape)).astype(np.float64), o).to(o.dtype)
                         if m == k else _core.zeros(list(oo.shape), dtype=oo.dtype, device=oo.device)
                         for m, oo in enumerate(outs)]
            got = grad(outs, [inputs[i] for i in diff_idx], grads_out, retain_graph=True, allow_unused=True)
            for r, g in enumerate(got):
                if g is not None:
                    jac[r][:, col] = g.detach().cpu().numpy().astype(np.float64).reshape(-1)
            col += 1
    return jac


def gradcheck(fn, inputs, *, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True):
    """True when fn's analytical gradients match finite differences for every input that requires grad."""
    inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    diff_idx = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    analytical = _analytical(fn, inputs, diff_idx)
    for r, i in enumerate(diff_idx):
        numerical = _numerical(fn, inputs, i, eps)
        if not np.allclose(analytical[r], numerical, atol=atol, rtol=rtol):
            if not raise_exception:
                return False
            raise RuntimeError(f"Jacobian mismatch for output 0 with respect to input {i},\n"
                               f"numerical:{numerical}\nanalytical:{analytical[r]}\n")
    return True


def gradgradcheck(fn, inputs, grad_outputs=None, *, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True):
    """gradcheck of (inputs, grad_outputs) -> d(fn)/d(inputs) . grad_outputs, computed with create_graph."""
    from . import grad
    inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    outs = _outputs(fn, inputs)
    if grad_outputs is None:
        rng = np.random.default_rng(0)
        grad_outputs = [_from_numpy(rng.standard_normal(tuple(o.shape)), o).requires_grad_() for o in outs]
    n = len(inputs)
    diff_idx = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]

    def first_grad(*args):
        xs, gos = args[:n], list(args[n:])
        got = grad(_outputs(fn, xs), [xs[i] for i in diff_idx], gos, create_graph=True, allow_unused=True)
        return tuple(g for g in got if g is not None)

    return gradcheck(first_grad, tuple(inputs) + tuple(grad_outputs), eps=eps, atol=atol, rtol=rtol,
                     raise_exception=raise_exception)
