"""The fused CUDA cross entropy (core/src/ops/cuda/cross_entropy.cu: class-index targets, no class weights, no
label smoothing) against torch on the GPU: values and input gradients for every floating dtype, the warp-per-row
and block-per-row paths (up to and past 1024 classes), every reduction, ignored rows (the default -100 and a class
index), all rows ignored (a mean of nothing is NaN), int32 targets, a 1-D input, strided and transposed inputs,
the gradient's scale for each reduction, double backward (create_graph), and the saved target's version check.

test_cuda_indexing_nn.py covers the other cases (weights, smoothing, probabilities, [N, C, d] inputs), which run the
composition; test_cuda_kernel_errors.py the out-of-range targets.

GPU run: PYTHONPATH=python python -m pytest tests/cuda/test_cuda_cross_entropy.py -q -p no:cacheprovider
"""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from cuda_helpers import CUDA_MARKS, DEV

pytestmark = CUDA_MARKS

TOL = {"float64": 1e-10, "float32": 2e-5, "float16": 2e-3, "bfloat16": 1.6e-2}


def pair(a, dtype, grad=False):
    v = vt.tensor(a, device=DEV).to(getattr(vt, dtype))
    t = torch.tensor(a, device=DEV).to(getattr(torch, dtype))
    if grad:
        v.requires_grad_(True), t.requires_grad_(True)
    return v, t


def close(v, t, dtype, what):
    got = v.detach().cpu().to(vt.float64).numpy()
    want = t.detach().cpu().double().numpy()
    tol = TOL[dtype]
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol, equal_nan=True, err_msg=what)


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
@pytest.mark.parametrize("classes", [1, 10, 33, 1024, 1025, 5003])
def test_values_and_gradients(dtype, classes):
    rng = np.random.default_rng(classes)
    for rows in (1, 7, 300):
        x = rng.standard_normal((rows, classes)) * 2
        target = rng.integers(0, classes, size=rows)
        target[::5] = -100  # ignored rows
        for reduction in ("mean", "sum", "none"):
            xv, xt = pair(x, dtype, grad=True)
            tv, tt = vt.tensor(target, device=DEV), torch.tensor(target, device=DEV)
            lv = vt.nn.functional.cross_entropy(xv, tv, reduction=reduction)
            lt = torch.nn.functional.cross_entropy(xt, tt, reduction=reduction)
            what = f"{rows}x{classes} {reduction}"
            close(lv, lt, dtype, what)
            g = rng.standard_normal(lt.shape)
            gv, gt = pair(g, dtype)
            lv.backward(gv), lt.backward(gt)
            close(xv.grad, xt.grad, dtype, what + " grad")


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_ignore_index_and_target_forms(dtype):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((9, 6))
    F, Ft = vt.nn.functional, torch.nn.functional
    xv, xt = pair(x, dtype)
    t = rng.integers(0, 6, size=9)
    for ignore in (3, 0, -100):
        for red in ("mean", "sum", "none"):
            close(F.cross_entropy(xv, vt.tensor(t, device=DEV), ignore_index=ignore, reduction=red),
                  Ft.cross_entropy(xt, torch.tensor(t, device=DEV), ignore_index=ignore, reduction=red), dtype,
                  f"ignore_index={ignore} {red}")
    all_ignored = np.full(9, 4)
    for red in ("mean", "sum", "none"):
        close(F.cross_entropy(xv, vt.tensor(all_ignored, device=DEV), ignore_index=4, reduction=red),
              Ft.cross_entropy(xt, torch.tensor(all_ignored, device=DEV), ignore_index=4, reduction=red), dtype,
              f"all ignored {red}")
    close(F.cross_entropy(xv, vt.tensor(t, dtype=vt.int32, device=DEV)),
          Ft.cross_entropy(xt, torch.tensor(t, device=DEV)), dtype, "int32 targets")
    for red in ("mean", "none"):  # a 1-D input and a 0-dim target
        close(F.cross_entropy(xv[2], vt.tensor(4, device=DEV), reduction=red),
              Ft.cross_entropy(xt[2], torch.tensor(4, device=DEV), reduction=red), dtype, f"1-D {red}")
    tv, tt = vt.tensor(t[:6], device=DEV), torch.tensor(t[:6], device=DEV)
    close(F.cross_entropy(xv[:6, :6].t(), tv), Ft.cross_entropy(xt[:6, :6].t(), tt), dtype, "transposed input")
    close(F.cross_entropy(xv[::2, 1:], vt.tensor(t[:5] % 5, device=DEV)),
          Ft.cross_entropy(xt[::2, 1:], torch.tensor(t[:5] % 5, device=DEV)), dtype, "strided rows")
    empty_v, empty_t = pair(np.zeros((0, 6)), dtype)
    close(F.cross_entropy(empty_v, vt.tensor(np.zeros(0, np.int64), device=DEV)),
          Ft.cross_entropy(empty_t, torch.tensor(np.zeros(0, np.int64), device=DEV)), dtype, "no rows")


def test_double_backward_matches_torch():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((5, 7))
    t = np.array([1, 6, -100, 0, 3])
    xv, xt = pair(x, "float64", grad=True)
    for red in ("mean", "sum"):
        lv = vt.nn.functional.cross_entropy(xv, vt.tensor(t, device=DEV), reduction=red)
        lt = torch.nn.functional.cross_entropy(xt, torch.tensor(t, device=DEV), reduction=red)
        (gv,) = vt.autograd.grad(lv, xv, create_graph=True)
        (gt,) = torch.autograd.grad(lt, xt, create_graph=True)
        close(gv, gt, "float64", f"grad {red}")
        (hv,) = vt.autograd.grad((gv * gv).sum(), xv)
        (ht,) = torch.autograd.grad((gt * gt).sum(), xt)
        close(hv, ht, "float64", f"second derivative {red}")


def test_grad_fn_and_target_version():
    xv = vt.ones(3, 4, device=DEV, requires_grad=True)
    t = vt.tensor([0, 1, 2], device=DEV)
    loss = vt.nn.functional.cross_entropy(xv, t)
    assert loss.grad_fn.name() == "NllLossBackward0"  # the fused op's node, as torch's
    t.add_(1)  # the target saved for backward, modified: refused at backward, as torch refuses it
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()
