"""torch's state_dict hooks on vt.nn.Module, attached at import (by module_more.py): register_state_dict_pre_hook,
register_state_dict_post_hook (and the private _register_state_dict_hook, whose hook may return a new dict),
register_load_state_dict_pre_hook (and _register_load_state_dict_pre_hook, with_module=False by default) and
register_load_state_dict_post_hook. Each returns a RemovableHandle; Module.state_dict, _load_from_state_dict and
load_state_dict (module.py) run them where torch's do, with torch's arguments:
  state_dict pre-hook(module, prefix, keep_vars); post-hook(module, state_dict, prefix, local_metadata);
  load pre-hook(module, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs)
    (without the module for _register_load_state_dict_pre_hook(hook)), which may edit state_dict;
  load post-hook(module, incompatible_keys), which may edit its lists in place and returns None."""
import functools

from .module import Module
from .module_more import _table


def _with_module(hook, module):
    @functools.wraps(hook)
    def call(*args):
        return hook(module, *args)
    return call


def register_state_dict_pre_hook(self, hook):
    return self._add_hook(_table(self, "_state_dict_pre_hooks"), hook, False)


def _register_state_dict_hook(self, hook):
    if getattr(hook, "_from_public_api", False):
        raise RuntimeError("Cannot register the same function as the state dict post hook that was previously "
                           "registered via register_state_dict_post_hook")
    return self._add_hook(_table(self, "_state_dict_hooks"), hook, False)


def register_state_dict_post_hook(self, hook):
    hook._from_public_api = True  # (as torch marks it: its result must be None)
    return self._add_hook(_table(self, "_state_dict_hooks"), hook, False)


def _register_load_state_dict_pre_hook(self, hook, with_module=False):
    entry = _with_module(hook, self) if with_module else hook
    return self._add_hook(_table(self, "_load_state_dict_pre_hooks"), entry, False)


def register_load_state_dict_pre_hook(self, hook):
    return _register_load_state_dict_pre_hook(self, hook, with_module=True)


def register_load_state_dict_post_hook(self, hook):
    return self._add_hook(_table(self, "_load_state_dict_post_hooks"), hook, False)


for _fn in (register_state_dict_pre_hook, _register_state_dict_hook, register_state_dict_post_hook,
            _register_load_state_dict_pre_hook, register_load_state_dict_pre_hook,
            register_load_state_dict_post_hook):
    setattr(Module, _fn.__name__, _fn)
del _fn
