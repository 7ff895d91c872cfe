"""Fabric tests on GPUs: real ones, or one GPU emulating several (VT_EMULATE_DEVICES=N must be set before the
process first uses CUDA; scripts/gpu_check.sh runs tests/fabric with N = 2, 4 and 8). `need(n)` skips with the
command that would run the test."""
import pytest

import vibetensor.torch as vt


def need(n: int):
    if not vt.cuda.is_available():
        pytest.skip("needs a CUDA device")
    if vt.cuda.device_count() < n:
        pytest.skip(f"needs {n} CUDA devices: run with VT_EMULATE_DEVICES={n} on one GPU")
