"""torch's NumPy-style keyword spellings: its argument parser lets every native function and Tensor method that
takes `dim` take it as `axis`, and `keepdim` as `keepdims` (torch.cat(xs, axis=-1), x.sum(axis=0, keepdims=True),
as Hugging Face's attention-mask code writes). The torch functions written in Python (torch.split, F.softmax,
torch.norm) take no such spelling, so neither do theirs here.

install() wraps the functions and Tensor methods named below (measured against torch 2.13: the native ones
with a `dim` or `keepdim` parameter) so that the NumPy names reach them as torch's. Giving a dimension both ways
is torch's TypeError "got an unexpected keyword argument 'axis'".
"""
from __future__ import annotations

import functools

from .._C import core as _core

_ALIASES = (("axis", "dim"), ("keepdims", "keepdim"))

_REDUCTIONS = ("all", "amax", "amin", "aminmax", "any", "argmax", "argmin", "count_nonzero", "logsumexp", "max",
               "mean", "median", "min", "mode", "nanmean", "nanmedian", "nanquantile", "nansum", "prod", "quantile",
               "std", "sum", "var", "kthvalue")
_SCANS = ("argsort", "cummax", "cummin", "cumprod", "cumsum", "log_softmax", "logcumsumexp", "softmax", "sort",
          "topk", "diff", "renorm")
_SHAPES = ("chunk", "narrow", "select", "squeeze", "unsqueeze", "unbind", "tensor_split", "split_with_sizes",
           "repeat_interleave", "cross", "take_along_dim")
_INDEXING = ("gather", "index_add", "index_copy", "index_fill", "index_reduce", "index_select", "scatter",
             "scatter_add", "scatter_reduce", "select_scatter", "slice_scatter")
FUNCTIONS = _REDUCTIONS + _SCANS + _SHAPES + _INDEXING + (
    "cat", "concat", "concatenate", "stack", "std_mean", "var_mean")
METHODS = _REDUCTIONS + _SCANS + _SHAPES + _INDEXING + (
    "cumprod_", "cumsum_", "index_add_", "index_copy_", "index_fill_", "index_reduce_", "renorm_", "scatter_",
    "scatter_add_", "scatter_reduce_", "squeeze_", "unsqueeze_")


def _renamed(name, kwargs):
    kwargs = dict(kwargs)
    for numpy_name, torch_name in _ALIASES:
        if numpy_name in kwargs:
            if torch_name in kwargs:
                raise TypeError(f"{name}() got an unexpected keyword argument '{numpy_name}'")
            kwargs[torch_name] = kwargs.pop(numpy_name)
    return kwargs


def accepts_numpy_names(fn, name):
    """fn, taking `axis` for `dim` and `keepdims` for `keepdim` as torch's native functions do."""
    if getattr(fn, "_vt_numpy_names", False):
        return fn

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if "axis" not in kwargs and "keepdims" not in kwargs:
            return fn(*args, **kwargs)
        renamed = _renamed(name, kwargs)
        try:
            return fn(*args, **renamed)
        except TypeError as e:
            # a dimension given positionally and by its NumPy name: torch's message names the NumPy keyword
            if "multiple values" in str(e) or "incompatible function arguments" in str(e):
                alias = "axis" if "axis" in kwargs else "keepdims"
                raise TypeError(f"{name}() got an unexpected keyword argument '{alias}'") from None
            raise

    wrapper._vt_numpy_names = True
    return wrapper


def install(namespace: dict) -> None:
    for name in FUNCTIONS:
        if name in namespace:
            namespace[name] = accepts_numpy_names(namespace[name], name)
    for name in METHODS:
        method = getattr(_core.Tensor, name, None)
        if method is not None:
            setattr(_core.Tensor, name, accepts_numpy_names(method, name))
