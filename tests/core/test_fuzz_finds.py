"""Regression tests of the differential fuzzer's long-profile finds (tests/fuzz), one group per class of root
cause. Each case runs on vibetensor and torch (CPU, the oracle): equal results, or both raise the same kind of
exception; with the `cuda` marker vibetensor's tensors are on the GPU.

Classes: checks that ran in another order than torch's, so that another exception kind came out first (gather
and the scatter family, cat, amax/amin, the norms, squeeze, normal_, dropout, device arguments); values that
differed (norm of one element, clamp with a NaN bound, relu/elu gradients at NaN, copy_'s gradient for the
overwritten tensor, dropout with p=1 on integers, scalars that do not fit the dtype, layer_norm parameters of
another dtype, copy_ between empty tensors that do not broadcast); and a crash (arange of 2**63 elements).
"""
from __future__ import annotations

import pytest
import torch

import vibetensor.torch as vt
from helpers import assert_raises_like, assert_same, run_torch

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]
NAN = float("nan")


def differential(fn, device):
    """fn(m, t): t(...) makes a tensor of library m, on `device` for vibetensor."""
    def maker(m):
        def t(*a, **k):
            x = m.tensor(*a, **k)
            return x.to(device) if m is vt and device != "cpu" else x
        return t
    expected, exc = run_torch(lambda m: fn(m, maker(m)))
    if exc is not None:
        return assert_raises_like(exc, lambda: fn(vt, maker(vt)))
    actual = fn(vt, maker(vt))
    assert_same(actual, expected)
    return actual


# ---- check order: the first failing check decides the exception's kind ----
ORDER = {
    # Note [Gather and scatter check order]: the dim first (IndexError), then dtypes, shapes, reduce, overlap
    "gather dim before index dtype": lambda m, t: m.gather(t(True), 1, t(1.5)),
    "gather empty index of any dtype": lambda m, t: m.gather(m.zeros(0, dtype=m.bool), 0, m.zeros(0, dtype=m.bool)),
    "scatter dim before dtypes": lambda m, t: m.scatter(t(True), 1, t(1.5), t(1.5)),
    "scatter_add_ dim before src dtype": lambda m, t: t(3, dtype=m.uint8).scatter_add_(1, t(0), t(True)),
    "scatter_reduce dim before reduce": lambda m, t: m.scatter_reduce(t(True), 1, t(0), t(True), "bogus"),
    "scatter_reduce shape before reduce": lambda m, t: m.scatter_reduce(t([1.0]), 0, t([[0]]), t([1.0]), "bogus"),
    "scatter empty index of any dtype": lambda m, t: m.scatter(t([1.0, 2.0]), 0, t([], dtype=m.float32), t([5.0])),
    "scatter_ dim before overlap": lambda m, t: (lambda x: x.scatter_(1, t(0), x[0]))(t([True])),
    "scatter_ src is self": lambda m, t: (lambda x: x.scatter_(0, t([0]), x))(t([1.0, 2.0])),
    "scatter_ into an expanded self": lambda m, t: t([True]).expand(2).scatter_(0, t([0]), t([True])),
    "scatter src with fewer dims": lambda m, t: m.zeros(1, 1).scatter_(0, m.zeros(1, 1, dtype=m.int64), t([1.0])),
    "scatter src with more dims": lambda m, t: m.zeros(2).scatter_(0, m.zeros(1, dtype=m.int64), m.ones(1, 3)),
    "scatter_ value into bool": lambda m, t: t([True, False]).scatter_(0, t([1]), 0),
    "scatter value into int64": lambda m, t: m.scatter(t([0, 0, 0]), 0, t([1]), 2.5),
    "index_put_ values shape before bounds": lambda m, t: (m.ops.aten if m is torch else m.ops.vt).index_put_(
        t([True]), [t(3)], t([True])),
    "scatter_add_ dim before overlap": lambda m, t: (lambda x: x.scatter_add_(2, t(0), x.t()))(t([[1.0, 2.0]])),
    # every tensor checked for 0-dim before the dim is wrapped
    "cat 0-dim before dim": lambda m, t: m.cat([m.zeros(0, 0), t(1.0), t(2.0)], 2),
    # amax/amin of an empty tensor: each listed dim's size before repeated dims
    "amin empty dim before repeats": lambda m, t: m.amin(m.zeros(0, 0), [0, 0]),
    "amax repeats": lambda m, t: m.amax(m.zeros(2, 3), [1, 1]),
    "squeeze repeated dims": lambda m, t: m.squeeze(m.zeros(0, 0), [0, 0]),
    # Note [Norm check order]: shapes before the dtype
    "rms_norm 0-dim input": lambda m, t: m.nn.functional.rms_norm(t(True), [0]),
    "rms_norm bool": lambda m, t: m.nn.functional.rms_norm(t([True, False]), [2]),
    "layer_norm shape before dtype": lambda m, t: m.nn.functional.layer_norm(t([True, False, True]), [2]),
    "normal_ of an empty bool": lambda m, t: m.zeros(0, dtype=m.bool).normal_(),
    "dropout p=nan": lambda m, t: m.nn.functional.dropout(t([1.0]), NAN, False),
    "dropout p=2": lambda m, t: m.nn.functional.dropout(t([1.0]), 2.0, True),
    "linspace device of a wrong type": lambda m, t: m.linspace(0, 1, 2, device=[1.5]),
    "eye device of a wrong type": lambda m, t: m.eye(2, device={}),
}

# ---- values ----
VALUES = {
    "norm of one element, huge p": lambda m, t: m.norm(t(0.377, dtype=m.float16), 2**31 - 1),
    "norm over a size-1 dim": lambda m, t: m.norm(t([[0.377], [2.0]]), 2**31 - 1, dim=1),
    "norm of one element, p=0": lambda m, t: m.norm(t([[0.377], [0.0]]), 0, dim=1),
    "clamp NaN min": lambda m, t: m.clamp(t([1.0, -2.0]), NAN, 0),
    "clamp NaN max": lambda m, t: m.clamp(t([1.0, -2.0]), 0, NAN),
    "clamp bool NaN min": lambda m, t: m.clamp(t(True), NAN, 0),
    "dropout p=1 on bool": lambda m, t: m.nn.functional.dropout(t([True, False]), 1.0, True),
    "dropout p=1 on int64": lambda m, t: m.nn.functional.dropout(t([3, 4]), 1.0, True),
    "hardtanh bound beyond float16": lambda m, t: m.nn.functional.hardtanh(t([1.0], dtype=m.float16), -2**31, 0),
    "masked_fill_ value beyond uint8": lambda m, t: t([1], dtype=m.uint8).masked_fill_(t([True]),
                                                                                        t(-32768, dtype=m.int16)),
    "linspace end beyond float16": lambda m, t: m.linspace(0, 2**31 - 1, 2, dtype=m.float16),
    "linspace end beyond int8": lambda m, t: m.linspace(0, 1000, 2, dtype=m.int8),
    "linspace one step ends anywhere": lambda m, t: m.linspace(0, 1000, 1, dtype=m.int8),
    "linspace no step": lambda m, t: m.linspace(0, NAN, 0, dtype=m.int64),
    "linspace one step starts beyond": lambda m, t: m.linspace(NAN, 0, 1, dtype=m.int64),
    "hardtanh NaN max": lambda m, t: m.nn.functional.hardtanh(t([1.0, -2.0, NAN], dtype=m.float16), 0, NAN),
    "hardtanh NaN min": lambda m, t: m.nn.functional.hardtanh(t([1.0, -2.0]), NAN, 0),
    "hardtanh NaN input": lambda m, t: m.nn.functional.hardtanh(t([NAN, 5.0, -5.0])),
    "softmax over inf and -inf": lambda m, t: m.softmax(t([[float("inf"), 1.0], [-float("inf"), 2.0]]), 0),
    "softmax of a row with inf": lambda m, t: m.softmax(t([float("inf"), -float("inf"), 0.0]), 0),
    "log_softmax of a row with inf": lambda m, t: m.log_softmax(t([float("inf"), 3.0]), 0),
    "layer_norm bool weight": lambda m, t: m.nn.functional.layer_norm(m.zeros(0, dtype=m.float16), [0],
                                                                      m.zeros(0, dtype=m.bool)),
    "layer_norm float64 weight": lambda m, t: m.nn.functional.layer_norm(t([1.0, 2.0]), [2], t([1.0, 1.0],
                                                                                              dtype=m.float64)),
    "layer_norm float32 weight, float16 input": lambda m, t: m.nn.functional.layer_norm(
        t([1.0, 2.0], dtype=m.float16), [2], t([1.0, 1.0])),
    "layer_norm float32 weight, float16 bias": lambda m, t: m.nn.functional.layer_norm(
        t([1.0, 2.0], dtype=m.float16), [2], t([1.0, 1.0]), t([0.0, 0.0], dtype=m.float16)),
    "pow_ exponent beyond float16": lambda m, t: t([2.0], dtype=m.float16).pow_(2**31 - 1),
    "pow exponent within float16": lambda m, t: t([2.0], dtype=m.float16) ** 3,
    "scatter_ value: dim before the value's cast": lambda m, t: t(3, dtype=m.uint8).scatter_(1, t(0), -1.5),
    "pow_ exponent beyond uint8": lambda m, t: t([2], dtype=m.uint8).pow_(2**31 - 1),
    "uniform_ bound beyond float16": lambda m, t: m.zeros(2, dtype=m.float16).uniform_(0, 1e30),
    "var of an empty tensor": lambda m, t: m.var(m.zeros(0, dtype=m.float16), correction=-1.5),
    "native_layer_norm stats of empty rows": lambda m, t: (m.ops.aten if m is torch else m.ops.vt).native_layer_norm(
        m.zeros(2, 0), [0], None, None, 0.0),
    "slice step 0": lambda m, t: (m.ops.aten.slice.Tensor if m is torch else m.ops.vt.slice)(t([True]), 0, 0, 1, 0),
    "copy_ of empty tensors that do not broadcast": lambda m, t: m.zeros(0, dtype=m.bool).copy_(
        m.zeros(0, 0, dtype=m.bool)),
}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", list(ORDER) + list(VALUES))
def test_matches_torch(case, device):
    differential({**ORDER, **VALUES}[case], device)


def test_device_of_a_wrong_type_is_a_type_error():
    with pytest.raises(TypeError, match="expected a device, str or int, got list"):
        vt.linspace(0, 1, 2, device=[1.5])


# ---- gradients ----
def _relu_(m, x):
    return (x * 1).relu_()


GRADS = {
    "relu at NaN": lambda m, x: m.relu(x),
    "relu_ at NaN": _relu_,
    "elu at NaN": lambda m, x: m.nn.functional.elu(x),
    "copy_ of a bool into a tensor with history": lambda m, x: (x * 1).copy_(m.tensor([True, False, True, True])),
}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", list(GRADS))
@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_gradients_match_torch(case, dtype, device):
    grads = []
    for m in (torch, vt):
        x = m.tensor([NAN, 0.0, -1.0, 2.0], dtype=getattr(m, dtype))
        x = (x.to(device) if m is vt else x).requires_grad_()
        GRADS[case](m, x).double().sum().backward()
        grads.append(x.grad)
    assert grads[1] is not None  # copy_: the overwritten tensor's leaf gets zeros, not None
    assert_same(grads[1].cpu(), grads[0])


def test_float64_gradient_of_a_number_power_stays_float64():
    """x ** (1/3)'s gradient took the exponent minus one as two Python numbers, in float32 (norm with p=3)."""
    grads = []
    for m in (torch, vt):
        x = m.tensor([3.1, -0.8], dtype=m.float64).requires_grad_()
        m.norm(x, 3).backward()
        grads.append(x.grad)
    assert_same(grads[1], grads[0], rtol=1e-12, atol=1e-14)


# ---- a crash: the length of an integer range computed in int64 (INT64_MIN / -1 traps) ----
@pytest.mark.parametrize("args", [(0, -2**63, -1), (1, -2**63 + 1, -1), (-2**63, 2**63 - 1, 1), (0, 1e30, 1),
                                  (0.0, -2.0**63, -1.0)])
def test_arange_too_long_raises(args):
    with pytest.raises(RuntimeError, match="invalid size, possible overflow"):
        vt.arange(*args)
    assert vt.arange(2**63 - 3, 2**63 - 1).tolist() == [2**63 - 3, 2**63 - 2]
