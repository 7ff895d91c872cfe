"""F.interpolate through the _resample kernel (core/src/ops/resample.h, cuda/resample.cu) on the GPU against torch
on the GPU: every mode, up and down, size and scale_factor, align_corners, every floating dtype (nearest: integer
and bool too), channels-last and transposed inputs, antialias; gradients (through the atomic adjoint) and double
gradients against torch's; a bad plan index raising IndexError at the next synchronisation.

GPU run: PYTHONPATH=python python -m pytest tests/cuda/test_cuda_resample.py -q -p no:cacheprovider
"""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from vibetensor._C import core as _core
from cuda_helpers import CUDA_MARKS, DEV, Failures, dcheck, dpair

pytestmark = CUDA_MARKS
TOL = {"float16": dict(rtol=2e-3, atol=2e-3), "bfloat16": dict(rtol=1.6e-2, atol=2e-2),
       "float32": dict(rtol=2e-5, atol=2e-5), "float64": dict(rtol=1e-12, atol=1e-12)}
FLOATS = ("float32", "float64", "float16", "bfloat16")

# (input shape, interpolate kwargs)
CASES = [
    ((2, 3, 9), dict(mode="linear", scale_factor=2)),
    ((2, 3, 9), dict(mode="linear", size=4, align_corners=True)),
    ((2, 3, 7, 5), dict(mode="bilinear", scale_factor=2)),
    ((2, 3, 7, 5), dict(mode="bilinear", size=(3, 11), align_corners=True)),
    ((1, 4, 8, 6), dict(mode="bilinear", scale_factor=(0.5, 1.7))),
    ((2, 2, 6, 5), dict(mode="bicubic", size=(9, 4))),
    ((2, 2, 6, 5), dict(mode="bicubic", scale_factor=1.5, align_corners=True)),
    ((1, 2, 3, 4, 5), dict(mode="trilinear", scale_factor=2)),
    ((1, 2, 4, 6, 3), dict(mode="trilinear", size=(2, 7, 5), align_corners=True)),
    ((2, 3, 7, 5), dict(mode="nearest", scale_factor=2)),
    ((2, 3, 7, 5), dict(mode="nearest", size=(4, 3))),
    ((2, 3, 9), dict(mode="nearest-exact", size=13)),
    ((1, 2, 3, 4, 5), dict(mode="nearest", size=(5, 3, 8))),
    ((2, 3, 16, 12), dict(mode="bilinear", size=(5, 7), antialias=True)),
    ((2, 3, 16, 12), dict(mode="bicubic", size=(7, 20), antialias=True)),
]


def _interp(kw):
    return lambda m, x: m.nn.functional.interpolate(x, **kw)


def _torch_has(kw, dtype):
    """torch's CPU kernels have no 16-bit antialiasing (its CUDA ones do)."""
    return DEV != "cpu" or not (kw.get("antialias") and dtype in ("float16", "bfloat16"))


def test_modes_dtypes_and_layouts(rng):
    f = Failures()
    for shape, kw in CASES:
        for dtype in filter(lambda d: _torch_has(kw, d), FLOATS):
            for layout in (None, "transpose"):
                x = dpair(shape, dtype, rng=rng, noncontig=layout)
                with f.case(f"{shape} {kw} {dtype} {layout}"):
                    dcheck(_interp(kw), x, **TOL[dtype])
        if len(shape) == 4:  # channels-last input: read in place, a channels-last result as torch's
            x = dpair(shape, "float32", rng=rng)
            with f.case(f"{shape} {kw} channels_last"):
                v, t = dcheck(lambda m, a: m.nn.functional.interpolate(
                    a.contiguous(memory_format=m.channels_last), **kw), x, **TOL["float32"])
                assert v.is_contiguous(memory_format=vt.channels_last) == \
                    t.is_contiguous(memory_format=torch.channels_last)
    f.raise_if_any()


# Many planes over few positions: each thread resamples a run of several planes (Note [Planes per thread] in
# cuda/resample.cu), the runs crossing the batch dim of a channels-last input (3 channels: runs of two planes
# wrap from one image to the next); and positions fewer than a warp (a thread per output instead).
RUNS = [
    ((2048, 3, 4, 4), dict(mode="bilinear", scale_factor=2)),
    ((512, 6, 5, 3), dict(mode="bicubic", size=(7, 6), align_corners=True)),
    ((96, 20, 4, 4, 4), dict(mode="trilinear", scale_factor=2)),
    ((4096, 3, 4, 4), dict(mode="nearest", scale_factor=2)),
    ((64, 300, 9), dict(mode="linear", size=40)),
    ((256, 8, 3, 2), dict(mode="bilinear", size=(5, 4))),
]


def _rounded(a, dtype):
    """float64 values of `a` rounded to dtype: the reference's inputs."""
    return torch.from_numpy(a).to(getattr(torch, dtype)).double().to(DEV)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float64"])
def test_runs_of_planes(rng, dtype):
    """Against torch in float64 on the same (rounded) values: torch's 16-bit upsample backward adds into 16-bit
    sums with atomics, off by several units in the last place where a trilinear input gathers 64 terms; the
    sums here are float32."""
    f = Failures()
    for shape, kw in RUNS:
        layouts = ("contiguous", "channels_last") if len(shape) == 4 else ("contiguous",)
        for layout in layouts:
            x = rng.standard_normal(shape)
            xv, xt = vt.from_numpy(x).to(DEV).to(getattr(vt, dtype)), _rounded(x, dtype)
            if layout == "channels_last":
                xv, xt = xv.contiguous(memory_format=vt.channels_last), xt.contiguous(memory_format=torch.channels_last)
            xv.requires_grad_(), xt.requires_grad_()
            yv, yt = vt.nn.functional.interpolate(xv, **kw), torch.nn.functional.interpolate(xt, **kw)
            g = rng.standard_normal(tuple(yt.shape))
            yv.backward(vt.from_numpy(g).to(DEV).to(yv.dtype))
            yt.backward(_rounded(g, dtype))
            with f.case(f"{shape} {kw} {dtype} {layout}"):
                tol = TOL[dtype]
                np.testing.assert_allclose(yv.float().detach().cpu().numpy(), yt.float().detach().cpu().numpy(), **tol)
                gtol = dict(tol, atol=tol["atol"] * 4) if dtype != "float64" else tol
                np.testing.assert_allclose(xv.grad.float().cpu().numpy(), xt.grad.float().cpu().numpy(), **gtol)
    f.raise_if_any()


NEAREST = (dict(scale_factor=3), dict(size=(2, 7)), dict(size=(4, 4), mode="nearest-exact"))


def test_nearest_moves_bytes(rng):
    f = Failures()
    for dtype in ("uint8", "float16"):
        x = dpair((2, 3, 5, 4), dtype, rng=rng)
        for kw in NEAREST:
            with f.case(f"{dtype} {kw}"):
                dcheck(_interp(kw), x)
    f.raise_if_any()


@pytest.mark.parametrize("dtype", ["int64", "int32", "bool", "int8"])
def test_nearest_of_dtypes_torch_lacks(rng, dtype):
    """torch's nearest kernels take only uint8 and the floats; a gather moves any dtype, the same rows the
    float64 resize picks."""
    x = rng.integers(0, 2 if dtype == "bool" else 100, (2, 3, 5, 4))
    for kw in NEAREST:
        got = vt.nn.functional.interpolate(vt.from_numpy(x.astype(dtype)).to(DEV), **kw)
        want = torch.nn.functional.interpolate(torch.from_numpy(x.astype("float64")), **kw)
        assert str(got.dtype).endswith(dtype)
        np.testing.assert_array_equal(got.cpu().numpy(), want.numpy().astype(dtype))


@pytest.mark.parametrize("dtype", ["float64", "float32", "bfloat16"])
def test_gradients_match_torch(rng, dtype):
    """bfloat16 against torch in float64 on the same rounded values (as test_runs_of_planes): torch's 16-bit
    backward rounds after every atomic add, in an order that changes between runs."""
    f = Failures()
    for shape, kw in filter(lambda c: _torch_has(c[1], dtype), CASES):
        x = rng.standard_normal(shape)
        xv = vt.from_numpy(x).to(DEV).to(getattr(vt, dtype)).requires_grad_()
        xt = _rounded(x, dtype) if dtype == "bfloat16" else torch.from_numpy(x).to(DEV).to(getattr(torch, dtype))
        xt.requires_grad_()
        yv, yt = vt.nn.functional.interpolate(xv, **kw), torch.nn.functional.interpolate(xt, **kw)
        g = rng.standard_normal(tuple(yt.shape))
        yv.backward(vt.from_numpy(g).to(DEV).to(yv.dtype))
        yt.backward(_rounded(g, dtype) if dtype == "bfloat16" else torch.from_numpy(g).to(DEV).to(yt.dtype))
        with f.case(f"{shape} {kw} {dtype}"):
            tol = dict(TOL[dtype], atol=TOL[dtype]["atol"] * 4) if dtype != "float64" else TOL[dtype]
            np.testing.assert_allclose(xv.grad.float().cpu().numpy(), xt.grad.float().cpu().numpy(), **tol)
    f.raise_if_any()


def test_double_backward_matches_torch(rng):
    x = rng.standard_normal((2, 2, 5, 4))
    g = rng.standard_normal((2, 2, 9, 7))
    out = []
    for m in (vt, torch):
        xs = m.from_numpy(x).to(DEV).requires_grad_()
        gs = m.from_numpy(g).to(DEV).requires_grad_()
        y = m.nn.functional.interpolate(xs, size=(9, 7), mode="bicubic")
        (gx,) = m.autograd.grad(y, xs, gs, create_graph=True)
        (gg,) = m.autograd.grad((gx * gx).sum(), gs)
        out.append((gx.detach().cpu().numpy(), gg.cpu().numpy()))
    for a, b in zip(*out):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_bad_plans_raise():
    op = _core.op("vt::_resample")
    x = vt.ones((1, 1, 4, 4), device=DEV)
    idx = vt.tensor([[0], [7]], device=DEV)  # row 7 of 4
    with pytest.raises(IndexError, match="7"):
        op(x, [idx, vt.tensor([[0], [1]], device=DEV)], []).cpu()
    with pytest.raises(RuntimeError, match="one tap"):
        op(x, [vt.tensor([[0, 1]], device=DEV)], [])
    with pytest.raises(TypeError, match="float32"):
        op(x, [vt.tensor([[0, 1]], device=DEV)], [vt.tensor([[0.5, 0.5]], dtype=vt.float64, device=DEV)])
    with pytest.raises(RuntimeError, match="must match"):
        op(x, [vt.tensor([[0, 1]], device=DEV)], [vt.tensor([[0.5]], device=DEV)])
    x.add_(1).cpu()  # the device stays usable
