"""vt.utils: data loading (vt.utils.data), as torch.utils."""
from . import data  # noqa: F401
