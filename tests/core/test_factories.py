"""Factories: empty/zeros/ones/full, arange, linspace, eye, *_like."""
import math

import numpy as np
import pytest
import torch

import vibetensor.torch as vt
from helpers import ALL_DTYPES, FLOAT_DTYPES, assert_same, check_op, dtype_name, pair

SIZES = [(), (0,), (5,), (3, 1, 5), (0, 4), (2, 3, 4)]


def _call(fn_name, size, style, **kw):
    """Call m.<fn_name> with the size as varargs, a tuple, a list or a keyword."""
    def f(m):
        fn = getattr(m, fn_name)
        if style == "varargs":
            return fn(*size, **kw)
        if style == "tuple":
            return fn(tuple(size), **kw)
        if style == "list":
            return fn(list(size), **kw)
        return fn(size=tuple(size), **kw)
    return f


@pytest.mark.parametrize("style", ["varargs", "tuple", "list", "kw"])
@pytest.mark.parametrize("size", SIZES, ids=str)
@pytest.mark.parametrize("fn_name", ["zeros", "ones"])
def test_zeros_ones(fn_name, size, style):
    if style == "varargs" and size == ():
        pytest.skip("no varargs form of a 0-dim size")
    check_op(_call(fn_name, size, style))


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("fn_name", ["zeros", "ones", "empty"])
def test_factory_dtype(fn_name, dtype):
    f = lambda m: getattr(m, fn_name)(2, 3, dtype=getattr(m, dtype))  # noqa: E731
    if fn_name == "empty":
        v, t = f(vt), f(torch)
        assert dtype_name(v.dtype) == dtype and tuple(v.shape) == (2, 3) and v.is_contiguous()
        assert str(v.device) == "cpu"
        return
    check_op(f)
    check_op(lambda m: getattr(m, fn_name)((4,), dtype=getattr(m, dtype), device="cpu"))


@pytest.mark.parametrize("size", SIZES, ids=str)
def test_empty_shape(size):
    v = vt.empty(size)
    assert tuple(v.shape) == size and v.dtype == vt.float32 and v.is_contiguous()
    assert tuple(v.stride()) == tuple(torch.empty(size).stride())
    if v.numel():
        v.fill_(1.0)  # writable
        assert v.sum().item() == v.numel()


@pytest.mark.parametrize("fill", [3, -2, 2.5, True, False, math.inf, math.nan, 0, 2**40, -0.0], ids=repr)
def test_full_infers_dtype(fill):
    check_op(lambda m: m.full((2, 3), fill))
    check_op(lambda m: m.full([4], fill))
    check_op(lambda m: m.full((), fill))


def test_full_keywords_requires_grad_and_tensor_fill():
    check_op(lambda m: m.full(size=(2,), fill_value=4))
    check_op(lambda m: m.full((2, 1), m.tensor(2.5)))  # a one-element tensor fills as its number
    t = vt.full((2,), 1.5, requires_grad=True)
    assert t.requires_grad and t.is_leaf and t.dtype == vt.float32
    check_op(lambda m: m.full(m.ones(2, 3).shape, 7, dtype=m.int16))  # a Size from another tensor


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("fill", [3, 1.5, True], ids=repr)
def test_full_with_dtype(dtype, fill):
    check_op(lambda m: m.full((3, 2), fill, dtype=getattr(m, dtype)))
    check_op(lambda m: m.full((0, 2), fill, dtype=getattr(m, dtype)))


@pytest.mark.parametrize("args", [
    (5,), (0,), (1,), (2, 9), (9, 2, -2), (-3, 3), (0, 10, 3), (0.0, 1.0, 0.1), (1, 2.5, 0.5), (-1.5, 1.5),
    (2.5,), (0, 1, 0.3), (10, 0, -0.7), (5, 5), (3, 1), (0, 100_003),
], ids=repr)
def test_arange(args):
    check_op(lambda m: m.arange(*args))


@pytest.mark.parametrize("dtype", [d for d in ALL_DTYPES if d != "bool"])
def test_arange_dtype(dtype):
    check_op(lambda m: m.arange(10, dtype=getattr(m, dtype)))
    check_op(lambda m: m.arange(1, 7, 2, dtype=getattr(m, dtype)))
    check_op(lambda m: m.arange(start=2, end=5, dtype=getattr(m, dtype)))
    if dtype in FLOAT_DTYPES:
        check_op(lambda m: m.arange(0, 2, 0.25, dtype=getattr(m, dtype)))


def test_arange_keywords():
    check_op(lambda m: m.arange(end=4))
    check_op(lambda m: m.arange(0, 10, step=3))
    check_op(lambda m: m.arange(1, end=4))
    check_op(lambda m: m.arange(m.tensor(3)))  # a one-element tensor is its number
    check_op(lambda m: m.arange(np.int64(4), dtype=m.float64))
    check_op(lambda m: m.arange())  # no end: torch's TypeError
    check_op(lambda m: m.arange("a"))
    t = vt.arange(3, dtype=vt.float32, requires_grad=True)
    assert t.requires_grad and t.is_leaf


@pytest.mark.parametrize("args", [(0, 1, 0), (0, 5, -1), (5, 0, 1), (0, math.inf), (0, math.nan)], ids=repr)
def test_arange_errors_like_torch(args):
    check_op(lambda m: m.arange(*args))


@pytest.mark.parametrize("args", [(0, 1, 5), (-2, 3, 11), (1, 1, 4), (3, -3, 7), (0, 1, 1), (0, 1, 0), (2, 7, 2),
                                  (0.5, 2.25, 8), (-1e3, 1e3, 1001), (0, 1, 10_000)], ids=repr)
@pytest.mark.parametrize("dtype", [None, "float64", "float16", "bfloat16", "int64", "int32"])
def test_linspace(args, dtype):
    if dtype is None:
        check_op(lambda m: m.linspace(*args), rtol=1e-6, atol=1e-5)
    elif dtype in ("float16", "bfloat16"):
        # torch evaluates 16-bit linspace in reduced precision (e.g. bfloat16 -1000..1000 step 2 gives -120 for
        # -122); accept torch's values or the correctly rounded ones
        v = vt.linspace(*args, dtype=getattr(vt, dtype))
        try:
            assert_same(v, torch.linspace(*args, dtype=getattr(torch, dtype)))
        except AssertionError:
            assert_same(v, torch.linspace(*args, dtype=torch.float64).to(getattr(torch, dtype)))
    else:
        check_op(lambda m: m.linspace(*args, dtype=getattr(m, dtype)))
    check_op(lambda m: m.linspace(start=args[0], end=args[1], steps=args[2]), rtol=1e-6, atol=1e-5)


def test_linspace_negative_steps_raises_like_torch():
    check_op(lambda m: m.linspace(0, 1, -1))


@pytest.mark.parametrize("args", [(3,), (1,), (0,), (3, 5), (5, 3), (4, 0), (0, 2)], ids=repr)
@pytest.mark.parametrize("dtype", [None, "int64", "bool", "float16", "bfloat16", "float64"])
def test_eye(args, dtype):
    def f(m):
        if dtype is None:
            return m.eye(*args)
        return m.eye(*args, dtype=getattr(m, dtype))
    check_op(f)


def test_eye_negative_raises_like_torch():
    check_op(lambda m: m.eye(-1))


# --------------------------------------------------------------------------------------------- *_like


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("kind", [False, "transpose", "expand"])
def test_like_factories(dtype, kind, rng):
    x = pair((3, 4), dtype, noncontig=kind, rng=rng)
    check_op(lambda m, t: m.zeros_like(t), x)
    check_op(lambda m, t: m.ones_like(t), x)
    check_op(lambda m, t: m.full_like(t, 7), x)
    check_op(lambda m, t: m.full_like(t, True), x)
    check_op(lambda m, t: m.zeros_like(t, dtype=m.float64), x)
    check_op(lambda m, t: m.ones_like(t, dtype=m.int8), x)
    check_op(lambda m, t: m.full_like(t, 2.5, dtype=m.float16), x)
    e = vt.empty_like(x.v)
    assert tuple(e.shape) == (3, 4) and e.dtype == x.v.dtype
    e2 = vt.empty_like(x.v, dtype=vt.float64)
    assert e2.dtype == vt.float64
    if dtype in FLOAT_DTYPES:
        for fn in (vt.rand_like, vt.randn_like):
            r = fn(x.v)
            assert tuple(r.shape) == (3, 4) and r.dtype == x.v.dtype
        r = vt.rand_like(x.v, dtype=vt.float64)
        assert r.dtype == vt.float64


def test_like_factories_scalar_and_empty():
    for shape in [(), (0, 3)]:
        x = pair(shape, "float32", seed=0)
        check_op(lambda m, t: m.ones_like(t), x)
        check_op(lambda m, t: m.full_like(t, -1), x)
        assert tuple(vt.empty_like(x.v).shape) == shape
        assert tuple(vt.rand_like(x.v).shape) == shape


def test_full_like_float_into_int_like_torch():
    check_op(lambda m, t: m.full_like(t, 2.7), pair((3,), "int32", seed=0))


def test_rand_like_int_raises_like_torch():
    x = pair((3,), "int64", seed=0)
    check_op(lambda m, t: m.rand_like(t).dtype, x)
    check_op(lambda m, t: m.randn_like(t).dtype, x)


# -------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("fn", [
    lambda m: m.zeros(-1),
    lambda m: m.ones(2, -3),
    lambda m: m.full((-1,), 1.0),
    lambda m: m.empty(-2),
    lambda m: m.zeros(2.5),
    lambda m: m.zeros("a"),
    lambda m: m.full(3, 1.0),
    lambda m: m.full((2,), "a"),
    lambda m: m.full((2, 2.5), 1.0),
], ids=["zeros_neg", "ones_neg", "full_neg", "empty_neg", "float_size", "str_size", "full_int_size", "full_str_fill",
        "full_float_size"])
def test_factory_errors_match_torch(fn):
    check_op(fn)


def test_negative_size_message_names_size():
    with pytest.raises(RuntimeError, match=r"-1"):
        vt.zeros(3, -1)


def test_default_dtype_is_float32():
    assert vt.zeros(2).dtype == vt.float32
    assert vt.ones(2).dtype == vt.float32
    assert vt.empty(2).dtype == vt.float32
    assert vt.rand(2).dtype == vt.float32
    assert vt.linspace(0, 1, 3).dtype == vt.float32
    assert vt.eye(2).dtype == vt.float32
    assert vt.arange(3).dtype == vt.int64
    assert vt.arange(3.0).dtype == vt.float32
    assert vt.tensor(1.0).dtype == vt.float32
    assert vt.tensor(1).dtype == vt.int64


@pytest.mark.parametrize("name", ["rand", "randn"])
def test_random_factories_without_a_size_are_type_errors(name):
    with pytest.raises(TypeError):
        getattr(torch, name)()
    with pytest.raises(TypeError, match="size"):
        getattr(vt, name)()
    assert tuple(getattr(vt, name)(size=()).shape) == tuple(getattr(torch, name)(size=()).shape) == ()
