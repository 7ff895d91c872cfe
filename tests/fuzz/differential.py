"""One fuzz case: draw the arguments of an op, run it on vibetensor and on torch, and compare.

The verdict is "same" when both return equal results (dtype, shape, values within the dtype's tolerance, NaNs
equal; for in-place ops also the written tensor; under autograd also the gradients of every leaf), or when both
raise exceptions of the same kind: IndexError; TypeError, ValueError and OverflowError (a bad argument, which
torch itself raises under any of the three names); RuntimeError (NotImplementedError included). Anything else
is a find: a wrong answer, an error on one side only, or errors of different kinds.

Vibetensor raising "not implemented for '<dtype>'" where torch computes is a gap, not a wrong answer: counted
as "gap" (the long profile lists them) but not failed. These outcomes are not finds, by rule:
  * torch having no in-place method of the op's name;
  * torch refusing autograd into a non-floating result (vibetensor computes it without history), or having no
    derivative for the overload called (remainder(Scalar, Tensor)); vibetensor's gradients are gradchecked;
  * one side hitting the fuzzer's memory cap;
  * a Python int in [2**63, 2**64) (torch reads it as a uint64 Scalar, a type vibetensor does not have; beyond
    that both refuse it), and -2**63 in an int list, which torch's SymInt encoding reserves (vibetensor must
    raise too);
  * torch raising "not implemented for '<dtype>'" (torch's CPU kernels cover fewer dtypes than ours; that
    vibetensor computes those is fine; topk's "does not support bool dtypes on CPU" too);
  * under autograd, torch's generated wrapper reading a size of the input before the op's own checks (its
    IndexError, for an op without dim arguments, against the op's RuntimeError, which torch raises too
    without autograd);
  * sort and topk taking tied values in another order (indices and gradients differ, the values agree);
  * torch raising TypeError for a Python number given where a Tensor is taken (vibetensor takes numbers for
    every Tensor argument, as wrapped numbers, torch for some);
  * different values when an in-place op's source overlaps its destination in a layout that neither library
    decides (Note [Memory overlap]): then only "both raise or neither" is compared, since the values depend on
    each library's iteration order.
Finds that stay open, each with its reason, are in OPEN_FINDS below.
"""
from __future__ import annotations

import contextlib
import math
import resource
import warnings

import torch
from hypothesis import strategies as st

import vibetensor.torch as vt
from fuzz import registry, strategies
from fuzz.strategies import (STRINGS, WRONG_TYPES, TensorRecipe, Wrong, build_tensor, int_lists, ints, scalars,
                             tensor_recipes)
from helpers import assert_same, to_numpy, tols


@contextlib.contextmanager
def memory_cap(extra_bytes=4 << 30):
    """Caps this process's address space at its current size plus `extra_bytes` while fuzzing: a drawn shape
    or range of billions of elements then fails to allocate (an error in both libraries, compared as any
    other) instead of filling the machine's memory. The previous limit is restored afterwards."""
    (vt.ones(1 << 20) + 1).sum()  # starts vibetensor's thread pool before the cap (its stacks need address space)
    # and torch's OpenMP team (a parallel elementwise op, a reduction, a GEMM): libgomp aborts the whole process
    # when it cannot create a thread under the cap (the devbox long profile of 2026-12-03, seed 81, died so)
    (torch.ones(1 << 22).exp_() + 1).sum()
    torch.ones(256, 256) @ torch.ones(256, 256)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/status") as f:
        vm = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
    cap = vm + extra_bytes if hard == resource.RLIM_INFINITY else min(vm + extra_bytes, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


class Find(AssertionError):
    """A difference between vibetensor and torch; the message says what, for which arguments."""


_WRONG_TYPE_MESSAGES = ("Expected a value of type", "failed to match any schema",
                        "Expected a proper Tensor but got None")  # torch.ops.aten's word for a None Tensor


def kind(exc: BaseException) -> str:
    """The exception's kind. torch reports a wrong argument type as TypeError from its Python bindings, but as
    AttributeError from Python-level functions and as RuntimeError from torch.ops.aten: all argument errors."""
    if isinstance(exc, IndexError):
        return "IndexError"
    if isinstance(exc, (TypeError, ValueError, OverflowError, AttributeError)) or (
            isinstance(exc, RuntimeError) and any(m in str(exc) for m in _WRONG_TYPE_MESSAGES)):
        return "argument error (TypeError/ValueError)"
    if isinstance(exc, RuntimeError):
        return "RuntimeError"
    return type(exc).__name__


def torch_lacks_dtype(exc: BaseException) -> bool:
    msg = str(exc)
    return ("not implemented for" in msg or "\" not implemented" in msg or "Unsupported dtype" in msg
            or "does not support bool dtypes on CPU" in msg)  # topk


# ---- drawing ----

def rare(draw, n) -> bool:
    """True about once in n + 1 draws. Not `integers(0, n) == 0`: hypothesis favours the ends of a range (its
    simplest examples), which would make every "rare" event happen in most cases."""
    return draw(st.integers(0, n)) == (n + 1) // 2

INDEX_NAMES = {"indices", "target", "index"}
NON_DIFFERENTIABLE_INPLACE = {f"{n}_" for n in ("eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or",
                                                "logical_xor", "bitwise_and", "bitwise_or", "bitwise_xor",
                                                "bitwise_not", "floor_divide", "remainder", "fmod")}
MASK_NAMES = {"mask", "condition"}


@st.composite
def cases(draw, spec: registry.OpSpec):
    """(recipes, autograd): one recipe per schema argument, in order; a keyword-only argument may be left out."""
    # Non-differentiable in-place ops under autograd: torch's engine asserts internally on some (lt_), so they
    # are drawn without it.
    autograd = spec.returns.startswith("Tensor") and rare(draw, 3) and spec.name not in NON_DIFFERENTIABLE_INPLACE
    recipes, base_shape, have_first, positional_left_out = [], None, False, False
    for a in spec.args:
        # Positional arguments go by position (torch's names differ from the schema's), so once one is left
        # to its default, so are the positional ones after it.
        if a.has_default and (rare(draw, 2) or (positional_left_out and not a.kwarg_only)):
            positional_left_out = positional_left_out or not a.kwarg_only
            recipes.append(("default", None))
            continue
        if rare(draw, 40):  # a wrong type on purpose
            recipes.append(("value", Wrong(draw(st.sampled_from(WRONG_TYPES)))))
            continue
        if a.optional and rare(draw, 4):
            recipes.append(("value", None))
            continue
        if a.type == "Tensor":
            r = draw(tensor_recipes(base_shape=base_shape, can_alias=have_first, autograd=autograd,
                                    index_like=a.name in INDEX_NAMES, mask_like=a.name in MASK_NAMES))
            if not have_first and not r.layout.startswith("alias"):
                base_shape, have_first = r.shape, True
            if have_first and len(recipes) > 0 and rare(draw, 9) and not r.layout.startswith("alias"):
                recipes.append(("value", draw(scalars())))  # a Python number where a Tensor is taken
                continue
            recipes.append(("tensor", r))
        elif a.type == "Tensor[]":
            n = draw(st.integers(0, 3))
            elems = []
            for _ in range(n):
                if rare(draw, 7):
                    elems.append(None)  # None inside a list: a TypeError unless the schema takes "Tensor?[]"
                else:
                    index_like = a.name == "indices"
                    elems.append(draw(tensor_recipes(base_shape=base_shape, autograd=autograd, index_like=index_like,
                                                     mask_like=index_like and rare(draw, 3))))
            if not have_first and elems and elems[0] is not None:
                base_shape, have_first = elems[0].shape, True
            recipes.append(("list", tuple(elems)))
        elif a.type == "int":
            recipes.append(("value", draw(ints(a.name))))
        elif a.type == "int[]":
            recipes.append(("value", draw(int_lists(a.name, base_shape))))
        elif a.type == "float":
            recipes.append(("value", draw(st.sampled_from([0.0, 0.5, 1.0, 1e-5, -0.1, 2.0, float("nan"), 1e30]))))
        elif a.type == "bool":
            recipes.append(("value", draw(st.booleans())))
        elif a.type == "Scalar":
            recipes.append(("value", draw(scalars())))
        elif a.type == "ScalarType":
            recipes.append(("dtype", draw(st.sampled_from(["float32", "float64", "int64", "int32", "bool", "float16",
                                                           "uint8", "bfloat16"]))))
        elif a.type == "Device":
            recipes.append(("value", "cpu"))
        elif a.type == "str":
            recipes.append(("value", draw(st.sampled_from(STRINGS.get(a.name, ["none", "bogus"])))))
        else:
            raise AssertionError(f"unknown argument type {a.type} in {spec.schema}")
    return tuple(recipes), autograd


# ---- building and running ----

def _build(spec, recipes, side):
    """(args, kwargs, leaves) on one side."""
    args, kwargs, leaves, first = [], {}, [], None
    for a, (what, r) in zip(spec.args, recipes):
        if what == "default":
            continue
        if what == "tensor":
            v = build_tensor(r, side, first)
            if first is None and not r.layout.startswith("alias"):
                first = v
        elif what == "list":
            v = [None if e is None else build_tensor(e, side) for e in r]
            if first is None and v and v[0] is not None:
                first = v[0]
        elif what == "dtype":
            v = getattr(torch if side == "torch" else vt, r)
        elif a.type == "Device" and r == "cpu" and side == "vt":
            v = strategies.VT_DEVICE
        else:
            v = r.value if isinstance(r, Wrong) else r
        for t in (v if isinstance(v, list) else [v]):
            if isinstance(t, (torch.Tensor, vt.Tensor)) and t.requires_grad and t.is_leaf:
                leaves.append(t)
        if a.kwarg_only:
            kwargs[a.name] = v
        else:
            args.append(v)
    return args, kwargs, leaves


def _as_non_leaf(args, spec):
    """In-place ops under autograd write a non-leaf (writing a leaf that requires grad is an error in both)."""
    if spec.inplace and args and getattr(args[0], "requires_grad", False):
        args[0] = args[0] * 1
    return args


def _run(side, spec, recipes, autograd):
    call = registry.torch_call(spec) if side == "torch" else registry.vt_call(spec)
    args, kwargs, leaves = _build(spec, recipes, side)
    args = _as_non_leaf(args, spec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = call(*args, **kwargs)
        if autograd and leaves:
            outs = out if isinstance(out, (tuple, list)) else [out]
            loss = None
            for o in outs:  # not through outputs of more than 2**24 elements (an expand to 2**63 - 1: torch's
                # sum of it is a wrong 0 in no time, vibetensor's an honest sum that never ends)
                if isinstance(o, (torch.Tensor, vt.Tensor)) and o.requires_grad and o.numel() <= 1 << 24:
                    s = o.sum() if o.dtype in (torch.float64, vt.float64) else o.double().sum()
                    loss = s if loss is None else loss + s
            if loss is not None:
                loss.backward()
        if side == "vt" and strategies.VT_DEVICE != "cpu":
            vt.cuda.synchronize()  # a kernel's out-of-range index is reported here (Note [Deferred kernel errors])
    tensors_after = [a for a in args if isinstance(a, (torch.Tensor, vt.Tensor))]
    grads = [leaf.grad for leaf in leaves]
    return out, tensors_after, grads


def _detach(x):
    if isinstance(x, vt.Tensor):
        return x.detach().cpu()
    if isinstance(x, torch.Tensor):
        return x.detach()
    if isinstance(x, (tuple, list)):
        return [_detach(y) for y in x]
    return x


def _meta(x):
    """dtype and shape only (for ops with random values)."""
    if isinstance(x, (torch.Tensor, vt.Tensor)):
        return (str(x.dtype).split(".")[-1], tuple(x.shape))
    if isinstance(x, (tuple, list)):
        return [_meta(y) for y in x]
    return x


def _oom(exc) -> bool:
    """Allocation failures, thread creation under the cap included."""
    return isinstance(exc, MemoryError) or (exc is not None and any(m in str(exc) for m in (
        "not enough memory", "can't allocate", "out of memory", "Resource temporarily unavailable")))


def _uint64_number(recipes) -> bool:
    return any(w == "value" and isinstance(r, int) and 2**63 <= r < 2**64 for w, r in recipes)


def _int_list_past_int64(recipes) -> bool:
    """An int list holding a value outside int64: both libraries refuse it, each at its own first check (torch
    may name another bad argument first, vibetensor's parser the value)."""
    return any(w == "value" and isinstance(r, (list, tuple)) and any(
        isinstance(e, int) and not isinstance(e, bool) and not -2**63 <= e < 2**63 for e in r) for w, r in recipes)


def _symint_sentinel(exc) -> bool:
    """torch's SymInt reserves -2**63 in an int list ("expected to contain only concrete integers"): torch
    refuses the value itself, so only that vibetensor raises too is compared."""
    return exc is not None and ("expected to contain only concrete integers" in str(exc)
                                or "cannot be represented as a SymInt" in str(exc))


def _number_for_tensor(spec, recipes) -> bool:
    """vibetensor takes a Python number for any Tensor argument (as a wrapped number); torch only for some."""
    def number(r):
        return isinstance(r.value if isinstance(r, Wrong) else r, (int, float))
    return any(a.type == "Tensor" and w == "value" and number(r) for a, (w, r) in zip(spec.args, recipes))


def _overlapping_inplace(spec, recipes) -> bool:
    return spec.inplace and any(w == "tensor" and r.layout.startswith("alias:") and r.layout != "alias:same"
                                for w, r in recipes[1:])


def _arg(spec, recipes, name, default=None):
    for a, (what, r) in zip(spec.args, recipes):
        if a.name == name:
            return default if what == "default" else r
    return default


def _computed_in(spec, recipes):
    """The floating dtype= an op computes in (sum, prod, cumprod, ... with dtype=), or None. Its gradient reaches
    a wider input (float64, say) with that dtype's rounding in it (fuzz seed 121: prod(float64, dtype=float32)'s
    gradient result / x one float32 ulp from torch's, its product rounded otherwise), so results are compared at
    that dtype's tolerance."""
    d = _arg(spec, recipes, "dtype")
    return d if d in ("float32", "float16", "bfloat16") else None


def _tied(spec, recipes, actual, expected) -> bool:
    """sort (unless stable=True) and topk may order equal values either way, so their indices, and the gradients
    that follow them, may differ between the libraries: true when the values agree and vibetensor's indices
    pick torch's values out of self (a tie, not a wrong answer)."""
    if spec.name not in ("sort", "topk") or (spec.name == "sort" and _arg(spec, recipes, "stable") is True):
        return False
    (v_values, v_indices), (t_values, t_indices) = actual[0], expected[0]
    self_t = expected[1][0]
    try:
        assert_same(_detach(v_values), t_values)
        v_indices = torch.from_numpy(to_numpy(v_indices))
        if torch.equal(v_indices, t_indices):
            return False  # no tie taken differently: compared in full
        picked = torch.gather(self_t, _arg(spec, recipes, "dim", -1), v_indices)
    except (AssertionError, RuntimeError, IndexError, TypeError):
        return False
    return bool(((picked == t_values) | (picked != picked) & (t_values != t_values)).all())


def _unordered_topk(spec, recipes, actual, expected) -> bool:
    """topk(sorted=False) returns its k values in no specified order (torch's CPU kernel leaves them as its
    partition ends, vibetensor sorts them): true when the two sides' values agree once sorted and vibetensor's
    indices pick its own values out of self."""
    if spec.name != "topk" or _arg(spec, recipes, "sorted") is not False:
        return False
    (v_values, v_indices), (t_values, _) = actual[0], expected[0]
    self_t = expected[1][0]
    dim = _arg(spec, recipes, "dim", -1)
    try:
        v_cpu = _detach(v_values)
        vv = torch.from_numpy(to_numpy(v_cpu))
        vi = torch.from_numpy(to_numpy(v_indices))
        assert_same(vt.sort(v_cpu, dim)[0], torch.sort(t_values.detach(), dim)[0])  # (vt actual, torch expected)
        picked = torch.gather(self_t.detach(), dim, vi)
    except (AssertionError, RuntimeError, IndexError, TypeError, ValueError):
        return False
    same = (picked == vv.to(picked.dtype)) | (picked != picked) & (vv != vv)
    return bool(same.all())


def describe(spec, recipes, autograd) -> str:
    parts = []
    for a, (what, r) in zip(spec.args, recipes):
        if what == "default":
            continue
        if isinstance(r, TensorRecipe):
            parts.append(f"{a.name}={r.dtype}{list(r.shape)}:{r.values}:{r.layout}{':grad' if r.requires_grad else ''}")
        else:
            parts.append(f"{a.name}={r!r}")
    return f"vt::{spec.name}({', '.join(parts)}){' + backward' if autograd else ''}"


# Finds left open, each with why: the CI profile counts them as "open" instead of failing, the long profile
# lists them with the rest. Keep this short; fix and remove.
OPEN_FINDS = [
    (lambda spec, recipes: spec.name == "norm" and any(w == "tensor" and 0 in r.shape for w, r in recipes)
     and any(w == "value" and isinstance(r, (int, float)) and r < 0 for w, r in recipes[1:2]),
     "norm with a negative p on an empty tensor: torch raises (no identity), vibetensor returns inf"),
    (lambda spec, recipes: spec.name == "cross_entropy" and _unbatched_or_no_classes_beside_extra_dims(recipes),
     "cross_entropy of an unbatched (0-d or 1-d) input, or of 0 classes beside extra dims: torch's paths for these "
     "disagree with its batched one (its backward of a 1-d input refuses a 1-element target, 'size mismatch'; "
     "nll_loss2d fails its own size check on 0 classes or never reads the weight), vibetensor follows the batched "
     "path's checks and results"),
    (lambda spec, recipes: spec.name in ("index", "index_put_") and any(
        w == "list" and all(e is None for e in r) for w, r in recipes),
     "index / index_put_ with no tensor index: torch returns self, fails an internal assert or raises from "
     "masked_fill_ (by the count of Nones), vibetensor raises IndexError (or its overlap error first)"),
    (lambda spec, recipes: spec.name in ("index", "index_put_", "embedding") and _has_empty(recipes[:1]),
     "an out-of-range index into a self with no elements: torch checks bounds in its kernel, which has no "
     "element to visit, vibetensor checks every index"),
    (lambda spec, recipes: spec.name == "elu" and any(
        w == "tensor" and r.requires_grad and r.values == "extreme" and r.dtype in ("float32", "float64")
        for w, r in recipes[:1]),
     "elu's gradient at NaN: torch 2.13 gives NaN (the exponential branch); torch 2.11 (CPU and CUDA) and "
     "vibetensor give the linear branch's 1 (the test x <= 0 is false for NaN)"),
    (lambda spec, recipes: spec.name == "softplus" and any(
        w == "tensor" and r.requires_grad for w, r in recipes[:1]) and (any(
            w == "value" and isinstance(r, (int, float)) and abs(r) > 1e4 for w, r in recipes[1:2]) or any(
            w == "value" and isinstance(r, (int, float)) and not r <= 80 for w, r in recipes[2:3])),
     "softplus's gradient where exp(beta x) overflows below the threshold (a huge beta, or a threshold that is "
     "NaN or past 80): torch's z / (z + 1) is inf / inf = NaN, vibetensor's sigmoid(beta x) is 1"),
    (lambda spec, recipes: spec.name in ("scatter", "scatter_") and len(recipes) > 3 and _has_empty(recipes[2:3])
        and isinstance(recipes[3][1], (int, float)) and not isinstance(recipes[3][1], bool),
     "scatter of a number its dtype cannot hold through an empty index: torch converts the value in its kernel, "
     "which an empty index never runs (a non-empty one raises as vibetensor does); vibetensor checks always"),
    (lambda spec, recipes: spec.name == "fill_" and recipes[0][0] == "tensor" and _numel(recipes[0][1]) == 1,
     "fill_ of a one-element tensor with a value its dtype cannot hold: torch's one-element fast path converts "
     "unchecked (inf), its kernel refuses; vibetensor refuses always"),
    (lambda spec, recipes: spec.name == "full" and recipes[0][0] == "value"
        and isinstance(recipes[0][1], (list, tuple)) and all(isinstance(x, int) for x in recipes[0][1])
        and math.prod(recipes[0][1]) == 1,
     "full of one element with a value its dtype cannot hold: torch fills through the one-element fast path above "
     "(inf), a larger full raises as vibetensor does always"),
    (lambda spec, recipes: spec.name == "linspace" and _arg(spec, recipes, "steps") == 1,
     "linspace of one step from a value its dtype cannot hold: torch fills it through the one-element fast path "
     "above (inf), more steps raise as vibetensor does always"),
    (lambda spec, recipes: spec.name in ("mm", "bmm", "_bmm_nd", "matmul") and _has_empty(recipes) and _dtypes_differ(
        recipes[0], recipes[1]),
     "a matrix product of empty operands of different dtypes: torch's dtype check lives in a kernel that an "
     "empty product never runs, vibetensor checks always"),
    (lambda spec, recipes: spec.name == "logsumexp" and _arg(spec, recipes, "dim") == [],
     "logsumexp with dim=[]: torch 2.13 fails in its own out= resize, vibetensor reduces over every dim as "
     "sum(dim=[]) does"),
    (lambda spec, recipes: spec.name == "norm" and any(w == "tensor" and r.values == "extreme" for w, r in recipes),
     "p-norms of values near the dtype's limit: vibetensor accumulates in float64, torch in float32 (inf or 0)"),
    (lambda spec, recipes: spec.name in ("sub", "sub_") and _arg(spec, recipes, "alpha") == -2**63,
     "sub with alpha=-2**63: torch negates alpha as an int64 (it stays -2**63), vibetensor in the compute type"),
    (lambda spec, recipes: spec.name == "native_layer_norm" and any(
        w == "tensor" and r.dtype in ("float16", "bfloat16") for w, r in recipes[:1]),
     "native_layer_norm's mean/rstd of a 16-bit input: torch's CPU kernel returns them in the input's dtype, its "
     "CUDA kernel (and vibetensor on both) in float32"),
    (lambda spec, recipes: spec.name in ("scatter", "scatter_", "scatter_add", "scatter_add_") and
     recipes[2][0] == "tensor" and
     _numel(recipes[2][1]) <= 1 and recipes[3][0] == "tensor" and (
         recipes[3][1].layout.startswith("alias") or recipes[3][1].requires_grad),
     "scatter's backward with a 0-dim (or 0/1-element) index and a 1-d src: torch's ScatterBackward0 (and "
     "ScatterAddBackward0) returns a gradient of the wrong shape, which its engine refuses"),
    (lambda spec, recipes: spec.name in ("pow", "pow_") and (
        any(w == "value" and isinstance(r, int) and abs(r) > 2**24 for w, r in recipes[1:2]) or
        any(w == "tensor" and r.values == "extreme" and r.dtype in _INTS for w, r in recipes[1:2])),
     "pow with an integer exponent beyond the compute type's integers (2**31 - 1 in float32 is 2**31, even): "
     "torch keeps the exponent exact, vibetensor rounds it to the compute type, which can flip the sign of a "
     "negative base's huge power (inf for -inf)"),
    (lambda spec, recipes: spec.name == "hardtanh" and any(w == "tensor" and r.values == "extreme" and
                                                           r.requires_grad for w, r in recipes),
     "hardtanh's gradient at NaN: torch's kernels give 0 or 1 by dtype and lane, vibetensor 1 (the formula's: "
     "NaN is neither <= min nor >= max)"),
    (lambda spec, recipes: spec.name == "prod" and (any(w == "dtype" and r in ("float16", "bfloat16") for w, r in
                                                         recipes) or any(w == "tensor" and r.dtype in (
                                                             "float16", "bfloat16") for w, r in recipes[:1])),
     "prod into a 16-bit float: torch multiplies in that dtype (rounding every step, inf * 0 = NaN), vibetensor "
     "in float64 and rounds once"),
    (lambda spec, recipes: _float_to_int(spec, recipes),
     "inf, nan or out-of-range floats converted to an integer: undefined in C++; torch returns x86's "
     "'indefinite integer', vibetensor wraps through int64 (the same on the CPU and the GPU)"),
    (lambda spec, recipes: spec.name == "index_put_" and any(w == "tensor" and r.layout.startswith("alias")
                                                            for w, r in recipes[1:]),
     "index_put_ whose values alias self and whose indices are invalid: vibetensor reports the overlap (checked "
     "before any kernel runs), torch the indices"),
    (lambda spec, recipes: spec.name == "im2col" and recipes[0][0] == "tensor" and len(recipes[0][1].shape) < 3,
     "im2col of a tensor of fewer than 3 dims: torch reads a dim past the end before its own rank check "
     "(IndexError), vibetensor raises that check's RuntimeError"),
    (lambda spec, recipes: spec.name == "index_put_" and any(isinstance(r, Wrong) for w, r in recipes),
     "a wrongly typed argument beside invalid indices: vibetensor's schema parser refuses the argument before "
     "the op runs (TypeError), torch's kernel checks the indices first"),
    (lambda spec, recipes: spec.name == "copy_" and recipes[1][0] == "tensor" and
     recipes[1][1].layout.startswith("alias:") and recipes[0][1].layout == "expand",
     "x.copy_(x) of an expanded x: torch returns at once (the same tensor), vibetensor refuses the destination "
     "whose elements share memory before it looks at the source"),
    (lambda spec, recipes: spec.name in ("add", "add_", "sub", "sub_") and any(
        w == "tensor" and r.values == "extreme" and r.dtype in ("float16", "bfloat16") for w, r in recipes),
     "add/sub with alpha of 16-bit values near the limit: torch's CPU kernel rounds alpha * other to the 16-bit "
     "type first (inf), vibetensor computes self + alpha * other in float32 and rounds once"),
    (lambda spec, recipes: spec.name == "norm" and any(w == "value" and isinstance(r, float) and r != r
                                                       for w, r in recipes[1:2]),
     "norm with a NaN order of one element: torch returns NaN for a 0-dim tensor with dim=[0] but |x| for the same "
     "element as a 1-element vector or without dim; vibetensor returns |x| throughout (the one-element rule)"),
    (lambda spec, recipes: spec.name == "to_dtype" and isinstance(recipes[0][1], Wrong),
     "to_dtype of a Python number: torch's counterpart hands the number back, vibetensor converts it to a 0-dim "
     "tensor (it takes a number for every Tensor argument, as a wrapped number)"),
    (lambda spec, recipes: spec.name in ("pow", "pow_") and any(w == "value" and r in (0.5, -0.5) for w, r in recipes[1:2])
        and any(w == "tensor" and r.values == "extreme" for w, r in recipes[:1]),
     "pow with the exponent 0.5 at -inf or -0: torch computes sqrt (NaN, -0), vibetensor C's pow (inf, +0, as "
     "IEEE 754 defines pow); other values agree"),
    (lambda spec, recipes: spec.name == "slice" and isinstance(_arg(spec, recipes, "step"), int)
        and _arg(spec, recipes, "step") > 2**62,
     "slice with a step near 2**63: torch's size formula (end - start + step - 1) / step overflows int64 and its "
     "storage check refuses the negative size; vibetensor computes the size exactly (one element)"),
    (lambda spec, recipes: spec.name == "softmax" and _arg(spec, recipes, "dtype") in ("float16", "bfloat16")
        and any(w == "tensor" and r.requires_grad for w, r in recipes[:1]),
     "softmax into a 16-bit dtype under autograd: the gradient of a sum of softmax outputs is 0 up to rounding "
     "(y * (1 - sum(y)) with sum(y) rounded in 16 bits); torch and vibetensor round the sum differently, so the "
     "noise differs (of the order of 1e-5)"),
    (lambda spec, recipes: spec.name == "arange" and _arg(spec, recipes, "dtype") in ("float16", "bfloat16")
        and any(w == "value" and isinstance(r, (int, float)) and abs(r) > 2**24 for w, r in recipes),
     "arange into a 16-bit float with bounds past float32's integers (2**24): torch computes start + i * step "
     "in float32 (2**31 - 1 + -2**31 is 0), vibetensor in float64 (-1), each rounded to the dtype once"),
    (lambda spec, recipes: spec.name == "arange" and any(
        w == "value" and isinstance(r, int) and abs(r) > 2**62 for w, r in recipes),
     "arange with a step or bound near 2**63: torch's size formula overflows int64 and it raises, vibetensor "
     "computes the size exactly"),
    (lambda spec, recipes: spec.name == "norm" and any(
        w == "value" and isinstance(r, (int, float)) and abs(r) > 1000 for w, r in recipes[1:2]),
     "p-norms with a huge p: torch raises |x| to the p in float32 (inf or 0), vibetensor returns |x| for one "
     "element (the p-norm's value) and computes in float64 otherwise"),
    (lambda spec, recipes: spec.name in ("remainder", "remainder_", "fmod", "fmod_") and any(
        w == "tensor" and r.values == "extreme" for w, r in recipes),
     "remainder and fmod of values near the float limit: torch's vectorised a - b * floor(a / b) overflows to "
     "NaN, vibetensor's fmod-based kernels are exact"),
    (lambda spec, recipes: any(isinstance(r, Wrong) and isinstance(r.value, dict) for w, r in recipes),
     "a dict given for a list argument: torch's parser iterates its keys, vibetensor refuses it (TypeError)"),
    (lambda spec, recipes: spec.name in ("cumprod", "var", "std", "pow") and _extreme_16bit_grad(recipes),
     "gradients through 16-bit values near the limit: where the intermediate products overflow (inf or NaN) "
     "depends on the precision each library computes the formula in (pow of -65504 to [2, 7]: torch rounds each "
     "broadcast term to 16 bits, -inf + inf = NaN; vibetensor sums them first, inf)"),
    (lambda spec, recipes: spec.name == "elu" and any(w == "value" and isinstance(r, float) and r != r
                                                      for w, r in recipes),
     "elu with alpha=NaN at x <= 0: vibetensor returns alpha * (exp(x) - 1), NaN; torch's vectorised kernel "
     "returns -0 for x = -0"),
    (lambda spec, recipes: spec.name == "roll" and isinstance(_arg(spec, recipes, "shifts"), list) and any(
        isinstance(x, int) and abs(x) >= 2**62 for x in _arg(spec, recipes, "shifts")),
     "roll by a shift of 2**62 or more in magnitude (or its negation, in the backward): torch's SymInt arguments hold "
     "no such value ('SymIntArrayRef expected to contain only concrete integers'), vibetensor rolls by the shift "
     "modulo the size"),
    (lambda spec, recipes: spec.name == "expand" and any(
        w == "value" and isinstance(r, list) and 0 in r and any(isinstance(x, int) and x < 0 for x in r)
        for w, r in recipes),
     "expand to a new leading dim of a negative size beside a 0: torch returns a tensor whose size is negative, "
     "vibetensor raises"),
    (lambda spec, recipes: spec.name in ("atan2", "atan2_") and any(
        w == "tensor" and r.values == "extreme" and r.dtype in _INTS for w, r in recipes[:2]) and any(
        w == "tensor" and r.requires_grad for w, r in recipes),
     "atan2's gradient beside an integer operand past 46340: torch squares it in its integer dtype, which wraps "
     "(the gradient's sign and size come out wrong), vibetensor in the gradient's floating dtype (Note [atan2's "
     "integer operand])"),
    (lambda spec, recipes: spec.name in ("atan2", "atan2_") and any(
        w == "tensor" and r.dtype in ("bool", "uint8") for w, r in recipes[:1]) and any(
        w == "tensor" and r.requires_grad for w, r in recipes[1:2]),
     "atan2's gradient for other beside a bool or uint8 self: torch's formula negates self in its own dtype "
     "(-self raises for a bool, wraps for a uint8: self = 2 gives a gradient of 59.8 for -0.47, squares wrap past "
     "15 too), vibetensor computes it in the gradient's floating dtype (Note [atan2's integer operand])"),
    (lambda spec, recipes: spec.name in ("mean", "sum", "nansum", "cumsum") and any(
        w == "tensor" and r.values == "extreme" and r.dtype in ("float16", "bfloat16") for w, r in recipes[:1]),
     "sums of 16-bit values near the limit that cancel: vibetensor accumulates in float64 (the small terms "
     "survive; a running sum that passes the dtype's limit comes back, bfloat16 [3e38, 3e38, -3e38] cumsums to "
     "[3e38, inf, 3e38], the exact prefix sums rounded once), torch in float32 (they are lost beside the large "
     "ones; its running sum stays inf)"),
    (lambda spec, recipes: spec.name.endswith("_backward") and any(
        w == "tensor" and r.values == "extreme" and r.dtype in ("float16", "bfloat16") for w, r in recipes) and len(
        {tuple(r.shape) for w, r in recipes if w == "tensor"}) > 1 and any(
        w == "tensor" and r.requires_grad for w, r in recipes),
     "a backward op's gradient summed over a broadcast of 16-bit values near the limit that cancel (fuzz seed "
     "184: tanh_backward's gradient to output over grad_output [-65504, 1, 65504], exactly 0.79263 in vibetensor, "
     "0.79297 in torch's float32 sum; or one float16 ulp apart where the result is float16)"),
    (lambda spec, recipes: spec.name in ("layer_norm", "native_layer_norm") and any(
        w == "tensor" and r.dtype in ("float16", "bfloat16") for w, r in recipes[:1]),
     "layer_norm of 16-bit inputs: vibetensor sums rows in double (Note [Row sums in double]), so its gradient "
     "of the summed outputs is the exact 0 where torch's CPU kernel returns rounding noise of order 1, and "
     "values near the limit normalise where torch's float variance overflows to NaN"),
    (lambda spec, recipes: spec.name in ("rsqrt", "rsqrt_", "pow_") and any(
        w == "tensor" and r.dtype in ("float16", "bfloat16") for w, r in recipes[:1]) and any(
        w == "tensor" and r.requires_grad for w, r in recipes),
     "16-bit gradients of a chained formula: torch rounds each step to 16 bits (or reads the rounded 16-bit "
     "result), vibetensor computes the formula in float32 and rounds once (3 ulp apart)"),
    (lambda spec, recipes: spec.name in ("scatter", "scatter_") and _has_empty(recipes[:1]),
     "scatter of a value its dtype cannot hold into an empty self: torch's kernel has no element to convert it "
     "for, vibetensor checks the value first"),
    (lambda spec, recipes: spec.name == "as_strided" and any(isinstance(r, Wrong) for w, r in recipes),
     "as_strided with a wrongly typed self: vibetensor's schema parser refuses it first, the fuzzer's torch "
     "composite checks the sizes first"),
    (lambda spec, recipes: spec.name in ("var", "std") and isinstance(_arg(spec, recipes, "correction"), (int, float))
     and _arg(spec, recipes, "correction") >= 1 and any(w == "tensor" and r.requires_grad for w, r in recipes),
     "var's gradient with a correction that leaves no degrees of freedom: torch's closed form gives +-inf, "
     "vibetensor's composite inf - inf = NaN"),
    (lambda spec, recipes: spec.name == "full" and any(w == "value" and r == [] for w, r in recipes[:1]),
     "full of one element with a value its dtype cannot hold: torch's one-element fill converts unchecked (inf), "
     "vibetensor refuses (as fill_ above)"),
    (lambda spec, recipes: spec.name in ("masked_fill", "masked_fill_") and recipes[0][0] == "tensor" and
     recipes[0][1].dtype not in strategies.FLOATS and any(w == "tensor" and r.requires_grad for w, r in recipes[2:]),
     "masked_fill_ of a non-floating self with a value that requires grad: torch fails an internal assert in its "
     "engine ('please report a bug to PyTorch'), vibetensor computes it without history"),
    (lambda spec, recipes: spec.name == "prod" and any(isinstance(r, Wrong) for w, r in recipes),
     "prod with a wrongly typed keepdim: vibetensor's schema parser refuses it first, torch checks the dim first "
     "(and the fuzzer's per-dim composite of torch.prod never reads keepdim for dim=[])"),
    (lambda spec, recipes: spec.name == "index_put_" and _dtypes_differ(recipes[0], recipes[2]),
     "index_put_ with values of another dtype: torch requires equal dtypes, vibetensor casts the values (as "
     "torch's own x[i] = v does before it calls index_put_)"),
    # the long profile of 2026-12-03
    (lambda spec, recipes: spec.name in ("mean", "sum", "nansum") and any(
        w == "tensor" and r.values == "extreme" and r.dtype in _INTS for w, r in recipes[:1]) and any(
        w == "dtype" and r in strategies.FLOATS for w, r in recipes),
     "sums of integers near the int32/int64 limit into a float dtype: vibetensor accumulates in float64 (exact "
     "for int32), torch converts each to the float dtype first (2**31 - 1 + 1 - 2**31 is 0 in float32)"),
    (lambda spec, recipes: spec.name == "rms_norm" and any(
        w == "tensor" and r.values == "extreme" and r.dtype in ("float16", "bfloat16", "float32")
        for w, r in recipes[:1]),
     "rms_norm of values near the float32 or 16-bit limit: torch squares them in float32 (inf: the result is 0), "
     "vibetensor's CPU kernel sums the squares in double (Note [Row sums in double]; about 1)"),
    (lambda spec, recipes: spec.name == "rms_norm" and any(
        w == "tensor" and r.values == "extreme" and r.dtype == "float64" and r.requires_grad for w, r in recipes[:1]),
     "rms_norm's gradient of float64 values near the limit: both forwards overflow the mean of squares (inf, an "
     "output of 0); torch's backward then multiplies inf by 0 at the extreme element (NaN), vibetensor's gives 0"),
    (lambda spec, recipes: spec.name == "copy_" and any(
        w == "value" and isinstance(r, float) and abs(r) >= 2.0 ** 31 for w, r in recipes[1:2]) and any(
        w == "tensor" and r.dtype in ("int8", "int16", "int32", "uint8") for w, r in recipes[:1]),
     "copy_ of a Python float beyond the range of a narrow integer dtype: the conversion is undefined in C++; "
     "torch's x86 build converts to int32 directly (1e30 -> -2**31), vibetensor through int64 (1e30 -> 0), and "
     "CUDA saturates"),
    (lambda spec, recipes: spec.name == "cross_entropy" and any(
        w == "tensor" and a.name == "weight" and r.shape == () for a, (w, r) in zip(spec.args, recipes)),
     "cross_entropy with a 0-dim weight: torch's path for inputs with extra dims (nll_loss2d) takes it when "
     "there is one class and then checks the targets, its 2-d path refuses it ('weight tensor should be defined "
     "either for all 1 classes or no classes') as vibetensor does for every input"),
    (lambda spec, recipes: spec.name in ("mul", "mul_") and len(recipes) > 1 and all(
        w == "tensor" and r.shape in ((), (1,)) for w, r in recipes[:2]) and any(
        w == "tensor" and r.dtype in ("float16", "bfloat16") for w, r in recipes[:1]) and any(
        w == "tensor" and r.values == "extreme" and r.dtype.startswith("int") for w, r in recipes[1:2]),
     "mul of a one-element 16-bit float tensor by a one-element integer tensor that overflows the 16-bit dtype: "
     "torch's one-element path multiplies in float32 (0 * 2**31 - 1 is 0), its vectorised path (two elements or "
     "more) casts the integer to float16 first (inf; 0 * inf is NaN), as vibetensor does for every size"),
    (lambda spec, recipes: spec.name in ("std", "var") and _arg(spec, recipes, "dim") == [] and any(
        w == "tensor" and r.requires_grad for w, r in recipes),
     "std/var over dim=[] (every dim): torch's forward reduces every dim but its backward reads [] as no dim "
     "(gradient 1 or inf per element), vibetensor differentiates the full reduction"),
    (lambda spec, recipes: spec.name in ("sub", "sub_", "add", "add_", "mean", "sum", "nansum", "var", "std",
                                         "cumprod", "prod", "floor_divide", "floor_divide_", "addcmul", "addcmul_",
                                         "addcdiv", "addcdiv_", "lerp", "lerp_") and any(
        w == "tensor" and r.values == "extreme" for w, r in recipes),
     "values near the float limit through a formula torch and vibetensor round in different places (alpha * "
     "other rounded first or fused, sums accumulated in float32 or float64): inf, -inf and NaN land differently"),
    (lambda spec, recipes: spec.name in ("floor_divide", "floor_divide_", "cumprod") and any(
        w in ("tensor", "dtype") and (r in ("float16", "bfloat16") if w == "dtype" else r.dtype in (
            "float16", "bfloat16")) for w, r in recipes),
     "16-bit floor division and products: torch computes the quotient or product in the 16-bit type, vibetensor "
     "in float32 and rounds once (a floor one apart, or a gradient one 16-bit ulp apart)"),
    (lambda spec, recipes: spec.name == "cross_entropy" and isinstance(_arg(spec, recipes, "label_smoothing"), float)
     and not 0.0 <= _arg(spec, recipes, "label_smoothing") <= 1.0,
     "cross_entropy with a label_smoothing outside [0, 1] beside other bad arguments: vibetensor checks "
     "label_smoothing first, torch the batch sizes"),
    (lambda spec, recipes: any(isinstance(r, Wrong) for w, r in recipes) and any(
        w == "value" and isinstance(r, int) and not -2**63 <= r < 2**64 for w, r in recipes),
     "an int past 64 bits beside a wrongly typed argument: vibetensor's schema parser reads the arguments in "
     "order (the int's ValueError first), torch's parser the other one first"),
    (lambda spec, recipes: spec.name == "clamp_tensor" and all(w == "tensor" for w, r in recipes[1:3]) and any(
        w == "tensor" and r.requires_grad for w, r in recipes),
     "clamp with two tensor bounds that broadcast self to more dims, under autograd: torch's backward combines "
     "the two bound masks into self's shape and fails ('output with shape [] doesn't match the broadcast "
     "shape [1]'); vibetensor's gradient is the broadcast one, reduced to self's shape"),
    (lambda spec, recipes: spec.name in ("addcdiv", "addcdiv_") and any(
        w == "tensor" and r.requires_grad for w, r in recipes) and (any(
            w == "tensor" and r.dtype not in ("float16", "bfloat16", "float32", "float64") for w, r in recipes) or (
            isinstance(_arg(spec, recipes, "value"), (int, float)) and abs(_arg(spec, recipes, "value")) > 65504)),
     "addcdiv under autograd beside an integer or bool tensor, or with a value past float16's range: torch's "
     "AddcdivBackward0 refuses (result type Float can't be cast to the desired output type Byte; value cannot be "
     "converted to type c10::Half), vibetensor's gradients are value / tensor2 and its kin in the promoted type"),
    (lambda spec, recipes: spec.name == "expand" and any(
        w == "value" and isinstance(r, list) and any(isinstance(x, int) and x < -1 for x in r) for w, r in recipes),
     "expand to a new leading dim of a size below -1: torch returns a tensor whose size is negative, vibetensor "
     "raises"),
    (lambda spec, recipes: spec.name == "sort" and any(isinstance(r, Wrong) and r.value is None for w, r in recipes),
     "sort with stable=None: torch's Python signature reads None as False, vibetensor's schema takes a bool"),
    (lambda spec, recipes: spec.name == "gelu" and any(
        w == "tensor" and r.values == "extreme" and r.dtype in ("float16", "bfloat16", "float32")
        for w, r in recipes[:1]),
     "gelu of 16-bit or float32 values near the limit: torch's result depends on its path, not the value (torch "
     "2.13's vectorised CPU kernel overflows to inf for float32 x >= ~2e38 where x * Phi(x) is x, its scalar "
     "kernel for strided inputs returns x; torch 2.11 overflowed on both); vibetensor follows the vectorised "
     "kernel's rounding for every layout (Note [gelu rounds as torch's oneDNN])"),
    (lambda spec, recipes: spec.name in ("layer_norm", "native_layer_norm") and any(
        w == "tensor" and r.values == "extreme" and r.dtype == "float32" for w, r in recipes[:1]),
     "layer_norm of float32 values near the limit: torch's variance overflows float32 (NaN), vibetensor's CPU "
     "kernel sums rows in double (Note [Row sums in double]) and normalises them"),
    (lambda spec, recipes: spec.name in ("layer_norm", "native_layer_norm") and any(
        w == "tensor" and r.values == "extreme" and r.dtype == "float64" for w, r in recipes[:1]),
     "layer_norm of float64 values near the limit: torch's one-pass variance (E[x^2] - mean^2) overflows to "
     "inf - inf = NaN, vibetensor's two-pass centred sum gives a one-element row its exact 0 (a row whose centred "
     "squares overflow gives 0 there, NaN in torch: neither is the +-1 of exact arithmetic)"),
    (lambda spec, recipes: _broadcast_grad_beside_extreme_ints(recipes),
     "the gradient of an operand broadcast against integers near their limit (fuzz seed 111: tanh_backward's 0-dim "
     "output against int16 +-32768): a sum of float32 terms of order 1e5 that cancel, each library rounding the "
     "terms in its own way (5 of 2000 such draws differed past the fuzzer's tolerance, both within the terms' "
     "float32 rounding of the float64 sum)"),
    (lambda spec, recipes: spec.name in ("add", "add_", "sub", "sub_") and _arg(spec, recipes, "alpha") not in (
        None, 1) and any(w == "tensor" and r.dtype in ("float16", "bfloat16") for w, r in recipes[:1]) and any(
        w == "tensor" and r.shape == () for w, r in recipes[1:2]),
     "a 16-bit tensor plus or minus alpha times a 0-dim tensor (fuzz seed 185): torch's CPU kernel rounds alpha * "
     "other to the 16-bit dtype before it adds (3 * 1.609375 = 4.828125 becomes 4.8125 in bfloat16, so -5.125 + "
     "it gives -0.3125), vibetensor adds in float32 and rounds once (-0.296875, the exact sum's rounding)"),
    (lambda spec, recipes: spec.name in ("mm", "bmm", "_bmm_nd", "matmul", "_linear_bias",
                                         "_linear_weight_bias_grad") and any(
        w == "tensor" and r.values == "extreme" for w, r in recipes),
     "matrix products of values near the float limit: vibetensor's GEMM kernels fuse each multiply into its add "
     "(3e38 * 2 + -3e38 * 1.5 is inf + -4.5e38 = inf), torch's round each product first (inf + -inf = NaN)"),
    (lambda spec, recipes: spec.name == "_linear_bias" and (recipes[0][1].layout != "contig" or (
        len(recipes) > 2 and recipes[2][1].layout == "step")) and len({
        recipes[0][1].dtype if r.layout.startswith("alias") else r.dtype for w, r in recipes if w == "tensor"}) > 1,
     "linear whose operands' dtypes differ, with an input whose batch dims do not fold into one or a strided bias: "
     "torch's path for those layouts (matmul, then an add) promotes the bias (a float64 bias of a float32 linear "
     "gives float32; a strided bool bias of a uint8 linear gives uint8), its addmm path for a foldable input and "
     "a contiguous bias raises as vibetensor does always"),
    (lambda spec, recipes: spec.name in ("div", "div_") and any(w == "value" and r == "trunc" for w, r in recipes)
        and any(w == "tensor" and r.dtype in ("float16", "bfloat16") for w, r in recipes[:2]),
     "div with rounding_mode='trunc' of 16-bit tensors: torch's CPU kernel rounds the quotient to the 16-bit "
     "dtype before truncating (3.68 / -0.02556 = -143.97 becomes -144), vibetensor truncates the float quotient "
     "(-143)"),
    # the H200 long profiles of 2026-12-03 (torch 2.11 there; vibetensor on the GPU for two of them)
    (lambda spec, recipes: spec.name in ("clamp", "clamp_") and _TORCH_BEFORE_2_13 and any(
        w == "value" and isinstance(r, float) and r != r for w, r in recipes[1:]),
     "clamp with a NaN bound (seen with torch 2.11): torch 2.11's in-place 16-bit kernel leaves self unchanged, "
     "torch 2.13 and vibetensor return NaN"),
    (lambda spec, recipes: spec.name in ("std", "var") and any(
        w == "tensor" and r.dtype in ("float16", "bfloat16") and r.requires_grad for w, r in recipes[:1]),
     "16-bit gradients of std/var: torch's CPU kernel rounds the mean, the deviation and the std to 16 bits "
     "(0.7114 and -0.7031 for the two-element [a, b], 9 ulp off), vibetensor computes in float32 and rounds "
     "once (+-0.7071, the exact 1/sqrt(2))"),
    (lambda spec, recipes: spec.name in ("mul", "mul_", "div", "div_", "floor_divide", "floor_divide_") and
     strategies.VT_DEVICE != "cpu" and any(
        w == "tensor" and r.dtype in ("float16", "bfloat16") for w, r in recipes[:1]) and any(
        w == "tensor" and r.shape == () and r.dtype not in ("float16", "bfloat16") for w, r in recipes[1:2]),
     "a 16-bit tensor times or over a 0-dim tensor of a wider dtype, on the GPU: torch's CPU kernel (the oracle) "
     "reads a CPU 0-dim operand in float32 (Note [Opmath scalars]); a 0-dim operand on the GPU is cast to the "
     "16-bit common dtype first by torch's CUDA kernel and by vibetensor's (2**31 - 1 becomes inf)"),
    (lambda spec, recipes: spec.name == "rms_norm" and any(
        w == "tensor" and r.dtype in ("float16", "bfloat16") for w, r in recipes[:1]) and any(
        w == "tensor" and r.dtype in ("float32", "float64") for w, r in recipes[2:3]),
     "rms_norm of a 16-bit input with a float32 or float64 weight: the normalised input is rounded to 16 bits "
     "before the weight multiplies it in both, but torch's weight gradient sums g * x_hat with x_hat in float32, "
     "vibetensor with the rounded x_hat (within a 16-bit ulp)"),
]


_TORCH_BEFORE_2_13 = tuple(int(x) for x in torch.__version__.split(".")[:2]) < (2, 13)


def _numel(r) -> int:
    n = 1
    for d in r.shape:
        n *= d
    return n


def _has_empty(recipes) -> bool:
    return any(w == "tensor" and not r.layout.startswith("alias") and 0 in r.shape for w, r in recipes)


_INTS = ("uint8", "int8", "int16", "int32", "int64")


def _float_to_int(spec, recipes) -> bool:
    """A float tensor of extreme values, and an integer result: a dtype= argument or an integer self written."""
    floats = any(w == "tensor" and r.values == "extreme" and r.dtype in strategies.FLOATS for w, r in recipes) or any(
        w == "value" and isinstance(r, float) and not math.isfinite(r) for w, r in recipes[1:])  # copy_(x, nan)
    to_int = any(w == "dtype" and r in _INTS for w, r in recipes) or (
        spec.inplace and recipes[0][0] == "tensor" and recipes[0][1].dtype in _INTS)
    return floats and to_int


def _dtypes_differ(a, b) -> bool:
    (wa, ra), (wb, rb) = a, b
    return wa == "tensor" and wb == "tensor" and not rb.layout.startswith("alias") and ra.dtype != rb.dtype


def _extreme_16bit_grad(recipes) -> bool:
    return any(w == "tensor" and r.values == "extreme" and r.dtype in ("float16", "bfloat16") and r.requires_grad
               for w, r in recipes)


def _broadcast_grad_beside_extreme_ints(recipes) -> bool:
    tensors = [r for w, r in recipes if w == "tensor" and not r.layout.startswith("alias")]
    ints = [math.prod(r.shape) for r in tensors if r.values == "extreme" and r.dtype in _INTS]
    return bool(ints) and any(r.requires_grad and math.prod(r.shape) < max(ints) for r in tensors)


def _unbatched_or_no_classes_beside_extra_dims(recipes) -> bool:
    w, r = recipes[0]
    return w == "tensor" and not r.layout.startswith("alias") and (
        len(r.shape) < 2 or (len(r.shape) >= 3 and r.shape[1] == 0))


def check(spec: registry.OpSpec, recipes, autograd) -> str:
    """Runs one case; returns "same", "skipped: <why>", "open: <why>" or raises Find."""
    try:
        return _check(spec, recipes, autograd)
    except Find:
        for matches, why in OPEN_FINDS:
            if matches(spec, recipes):
                return f"open: {why}"
        raise


def _check(spec: registry.OpSpec, recipes, autograd) -> str:
    what = describe(spec, recipes, autograd)
    try:
        expected = _run("torch", spec, recipes, autograd)
        t_exc = None
    except Exception as e:  # noqa: BLE001
        t_exc = e
    if t_exc is not None and torch_lacks_dtype(t_exc):
        return "skipped: torch lacks the dtype"
    if isinstance(t_exc, AttributeError) and "'Tensor' object has no attribute" in str(t_exc):
        return "skipped: torch has no such in-place method"
    if autograd and t_exc is not None and (
            ("derivative for" in str(t_exc) and "is not implemented" in str(t_exc))
            or "is not differentiable with respect to argument" in str(t_exc)):
        return "skipped: torch has no derivative for this overload (vibetensor's gradients are checked elsewhere)"
    if t_exc is not None and "Autograd not support dtype" in str(t_exc):
        return "skipped: torch refuses autograd into a non-floating dtype (vibetensor drops the history)"
    if t_exc is not None and kind(t_exc).startswith("argument") and _number_for_tensor(spec, recipes):
        return "skipped: a number where torch's signature takes only a Tensor"
    if isinstance(t_exc, registry.TorchWouldTrap):
        return f"skipped: {t_exc}"
    if _uint64_number(recipes):
        return "skipped: a Python int in [2**63, 2**64) (torch reads it as uint64, which vibetensor lacks)"
    try:
        actual = _run("vt", spec, recipes, autograd)
        v_exc = None
    except Exception as e:  # noqa: BLE001
        v_exc = e
    if _oom(v_exc) or _oom(t_exc):
        return "skipped: the fuzzer's memory cap was hit"
    if v_exc is not None and t_exc is None and torch_lacks_dtype(v_exc):
        return "gap: vibetensor lacks the dtype"
    if autograd and isinstance(t_exc, IndexError) and isinstance(v_exc, RuntimeError) and not any(
            "dim" in a.name for a in spec.args):  # an op without dim arguments: the IndexError is the wrapper's
        return "skipped: torch's autograd wrapper read a size of the input before the op's own checks"
    if t_exc is not None and v_exc is None and strategies.VT_DEVICE != "cpu" and "ZeroDivisionError" in str(t_exc):
        return ("skipped: integer division by zero on the GPU (torch's CPU kernel checks; its CUDA kernel, as "
                "vibetensor's, does not, to avoid a host sync)")
    if isinstance(t_exc, RuntimeError) and isinstance(v_exc, TypeError) and any(m in str(t_exc) for m in (
            "not found in Tensor[", "look up dimensions by name", "passed a dimname")):
        return ("skipped: a str (or None) dim, which torch before 2.13 reads as a dimension name (2.13 raises "
                "TypeError)")
    if _symint_sentinel(t_exc) and v_exc is not None:
        return "skipped: -2**63 in an int list (torch's SymInt cannot hold it); vibetensor raised too"
    if t_exc is not None and v_exc is not None and _int_list_past_int64(recipes):
        return "skipped: an int list with a value outside int64; both raised, each at its own first check"
    if t_exc is not None or v_exc is not None:
        if t_exc is None:
            raise Find(f"{what}: vt raised {type(v_exc).__name__}: {v_exc}; torch returned a result")
        if v_exc is None:
            raise Find(f"{what}: torch raised {type(t_exc).__name__}: {t_exc}; vt returned a result")
        if kind(t_exc) != kind(v_exc):
            raise Find(f"{what}: vt raised {type(v_exc).__name__}: {v_exc}; torch raised "
                       f"{type(t_exc).__name__}: {t_exc}")
        return "same"
    if spec.name in registry.RANDOM_VALUES:
        actual, expected = _meta(actual[0]), _meta(expected[0])
        if actual != expected:
            raise Find(f"{what}: vt gave {actual}, torch {expected}")
        return "same"
    if _overlapping_inplace(spec, recipes):
        return "skipped: undecidable overlap, both ran"
    if _tied(spec, recipes, actual, expected):
        return "same (tied values: either index is right, and the gradients follow it)"
    if _unordered_topk(spec, recipes, actual, expected):
        return "same (topk with sorted=False: the same values and indices in another order)"
    if _largest(actual) > 1 << 24 or _largest(expected) > 1 << 24:  # an expand to 2**31 elements, say
        if _meta(actual[0]) != _meta(expected[0]):
            raise Find(f"{what}: vt gave {_meta(actual[0])}, torch {_meta(expected[0])}")
        return "same (dtype and shape: too large to compare by value)"
    narrow = _computed_in(spec, recipes) if autograd else None
    tol = dict(zip(("rtol", "atol"), tols(narrow))) if narrow else {}
    try:
        assert_same(_detach(list(actual)), _detach(list(expected)), msg=f"{what}: ", **tol)
    except AssertionError as e:
        raise Find(str(e)[:2000]) from None
    except (ValueError, MemoryError):  # a shape NumPy cannot hold, e.g. [0, 2**63 - 1]
        if _meta(actual[0]) != _meta(expected[0]):
            raise Find(f"{what}: vt gave {_meta(actual[0])}, torch {_meta(expected[0])}") from None
        return "same (dtype and shape: NumPy cannot hold the shape)"
    return "same"


def _largest(x) -> int:
    if isinstance(x, (torch.Tensor, vt.Tensor)):
        return x.numel()
    if isinstance(x, (tuple, list)):
        return max((_largest(y) for y in x), default=0)
    return 0


def fuzz_property(spec, stats=None):
    """The hypothesis test body for one op."""
    def body(data):
        recipes, autograd = data.draw(cases(spec))
        verdict = check(spec, recipes, autograd)
        if stats is not None:
            stats[verdict] = stats.get(verdict, 0) + 1
    return body

