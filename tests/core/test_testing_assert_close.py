"""vt.testing.assert_close decides as torch.testing.assert_close does: random pairs around the default and given
tolerances of every float dtype, integers, NaN and infinities, shape/dtype mismatches, nested containers; the
failure's first lines (kind, mismatched elements) in torch's words."""
import numpy as np
import pytest
import torch

import vibetensor.torch as vt


def _outcome(fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
        return None
    except AssertionError as e:
        return str(e).split("\n")
    except (TypeError, ValueError) as e:
        return type(e).__name__


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64", "int64"])
def test_decisions_match_torch(dtype):
    rng = np.random.default_rng(0)
    for case in range(60):
        e = rng.standard_normal(7) * 10.0 ** float(rng.integers(-3, 4))
        scale = 10.0 ** float(rng.integers(-8, 0))
        a = e + rng.standard_normal(7) * scale * np.abs(e).max()
        if case % 7 == 0:
            a[2], e[2] = np.nan, np.nan
        if case % 11 == 0:
            a[3] = e[3] = np.inf
        et, at = (torch.from_numpy(x).to(getattr(torch, dtype)) for x in (e, a))
        # the same values on our side (through float64, exact for every dtype here)
        ev, av = (vt.from_numpy(x.double().numpy().copy()).to(getattr(vt, dtype)) for x in (et, at))
        for kw in ({}, {"equal_nan": True}, {"rtol": 1e-3, "atol": 1e-6}):
            theirs = _outcome(torch.testing.assert_close, at, et, **kw)
            ours = _outcome(vt.testing.assert_close, av, ev, **kw)
            assert (ours is None) == (theirs is None), (case, kw, ours, theirs)
            if theirs is not None and not isinstance(theirs, str):
                assert ours[:3] == theirs[:3], (ours, theirs)


def test_mismatches_and_containers():
    assert _outcome(vt.testing.assert_close, vt.zeros(2), vt.zeros(3))[0].startswith(
        "The values for attribute 'shape' do not match")
    assert "dtype" in _outcome(vt.testing.assert_close, vt.zeros(2), vt.zeros(2, dtype=vt.float64))[0]
    vt.testing.assert_close(vt.zeros(2), vt.zeros(2, dtype=vt.float64), check_dtype=False)
    vt.testing.assert_close({"a": [vt.ones(2), 1.0]}, {"a": [vt.ones(2), 1.0]})
    msg = _outcome(vt.testing.assert_close, {"a": [vt.ones(2), 1.0]}, {"a": [vt.ones(2), 2.0]})
    assert msg[0] == "Scalars are not close!" and "item ['a']" in "\n".join(msg) and "item [1]" in "\n".join(msg)
    assert _outcome(vt.testing.assert_close, vt.ones(1), vt.ones(1), rtol=1e-3) == "ValueError"
