"""index_put_, index_add_, index_copy_ and index_fill_ (with their out-of-place forms and vt. functions) against
torch on random inputs: every dtype torch takes, negative dims, non-contiguous self, 0-dim and empty shapes,
duplicate indices (index_add_ accumulates them; index_copy_ is given none, torch leaves their winner open),
alpha, bad input raising torch's kind of error, gradients (float64), in-place semantics (self returned, version
bumped, leaves refused). A model using them (KV cache, top-1 MoE) is in tests/models/test_moe_decoder.py."""
import math

import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from helpers import Pair, assert_same, check_op, pair, pair_from_numpy

DTYPES = ["float32", "float64", "float16", "bfloat16", "int64", "int32", "int16", "uint8", "bool"]
SHAPE = (4, 5, 3)
# index_add with repeated indices sums several values near 10 in 16 bits: each addition rounds at the partial
# sum's ulp (1/16 in bfloat16) and vt rounds alpha * source once more than torch's fused kernel, so the
# tolerance is absolute at that scale.
ADD_TOL = {"float16": dict(rtol=1e-2, atol=0.1), "bfloat16": dict(rtol=1e-2, atol=0.1)}


def idx_pair(arr, dtype=np.int64):
    return pair_from_numpy(np.asarray(arr, dtype=dtype))


def fresh(shape, dtype, rng, noncontig=False):
    """A new pair each time: the in-place checks write into it."""
    return pair(shape, dtype, rng=rng, noncontig=noncontig)


def with_size(shape, dim, n):
    s = list(shape)
    s[dim] = n
    return tuple(s)


def alphas(dtype):
    return {"bool": [1, False], "uint8": [1, 3]}.get(dtype, [1, -1.5] if dtype.startswith(("float", "bf")) else [1, -3])


def fill_value(dtype):
    return {"bool": True, "uint8": 7}.get(dtype, 2.5 if dtype.startswith(("float", "bf")) else -3)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim", [0, 1, -1, -3])
def test_index_add(dtype, dim, rng):
    n = SHAPE[dim]
    index = rng.integers(0, n, size=7)  # 7 > n: repeats, which accumulate
    src = pair(with_size(SHAPE, dim, 7), dtype, rng=rng)
    for alpha in alphas(dtype):
        for idx_dtype in (np.int64, np.int32):
            i = idx_pair(index, idx_dtype)
            check_op(lambda m, a, i, s: m.index_add(a, dim, i, s, alpha=alpha), fresh(SHAPE, dtype, rng), i, src,
                     **ADD_TOL.get(dtype, {}))
            check_op(lambda m, a, i, s: a.index_add_(dim, i, s, alpha=alpha), fresh(SHAPE, dtype, rng, "transpose"),
                     i, src, **ADD_TOL.get(dtype, {}))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim", [0, 1, -1, -2])
def test_index_copy(dtype, dim, rng):
    n = SHAPE[dim]
    index = idx_pair(rng.permutation(n)[:n - 1])  # distinct: torch leaves the winner of a repeat open
    src = pair(with_size(SHAPE, dim, n - 1), dtype, rng=rng)
    check_op(lambda m, a, i, s: m.index_copy(a, dim, i, s), fresh(SHAPE, dtype, rng), index, src)
    check_op(lambda m, a, i, s: a.index_copy(dim, i, s), fresh(SHAPE, dtype, rng, "slice"), index, src)
    check_op(lambda m, a, i, s: a.index_copy_(dim, i, s), fresh(SHAPE, dtype, rng, "transpose"), index, src)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim", [0, 1, -1, -3])
def test_index_fill(dtype, dim, rng):
    n = SHAPE[dim]
    index = idx_pair(rng.integers(-n, n, size=6))  # negative entries count from the end here, and repeats
    value = fill_value(dtype)
    check_op(lambda m, a, i: m.index_fill(a, dim, i, value), fresh(SHAPE, dtype, rng), index)
    check_op(lambda m, a, i: a.index_fill_(dim, i, value), fresh(SHAPE, dtype, rng, "transpose"), index)
    # a 0-dim tensor value, of another dtype: converted to self's
    check_op(lambda m, a, i: a.index_fill(dim, i, m.tensor(value, dtype=m.float64)), fresh(SHAPE, dtype, rng, "slice"),
             index)


@pytest.mark.parametrize("dtype", DTYPES)
def test_index_put(dtype, rng):
    rows = idx_pair(rng.permutation(4)[:3] - 2)  # distinct, some negative
    cols = idx_pair(rng.integers(0, 5, size=(2, 1)))  # broadcasts against rows: a [2, 3] index shape
    mask = pair_from_numpy(rng.random(5) < 0.5)
    x = lambda: fresh(SHAPE, dtype, rng, "transpose")  # noqa: E731
    check_op(lambda m, a, i, v: a.index_put_((i,), v), x(), rows, pair((3, 5, 3), dtype, rng=rng))
    check_op(lambda m, a, i, v: a.index_put([i], v), x(), rows, pair((3,), dtype, rng=rng))  # broadcast values
    check_op(lambda m, a, i, j, v: m.index_put(a, (i, j), v), x(), rows, cols, pair((2, 3, 3), dtype, rng=rng))
    # a mask beside an integer index: [4, 1] against the mask's nonzero count
    check_op(lambda m, a, k, v: a.index_put((m.arange(4).unsqueeze(1), k), v), x(), mask, pair((), dtype, rng=rng))
    # accumulate: repeated indices add up (bool adds as `or`)
    dup = idx_pair(rng.integers(0, 4, size=6))
    check_op(lambda m, a, i, v: a.index_put_((i,), v, accumulate=True), x(), dup, pair((6, 5, 3), dtype, rng=rng),
             **ADD_TOL.get(dtype, {}))
    check_op(lambda m, a, i, v: m.index_put_(a, (i,), v, True), x(), dup, pair((1, 3), dtype, rng=rng),
             **ADD_TOL.get(dtype, {}))


@pytest.mark.parametrize("dtype", DTYPES)
def test_index_and_index_put_dense_runs(dtype, rng):
    """The typed-loop paths (Note [Dense index runs]): single elements (every dim indexed, cross_entropy's pick)
    and whole rows (an embedding table's), with repeated indices accumulating in index order, broadcast values,
    a storage offset, and a strided table whose rows are not dense (the per-position path) beside them."""
    tol = ADD_TOL.get(dtype, {})
    rows, cols = idx_pair(rng.integers(0, 6, size=40)), idx_pair(rng.integers(-7, 7, size=40))  # repeats
    for x in (lambda: fresh((6, 7), dtype, rng), lambda: fresh((6, 7), dtype, rng, "slice")):
        check_op(lambda m, a, i, j: a[i, j], x(), rows, cols)
        check_op(lambda m, a, i: a[i], x(), rows)
        check_op(lambda m, a, i, j, v: a.index_put_((i, j), v, accumulate=True), x(), rows, cols,
                 pair((40,), dtype, rng=rng), **tol)
        check_op(lambda m, a, i, v: a.index_put_((i,), v, accumulate=True), x(), rows, pair((40, 7), dtype, rng=rng),
                 **tol)
        check_op(lambda m, a, i, v: a.index_put_((i,), v, accumulate=True), x(), rows, pair((7,), dtype, rng=rng),
                 **tol)
        distinct = idx_pair(rng.permutation(6)[:4])  # without accumulate torch leaves a repeat's winner open
        check_op(lambda m, a, i, v: a.index_put_((i,), v), x(), distinct, pair((4, 7), dtype, rng=rng))
        check_op(lambda m, a, i, v: a[1:].index_put_((i,), v), x(), idx_pair([4, 0, 2]), pair((), dtype, rng=rng))


def test_zero_dim_and_empty(rng):
    s0 = pair((), "float32", rng=rng)
    for idx in ([0], 0):
        i = idx_pair(idx)
        check_op(lambda m, a, i: a.index_add(0, i, m.tensor(2.5), alpha=2), s0, i)
        check_op(lambda m, a, i: a.index_add(-1, i, m.tensor(2.5)), s0, i)
        check_op(lambda m, a, i: a.index_copy(0, i, m.tensor(2.5)), s0, i)
        check_op(lambda m, a, i: a.index_fill(0, i, -1.0), s0, i)
    check_op(lambda m, a: a.index_copy(0, m.tensor([0]), m.tensor([2.5])), s0)  # a 1-element source too
    check_op(lambda m, a: a.index_fill(-1, m.tensor([-1]), 4.0), s0)
    check_op(lambda m: m.zeros(3).index_copy(0, m.tensor([1]), m.tensor(6.0)))  # 0-dim source into a vector
    x = pair((3, 4), "float32", rng=rng)
    check_op(lambda m, a: a.index_add(1, m.tensor(2), m.ones(3, 1)), x)  # 0-dim index
    check_op(lambda m, a: a.index_copy(1, m.tensor(2), m.ones(3, 1)), x)
    check_op(lambda m, a: a.index_fill(1, m.tensor(-2), 9.0), x)
    for op in ("index_add", "index_copy"):
        check_op(lambda m, a: getattr(a, op)(0, m.tensor([], dtype=m.int64), m.ones(0, 4)), x)  # empty index
        check_op(lambda m: getattr(m.zeros(2, 0, 3), op)(1, m.tensor([], dtype=m.int64), m.ones(2, 0, 3)))
        # nothing is written, so torch checks no index
        check_op(lambda m: getattr(m.zeros(0, 4), op)(1, m.tensor([7]), m.ones(0, 1)))
    check_op(lambda m, a: a.index_fill(0, m.tensor([], dtype=m.int64), 1.0), x)
    check_op(lambda m: m.zeros(0, 4).index_fill(1, m.tensor([7]), 1.0))
    check_op(lambda m, a: a.index_put((m.tensor([], dtype=m.int64),), m.ones(0, 4)), x)


def test_value_conversions(rng):
    ints = pair((5,), "int64", rng=rng)
    check_op(lambda m, a: a.index_fill(0, m.tensor([1]), -2.7), ints)  # truncated toward zero
    check_op(lambda m, a: a.index_add(0, m.tensor([1, 1]), m.tensor([3, 4]), alpha=1.5), ints)  # alpha -> 1
    check_op(lambda m: m.zeros(3, dtype=m.int8).index_fill(0, m.tensor([0]), 300))  # overflow
    check_op(lambda m: m.zeros(3, dtype=m.bool).index_fill(0, m.tensor([0]), 2))
    check_op(lambda m: m.zeros(3).index_fill(0, m.tensor([0, 2]), math.inf))


def test_errors(rng):
    x = lambda: pair((3, 4), "float32", rng=rng)  # noqa: E731
    i = lambda: idx_pair([0, 2])  # noqa: E731
    cases = {
        "index_add": [
            lambda m, a, i: a.index_add(0, i.float(), m.ones(2, 4)),           # float index
            lambda m, a, i: a.index_add(0, i.short(), m.ones(2, 4)),           # int16 index
            lambda m, a, i: a.index_add(0, i.reshape(1, 2), m.ones(2, 4)),     # 2-d index
            lambda m, a, i: a.index_add(0, i, m.ones(3, 4)),                   # too many source rows
            lambda m, a, i: a.index_add(0, i, m.ones(2, 5)),                   # source shape off dim
            lambda m, a, i: a.index_add(0, i, m.ones(2, 4, 1)),                # source dims
            lambda m, a, i: a.index_add(1, i, m.tensor(1.0)),                  # dim beyond a 0-dim source
            lambda m, a, i: a.index_add(0, i, m.ones(2, 4, dtype=m.float64)),  # dtype
            lambda m, a, i: a.index_add(2, i, m.ones(2, 4)),                   # dim out of range
            lambda m, a, i: a.index_add(0, i, 1.0),                            # a number as source
            lambda m, a, i: a.index_add(0, i, m.ones(2, 4), 2),                # alpha is keyword-only
            lambda m, a, i: a.index_add_(0, i, a[:2]),                         # source overlaps self
        ],
        "index_copy": [
            lambda m, a, i: a.index_copy(0, i.int(), m.ones(2, 4)),            # int32: not for copy
            lambda m, a, i: a.index_copy(0, i.reshape(2, 1), m.ones(2, 4)),
            lambda m, a, i: a.index_copy(0, i, m.ones(3, 4)),
            lambda m, a, i: a.index_copy(0, i, m.ones(2, 5)),
            lambda m, a, i: a.index_copy(0, i, m.ones(2, 4, 1)),
            lambda m, a, i: a.index_copy(0, i, m.tensor(1.0)),                 # scalar source, two indices
            lambda m, a, i: a.index_copy(0, i[:1], m.tensor(1.0)),             # scalar source, slice shapes
            lambda m, a, i: a.index_copy(0, i, m.ones(2, 4, dtype=m.float64)),
            lambda m, a, i: a.index_copy(-3, i, m.ones(2, 4)),
        ],
        "index_fill": [
            lambda m, a, i: a.index_fill(1, i.int(), 1.0),                     # int32: not for fill
            lambda m, a, i: a.index_fill(1, i.float(), 1.0),
            lambda m, a, i: a.index_fill(1, i.reshape(1, 2), 1.0),
            lambda m, a, i: a.index_fill(1, i, m.ones(1)),                     # value not 0-dim
            lambda m, a, i: a.index_fill(1, i, 1j),
            lambda m, a, i: a.index_fill(1, i, None),
            lambda m, a, i: a.index_fill(1, i, "1"),
            lambda m, a, i: a.index_fill(2, i, 1.0),
        ],
        "index_put": [
            lambda m, a, i: a.index_put((i.float(),), m.tensor(1.0)),
            lambda m, a, i: a.index_put((i.short(),), m.tensor(1.0)),
            lambda m, a, i: a.index_put((i,), m.tensor(1.0, dtype=m.float64)),  # dtype (vt's op would convert)
            lambda m, a, i: a.index_put((i,), m.tensor(1)),
            lambda m, a, i: a.index_put((i,), m.ones(3)),                       # values do not broadcast
            lambda m, a, i: a.index_put((i, i, i), m.tensor(1.0)),              # too many indices
            lambda m, a, i: a.index_put((i, i[:1].expand(3)), m.tensor(1.0)),   # indices do not broadcast
            lambda m, a, i: a.index_put((m.tensor([True, False]),), m.tensor(1.0)),  # mask shape
            lambda m, a, i: a.index_put((), m.tensor(1.0)),
            lambda m, a, i: a.index_put((None, i), m.tensor(1.0)),              # torch's binding takes no None
            lambda m, a, i: a.index_put(i, m.tensor(1.0)),                      # not a tuple
            lambda m, a, i: a.index_put((i,), 1.0),                             # a number as values
            lambda m, a, i: a.index_put_((i,), a[0]),                           # values overlap self
        ],
    }
    for op, fns in cases.items():
        for k, fn in enumerate(fns):
            check_op(fn, x(), i(), msg=f"{op} case {k}: ")


@pytest.mark.parametrize("shape,dim", [((5,), 0), ((3, 4), 0), ((3, 4), 1), ((2, 3, 4), 1), ((2, 3, 4), -1), ((), 0)])
@pytest.mark.parametrize("bad", [-1, 9])
def test_out_of_range_index(shape, dim, bad):
    """torch rejects negative indices in index_add_ / index_copy_ (index_fill_ and index_put_ wrap them), and its
    CPU kernels disagree on the kind: index_add_ on the outer dims of a matrix or more raises a RuntimeError
    (it runs scatter_add), elsewhere an IndexError."""
    x = pair(shape, "float32", seed=0)
    src = lambda m: m.ones(*with_size(shape, dim, 2)) if shape else m.tensor(1.0)  # noqa: E731
    index = lambda m: m.tensor([0, bad]) if shape else m.tensor([bad])  # noqa: E731
    check_op(lambda m, a: a.index_add(dim, index(m), src(m)), x)
    check_op(lambda m, a: a.index_copy(dim, index(m), src(m)), x)
    check_op(lambda m, a: a.index_fill(dim, index(m) * 2, 1.0), x)  # -2 wraps, 18 does not
    if shape:
        check_op(lambda m, a: a.index_put((index(m) * 3,), m.tensor(1.0)), x)


def test_in_place_semantics():
    base = vt.zeros(4, 3)
    view = base.t()  # non-contiguous: the writes must land in base
    for op, args in [("index_add_", (1, vt.tensor([1, 1]), vt.ones(3, 2))),
                     ("index_copy_", (1, vt.tensor([0, 3]), vt.ones(3, 2))),
                     ("index_fill_", (0, vt.tensor([2]), 5.0)),
                     ("index_put_", ((vt.tensor([2]),), vt.tensor(7.0)))]:
        before = base._version
        assert getattr(view, op)(*args) is view, op
        assert base._version > before, f"{op} did not bump the version counter"
    np.testing.assert_array_equal(base.numpy(), [[1, 1, 7], [2, 2, 7], [0, 0, 7], [1, 1, 7]])
    none = vt.tensor([], dtype=vt.int64)
    for op, args in [("index_add_", (0, none, vt.ones(0, 3))), ("index_copy_", (1, none, vt.ones(4, 0))),
                     ("index_fill_", (1, none, 1.0))]:  # nothing to write still counts as a write, as in torch
        before = base._version
        getattr(base, op)(*args)
        assert base._version > before, f"{op} with an empty index did not bump the version counter"
    for op, args in [("index_add_", (0, vt.tensor([0]), vt.ones(1))), ("index_copy_", (0, vt.tensor([0]), vt.ones(1))),
                     ("index_fill_", (0, vt.tensor([0]), 1.0)), ("index_put_", ((vt.tensor([0]),), vt.ones(1)))]:
        for m in (torch, vt):
            leaf = m.zeros(3, requires_grad=True)
            with pytest.raises(RuntimeError, match="^a leaf Variable that requires grad"):
                getattr(leaf, op)(*args if m is vt else _as_torch(args))
            with m.no_grad():
                getattr(leaf, op)(*args if m is vt else _as_torch(args))
            assert leaf.detach().tolist() == [1, 0, 0], (op, m.__name__)


def _as_torch(args):
    conv = lambda a: torch.from_numpy(a.numpy().copy()) if isinstance(a, vt.Tensor) else a  # noqa: E731
    return tuple(tuple(conv(b) for b in a) if isinstance(a, tuple) else conv(a) for a in args)


# ------------------------------------------------------------------------------------------ gradients


def grads_match(fn, arrays, seed=1):
    """fn(m, *leaves) on float64 leaves built from `arrays` on both sides; the same upstream gradient; outputs and
    every leaf's gradient compared."""
    leaves = [Pair(vt.from_numpy(a.copy()).requires_grad_(), torch.from_numpy(a.copy()).requires_grad_())
              for a in arrays]
    out_t = fn(torch, *[p.t for p in leaves])
    out_v = fn(vt, *[p.v for p in leaves])
    assert_same(out_v.detach(), out_t.detach())
    g = np.random.default_rng(seed).standard_normal(tuple(out_t.shape))
    out_t.backward(torch.from_numpy(g.copy()))
    out_v.backward(vt.from_numpy(g.copy()))
    for k, p in enumerate(leaves):
        assert (p.v.grad is None) == (p.t.grad is None), f"leaf {k}"
        if p.t.grad is not None:
            assert_same(p.v.grad, p.t.grad, msg=f"leaf {k} grad: ")


def ix(m, *v):
    return m.tensor(list(v))


GRAD_CASES = {
    "index_add": (lambda m, x, s: x.index_add(1, ix(m, 3, 0, 3), s, alpha=-2.5), [(2, 4, 3), (2, 3, 3)]),
    "index_add_noncontig": (lambda m, x, s: x.transpose(0, 2).index_add(0, ix(m, 1, 1), s), [(2, 4, 3), (2, 4, 2)]),
    "index_add_inplace": (lambda m, x, s: (x * 2).index_add_(-1, ix(m, 0, 2, 0), s * s), [(4, 3), (4, 3)]),
    "index_copy": (lambda m, x, s: x.index_copy(0, ix(m, 2, 0), s), [(3, 4), (2, 4)]),
    "index_copy_inplace": (lambda m, x, s: (x + 1).index_copy_(1, ix(m, 3), s), [(3, 4), (3, 1)]),
    "index_copy_0dim": (lambda m, x, s: x.index_copy(0, ix(m, 0), s), [(), ()]),
    "index_fill": (lambda m, x: x.index_fill(1, ix(m, 1, -1, 1), 3.0), [(3, 4)]),
    # the value's gradient: each filled position once, repeats in the index notwithstanding
    "index_fill_tensor_value": (lambda m, x, v: x.index_fill(1, ix(m, 2, 2, 0), v), [(3, 4), ()]),
    "index_fill_inplace": (lambda m, x, v: (x * 1).index_fill_(0, ix(m, 1), v * 2), [(3, 4), ()]),
    "index_put": (lambda m, x, v: x.index_put((ix(m, 0, 2), ix(m, 1, 1)), v), [(3, 4), (2,)]),
    "index_put_broadcast": (lambda m, x, v: x.index_put((ix(m, 2, 0),), v), [(3, 4), (4,)]),
    "index_put_accumulate": (lambda m, x, v: m.index_put(x, (ix(m, 1, 1, 0),), v, accumulate=True), [(3, 4), (3, 4)]),
    "index_put_inplace": (lambda m, x, v: (x * 3).index_put_((ix(m, -1),), v.exp()), [(3, 4), (4,)]),
    # a buffer that needs no gradient becomes part of the graph through what is written into it
    "index_add_into_buffer": (lambda m, s: m.zeros(3, 4, dtype=m.float64).index_add_(1, ix(m, 1, 1), s), [(3, 2)]),
}


@pytest.mark.parametrize("name", list(GRAD_CASES))
def test_gradients(name, rng):
    fn, shapes = GRAD_CASES[name]
    grads_match(fn, [rng.standard_normal(s) for s in shapes])
