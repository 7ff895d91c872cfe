"""CUDA mean, var, std and the p-norms as one reduction launch each (core/src/ops/cuda/moments.cu): against a float64
NumPy reference and against the CPU's compositions, on the reduction kernels' paths: split full reductions, rows with a remainder, column tiles,
outputs that are not 16-byte columns, dims that do not coalesce, non-contiguous views; every floating dtype.
Under autograd var, std and the 2-norm stay one launch, differentiated by torch's formulas: gradients, double
gradients and grad_fn names against torch's on the GPU.

test_cuda_reductions.py sweeps the ops' semantics against torch; this file is about the fused kernels' numbers.

GPU run: PYTHONPATH=python python -m pytest tests/cuda/test_cuda_moments.py -q -p no:cacheprovider
"""
import math

import numpy as np
import pytest
import vibetensor.torch as vt
from cuda_helpers import CUDA_MARKS, DEV

pytestmark = CUDA_MARKS

DTYPES = ["float32", "float16", "bfloat16", "float64"]
# (shape, dim): a full split reduction, inner rows with a vector remainder, the column path (16-byte columns
# dealt to splits), an outer reduction over outputs that are not whole columns, two dims that do not coalesce
CASES = [((1 << 20) + 3,), None], [(129, 1031), 1], [(4099, 256), 0], [(2049, 3), 0], [(33, 17, 65), (0, 2)]
RTOL = {"float32": 2e-6, "float64": 1e-12, "float16": 1e-3, "bfloat16": 8e-3}


def device_pair(shape, dtype, seed, offset=0.0):
    """(NumPy float64 values as the dtype holds them, vibetensor tensor on the device)."""
    a = np.random.default_rng(seed).standard_normal(shape) * 3 + offset
    v = vt.from_numpy(a).to(getattr(vt, dtype)).to(DEV)
    return v.cpu().to(vt.float64).numpy(), v


def close(got, want, rtol, what):
    g = got.cpu().to(vt.float64).numpy()
    np.testing.assert_allclose(g, want, rtol=rtol, atol=rtol * max(1.0, float(np.abs(want).max(initial=0))),
                               err_msg=what)


def composed(fn, v):
    """fn(v) computed by the CPU's composition."""
    return fn(v.detach().cpu())


def np_var(a, dim, correction):
    axis = None if dim is None else dim
    count = a.size if axis is None else math.prod(a.shape[d] for d in np.atleast_1d(axis))
    d = a - a.mean(axis=axis, keepdims=True)
    return (d * d).sum(axis=axis) / max(0.0, count - correction)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,dim", CASES, ids=lambda c: str(c))
def test_mean_var_std_against_float64(dtype, shape, dim):
    a, v = device_pair(shape, dtype, seed=len(shape) + (dim if isinstance(dim, int) else 7))
    rtol = RTOL[dtype]
    close(v.mean() if dim is None else v.mean(dim), a.mean(axis=dim), rtol, "mean")
    for correction in (0, 1, 2.5):
        want = np_var(a, dim, correction)
        kw = {} if dim is None else {"dim": dim}
        close(v.var(correction=correction, **kw), want, rtol, f"var correction={correction}")
        close(v.std(correction=correction, **kw), np.sqrt(want), rtol, f"std correction={correction}")
    close(v.var(dim, keepdim=True) if dim is not None else v.var(), np_var(a, dim, 1).reshape(
        [1 if dim is not None and d in np.atleast_1d(dim) else s for d, s in enumerate(shape)] if dim is not None
        else ()), rtol, "var keepdim")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", [2, 1, 3, 0.5, -1.5])
def test_norms_against_float64(dtype, p):
    for shape, dim in CASES:
        a, v = device_pair(shape, dtype, seed=11)
        want = (np.abs(a) ** p).sum(axis=dim) ** (1.0 / p)
        if dtype == "float16":  # past float16's range the rounded norm is inf, as torch's
            with np.errstate(over="ignore"):
                want = want.astype(np.float16).astype(np.float64)
        close(v.norm(p=p, dim=dim), want, RTOL[dtype] * 4, f"norm p={p} {shape} dim={dim}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_fused_matches_the_composition(dtype):
    """The CUDA kernels and the CPU's compositions agree to the dtype's rounding."""
    fns = [lambda t: t.var(0), lambda t: t.std(1, correction=0), lambda t: t.norm(), lambda t: t.norm(p=1, dim=0),
           lambda t: t.t().var(1, keepdim=True), lambda t: t[:, ::3].std(), lambda t: t.norm(p=3, dim=1)]
    _, v = device_pair((301, 257), dtype, seed=3)
    for i, fn in enumerate(fns):
        close(fn(v), composed(fn, v).cpu().to(vt.float64).numpy(), RTOL[dtype] * 4, f"case {i}")


def test_variance_is_well_conditioned():
    """A large offset with a small spread: the one-pass Welford fold keeps float64's accuracy."""
    a, v = device_pair((1 << 18) + 5, "float64", seed=5, offset=1e9)
    close(v.var(), np_var(a, None, 1), 1e-9, "var of 1e9 + N(0, 9)")
    a32, v32 = device_pair((4096, 33), "float32", seed=6, offset=1e4)
    close(v32.std(0), np.sqrt(np_var(a32, 0, 1)), 1e-5, "float32 std with offset 1e4")


def test_special_values():
    """inf, NaN and huge values, and corrections at and past the count, as torch's var/std (float64 on the CPU)."""
    import torch

    rows = [[math.inf, 1.0, 2.0], [1.0, 2.0, math.nan], [3.0, 3.0, 3.0], [-1e300, 1e300, 0.0], [-math.inf, 0.0, 5.0]]
    x, xt = vt.tensor(rows, dtype=vt.float64, device=DEV), torch.tensor(rows, dtype=torch.float64)
    for correction in (0, 1, 3, 4, float("nan")):
        for name in ("var", "std"):
            got = getattr(x, name)(1, correction=correction).cpu().numpy()
            want = getattr(xt, name)(1, correction=correction).numpy()
            np.testing.assert_allclose(got, want, rtol=1e-12, equal_nan=True, err_msg=f"{name} c={correction}")
    np.testing.assert_allclose(x.norm(dim=1).cpu().numpy(), xt.norm(dim=1).numpy(), rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(x.mean(1).cpu().numpy(), xt.mean(1).numpy(), rtol=1e-12, equal_nan=True)


def test_mean_dtype_and_empty():
    a, v = device_pair((65, 129), "float16", seed=8)
    close(v.mean(1, dtype=vt.float64), a.mean(axis=1), 1e-12, "float16 -> float64 mean")
    assert v.mean(dtype=vt.float32).dtype == vt.float32
    i = vt.arange(10, device=DEV).reshape(2, 5)
    close(i.mean(1, dtype=vt.float32), np.array([2.0, 7.0]), 0, "int64 mean with dtype=float32")
    with pytest.raises(RuntimeError, match="could not infer output dtype"):
        i.mean()
    e = vt.empty(0, 3, device=DEV)
    assert np.isnan(e.mean(0).cpu().numpy()).all() and e.mean(1).shape == (0,) and math.isnan(e.mean().item())


GRAD_FNS = [  # (name, fn): the calls a model makes of var, std and the 2-norm, with torch's node names
    ("VarBackward0", lambda t: t.var(1, keepdim=True, unbiased=False)),
    ("VarBackward0", lambda t: t.var()),
    ("StdBackward0", lambda t: t.std(0, correction=2)),
    ("StdBackward0", lambda t: t.t().std(1)),
    ("LinalgVectorNormBackward0", lambda t: t.norm(dim=1)),
    ("LinalgVectorNormBackward0", lambda t: t[:, ::2].norm()),
]


@pytest.mark.parametrize("dtype", ["float64", "float32", "bfloat16"])
def test_gradients_match_torch(dtype):
    """Rows of equal values (std and norm 0: gradient 0, as torch's) among random ones."""
    import torch

    a = np.random.default_rng(11).standard_normal((37, 20))
    a[3] = 1.5
    a[5] = 0.0
    g = np.random.default_rng(12).standard_normal((37, 20))
    tol = {"float64": 1e-10, "float32": 2e-5, "bfloat16": 3e-2}[dtype]
    for name, fn in GRAD_FNS:
        xv = vt.from_numpy(a).to(getattr(vt, dtype)).to(DEV).requires_grad_()
        xt = torch.from_numpy(a).to(getattr(torch, dtype)).to("cuda" if DEV != "cpu" else "cpu").requires_grad_()
        yv, yt = fn(xv), fn(xt)
        if DEV != "cpu":
            assert yv.grad_fn.name() == name
        gv = vt.from_numpy(g).to(DEV).to(yv.dtype)
        gt = torch.from_numpy(g).to(yt.device).to(yt.dtype)
        (yv * gv.flatten()[: yv.numel()].reshape(yv.shape)).sum().backward()
        (yt * gt.flatten()[: yt.numel()].reshape(yt.shape)).sum().backward()
        np.testing.assert_allclose(yv.detach().float().cpu().numpy(), yt.detach().float().cpu().numpy(),
                                   rtol=tol, atol=tol, err_msg=name)
        np.testing.assert_allclose(xv.grad.float().cpu().numpy(), xt.grad.float().cpu().numpy(), rtol=tol,
                                   atol=tol, err_msg=name)


def test_double_backward_matches_torch():
    import torch

    a = np.random.default_rng(13).standard_normal((6, 9))
    out = []
    for m, dev in ((vt, DEV), (torch, "cuda" if DEV != "cpu" else "cpu")):
        x = m.from_numpy(a).to(dev).requires_grad_()
        y = x.std(1) + x.var(0).sum() + x.norm(dim=1) * 0.5
        (gx,) = m.autograd.grad(y.sum(), x, create_graph=True)
        (ggx,) = m.autograd.grad((gx * gx).sum(), x)
        out.append((gx.detach().cpu().numpy(), ggx.cpu().numpy()))
    for got, want in zip(*out):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)
