"""vt.segment_reduce against torch.segment_reduce: every reduction (sum, mean, max/amax, min/amin, prod), with
and without initial, over lengths or offsets, along axis 0 of 1-D and 2-D data and batched along axis 1, empty
segments included; the values and the gradient of data (ties and zeros too), and torch's errors."""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from vibetensor.torch._segment_reduce import segment_reduce

CASES = [((6,), 0, [2, 0, 3, 1]), ((6, 3), 0, [1, 5, 0]), ((2, 5), 1, [[2, 3], [0, 5]]),
         ((2, 5, 2), 1, [[4, 1, 0], [0, 0, 5]])]
REDUCE = ["sum", "mean", "max", "amin", "prod"]


def reduce_both(x, red, use_offsets=False, **kw):
    """(output, data.grad) under torch and under vibetensor; empty segments' non-finite outputs get no
    upstream gradient."""
    res = []
    for lib, fn in ((torch, torch.segment_reduce), (vt, segment_reduce)):
        t = lib.from_numpy(x.copy()).requires_grad_()
        seg = dict(kw)
        if use_offsets:
            lens = np.array(seg.pop("lengths"))
            seg["offsets"] = lib.from_numpy(np.concatenate([np.zeros(lens.shape[:-1] + (1,), np.int64),
                                                            np.cumsum(lens, -1)], -1))
        else:
            seg["lengths"] = lib.tensor(seg["lengths"])
        o = fn(t, red, **seg)
        finite = np.isfinite(o.detach().numpy())
        up = np.arange(o.numel(), dtype=np.float64).reshape(tuple(o.shape)) + 1
        (lib.where(lib.from_numpy(finite), o, 0.0) * lib.from_numpy(up)).sum().backward()
        res.append((o.detach().numpy(), t.grad.numpy()))
    return res


@pytest.mark.parametrize("red", REDUCE)
@pytest.mark.parametrize("initial", [None, 0.5])
@pytest.mark.parametrize("case", range(len(CASES)))
def test_segment_reduce_matches_torch(red, initial, case):
    shape, axis, lens = CASES[case]
    x = np.random.default_rng(case).standard_normal(shape)
    (to, tg), (vo, vg) = reduce_both(x, red, lengths=lens, axis=axis, initial=initial)
    assert vo.shape == to.shape
    np.testing.assert_allclose(vo, to, rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(vg, tg, rtol=1e-12)
    if initial is None and red in ("mean", "max", "prod"):  # the empty segment of case 0: nan, -inf, 1
        if case == 0:
            assert {"mean": np.isnan, "max": np.isneginf, "prod": lambda v: v == 1}[red](vo[1])


@pytest.mark.parametrize("red", REDUCE)
def test_offsets_ties_and_zeros_match_torch(red):
    x = np.array([2.0, 0.0, 2.0, -1.0, 0.0, 3.0])  # a tie for the max, zeros in the products
    (to, tg), (vo, vg) = reduce_both(x, red, use_offsets=True, lengths=[3, 0, 2, 1])
    np.testing.assert_allclose(vo, to, equal_nan=True)
    np.testing.assert_allclose(vg, tg)
    x2 = np.random.default_rng(9).standard_normal((2, 4, 3))
    (to, tg), (vo, vg) = reduce_both(x2, red, use_offsets=True, lengths=[[1, 3], [4, 0]], axis=1)
    np.testing.assert_allclose(vo, to, rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(vg, tg, rtol=1e-12)


def error(lib, fn, *args, **kw):
    with pytest.raises(Exception) as info:
        fn(*args, **kw)
    return type(info.value), str(info.value)


@pytest.mark.parametrize("kw", [dict(lengths=[1, 2]), dict(lengths=[5, -1]), dict(), dict(indices=[0, 0, 1, 1]),
                                dict(reduce="median", lengths=[4])], ids=["sum", "negative", "none", "indices",
                                                                          "reduce"])
def test_errors_match_torch(kw):
    kw = dict(kw)
    red = kw.pop("reduce", "sum")
    got = []
    for lib, fn in ((torch, torch.segment_reduce), (vt, segment_reduce)):
        args = {k: lib.tensor(v) for k, v in kw.items()}
        got.append(error(lib, fn, lib.tensor([1.0, 2.0, 3.0, 4.0]), red, **args))
    assert got[1] == got[0]


def test_unsafe_skips_the_checks_and_exported():
    out = segment_reduce(vt.tensor([1.0, 2.0, 3.0]), "sum", lengths=vt.tensor([1, 2]), unsafe=True)
    np.testing.assert_allclose(out.numpy(), [1.0, 5.0])
    assert vt.segment_reduce is segment_reduce
