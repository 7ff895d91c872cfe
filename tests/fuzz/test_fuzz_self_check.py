"""The fuzzer finds what it is meant to find: planted faults (a wrong value, an error on one side only, an
error of another kind, a crash-class None in a list) are reported as finds, and its verdict rules hold."""
from __future__ import annotations

import pytest
import torch

import vibetensor.library as vlib
import vibetensor.torch as vt
from fuzz import registry
from fuzz.differential import Find, check, kind
from fuzz.strategies import TensorRecipe, Wrong
from fuzz.test_fuzz_ops import run_op

SPECS = {s.name: s for s in registry.all_specs()}


def t(shape, dtype="float32", layout="contig", values="normal", seed=1):
    return ("tensor", TensorRecipe(tuple(shape), dtype, values, seed, layout))


@pytest.mark.parametrize("fault, expect", [
    (lambda self: vt.ops.vt.neg.redispatch(self) + 1, "values differ|Not equal|Mismatched"),
    (lambda self: vt.ops.vt.neg.redispatch(self).double(), "dtype"),
    (lambda self: (_ for _ in ()).throw(RuntimeError("planted")), "vt raised RuntimeError"),
])
def test_planted_faults_are_found(fault, expect):
    with vlib.Library("vt", "IMPL") as lib:
        lib.impl("neg", fault, "Python")
        with pytest.raises(Find, match=expect):
            run_op(SPECS["neg"], 30, 1, shrink=False)


def test_the_verdict_rules():
    assert kind(ValueError()) == kind(TypeError()) == kind(OverflowError())
    assert kind(NotImplementedError()) == kind(RuntimeError()) != kind(IndexError())
    add_ = SPECS["add_"]
    assert check(add_, (t([3, 3]), ("tensor", TensorRecipe((), "float32", "normal", 0, "alias:t")), ("default", None)),
                 False) == "same"  # both raise the overlap error
    assert check(SPECS["cat"], (("list", (TensorRecipe((2,), "float32", "normal", 0, "contig"), None)),
                                ("default", None)), False) == "same"  # both raise TypeError
    assert check(SPECS["mul"], (t([2, 3]), t([3], layout="step")), True) == "same"  # with backward
    # both refuse a size past int64; torch names the bad device first, vibetensor's parser the size (seed 125)
    verdict = check(SPECS["empty"], (("value", [2**63]), ("value", "float32"), ("value", Wrong("a"))), False)
    assert verdict.startswith("skipped: an int list with a value outside int64"), verdict
    # a 16-bit base near the limit to broadcast integer powers: the gradient's terms overflow (seed 129)
    base = ("tensor", TensorRecipe((), "float16", "extreme", 5, "contig", True))
    verdict = check(SPECS["pow"], (base, ("tensor", TensorRecipe((2,), "uint8", "normal", 0, "contig"))), True)
    assert verdict.startswith("open: gradients through 16-bit values near the limit"), verdict


def test_topk_unsorted_values_in_another_order_are_the_same():
    # torch's CPU kernel leaves k=3 of [4] unsorted (its partition's order), vibetensor sorts them: the same set
    for dtype in ("uint8", "float16", "float32"):
        case = (t([4], dtype, seed=3), ("value", 3), ("value", 0), ("value", False), ("value", False))
        assert check(SPECS["topk"], case, False).startswith("same"), dtype


def test_every_torch_counterpart_resolves():
    for spec in SPECS.values():
        assert callable(registry.torch_call(spec)), spec.name
    assert registry.torch_call(SPECS["add"]) is torch.add
