"""View operations: results, strides/storage offsets equal torch's, and they alias their base."""
import pytest
import torch

import vibetensor.torch as vt
from helpers import ALL_DTYPES, assert_layout_same, assert_same, check_op, pair

# (name, base shape, fn(m, x)) -- every fn returns a view of x in torch.
VIEW_CASES = [
    ("view_flat", (3, 4), lambda m, x: x.view(12)),
    ("view_infer", (3, 4), lambda m, x: x.view(2, -1)),
    ("view_tuple", (3, 4), lambda m, x: x.view((4, 3))),
    ("view_to_scalar", (1,), lambda m, x: x.view(())),
    ("view_scalar_to_1", (), lambda m, x: x.view(1)),
    ("view_add_ones", (3, 4), lambda m, x: x.view(1, 3, 1, 4, 1)),
    ("view_empty", (0, 4), lambda m, x: x.view(4, 0)),
    ("view_empty_infer", (0, 4), lambda m, x: x.view(-1, 2)),
    ("reshape_view", (2, 3, 4), lambda m, x: x.reshape(6, 4)),
    ("reshape_infer", (2, 3, 4), lambda m, x: x.reshape(-1)),
    ("permute", (2, 3, 4), lambda m, x: x.permute(2, 0, 1)),
    ("permute_neg", (2, 3, 4), lambda m, x: x.permute(-1, -3, -2)),
    ("permute_tuple", (2, 3, 4), lambda m, x: x.permute((1, 2, 0))),
    ("transpose", (2, 3, 4), lambda m, x: x.transpose(0, 2)),
    ("transpose_neg", (2, 3, 4), lambda m, x: x.transpose(-1, -2)),
    ("transpose_same", (2, 3), lambda m, x: x.transpose(1, 1)),
    ("fn_transpose", (3, 5), lambda m, x: m.transpose(x, 0, 1)),
    ("t_2d", (3, 5), lambda m, x: x.t()),
    ("t_1d", (5,), lambda m, x: x.t()),
    ("t_0d", (), lambda m, x: x.t()),
    ("fn_t", (3, 5), lambda m, x: m.t(x)),
    ("expand", (3, 1), lambda m, x: x.expand(3, 4)),
    ("expand_tuple", (3, 1), lambda m, x: x.expand((3, 4))),
    ("expand_keep", (3, 1), lambda m, x: x.expand(-1, 5)),
    ("expand_new_dims", (3, 1), lambda m, x: x.expand(2, 3, 6)),
    ("expand_scalar", (), lambda m, x: x.expand(2, 3)),
    ("expand_zero", (1, 4), lambda m, x: x.expand(0, 4)),
    ("expand_as", (1, 4), lambda m, x: x.expand_as(m.zeros(3, 4))),
    ("narrow", (5, 6), lambda m, x: x.narrow(1, 2, 3)),
    ("narrow_neg_start", (5, 6), lambda m, x: x.narrow(0, -3, 2)),
    ("narrow_empty", (5, 6), lambda m, x: x.narrow(1, 6, 0)),
    ("fn_narrow", (5, 6), lambda m, x: m.narrow(x, 0, 1, 3)),
    ("select", (5, 6), lambda m, x: x.select(1, 4)),
    ("select_neg", (5, 6, 2), lambda m, x: x.select(-2, -1)),
    ("select_to_scalar", (5,), lambda m, x: x.select(0, 3)),
    ("fn_select", (5, 6), lambda m, x: m.select(x, 0, 2)),
    ("slice_step", (10,), lambda m, x: x[1:9:3]),
    ("slice_2d", (6, 7), lambda m, x: x[1:5:2, ::3]),
    ("slice_clamp", (6, 7), lambda m, x: x[2:100, -100:3]),
    ("slice_empty", (6, 7), lambda m, x: x[4:2]),
    ("slice_neg", (6, 7), lambda m, x: x[-3:, :-2]),
    ("squeeze_all", (1, 3, 1, 4, 1), lambda m, x: x.squeeze()),
    ("squeeze_dim", (1, 3, 1, 4), lambda m, x: x.squeeze(2)),
    ("squeeze_neg", (1, 3, 1, 4, 1), lambda m, x: x.squeeze(-1)),
    ("squeeze_noop", (1, 3, 1, 4), lambda m, x: x.squeeze(1)),
    ("squeeze_dims", (1, 3, 1, 4, 1), lambda m, x: x.squeeze((0, 4))),
    ("squeeze_dims_mixed", (1, 3, 1, 4, 1), lambda m, x: x.squeeze((1, 2))),
    ("squeeze_scalar", (), lambda m, x: x.squeeze()),
    ("squeeze_scalar_dim", (), lambda m, x: x.squeeze(0)),
    ("squeeze_all_ones", (1, 1), lambda m, x: x.squeeze()),
    ("fn_squeeze", (1, 3, 1), lambda m, x: m.squeeze(x, 0)),
    ("unsqueeze_front", (3, 4), lambda m, x: x.unsqueeze(0)),
    ("unsqueeze_back", (3, 4), lambda m, x: x.unsqueeze(2)),
    ("unsqueeze_neg", (3, 4), lambda m, x: x.unsqueeze(-1)),
    ("unsqueeze_mid_neg", (3, 4), lambda m, x: x.unsqueeze(-2)),
    ("unsqueeze_scalar", (), lambda m, x: x.unsqueeze(0)),
    ("fn_unsqueeze", (3, 4), lambda m, x: m.unsqueeze(x, 1)),
    ("flatten", (2, 3, 4), lambda m, x: x.flatten()),
    ("flatten_range", (2, 3, 4, 5), lambda m, x: x.flatten(1, 2)),
    ("flatten_neg", (2, 3, 4, 5), lambda m, x: x.flatten(-3, -1)),
    ("flatten_start", (2, 3, 4), lambda m, x: x.flatten(1)),
    ("flatten_scalar", (), lambda m, x: x.flatten()),
    ("flatten_single", (2, 3), lambda m, x: x.flatten(1, 1)),
    ("fn_flatten", (2, 3, 4), lambda m, x: m.flatten(x, 0, 1)),
    ("unflatten", (2, 12), lambda m, x: x.unflatten(1, (3, 4))),
    ("unflatten_infer", (2, 12), lambda m, x: x.unflatten(-1, (2, -1, 3))),
    ("unflatten_first", (12, 2), lambda m, x: x.unflatten(0, (4, 3))),
    ("as_strided", (4, 6), lambda m, x: x.as_strided((3, 2), (6, 2))),
    ("as_strided_offset", (4, 6), lambda m, x: x.as_strided((2, 2), (1, 6), 5)),
    ("as_strided_overlap", (10,), lambda m, x: x.as_strided((4, 3), (1, 1))),
    ("as_strided_stride0", (10,), lambda m, x: x.as_strided((3, 4), (0, 1), 2)),
    ("fn_as_strided", (4, 6), lambda m, x: m.as_strided(x, (2, 3), (3, 1), 1)),
    ("movedim", (2, 3, 4), lambda m, x: x.movedim(0, 2)),
    ("movedim_neg", (2, 3, 4), lambda m, x: x.movedim(-1, 0)),
    ("movedim_tuple", (2, 3, 4, 5), lambda m, x: x.movedim((0, 1), (3, 0))),
    ("fn_movedim", (2, 3, 4), lambda m, x: m.movedim(x, 1, 2)),
    ("ellipsis", (2, 3, 4), lambda m, x: x[..., 1]),
    ("none_index", (2, 3), lambda m, x: x[None, :, None]),
]


@pytest.mark.parametrize("kind", [False, "transpose", "slice"])
@pytest.mark.parametrize("case", VIEW_CASES, ids=[c[0] for c in VIEW_CASES])
def test_view_matches_torch_and_aliases(case, kind, rng):
    name, shape, fn = case
    base = pair(shape, "float32", noncontig=kind, rng=rng)
    expected, exc = None, None
    try:
        expected = fn(torch, base.t)
    except Exception as e:  # e.g. view() of a non-viewable layout: vt must raise alike
        exc = e
    if exc is not None:
        check_op(fn, base)
        return
    actual = fn(vt, base.v)
    assert_same(actual, expected)
    assert_layout_same(actual, expected)
    if expected.numel() == 0:
        return
    torch_aliases = expected.untyped_storage().data_ptr() == base.t.untyped_storage().data_ptr()
    if torch_aliases:  # reshape/flatten copy when they must; then vt's result must not alias either
        assert actual.data_ptr() == base.v.data_ptr() + (actual.storage_offset() - base.v.storage_offset()) * 4
    # Writes through the base are seen by the view, and writes through the view by the base.
    base.v.mul_(-2).add_(1)
    base.t.mul_(-2).add_(1)
    assert_same(actual, expected)
    if expected.stride() and 0 in expected.stride() or name.startswith("as_strided_overlap"):
        return  # overlapping views cannot be written element-wise
    actual.sub_(3)
    expected.sub_(3)
    assert_same(base.v, base.t)


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_views_every_dtype(dtype, rng):
    p = pair((3, 4, 5), dtype, rng=rng)
    for fn in (lambda m, x: x.transpose(0, 2), lambda m, x: x[1:, ::2, -1], lambda m, x: x.view(12, 5),
               lambda m, x: x.permute(1, 2, 0).unsqueeze(1), lambda m, x: x[:, :1].expand(3, 6, 5),
               lambda m, x: x.select(2, 3).t(), lambda m, x: x.narrow(1, 1, 2).flatten()):
        r = check_op(fn, p)
        assert_layout_same(*r)


def test_view_chains_match_torch(rng):
    p = pair((4, 6, 8), "float64", rng=rng)

    def chain(m, x):
        y = x.permute(2, 0, 1)[1::2]           # (4, 4, 6)
        y = y.transpose(0, 2).narrow(0, 1, 4)  # (4, 4, 4)
        y = y.unsqueeze(1).expand(4, 3, 4, 4)  # stride-0 dim
        return y.select(3, -1)[..., ::3]

    r = check_op(chain, p)
    assert_layout_same(*r)


def test_reshape_copies_when_needed(rng):
    p = pair((4, 6), "float32", noncontig="transpose", rng=rng)
    r = check_op(lambda m, x: x.reshape(24), p)
    # torch copies here: writes to the base must not reach the result
    p.v.fill_(0)
    p.t.fill_(0)
    assert_same(r[0], r[1])


@pytest.mark.parametrize("fn", [
    lambda m, x: x.transpose(0, 1).view(-1),
    lambda m, x: x[:, ::2].view(-1),
    lambda m, x: x.view(5, 5),
    lambda m, x: x.view(-1, -1),
    lambda m, x: x.view(7, -1),
], ids=["transposed", "strided", "numel", "two_infer", "indivisible"])
def test_view_errors(fn):
    check_op(fn, pair((4, 6), "float32", seed=0))


def test_view_compatible_noncontig():
    # merging two dims that are contiguous w.r.t. each other is allowed even if the whole tensor is not
    for fn in (lambda m, x: x[:, :, ::2].view(6, 3),  # dims 0,1 of a (2,3,3) slice
               lambda m, x: x.transpose(0, 2).view(3, 3, 2).shape,
               lambda m, x: x.permute(1, 2, 0)[..., :1].view(3, 6)):
        check_op(fn, pair((2, 3, 6), "float32", seed=1))


def test_unbind(rng):
    p = pair((3, 4, 2), "float32", rng=rng)
    for dim in (0, 1, -1):
        r = check_op(lambda m, x: x.unbind(dim), p)
        check_op(lambda m, x: m.unbind(x, dim), p)
        assert isinstance(r[0], tuple)
        for a, b in zip(*r):
            assert_layout_same(a, b)
    views = p.v.unbind(1)
    views[2].fill_(9)
    assert (p.v[:, 2] == 9).all().item()


def test_unbind_empty():
    check_op(lambda m, x: x.unbind(0), pair((0, 3), "float32", seed=0))
    check_op(lambda m, x: x.unbind(1), pair((0, 3), "float32", seed=0))


@pytest.mark.parametrize("fn", [
    lambda m, x: x.t(),                        # 3-D t()
    lambda m, x: x.permute(0, 1),              # wrong count
    lambda m, x: x.permute(0, 1, 1),           # repeated dim
    lambda m, x: x.transpose(0, 3),
    lambda m, x: x.expand(3, 4),               # fewer dims
    lambda m, x: x.expand(2, 5, 4),            # non-singleton mismatch
    lambda m, x: x.narrow(1, 2, 5),
    lambda m, x: x.narrow(3, 0, 1),
    lambda m, x: x.select(0, 2),
    lambda m, x: x.select(3, 0),
    lambda m, x: x.squeeze(5),
    lambda m, x: x.unsqueeze(4),
    lambda m, x: x.unsqueeze(-5),
    lambda m, x: x.flatten(2, 1),
    lambda m, x: x.unflatten(1, (2, 2)),
    lambda m, x: x.movedim(0, 5),
    lambda m, x: x.movedim((0, 0), (1, 2)),
    lambda m, x: x[::-1],
    lambda m, x: x[:, ::0],
], ids=["t3d", "perm_count", "perm_repeat", "transpose_oob", "expand_fewer", "expand_mismatch",
        "narrow_len", "narrow_dim", "select_idx", "select_dim", "squeeze_dim", "unsqueeze_hi", "unsqueeze_lo",
        "flatten_order", "unflatten_numel", "movedim_oob", "movedim_repeat", "neg_step", "zero_step"])
def test_view_op_errors_match_torch(fn):
    check_op(fn, pair((2, 3, 4), "float32", seed=0))


def test_as_strided_out_of_bounds_raises_like_torch():
    check_op(lambda m, x: x.as_strided((4, 4), (4, 1)), pair((10,), "float32", seed=0))


def test_T_nd_like_torch(rng):
    # torch deprecates .T on >2-D (it reverses dims); vt should still agree where torch accepts it.
    check_op(lambda m, x: x.T, pair((2, 3, 4), "float32", rng=rng))
