"""Builds plugin projects the way a plugin author does: CMake, with the include directory that
`python -m vibetensor.abi --include` prints (the installed header, or the checkout's)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def cmake_build(source: str, build: str, *extra: str) -> str:
    """Configures and builds one plugin project; returns the build directory (the .so files lie there)."""
    include = subprocess.run([sys.executable, "-m", "vibetensor.abi", "--include"], check=True, capture_output=True,
                             text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}).stdout.strip()
    cmake = shutil.which("cmake")
    if cmake is None:
        pytest.fail("building plugins needs cmake on PATH (pip install cmake ninja)")
    gen = ["-G", "Ninja"] if shutil.which("ninja") else []
    for cmd in ([cmake, "-S", source, "-B", build, *gen, f"-DVT_PLUGIN_INCLUDE_DIR={include}",
                 "-DCMAKE_BUILD_TYPE=Release", *extra], [cmake, "--build", build, "-j2"]):
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            pytest.fail(f"{' '.join(cmd)} failed:\n{r.stdout}\n{r.stderr}")
    return build
