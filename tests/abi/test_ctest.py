"""Runs the C ABI tests (tests/abi/abi_test.cpp, registered with CTest as `plugin_abi`) from pytest, so CI covers
them. The executable is built with the package (pip install . keeps its build tree in build/<wheel tag>/; the
developer build is build/dev/); the newest one is run."""
from __future__ import annotations

import glob
import os
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_c_abi_suite():
    candidates = glob.glob(os.path.join(REPO, "build", "*", "vt_abi_test"))
    if not candidates:
        pytest.skip("no CMake build tree with vt_abi_test (build with `pip install .` or the developer build first)")
    exe = max(candidates, key=os.path.getmtime)
    r = subprocess.run([exe], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"{exe} failed:\n{r.stdout}\n{r.stderr}"
    assert "all checks passed" in r.stdout
