"""torch.autograd.graph's saved-tensor hooks (Note [Saved tensor hooks] in core/include/vt/autograd/node.h):
  - saved_tensors_hooks(pack_hook, unpack_hook): inside the block, every tensor autograd saves for the backward
    (built-in ops' and custom Functions' alike) goes through pack_hook, and only its result is kept; the backward
    gets the tensor back from unpack_hook(result). Activation offloading and recomputation are written on it;
  - save_on_cpu(pin_memory=False, device_type="cuda"): the hooks that keep saved tensors on the host and bring them
    back to their device in the backward;
  - disable_saved_tensors_hooks(error_message): a block in which installing hooks raises error_message.
Hooks are per thread and nest (the innermost applies); a pack hook's own ops save nothing through it."""
from __future__ import annotations

import contextlib
import threading

from .._C import autograd as _ag

_state = threading.local()


class saved_tensors_hooks:
    def __init__(self, pack_hook, unpack_hook):
        self.pack_hook = pack_hook
        self.unpack_hook = unpack_hook

    def __enter__(self):
        message = getattr(_state, "disabled", None)
        if message is not None:
            raise RuntimeError(message)
        _ag._push_saved_tensors_hooks(self.pack_hook, self.unpack_hook)

    def __exit__(self, *args):
        _ag._pop_saved_tensors_hooks()


class save_on_cpu(saved_tensors_hooks):
    def __init__(self, pin_memory=False, device_type="cuda"):
        import vibetensor.torch as vt

        device_module = getattr(vt, device_type, vt.cuda)

        def pack_to_cpu(tensor):
            if not pin_memory:
                return (tensor.device, tensor.cpu())
            is_pinnable = device_module.is_available()
            packed = vt.empty(tuple(tensor.shape), dtype=tensor.dtype, pin_memory=is_pinnable)
            packed.copy_(tensor, non_blocking=is_pinnable)
            return (tensor.device, packed)

        def unpack_from_cpu(packed):
            device, tensor = packed
            return tensor.to(device, non_blocking=pin_memory)

        super().__init__(pack_to_cpu, unpack_from_cpu)


@contextlib.contextmanager
def disable_saved_tensors_hooks(error_message):
    previous = getattr(_state, "disabled", None)
    _state.disabled = error_message
    try:
        yield
    finally:
        _state.disabled = previous
