"""CUDA device discovery. Works on machines without a driver: is_available() is then False and
unavailable_reason() says why."""
from .._C import cuda as _cuda


def is_available() -> bool:
    return _cuda.is_available()


def device_count() -> int:
    return _cuda.device_count()


def unavailable_reason() -> str:
    """Why no CUDA device can be used ("" when one can)."""
    return _cuda.unavailable_reason()
