"""cat / stack / split / chunk (and their aliasing: split and chunk return views)."""
import pytest

import vibetensor.torch as vt
from helpers import ALL_DTYPES, assert_layout_same, assert_same, check_op, pair


# --------------------------------------------------------------------------------------------- cat

CAT_CASES = [
    ("dim0", [(2, 3), (4, 3), (1, 3)], 0),
    ("dim1", [(2, 3), (2, 1), (2, 5)], 1),
    ("neg_dim", [(2, 3, 4), (2, 3, 1)], -1),
    ("mid_dim", [(2, 3, 4), (2, 5, 4)], 1),
    ("single", [(3, 4)], 0),
    ("1d", [(7,), (0,), (3,)], 0),
    ("empty_part", [(0, 4), (3, 4)], 0),
    ("all_empty", [(0, 4), (0, 4)], 0),
    ("legacy_empty_1d", [(0,), (3, 4)], 0),  # torch skips 1-D empty tensors
    ("many", [(1, 2)] * 17, 0),
    ("zero_size_other_dim", [(2, 0), (2, 0)], 1),
]


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("case", CAT_CASES, ids=[c[0] for c in CAT_CASES])
def test_cat(case, dtype, rng):
    _, shapes, dim = case
    ts = [pair(s, dtype, rng=rng) for s in shapes]
    check_op(lambda m, xs: m.cat(xs, dim), ts)
    check_op(lambda m, xs: m.cat(tuple(xs), dim=dim), ts)


@pytest.mark.parametrize("kinds", [("transpose", "slice"), ("expand", False), ("offset", "transpose")], ids=str)
def test_cat_noncontiguous(kinds, rng):
    a = pair((4, 6), "float32", noncontig=kinds[0], rng=rng)
    b = pair((4, 6), "float32", noncontig=kinds[1], rng=rng)
    for dim in (0, 1, -1):
        check_op(lambda m, x, y: m.cat([x, y, x], dim), a, b)


def test_cat_result_is_a_copy(rng):
    a = pair((2, 3), "float32", rng=rng)
    r = check_op(lambda m, x: m.cat([x, x]), a)
    a.v.fill_(0)
    a.t.fill_(0)
    assert_same(r[0], r[1])


def test_cat_large(rng):
    parts = [pair((1000, 37), "float32", rng=rng), pair((1000, 64), "float32", noncontig="transpose", rng=rng)]
    check_op(lambda m, xs: m.cat(xs, 1), parts)
    check_op(lambda m, xs: m.cat([x.t() for x in xs], 0), parts)


@pytest.mark.parametrize("dtypes", [("int32", "float32"), ("uint8", "int8"), ("bool", "int64"),
                                    ("float16", "bfloat16"), ("int64", "float16"), ("bool", "bool", "float64")],
                         ids=str)
def test_cat_mixed_dtypes_promote_like_torch(dtypes, rng):
    ts = [pair((2, 3), d, rng=rng) for d in dtypes]
    check_op(lambda m, xs: m.cat(xs), ts)


@pytest.mark.parametrize("fn", [
    lambda m, a, b: m.cat([a, b]),          # (2,3) + (2,4) along 0
    lambda m, a, b: m.cat([a, b], 2),       # dim out of range
    lambda m, a, b: m.cat([a, b], -3),
    lambda m, a, b: m.cat([]),
    lambda m, a, b: m.cat([a, b.unsqueeze(0)], 0),  # rank mismatch
    lambda m, a, b: m.cat([a[0, 0], a[0, 0]]),        # 0-dim
    lambda m, a, b: m.cat([a, 3]),                    # not a tensor (parsed in C++: torch's TypeError)
    lambda m, a, b: m.cat(a),                         # a tensor, not a sequence of them
    lambda m, a, b: m.cat([a, a], 0.5),
    lambda m, a, b: m.cat((a, a), dim=-1),
], ids=["size_mismatch", "dim_hi", "dim_lo", "empty_list", "rank_mismatch", "zero_dim", "element", "not_a_list",
        "float_dim", "tuple_dim_kw"])
def test_cat_errors_match_torch(fn):
    check_op(fn, pair((2, 3), "float32", seed=0), pair((2, 4), "float32", seed=1))


def test_cat_error_message_names_sizes():
    with pytest.raises(RuntimeError, match=r"3") as ei:
        vt.cat([vt.zeros(2, 3), vt.zeros(2, 4)])
    assert "4" in str(ei.value)


# ------------------------------------------------------------------------------------------- stack


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("shape", [(), (5,), (3, 1, 4), (0, 2)], ids=str)
def test_stack(shape, dtype, rng):
    ts = [pair(shape, dtype, rng=rng) for _ in range(3)]
    for dim in range(-len(shape) - 1, len(shape) + 1):
        check_op(lambda m, xs: m.stack(xs, dim), ts, msg=f"dim={dim}: ")
    check_op(lambda m, xs: m.stack(tuple(xs), dim=0), ts)


def test_stack_noncontig_and_mixed(rng):
    a = pair((4, 5), "float32", noncontig="transpose", rng=rng)
    b = pair((4, 5), "float64", noncontig="slice", rng=rng)
    c = pair((4, 5), "int32", noncontig="expand", rng=rng)
    for dim in (0, 1, 2):
        check_op(lambda m, x, y, z: m.stack([x, y, z], dim), a, b, c)


@pytest.mark.parametrize("fn", [
    lambda m, a, b: m.stack([a, b]),
    lambda m, a, b: m.stack([a, a], 3),
    lambda m, a, b: m.stack([a, a], -4),
    lambda m, a, b: m.stack([]),
    lambda m, a, b: m.stack([a, "x"]),
    lambda m, a, b: m.stack([a, a], dim=1.0),
], ids=["shape_mismatch", "dim_hi", "dim_lo", "empty", "element", "float_dim"])
def test_stack_errors_match_torch(fn):
    check_op(fn, pair((2, 3), "float32", seed=0), pair((2, 4), "float32", seed=1))


def test_stack_error_message_names_shapes():
    from helpers import shape_regex
    with pytest.raises(RuntimeError) as ei:
        vt.stack([vt.zeros(2, 3), vt.zeros(2, 4)])
    import re
    assert re.search(shape_regex((2, 3)), str(ei.value)) and re.search(shape_regex((2, 4)), str(ei.value)), \
        str(ei.value)


# ------------------------------------------------------------------------------------- split / chunk

SPLIT_CASES = [
    ("int_even", (6, 4), lambda m, x: x.split(2)),
    ("int_uneven", (7, 4), lambda m, x: x.split(3)),
    ("int_dim1", (4, 7), lambda m, x: x.split(2, dim=1)),
    ("int_neg_dim", (4, 7), lambda m, x: x.split(5, -1)),
    ("int_larger", (4, 7), lambda m, x: x.split(10)),
    ("sizes", (7, 4), lambda m, x: x.split([1, 4, 2])),
    ("sizes_with_zero", (7, 4), lambda m, x: x.split([3, 0, 4])),
    ("sizes_dim1", (4, 7), lambda m, x: x.split([6, 1], 1)),
    ("fn_split", (6, 4), lambda m, x: m.split(x, 4)),
    ("fn_split_sizes", (6, 4), lambda m, x: m.split(x, [2, 4], dim=0)),
    ("empty_tensor", (0, 4), lambda m, x: x.split(2)),
    ("chunk_even", (6, 4), lambda m, x: x.chunk(3)),
    ("chunk_uneven", (7, 4), lambda m, x: x.chunk(3)),
    ("chunk_more_than_size", (3, 4), lambda m, x: x.chunk(5)),
    ("chunk_dim1", (4, 7), lambda m, x: x.chunk(2, dim=1)),
    ("chunk_neg_dim", (4, 7), lambda m, x: x.chunk(4, -1)),
    ("chunk_one", (4, 7), lambda m, x: x.chunk(1)),
    ("fn_chunk", (5, 4), lambda m, x: m.chunk(x, 2)),
    ("chunk_13_into_6", (13,), lambda m, x: x.chunk(6)),
    ("chunk_empty", (0, 4), lambda m, x: x.chunk(2)),
]


@pytest.mark.parametrize("kind", [False, "transpose", "slice"])
@pytest.mark.parametrize("case", SPLIT_CASES, ids=[c[0] for c in SPLIT_CASES])
def test_split_chunk(case, kind, rng):
    _, shape, fn = case
    x = pair(shape, "float32", noncontig=kind, rng=rng)
    r = check_op(fn, x)
    v, t = r
    assert isinstance(v, (tuple, list))
    for a, b in zip(v, t):
        assert_layout_same(a, b)
    # the pieces are views: writing the base shows through
    x.v.add_(5)
    x.t.add_(5)
    assert_same(list(v), list(t))


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_split_chunk_dtypes(dtype, rng):
    x = pair((7, 3), dtype, rng=rng)
    check_op(lambda m, t: t.split([2, 5]), x)
    check_op(lambda m, t: t.chunk(4, 1), x)


@pytest.mark.parametrize("fn", [
    lambda m, x: x.split([2, 2]),     # sizes do not sum to 6
    lambda m, x: x.split(2, dim=2),
    lambda m, x: x.split(0),
    lambda m, x: x.split(-1),
    lambda m, x: x.chunk(0),
    lambda m, x: x.chunk(2, dim=-3),
    lambda m, x: x.split([7, -1]),
], ids=["sizes_sum", "dim", "zero_size", "neg_size", "zero_chunks", "chunk_dim", "neg_in_sizes"])
def test_split_chunk_errors_match_torch(fn):
    check_op(fn, pair((6, 4), "float32", seed=0))
