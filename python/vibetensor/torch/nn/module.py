"""Module: the container of parameters, buffers and submodules, torch-shaped.

The model is torch's: each Module keeps three ordered tables (_parameters, _buffers, _modules) filled by attribute
assignment or the register_* calls, and every walk (named_modules, named_parameters, state_dict, apply, train,
to) visits them in registration order, so names ("h.0.attn.weight"), orders and state_dict keys are torch's.

Note [Shared parameters and modules]
named_modules/named_parameters/named_buffers yield a module or tensor once even when it is reachable under two
names (weight tying: lm_head.weight is wte.weight), as torch's remove_duplicate=True; state_dict lists it under
every name, as torch's does, and load_state_dict writes it once per name (the same values).

Note [Module.to keeps the parameters]
Module.to / float / double / cuda move or cast a parameter in place, as torch's `param.data = fn(param)`: the same
Parameter object (what optimizers hold, and attributes code sets on it, such as Mamba's `_no_weight_decay`), its
.grad moved or cast with it. Buffers are replaced by new tensors, as in torch.

state_dict and load_state_dict walk the modules as torch's do, through each module's _save_to_state_dict and
_load_from_state_dict (torch's signatures), so that modules can override them (a frozen BatchNorm dropping
num_batches_tracked, keys renamed for old checkpoints).
"""
from collections import OrderedDict, namedtuple
import itertools

from ..._C.core import dtype as _dtype
from ._tensor_api import Tensor
from .parameter import Buffer, Parameter, UninitializedTensorMixin


class _IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    """What load_state_dict returns; printed as torch prints it (`print(model.load_state_dict(sd))` in scripts)."""
    __slots__ = ()

    def __repr__(self):
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()

    __str__ = __repr__


_hook_ids = itertools.count()
_EXTRA_STATE = "_extra_state"


class RemovableHandle:
    """What register_*_hook returns: remove() takes the hook out of its table."""

    def __init__(self, table):
        self._table, self.id = table, next(_hook_ids)

    def remove(self):
        self._table.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def _check_name(kind, module, name, table):
    if not isinstance(name, str):
        raise TypeError(f"{kind} name should be a string. Got {type(name).__name__}")
    if "." in name:
        raise KeyError(f'{kind} name can\'t contain "."')
    if name == "":
        raise KeyError(f'{kind} name can\'t be empty string ""')
    if hasattr(module, name) and name not in table:
        raise KeyError(f"attribute '{name}' already exists")


def _join(prefix, name):
    return f"{prefix}.{name}" if prefix else name


class Module:
    _version = 1  # the state_dict metadata's version (BatchNorm's is 2), read by _load_from_state_dict overrides

    def __init__(self):
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent_buffers_set", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())

    # ---- registration ----
    def __setattr__(self, name, value):
        params = self.__dict__.get("_parameters")
        if params is None:  # before __init__ (or a __new__ copy filling its __dict__): plain attributes only
            for kind, what in ((Parameter, "parameters"), (Module, "module"), (Buffer, "buffer")):
                if isinstance(value, kind):
                    raise AttributeError(f"cannot assign {what} before Module.__init__() call")
            object.__setattr__(self, name, value)
            return
        buffers, modules = self._buffers, self._modules
        if isinstance(value, Parameter):
            self._drop(name, keep=params)  # a reassigned name keeps its place (state_dict order), as torch's
            self.register_parameter(name, value)
        elif name in params:
            if value is not None:
                raise TypeError(f"cannot assign '{type(value).__name__}' as parameter '{name}' "
                                "(torch.nn.Parameter or None expected)")
            params[name] = None
        elif isinstance(value, Module):
            self._drop(name, keep=modules)
            modules[name] = value
        elif name in modules:
            if value is not None:
                raise TypeError(f"cannot assign '{type(value).__name__}' as child module '{name}' "
                                "(torch.nn.Module or None expected)")
            modules[name] = None
        elif isinstance(value, Buffer) or name in buffers:
            if value is not None and not isinstance(value, (Tensor, UninitializedTensorMixin)):
                raise TypeError(f"cannot assign '{type(value).__name__}' as buffer '{name}' "
                                "(torch.nn.Buffer, torch.Tensor or None expected)")
            # an nn.Buffer brings its own persistence; a plain tensor keeps the name's
            if isinstance(value, Buffer):
                persistent = value.persistent
            else:
                persistent = name not in self._non_persistent_buffers_set
            self.register_buffer(name, value, persistent)
        else:
            object.__setattr__(self, name, value)

    def _drop(self, name, keep=None):
        self.__dict__.pop(name, None)
        for table in (self._parameters, self._buffers, self._modules):
            if table is not keep:
                table.pop(name, None)
        self._non_persistent_buffers_set.discard(name)

    def __getattr__(self, name):
        d = self.__dict__
        for table in ("_parameters", "_buffers", "_modules"):
            if table in d and name in d[table]:
                return d[table][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for table in (self._parameters, self._buffers, self._modules):
            if name in table:
                del table[name]
                self._non_persistent_buffers_set.discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self):
        return sorted(set(object.__dir__(self)) | set(self._parameters) | set(self._buffers) | set(self._modules))

    def register_parameter(self, name, param):
        if "_parameters" not in self.__dict__:
            raise AttributeError("cannot assign parameter before Module.__init__() call")
        _check_name("parameter", self, name, self._parameters)
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"cannot assign '{type(param).__name__}' object to parameter '{name}' "
                            "(torch.nn.Parameter or None required)")
        self._parameters[name] = param

    def register_buffer(self, name, tensor, persistent=True):
        if "_buffers" not in self.__dict__:
            raise AttributeError("cannot assign buffer before Module.__init__() call")
        _check_name("buffer", self, name, self._buffers)
        if tensor is not None and not isinstance(tensor, (Tensor, UninitializedTensorMixin)):
            raise TypeError(f"cannot assign '{type(tensor).__name__}' object to buffer '{name}' "
                            "(torch Tensor or None required)")
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers_set.discard(name)
        else:
            self._non_persistent_buffers_set.add(name)

    def add_module(self, name, module):
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        _check_name("module", self, name, self._modules)
        self._modules[name] = module

    register_module = add_module

    def get_submodule(self, target):
        mod = self
        for item in target.split(".") if target else []:
            if item not in mod._modules or mod._modules[item] is None:
                raise AttributeError(f"{type(mod).__name__} has no attribute `{item}`")
            mod = mod._modules[item]
        return mod

    def get_parameter(self, target):
        path, _, name = target.rpartition(".")
        mod = self.get_submodule(path)
        if name not in mod._parameters:
            raise AttributeError(f"{type(mod).__name__} has no parameter `{name}`")
        return mod._parameters[name]

    # ---- traversal (Note [Shared parameters and modules]) ----
    def named_modules(self, memo=None, prefix="", remove_duplicate=True):
        memo = set() if memo is None else memo
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, m in self._modules.items():
            if m is not None:
                yield from m.named_modules(memo, _join(prefix, name), remove_duplicate)

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def named_children(self):
        seen = set()
        for name, m in self._modules.items():
            if m is not None and id(m) not in seen:
                seen.add(id(m))
                yield name, m

    def children(self):
        for _, m in self.named_children():
            yield m

    def _named_members(self, get_members_fn, prefix="", recurse=True, remove_duplicate=True):
        """(dotted name, member) over the module tree: get_members_fn names a table ("_parameters") or, as
        torch's, is a function of a module giving its (name, member) pairs (torchmeta's MetaModule passes one)."""
        seen = set()
        mods = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse else [(prefix, self)]
        for mp, m in mods:
            members = getattr(m, get_members_fn).items() if isinstance(get_members_fn, str) else get_members_fn(m)
            for name, t in members:
                if t is None or (remove_duplicate and id(t) in seen):
                    continue
                seen.add(id(t))
                yield _join(mp, name), t

    def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
        return self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse=True):
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix="", recurse=True, remove_duplicate=True):
        return self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse=True):
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def apply(self, fn):
        """fn(module) on every submodule (children first, in order) and then on self; returns self."""
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    # ---- state ----
    def _save_to_state_dict(self, destination, prefix, keep_vars):
        """This module's own parameters and persistent buffers into destination: torch's per-module override
        point of state_dict (the children are walked by state_dict itself)."""
        for name, p in self._parameters.items():
            if p is not None:
                destination[prefix + name] = p if keep_vars else p.detach()
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent_buffers_set:
                destination[prefix + name] = b if keep_vars else b.detach()
        if type(self).get_extra_state is not Module.get_extra_state:
            destination[prefix + _EXTRA_STATE] = self.get_extra_state()

    def state_dict(self, *, destination=None, prefix="", keep_vars=False):
        """(The state_dict hooks' tables exist once one is registered: module_state_hooks.py.)"""
        if destination is None:
            out = OrderedDict()
            out._metadata = OrderedDict()  # each module's {"version": _version}, keyed by its prefix (torch's)
        else:
            out = destination
        local_metadata = {"version": self._version}
        if hasattr(out, "_metadata"):
            out._metadata[prefix[:-1]] = local_metadata
        for hook in list(self.__dict__.get("_state_dict_pre_hooks", {}).values()):
            hook(self, prefix, keep_vars)
        self._save_to_state_dict(out, prefix, keep_vars)
        for name, m in self._modules.items():
            if m is not None:
                m.state_dict(destination=out, prefix=prefix + name + ".", keep_vars=keep_vars)
        for hook in list(self.__dict__.get("_state_dict_hooks", {}).values()):
            result = hook(self, out, prefix, local_metadata)
            if getattr(hook, "_from_public_api", False):
                if result is not None:
                    raise RuntimeError("state_dict post-hook must return None")
            elif result is not None:
                out = result
        return out

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        """torch's per-module step of load_state_dict, with its signature, so that modules can override it (a
        frozen BatchNorm drops num_batches_tracked, BatchNorm fills it in for older checkpoints): copies this
        module's own entries, records its missing / unexpected keys and appends error messages."""
        from ...autograd import no_grad

        for hook in list(self.__dict__.get("_load_state_dict_pre_hooks", {}).values()):
            hook(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs)
        own = {k: v for k, v in self._parameters.items() if v is not None}
        persistent = self._non_persistent_buffers_set
        own.update((k, v) for k, v in self._buffers.items() if v is not None and k not in persistent)
        for name, target in own.items():
            key = prefix + name
            if key not in state_dict:
                if strict:
                    missing_keys.append(key)
                continue
            v = state_dict[key]
            if isinstance(v, UninitializedTensorMixin) and isinstance(target, UninitializedTensorMixin):
                continue  # a lazy module's placeholder into a placeholder: nothing to copy, as torch's
            if not isinstance(v, (Tensor, UninitializedTensorMixin)):  # (a placeholder's shape raises below)
                error_msgs.append(f'While copying the parameter named "{key}", expected torch.Tensor or Tensor-like '
                                  f"object from checkpoint but received {type(v)}")
            elif tuple(v.shape) != tuple(target.shape):
                error_msgs.append(f"size mismatch for {key}: copying a param with shape {_size(v)} from checkpoint, "
                                  f"the shape in current model is {_size(target)}.")
            elif local_metadata.get("assign_to_params_buffers", False):
                # assign=True: the checkpoint's tensor itself (its dtype, device and storage) takes the slot, a
                # parameter keeping the requires_grad of the one it replaces (meta-device init, then real weights)
                if name in self._parameters:
                    if isinstance(v, Parameter):
                        v.requires_grad_(target.requires_grad)
                    else:
                        v = Parameter(v, requires_grad=target.requires_grad)
                setattr(self, name, v)
            else:
                with no_grad():
                    target.copy_(v)
        extra = prefix + _EXTRA_STATE
        if type(self).set_extra_state is not Module.set_extra_state:
            if extra in state_dict:
                self.set_extra_state(state_dict[extra])
            elif strict:
                missing_keys.append(extra)
        elif strict and extra in state_dict:
            unexpected_keys.append(extra)
        if strict:
            for key in state_dict:
                if key.startswith(prefix) and key != extra:
                    head = key[len(prefix):].split(".", 1)
                    if (head[0] not in self._modules) if len(head) > 1 else (head[0] not in own):
                        unexpected_keys.append(key)

    def load_state_dict(self, state_dict, strict=True, assign=False):
        """torch's walk: each module's _load_from_state_dict sees (a copy of) the entries under its prefix.
        Missing and unexpected keys are an error with strict=True and are returned (as torch's IncompatibleKeys)
        either way; a shape mismatch always raises. assign=True puts the checkpoint's tensors themselves in place of
        the module's (their dtype and storage) instead of copying into them."""
        if not hasattr(state_dict, "keys"):
            raise TypeError(f"Expected state_dict to be dict-like, got {type(state_dict)}.")
        for mp, m in list(self.named_modules()):  # lazy modules take their shapes from the checkpoint first
            if hasattr(type(m), "_lazy_load_state_dict"):
                m._lazy_load_state_dict(state_dict, mp + "." if mp else "")
        metadata = getattr(state_dict, "_metadata", None)
        state_dict = OrderedDict(state_dict)  # the overrides may edit it, not the caller's dict
        missing, unexpected, errors = [], [], []

        def load(module, local, prefix):
            meta = {} if metadata is None else dict(metadata.get(prefix[:-1], {}))
            if assign:
                meta["assign_to_params_buffers"] = assign
            module._load_from_state_dict(local, prefix, meta, True, missing, unexpected, errors)
            for name, child in module._modules.items():
                if child is not None:
                    sub = prefix + name + "."
                    load(child, {k: v for k, v in local.items() if k.startswith(sub)}, sub)
            keys = _IncompatibleKeys(missing, unexpected)  # the post-hooks may edit the lists in place
            for hook in list(module.__dict__.get("_load_state_dict_post_hooks", {}).values()):
                if hook(module, keys) is not None:
                    raise AssertionError("Hooks registered with ``register_load_state_dict_post_hook`` are not "
                                         "expected to return new values, if incompatible_keys need to be modified, "
                                         "it should be done inplace.")

        load(self, state_dict, "")
        if strict:
            if unexpected:
                errors.insert(0, "Unexpected key(s) in state_dict: " + ", ".join(f'"{k}"' for k in unexpected) + ". ")
            if missing:
                errors.insert(0, "Missing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing) + ". ")
        if errors:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t" + "\n\t".join(errors))
        return _IncompatibleKeys(missing, unexpected)

    def get_extra_state(self):
        """Overridden by modules with state beyond their tensors (saved under "_extra_state"), as torch's."""
        raise RuntimeError("Reached a code path in Module.get_extra_state() that should never be called.")

    def set_extra_state(self, state):
        raise RuntimeError("Reached a code path in Module.set_extra_state() that should never be called.")

    # ---- modes, gradients, devices ----
    def train(self, mode=True):
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self):
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none=True):
        for p in self.parameters():
            if p.grad is not None:
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.detach().zero_()

    def _apply_to_tensors(self, fn):
        """Replaces every buffer t by fn(t) and gives every parameter fn(parameter)'s data and fn(grad) as its
        grad (Note [Module.to keeps the parameters]); a tensor fn leaves as it is stays the very object."""
        def same(a, b):
            return a.device == b.device and a.dtype == b.dtype and a.data_ptr() == b.data_ptr()

        done = {}  # id(old) -> new: a tensor shared by several modules (tied weights) stays shared
        for m in self.modules():
            for table, is_param in ((m._parameters, True), (m._buffers, False)):
                for name, t in list(table.items()):
                    if t is None:
                        continue
                    if id(t) not in done and isinstance(t, UninitializedTensorMixin):
                        done[id(t)] = fn(t)  # a lazy module's placeholder: one of the new dtype/device
                    elif id(t) not in done:
                        moved = fn(t.detach() if is_param else t)
                        if same(moved, t):
                            moved = t
                        elif is_param:  # torch's param.data = fn(param): the object, and what holds it, stay
                            t.data = moved
                            if t.grad is not None:
                                t.grad = fn(t.grad)
                            moved = t
                        done[id(t)] = moved
                    table[name] = done[id(t)]
        return self

    def to(self, *args, **kwargs):
        """to(device), to(dtype), to(device, dtype), to(tensor), each with non_blocking and memory_format=:
        moves every parameter and buffer; a dtype applies to floating-point ones only, a memory format to the
        4-D and 5-D ones only, as torch's (Note [Module.to keeps the parameters])."""
        from .._functions import _device
        from .._memory_format import memory_format as _memory_format

        unknown = set(kwargs) - {"device", "dtype", "non_blocking", "memory_format", "copy"}
        if unknown:
            raise TypeError(f"to() received an invalid combination of arguments - got unexpected keyword "
                            f"argument(s) {sorted(unknown)}")
        device, dtype = kwargs.get("device"), kwargs.get("dtype")
        fmt = kwargs.get("memory_format")
        if fmt is not None and not isinstance(fmt, _memory_format):
            raise TypeError(f"to() received an invalid combination of arguments - memory_format must be a "
                            f"memory_format, but got {type(fmt).__name__}")
        for a in args:
            if isinstance(a, Tensor):
                device, dtype = a.device, a.dtype
            elif isinstance(a, _dtype):
                dtype = a
            elif isinstance(a, bool):
                pass  # non_blocking / copy: copies here are synchronous either way
            elif a is not None:
                device = a
        if dtype is not None and not dtype.is_floating_point:
            raise TypeError(f"nn.Module.to only accepts floating point dtypes, but got desired dtype={dtype}")
        device = _device(device) if device is not None else None

        def move(t):
            out = t.to(device) if device is not None else t
            out = out.to(dtype) if dtype is not None and t.dtype.is_floating_point else out
            # only image-like (4-D) and volume-like (5-D) tensors take the format; 5-D with channels_last raises
            return out.to(memory_format=fmt) if fmt is not None and t.dim() in (4, 5) else out
        return self._apply_to_tensors(move)

    def _cast_floats(self, dtype):
        return self._apply_to_tensors(lambda t: t.to(dtype) if t.dtype.is_floating_point else t)

    def float(self):
        return self._cast_floats(_dtype.float32)

    def double(self):
        return self._cast_floats(_dtype.float64)

    def half(self):
        return self._cast_floats(_dtype.float16)

    def bfloat16(self):
        return self._cast_floats(_dtype.bfloat16)

    def cuda(self, device=None):
        return self.to("cuda" if device is None else f"cuda:{device}" if isinstance(device, int) else device)

    def cpu(self):
        return self.to("cpu")

    # ---- calling and hooks ----
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"Module [{type(self).__name__}] is missing the required \"forward\" function")

    def register_forward_pre_hook(self, hook, *, prepend=False, with_kwargs=False):
        """hook(module, args) -> None or new args (a tuple, or one value); with_kwargs: hook(module, args,
        kwargs) -> None or (args, kwargs)."""
        return self._add_hook(self._forward_pre_hooks, (hook, with_kwargs), prepend)

    def register_forward_hook(self, hook, *, prepend=False, with_kwargs=False, always_call=False):
        """hook(module, args, output) -> None or a new output; with_kwargs: hook(module, args, kwargs, output)."""
        return self._add_hook(self._forward_hooks, (hook, with_kwargs), prepend)

    def _add_hook(self, table, entry, prepend):
        handle = RemovableHandle(table)
        table[handle.id] = entry
        if prepend:
            table.move_to_end(handle.id, last=False)
        return handle

    def __call__(self, *args, **kwargs):
        d = self.__dict__  # backward hooks live in tables made on first registration (module_more.py)
        backward = (d.get("_backward_hooks") or d.get("_backward_pre_hooks") or _global_backward_hooks
                    or _global_backward_pre_hooks)
        if not (self._forward_pre_hooks or self._forward_hooks or backward or _global_forward_pre_hooks
                or _global_forward_hooks):
            return self.forward(*args, **kwargs)
        if backward:
            from .module_more import call_with_backward_hooks

            return call_with_backward_hooks(self, args, kwargs)
        args, kwargs = self._run_forward_pre_hooks(args, kwargs)
        return self._run_forward_hooks(args, kwargs, self.forward(*args, **kwargs))

    def _run_forward_pre_hooks(self, args, kwargs):
        for hook, with_kwargs in [*_global_forward_pre_hooks.values(), *self._forward_pre_hooks.values()]:
            if with_kwargs:
                r = hook(self, args, kwargs)
                if r is not None:
                    args, kwargs = r
            else:
                r = hook(self, args)
                if r is not None:
                    args = r if isinstance(r, tuple) else (r,)
        return args, kwargs

    def _run_forward_hooks(self, args, kwargs, out):
        for hook, with_kwargs in [*_global_forward_hooks.values(), *self._forward_hooks.values()]:
            r = hook(self, args, kwargs, out) if with_kwargs else hook(self, args, out)
            if r is not None:
                out = r
        return out

    # ---- printing ----
    def extra_repr(self):
        return ""

    def _get_name(self):
        return type(self).__name__

    def __repr__(self):
        lines = self.extra_repr().split("\n") if self.extra_repr() else []
        lines += [f"({name}): " + _indent(repr(m), 2) for name, m in self._child_lines()]
        head = self._get_name() + "("
        if not lines:
            return head + ")"
        if len(lines) == 1 and not self._modules:
            return head + lines[0] + ")"
        return head + "\n  " + "\n  ".join(lines) + "\n)"

    def _child_lines(self):
        return list(self._modules.items())


# torch.nn.modules.module's global hooks (register_module_*_hook in module_more.py): every module's call runs
# them before its own hooks of the same kind, as torch's _call_impl does. Entries as in the per-module tables.
_global_forward_pre_hooks = OrderedDict()
_global_forward_hooks = OrderedDict()
_global_backward_hooks = OrderedDict()
_global_backward_pre_hooks = OrderedDict()


def _indent(text, n):
    return text.replace("\n", "\n" + " " * n)


def _size(t):
    return f"torch.Size({list(t.shape)})"
