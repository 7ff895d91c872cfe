"""vt.backends, torch.backends-shaped: `vt.backends.cuda.matmul.allow_tf32` (float32 matrix products on TF32
tensor cores, off by default as in torch) and the matching vt.set_float32_matmul_precision /
get_float32_matmul_precision ("highest" = full float32, "high"/"medium" = TF32 allowed)."""
from .._C import cuda as _cuda

_PRECISIONS = ("highest", "high", "medium")


class _MatmulBackend:
    @property
    def allow_tf32(self) -> bool:
        return bool(_cuda._allow_tf32())

    @allow_tf32.setter
    def allow_tf32(self, on: bool) -> None:
        _cuda._set_allow_tf32(bool(on))


class _CudaBackend:
    matmul = _MatmulBackend()


cuda = _CudaBackend()


def set_float32_matmul_precision(precision: str) -> None:
    if precision not in _PRECISIONS:
        raise RuntimeError(f"Invalid float32 matmul precision {precision!r}; expected one of {', '.join(_PRECISIONS)}")
    cuda.matmul.allow_tf32 = precision != "highest"


def get_float32_matmul_precision() -> str:
    return "high" if cuda.matmul.allow_tf32 else "highest"


from ._backends_cudnn import cudnn  # noqa: E402,F401
