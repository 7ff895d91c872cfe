"""Optimizer: parameter groups with per-group hyperparameters and per-parameter state, as torch's.

A group is a dict holding "params" (a list of leaf tensors) and every hyperparameter; options a group leaves out
come from the constructor's defaults, so model code can give weight decay to matrices only. State lives in
`self.state`, a mapping from a parameter to its dict (exp_avg, step, ...).

Note [Optimizer state_dict]
state_dict() is torch's layout: {"state": {i: {...}}, "param_groups": [{..., "params": [i, ...]}]}, where i
numbers the parameters in group order, so a state saved from torch loads here and the other way round. Loading
maps the numbers back onto this optimizer's parameters (groups and their sizes must match), copies each state
tensor onto its parameter's device (and, for floating state other than "step", its dtype), and turns torch's
tensor "step" into the int this implementation keeps.

Hooks (step, state_dict and load_state_dict pre/post, and the global step hooks) are torch's: see _hooks.py.
"""
import warnings
from collections.abc import Mapping

from .._functions import Tensor
from ._hooks import (  # noqa: F401  (torch.optim.optimizer's names)
    OptimizerHooks, register_optimizer_step_post_hook, register_optimizer_step_pre_hook,
)


def _key(p):
    return p if isinstance(p, int) else id(p)


class _ParamState(dict):
    """optimizer.state: a dict keyed by parameter identity (tensors compare elementwise, so they are not used as
    dict keys directly); a parameter or its id() indexes it. Indexing with a parameter that has no state yet
    gives an empty dict, as torch's defaultdict(dict)."""

    def __init__(self):
        super().__init__()
        self._params = {}

    def __getitem__(self, p):
        key = _key(p)
        if not super().__contains__(key):
            if isinstance(p, int):
                raise KeyError(p)
            self._params[key] = p
            super().__setitem__(key, {})
        return super().__getitem__(key)

    def __setitem__(self, p, value):
        self._params[id(p)] = p
        super().__setitem__(id(p), value)

    def __contains__(self, p):
        return super().__contains__(_key(p))

    def __iter__(self):
        return (self._params[k] for k in super().__iter__())

    def keys(self):
        return list(iter(self))

    def items(self):
        return [(self._params[k], v) for k, v in super().items()]

    def get(self, p, default=None):
        return super().get(_key(p), default)


class Optimizer(OptimizerHooks):
    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self.state = _ParamState()
        self.param_groups = []
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of Tensors or dicts, but "
                            f"got {params.dtype} tensor")
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for g in groups:
            self.add_param_group(g)

    def add_param_group(self, param_group):
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        group = dict(param_group)
        params = group["params"]
        group["params"] = [params] if isinstance(params, Tensor) else list(params)
        for p in group["params"]:
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, but one of the params is {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor")
        for k, v in self.defaults.items():
            if v is _required and k not in group:
                raise ValueError(f"parameter group didn't specify a value of required optimization parameter {k}")
            group.setdefault(k, v)
        if len({id(p) for p in group["params"]}) < len(group["params"]):  # torch only warns (its issue 40967)
            warnings.warn("optimizer contains a parameter group with duplicate parameters; in future, this will "
                          "cause an error; see github.com/pytorch/pytorch/issues/40967 for more information",
                          stacklevel=3)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in group["params"]):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    def zero_grad(self, set_to_none=True):
        for g in self.param_groups:
            for p in g["params"]:
                if p.grad is not None:
                    if set_to_none:
                        p.grad = None
                    else:
                        p.grad.detach().zero_()

    def _state(self, p):
        return self.state[p]

    def _run_closure(self, closure):
        if closure is None:
            return None
        from ...autograd import enable_grad

        with enable_grad():
            return closure()

    # ---- Note [Optimizer state_dict] ----
    def state_dict(self):
        return self._run_state_dict_hooks(self._build_state_dict)

    def _build_state_dict(self):
        index, groups = {}, []
        for g in self.param_groups:
            packed = {k: v for k, v in g.items() if k != "params"}
            packed["params"] = []
            for p in g["params"]:
                index.setdefault(id(p), len(index))
                packed["params"].append(index[id(p)])
            groups.append(packed)
        state = {index[id(p)]: dict(s) for p, s in self.state.items() if id(p) in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        self._run_load_state_dict_hooks(state_dict, self._load_state_dict)

    def _load_state_dict(self, state_dict):
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        for g, s in zip(self.param_groups, saved_groups):
            if len(g["params"]) != len(s["params"]):
                raise ValueError("loaded state dict contains a parameter group that doesn't match the size of "
                                 "optimizer's group")
        by_index = {}
        for g, s in zip(self.param_groups, saved_groups):
            by_index.update(zip(s["params"], g["params"]))
        self.state = _ParamState()
        for i, st in state_dict["state"].items():
            if i in by_index:
                p = by_index[i]
                self.state[p] = {k: _state_value(p, k, v) for k, v in st.items()}
        for g, s in zip(self.param_groups, saved_groups):
            g.update({k: v for k, v in s.items() if k != "params"})

    def __repr__(self):
        lines = [type(self).__name__ + " ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {g[k]}" for k in sorted(g) if k != "params"]
        return "\n".join(lines) + "\n)"


def _state_value(p, key, value):
    """A loaded state entry on its parameter's device (Note [Optimizer state_dict])."""
    if key == "step":
        return int(value.item()) if hasattr(value, "item") else int(value)
    if not hasattr(value, "shape"):
        return value
    if not isinstance(value, Tensor):  # a torch tensor or an array: copied through NumPy
        import numpy as np

        from .._functions import from_numpy

        host = value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)
        value = from_numpy(np.array(host, copy=True))
    out = value.to(p.device)
    if out.dtype.is_floating_point and p.dtype.is_floating_point:
        out = out.to(p.dtype)
    return out.clone() if out is value else out


class _RequiredParameter:
    def __repr__(self):
        return "<required parameter>"


_required = _RequiredParameter()
