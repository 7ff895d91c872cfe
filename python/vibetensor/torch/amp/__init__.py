"""vt.amp, torch.amp's shape: autocast regions (autocast_mode.py, with the policies of the Python composites in
_composites.py), GradScaler (grad_scaler.py), and custom_fwd / custom_bwd for autograd Functions."""
from . import _composites
from .autocast_mode import (autocast, get_autocast_dtype, is_autocast_available, is_autocast_enabled,  # noqa: F401
                            set_autocast_dtype, set_autocast_enabled)
from .custom_fns import custom_bwd, custom_fwd  # noqa: F401
from .grad_scaler import GradScaler  # noqa: F401

_composites.install()
