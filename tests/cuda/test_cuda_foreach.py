"""The CUDA kernels of the foreach ops (core/src/ops/cuda/foreach.cu) and clip_grad_norm_ on the GPU, against
torch on the GPU: tests/autograd/test_foreach.py's checks (tests/foreach_cases.py) on the device - norms of
every order and dtype over odd sizes (chunk boundaries, a million elements), views misaligned for vector
loads, and 300 small tensors with a few large ones (two row tables, so four norm launches); _foreach_mul_
with CPU and device scales - then what only a GPU has: lists mixing CPU and GPU tensors, scales on the wrong
device, two runs of the partial-sums kernels giving the same bits, and clip_grad_norm_ captured in a CUDA graph
(a capture fails on any host sync, so this checks Note [Clipping without host syncs]).

GPU run: PYTHONPATH=python python -m pytest tests/cuda/test_cuda_foreach.py -q -p no:cacheprovider
Self-check without a GPU: VT_CUDA_TEST_DEVICE=cpu (vt CPU against torch CPU).
"""
import math

import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from cuda_helpers import CUDA_MARKS, DEV, ON_CUDA, needs_two_devices
from foreach_cases import (DTYPES, MORE_ORDS, ODD, ORDS, SCALE_KINDS, SMALL, assert_lists_equal, assert_norms_match,
                           check_clip, check_clip_nonfinite, check_deterministic, check_mixed_dtypes, check_mul,
                           check_mul_16bit_scalar, check_norm, check_total_norm_then_clip, grads_pair, make_lists,
                           many)

pytestmark = CUDA_MARKS


@pytest.mark.parametrize("p", ORDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_norm_odd_sizes_and_views(dtype, p, rng):
    check_norm(rng, ODD, dtype, p, DEV)


@pytest.mark.parametrize("p", MORE_ORDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_norm_more_orders(dtype, p, rng):
    check_norm(rng, SMALL, dtype, p, DEV)


@pytest.mark.parametrize("dtype", DTYPES)
def test_norm_many_tensors(dtype, rng):
    specs = many(rng)
    for p in ORDS:
        check_norm(rng, specs, dtype, p, DEV)


def test_norm_mixed_dtypes_and_dtype_argument(rng):
    check_mixed_dtypes(rng, DEV)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float64"])
def test_norm_deterministic(dtype, rng):
    check_deterministic(rng, DEV, dtype)


@pytest.mark.parametrize("kind", SCALE_KINDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_mul_matches_torch(dtype, kind, rng):
    check_mul(rng, SMALL + [((70000,), None), ((0, 3), None), ((200001,), "offset")], dtype, kind, DEV)


def test_mul_many_tensors(rng):
    check_mul(rng, many(rng), "float32", "device same dtype", DEV)


def test_mul_16bit_cpu_scalar():
    check_mul_16bit_scalar(DEV)


def test_mul_scale_in_the_list_is_read_before_writing():
    """The device scale is one of the tensors it scales: every block must still read its old value."""
    s, g, h = vt.tensor(3.0, device=DEV), vt.ones(300000, device=DEV), vt.full((5,), 2.0, device=DEV)
    vt._foreach_mul_([g, s, h], s)
    assert s.item() == 9.0 and (g.cpu().numpy() == 3.0).all() and h.tolist() == [6.0] * 5


@pytest.mark.parametrize("foreach", [None, True, False])
@pytest.mark.parametrize("dtypes", [("float32",), ("bfloat16",), ("float32", "float16", "float64")], ids="+".join)
@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf, 3.0])
def test_clip_grad_norm_matches_torch(norm_type, dtypes, foreach, rng):
    check_clip(rng, dtypes, norm_type, 0.5, foreach, DEV)


@pytest.mark.parametrize("foreach", [None, True, False])
def test_clip_grad_norm_nonfinite_and_halves(foreach, rng):
    check_clip_nonfinite(rng, foreach, DEV)
    check_total_norm_then_clip(rng, foreach, DEV)


@needs_two_devices
def test_lists_mixing_cpu_and_gpu(rng):
    """Each tensor's norm on its own device; the GPU kernel hands the CPU group to the CPU kernel."""
    vs, ts, _ = make_lists(rng, SMALL, "float32", DEV)
    vc, tc, _ = make_lists(rng, SMALL, "float32", "cpu")
    mixed_v = [x for pair in zip(vs, vc) for x in pair]
    mixed_t = [x for pair in zip(ts, tc) for x in pair]
    for p in (2.0, 1.0):
        assert_norms_match(vt._foreach_norm(mixed_v, p), torch._foreach_norm(mixed_t, p), mixed_t, p, "float32")
    vt._foreach_mul_(mixed_v, vt.tensor(0.37))  # a CPU scale serves every device
    torch._foreach_mul_(mixed_t, torch.tensor(0.37))
    assert_lists_equal(mixed_v, mixed_t)
    vps, tps = grads_pair(rng, ["float32"], DEV)
    vcp, tcp = grads_pair(rng, ["float32"], "cpu")
    tn = torch.nn.utils.clip_grad_norm_(tps + tcp, 0.5)
    vn = vt.nn.utils.clip_grad_norm_(vps + vcp, 0.5)
    assert vn.is_cuda
    np.testing.assert_allclose(vn.cpu().item(), tn.cpu().item(), rtol=1e-5)
    for v, t in zip(vps + vcp, tps + tcp):
        np.testing.assert_allclose(v.grad.cpu().numpy(), t.grad.cpu().numpy(), rtol=1e-5, atol=1e-7)


@needs_two_devices
def test_scale_on_another_device_is_refused():
    with pytest.raises(RuntimeError, match=r"self\[1\] is on cpu but other is on cuda"):
        vt._foreach_mul_([vt.ones(2, device=DEV), vt.ones(2)], vt.tensor(2.0, device=DEV))


@pytest.mark.skipif(not ON_CUDA, reason="CUDA graphs need a GPU")
def test_clip_grad_norm_captures_in_a_graph(rng):
    """A capture fails on any host sync, so a captured clip proves there is none; replays with new gradients
    match torch's clip of the same gradients."""
    vps, _ = grads_pair(rng, ["float32", "bfloat16"], DEV, transposed=False)
    grads = [p.grad for p in vps]
    side = vt.cuda.Stream()  # warm-up on a side stream, as torch recommends: one-time setup outside the capture
    side.wait_stream(vt.cuda.current_stream())
    with vt.cuda.stream(side):
        vt.nn.utils.clip_grad_norm_(vps, 1.0)
    vt.cuda.current_stream().wait_stream(side)
    vt.cuda.synchronize()
    g = vt.cuda.CUDAGraph()
    with vt.cuda.graph(g):
        total = vt.nn.utils.clip_grad_norm_(vps, 1.0)
    for _ in range(3):
        _, tps = grads_pair(rng, ["float32", "bfloat16"], DEV, transposed=False)
        for v, t in zip(grads, tps):
            v.copy_(vt.from_numpy(t.grad.cpu().float().numpy()).to(v.dtype))
        tn = torch.nn.utils.clip_grad_norm_(tps, 1.0)
        g.replay()
        vt.cuda.synchronize()
        np.testing.assert_allclose(total.cpu().float().item(), tn.cpu().float().item(), rtol=2 ** -7)
        for v, t in zip(grads, tps):
            np.testing.assert_allclose(v.cpu().float().numpy(), t.grad.cpu().float().numpy(), rtol=2 ** -6, atol=1e-6)
