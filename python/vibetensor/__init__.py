"""vibetensor: a PyTorch-style eager tensor runtime and a single-process multi-GPU research toolkit.

`import vibetensor.torch as vt` gives the torch-shaped API; `vibetensor.cuda` reports CUDA devices (and says
plainly when there are none).
"""
import os as _os
import sys as _sys

from . import _C  # noqa: F401  (the compiled core; importing it registers every op)
from . import cuda  # noqa: F401

# cuBLAS is loaded on first use (vt/cuda/cublas.h); also look where PyTorch's CUDA wheels install it.
_C.cuda._add_cublas_dirs([_os.path.join(p, "nvidia", sub, "lib") for p in _sys.path if p
                          for sub in ("cu13", "cublas", "cu12")])

__version__ = "0.1.0"


def get_include() -> str:
    """The directory to add to a native plugin's include path: `#include "vt/abi/vt_plugin.h"` finds the plugin
    ABI header there (also printed by `python -m vibetensor.abi --include`)."""
    from .abi import include_dir

    return include_dir()
