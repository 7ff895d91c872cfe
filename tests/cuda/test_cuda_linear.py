"""F.linear with a bias on CUDA: one cuBLASLt GEMM whose epilogue adds the bias (vt::_linear_bias), and in backward
one GEMM for the weight gradient whose BGRADB epilogue sums the bias gradient (vt::_linear_weight_bias_grad),
against torch's CUDA F.linear (tf32 off) on random inputs. Covered: float32/float16/bfloat16, 2-D and batched
inputs, odd sizes, column-major and sliced operands (pointers aligned to 2-4 bytes only, Note [Lt algorithm
cache]), a broadcast one-element bias and float64 (both the composed fallback), gradients, TF32, CUDA-graph
capture, a logical device other than 0, and the timed choice among the heuristic's candidates (VT_CUBLASLT_TUNE,
Note [Lt algorithm timing]). The tests count cuBLASLt launches, so a silent fallback to mm + add cannot pass for
the fused path (and the fallbacks are seen to launch none).

GPU run: PYTHONPATH=python python -m pytest tests/cuda/test_cuda_linear.py -q -p no:cacheprovider
"""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from cuda_helpers import CUDA_MARKS, DEV, ON_CUDA

from vibetensor._C import cuda as _cuda

pytestmark = CUDA_MARKS
TOL = {"float32": 1e-4, "float16": 2e-2, "bfloat16": 5e-2, "float64": 1e-10}


def lt_problems():
    return _cuda._cublaslt_cached_problems() if ON_CUDA else 0


def lt_launches():
    return _cuda._cublaslt_launches() if ON_CUDA else 0


def expect_launches(before, n):
    if ON_CUDA:
        assert lt_launches() == before + n, (lt_launches(), before, n)


def make(rng, shape, dtype, layout="dense"):
    """The same values on both sides, on the device, then given the layout: 'dense', 'colmajor' (last two dims
    swapped in memory), or 'sliced' (one leading column dropped, so the data pointer is off by one element)."""
    cols = shape[-1] + (1 if layout == "sliced" else 0)
    a = rng.standard_normal((*shape[:-1], cols))
    out = []
    for m in (vt, torch):
        t = m.tensor(a, dtype=getattr(m, dtype), device=DEV)
        if layout == "colmajor" and t.dim() >= 2:
            t = t.transpose(-2, -1).contiguous().transpose(-2, -1)
        elif layout == "sliced":
            t = t[..., 1:]
        out.append(t.requires_grad_())
    return out


def compare(v, t, dtype):
    vn = v.detach().to("cpu").to(vt.float64).numpy()
    tn = t.detach().to("cpu").to(torch.float64).numpy()
    assert vn.shape == tn.shape, (vn.shape, tn.shape)
    r = TOL[dtype]
    np.testing.assert_allclose(vn, tn, rtol=r, atol=r * max(1.0, float(np.abs(tn).max(initial=0))))


def run_both(rng, x_shape, n, dtype, x_layout="dense", w_layout="dense", b_layout="dense", backward=True):
    k = x_shape[-1]
    (vx, tx), (vw, tw), (vb, tb) = make(rng, x_shape, dtype, x_layout), make(rng, (n, k), dtype, w_layout), \
        make(rng, (n,), dtype, b_layout)
    vy, ty = vt.nn.functional.linear(vx, vw, vb), torch.nn.functional.linear(tx, tw, tb)
    compare(vy, ty, dtype)
    if backward:
        g = rng.standard_normal(tuple(ty.shape))
        vy.backward(vt.tensor(g, dtype=getattr(vt, dtype), device=DEV))
        ty.backward(torch.tensor(g, dtype=getattr(torch, dtype), device=DEV))
        for v, t in ((vx, tx), (vw, tw), (vb, tb)):
            compare(v.grad, t.grad, dtype)
    return vy


@pytest.fixture(autouse=True)
def _no_tf32():
    torch.backends.cuda.matmul.allow_tf32 = False
    vt.backends.cuda.matmul.allow_tf32 = False
    yield
    vt.backends.cuda.matmul.allow_tf32 = False


@pytest.mark.skipif(not ON_CUDA, reason="cuBLASLt is CUDA's")
def test_lt_loads():
    ok, why = _cuda.cublaslt_available()
    assert ok, why


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("x_shape, n", [((8, 16), 4), ((2, 5, 16), 9), ((1, 4099), 3), ((256, 512), 384),
                                        ((7, 33), 5), ((3, 1, 6, 24), 40), ((1, 1), 1)])
def test_linear_bias_matches_torch(x_shape, n, dtype, rng):
    before = lt_launches()
    run_both(rng, x_shape, n, dtype)
    expect_launches(before, 2)  # the forward, and backward's weight gradient with the bias gradient (BGRADB)


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("x_layout, w_layout, b_layout", [
    ("colmajor", "dense", "dense"), ("dense", "colmajor", "dense"), ("colmajor", "colmajor", "dense"),
    ("sliced", "dense", "dense"), ("dense", "sliced", "dense"), ("dense", "dense", "sliced"),
    ("sliced", "sliced", "sliced"),
])
def test_linear_bias_layouts_and_misaligned_pointers(x_layout, w_layout, b_layout, dtype, rng):
    # 37 x 29 -> 21: no dimension a multiple of 8, so no layout is accidentally 16-byte aligned.
    before = lt_launches()
    run_both(rng, (37, 29), 21, dtype, x_layout, w_layout, b_layout)
    expect_launches(before, 2)


def test_repeated_problem_reuses_the_cached_algorithm(rng):
    shape, n = (19, 23), 17
    run_both(rng, shape, n, "float32", backward=False)
    after_first = lt_problems()
    run_both(rng, shape, n, "float32", backward=False)
    assert lt_problems() == after_first


def test_broadcast_bias_and_float64_take_the_composed_path(rng):
    before = lt_launches()
    run_both(rng, (6, 10), 7, "float64")
    x, w = rng.standard_normal((6, 10)), rng.standard_normal((7, 10))
    vy = vt.nn.functional.linear(vt.tensor(x, device=DEV), vt.tensor(w, device=DEV),
                                 vt.tensor([0.5], dtype=vt.float64, device=DEV))
    ty = torch.nn.functional.linear(torch.tensor(x, device=DEV), torch.tensor(w, device=DEV),
                                    torch.tensor([0.5], dtype=torch.float64, device=DEV))
    compare(vy, ty, "float64")
    expect_launches(before, 0)


def test_empty_products(rng):
    before = lt_launches()
    for x_shape, n in (((0, 8), 5), ((4, 0), 5), ((4, 8), 0)):
        k = x_shape[-1]
        vx, tx = make(rng, x_shape, "float32")
        vw, tw = make(rng, (n, k), "float32")
        vb, tb = make(rng, (n,), "float32")
        compare(vt.nn.functional.linear(vx, vw, vb), torch.nn.functional.linear(tx, tw, tb), "float32")
    expect_launches(before, 0)


@pytest.mark.skipif(not ON_CUDA, reason="TF32 is a CUDA setting")
def test_tf32_is_a_separate_problem(rng):
    x, w, b = rng.standard_normal((64, 96)), rng.standard_normal((48, 96)), rng.standard_normal(48)
    args = [vt.tensor(a, dtype=vt.float32, device=DEV) for a in (x, w, b)]
    exact = vt.nn.functional.linear(*args)
    before = lt_problems()
    vt.backends.cuda.matmul.allow_tf32 = True
    fast = vt.nn.functional.linear(*args)
    assert lt_problems() == before + 1  # another compute type: its own cache entry
    ref = x @ w.T + b
    np.testing.assert_allclose(exact.to("cpu").numpy(), ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(fast.to("cpu").numpy(), ref, rtol=2e-2, atol=2e-2)


@pytest.mark.skipif(not ON_CUDA, reason="CUDA graphs")
def test_linear_bias_in_a_cuda_graph(rng):
    w = vt.tensor(rng.standard_normal((24, 40)), dtype=vt.float32, device=DEV)
    b = vt.tensor(rng.standard_normal(24), dtype=vt.float32, device=DEV)
    static_x = vt.zeros(16, 40, device=DEV)
    for _ in range(2):  # warm up: algorithm chosen and workspace cached outside the capture
        vt.nn.functional.linear(static_x, w, b)
    vt.cuda.synchronize()
    g = vt.cuda.CUDAGraph()
    with vt.cuda.graph(g):
        out = vt.nn.functional.linear(static_x, w, b)
    for _ in range(3):
        x = rng.standard_normal((16, 40)).astype(np.float32)
        static_x.copy_(vt.from_numpy(x))
        g.replay()
        vt.cuda.synchronize()
        expect = x.astype(np.float64) @ w.to("cpu").numpy().T + b.to("cpu").numpy()
        np.testing.assert_allclose(out.to("cpu").numpy(), expect, rtol=1e-4, atol=1e-4)


@pytest.mark.skipif(not ON_CUDA or vt.cuda.device_count() < 2, reason="needs a second (logical) device")
def test_linear_bias_on_another_device_runs_on_its_stream(rng):
    dev = f"cuda:{vt.cuda.device_count() - 1}"
    x, w, b = rng.standard_normal((33, 17)), rng.standard_normal((11, 17)), rng.standard_normal(11)
    before, launched = lt_problems(), lt_launches()
    y = vt.nn.functional.linear(*(vt.tensor(a, dtype=vt.float32, device=dev) for a in (x, w, b)))
    assert str(y.device) == dev and lt_problems() == before + 1  # the device is part of the key
    expect_launches(launched, 1)
    np.testing.assert_allclose(y.to("cpu").numpy(), x @ w.T + b, rtol=1e-4, atol=1e-4)


def test_frozen_bias_or_create_graph_take_the_plain_backward(rng):
    x, w, b = rng.standard_normal((12, 20)), rng.standard_normal((6, 20)), rng.standard_normal(6)
    vx, vw = (vt.tensor(a, dtype=vt.float32, device=DEV, requires_grad=True) for a in (x, w))
    vb = vt.tensor(b, dtype=vt.float32, device=DEV)  # frozen: only the weight's gradient is wanted
    before = lt_launches()
    vt.nn.functional.linear(vx, vw, vb).sum().backward()
    expect_launches(before, 1)
    np.testing.assert_allclose(vw.grad.to("cpu").numpy(), np.ones((12, 6)).T @ x, rtol=1e-4, atol=1e-4)
    vb.requires_grad_()
    y = vt.nn.functional.linear(vx, vw, vb)
    gw, gb = vt.autograd.grad((y * y).sum(), (vw, vb), create_graph=True)
    ref = 2 * (x @ w.T + b)
    np.testing.assert_allclose(gw.to("cpu").numpy(), ref.T @ x, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(gb.to("cpu").numpy(), ref.sum(0), rtol=1e-4, atol=1e-3)
    assert gw.requires_grad and gb.requires_grad



_TUNED = r"""
import numpy as np, vibetensor.torch as vt
from vibetensor._C import cuda as _cuda
rng = np.random.default_rng(0)
def case(m, k, n, dtype):
    x, w, b = rng.standard_normal((m, k)), rng.standard_normal((n, k)) / k ** 0.5, rng.standard_normal(n)
    args = [vt.tensor(a, dtype=getattr(vt, dtype), device="cuda") for a in (x, w, b)]
    return args, x @ w.T + b
def check(got, want, tol):
    np.testing.assert_allclose(got.to("cpu").to(vt.float64).numpy(), want, rtol=tol, atol=tol)
# 1024^3 multiply-adds: timed on first sight, cached, and the second call runs the cached choice
args, want = case(1024, 1024, 1024, "bfloat16")
problems = _cuda._cublaslt_cached_problems()
check(vt.nn.functional.linear(*args), want, 5e-2)
assert _cuda._cublaslt_cached_problems() == problems + 1
check(vt.nn.functional.linear(*args), want, 5e-2)
assert _cuda._cublaslt_cached_problems() == problems + 1
# a new large problem first met inside a capture: the heuristic's first answer, not cached, right in replay
args, want = case(2048, 512, 1024, "float32")
vt.cuda.synchronize()
g = vt.cuda.CUDAGraph()
with vt.cuda.graph(g):
    out = vt.nn.functional.linear(*args)
assert _cuda._cublaslt_cached_problems() == problems + 1
g.replay()
vt.cuda.synchronize()
check(out, want, 1e-3)
check(vt.nn.functional.linear(*args), want, 1e-3)  # eager now: timed and cached
assert _cuda._cublaslt_cached_problems() == problems + 2
print("ok")
"""


def _run_with_tune(setting, code, **extra_env):
    env = dict(os.environ, VT_CUBLASLT_TUNE=setting, **extra_env)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.skipif(not ON_CUDA, reason="times cuBLASLt algorithms on the GPU")
def test_timed_algorithm_choice_is_cached_and_skipped_in_capture():
    # Note [Lt algorithm timing]: VT_CUBLASLT_TUNE is read once per process, so the case runs in its own.
    r = _run_with_tune("4", _TUNED)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stdout + r.stderr


@pytest.mark.skipif(not ON_CUDA, reason="times cuBLASLt algorithms on the GPU")
def test_timed_choice_under_a_raised_workspace_limit():
    # Note [Lt workspace limit]: a 32 MiB limit admits split-K; the timing then also weighs the 1 MiB answers.
    r = _run_with_tune("4", _TUNED, VT_CUBLASLT_WORKSPACE_SIZE="32768")
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stdout + r.stderr


@pytest.mark.skipif(not ON_CUDA, reason="the setting is read at the first cuBLASLt GEMM")
def test_tune_setting_is_checked():
    code = ("import vibetensor.torch as vt; o = vt.ones(4, 3, device='cuda'); "
            "vt.nn.functional.linear(o, o, vt.ones(4, device='cuda'))")
    r = _run_with_tune("nine", code)
    assert r.returncode != 0 and "VT_CUBLASLT_TUNE must be a candidate count from 0 to 8" in r.stderr, r.stderr
    r = _run_with_tune("0", code, VT_CUBLASLT_WORKSPACE_SIZE="1MiB")
    assert r.returncode != 0 and "VT_CUBLASLT_WORKSPACE_SIZE must be a size in KiB, got '1MiB'" in r.stderr, r.stderr
