"""File formats for vibetensor tensors. Safetensors today, with the `safetensors` package's names:
`load_file`, `save_file`, `load`, `save`, `safe_open` and `SafetensorError`."""
from .safetensors import SafetensorError, load, load_file, safe_open, save, save_file

__all__ = ["SafetensorError", "load", "load_file", "safe_open", "save", "save_file"]
