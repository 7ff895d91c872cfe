"""The compiled Tensor class, for isinstance checks inside vt.nn."""
from ..._C.core import Tensor  # noqa: F401
