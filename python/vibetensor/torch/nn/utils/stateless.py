"""torch.nn.utils.stateless: functional_call (see vibetensor.torch.func, where it lives)."""
from ...func import functional_call

__all__ = ["functional_call"]
