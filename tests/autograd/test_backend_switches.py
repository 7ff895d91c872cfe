"""The small torch switches training scripts set or query: scaled_dot_product_attention's backends
(torch.backends.cuda.enable_*_sdp / *_sdp_enabled / sdp_kernel, torch.nn.attention.sdpa_kernel: the defaults and
names as torch's, restored after a block, "No available kernel" with none enabled), matmul's reduced-precision
flags, torch.backends.mps, and torch.cuda.manual_seed / manual_seed_all / is_bf16_supported /
get_device_capability."""
import pytest
import torch
import vibetensor.torch as vt
from vibetensor.torch.nn.attention import SDPBackend, sdpa_kernel

NAMES = ("flash", "mem_efficient", "math", "cudnn")


def flags(m):
    return {n: getattr(m.backends.cuda, f"{n}_sdp_enabled")() for n in NAMES}


def test_defaults_and_names_like_torch():
    assert flags(vt) == flags(torch)
    torch_backends = torch.nn.attention.SDPBackend.__members__  # (a pybind enum: not iterable itself)
    assert {b.name: b.value for b in SDPBackend} == {n: int(b) for n, b in torch_backends.items()}
    m = vt.backends.cuda.matmul
    assert (m.allow_bf16_reduced_precision_reduction, m.allow_fp16_reduced_precision_reduction) == (
        torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction,
        torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction)
    assert vt.backends.mps.is_available() == torch.backends.mps.is_available() is False
    assert vt.backends.mps.is_built() is False


def test_switches_blocks_and_the_no_kernel_error():
    q = vt.randn(1, 2, 4, 8)
    sdpa = vt.nn.functional.scaled_dot_product_attention
    expected = sdpa(q, q, q)
    try:
        vt.backends.cuda.enable_flash_sdp(False)
        assert flags(vt)["flash"] is False and flags(vt)["math"] is True
        with sdpa_kernel([SDPBackend.MATH]):
            assert flags(vt) == {"flash": False, "mem_efficient": False, "math": True, "cudnn": False}
            # the math backend composes products and a softmax; the tiled forward agrees to rounding
            assert vt.allclose(sdpa(q, q, q), expected, rtol=1e-5, atol=1e-6)
        with sdpa_kernel([]):
            with pytest.raises(RuntimeError, match="No available kernel"):
                sdpa(q, q, q)
        with pytest.warns(FutureWarning, match=r"sdp_kernel\(\)` is deprecated"):
            with vt.backends.cuda.sdp_kernel(enable_math=False, enable_flash=False, enable_mem_efficient=False,
                                             enable_cudnn=False):
                with pytest.raises(RuntimeError, match="No available kernel"):
                    sdpa(q, q, q)
        assert flags(vt)["flash"] is False and flags(vt)["math"] is True  # each block put the switches back
    finally:
        vt.backends.cuda.enable_flash_sdp(True)
    with pytest.raises(AssertionError, match="SDPBackend"):
        sdpa_kernel(["math"])


def test_cuda_seed_and_capability_queries():
    vt.cuda.manual_seed(7)
    a = vt.rand(4)
    vt.cuda.manual_seed_all(7)
    assert vt.equal(vt.rand(4), a)  # one generator for every device
    if vt.cuda.is_available():
        major, minor = vt.cuda.get_device_capability()
        assert (major, minor) == (vt.cuda.get_device_properties().major, vt.cuda.get_device_properties().minor)
        assert vt.cuda.is_bf16_supported() and vt.cuda.is_bf16_supported(including_emulation=False) == (major >= 8)
    else:
        assert vt.cuda.is_bf16_supported() is False
