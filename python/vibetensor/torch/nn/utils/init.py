"""torch.nn.utils.init's name (the implementation lives in fusion.py)."""
from .fusion import skip_init  # noqa: F401
