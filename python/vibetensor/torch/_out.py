"""out= for the functions whose torch counterparts take it: vt.add(a, b, out=c), vt.cat(xs, out=buf),
vt.max(x, 1, out=(values, indices)).

Note [out= by copy]: vibetensor's kernels allocate their results, so a call with out= runs the op as usual and
then writes the result into `out` under torch's rules for out arguments:
  - out is on the result's device;
  - its dtype, op by op as torch decides (EXACT_DTYPE, DTYPE_FROM_OUT below): one the result's dtype casts to
    (torch.can_cast: float into int is refused), or exactly the result's (the matrix products, abs, where, ...,
    and every part of a multi-output op: values, indices), or any (sum, prod, cumsum, cumprod run in out's dtype);
  - a shape other than the result's is resized (Tensor.resize_), with torch's deprecation warning when out had
    elements;
  - with grad mode on, an input or out that requires grad is refused (out= is not differentiable);
  - out is returned (a tuple of outs for multi-output ops, of the result's namedtuple type when it has one).
The cost is one extra copy of the result; out aliasing an input is safe, since the result is complete before
anything is written. The ops reach write() three ways: dispatcher ops (OpHandle calls) and the fixed-arity
fast functions (a second overload) from C++, the Python-level functions through accepts_out.
"""
from __future__ import annotations

import inspect
import sys
import warnings

from .._C import autograd as _ag
from .._C import core as _core
from ._no_autocast import call_without_autocast

# Which out dtypes torch takes differs by op (measured against torch 2.13 by tests/core/test_out_arguments.py):
# these want the result's dtype exactly ("Expected out tensor to have dtype float, but got double instead"),
EXACT_DTYPE = frozenset({
    "abs", "addmm", "all", "amax", "amin", "any", "baddbmm", "bitwise_not", "bmm", "ceil", "clamp", "floor", "frac",
    "gather", "index_select", "lerp", "masked_select", "matmul", "mm", "neg", "negative", "nonzero", "norm", "round",
    "sign", "tril", "triu", "trunc", "where"})
# these run in out's dtype, as if it were their dtype= argument (a sum into an int64 out sums int64 values),
DTYPE_FROM_OUT = frozenset({"sum", "prod", "cumsum", "cumprod"})
# and every other takes a dtype the result casts to.
_TORCH_NAMES = {"float32": "Float", "float64": "Double", "float16": "Half", "bfloat16": "BFloat16", "int64": "Long",
                "int32": "Int", "int16": "Short", "int8": "Char", "uint8": "Byte", "bool": "Bool"}


def _torch_name(dtype) -> str:
    name = str(dtype).rsplit(".", 1)[-1]
    return _TORCH_NAMES.get(name, name)


_WRAPPER_FILE = "<vibetensor out= wrapper>"


def _caller_level() -> int:
    """warnings.warn's stacklevel of the first frame outside this file and the generated wrappers (the ops reach
    write() from C++ or through accepts_out's code, so the depth varies)."""
    f, level = sys._getframe(1), 1
    while f is not None and f.f_code.co_filename in (__file__, _WRAPPER_FILE):
        f, level = f.f_back, level + 1
    return level


def _write_one(name, result, out, exact):
    if not isinstance(out, _core.Tensor):
        raise TypeError(f"{name}(): argument 'out' must be Tensor, not {type(out).__name__}")
    if out.device != result.device:
        raise RuntimeError(f"{name}(): expected out tensor to have device {result.device}, but got {out.device} "
                           "instead")
    if exact and out.dtype != result.dtype:
        raise RuntimeError(f"{name}(): expected out tensor to have dtype {result.dtype}, but got {out.dtype} instead")
    if not _core.can_cast(result.dtype, out.dtype):
        raise RuntimeError(f"result type {_torch_name(result.dtype)} can't be cast to the desired output type "
                           f"{_torch_name(out.dtype)}")
    if tuple(out.shape) != tuple(result.shape):
        if out.numel() != 0:
            warnings.warn(f"An output with one or more elements was resized since it had shape {list(out.shape)}, "
                          f"which does not match the required output shape {list(result.shape)}. This behavior "
                          "is deprecated, and in a future PyTorch release outputs will not be resized unless they "
                          "have zero elements. You can explicitly reuse an out tensor t by resizing it, inplace, "
                          "to zero elements with t.resize_(0).", UserWarning, stacklevel=_caller_level())
        out.resize_(tuple(result.shape))
    out.copy_(result)
    return out


def write(name: str, result, out):
    """Writes the op's result into out (Note [out= by copy]) and returns out."""
    parts = result if isinstance(result, tuple) else (result,)
    outs = out if isinstance(result, tuple) else (out,)
    if isinstance(result, tuple) and (not isinstance(out, (tuple, list)) or len(out) != len(result)):
        raise TypeError(f"{name}(): argument 'out' must be a tuple of {len(result)} Tensors")
    if _ag.is_grad_enabled() and any(t.requires_grad for t in (*parts, *outs) if isinstance(t, _core.Tensor)):
        raise RuntimeError(f"{name}(): functions with out=... arguments don't support automatic differentiation, "
                           "but one of the arguments requires grad.")
    exact = name in EXACT_DTYPE or len(parts) > 1
    written = tuple(_write_one(name, r, o, exact) for r, o in zip(parts, outs))
    if not isinstance(result, tuple):
        return written[0]
    cls = type(result)  # torch hands back its return type (values, indices) holding the outs
    if cls is tuple:
        return written
    return cls(*written) if hasattr(result, "_fields") else cls(written)


def accepts_out(fn):
    """fn with a keyword-only out= (Note [out= by copy]). The wrapper is generated with fn's own signature, so a
    call without out= costs one plain call more, not an *args/**kwargs repack."""
    sig = inspect.signature(fn)
    params, call = [], []
    defaults = {}
    star = False
    for p in sig.parameters.values():
        default = ""
        if p.default is not inspect.Parameter.empty:
            defaults[f"_d_{p.name}"] = p.default
            default = f"=_d_{p.name}"
        if p.kind is p.VAR_POSITIONAL:
            params.append(f"*{p.name}"), call.append(f"*{p.name}")
            star = True
        elif p.kind is p.VAR_KEYWORD:
            raise TypeError(f"accepts_out: {fn.__name__} takes **{p.name}")
        elif p.kind is p.KEYWORD_ONLY:
            if not star:
                params.append("*")
                star = True
            params.append(p.name + default), call.append(f"{p.name}={p.name}")
        else:
            params.append(p.name + default), call.append(p.name)
    if not star:
        params.append("*")
    name = fn.__name__
    args = ", ".join(call)
    out_args = args
    if name in DTYPE_FROM_OUT:  # the op runs in out's dtype unless the call names one
        out_args = args.replace("dtype=dtype", "dtype=out.dtype if dtype is None and isinstance(out, _Tensor) else dtype")
    src = (f"def {name}({', '.join(params)}, out=None):\n"
           f"    if out is None:\n        return _fn({args})\n"
           f"    return _write({name!r}, _call_without_autocast(lambda: _fn({out_args})), out)\n")
    # (torch autocasts the functional forms only: an out= call computes in its inputs' dtypes)
    scope = {"_fn": fn, "_write": write, "_Tensor": _core.Tensor, "_call_without_autocast": call_without_autocast,
             **defaults}
    exec(compile(src, _WRAPPER_FILE, "exec"), scope)  # noqa: S102 - generated from fn's own signature
    wrapper = scope[name]
    wrapper.__doc__, wrapper.__module__, wrapper.__wrapped__ = fn.__doc__, fn.__module__, fn
    return wrapper


# The Python-level functions of vibetensor.torch whose torch counterparts take out= (the dispatcher ops and the
# fast functions take it in C++).
PYTHON_FUNCTIONS = ("addcdiv", "addcmul", "addmm", "all", "amax", "amin", "any", "baddbmm", "cat", "clamp", "concat",
                    "concatenate", "gather", "ger", "index_select", "lerp", "logsumexp", "masked_select", "matmul",
                    "max", "mean", "min", "nonzero", "norm", "outer", "prod", "round", "sort", "square", "stack",
                    "std", "sum", "topk", "tril", "triu", "var", "where")


def _op_in_out_dtype(op, name):
    """A dispatcher op of DTYPE_FROM_OUT (cumsum, cumprod) with out= run in out's dtype."""
    def with_out(*args, out=None, **kwargs):
        if out is None:
            return op(*args, **kwargs)
        if kwargs.get("dtype") is None and isinstance(out, _core.Tensor):
            kwargs["dtype"] = out.dtype
        return write(name, op(*args, **kwargs), out)

    with_out.__name__ = with_out.__qualname__ = name
    with_out.__doc__ = f"{op!r} with out= (Note [out= by copy])"
    return with_out


def install(namespace: dict) -> None:
    for name in PYTHON_FUNCTIONS:
        namespace[name] = accepts_out(namespace[name])
    for name in ("cumsum", "cumprod"):
        namespace[name] = _op_in_out_dtype(namespace[name], name)
