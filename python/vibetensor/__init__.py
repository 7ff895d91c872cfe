"""vibetensor: a PyTorch-style eager tensor runtime and a single-process multi-GPU research toolkit.

`import vibetensor.torch as vt` gives the torch-shaped API; `vibetensor.cuda` reports CUDA devices (and says
plainly when there are none).
"""
from . import _C  # noqa: F401  (the compiled core; importing it registers every op)
from . import cuda  # noqa: F401

__version__ = "0.1.0"
