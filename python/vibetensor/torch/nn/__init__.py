"""vt.nn: Module, the standard layers and the functional ops, torch-shaped."""
from . import functional  # noqa: F401
from .layers import (  # noqa: F401
    GELU,
    Dropout,
    Embedding,
    Identity,
    LayerNorm,
    Linear,
    ModuleList,
    ReLU,
    RMSNorm,
    Sequential,
    SiLU,
    Tanh,
)
from .module import Module  # noqa: F401
from .parameter import Parameter  # noqa: F401
