"""vt.inf, vt.nan, vt.pi, vt.e and vt.newaxis (python/vibetensor/torch/_constants.py) against torch's: the same
Python floats (or None), and the same results where model code uses them (a -inf causal mask, indexing with
newaxis, pi in arithmetic)."""
import math

import numpy as np
import pytest
import torch

import vibetensor.torch as vt


@pytest.mark.parametrize("name", ["inf", "pi", "e"])
def test_float_constants_equal_torchs(name):
    v, t = getattr(vt, name), getattr(torch, name)
    assert type(v) is type(t) is float and v == t


def test_nan_and_newaxis():
    assert type(vt.nan) is float and math.isnan(vt.nan) and math.isnan(torch.nan)
    assert vt.newaxis is torch.newaxis is None


def test_constants_in_model_code_match_torch():
    a = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
    results = []
    for lib in (torch, vt):
        x = lib.from_numpy(a.copy())
        mask = lib.triu(lib.ones(4, 4, dtype=lib.bool), diagonal=1)
        masked = x[:, lib.newaxis, :].expand(3, 4, 4).masked_fill(mask, -lib.inf)
        probs = lib.softmax(masked, dim=-1)
        results.append((probs.numpy(), (lib.sin(x * lib.pi) + x ** lib.e).numpy(),
                        lib.full((2,), lib.nan).numpy(), tuple(x[lib.newaxis].shape)))
    (tp, ts, tn, tshape), (vp, vs, vn, vshape) = results
    np.testing.assert_allclose(vp, tp, rtol=1e-6)
    assert (vp[:, 0, 1:] == 0).all()  # the first query sees only the first key
    np.testing.assert_allclose(vs, ts, rtol=1e-5, atol=1e-6)
    assert np.isnan(vn).all() and np.isnan(tn).all() and vshape == tshape == (1, 3, 4)
