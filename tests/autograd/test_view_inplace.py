"""In-place ops on views under autograd (Note [View rebasing]): CopySlices on the base, view history regenerated
from the base, against torch on the same programs; and the errors that must still fire."""
import numpy as np
import pytest
import torch

import vibetensor.torch as vt
from vibetensor.autograd import gradgradcheck

from ag_helpers import check_grads, leaves, to_np


def run_both(fn, shapes, noncontig=False):
    """fn(m, *leaves) -> list of tensors; both sides backpropagate sum(out_i * w_i) and must agree on the outputs
    and on every leaf's gradient."""
    pairs = leaves(shapes, noncontig=noncontig)
    results = []
    for side, m in ((1, torch), (0, vt)):
        ins = [p[side] for p in pairs]
        outs = fn(m, *ins)
        rng = np.random.default_rng(3)
        loss = sum((o * m.from_numpy(rng.standard_normal(tuple(o.shape)))).sum() for o in outs)
        loss.backward()
        results.append(([to_np(o) for o in outs], [None if x.grad is None else to_np(x.grad) for x in ins]))
    (t_out, t_grads), (v_out, v_grads) = results
    for got, want in zip(v_out, t_out):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    for i, (got, want) in enumerate(zip(v_grads, t_grads)):
        assert (got is None) == (want is None), f"input {i}"
        if want is not None:
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12, err_msg=f"input {i}")


def test_inplace_on_slice_of_clone():
    def fn(m, a):
        x = a.clone()
        x[1:3].mul_(2)
        return [x]
    run_both(fn, [(4, 3)])


def test_grad_fns_after_rebase():
    a = vt.ones(4, 3, dtype=vt.float64, requires_grad=True)
    x = a.clone()
    v = x[1:3]
    v.mul_(2)
    assert x.grad_fn.name() == "CopySlices"
    assert v.grad_fn.name() == "AsStridedBackward0"
    assert v._is_view() and not x._is_view()
    np.testing.assert_allclose(v._base.detach().numpy(), x.detach().numpy())


@pytest.mark.parametrize("base_requires_grad", [True, False])
def test_setitem_with_value_requiring_grad(base_requires_grad):
    def fn(m, a, y):
        x = a * 1 if base_requires_grad else m.zeros(3, 4, dtype=m.float64)
        x[:, 0] = y * 2          # copy_ into a view
        x[1] = y[:2].sum()       # a second write, over part of the first
        return [x]
    run_both(fn, [(3, 4), (3,)])


def test_setitem_advanced_index_into_view():
    def fn(m, a, y):
        x = a * 1
        x[:, m.tensor([0, 2])] = y   # index_put_ on a slice view of x
        x[m.tensor([1])] += 1        # index then index_put_ on x itself
        return [x]
    run_both(fn, [(3, 4), (3, 2)])


def test_relu_on_transposed_view():
    def fn(m, a):
        x = a.clone()
        x.t().relu_()
        y = a * 1
        y.t()[1].sigmoid_()
        return [x, y]
    run_both(fn, [(3, 4)])


def test_chained_views():
    def fn(m, a, b):
        x = a * 1
        v = x[1:]
        w = v[:, ::2]
        w.mul_(b)
        w.exp_()
        return [x, v, w, v.transpose(0, 1)]
    run_both(fn, [(4, 6), (3, 3)])


def test_view_used_after_base_modified_in_place():
    def fn(m, a, b):
        x = a * 1
        v = x[0]
        e = x.unsqueeze(0).expand(2, 3, 4)  # overlapping view: its regenerated gradient sums
        x.mul_(b)
        x.add_(1)
        return [v * 3, e]
    run_both(fn, [(3, 4), (3, 4)])
    a = vt.ones(3, 4, dtype=vt.float64, requires_grad=True)
    x = a * 1
    v = x[0]
    assert v.grad_fn.name() == "SelectBackward0"
    x.mul_(2)
    assert v.grad_fn.name() == "AsStridedBackward0"
    assert v.grad_fn.next_functions[0][0].name() == "MulBackward0"


def test_views_of_no_grad_base_follow_it():
    # Views taken before the base had any history require grad once it does, as torch's.
    def fn(m, a):
        buf = m.zeros(2, 3, dtype=m.float64)
        rows = [buf[0], buf[1]]
        buf[0] = a * 2
        assert rows[0].requires_grad and rows[1].requires_grad
        return [rows[0] * 3, rows[1] + rows[0]]
    run_both(fn, [(3,)])


def test_inplace_reads_other_view_of_same_base():
    def fn(m, a):
        x = a * 1
        x[0:2].add_(x[1:3] * 2)
        x[2:].add_(x[:2].exp())
        return [x]
    run_both(fn, [(4, 2)])


def test_inplace_on_base_with_live_views():
    def fn(m, a, b):
        y = a * 1
        v = y[0]
        t = y.t()
        y.add_(b)            # refused before view rebasing: now v and t follow y's new history
        return [v, t * 2, y]
    run_both(fn, [(2, 3), (2, 3)])


def test_noncontiguous_leaf_and_base():
    def fn(m, a):
        x = a * 1         # a non-contiguous leaf: x is dense in a's order
        x[:, 1].mul_(3)
        x.diagonal().zero_()
        return [x]
    run_both(fn, [(3, 3)], noncontig=True)


def test_noncontiguous_root_base():
    arr = np.asfortranarray(np.arange(12.0).reshape(3, 4))
    (y, ty), = leaves([(4,)])
    for m, val in ((vt, y), (torch, ty)):
        x = m.from_numpy(arr.copy(order="K"))
        assert not x.is_contiguous()
        x[1] = val * 2
        (x * m.arange(12, dtype=m.float64).reshape(3, 4)).sum().backward()
    np.testing.assert_allclose(y.grad.numpy(), ty.grad.numpy())


def test_copy_slices_second_order():
    def fn(m, a, b):
        x = a * a
        x[1:].mul_(b[1:])
        x[:, 0] = b[:, 0] ** 3
        return x
    results = []
    for side, m in ((1, torch), (0, vt)):
        (a, ta), (b, tb) = leaves([(3, 4), (3, 4)], seed=4)
        a, b = (a, b) if m is vt else (ta, tb)
        ga, gb = m.autograd.grad(fn(m, a, b).sum(), [a, b], create_graph=True)
        ((ga * gb).sum() + (ga ** 2).sum()).backward()
        results.append([to_np(t) for t in (ga, gb, a.grad, b.grad)])
    for got, want in zip(results[1], results[0]):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    assert gradgradcheck(lambda a, b: fn(vt, a, b), (leaves([(3, 4)])[0][0], leaves([(3, 4)], seed=5)[0][0]))


def test_create_graph_through_scatter_views():
    def fn(m, a):
        return (a[1] ** 2).sum() + (a[:, 1:3] ** 3).sum() + (a.diagonal() ** 2).sum()
    results = []
    for m in (torch, vt):
        a = m.tensor(np.random.default_rng(1).standard_normal((3, 4)).tolist(), dtype=m.float64, requires_grad=True)
        g, = m.autograd.grad(fn(m, a), a, create_graph=True)
        (g * g).sum().backward()
        results.append((to_np(g), to_np(a.grad)))
    for got, want in zip(results[1], results[0]):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("program", [
    lambda x: (x.t().relu_(), x.t()[1].sigmoid_()),        # relu saved its output, sigmoid_ writes part of it
    lambda x: (x[1:, ::2].exp_(), x[1:, ::2].mul_(2.0)),   # a second view of the same region
    lambda x: x[2:].mul_(x[:2]),                          # mul_ saved the view x[:2], then wrote into x
])
def test_writes_that_torch_refuses_are_refused(program):
    for m in (torch, vt):
        a = m.ones(4, 3, dtype=m.float64, requires_grad=True)
        x = a * 1
        program(x)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            x.sum().backward()


def test_inplace_on_view_of_leaf_raises():
    a = vt.ones(3, dtype=vt.float64, requires_grad=True)
    with pytest.raises(RuntimeError, match="a view of a leaf Variable that requires grad is being used in an in-place"):
        a[1:].mul_(2)
    with pytest.raises(RuntimeError, match="a view of a leaf Variable that requires grad"):
        a[0] = 1.0
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place"):
        a.add_(1)
    with vt.no_grad():
        a[1:].mul_(2)  # optimizer-style updates stay allowed
    np.testing.assert_allclose(a.detach().numpy(), [1.0, 2.0, 2.0])


def test_version_counter_errors_through_views():
    a = vt.ones(2, 3, dtype=vt.float64, requires_grad=True)
    y = a.exp()            # saves its result
    y[0].mul_(2)           # written through a view
    with pytest.raises(RuntimeError, match=r"modified by an inplace operation: \[float64 \[2, 3\]\], which is output 0 "
                                           r"of ExpBackward0"):
        y.sum().backward()
    z = a * 1
    w = z * z              # saves z
    z.t()[1].add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        w.sum().backward()
    u = a * 1
    u.mul_(u)              # mul_ saves other (u) before writing it, as torch: the saved copy is stale
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        u.sum().backward()


def test_write_into_view_of_plain_tensor():
    # A base that does not require grad has no history to protect: the write through its view is recorded.
    def fn(m, y):
        x = m.zeros(4, dtype=m.float64)
        x[1:3] = y
        return x * 2
    check_grads(fn, leaves([(2,)]))


def test_hooks_retain_grad_and_grad_wrt_rebased_tensors():
    results = []
    for m in (torch, vt):
        a = m.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=m.float64, requires_grad=True)
        y = a * 1
        v = y[0]
        v.mul_(3)
        v.retain_grad()         # on the regenerated AsStridedBackward0
        seen = []
        v.register_hook(lambda g: seen.append(g.tolist()))
        (v * v).sum().backward(retain_graph=True)
        g, = m.autograd.grad((y * y).sum(), [y])
        z = a * 2
        w = z[:, 1:]
        z.add_(1)
        gz, = m.autograd.grad(w.sum() * 2, [z])
        results.append([a.grad.tolist(), v.grad.tolist(), seen, g.tolist(), gz.tolist()])
    assert results[1] == results[0]
