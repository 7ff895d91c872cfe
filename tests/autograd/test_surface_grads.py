"""Gradients of the new ops against torch's (float64, the same upstream gradient on both sides): gather and the
scatters (duplicate indices; a src larger than index, which torch's backward refuses, against NumPy), index_select, masked_select, sort/topk, the compositions
(tril, flip, roll, repeat, repeat_interleave, unfold, lerp, addcmul/addcdiv, einsum, baddbmm, pad), conv2d,
the poolings and F.unfold/F.fold; plus second order through gather and conv2d (gradcheck)."""
import numpy as np
import pytest
import vibetensor.torch as vt
from ag_helpers import check_grads, leaves


def idx(m, a):
    return m.tensor(np.asarray(a, dtype=np.int64))


DUP = [[0, 2, 2], [1, 1, 0], [3, 0, 3]]  # repeats within columns


@pytest.mark.parametrize("name,fn,shapes", [
    ("gather", lambda m, x: m.gather(x, 1, idx(m, DUP)), [(4, 5)]),
    ("scatter", lambda m, x, s: x.scatter(0, idx(m, [[0, 1], [2, 3]]), s), [(4, 3), (2, 2)]),
    ("scatter_add", lambda m, x, s: x.scatter_add(0, idx(m, DUP), s), [(4, 3), (3, 3)]),
    ("scatter_reduce_sum", lambda m, x, s: x.scatter_reduce(0, idx(m, DUP), s, "sum", include_self=False),
     [(4, 3), (3, 3)]),
    ("scatter_reduce_mean", lambda m, x, s: x.scatter_reduce(0, idx(m, DUP), s, "mean"), [(4, 3), (3, 3)]),
    ("scatter_reduce_amax", lambda m, x, s: x.scatter_reduce(0, idx(m, DUP), s, "amax"), [(4, 3), (3, 3)]),
    ("scatter_reduce_amin_noself", lambda m, x, s: x.scatter_reduce(0, idx(m, DUP), s, "amin", include_self=False),
     [(4, 3), (3, 3)]),
    ("index_select", lambda m, x: x.index_select(1, idx(m, [4, 0, 0, 2])), [(3, 5)]),
    ("masked_select", lambda m, x: x.masked_select(m.tensor([True, False, True, True])), [(3, 4)]),
    ("sort", lambda m, x: m.sort(x, 1, descending=True)[0] * m.arange(5.0, dtype=m.float64), [(3, 5)]),
    ("topk", lambda m, x: m.topk(x, 2, dim=0)[0], [(4, 3)]),
    ("tril", lambda m, x: x.tril(-1) + x.triu(2), [(4, 5)]),
    ("flip_roll", lambda m, x: m.roll(x.flip(0, 1), (1, -2), (0, 1)), [(3, 4)]),
    ("repeat", lambda m, x: x.repeat(2, 1, 3), [(2, 3)]),
    ("repeat_interleave", lambda m, x: x.repeat_interleave(m.tensor([2, 0, 1]), dim=0), [(3, 2)]),
    ("unfold", lambda m, x: x.unfold(1, 3, 1) * 1.0, [(2, 6)]),
    ("lerp", lambda m, x, y, w: m.lerp(x, y, w), [(3, 4), (3, 4), (3, 4)]),
    ("addcmul_addcdiv", lambda m, x, y, z: m.addcdiv(m.addcmul(x, y, z, value=0.5), y, z.abs() + 1, value=2),
     [(3, 4), (3, 4), (3, 4)]),
    ("einsum", lambda m, x, y: m.einsum("bij,bkj->bik", x, y), [(2, 3, 4), (2, 5, 4)]),
    ("einsum_trace", lambda m, x: m.einsum("ii->", x), [(4, 4)]),
    ("baddbmm", lambda m, i, x, y: m.baddbmm(i, x, y, beta=0.5, alpha=2), [(2, 3, 5), (2, 3, 4), (2, 4, 5)]),
    ("pad", lambda m, x: m.nn.functional.pad(x, (1, 2, -1, 1)), [(2, 3, 4)]),
    ("pad_reflect", lambda m, x: m.nn.functional.pad(x, (2, 1), mode="reflect"), [(2, 3, 4)]),
    ("conv2d", lambda m, x, w, b: m.nn.functional.conv2d(x, w, b, stride=2, padding=1), [(2, 3, 7, 6), (4, 3, 3, 3),
                                                                                          (4,)]),
    ("conv2d_groups", lambda m, x, w: m.nn.functional.conv2d(x, w, groups=2, dilation=2), [(1, 4, 7, 7),
                                                                                           (2, 2, 2, 3)]),
    ("max_pool2d", lambda m, x: m.nn.functional.max_pool2d(x, 3, 2, 1, ceil_mode=True), [(2, 2, 7, 6)]),
    ("avg_pool2d", lambda m, x: m.nn.functional.avg_pool2d(x, 3, 2, 1, count_include_pad=False), [(2, 2, 7, 6)]),
    ("unfold_fold", lambda m, x: m.nn.functional.fold(m.nn.functional.unfold(x, 2, padding=1) * 2, (5, 4), 2,
                                                       padding=1), [(1, 2, 5, 4)]),
])
def test_gradients_match_torch(name, fn, shapes):
    check_grads(fn, leaves(shapes, noncontig=name in ("gather", "conv2d")))


def test_scatter_src_larger_than_index():
    src = vt.tensor(np.arange(12.0).reshape(4, 3), requires_grad=True)
    out = vt.zeros(3, 3, dtype=vt.float64).scatter_add(0, vt.tensor([[0, 1, 2], [2, 2, 0]]), src)
    out.backward(vt.tensor(np.arange(9.0).reshape(3, 3)))
    np.testing.assert_array_equal(src.grad.numpy(), [[0, 4, 8], [6, 7, 2], [0, 0, 0], [0, 0, 0]])


def test_second_order_through_gather_and_conv():
    x = vt.tensor(np.random.default_rng(0).standard_normal((3, 4)), requires_grad=True)
    assert vt.autograd.gradcheck(lambda a: (vt.gather(a, 1, vt.tensor([[0, 3], [1, 1], [2, 0]])) ** 2), (x,))
    assert vt.autograd.gradgradcheck(lambda a: (vt.gather(a, 1, vt.tensor([[0, 3], [1, 1], [2, 0]])) ** 2), (x,))
    w = vt.tensor(np.random.default_rng(1).standard_normal((2, 1, 2, 2)), requires_grad=True)
    img = vt.tensor(np.random.default_rng(2).standard_normal((1, 1, 4, 4)), requires_grad=True)
    assert vt.autograd.gradgradcheck(lambda a, b: vt.nn.functional.conv2d(a, b).tanh(), (img, w))


def test_prod_scatter_reduce_backward_says_not_implemented():
    x = vt.ones(3, requires_grad=True)
    y = x.scatter_reduce(0, vt.tensor([0, 0]), vt.full((2,), 2.0), "prod")
    with pytest.raises(RuntimeError, match="not implemented"):
        y.sum().backward()


@pytest.mark.parametrize("reduce", ["amax", "amin"])
@pytest.mark.parametrize("include_self", [True, False])
def test_scatter_reduce_extreme_ties_share_as_torch(reduce, include_self):
    """Ties between self and several src values: torch counts self among the ties even without include_self
    (then gives self's scattered positions nothing), so each of two tied src values gets a third."""
    self_vals, src_vals, index = [2.0, 5.0, 1.0], [2.0, 2.0, 7.0, 1.0], [0, 0, 1, 2]
    torch = pytest.importorskip("torch")
    grads = []
    for m in (vt, torch):
        x = m.tensor(self_vals, requires_grad=True)
        s = m.tensor(src_vals, requires_grad=True)
        y = x.scatter_reduce(0, m.tensor(index), s, reduce, include_self=include_self)
        (y * m.tensor([1.0, 2.0, 3.0])).sum().backward()
        grads.append((x.grad.tolist(), s.grad.tolist()))
    assert grads[0][0] == pytest.approx(grads[1][0]) and grads[0][1] == pytest.approx(grads[1][1])


@pytest.mark.parametrize("exponent", [False, True, 0, 0.0, 2])
def test_pow_scalar_exponent_gradient_at_zero_as_torch(exponent):
    """Fuzz seed 101: torch zeroes x ** e's gradient for e == 0 by Scalar::equal(0.0), which is false for a bool,
    so x ** False at x = 0 has gradient 0 * inf = NaN there; vibetensor gave 0."""
    torch = pytest.importorskip("torch")
    grads = []
    for m in (vt, torch):
        x = m.tensor([0.0, 2.0, -1.5], requires_grad=True)
        m.pow(x, exponent).sum().backward()
        grads.append(np.asarray(x.grad.tolist()))
    np.testing.assert_array_equal(grads[0], grads[1])
