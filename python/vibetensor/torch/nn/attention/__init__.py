"""vt.nn.attention, torch.nn.attention's shape: SDPBackend and the sdpa_kernel context manager, which enables
only the listed scaled_dot_product_attention backends for a block (see vibetensor/torch/_sdp_backends.py for
what the backends mean here)."""
import enum

from ..._sdp_backends import _only


class SDPBackend(enum.Enum):
    ERROR = -1
    MATH = 0
    FLASH_ATTENTION = 1
    EFFICIENT_ATTENTION = 2
    CUDNN_ATTENTION = 3
    OVERRIDEABLE = 4


_NAMES = {SDPBackend.MATH: "math", SDPBackend.FLASH_ATTENTION: "flash", SDPBackend.EFFICIENT_ATTENTION:
          "mem_efficient", SDPBackend.CUDNN_ATTENTION: "cudnn"}


def sdpa_kernel(backends, set_priority=False):
    """Only `backends` (one SDPBackend or a list) may run scaled_dot_product_attention inside the block.
    set_priority orders torch's choice among them; vibetensor has one implementation, so there is no order."""
    backends = [backends] if isinstance(backends, SDPBackend) else list(backends)
    for b in backends:
        if not isinstance(b, SDPBackend):
            raise AssertionError("Backend must be an instance of SDPBackend")
    return _only({name: b in backends for b, name in _NAMES.items()})

from . import bias, flex_attention  # noqa: F401,E402
