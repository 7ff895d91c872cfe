"""vt.backends, torch.backends-shaped: `vt.backends.cuda.matmul.allow_tf32` (float32 matrix products on TF32
tensor cores, off by default as in torch) and the matching vt.set_float32_matmul_precision /
get_float32_matmul_precision ("highest" = full float32, "high"/"medium" = TF32 allowed)."""
from .._C import cuda as _cuda
from . import _sdp_backends as _sdp

_PRECISIONS = ("highest", "high", "medium")


class _MatmulBackend:
    @property
    def allow_tf32(self) -> bool:
        return bool(_cuda._allow_tf32())

    @allow_tf32.setter
    def allow_tf32(self, on: bool) -> None:
        _cuda._set_allow_tf32(bool(on))


    # cuBLAS may reduce 16-bit products' split-K partial sums in 16 bits when these allow it (torch's defaults:
    # True); vibetensor's GEMMs always reduce in float32, which either setting permits, so they are plain flags.
    allow_bf16_reduced_precision_reduction = True
    allow_fp16_reduced_precision_reduction = True


class _CudaBackend:
    matmul = _MatmulBackend()
    # scaled_dot_product_attention's backend switches (vibetensor/torch/_sdp_backends.py)
    enable_flash_sdp, flash_sdp_enabled = staticmethod(_sdp.enable_flash_sdp), staticmethod(_sdp.flash_sdp_enabled)
    enable_mem_efficient_sdp = staticmethod(_sdp.enable_mem_efficient_sdp)
    mem_efficient_sdp_enabled = staticmethod(_sdp.mem_efficient_sdp_enabled)
    enable_math_sdp, math_sdp_enabled = staticmethod(_sdp.enable_math_sdp), staticmethod(_sdp.math_sdp_enabled)
    enable_cudnn_sdp, cudnn_sdp_enabled = staticmethod(_sdp.enable_cudnn_sdp), staticmethod(_sdp.cudnn_sdp_enabled)
    sdp_kernel = staticmethod(_sdp.sdp_kernel)


class _MpsBackend:
    """torch.backends.mps: vibetensor has no Apple GPU backend."""

    @staticmethod
    def is_available():
        return False

    @staticmethod
    def is_built():
        return False


class _MhaBackend:
    """torch.backends.mha: the switch of torch's inference fast path for the Transformer encoder. vibetensor has
    no separate kernels for it; what the switch changes here is what torch's fast path changes that can be seen:
    nn.TransformerEncoder's outputs at padded positions come back zero (see TransformerEncoder.forward)."""

    _fastpath = True

    @staticmethod
    def get_fastpath_enabled() -> bool:
        return _MhaBackend._fastpath

    @staticmethod
    def set_fastpath_enabled(value: bool) -> None:
        _MhaBackend._fastpath = bool(value)


cuda = _CudaBackend()
mps = _MpsBackend()
mha = _MhaBackend()


def set_float32_matmul_precision(precision: str) -> None:
    if precision not in _PRECISIONS:
        raise RuntimeError(f"Invalid float32 matmul precision {precision!r}; expected one of {', '.join(_PRECISIONS)}")
    cuda.matmul.allow_tf32 = precision != "highest"


def get_float32_matmul_precision() -> str:
    return "high" if cuda.matmul.allow_tf32 else "highest"


from ._backends_cudnn import cudnn  # noqa: E402,F401
from ._backends_opt_einsum import opt_einsum  # noqa: E402,F401
