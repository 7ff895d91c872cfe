"""torch.nn.utils.memory_format's names (the implementations live in fusion.py)."""
from .fusion import convert_conv2d_weight_memory_format, convert_conv3d_weight_memory_format  # noqa: F401
