"""vt.cpu.amp.autocast: torch.cpu.amp.autocast's deprecated spelling of vt.autocast("cpu", ...), warning as
torch does."""
import warnings

from .. import amp as _amp
from .. import bfloat16 as _bfloat16


class autocast(_amp.autocast):
    """torch.cpu.amp.autocast(enabled=True, dtype=torch.bfloat16, cache_enabled=True)."""

    def __init__(self, enabled=True, dtype=_bfloat16, cache_enabled=True):
        warnings.warn("`torch.cpu.amp.autocast(args...)` is deprecated. Please use `torch.amp.autocast('cpu', "
                      "args...)` instead.", FutureWarning, stacklevel=2)
        super().__init__("cpu", dtype=dtype, enabled=enabled, cache_enabled=cache_enabled)
