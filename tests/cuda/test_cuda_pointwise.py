"""addcmul, addcdiv and lerp with a number as the weight (one kernel each, core/src/ops/pointwise_impl.h) on the GPU
against torch on the GPU: every dtype each takes, broadcasting, non-contiguous operands, values on both sides of
lerp's 0.5, the in-place forms, and the gradients (tests/core/test_composite_conv.py does the same on the CPU).

GPU run: PYTHONPATH=python python -m pytest tests/cuda/test_cuda_pointwise.py -q -p no:cacheprovider
"""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from cuda_helpers import CUDA_MARKS, DEV, Failures, dcheck, dpair

pytestmark = CUDA_MARKS
TOL = {"float16": dict(rtol=2e-3, atol=2e-3), "bfloat16": dict(rtol=1.6e-2, atol=1.6e-2),
       "float32": dict(rtol=1e-6, atol=1e-6), "float64": dict(rtol=1e-12, atol=1e-12)}


def test_values_layouts_and_in_place(rng):
    f = Failures()
    for dtype in ("float32", "float64", "float16", "bfloat16", "int64", "int32", "uint8"):
        tol = TOL.get(dtype, {})
        a = dpair((33, 65), dtype, rng=rng, noncontig="transpose")
        b, c = dpair((65,), dtype, rng=rng), dpair((33, 65), dtype, rng=rng, nonzero=True)
        for v in (1, -2, 0.5) if dtype.startswith(("float", "bfloat")) else (1, -3):
            with f.case(f"addcmul {dtype} value={v}"):
                dcheck(lambda m, x, y, z: m.addcmul(x, y, z, value=v), a, b, c, **tol)
                dcheck(lambda m, x, y, z: x.clone().addcmul_(y, z, value=v), a, b, c, **tol)
            if dtype.startswith(("float", "bfloat")):
                with f.case(f"addcdiv and lerp {dtype} value={v}"):
                    dcheck(lambda m, x, y, z: m.addcdiv(x, y, z, value=v), a, b, c, **tol)
                    dcheck(lambda m, x, y, z: x.clone().addcdiv_(y, z, value=v), a, b, c, **tol)
                    for w in (0.1, 0.5, 0.9, v):
                        dcheck(lambda m, x, y: m.lerp(x, y, w), a, b, **tol)
                        dcheck(lambda m, x, y: x.clone().lerp_(y, w), a, b, **tol)
    f.raise_if_any()


def test_gradients_match_torch(rng):
    leaves = [rng.standard_normal((4, 5)) + 3 for _ in range(3)]
    for fn in (lambda m, x, y, z: m.addcmul(x, y, z, value=-0.5), lambda m, x, y, z: m.addcdiv(x, y, z, value=2),
               lambda m, x, y, z: m.lerp(x, y, 0.3), lambda m, x, y, z: m.lerp(x, y, 0.8) * z):
        vs = [vt.from_numpy(x).to(DEV).requires_grad_() for x in leaves]
        ts = [torch.from_numpy(x).to(DEV).requires_grad_() for x in leaves]
        fn(vt, *vs).sum().backward()
        fn(torch, *ts).sum().backward()
        for v, t in zip(vs, ts):
            assert (v.grad is None) == (t.grad is None)
            if t.grad is not None:
                np.testing.assert_allclose(v.grad.cpu().numpy(), t.grad.cpu().numpy(), rtol=1e-12)
