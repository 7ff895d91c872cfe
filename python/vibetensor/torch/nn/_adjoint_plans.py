"""Adjoint plans of `_resample` (Note [Adjoint plans] in core/src/ops/resample.h): the transposed taps that make a
resampling's gradient another resampling, a gather that writes each input element once, instead of atomic adds
into a zeroed sum. Built on the host with the plans they transpose (interpolate's and F.pad's, both cached).

A plan of one dim is rows [n_out, taps] (the input row each tap reads, -1 for none) and weights of the same shape
(None for a gather: each weight is 1). Its adjoint is rows_T [n_in, taps_T]: input row i lists the output rows
whose taps read it, in output order, padded with -1, with those taps' weights.
"""
import numpy as np

from ..._C import core as _core
from .. import _functions


def plan_tensor(a, dtype, device):
    """A NumPy plan array as a tensor of that dtype on the device, its shape kept (an empty one included)."""
    return _functions.tensor(a.reshape(-1).tolist(), dtype=dtype, device=device).view(*a.shape)


def adjoint(rows, weights, n_in):
    """The adjoint of one dim's plan: (rows_T, weights_T), weights_T None where each input row is read at most
    once with weight 1 (the adjoint is then a gather too)."""
    n_out, taps = rows.shape
    out_rows = np.repeat(np.arange(n_out, dtype=np.int64), taps)
    read = rows.reshape(-1)
    w = np.ones(read.size) if weights is None else weights.reshape(-1)
    live = read >= 0
    out_rows, read, w = out_rows[live], read[live], w[live]
    order = np.argsort(read, kind="stable")  # by input row; within one, output order
    out_rows, read, w = out_rows[order], read[order], w[order]
    counts = np.bincount(read, minlength=n_in)
    taps_t = max(int(counts.max(initial=0)), 1)
    slot = np.arange(read.size) - (np.cumsum(counts) - counts)[read]
    rows_t = np.full((n_in, taps_t), -1, dtype=np.int64)
    rows_t[read, slot] = out_rows
    if weights is None and taps_t == 1:
        return rows_t, None
    weights_t = np.zeros((n_in, taps_t), dtype=w.dtype if weights is not None else np.float64)
    weights_t[read, slot] = w
    return rows_t, weights_t


def adjoint_pass(plans, n_ins, wtype, device):
    """The adjoint plans of one _resample pass as device tensors, (indices, weights): plans is a list of (rows,
    weights) NumPy pairs, one per resampled dim, n_ins the input's sizes of those dims, wtype the accumulation
    dtype (float64 or float32) of the weights."""
    pairs = [adjoint(r, w, n) for (r, w), n in zip(plans, n_ins)]
    ftype = np.float64 if wtype == _core.dtype.float64 else np.float32
    gather = all(w is None for _, w in pairs)
    indices = [plan_tensor(r, _core.dtype.int64, device) for r, _ in pairs]
    weights = [] if gather else [plan_tensor((np.ones(r.shape) if w is None else w).astype(ftype), wtype, device)
                                 for r, w in pairs]
    return indices, weights
