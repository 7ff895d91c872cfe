"""The CUDA reference plugin (plugins/reference/ref_cuda.cu) against vibetensor's built-in ops on the GPU:
TensorIterator descriptors over broadcast and strided operands in every claimed dtype, launches on the current
vibetensor stream (ordered after a delayed producer on that stream), and a Tensor[] op across devices."""
from __future__ import annotations

import glob
import os

import numpy as np
import pytest

import vibetensor.torch as vt
from plugin_build import REPO, cmake_build
from helpers import pair

pytestmark = pytest.mark.cuda

CLAIMED = ["float32", "float64", "int32", "int64"]


@pytest.fixture(scope="module")
def cuda_plugin(tmp_path_factory):
    built = glob.glob(os.path.join(REPO, "build", "*", "plugins", "reference", "vt_ref_cuda.so"))
    if built:
        path = max(built, key=os.path.getmtime)
    else:
        archs = os.environ.get("VT_CUDA_ARCHS", "auto")
        archs = "native" if archs == "auto" else archs  # this test runs only where a GPU is present
        path = os.path.join(cmake_build(os.path.join(REPO, "plugins", "reference"), str(tmp_path_factory.mktemp("ref_cuda")),
                                        "-DVT_REF_WITH_CUDA=ON", f"-DCMAKE_CUDA_ARCHITECTURES={archs}"), "vt_ref_cuda.so")
    return vt.ops.load_library(path)


@pytest.mark.parametrize("dtype", CLAIMED)
@pytest.mark.parametrize("shapes", [((3, 4), (3, 4)), ((3, 1), (1, 4)), ((2, 3, 5), (5,)), ((0, 3), (3,)),
                                    ((), (4,)), ((1000, 513), (513,))], ids=str)
@pytest.mark.parametrize("layout", [None, "transpose", "slice"])
def test_add_matches_builtin(cuda_plugin, rng, dtype, shapes, layout):
    a = pair(shapes[0], dtype, noncontig=layout if len(shapes[0]) > 1 else None, rng=rng).v.to("cuda")
    b = pair(shapes[1], dtype, rng=rng).v.to("cuda")
    alpha = 2 if dtype.startswith("int") else 0.75
    out = vt.ops.ref_cuda.add(a, b, alpha=alpha)
    expected = vt.add(a, b, alpha=alpha)
    assert out.device == expected.device and out.dtype == expected.dtype and out.shape == expected.shape
    np.testing.assert_allclose(out.cpu().numpy(), expected.cpu().numpy(), rtol=1e-6)


def test_add_promotes_and_refuses(cuda_plugin):
    a = vt.ones(4, device="cuda", dtype=vt.int32)
    b = vt.full((4,), 0.5, device="cuda", dtype=vt.float64)
    out = vt.ops.ref_cuda.add(a, b)
    assert out.dtype == vt.float64 and out.cpu().tolist() == [1.5] * 4
    with pytest.raises(TypeError, match="ref_cuda::add supports"):
        vt.ops.ref_cuda.add(vt.ones(2, device="cuda", dtype=vt.float16), vt.ones(2, device="cuda", dtype=vt.float16))
    with pytest.raises(NotImplementedError, match="no kernel registered for the CPU backend"):
        vt.ops.ref_cuda.add(vt.ones(2), vt.ones(2))
    with pytest.raises(RuntimeError, match="same device"):
        vt.ops.ref_cuda.add(vt.ones(2, device="cuda"), vt.ones(2))


def test_add_runs_on_the_current_stream(cuda_plugin):
    s = vt.cuda.Stream()
    with vt.cuda.stream(s):
        x = vt.zeros(1 << 22, device="cuda")
        for _ in range(20):  # a slow producer queued on s
            x = x + 1
        out = vt.ops.ref_cuda.add(x, x)  # must run after the producer, on s
    s.synchronize()
    assert float(out.sum().item()) == pytest.approx(40.0 * (1 << 22))


def test_scale_all_across_devices(cuda_plugin):
    n = vt.cuda.device_count()
    ts = [vt.full((1000,), float(i + 1), device=f"cuda:{i % n}") for i in range(max(2, n))]
    assert vt.ops.ref_cuda.scale_all_(ts, 3.0) is None
    for i, t in enumerate(ts):
        assert t.cpu().tolist() == [3.0 * (i + 1)] * 1000
    with pytest.raises(ValueError, match="contiguous float32 CUDA tensors"):
        vt.ops.ref_cuda.scale_all_([vt.ones(4, device="cuda"), vt.ones(4, device="cuda", dtype=vt.float64)], 2.0)
