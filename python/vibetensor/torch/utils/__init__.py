"""vt.utils: data loading (vt.utils.data) and activation checkpointing (vt.utils.checkpoint), as torch.utils."""
from . import checkpoint  # noqa: F401
from . import data  # noqa: F401
