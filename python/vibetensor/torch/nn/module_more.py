"""More of torch's nn.Module methods, attached to vt.nn.Module at import: get_buffer, set_submodule, type,
to_empty, register_full_backward_hook and register_full_backward_pre_hook.

Full backward hooks work as torch's: when a module has any, its call routes the positional tensor arguments (after
the forward pre-hooks) and the outputs (after the forward hooks) through identity autograd Functions. The outputs'
node sees every grad_output at once (and runs the backward pre-hooks, which may replace them); the inputs' node
sees every grad_input at once and runs the backward hooks, which may replace them. When no input needs a
gradient, the hooks run from the outputs' node with grad_input all None, as torch's."""
from ...autograd import Function, no_grad
from ..._C.core import dtype as _dtype
from ._tensor_api import Tensor
from . import module as _module
from .module import Module, RemovableHandle


# torch's legacy tensor type names, for Module.type("torch.DoubleTensor")
_TYPE_NAMES = {"FloatTensor": "float32", "DoubleTensor": "float64", "HalfTensor": "float16",
               "BFloat16Tensor": "bfloat16", "LongTensor": "int64", "IntTensor": "int32", "ShortTensor": "int16",
               "CharTensor": "int8", "ByteTensor": "uint8", "BoolTensor": "bool"}


def get_buffer(self, target):
    path, _, name = target.rpartition(".")
    mod = self.get_submodule(path)
    if not hasattr(mod, name):
        raise AttributeError(f"{mod._get_name()} has no attribute `{name}`")
    if name not in mod._buffers:
        raise AttributeError(f"`{name}` is not a buffer")
    return mod._buffers[name]


def set_submodule(self, target, module, strict=False):
    if target == "":
        raise ValueError("Cannot set the submodule without a target name!")
    atoms = target.split(".")
    if not isinstance(module, Module):
        raise ValueError(f"`module` is not an nn.Module, found {type(module)}")
    parent = self if len(atoms) == 1 else self.get_submodule(".".join(atoms[:-1]))
    if strict and not hasattr(parent, atoms[-1]):
        raise AttributeError(f"{parent._get_name()} has no attribute `{atoms[-1]}`")
    if hasattr(parent, atoms[-1]) and not isinstance(getattr(parent, atoms[-1]), Module):
        raise AttributeError(f"`{atoms[-1]}` is not an nn.Module")
    setattr(parent, atoms[-1], module)


def _as_dtype(dst_type):
    if isinstance(dst_type, _dtype):
        return dst_type
    if isinstance(dst_type, type) and isinstance(getattr(dst_type, "dtype", None), _dtype):  # torch.DoubleTensor
        return dst_type.dtype
    if isinstance(dst_type, str):
        name = dst_type.rpartition(".")[2]
        if name in _TYPE_NAMES and not dst_type.startswith(("torch.cuda.", "vt.cuda.")):
            return getattr(_dtype, _TYPE_NAMES[name])
    raise TypeError(f"invalid type: {dst_type!r}")


def module_type(self, dst_type):
    """Casts every parameter and buffer to dst_type (a dtype, a legacy type such as torch.DoubleTensor or its
    name 'torch.DoubleTensor'), integer dtypes included, unlike to()."""
    dt = _as_dtype(dst_type)
    return self._apply_to_tensors(lambda t: t.to(dt))


def to_empty(self, *, device, recurse=True):
    """Every parameter and buffer replaced by an uninitialised tensor of its shape and dtype on `device`."""
    from .._functions import empty_like

    if not recurse:
        raise NotImplementedError("to_empty(recurse=False) is not implemented in vibetensor")
    return self._apply_to_tensors(lambda t: empty_like(t, device=device))


def _table(module, name):
    table = module.__dict__.get(name)
    if table is None:
        from collections import OrderedDict

        table = OrderedDict()
        object.__setattr__(module, name, table)
    return table


def register_full_backward_hook(self, hook, prepend=False):
    """hook(module, grad_input, grad_output) -> None or a new grad_input tuple."""
    return self._add_hook(_table(self, "_backward_hooks"), hook, prepend)


def register_full_backward_pre_hook(self, hook, prepend=False):
    """hook(module, grad_output) -> None or a new grad_output tuple."""
    return self._add_hook(_table(self, "_backward_pre_hooks"), hook, prepend)


def _backward_hooks_of(module):
    """The full backward hooks a module's call runs: the global ones first, then its own (torch's order)."""
    return [*_module._global_backward_hooks.values(), *module.__dict__.get("_backward_hooks", {}).values()]


def register_module_forward_pre_hook(hook):
    """torch.nn.modules.module.register_module_forward_pre_hook: hook(module, args) before every module's forward
    (and before the module's own pre-hooks); it may return new args."""
    return Module._add_hook(None, _module._global_forward_pre_hooks, (hook, False), False)


def register_module_forward_hook(hook, *, with_kwargs=False, always_call=False):
    """hook(module, args, output) (with_kwargs: hook(module, args, kwargs, output)) after every module's forward,
    before the module's own forward hooks; it may return a new output."""
    return Module._add_hook(None, _module._global_forward_hooks, (hook, with_kwargs), False)


def register_module_full_backward_pre_hook(hook):
    """hook(module, grad_output) for every module, before the module's own backward pre-hooks."""
    return Module._add_hook(None, _module._global_backward_pre_hooks, hook, False)


def register_module_full_backward_hook(hook):
    """hook(module, grad_input, grad_output) for every module, before the module's own backward hooks."""
    return Module._add_hook(None, _module._global_backward_hooks, hook, False)


class _Hooks:
    """One call's backward-hook state: which positional args are tensors, and the grad_output once seen."""

    def __init__(self, module, n_args):
        self.module, self.n_args = module, n_args
        self.grad_output = None
        self.tensor_pos = []

    def run_backward_hooks(self, grad_input):
        for hook in _backward_hooks_of(self.module):
            r = hook(self.module, grad_input, self.grad_output)
            if r is not None:
                r = tuple(r) if isinstance(r, (tuple, list)) else (r,)
                if len(r) != len(grad_input):
                    raise RuntimeError(f"Backward hook returned an invalid number of grad_input, got {len(r)}, "
                                       f"but expected {len(grad_input)}")
                grad_input = r
        return grad_input


def _identity(hooks, tensors, backward):
    """tensors through one identity node whose backward is backward(grads)."""
    class _Node(Function):
        @staticmethod
        def forward(ctx, *ts):
            return tuple(t.detach() for t in ts)

        @staticmethod
        def backward(ctx, *grads):
            return backward(grads)
    _Node.__name__ = "BackwardHookFunction"
    out = _Node.apply(*tensors)
    return out if isinstance(out, tuple) else (out,)


def _wrap_inputs(h, args):
    h.tensor_pos = [i for i, a in enumerate(args) if isinstance(a, Tensor) and a.requires_grad]
    if not h.tensor_pos or not _backward_hooks_of(h.module):
        h.tensor_pos = []
        return args

    def backward(grads):
        full = [None] * h.n_args
        for i, g in zip(h.tensor_pos, grads):
            full[i] = g
        full = h.run_backward_hooks(tuple(full))
        return tuple(full[i] for i in h.tensor_pos)
    wired = _identity(h, [args[i] for i in h.tensor_pos], backward)
    args = list(args)
    for i, w in zip(h.tensor_pos, wired):
        args[i] = w
    return tuple(args)


def _wrap_outputs(h, out):
    single = isinstance(out, Tensor)
    outs = [out] if single else list(out) if isinstance(out, (tuple, list)) else None
    if outs is None:
        return out
    pos = [i for i, o in enumerate(outs) if isinstance(o, Tensor) and o.requires_grad]
    if not pos:
        return out

    def backward(grads):
        grads = tuple(grads)
        for hook in [*_module._global_backward_pre_hooks.values(),
                     *h.module.__dict__.get("_backward_pre_hooks", {}).values()]:
            r = hook(h.module, grads)
            if r is not None:
                grads = tuple(r) if isinstance(r, (tuple, list)) else (r,)
        h.grad_output = grads
        if not h.tensor_pos:  # no input takes a gradient: the hooks run here, with grad_input all None
            h.run_backward_hooks((None,) * h.n_args)
        return grads
    wired = _identity(h, [outs[i] for i in pos], backward)
    for i, w in zip(pos, wired):
        outs[i] = w
    return outs[0] if single else type(out)(outs) if isinstance(out, tuple) else outs


def call_with_backward_hooks(self, args, kwargs):
    """Module.__call__ when full backward hooks are registered: forward hooks as usual, inputs and outputs wired
    through identity Functions that run the backward hooks."""
    args, kwargs = self._run_forward_pre_hooks(args, kwargs)
    h = _Hooks(self, len(args))
    args = _wrap_inputs(h, args)
    out = self._run_forward_hooks(args, kwargs, self.forward(*args, **kwargs))
    return _wrap_outputs(h, out)


_METHODS = {"get_buffer": get_buffer, "set_submodule": set_submodule, "type": module_type, "to_empty": to_empty,
            "register_full_backward_hook": register_full_backward_hook,
            "register_full_backward_pre_hook": register_full_backward_pre_hook}
for _name, _fn in _METHODS.items():
    setattr(Module, _name, _fn)
del no_grad, RemovableHandle

from . import module_state_hooks  # noqa: E402,F401  (attaches the state_dict hooks; it uses _table above)
