"""Optimizer hooks as torch's: step pre/post hooks (per optimizer and global), state_dict pre/post hooks and
load_state_dict pre/post hooks, each registered through a RemovableHandle.

Every `step` an Optimizer subclass defines is wrapped (in __init_subclass__) so that it runs, in torch's order:
the global pre hooks, then the optimizer's own pre hooks, each as hook(optimizer, args, kwargs) where args
starts with the optimizer itself and a non-None result replaces (args, kwargs); the step; then the optimizer's
post hooks and last the global ones. A subclass's step that calls super().step() runs the hooks once: the inner
call sees the optimizer already inside its hooked step and goes straight to the function.
"""
import functools
from collections import OrderedDict
from itertools import chain

from ..nn.module import RemovableHandle

_global_optimizer_pre_hooks = OrderedDict()
_global_optimizer_post_hooks = OrderedDict()

_TABLES = ("_optimizer_step_pre_hooks", "_optimizer_step_post_hooks", "_optimizer_state_dict_pre_hooks",
           "_optimizer_state_dict_post_hooks", "_optimizer_load_state_dict_pre_hooks",
           "_optimizer_load_state_dict_post_hooks")


def register_optimizer_step_pre_hook(hook):
    """hook(optimizer, args, kwargs) -> None or (new_args, new_kwargs), run before every optimizer's step."""
    return _add(_global_optimizer_pre_hooks, hook, False)


def register_optimizer_step_post_hook(hook):
    """hook(optimizer, args, kwargs) -> None, run after every optimizer's step."""
    return _add(_global_optimizer_post_hooks, hook, False)


def _add(table, hook, prepend):
    handle = RemovableHandle(table)
    table[handle.id] = hook
    if prepend:
        table.move_to_end(handle.id, last=False)
    return handle


def _hooked_step(func):
    @functools.wraps(func)
    def step(*args, **kwargs):
        self = args[0]
        if self.__dict__.get("_in_hooked_step"):  # super().step() from a subclass's hooked step
            return func(*args, **kwargs)
        for hook in chain(_global_optimizer_pre_hooks.values(), self._hook_table("_optimizer_step_pre_hooks").values()):
            result = hook(self, args, kwargs)
            if result is not None:
                if not (isinstance(result, tuple) and len(result) == 2):
                    raise RuntimeError(f"{func} must return None or a tuple of (new_args, new_kwargs), but got "
                                       f"{result}.")
                args, kwargs = result
        self.__dict__["_in_hooked_step"] = True
        try:
            out = func(*args, **kwargs)
        finally:
            self.__dict__["_in_hooked_step"] = False
        for hook in chain(self._hook_table("_optimizer_step_post_hooks").values(),
                          _global_optimizer_post_hooks.values()):
            hook(self, args, kwargs)
        return out

    step._vt_hooked = True
    return step


class OptimizerHooks:
    """The hook half of Optimizer (mixed into it): registration, and the state_dict / load_state_dict hooks that
    Optimizer.state_dict and load_state_dict call around their work."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        step = cls.__dict__.get("step")
        if callable(step) and not getattr(step, "_vt_hooked", False):
            cls.step = _hooked_step(step)

    def _hook_table(self, name):
        # created on first use, so a subclass that skips Optimizer.__init__ (or an unpickled one) still has them
        table = self.__dict__.get(name)
        if table is None:
            table = self.__dict__[name] = OrderedDict()
        return table

    def register_step_pre_hook(self, hook):
        """hook(optimizer, args, kwargs) -> None or (new_args, new_kwargs), run before this optimizer's step."""
        return _add(self._hook_table("_optimizer_step_pre_hooks"), hook, False)

    def register_step_post_hook(self, hook):
        """hook(optimizer, args, kwargs) -> None, run after this optimizer's step."""
        return _add(self._hook_table("_optimizer_step_post_hooks"), hook, False)

    def register_state_dict_pre_hook(self, hook, prepend=False):
        """hook(optimizer) -> None, run before state_dict() builds its dict."""
        return _add(self._hook_table("_optimizer_state_dict_pre_hooks"), hook, prepend)

    def register_state_dict_post_hook(self, hook, prepend=False):
        """hook(optimizer, state_dict) -> None or a dict that state_dict() returns instead."""
        return _add(self._hook_table("_optimizer_state_dict_post_hooks"), hook, prepend)

    def register_load_state_dict_pre_hook(self, hook, prepend=False):
        """hook(optimizer, state_dict) -> None or a dict that is loaded instead (state_dict is a shallow copy of
        the caller's)."""
        return _add(self._hook_table("_optimizer_load_state_dict_pre_hooks"), hook, prepend)

    def register_load_state_dict_post_hook(self, hook, prepend=False):
        """hook(optimizer) -> None, run after load_state_dict() has loaded."""
        return _add(self._hook_table("_optimizer_load_state_dict_post_hooks"), hook, prepend)

    def _run_state_dict_hooks(self, build):
        for hook in self._hook_table("_optimizer_state_dict_pre_hooks").values():
            hook(self)
        state_dict = build()
        for hook in self._hook_table("_optimizer_state_dict_post_hooks").values():
            result = hook(self, state_dict)
            if result is not None:
                state_dict = result
        return state_dict

    def _run_load_state_dict_hooks(self, state_dict, load):
        state_dict = state_dict.copy()
        for hook in self._hook_table("_optimizer_load_state_dict_pre_hooks").values():
            result = hook(self, state_dict)
            if result is not None:
                state_dict = result
        load(state_dict)
        for hook in self._hook_table("_optimizer_load_state_dict_post_hooks").values():
            hook(self)
