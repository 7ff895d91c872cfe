"""The attention backend switches of torch.backends.cuda (enable_flash_sdp, sdp_kernel, ...) and
torch.nn.attention.sdpa_kernel. torch picks among fused attention kernels with them; vibetensor has flash
kernels (no mask or dropout: CUDA 16-bit, see cuda_flash_enabled; the CPU's tiled forward for
inference), which run while torch's flash or memory-efficient backend is enabled,
and a composed path (its products and a fused scale + mask + softmax), which computes what every backend computes
and serves every other case. Like torch it refuses to run when no backend is enabled ("No available kernel"). The switches are per
process, as torch's."""
import contextlib
import os
import warnings

_ENABLED = {"flash": True, "mem_efficient": True, "math": True, "cudnn": True}


def any_enabled():
    return any(_ENABLED.values())


def check_enabled():
    if not any_enabled():
        raise RuntimeError("No available kernel. Aborting execution. (every scaled_dot_product_attention backend "
                           "is disabled: torch.backends.cuda.enable_*_sdp / sdpa_kernel)")


def fused_enabled():
    """Whether a fused attention kernel may run: torch's flash or memory-efficient backend is enabled; with only
    the math backend enabled, attention is composed of its products and softmax, as torch's math backend."""
    return _ENABLED["flash"] or _ENABLED["mem_efficient"]


def cuda_flash_enabled():
    """Note [Flash kernels by default]: the CUDA flash kernels (16-bit with head dims up to 128, float32 up to
    64) pass tests/autograd/test_flash_attention.py, tests/cuda/test_kernel_families.py and compute-sanitizer's
    memcheck and racecheck, and benchmarks/attention.py on an H100 (causal) timed them against the composed path:
    bfloat16 at MiniGPT's [64, 4, 128, 64] forward + backward 0.121 ms vs 0.257 ms (torch 0.150), [8, 8, 1024, 64]
    0.486 vs 2.287 ms (torch 0.185: at long contexts torch's kernels are still 2.6x faster); float32 0.201 vs
    0.216 ms and 1.444 vs 2.217 ms (torch 1.317), and in the MiniGPT training step they take the step's GPU time
    from 8.36 to 8.35 ms with 54 fewer kernels (the composed path's GEMMs are cuBLAS's; the float32 backward
    kernel is 1.46x torch's). They win or tie at every measured shape, so scaled_dot_product_attention takes them
    wherever they apply; VT_FLASH_ATTENTION=0 turns them off (the composed path then serves every dtype). The
    CPU's tiled forward has no switch."""
    return os.environ.get("VT_FLASH_ATTENTION") != "0"


def _switch(name):
    def enable(enabled: bool):
        _ENABLED[name] = bool(enabled)

    def enabled():
        return _ENABLED[name]
    enable.__name__, enabled.__name__ = f"enable_{name}_sdp", f"{name}_sdp_enabled"
    return enable, enabled


enable_flash_sdp, flash_sdp_enabled = _switch("flash")
enable_mem_efficient_sdp, mem_efficient_sdp_enabled = _switch("mem_efficient")
enable_math_sdp, math_sdp_enabled = _switch("math")
enable_cudnn_sdp, cudnn_sdp_enabled = _switch("cudnn")


@contextlib.contextmanager
def _only(enabled):
    saved = dict(_ENABLED)
    _ENABLED.update(enabled)
    try:
        yield
    finally:
        _ENABLED.update(saved)


def sdp_kernel(enable_flash=True, enable_math=True, enable_mem_efficient=True, enable_cudnn=True):
    """torch.backends.cuda.sdp_kernel (deprecated in torch for torch.nn.attention.sdpa_kernel)."""
    warnings.warn("`torch.backends.cuda.sdp_kernel()` is deprecated. In the future, this context manager will be "
                  "removed. Please see `torch.nn.attention.sdpa_kernel()` for the new context manager, with updated "
                  "signature.", FutureWarning, stacklevel=2)
    return _only({"flash": bool(enable_flash), "math": bool(enable_math),
                  "mem_efficient": bool(enable_mem_efficient), "cudnn": bool(enable_cudnn)})
