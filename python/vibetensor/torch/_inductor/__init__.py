"""torch._inductor for code that configures it: only `config` (vibetensor compiles nothing)."""
from . import config

__all__ = ["config"]
