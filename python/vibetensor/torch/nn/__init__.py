"""vt.nn: modules arrive with autograd; functional activations are available now."""
from . import functional  # noqa: F401
