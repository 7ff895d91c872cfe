"""Connectionist temporal classification: F.ctc_loss and nn.CTCLoss, with torch's signature, reductions,
zero_infinity and length checks.

The loss is the log-space forward (alpha) recursion over the extended label sequence (blank, l1, blank, l2, ...,
blank), vectorised over the batch and the extended positions, with a Python loop over time. It is composed from
differentiable vt ops (gather, stack, logsumexp, where), so gradients flow through vibetensor's autograd.

Impossible paths use a large finite negative log-probability instead of -inf, so that logsumexp's backward never
sees an all -inf row (whose softmax is NaN); infeasible samples (too short an input for the target and its
repeats) are detected from the lengths and set to inf (or 0 under zero_infinity) through where, which gives
them a zero gradient.
"""
import numpy as np

from .module import Module

_NEG = -1e30  # "log 0": finite so that logsumexp's gradient stays finite where no path reaches


def _F():
    from .. import _functions

    return _functions


def _int_list(x):
    """Lengths given as an int, a tensor or a sequence, as a list of ints (read on the host: the loop needs them)."""
    if isinstance(x, int):
        return [x]
    if hasattr(x, "tolist"):
        v = x.tolist()
        return [int(v)] if isinstance(v, (int, float)) else [int(i) for i in v]
    return [int(i) for i in x]


def ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=0, reduction="mean", zero_infinity=False):
    """CTC loss of log_probs [T, N, C] (or unbatched [T, C]; log-softmax outputs) against targets padded [N, S]
    or concatenated 1-D. Like torch, the gradient is meant for log_probs that come out of log_softmax."""
    F = _F()
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(reduction + " is not a valid value for reduction")
    unbatched = log_probs.dim() == 2
    if unbatched:
        log_probs = log_probs.unsqueeze(1)
        if targets.dim() == 1:
            targets = targets.unsqueeze(0)
    if log_probs.dim() != 3:
        raise RuntimeError(f"ctc_loss: expected log_probs to be 2-D or 3-D, got {log_probs.dim()}-D")
    T, N, C = tuple(log_probs.shape)
    in_len = _int_list(input_lengths)
    tg_len = _int_list(target_lengths)
    if len(in_len) != N:
        raise RuntimeError("input_lengths must be of size batch_size")
    if len(tg_len) != N:
        raise RuntimeError("target_lengths must be of size batch_size")
    if not 0 <= blank < C:
        raise RuntimeError("blank must be in label range")
    for name, vals in (("input_lengths", in_len), ("target_lengths", tg_len)):
        for v in vals:
            if v < 0:
                raise RuntimeError(f"Expected {name} to have value at least 0, but got value {v}")
    for v in in_len:
        if v > T:
            raise RuntimeError(f"Expected input_lengths to have value at most {T}, but got value {v}")
    tg = np.asarray(targets.detach().cpu().numpy() if hasattr(targets, "numpy") else targets, dtype=np.int64)
    if tg.ndim == 1:  # concatenated: split by the target lengths
        if tg.shape[0] != sum(tg_len):
            raise RuntimeError(f"Expected tensor to have size {sum(tg_len)} at dimension 0, but got size "
                               f"{tg.shape[0]} for argument #2 'targets'")
        offs = np.cumsum([0] + tg_len)
        labels = [tg[offs[i]:offs[i + 1]].tolist() for i in range(N)]
    else:
        S = tg.shape[1]
        for v in tg_len:
            if v > S:
                raise RuntimeError(f"Expected tensor to have size at least {v} at dimension 1, but got size {S} "
                                   f"for argument #2 'targets'")
        labels = [tg[i, :tg_len[i]].tolist() for i in range(N)]

    smax = max(tg_len) if N else 0
    L = 2 * smax + 1
    ext = np.full((N, L), blank, dtype=np.int64)  # the extended sequence, blank-padded past each sample's end
    skip = np.zeros((N, L), dtype=bool)  # s may be reached from s - 2: a label differing from the one before
    reach = np.zeros((N, L), dtype=bool)  # s lies inside the sample's extended sequence
    feasible = np.zeros(N, dtype=bool)
    for n, lab in enumerate(labels):
        ext[n, 1:2 * len(lab):2] = lab
        reach[n, :2 * len(lab) + 1] = True
        for k in range(1, len(lab)):
            skip[n, 2 * k + 1] = lab[k] != lab[k - 1]
        repeats = sum(1 for k in range(1, len(lab)) if lab[k] == lab[k - 1])
        feasible[n] = in_len[n] >= len(lab) + repeats and (in_len[n] > 0 or len(lab) == 0)

    dev, dt = log_probs.device, log_probs.dtype

    def vt_(a):
        return F.from_numpy(a).to(dev)

    idx = vt_(ext).unsqueeze(0).expand(T, N, L) if T else None
    lp = log_probs.gather(2, idx) if T else None  # [T, N, L]: log-prob of each extended symbol at each time
    init = np.full((N, L), _NEG)
    init[:, 0] = 0.0
    init[:, 1:2][np.array(tg_len) > 0] = 0.0
    reach_m, skip_m = vt_(reach), vt_(skip)
    if T:
        alpha = F.where(vt_(init < 0), _NEG, lp[0])
        neg2 = F.full((N, 2), _NEG, dtype=dt, device=dev)
        for t in range(1, T):
            prev1 = F.cat([neg2[:, :1], alpha[:, :-1]], 1)
            prev2 = F.where(skip_m, F.cat([neg2[:, :min(L, 2)], alpha[:, :max(L - 2, 0)]], 1), _NEG)
            new = F.logsumexp(F.stack([alpha, prev1, prev2]), 0) + lp[t]
            new = F.where(reach_m, new, _NEG)
            live = vt_(np.array([t < v for v in in_len]))
            alpha = F.where(live.unsqueeze(1), new, alpha)  # a finished sample keeps its last alpha
        last = np.array([2 * v for v in tg_len], dtype=np.int64)
        ends = vt_(np.stack([last, np.maximum(last - 1, 0)], 1))
        end_a = alpha.gather(1, ends)
        end_a = F.where(vt_(np.stack([np.ones(N, bool), last > 0], 1)), end_a, _NEG)
        loss = -F.logsumexp(end_a, 1)
    else:
        loss = F.zeros((N,), dtype=dt, device=dev)
    # no frames: the empty alignment of an empty target has probability 1 (a non-empty one is infeasible)
    loss = F.where(vt_(np.array([v == 0 for v in in_len], dtype=bool)), 0.0, loss)
    bad = vt_(~feasible)
    loss = F.where(bad, 0.0 if zero_infinity else float("inf"), loss)
    if reduction == "sum":
        out = loss.sum()
    elif reduction == "mean":
        denom = vt_(np.maximum(np.array(tg_len, dtype=np.float64), 1.0)).to(dt)
        out = (loss / denom).mean()
    else:
        out = loss
    if unbatched and reduction == "none":
        out = out.squeeze(0)
    return out


class CTCLoss(Module):
    """nn.CTCLoss: ctc_loss with the blank index, reduction and zero_infinity fixed at construction."""

    def __init__(self, blank=0, reduction="mean", zero_infinity=False):
        super().__init__()
        self.reduction = reduction
        self.blank = blank
        self.zero_infinity = zero_infinity

    def forward(self, log_probs, targets, input_lengths, target_lengths):
        return ctc_loss(log_probs, targets, input_lengths, target_lengths, self.blank, self.reduction,
                        self.zero_infinity)
