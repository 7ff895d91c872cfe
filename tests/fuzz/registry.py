"""The ops the differential fuzzer draws, read from the dispatcher's registry, and how torch computes each.

Every op registered in namespace `vt` is listed by `vt.ops.vt.__dir__()` with its schema text; the schema gives
the arguments (names, types, optionality, keyword-only) that the strategies fill. The torch side of an op is
its torch function of the same name (a Tensor method for in-place ops) unless TORCH_CALLS names another; ops
with no torch counterpart are in UNFUZZED with the reason and where they are tested instead. Nothing here is
specific to one op beyond those two tables: a new op is fuzzed as soon as it is registered.
"""
from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

import vibetensor.torch as vt


@dataclass(frozen=True)
class Arg:
    name: str
    type: str               # Tensor, Tensor[], int, int[], float, bool, Scalar, ScalarType, Device, str
    optional: bool = False  # "T?": None allowed
    optional_elements: bool = False  # "Tensor?[]"
    kwarg_only: bool = False
    has_default: bool = False


@dataclass(frozen=True)
class OpSpec:
    name: str                # "add_"
    schema: str
    args: tuple[Arg, ...]
    returns: str
    inplace: bool = field(default=False)


_ARG = re.compile(r"^(Tensor\?\[\]|[A-Za-z]+(?:\[\])?)(\?)?\s+(\w+)(=.*)?$")


def _split_top(text: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur.strip())
    return parts


def parse_schema(schema: str) -> OpSpec:
    name = schema.split("(", 1)[0].split("::")[-1]
    inner = schema[schema.index("(") + 1:schema.rindex(") ->")]
    returns = schema.rsplit("->", 1)[1].strip()
    args, kw = [], False
    for part in _split_top(inner):
        if part == "*":
            kw = True
            continue
        m = _ARG.match(part)
        if m is None:
            raise ValueError(f"cannot parse argument {part!r} of {schema}")
        t, opt, arg_name, default = m.groups()
        elems = t == "Tensor?[]"
        args.append(Arg(arg_name, "Tensor[]" if elems else t, bool(opt), elems, kw, default is not None))
    return OpSpec(name, schema, tuple(args), returns, name.endswith("_"))


# ---- the torch side ----

def _reduction_name(r):
    return {0: "none", 1: "mean", 2: "sum"}.get(r, f"invalid reduction {r}")


def _dims(d):
    return () if d is None else d


def _bmm_nd(self, mat2):
    """vt::_bmm_nd multiplies batches of equal batch shape (what matmul hands it after broadcasting)."""
    if not isinstance(self, torch.Tensor) or not isinstance(mat2, torch.Tensor):
        raise TypeError("_bmm_nd(): arguments must be Tensors")
    if self.dim() < 3 or self.dim() != mat2.dim() or self.shape[:-2] != mat2.shape[:-2]:
        raise RuntimeError("_bmm_nd: expected operands of the same rank >= 3 and batch shape")
    return torch.matmul(self, mat2)


def _linear_bias(input, weight, bias):
    """vt::_linear_bias is F.linear for what F.linear hands it: input of rank >= 2, a 2-D weight, a 1-D bias."""
    if not all(isinstance(t, torch.Tensor) for t in (input, weight, bias)):
        raise TypeError("_linear_bias(): arguments must be Tensors")
    if input.dim() < 2 or weight.dim() != 2 or bias.dim() != 1:
        raise RuntimeError("_linear_bias: expected input of rank >= 2, a 2-D weight and a 1-D bias")
    return F.linear(input, weight, bias)


def _linear_weight_bias_grad(grad, input):
    """vt::_linear_weight_bias_grad is _linear_bias's backward for the weight and bias: (grad^T input, grad summed
    over rows) over the rows of [..., N] and [..., K] operands with the same leading dims."""
    if not isinstance(grad, torch.Tensor) or not isinstance(input, torch.Tensor):
        raise TypeError("_linear_weight_bias_grad(): arguments must be Tensors")
    if grad.dim() < 1 or grad.dim() != input.dim() or grad.shape[:-1] != input.shape[:-1]:
        raise RuntimeError("_linear_weight_bias_grad: grad and input must share their leading dims")
    if grad.dtype != input.dtype:
        raise RuntimeError("_linear_weight_bias_grad: grad and input must agree in dtype and device")
    rows = math.prod(grad.shape[:-1])
    g, x = grad.reshape(rows, grad.shape[-1]), input.reshape(rows, input.shape[-1])
    return g.t() @ x, g.sum(0)


def _typed(value, what, ok):
    """The TypeError torch's argument parser raises before an op runs, for a lambda that reads the value first."""
    if not ok(value):
        raise TypeError(f"argument '{what}' has a wrong type: {type(value).__name__}")


def _int_list(v):
    return isinstance(v, (list, tuple)) and all(isinstance(i, int) and -2**63 <= i < 2**63 for i in v)


def _as_strided(self, size, stride, storage_offset=None):
    """torch.as_strided accepts a negative size when the storage is empty (and returns a tensor whose shape
    holds it); vibetensor refuses negative sizes always, which the fuzzer takes as torch's answer too (after
    the argument types, which torch's parser checks first)."""
    _typed(size, "size", _int_list)
    _typed(stride, "stride", _int_list)
    _typed(storage_offset, "storage_offset", lambda v: v is None or _int_list([v]))
    if isinstance(size, (list, tuple)) and any(isinstance(s, int) and s < 0 for s in size):
        raise RuntimeError(f"as_strided: negative size in {list(size)}")
    return torch.as_strided(self, size, stride, storage_offset)


def _index_put_(self, indices, values, accumulate=False):
    """With no index at all torch's index_put_ fails inside masked_fill_ (RuntimeError); vibetensor says "at
    least one index must be provided" as an IndexError, which is what torch's own index() raises."""
    if isinstance(indices, (list, tuple)) and len(indices) == 0 and isinstance(self, torch.Tensor):
        raise IndexError("at least one index must be provided")
    return torch.ops.aten.index_put_(self, indices, values, accumulate)  # takes None entries, as ours


def _prod(self, dim, keepdim, dtype):
    """prod over a list of dims (torch.prod takes one): dims checked as sum checks them, then one at a time."""
    _typed(dtype, "dtype", lambda v: v is None or isinstance(v, torch.dtype))
    if dim is None or len(dim) == 0:
        out = torch.prod(self, dtype=dtype)
        return out.reshape([1] * self.dim()) if keepdim else out
    torch.sum(self, dim)  # the same dim errors (range, repeats) as vibetensor's
    out = self
    for d in sorted((d % max(self.dim(), 1) for d in dim), reverse=True):
        out = torch.prod(out, d, keepdim=True, dtype=dtype)
    return out if keepdim else out.reshape([s for i, s in enumerate(self.shape) if i not in
                                            {d % max(self.dim(), 1) for d in dim}])


def _arange(start, end, step=1, *, dtype=None, device=None):
    """torch's arange computes an integral range's length in int64 and traps (SIGFPE: INT64_MIN / -1 kills the
    fuzzer) when it holds 2**63 elements or more, as arange(0, -2**63, -1); for other ranges too long it raises
    "invalid size, possible overflow?", which the oracle raises for these too."""
    ints = all(isinstance(v, int) for v in (start, end, step))
    if any(isinstance(v, int) and not -2**63 <= v < 2**64 for v in (start, end, step)):
        raise OverflowError("int too big to convert")  # as torch.arange(0, 2**64) (with a step it reads a double)
    if ints and step != 0 and (end - start) * step > 0 and -(-(end - start) // step) >= 2**63:
        raise RuntimeError("invalid size, possible overflow?")
    _guard_16bit_arange(start, end, step, dtype)
    return torch.arange(start, end, step, dtype=dtype, device=device)


def _guard_16bit_arange(start, end, step, dtype):
    """torch 2.13's CPU arange into float16 or bfloat16 counts the elements it writes in float32: past 2**24
    elements that count can round up, and the kernel writes past the end of its output (arange(3, 2**31 - 1,
    dtype=bfloat16) writes 4 elements more than it allocated, arange(0, 2**25 + 3, ...) one). The long profile of
    2026-12-07 (seed 170) died of the heap corruption; vibetensor counts in int64 and is compared on the smaller
    ranges."""
    if dtype not in (torch.float16, torch.bfloat16):
        return
    try:  # arguments torch refuses (a string, a zero or NaN step, infinite bounds) are left to torch
        count = math.ceil((float(end) - float(start)) / float(step))
    except (TypeError, ValueError, OverflowError, ZeroDivisionError):
        return
    if count > 2**24:
        raise TorchWouldTrap("torch's 16-bit arange of more than 2**24 elements writes past its output (it counts "
                             "them in float32); vibetensor counts in int64")


class TorchWouldTrap(Exception):
    """Raised instead of calling torch on an input its kernel traps on or writes out of bounds for (the process
    would die, at once or later)."""


def _guard_trunc_division(self, other, rounding_mode):
    """torch's truncating integer division traps (SIGFPE) on INT_MIN / -1 - the long profile of 2026-12-03 lost
    its process to it; vibetensor wraps, as integer floor division does in both."""
    if rounding_mode != "trunc" or not isinstance(self, torch.Tensor) or self.is_floating_point():
        return
    if isinstance(other, torch.Tensor) and other.is_floating_point():
        return
    if self.dtype == torch.bool or (isinstance(other, torch.Tensor) and other.dtype == torch.bool):
        return
    # In the dtype torch computes in: a 0-dim int64 divisor of 2**32 - 1 beside an int32 self is -1 there (the
    # long profile of seed 74 lost its process to that one).
    dt = torch.result_type(self, other)
    if dt.is_floating_point or dt == torch.bool:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        divisor = torch.as_tensor(other).to(dt)
    if self.numel() and bool((divisor == -1).any()) and bool((self.to(dt) == torch.iinfo(dt).min).any()):
        raise TorchWouldTrap("torch's kernel would trap on this input (INT_MIN / -1 truncated); vibetensor wraps")


def _div(self, other, *, rounding_mode=None):
    _guard_trunc_division(self, other, rounding_mode)
    return torch.div(self, other, rounding_mode=rounding_mode)


def _div_(self, other, *, rounding_mode=None):
    _guard_trunc_division(self, other, rounding_mode)
    return self.div_(other, rounding_mode=rounding_mode)


def _triangle_(name):
    """torch's tril_ / triu_ write through an expanded self's aliases (a dim of size > 1 at stride 0) and leave a
    matrix that is not triangular; vibetensor refuses that write, as torch's other in-place ops refuse it (Note
    [In-place overlap]): the oracle raises torch's error of those ops."""
    def call(self, diagonal=0):
        if isinstance(self, torch.Tensor) and self.numel() and any(n > 1 and st == 0
                                                                   for n, st in zip(self.shape, self.stride())):
            getattr(self.clone(), name)(diagonal)  # torch's argument errors first: vibetensor's parser raises them
            raise RuntimeError("unsupported operation: more than one element of the written-to tensor refers to a "
                               "single memory location. Please clone() the tensor before performing the operation.")
        return getattr(self, name)(diagonal)
    return call


# Ops whose torch counterpart is not torch.<name> (or Tensor.<name> in place) with the same arguments.
TORCH_CALLS = {
    "tril_": _triangle_("tril_"),
    "triu_": _triangle_("triu_"),
    "to_dtype": lambda self, dtype: torch.ops.aten.to.dtype(self, dtype),  # Tensor.to(None) would be a no-op
    "_keep_versions": lambda self, kept: torch.clone(self) if isinstance(kept, (list, tuple)) and all(
        isinstance(k, torch.Tensor) for k in kept) else
        torch.cat(kept),  # an identity whose list must hold Tensors: cat raises the TypeError vt raises
    "index": lambda self, indices: torch.ops.aten.index.Tensor(self, indices),
    "index_put_": _index_put_,
    "as_strided": _as_strided,
    "max_dim": lambda self, dim, keepdim=False: tuple(torch.max(self, dim, keepdim)),
    "min_dim": lambda self, dim, keepdim=False: tuple(torch.min(self, dim, keepdim)),
    # vt::clamp_tensor reads a number as a wrapped 0-dim tensor, which torch's Tensor overload cannot be given
    # (torch.clamp would take its Scalar overload, as vt.clamp does): such cases are skipped as "a number where
    # torch's signature takes only a Tensor"
    "clamp_tensor": lambda self, min=None, max=None: _typed(min, "min", lambda v: not isinstance(v, (bool, int, float)))
        or _typed(max, "max", lambda v: not isinstance(v, (bool, int, float))) or torch.clamp(self, min, max),
    "_softmax": lambda self, dim, log: _typed(log, "log", lambda v: isinstance(v, bool)) or (
        torch.log_softmax if log else torch.softmax)(self, dim),
    "_bmm_nd": _bmm_nd,
    "_linear_bias": _linear_bias,
    "_linear_weight_bias_grad": _linear_weight_bias_grad,
    "cross_entropy": lambda input, target, weight=None, reduction=1, ignore_index=-100, label_smoothing=0.0:
        F.cross_entropy(input, target, weight, ignore_index=ignore_index, reduction=_reduction_name(reduction),
                        label_smoothing=label_smoothing),
    "embedding": lambda weight, indices: F.embedding(indices, weight),
    "dropout": lambda input, p=0.5, train=True: F.dropout(input, p, train),
    "layer_norm": lambda input, shape, weight=None, bias=None, eps=1e-5: F.layer_norm(input, shape, weight, bias, eps),
    "rms_norm": lambda input, shape, weight=None, eps=None: F.rms_norm(input, shape, weight, eps),
    "native_layer_norm": lambda input, shape, weight, bias, eps: tuple(
        torch.ops.aten.native_layer_norm(input, shape, weight, bias, eps)),
    "eye": lambda n, m=None, *, dtype=None, device=None: torch.eye(n, n if m is None else m, dtype=dtype, device=device),
    "arange": _arange,
    # vt::random_ takes an int `to`; torch's random_(2**63 - 1, None) on a floating tensor never returns (its
    # update_from shifts a negative number forever), so the oracle refuses None as the schema does
    "random_": lambda self, from_, to: _typed(to, "to", lambda v: isinstance(v, int)) or _method("random_")(
        self, from_, to),
    # torch.sort takes stable= only with dim and descending as keywords (its Python signatures)
    "sort": lambda self, dim=-1, descending=False, *, stable=False: torch.sort(self, dim=dim, descending=descending,
                                                                                 stable=stable),
    # vt::norm's p is a number; torch.norm's string orders ("fro", "nuc") belong to vt.norm's Python front
    "norm": lambda self, p=2, dim=None, keepdim=False: _typed(p, "p", lambda v: not isinstance(v, str)) or torch.norm(
        self, p, dim, keepdim),
    "amax": lambda self, dim=None, keepdim=False: torch.amax(self, _dims(dim), keepdim),
    "amin": lambda self, dim=None, keepdim=False: torch.amin(self, _dims(dim), keepdim),
    "all": lambda self, dim=None, keepdim=False: torch.all(self, dim, keepdim=keepdim),
    "any": lambda self, dim=None, keepdim=False: torch.any(self, dim, keepdim=keepdim),
    "prod": lambda self, dim=None, keepdim=False, *, dtype=None: _prod(self, dim, keepdim, dtype),
    "squeeze": lambda self, dim=None: torch.squeeze(self) if dim is None else torch.squeeze(self, tuple(dim)),
    "slice": lambda self, dim=0, start=None, end=None, step=1: torch.ops.aten.slice.Tensor(self, dim, start, end, step),
    "split_with_sizes": lambda self, sizes, dim=0: list(torch.ops.aten.split_with_sizes(self, sizes, dim)),
    "unbind": lambda self, dim=0: list(torch.unbind(self, dim)),
    "div": _div,
    "div_": _div_,
    "masked_fill_": lambda self, mask, value: self.masked_fill_(mask, value),
    "full": lambda size, fill_value, *, dtype=None, device=None: torch.full(size, fill_value, dtype=dtype, device=device),
    "empty": lambda size, *, dtype=None, device=None: torch.empty(size, dtype=dtype, device=device),
    "var": lambda self, dim=None, *, correction=None, keepdim=False: torch.var(self, dim, correction=correction,
                                                                               keepdim=keepdim),
    "std": lambda self, dim=None, *, correction=None, keepdim=False: torch.std(self, dim, correction=correction,
                                                                               keepdim=keepdim),
}

# Ops the fuzzer leaves out, with the reason; each is tested against torch elsewhere.
UNFUZZED = {
    "_attention_softmax": "fused scale + causal mask + softmax with no torch op of that name (tests/autograd/test_nn_native.py)",
    "_flash_attention": "sdpa's (out, logsumexp) pair with no torch op of that name (tests/autograd/"
                        "test_flash_attention.py: against float64 torch on random shapes, dtypes and layouts)",
    "_flash_attention_backward": "a backward kernel, checked through the gradients of _flash_attention",
    "_fused_adamw_": "torch's fused optimizers take other arguments (tests/autograd/test_fused_optim.py)",
    "_fused_adamw_capturable_": "torch's fused optimizers take other arguments (tests/autograd/test_fused_optim.py, "
                                "tests/cuda/test_graph_training_step.py)",
    "_fused_sgd_": "torch's fused optimizers take other arguments (tests/autograd/test_fused_optim.py)",
    "_foreach_norm": "takes a list of tensors (tests/autograd/test_foreach.py, tests/cuda/test_cuda_foreach.py)",
    "_foreach_mul_": "takes a list of tensors (tests/autograd/test_foreach.py, tests/cuda/test_cuda_foreach.py)",
    "_softmax_backward": "a backward kernel, checked through the gradients of softmax (autograd tests)",
    "gelu_backward": "a backward kernel, checked through the gradients of gelu (autograd tests)",
    "silu_backward": "a backward kernel, checked through the gradients of silu (autograd tests)",
    "native_layer_norm_backward": "a backward kernel, checked through the gradients of layer_norm",
    "native_rms_norm_backward": "a backward kernel, checked through the gradients of rms_norm",
    "native_rms_norm": "no public torch counterpart of the (y, rstd) pair; rms_norm is fuzzed instead",
    "_scatter_into_": "the backend primitive of the scatter family (Note [Scatter op codes]), fuzzed through them",
    # CUDA-only kernels of composite ops, reached (on a GPU fuzz device) through the op that calls them
    "_var_welford": "var/std's CUDA kernel (core/src/ops/cuda/moments.cu), fuzzed through var and std",
    "_pnorm": "norm's CUDA kernel for finite orders (core/src/ops/cuda/moments.cu), fuzzed through norm",
    "_embedding_rows": "embedding's CUDA kernel (core/src/ops/cuda/embedding.cu), fuzzed through embedding",
    "_cross_entropy_rows": "cross_entropy's fused CUDA kernel (core/src/ops/cuda/cross_entropy.cu), fuzzed "
                           "through cross_entropy",
    "_cross_entropy_rows_backward": "a backward kernel, checked through the gradients of cross_entropy",
    "_resample": "F.interpolate's and F.pad's kernel, driven by plans of taps that only they build "
                 "(tests/cuda/test_cuda_resample.py, test_cuda_pad.py, tests/autograd/test_interpolate_*.py, "
                 "test_conv_padding_modes.py)",
    "_resample_backward": "a backward kernel, checked through the gradients of interpolate and pad",
}

# Ops whose values are random (or uninitialised): only dtype, shape and errors are compared.
RANDOM_VALUES = {"uniform_", "normal_", "random_", "empty", "dropout"}


def torch_call(spec: OpSpec):
    if spec.name in TORCH_CALLS:
        return TORCH_CALLS[spec.name]
    if spec.inplace:
        return _method(spec.name)
    for ns in (torch, F, torch.special):
        if hasattr(ns, spec.name):
            return getattr(ns, spec.name)
    if hasattr(torch.Tensor, spec.name):  # a method only (contiguous)
        return _method(spec.name)
    return getattr(torch.ops.aten, spec.name)


def _method(name):
    """Tensor.<name> called on the first argument; a TypeError for a non-Tensor, as torch's functions raise."""
    def method(self, *a, **k):
        if not isinstance(self, torch.Tensor):
            raise TypeError(f"{name}(): argument 'self' must be Tensor, not {type(self).__name__}")
        return getattr(self, name)(*a, **k)
    return method


def vt_call(spec: OpSpec):
    return getattr(vt.ops.vt, spec.name)


def all_specs() -> list[OpSpec]:
    specs = []
    for name in sorted(dir(vt.ops.vt)):
        if name in UNFUZZED:
            continue
        specs.append(parse_schema(getattr(vt.ops.vt, name).schema))
    return specs
