"""Hypothesis strategies for the differential fuzzer: a drawn case is pure data (a recipe per argument), built
into a vibetensor value and a torch value that hold the same numbers.

A tensor recipe names its shape, dtype, values (ordinary, small integers, or extreme: nan, +-inf, -0.0,
the dtype's limits) and layout: contiguous, transposed, strided, expanded (stride 0), or a view of the op's
first tensor (the same tensor, its transpose, a row, a shifted window), which is how overlaps between what an
in-place op writes and reads are drawn. Arguments may also be None or of a wrong type on purpose, and floating
tensors may require grad (the case then runs backward too).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from hypothesis import strategies as st

import vibetensor.torch as vt

DTYPES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32", "float64"]
FLOATS = ["float16", "bfloat16", "float32", "float64"]
EXTREME_INTS = [2**31 - 1, -2**31, 2**63 - 1, -2**63, 2**63, 2**64]
WRONG_TYPES = ["a", [1.5], None, {}, 1.5, (1, 2)]
ALIASES = ["same", "t", "row", "shift", "flat"]
VT_DEVICE = "cpu"  # where vibetensor's tensors live; the CUDA profile sets "cuda" (torch stays on the CPU)


@dataclass(frozen=True)
class TensorRecipe:
    shape: tuple
    dtype: str
    values: str        # "normal", "small", "extreme"
    seed: int
    layout: str        # "contig", "t", "step", "expand", or "alias:<kind>"
    requires_grad: bool = False


@dataclass(frozen=True)
class Wrong:
    """An argument of a type the schema does not take."""
    value: object


def _numpy_values(r: TensorRecipe, shape) -> np.ndarray:
    rng = np.random.default_rng(r.seed)
    n = int(np.prod(shape)) if shape else 1
    if r.dtype == "bool":
        return rng.integers(0, 2, n).astype(bool).reshape(shape)
    if r.values == "extreme":
        if r.dtype in FLOATS:
            lim = {"float16": 65504.0, "bfloat16": 3.0e38, "float32": 3.4e38, "float64": 1.7e308}[r.dtype]
            palette = [0.0, -0.0, np.nan, np.inf, -np.inf, lim, -lim, 1e-30, 1.0, -1.0]
        else:
            info = np.iinfo(np.dtype(r.dtype))
            palette = [0, 1, -1, info.max, info.min, info.max - 1] if r.dtype != "uint8" else [0, 1, 255, 254]
        vals = rng.choice(np.array(palette, dtype=np.float64 if r.dtype in FLOATS else np.int64), n)
    elif r.values == "small" or r.dtype not in FLOATS:
        lo = 0 if r.dtype == "uint8" else -4
        vals = rng.integers(lo, 5, n)
    else:
        vals = rng.standard_normal(n) * 3
    np_dtype = np.float64 if r.dtype in FLOATS else np.dtype(r.dtype)
    return vals.astype(np_dtype).reshape(shape)


def _storage_shape(r: TensorRecipe):
    """The shape allocated before the layout is applied."""
    s = list(r.shape)
    if r.layout == "t" and len(s) >= 2:
        return tuple(s[:-2] + [s[-1], s[-2]])
    if r.layout == "step" and s:
        return tuple(s[:-1] + [2 * s[-1]])
    if r.layout == "expand" and s:
        return tuple([1] + s[1:])
    return tuple(s)


def _apply_layout(t, r: TensorRecipe):
    if r.layout == "t" and len(r.shape) >= 2:
        return t.transpose(-1, -2)
    if r.layout == "step" and r.shape:
        return t[..., ::2]
    if r.layout == "expand" and r.shape:
        return t.expand(*r.shape)
    return t


def _alias(first, kind):
    """A view of the op's first tensor: how the fuzzer draws overlaps."""
    if kind == "t" and first.dim() >= 2:
        return first.transpose(-1, -2)
    if kind == "row" and first.dim() >= 1 and first.shape[0] > 0:
        return first[0]
    if kind == "shift" and first.numel() > 1 and first.is_contiguous():
        return first.reshape(-1)[1:]
    if kind == "flat" and first.is_contiguous():
        return first.reshape(-1)
    return first


def build_tensor(r: TensorRecipe, side: str, first=None):
    """The recipe's tensor on one side ("vt" or "torch"); `first` is that side's first tensor (for aliases)."""
    if r.layout.startswith("alias:"):
        return _alias(first, r.layout.split(":")[1])
    arr = _numpy_values(r, _storage_shape(r))
    if side == "torch":
        t = torch.tensor(arr).to(getattr(torch, r.dtype))
    else:
        t = vt.tensor(arr).to(getattr(vt, r.dtype))
        if VT_DEVICE != "cpu":
            t = t.to(VT_DEVICE)
    t = _apply_layout(t, r)
    if r.requires_grad and r.dtype in FLOATS:
        t = t.detach().requires_grad_() if side == "torch" else t.detach().requires_grad_()
    return t


# ---- strategies ----

@st.composite
def shape_like(draw, base):
    """Mostly shapes that broadcast against `base`; sometimes anything."""
    if base is None or draw(st.integers(0, 9)) == 0:
        return draw(st.lists(st.integers(0, 4), max_size=3).map(tuple))
    kind = draw(st.sampled_from(["same", "suffix", "ones", "scalar"]))
    if kind == "same":
        return tuple(base)
    if kind == "suffix":
        return tuple(base[draw(st.integers(0, len(base))):])
    if kind == "ones":
        return tuple(1 if draw(st.booleans()) else s for s in base)
    return ()


@st.composite
def tensor_recipes(draw, *, base_shape=None, dtype=None, can_alias=False, autograd=False, index_like=False,
                   mask_like=False):
    if can_alias and draw(st.integers(0, 4)) == 2:
        return TensorRecipe((), "float32", "normal", 0, "alias:" + draw(st.sampled_from(ALIASES)))
    if index_like:
        return TensorRecipe(draw(st.lists(st.integers(0, 3), max_size=2).map(tuple)), "int64", "small",
                            draw(st.integers(0, 2**31)), "contig")
    shape = draw(shape_like(base_shape)) if base_shape is not None else draw(st.lists(st.integers(0, 4), max_size=3).map(tuple))
    if mask_like:
        dt = "bool"
    else:
        dt = dtype or draw(st.sampled_from(DTYPES + FLOATS * 2))  # floats drawn more often
    values = draw(st.sampled_from(["normal", "normal", "small", "extreme"]))
    layout = draw(st.sampled_from(["contig", "contig", "t", "step", "expand"]))
    rg = autograd and dt in FLOATS and draw(st.booleans())
    return TensorRecipe(shape, dt, values, draw(st.integers(0, 2**31)), layout, rg)


def scalars():
    return st.one_of(st.integers(-3, 4), st.sampled_from([0.5, -1.5, 2.0, float("nan"), float("inf"), -0.0, True,
                                                          False, 1e30]), st.sampled_from(EXTREME_INTS))


def ints(name: str):
    if "dim" in name:
        return st.one_of(st.integers(-3, 3), st.integers(-3, 3), st.sampled_from(EXTREME_INTS))
    return st.one_of(st.integers(-2, 5), st.integers(-2, 5), st.sampled_from(EXTREME_INTS))


@st.composite
def int_lists(draw, name: str, base_shape):
    base = list(base_shape or [])
    kind = draw(st.sampled_from(["shape", "shape", "dims", "random", "extreme"]))
    if kind == "shape":
        out = list(base)
        if out and draw(st.booleans()):
            out[draw(st.integers(0, len(out) - 1))] = -1
        if draw(st.integers(0, 3)) == 0:
            out = out[::-1]
        return out
    if kind == "dims":
        return draw(st.lists(st.integers(-3, 3), max_size=3))
    if kind == "extreme":
        return [draw(st.sampled_from(EXTREME_INTS))]
    return draw(st.lists(st.integers(-1, 5), max_size=3))


STRINGS = {"rounding_mode": [None, "trunc", "floor", "bogus"], "approximate": ["none", "tanh", "bogus"]}
