"""__getitem__ / __setitem__ with ints, slices, None, Ellipsis, integer tensors and lists, boolean masks."""
import pytest
import torch

import vibetensor.torch as vt
from helpers import (
    ALL_DTYPES, INT_DTYPES, assert_layout_same, assert_same, check_op, pair,
)

SHAPE = (4, 5, 6)

# fn(m, x) -> x[...] ; basic indexing (views) first, then advanced indexing (copies).
BASIC = [
    ("int", lambda m, x: x[1]),
    ("neg_int", lambda m, x: x[-1]),
    ("two_ints", lambda m, x: x[1, 2]),
    ("three_ints", lambda m, x: x[-1, -2, -3]),
    ("chained", lambda m, x: x[1][2]),
    ("slice", lambda m, x: x[1:3]),
    ("slice_step", lambda m, x: x[::2, 1::2, ::4]),
    ("slice_neg_bounds", lambda m, x: x[-3:-1, :-2]),
    ("slice_clamped", lambda m, x: x[2:99, -99:]),
    ("slice_empty", lambda m, x: x[3:1]),
    ("slice_full", lambda m, x: x[:]),
    ("none", lambda m, x: x[None]),
    ("none_mid", lambda m, x: x[:, None, 1]),
    ("none_many", lambda m, x: x[None, 1, None, :, None]),
    ("ellipsis", lambda m, x: x[...]),
    ("ellipsis_int", lambda m, x: x[..., 2]),
    ("int_ellipsis", lambda m, x: x[1, ...]),
    ("ellipsis_mid", lambda m, x: x[1, ..., 2]),
    ("ellipsis_none", lambda m, x: x[..., None]),
    ("mixed", lambda m, x: x[1:, None, ..., ::3]),
    ("tuple_idx", lambda m, x: x[(0, slice(1, 3))]),
]

ADVANCED = [
    ("long_tensor", lambda m, x: x[m.tensor([0, 2, 1])]),
    ("long_tensor_neg", lambda m, x: x[m.tensor([-1, 0, -4])]),
    ("long_tensor_repeat", lambda m, x: x[m.tensor([3, 3, 0, 3])]),
    ("long_tensor_2d", lambda m, x: x[m.tensor([[0, 1], [2, 0]])]),
    ("long_tensor_dim1", lambda m, x: x[:, m.tensor([0, 4])]),
    ("long_tensor_last", lambda m, x: x[..., m.tensor([5, 0, 1])]),
    ("int32_tensor", lambda m, x: x[m.tensor([0, 3], dtype=m.int32)]),
    ("empty_index", lambda m, x: x[m.tensor([], dtype=m.int64)]),
    ("zero_dim_index", lambda m, x: x[m.tensor(2)]),
    ("two_adv_broadcast", lambda m, x: x[m.tensor([0, 1, 3]), m.tensor([2, 4, 0])]),
    ("two_adv_bcast_2d", lambda m, x: x[m.tensor([[0], [3]]), m.tensor([1, 2, 4])]),
    ("adv_adjacent", lambda m, x: x[:, m.tensor([0, 1]), m.tensor([2, 5])]),
    ("adv_separated", lambda m, x: x[m.tensor([0, 1]), :, m.tensor([2, 5])]),
    ("adv_with_int", lambda m, x: x[1, :, m.tensor([0, 2])]),
    ("adv_with_slice", lambda m, x: x[1:3, m.tensor([4, 0])]),
    ("adv_with_none", lambda m, x: x[None, m.tensor([1, 2])]),
    ("adv_with_ellipsis", lambda m, x: x[m.tensor([1]), ..., m.tensor([2])]),
    ("list", lambda m, x: x[[0, 2]]),
    ("list_neg", lambda m, x: x[[-1, 1]]),
    ("list_two", lambda m, x: x[[0, 1], [2, 3]]),
    ("list_dim1", lambda m, x: x[:, [4, 1, 1]]),
    ("bool_mask_full", lambda m, x: x[x > 0]),
    ("bool_mask_dim0", lambda m, x: x[m.tensor([True, False, True, True])]),
    ("bool_mask_dim1", lambda m, x: x[:, m.tensor([False, True, False, True, True])]),
    ("bool_mask_2d", lambda m, x: x[m.tensor([[True, False, True, False, True]] * 4)]),
    ("bool_mask_none_true", lambda m, x: x[m.zeros(4, 5, 6, dtype=m.bool)]),
    ("bool_mask_all_true", lambda m, x: x[m.ones(4, dtype=m.bool)]),
    ("bool_list", lambda m, x: x[[True, False, False, True]]),
    ("python_true", lambda m, x: x[True]),
    ("python_false", lambda m, x: x[False]),
    ("mask_and_slice", lambda m, x: x[x[:, 0, 0] > 0, 1:3]),
]


@pytest.mark.parametrize("kind", [False, "transpose", "slice"])
@pytest.mark.parametrize("case", BASIC, ids=[c[0] for c in BASIC])
def test_basic_indexing_views(case, kind, rng):
    _, fn = case
    p = pair(SHAPE, "float32", noncontig=kind, rng=rng)
    r = check_op(fn, p)
    v, t = r
    if isinstance(t, torch.Tensor):
        assert_layout_same(v, t)
        if t.numel():
            # basic indexing returns a view: writes through the base reach it
            p.v.add_(10)
            p.t.add_(10)
            assert_same(v, t)


@pytest.mark.parametrize("kind", [False, "transpose", "slice"])
@pytest.mark.parametrize("case", ADVANCED, ids=[c[0] for c in ADVANCED])
def test_advanced_indexing(case, kind, rng):
    name, fn = case
    p = pair(SHAPE, "float32", noncontig=kind, rng=rng)
    r = check_op(fn, p)
    if r is not None and r[1].numel() and name not in ("zero_dim_index", "python_true"):
        # advanced indexing copies: later writes to the base do not reach the result
        before = r[1].clone()
        p.v.add_(10)
        p.t.add_(10)
        assert_same(r[0], before)


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_indexing_every_dtype(dtype, rng):
    p = pair(SHAPE, dtype, rng=rng)
    for _, fn in BASIC[:6] + ADVANCED[:3] + ADVANCED[9:14] + [ADVANCED[21]]:
        check_op(fn, p)
    check_op(lambda m, x: x[x != x.flatten()[0]], p)


@pytest.mark.parametrize("idx_fn", [
    lambda m: (),
    lambda m: None,
    lambda m: Ellipsis,
    lambda m: (None, None),
    lambda m: True,
    lambda m: m.tensor(True),
], ids=["empty_tuple", "none", "ellipsis", "none_none", "true", "tensor_true"])
def test_zero_dim_indexing(idx_fn, rng):
    p = pair((), "float64", rng=rng)
    check_op(lambda m, x: x[idx_fn(m)], p)


def test_index_empty_tensor(rng):
    p = pair((0, 4), "float32", rng=rng)
    check_op(lambda m, x: x[:, 1], p)
    check_op(lambda m, x: x[..., m.tensor([0, 3])], p)
    check_op(lambda m, x: x[x > 0], p)
    check_op(lambda m, x: x[m.tensor([], dtype=m.int64)], p)


def test_large_gather_and_mask(rng):
    p = pair((1000, 100), "float32", rng=rng)
    idx = rng.integers(-1000, 1000, size=5000)
    check_op(lambda m, x: x[m.from_numpy(idx.copy())], p)
    check_op(lambda m, x: x[:, m.from_numpy((idx % 100).copy())], p)
    check_op(lambda m, x: x[x > 0.5], p)
    check_op(lambda m, x: x.t()[x.t() < -1], p)


# ---------------------------------------------------------------------------------------- setitem


def _set(idx_fn, val_fn):
    def fn(m, x):
        x[idx_fn(m, x)] = val_fn(m, x)
        return x
    return fn


SETITEM = [
    ("int_scalar", _set(lambda m, x: 1, lambda m, x: 2.5)),
    ("neg_int_scalar", _set(lambda m, x: -1, lambda m, x: -3)),
    ("point", _set(lambda m, x: (1, 2, 3), lambda m, x: 7)),
    ("slice_scalar", _set(lambda m, x: slice(1, 3), lambda m, x: 0)),
    ("step_slice_scalar", _set(lambda m, x: (slice(None), slice(None, None, 2)), lambda m, x: 1.5)),
    ("ellipsis_col", _set(lambda m, x: (Ellipsis, 0), lambda m, x: m.arange(20.0).view(4, 5))),
    ("broadcast_row", _set(lambda m, x: (slice(None), 1), lambda m, x: m.arange(6.0))),
    ("broadcast_scalar_tensor", _set(lambda m, x: 2, lambda m, x: m.tensor(-4.0))),
    ("broadcast_leading_ones", _set(lambda m, x: 0, lambda m, x: m.arange(6.0).view(1, 1, 6))),
    ("step_tensor", _set(lambda m, x: (slice(None, None, 2), slice(1, None, 2)),
                         lambda m, x: m.ones(2, 2, 6) * 3)),
    ("none_ellipsis", _set(lambda m, x: (None, Ellipsis, 1), lambda m, x: 9)),
    ("full", _set(lambda m, x: Ellipsis, lambda m, x: m.zeros(6))),
    ("index_tensor", _set(lambda m, x: m.tensor([0, 2]), lambda m, x: 1)),
    ("index_tensor_value", _set(lambda m, x: m.tensor([3, 0]), lambda m, x: m.arange(60.0).view(2, 5, 6))),
    ("index_tensor_bcast", _set(lambda m, x: (m.tensor([0, 2]), 1), lambda m, x: m.arange(6.0))),
    ("two_index_tensors", _set(lambda m, x: (m.tensor([0, 1, 3]), m.tensor([4, 2, 0])), lambda m, x: -1)),
    ("list_index", _set(lambda m, x: [1, 3], lambda m, x: 5.0)),
    ("index_dim1", _set(lambda m, x: (slice(None), m.tensor([1, 3])), lambda m, x: 2)),
    ("mask_scalar", _set(lambda m, x: x > 0, lambda m, x: 0)),
    ("mask_dim0", _set(lambda m, x: m.tensor([False, True, False, True]), lambda m, x: m.ones(5, 6))),
    ("mask_values", _set(lambda m, x: x > 0, lambda m, x: -x[x > 0])),
    ("mask_zero_dim_value", _set(lambda m, x: x < 0, lambda m, x: m.tensor(8.0))),
    ("float64_value", _set(lambda m, x: 0, lambda m, x: m.ones(6, dtype=m.float64) / 3)),
    ("int_value", _set(lambda m, x: 0, lambda m, x: m.arange(6))),
    ("bool_value", _set(lambda m, x: 0, lambda m, x: True)),
]


@pytest.mark.parametrize("kind", [False, "transpose", "slice"])
@pytest.mark.parametrize("case", SETITEM, ids=[c[0] for c in SETITEM])
def test_setitem(case, kind, rng):
    _, fn = case
    check_op(fn, pair(SHAPE, "float32", noncontig=kind, rng=rng))


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_setitem_every_dtype(dtype, rng):
    for name in ("int_scalar", "slice_scalar", "index_tensor", "mask_scalar", "bool_value", "ellipsis_col",
                 "two_index_tensors", "float64_value"):
        fn = dict(SETITEM)[name]
        check_op(fn, pair(SHAPE, dtype, rng=rng), msg=f"{name}: ")
    if dtype in INT_DTYPES:
        check_op(_set(lambda m, x: 0, lambda m, x: 2.7), pair(SHAPE, dtype, rng=rng), msg="float into int: ")


def test_setitem_writes_through_to_base(rng):
    p = pair((6, 8), "float32", rng=rng)
    for m, x in ((vt, p.v), (torch, p.t)):
        view = x[1:5, ::2]
        view[1, 1] = 100.0
        view[:, 0] = m.arange(4.0)
        view[view > 1] = 0.5
    assert_same(p.v, p.t)


def test_setitem_large(rng):
    p = pair((1000, 100), "float32", rng=rng)
    check_op(_set(lambda m, x: x > 0, lambda m, x: 0), p)
    idx = rng.permutation(1000)[:300]
    check_op(_set(lambda m, x: m.from_numpy(idx.copy()), lambda m, x: m.ones(100)), p)


# ----------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("fn", [
    lambda m, x: x[4],
    lambda m, x: x[-5],
    lambda m, x: x[:, 5],
    lambda m, x: x[0, 0, 6],
    lambda m, x: x[0, 0, 0, 0],
    lambda m, x: x[m.tensor([0, 4])],
    lambda m, x: x[m.tensor([-5])],
    lambda m, x: x[:, m.tensor([5])],
    lambda m, x: x[m.tensor([0.0, 1.0])],
    lambda m, x: x[m.tensor([True, False])],
    lambda m, x: x[m.ones(4, 6, dtype=m.bool)],
    lambda m, x: x[m.tensor([0, 1]), m.tensor([0, 1, 2])],
    lambda m, x: x["a"],
    lambda m, x: x[1.5],
], ids=["int_oob", "neg_int_oob", "dim1_oob", "dim2_oob", "too_many", "tensor_oob", "tensor_neg_oob",
        "tensor_dim1_oob", "float_index", "mask_len", "mask_shape", "adv_bcast", "str",
        "float_scalar"])
def test_getitem_errors_match_torch(fn):
    check_op(fn, pair(SHAPE, "float32", seed=0))


@pytest.mark.parametrize("fn", [
    _set(lambda m, x: 0, lambda m, x: m.ones(3)),
    _set(lambda m, x: 9, lambda m, x: 1.0),
    _set(lambda m, x: m.tensor([0, 9]), lambda m, x: 1.0),
    _set(lambda m, x: x > 0, lambda m, x: m.ones(3)),
    _set(lambda m, x: slice(0, 2), lambda m, x: m.ones(3, 5, 6)),
], ids=["value_shape", "int_oob", "tensor_oob", "mask_value_count", "slice_value_shape"])
def test_setitem_errors_match_torch(fn):
    check_op(fn, pair(SHAPE, "float32", seed=0))


def test_index_error_message_names_index_and_size():
    x = vt.zeros(3, 4)
    with pytest.raises(IndexError, match=r"5") as ei:
        x[5]
    assert "3" in str(ei.value)
    with pytest.raises(IndexError, match=r"9"):
        x[vt.tensor([0, 9])]
    with pytest.raises(IndexError, match=r"7"):
        x[:, 7]
