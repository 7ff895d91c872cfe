"""Reduction cases shared by the CPU suite (tests/core/test_reduce.py) and the CUDA suite
(tests/cuda/test_cuda_reductions.py): each op as fn(m, x, dim, keepdim) for m = torch or vibetensor.torch."""
import torch


def _prod(m, x, d, k):
    if d is None:
        return m.prod(x)
    if isinstance(d, (tuple, list)) and m is torch:  # torch.prod takes one dim: reduce one at a time
        nd = max(x.dim(), 1)
        for dd in sorted({dd % nd for dd in d}, reverse=True):
            x = torch.prod(x, dd, keepdim=k)
        return x
    return m.prod(x, d, keepdim=k)


def _all_dims(x):
    return tuple(range(x.dim())) if x.dim() else 0


# name -> fn(m, x, dim, keepdim). dim None means "no dim argument".
RED = {
    "sum": lambda m, x, d, k: m.sum(x) if d is None else m.sum(x, d, keepdim=k),
    "sum_meth": lambda m, x, d, k: x.sum() if d is None else x.sum(dim=d, keepdim=k),
    "mean": lambda m, x, d, k: m.mean(x) if d is None else m.mean(x, d, keepdim=k),
    "prod": _prod,
    "amax": lambda m, x, d, k: m.amax(x) if d is None else m.amax(x, d, keepdim=k),
    "amin": lambda m, x, d, k: m.amin(x) if d is None else x.amin(dim=d, keepdim=k),
    "max": lambda m, x, d, k: m.max(x) if d is None else (m.max(x, d, keepdim=k) if isinstance(d, int) else
                                                          m.amax(x, d, keepdim=k)),
    "min": lambda m, x, d, k: x.min() if d is None else (x.min(dim=d, keepdim=k) if isinstance(d, int) else
                                                         m.amin(x, d, keepdim=k)),
    "argmax": lambda m, x, d, k: m.argmax(x) if d is None else m.argmax(x, dim=d, keepdim=k),
    "argmin": lambda m, x, d, k: x.argmin() if d is None else x.argmin(d, keepdim=k),
    "var": lambda m, x, d, k: m.var(x) if d is None else m.var(x, d, keepdim=k),
    "std": lambda m, x, d, k: x.std() if d is None else x.std(dim=d, keepdim=k),
    "norm": lambda m, x, d, k: m.norm(x) if d is None else m.norm(x, dim=d, keepdim=k),
    "logsumexp": lambda m, x, d, k: m.logsumexp(x, _all_dims(x) if d is None else d, keepdim=k),
    "cumsum": lambda m, x, d, k: m.cumsum(x, 0 if d is None else d),
    "cumprod": lambda m, x, d, k: x.cumprod(0 if d is None else d),
}
ARG = {"argmax", "argmin"}
CUM = {"cumsum", "cumprod"}
PROD = {"prod", "cumprod"}
