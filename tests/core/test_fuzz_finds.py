"""Regression tests of the differential fuzzer's long-profile finds (tests/fuzz), one group per class of root
cause. Each case runs on vibetensor and torch (CPU, the oracle): equal results, or both raise the same kind of
exception; with the `cuda` marker vibetensor's tensors are on the GPU.

Classes: checks that ran in another order than torch's, so that another exception kind came out first (gather
and the scatter family, cat, amax/amin, the norms, squeeze, normal_, dropout, device arguments); values that
differed (norm of one element, clamp with a NaN bound, relu/elu gradients at NaN, copy_'s gradient for the
overwritten tensor, dropout with p=1 on integers, scalars that do not fit the dtype, layer_norm parameters of
another dtype, copy_ between empty tensors that do not broadcast); and a crash (arange of 2**63 elements).
From the long profile of 2026-12-02: cross_entropy's target shapes, gradients of cat of legacy empties and of
scatter_add into a 0-dim self, one-step linspace, rms_norm's rank check, float32 rows of a layer norm, 16-bit
products and quotients by numbers past the 16-bit range (Note [Opmath scalars]), the 16-bit std, and the two
orders in which torch's reductions check their dim lists.
"""
from __future__ import annotations

import numpy as np
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
    "scatter src with fewer dims": lambda m, t: t([[0.0]]).scatter_(0, t([[0]]), t([1.0])),
    "scatter src with more dims": lambda m, t: t([0.0, 0.0]).scatter_(0, t([0]), t([[1.0, 1.0, 1.0]])),
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


# ---- the long profile's round of 2026-12-02 (16 rounds, 165,011 cases) ----
CROSS_ENTROPY_TARGETS = [((1, 1), (1, 0)), ((2, 3), (2, 1)), ((1, 1, 1), (1,)), ((2, 3, 4), (2, 5)),
                         ((2, 3, 4), (2, 4)), ((3,), ()), ((3,), (3,)), ((0, 3, 2), (0, 2))]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shapes", CROSS_ENTROPY_TARGETS, ids=str)
def test_cross_entropy_target_shapes(shapes, device):
    """Targets of the wrong rank or trailing shape raised ValueError, or indexed with the wrong dims (IndexError),
    where torch raises RuntimeError naming the expected target size."""
    (ni, nt) = shapes
    differential(lambda m, t: m.nn.functional.cross_entropy(
        t(torch.linspace(-1, 1, max(1, int(torch.tensor(ni).prod()))).reshape(ni).tolist()),
        t(torch.zeros(nt, dtype=torch.long).tolist(), dtype=m.int64)), device)


def test_legacy_empty_cat_gradient():
    """cat of only 1-D empty tensors takes any dim (torch's legacy rule); its backward wrapped dim against the
    tensors' rank and raised."""
    for m in (torch, vt):
        x = m.zeros(0, dtype=m.float16, requires_grad=True)
        m.cat([x], dim=1).sum().backward()
        assert tuple(x.grad.shape) == (0,)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("index_len", [0, 1])
def test_scatter_add_gradient_of_a_0_dim_src(index_len, device):
    """A 0-dim src beside a 1-d index: the src gradient was narrowed along a dim the 0-dim tensor lacks."""
    grads = []
    for m in (torch, vt):
        src = m.tensor(2.0, dtype=m.float16)
        src = (src.to(device) if m is vt else src).requires_grad_()
        index = m.zeros(index_len, dtype=m.int64)
        m.scatter_add(m.zeros((), dtype=m.float16).to(src.device), 0, index.to(src.device), src).sum().backward()
        grads.append(src.grad)
    assert_same(grads[1].cpu(), grads[0])


@pytest.mark.parametrize("start", [2**63 - 1, -2**63, 2**53 + 1])
def test_linspace_of_one_step_is_exactly_start(start):
    """One step of an int64 linspace went through a double: 2**63 - 1 came back as -2**63."""
    assert vt.linspace(start, 0, 1, dtype=vt.int64).tolist() == torch.linspace(start, 0, 1, dtype=torch.int64).tolist()


def test_rms_norm_rank_check_is_a_value_error():
    """torch's rms_norm rejects a normalized_shape longer than the input with ValueError (layer_norm with
    RuntimeError); vibetensor raised RuntimeError for both."""
    for m in (torch, vt):
        with pytest.raises(ValueError, match="at least 2 dimensions"):
            m.nn.functional.rms_norm(m.zeros(0), [0, 0])
        with pytest.raises(RuntimeError):
            m.nn.functional.layer_norm(m.zeros(0), [0, 0])


def test_layer_norm_float32_rows_summed_accurately():
    """A float32 row of 1,500 summed in order was 2e-6 off relative (a CI failure of the differential test);
    rows are summed in double now (Note [Row sums in double])."""
    g = torch.Generator().manual_seed(877387636)
    x = torch.randn(64, 1500, generator=g) * 3 + 1
    w, b = torch.randn(1500, generator=g), torch.randn(1500, generator=g)
    expected = torch.nn.functional.layer_norm(x.double(), [1500], w.double(), b.double())
    actual = vt.nn.functional.layer_norm(vt.tensor(x.tolist()), [1500], vt.tensor(w.tolist()), vt.tensor(b.tolist()))
    err = (torch.tensor(actual.tolist(), dtype=torch.float64) - expected).abs().max().item()
    assert err < 3e-6, err  # the in-order float sum: 6.4e-6; torch: 1.5e-6


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("expr", ["x * 70000", "70000 * x", "x / 70000", "x.mul(vt_or_t.tensor(70000))",
                                  "x * 1e-30", "x / 3.3e38", "x.mul_(70000)", "x.div_(70000)", "x * 2147483647"])
def test_16_bit_times_a_number_reads_it_in_opmath(expr, dtype, device):
    """Note [Opmath scalars]: a number past the 16-bit range was rounded to inf first (0.5 * 70000 gave inf, 0 *
    70000 NaN), where torch multiplies and divides by the number in float32."""
    def fn(m, t):
        x = t([0.5, 0.0, -60000.0, 3.0, 1e-3], dtype=getattr(m, dtype))
        return eval(expr, {"x": x, "vt_or_t": m})
    differential(fn, device)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("expr", ["x * t.tensor([[2147483647]], dtype=t.int32)", "x.mul_(t.tensor([[[70000]]]))",
                                  "x / t.tensor([70000])", "x // t.tensor([3], dtype=t.int16)",
                                  "x.reshape(1, 5, 1) * t.tensor([[[2147483647]]], dtype=t.int32)"])
def test_16_bit_times_a_one_element_tensor_reads_it_in_opmath(expr, dtype):
    """Note [Opmath scalars] for a one-element CPU tensor with dims, which torch's CPU kernel also reads as a
    scalar in float32 (fuzz seed 188: a float16 zero times an int32 [[[2**31 - 1]]] is 0, not 0 * inf = NaN)."""
    def fn(m, t):
        x = t([0.5, 0.0, -60000.0, 3.0, 1e-3], dtype=getattr(m, dtype))
        return eval(expr, {"x": x, "t": m})
    differential(fn, "cpu")


@pytest.mark.parametrize("device", DEVICES)
def test_16_bit_std_takes_the_root_before_rounding(device):
    """std of float16 values near the limit: the variance (1e9) overflowed float16 before the root (32752)."""
    differential(lambda m, t: [m.std(t([65504.0, -0.0], dtype=m.float16), correction=0),
                               m.var(t([65504.0, -0.0], dtype=m.float16)),
                               m.std(t([1.0, 2.0, 4.0], dtype=m.bfloat16), 0)], device)


@pytest.mark.parametrize("name", ["std", "var", "sum", "mean", "norm"])
def test_reduction_dim_list_check_order(name):
    """var, std and norm check each dim in turn (a repeated dim before a later one out of range: RuntimeError),
    sum and mean every range first (IndexError), as torch's do."""
    def fn(m, t):
        x = m.zeros(0, 0, 3)
        return m.norm(x, 2, dim=[0, 0, 3]) if name == "norm" else getattr(m, name)(x, [0, 0, 3])
    differential(fn, "cpu")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
def test_rms_norm_default_eps_is_the_compute_types(dtype, device):
    """rms_norm's default eps for a 16-bit input is float32's epsilon, as torch computes in float32; float16's
    2**-10 turned rms_norm([0.38]) into 0.9966 instead of 1."""
    differential(lambda m, t: [m.nn.functional.rms_norm(t([0.38], dtype=getattr(m, dtype)), [1]),
                               m.nn.functional.rms_norm(t([0.38, 0.01], dtype=getattr(m, dtype)), [2])], device)


@pytest.mark.parametrize("device", DEVICES)
def test_small_rules_of_the_second_round(device):
    """clamp with bounds of two 16-bit dtypes promotes all three at once (float32, not float16); std with a
    NaN correction divides by max(0, N - NaN) = 0 as torch's (inf); sub checks alpha's negation against the
    result dtype (int32 refuses -2**31)."""
    differential(lambda m, t: m.clamp(t([True, False]), t(0.5, dtype=m.float16), t(0.75, dtype=m.bfloat16)), device)
    differential(lambda m, t: m.std(t([1.0, 2.0], dtype=m.float16), correction=NAN), device)
    differential(lambda m, t: m.sub(t(3, dtype=m.int32), t(2, dtype=m.uint8), alpha=-2**31), device)
    differential(lambda m, t: m.sub(t(3, dtype=m.int32), t(2, dtype=m.uint8), alpha=2**31 - 1), device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("value", [float("inf"), 0.0, -3.0])
def test_cumprod_gradient_of_one_element(value, device):
    """cumprod of one element is the identity; its gradient was (g * out) / x = inf / inf = NaN at x = inf."""
    grads = []
    for m in (torch, vt):
        x = m.tensor([value])
        x = (x.to(device) if m is vt else x).requires_grad_()
        m.cumprod(x, 0).sum().backward()
        grads.append(x.grad)
    assert_same(grads[1].cpu(), grads[0])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("alpha", [float("inf"), -float("inf"), NAN, 0.0, -2.0, 1.0])
@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_elu_keeps_zeros_for_any_alpha(alpha, dtype, device):
    """elu is x at +-0 (and NaN) for every alpha, as torch's: alpha * expm1(0) was NaN for an infinite alpha
    (the long profile of 2026-12-03, float16 0-dim with alpha=inf)."""
    differential(lambda m, t: m.nn.functional.elu(t([0.0, -0.0, -1e-3, 0.5, NAN], dtype=getattr(m, dtype)),
                                                  alpha=alpha), device)
    differential(lambda m, t: m.nn.functional.elu(t(0.0, dtype=getattr(m, dtype)), alpha=alpha), device)


CLAMP_MIXED = {
    # a 0-dim tensor beside a number is read as a number (torch's Scalar overload): float32 for a bool input
    "bool, 0-dim float16, float": lambda m, t: m.clamp(t([True, False]), t(0.75, dtype=m.float16), 0.5),
    "0-dim bool, float, 0-dim float16": lambda m, t: m.clamp(t(True), 1.5, t(0.5, dtype=m.float16)),
    "int32, 0-dim float16, int": lambda m, t: m.clamp(t([1, 7], dtype=m.int32), t(2.5, dtype=m.float16), 5),
    "bfloat16 input keeps its dtype": lambda m, t: m.clamp(t([1.0, 9.0], dtype=m.bfloat16), t(2.0, dtype=m.float16), 3),
    "int8, 0-dim float, int": lambda m, t: m.clamp(t([1, 5], dtype=m.int8), t(2.5), 3),
    "method, max 0-dim": lambda m, t: t([1.0, 5.0]).clamp(0, t(3.0)),
    "in place": lambda m, t: t([1.0, 5.0]).clamp_(t(2.0), 3),
    # a tensor with dims beside a number: torch's TypeError
    "1-d bound beside a number": lambda m, t: m.clamp(t([1.0, 5.0]), t([2.0]), 3),
    "1-d bound beside a number, in place": lambda m, t: t([1.0, 5.0]).clamp_(t([2.0]), 3),
}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", list(CLAMP_MIXED))
def test_clamp_with_a_tensor_and_a_number_bound(case, device):
    """torch's argument parser picks clamp's Scalar overload when one bound is a number, reading a 0-dim tensor
    bound as its value (a find of the long fuzz profile of 2026-12-03: bool input, float16 0-dim bound and a
    number computed in float16 instead of float32)."""
    differential(CLAMP_MIXED[case], device)


ROUND_OF_2026_12_03 = {
    # Note [Integral arange bounds]: int64 counts from truncated bounds, other integer dtypes from the doubles
    "arange int64 truncates the bounds": lambda m, t: m.arange(-1.5, 0, dtype=m.int64),
    "arange int64 truncates the step": lambda m, t: m.arange(0, 5, 1.5, dtype=m.int64),
    "arange int32 counts from the doubles": lambda m, t: m.arange(-1.5, 0, dtype=m.int32),
    "arange int16 with a fractional step": lambda m, t: m.arange(0.5, 5, 1.5, dtype=m.int16),
    "arange uint8 from a negative start": lambda m, t: m.arange(-1.5, 0, dtype=m.uint8),
    "arange int64 empty after truncation": lambda m, t: m.arange(-0.5, 0.2, dtype=m.int64),
    # a step whose product with the stride leaves int64 (torch: a negative stride it refuses)
    "slice step times stride overflows": lambda m, t: m.zeros(0, 2, dtype=m.bool)[0:0:2**63 - 1],
    "slice step times stride overflows (non-empty)": lambda m, t: m.zeros(4, 2)[::2**63 - 1],
    # bfloat16's largest finite value (3.3895e38) is below float32's: 3.39e38 does not fit, inf does
    "masked_fill_ bfloat16 past its max": lambda m, t: t([0.0, 1.0], dtype=m.bfloat16).masked_fill_(
        t([True, False]), t(3.39e38)),
    "masked_fill_ bfloat16 at its max": lambda m, t: t([0.0, 1.0], dtype=m.bfloat16).masked_fill_(
        t([True, False]), t(3.3895313892515355e38)),
    "fill_ bfloat16 past its max": lambda m, t: t([0.0, 1.0], dtype=m.bfloat16).fill_(3.39e38),
    "full bfloat16 with inf": lambda m, t: m.full((2,), float("inf"), dtype=m.bfloat16),
    # torch.norm's string orders other than "fro"
    "norm with an unknown order": lambda m, t: m.norm(t([[1.0, 2.0]]), p="a"),
    "norm with the string inf": lambda m, t: m.norm(t([[1.0, 2.0]]), p="inf"),
    "norm fro over a dim": lambda m, t: m.norm(t([[1.0, 2.0], [3.0, 4.0]]), p="fro", dim=0),
    # both clamp bounds given and one NaN: every element NaN, the other bound never converted (no overflow)
    "clamp_ float16 with a NaN min and a huge max": lambda m, t: t([0.377, 2.0], dtype=m.float16).clamp_(
        min=NAN, max=2**31 - 1),
    "clamp of ints with a NaN min": lambda m, t: m.clamp(t([1, 2]), min=NAN, max=5),
    "clamp with a NaN max": lambda m, t: m.clamp(t([0.5, NAN]), min=0, max=NAN),
}


@pytest.mark.parametrize("device", DEVICES)
def test_arange_int64_step_truncated_to_zero_is_refused(device):
    """arange(0, 3, 0.5, dtype=int64) steps by int64(0.5) = 0: refused, as torch (ValueError in 2.13; the
    kind differs across torch versions, so only the refusal is compared)."""
    with pytest.raises((ValueError, RuntimeError), match="step must be nonzero"):
        vt.arange(0, 3, 0.5, dtype=vt.int64, device=device)
    # the bounds' order is checked first (fuzz seed 108): a truncated step with bounds the other way round is
    # torch's RuntimeError about the step's sign
    with pytest.raises(RuntimeError, match="inconsistent with step sign"):
        vt.arange(0, -1.5, 0.5, dtype=vt.int64, device=device)
    with pytest.raises(RuntimeError, match="inconsistent with step sign"):
        torch.arange(0, -1.5, 0.5, dtype=torch.int64)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", list(ROUND_OF_2026_12_03))
def test_long_profile_round_of_2026_12_03(case, device):
    differential(ROUND_OF_2026_12_03[case], device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
def test_div_gradient_of_the_divisor_in_torchs_order(dtype, device):
    """d(x / y)/dy = -g * ((x / y) / y), torch's order: -g * x / (y * y) overflowed (y * y = inf) or underflowed
    (1e-60 = 0) where the quotient does not, so x / x near the limit had gradient 1 / x or -inf instead of 0."""
    grads = []
    for m in (torch, vt):
        x = m.tensor([3e38, 1e-30, 2.0, -5.0], dtype=getattr(m, dtype))
        x = (x.to(device) if m is vt else x).requires_grad_()
        y = m.tensor([1e-30, 3e38, 3.0, 0.0], dtype=getattr(m, dtype))
        y = (y.to(device) if m is vt else y).requires_grad_()
        ((x / x).double().sum() + (x / y).double().sum()).backward()
        grads.append((x.grad, y.grad))
    for a, b in zip(grads[1], grads[0]):
        assert_same(a.cpu(), b)


@pytest.mark.parametrize("op", ["remainder_", "fmod_", "floor_divide_", "div_trunc"])
@pytest.mark.parametrize("dtype", ["int64", "int32", "uint8"])
def test_divisor_zeroed_by_the_kernel_itself_raises(op, dtype):
    """Note [Divisors read mid-kernel]: x[..., ::2].remainder_(x[0]) rewrites its own divisor row as it runs
    (x[0] % x[0] = 0), and the next rows divided by 0 - a SIGFPE that killed the process (a crash of the long
    fuzz profile on the H200's host). Now ZeroDivisionError, as torch's kernel raises (the CPU only: GPU
    kernels do not check divisors, in either library)."""
    def fn(m, t):
        x = t([[4, 1, 6, 1], [8, 1, 9, 1], [3, 1, 5, 1]], dtype=getattr(m, dtype))[..., ::2]
        if op == "div_trunc":
            return x.div_(x[0], rounding_mode="trunc")
        return getattr(x, op)(x[0])
    differential(fn, "cpu")


@pytest.mark.parametrize("device", DEVICES)
def test_norm_op_reads_p_none_as_the_2_norm(device):
    """The op vt::norm takes `Scalar? p`, as aten::norm.ScalarOpt_dim does: p=None is the 2-norm (it raised
    TypeError; the H200 long profile of 2026-12-03). A bool input is refused by the float check either way."""
    differential(lambda m, t: m.ops.vt.norm(t([[3.0, -4.0], [0.5, 12.0]]), None, [1], False) if m is vt else
                 m.ops.aten.norm(t([[3.0, -4.0], [0.5, 12.0]]), None, [1], False), device)
    differential(lambda m, t: (m.ops.vt if m is vt else m.ops.aten).norm(t([True, False]), None), device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", ["float16", "float32", "int64"])
def test_masked_fill_of_an_expanded_self_is_deterministic(dtype, device):
    """Note [Masked fill of an expanded self]: a location shared by several elements is filled when any of them
    is masked, as torch's CPU kernel leaves it; on the GPU the unmasked elements' writes of the old value raced
    with the fill (the H200 long profile of 2026-12-03: 0.377 where torch has 1)."""
    import warnings

    def fn(m, t):
        x = t([[0.25], [0.5], [0.75]], dtype=getattr(m, dtype)).expand(3, 4)
        mask = t([[False, False, False, True], [False] * 4, [True, False, True, False]])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch: masked_fill_ on expanded tensors is deprecated
            return x.masked_fill_(mask, 1), x.expand(2, 3, 4)[:, :, :1].squeeze(-1)
    differential(fn, device)
    differential(lambda m, t: t([0.5], dtype=getattr(m, dtype)).expand(2).masked_fill_(t([True, False]), t(True)),
                 device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("mode", ["trunc", "floor"])
def test_rounded_division_by_a_number_reads_it_in_opmath(mode, dtype, device):
    """Note [Opmath scalars] for trunc and floor division: 3 // 3.0009765625 is 0 (torch), not 3 // 3 = 1 (the
    divisor's 16-bit rounding); the devbox long profile of 2026-12-03."""
    def fn(m, t):  # the divisor a number or a 0-dim CPU tensor (a GPU one is cast to 16 bits, in torch too)
        x = t([3.0, -3.0, 65504.0, 1.5], dtype=getattr(m, dtype))
        return (m.div(x, m.tensor(3.0009765625), rounding_mode=mode), m.div(x, 3.0009765625, rounding_mode=mode),
                x.clone().div_(m.tensor(3.0009765625), rounding_mode=mode))
    differential(fn, device)


@pytest.mark.parametrize("device", DEVICES)
def test_linspace_integral_endpoints_convert_to_the_dtype_first(device):
    """linspace(0, -1, 3, dtype=uint8) runs from 0 to 255 (the endpoints converted to uint8 first, as torch's):
    [0, 127, 255], not [0, 0, 255]; the norm of no elements is 0 for a NaN order too."""
    differential(lambda m, t: m.linspace(0, -1, 3, dtype=m.uint8, device=device if m is vt else "cpu"), device)
    differential(lambda m, t: m.linspace(-1.5, 2.5, 5, dtype=m.int8, device=device if m is vt else "cpu"), device)
    differential(lambda m, t: (m.ops.vt if m is vt else m.ops.aten).norm(t([], dtype=m.float16), float("nan")),
                 device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_elu_gradient_reads_alpha_in_opmath(dtype, device):
    """elu's gradient alpha exp(x) with an alpha past float16's range: exp(-65504) = 0 times alpha is 0 (alpha
    read in float, Note [Opmath scalars]), not inf * 0 = NaN; the devbox long profile of 2026-12-03 (seed 73)."""
    def fn(m, t):
        x = t([1.0, -65504.0, -2.0], dtype=getattr(m, dtype)).requires_grad_()
        m.nn.functional.elu(x, alpha=2147483647).sum().backward()
        return x.grad
    differential(fn, device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_softplus_gradient_tests_the_threshold_in_opmath(dtype, device):
    """softplus's gradient with beta = threshold = -2**31: beta x (x > 0) is about -1e9 in float, above the
    threshold, so the gradient is 1 (torch); rounded to 16 bits it was -inf and failed the test (gradient 0);
    the devbox long profile of 2026-12-03 (seed 74)."""
    def fn(m, t):
        x = t([0.5, 1.0, -0.25], dtype=getattr(m, dtype)).requires_grad_()
        m.nn.functional.softplus(x, beta=-2147483648, threshold=-2147483648).sum().backward()
        return x.grad
    differential(fn, device)


@pytest.mark.parametrize("device", DEVICES)
def test_prod_gradient_is_taken_in_the_dtype_the_product_was(device):
    """prod(x, dtype=float32) of a float64 x: the gradient is computed in float32 (result / x there), then cast
    to float64, as torch's; vibetensor gave the more precise float64 quotients (the devbox long profile of
    2026-12-03, seed 75)."""
    def fn(m, t):
        x = t([[1.5, -2.25, 3.1], [0.7, 1.9, -0.3]], dtype=m.float64).requires_grad_()
        m.prod(x, dtype=m.float32).backward()
        y = t([[1.5, 0.0, 3.1], [0.7, 1.9, -0.3]], dtype=m.float64).requires_grad_()
        m.prod(y, 1, dtype=m.float32).sum().backward()
        return x.grad, y.grad
    differential(fn, device)


@pytest.mark.parametrize("device", DEVICES)
def test_order_zero_norm_has_no_gradient_also_when_empty(device):
    """norm(x, p=0) counts nonzeros: torch leaves x.grad None, for an empty x too; vibetensor's empty-input
    shortcut summed |x| instead and gave an empty gradient (the devbox long profile of 2026-12-03, seed 76)."""
    for n in (0, 3):
        for m, make in ((torch, lambda: torch.zeros(n, dtype=torch.float16, device=device)),
                        (vt, lambda: vt.zeros(n, dtype=vt.float16, device=device))):
            x = make().requires_grad_()
            y = m.norm(x, p=0)
            assert float(y) == 0.0
            if y.requires_grad:
                y.backward()
            assert x.grad is None, (m.__name__, n)


def test_integral_arange_bounds_must_fit_int64_for_every_integral_dtype():
    """arange(1e30, 1e30, dtype=int32) is empty arithmetically, but torch converts the bounds to int64 first and
    refuses them (RuntimeError), for every integral dtype; vibetensor checked only for int64 (the devbox long
    profile of 2026-12-03, seed 77)."""
    for dtype in ("int32", "int16", "uint8", "int64"):
        with pytest.raises(RuntimeError):
            torch.arange(1e30, 1e30, dtype=getattr(torch, dtype))
        with pytest.raises(RuntimeError, match="do not fit int64"):
            vt.arange(1e30, 1e30, dtype=getattr(vt, dtype))
    assert vt.arange(2.0**40, 2.0**40 + 3, dtype=vt.int64).tolist() == [2**40, 2**40 + 1, 2**40 + 2]


def test_cross_entropy_refuses_ignore_index_beside_probability_targets():
    """torch refuses a non-negative ignore_index with floating (probability) targets before anything else;
    vibetensor ignored it (seed 79)."""
    def fn(m):
        x = m.tensor([[0.5, -1.0, 2.0]])
        return m.nn.functional.cross_entropy(x, m.softmax(x, 1), ignore_index=0)
    with pytest.raises(RuntimeError, match="ignore_index is not supported for floating point target"):
        fn(torch)
    with pytest.raises(RuntimeError, match="ignore_index is not supported for floating point target"):
        fn(vt)
    assert abs(vt.nn.functional.cross_entropy(vt.tensor([[0.5, -1.0, 2.0]]), vt.tensor([[0.2, 0.3, 0.5]])).item()
               - torch.nn.functional.cross_entropy(torch.tensor([[0.5, -1.0, 2.0]]),
                                                   torch.tensor([[0.2, 0.3, 0.5]])).item()) < 1e-6


def test_cross_entropy_class_targets_take_a_weight_of_the_input_dtype_only():
    """torch's nll_loss refuses a weight of another dtype than the input (RuntimeError) before it reads the
    targets; vibetensor converted it and then reported an out-of-range target (seed 81)."""
    for weight_dtype in ("bool", "float32"):
        def fn(m):
            x = m.ones(1, 2, 2, dtype=m.float16)
            w = m.ones(2, dtype=getattr(m, weight_dtype))
            return m.nn.functional.cross_entropy(x, m.tensor([[0, 3]]), weight=w, reduction="none")
        with pytest.raises(RuntimeError):
            fn(torch)
        with pytest.raises(RuntimeError, match="expected a weight of dtype float16"):
            fn(vt)
    x = vt.tensor([[0.5, -1.0, 2.0]])
    ok = vt.nn.functional.cross_entropy(x, vt.tensor([2]), weight=vt.tensor([1.0, 2.0, 0.5]))
    ref = torch.nn.functional.cross_entropy(torch.tensor([[0.5, -1.0, 2.0]]), torch.tensor([2]),
                                            weight=torch.tensor([1.0, 2.0, 0.5]))
    assert abs(ok.item() - ref.item()) < 1e-6


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("p", [-1, -2, -0.5, 0.5, 3])
def test_norm_of_a_negative_order_with_a_zero_element_under_autograd(dtype, p):
    """Under autograd the p-norm's power ran through the zero-safe form (Note [Zero-safe roots]), which put 0 where
    |0| ** p is inf for a negative p: norm([0, 1, 2], p=-1) was 0.667 instead of torch's 0 (seed 86). The values
    and gradients match torch's now; an all-inf input with p < 0 gets gradient 0 where torch's is NaN (inf * 0)."""
    for vals in ([0.0, 1.0, 2.0], [0.0, 0.0, 0.0], [1.0, 2.0, 3.0], [0.0, -3.0], [0.25, 0.0, 4.0]):
        t = torch.tensor(vals, dtype=getattr(torch, dtype), requires_grad=True)
        v = vt.tensor(vals, dtype=getattr(vt, dtype), requires_grad=True)
        expected, actual = t.norm(p=p), v.norm(p=p)
        expected.backward()
        actual.backward()
        tol = dict(rtol=2e-3, atol=1e-6)
        np.testing.assert_allclose(float(actual.detach().item()), float(expected.detach()), **tol, err_msg=str(vals))
        np.testing.assert_allclose(v.grad.to(vt.float64).numpy(), t.grad.double().numpy(), **tol, err_msg=str(vals))


@pytest.mark.parametrize("vals", [[65504.0, 65504.0, -65504.0, -65504.0], [65504.0, float("inf")],
                                  [1.0, 2.0, 3.0], [-float("inf"), 1.0]])
@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
def test_logsumexp_gradient_is_torchs_formula(vals, dtype):
    # Fuzz seed 89: the composite's gradient was the exact softmax (0.5 for two float16 maxima of 65504, NaN for
    # [65504, inf]); torch's formula grad * exp(self - result) reads the rounded (or infinite) result.
    t = torch.tensor(vals, dtype=getattr(torch, dtype), requires_grad=True)
    torch.logsumexp(t, -1).backward()
    v = vt.tensor(vals, dtype=getattr(vt, dtype), requires_grad=True)
    out = vt.logsumexp(v, [-1])
    out.backward()
    assert out.grad_fn.name() == "LogsumexpBackward0"
    np.testing.assert_array_equal(v.grad.float().numpy(), t.grad.float().numpy())
