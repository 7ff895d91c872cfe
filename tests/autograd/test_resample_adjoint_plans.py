"""Adjoint plans of _resample (Note [Adjoint plans] in core/src/ops/resample.h), on the CPU: the gradient through
the adjoint plans (a _resample by the transposed taps) against the gradient through _resample_backward (atomic
adds on CUDA, ordered adds here), for interpolate's plans of every mode, F.pad's gathers, empty rows and -1
taps; double backward; and bad adjoint plans refused with the forward."""
import numpy as np
import pytest
import vibetensor.torch as vt
from vibetensor._C import core as _core
from vibetensor.torch.nn import functional_pad as FP
from vibetensor.torch.nn import functional_resample as FR
from vibetensor.torch.nn._adjoint_plans import adjoint, adjoint_pass

_resample = _core.op("vt::_resample")


def _np_plans(indices, weights):
    rows = [np.asarray(i.tolist(), dtype=np.int64) for i in indices]
    ws = [np.asarray(w.tolist()) for w in weights] or [None] * len(rows)
    return list(zip(rows, ws))


def _grads(x, args, g):
    """(gradient through the adjoint plans, gradient through _resample_backward) of _resample(x, *args)."""
    out = []
    for with_adjoint in (True, False):
        xs = x.detach().clone().requires_grad_()
        y = _resample(xs, *(args if with_adjoint else args[:2]))
        (gx,) = vt.autograd.grad(y, xs, g)
        out.append(gx.double().numpy())
    return out


def _with_adjoint(indices, weights, n_ins, dtype):
    wtype = vt.float64 if dtype == vt.float64 else vt.float32
    return (indices, weights) + adjoint_pass(_np_plans(indices, weights), n_ins, wtype, "cpu")


INTERP = [  # shape, interpolate kwargs
    ((2, 3, 7, 5), dict(mode="bilinear", scale_factor=2)),
    ((2, 3, 9, 6), dict(mode="bilinear", size=(4, 13), align_corners=True)),
    ((1, 2, 12, 10), dict(mode="bicubic", size=(7, 11))),
    ((1, 2, 3, 4, 5), dict(mode="trilinear", scale_factor=2)),
    ((2, 3, 7, 5), dict(mode="nearest", scale_factor=2)),
    ((2, 3, 7, 5), dict(mode="nearest", size=(3, 2))),
    ((2, 3, 9), dict(mode="nearest-exact", size=13)),
    ((2, 3, 9), dict(mode="linear", size=4)),
    ((1, 2, 16, 12), dict(mode="bilinear", size=(5, 7), antialias=True)),
    ((1, 2, 16, 12), dict(mode="bicubic", size=(7, 20), antialias=True)),
]


@pytest.mark.parametrize("dtype", ["float64", "float32", "bfloat16"])
def test_interpolate_plans(rng, dtype):
    dt = getattr(vt, dtype)
    for shape, kw in INTERP:
        x = vt.from_numpy(rng.standard_normal(shape)).to(dt)
        passes = FR._checked_passes(x, kw.get("size"), kw.get("scale_factor"), kw["mode"], kw.get("align_corners"),
                                    None, kw.get("antialias", False))
        for indices, weights in passes:  # the CPU's passes carry no adjoint plans
            n_ins = tuple(x.shape[x.dim() - len(indices):])
            args = _with_adjoint(indices, weights, n_ins, dt)
            y = _resample(x, indices, weights)
            g = vt.from_numpy(rng.standard_normal(tuple(y.shape))).to(dt)
            got, want = _grads(x, args, g)
            tol = 1e-12 if dtype == "float64" else 1e-5 if dtype == "float32" else 1e-2
            np.testing.assert_allclose(got, want, rtol=tol, atol=tol, err_msg=f"{shape} {kw}")
            x = y


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
def test_pad_plans(rng, mode):
    for shape, pad in [((2, 3, 6, 5), (2, 1, 1, 3)), ((2, 3, 6, 5), (-1, 2, 3, -2)), ((3, 8), (3, 3)),
                       ((1, 2, 4, 3, 5), (1, 1, 2, 0, 1, 2))]:
        if mode == "circular" and min(pad) < 0:
            continue
        x = vt.from_numpy(rng.standard_normal(shape))
        k = len(pad) // 2
        sizes = tuple(shape[len(shape) - k:])
        pads = tuple((pad[2 * i], pad[2 * i + 1]) for i in range(k))[::-1]
        indices, _ = FP._pad_plans(mode, sizes, pads, x.device, None)
        args = _with_adjoint(indices, [], sizes, vt.float64)
        y = _resample(x, indices, [])
        np.testing.assert_array_equal(y.numpy(), vt.nn.functional.pad(x, pad, mode=mode).numpy())
        g = vt.from_numpy(rng.standard_normal(tuple(y.shape)))
        got, want = _grads(x, args, g)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, err_msg=f"{shape} {pad} {mode}")


def test_adjoint_of_one_dim():
    rows = np.array([[0, 1], [1, 2], [-1, -1], [2, 2]])
    weights = np.array([[0.25, 0.75], [0.5, 0.5], [0.0, 0.0], [0.4, 0.6]])
    rows_t, weights_t = adjoint(rows, weights, 4)
    np.testing.assert_array_equal(rows_t, [[0, -1, -1], [0, 1, -1], [1, 3, 3], [-1, -1, -1]])
    np.testing.assert_array_equal(weights_t, [[0.25, 0, 0], [0.75, 0.5, 0], [0.5, 0.4, 0.6], [0, 0, 0]])
    rows_t, weights_t = adjoint(np.array([[2], [-1], [0]]), None, 3)  # a gather read once per row: a gather
    assert weights_t is None
    np.testing.assert_array_equal(rows_t, [[2], [-1], [0]])
    rows_t, weights_t = adjoint(np.array([[1], [1]]), None, 2)  # read twice: weighted, weights 1
    np.testing.assert_array_equal(rows_t, [[-1, -1], [0, 1]])
    np.testing.assert_array_equal(weights_t, [[0, 0], [1, 1]])


def test_double_backward_through_adjoint_plans(rng):
    x = vt.from_numpy(rng.standard_normal((2, 2, 5, 4))).requires_grad_()
    g = vt.from_numpy(rng.standard_normal((2, 2, 9, 7))).requires_grad_()
    indices, weights = FR._checked_passes(x, (9, 7), None, "bicubic", None, None, False)[0]
    args = _with_adjoint(indices, weights, (5, 4), vt.float64)
    out = []
    for a in (args, args[:2]):
        y = _resample(x, *a)
        (gx,) = vt.autograd.grad(y, x, g, create_graph=True)
        (gg,) = vt.autograd.grad((gx * gx).sum(), g)
        out.append((gx.detach().numpy(), gg.numpy()))
    for a, b in zip(*out):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_bad_adjoint_plans_are_refused_with_the_forward():
    x = vt.ones((1, 1, 4, 4))
    idx = [vt.tensor([[0], [1]]), vt.tensor([[0], [3]])]  # [2, 1] rows of 4 and 4
    with pytest.raises(RuntimeError, match="adjoint plans.*2 plans but 1"):
        _resample(x, idx, [], [vt.tensor([[0]])], [])
    with pytest.raises(RuntimeError, match="adjoint plans.*output rows"):  # rows of the adjoint: the input's 4
        _resample(x, idx, [], [vt.tensor([[0], [1]]), vt.tensor([[0]] * 4)], [])
    with pytest.raises(IndexError, match="adjoint plans.*index 2 is out of bounds"):  # taps read the output's 2 rows
        _resample(x, idx, [], [vt.tensor([[0], [2], [-1], [-1]]), vt.tensor([[0]] * 4)], [])
    with pytest.raises(TypeError, match="adjoint plans.*float32"):
        _resample(x, idx, [], [vt.tensor([[0, 1]] * 4)] * 2, [vt.ones((4, 2), dtype=vt.float64)] * 2)
    with pytest.raises(RuntimeError, match="adjoint weights without"):
        _resample(x, idx, [], [], [vt.ones((4, 1))])
