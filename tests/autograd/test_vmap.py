"""vt.func.vmap (and vt.vmap) against torch.func.vmap: in_dims / out_dims as ints (negative too), None and nested
tuples / dicts, nested vmap, kwargs, python-number outputs, chunk_size and randomness, a batch of size 0, the errors
torch raises, and its compositions with the differentiation transforms - per-sample gradients of a model through
functional_call, batched Jacobians and Hessians."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.func as tf

import vibetensor.torch as vt
from vibetensor.torch import func as vf

TOL = dict(rtol=1e-10, atol=1e-12)


def arrays(*shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s) for s in shapes]


def same(rv, rt):
    if isinstance(rt, (tuple, list)):
        assert type(rv) is type(rt) and len(rv) == len(rt), (type(rv), type(rt))
        for a, b in zip(rv, rt):
            same(a, b)
    elif isinstance(rt, dict):
        assert isinstance(rv, dict) and list(rv) == list(rt)
        for k in rt:
            same(rv[k], rt[k])
    elif isinstance(rt, torch.Tensor):
        assert isinstance(rv, vt.Tensor), type(rv)
        assert tuple(rv.shape) == tuple(rt.shape), (tuple(rv.shape), tuple(rt.shape))
        np.testing.assert_allclose(rv.detach().numpy(), rt.detach().numpy(), **TOL)
    else:
        assert rv == rt


def both(fn, args, **kw):
    """vmap(fn(m), **kw)(*args) on both sides; args are numpy arrays (-> tensors) or anything else (as is)."""
    def conv(m, a):
        if isinstance(a, np.ndarray):
            return m.tensor(a)
        if isinstance(a, dict):
            return {k: conv(m, v) for k, v in a.items()}
        if isinstance(a, (tuple, list)):
            return type(a)(conv(m, v) for v in a)
        return a

    rv = vf.vmap(fn(vt), **kw)(*conv(vt, args))
    rt = tf.vmap(fn(torch), **kw)(*conv(torch, args))
    same(rv, rt)
    return rv


def f_mv(m):
    return lambda w, x: m.matmul(w, x).tanh()


@pytest.mark.parametrize("shapes,in_dims,out_dims", [
    ([(3, 4), (5, 4)], (None, 0), 0),
    ([(3, 4), (4, 5)], (None, 1), 0),
    ([(3, 4), (4, 5)], (None, -1), 1),
    ([(2, 3, 4), (2, 4)], 0, -1),
    ([(3, 4, 2), (4, 2)], (2, -1), 0),
    ([(3, 4), (4, 1)], (None, 1), (0,)),
])
def test_in_and_out_dims(shapes, in_dims, out_dims):
    both(f_mv, arrays(*shapes), in_dims=in_dims, out_dims=out_dims)


def test_pytree_inputs_and_outputs():
    def fn(m):
        return lambda p, xs: ({"y": p["w"] * xs[0], "s": (p["b"] + xs[1]).sum()}, xs[1].exp())

    a, b, c, d = arrays((3,), (2,), (5, 3), (2, 5))
    both(fn, [{"w": a, "b": b}, (c, d)], in_dims=({"w": None, "b": None}, (0, 1)))
    both(fn, [{"w": a, "b": b}, (c, d)], in_dims=(None, (0, 1)), out_dims=({"y": 1, "s": 0}, -1))


def test_unbatched_outputs_numbers_and_kwargs():
    def fn(m):
        return lambda x, k=None: (x * k, 7, k.sum())

    x, k = arrays((4, 3), (3,))
    rv = vf.vmap(fn(vt), out_dims=(0, None, None))(vt.tensor(x), k=vt.tensor(k))
    rt = tf.vmap(fn(torch), out_dims=(0, None, None))(torch.tensor(x), k=torch.tensor(k))
    same(rv, rt)
    both(lambda m: lambda x: m.ones(2, dtype=m.float64), arrays((4, 3)))  # an output that ignores the batch
    both(lambda m: lambda x, n, s: (x * n).sum() + len(s), [x, 2.5, "abc"], in_dims=(0, None, None))


def test_nested_vmap():
    def dot(m):
        return lambda a, b: (a * b).sum()

    a, b = arrays((3, 5), (4, 5))
    rv = vf.vmap(vf.vmap(dot(vt), in_dims=(None, 0)), in_dims=(0, None))(vt.tensor(a), vt.tensor(b))
    rt = tf.vmap(tf.vmap(dot(torch), in_dims=(None, 0)), in_dims=(0, None))(torch.tensor(a), torch.tensor(b))
    same(rv, rt)
    np.testing.assert_allclose(rv.numpy(), a @ b.T, **TOL)
    x = arrays((2, 3, 4))[0]
    same(vt.vmap(vt.vmap(lambda r: r.cumsum(0), in_dims=1, out_dims=1))(vt.tensor(x)),
         torch.vmap(torch.vmap(lambda r: r.cumsum(0), in_dims=1, out_dims=1))(torch.tensor(x)))


def test_batch_of_size_zero():
    both(f_mv, arrays((3, 4), (0, 4)), in_dims=(None, 0))
    both(lambda m: lambda x: (x.sum(), x * 2), arrays((0, 2)), out_dims=(0, 1))


def test_chunk_size_changes_nothing():
    a = arrays((3, 4), (7, 4))
    both(f_mv, a, in_dims=(None, 0), chunk_size=2)
    both(f_mv, a, in_dims=(None, 0), chunk_size=100)


def test_randomness():
    x = vt.zeros(4, 3)
    with pytest.raises(RuntimeError, match="called random operation while in randomness error mode"):
        vf.vmap(lambda r: r + vt.rand(3))(x)
    vt.manual_seed(0)
    same_rows = vf.vmap(lambda r: r + vt.rand(3), randomness="same")(x).numpy()
    assert np.all(same_rows == same_rows[0]) and len(set(same_rows[0])) == 3
    different = vf.vmap(lambda r: r + vt.rand(3), randomness="different")(x).numpy()
    assert len({tuple(row) for row in different}) == 4
    again = vf.vmap(lambda r: r + vt.rand(3), randomness="same")(x).numpy()
    assert not np.array_equal(again, same_rows)  # the stream moved on


def raise_both(exc, match, call):
    with pytest.raises(exc, match=match):
        call(torch, tf)
    with pytest.raises(exc, match=match):
        call(vt, vf)


def test_errors():
    x = arrays((2, 3), (3, 3))
    t = lambda m, i=0: m.tensor(x[i])  # noqa: E731
    raise_both(RuntimeError, "Only allowed values for randomness are 'error', 'different', or 'same'. Got x",
               lambda m, F: F.vmap(lambda a: a, randomness="x"))
    raise_both(ValueError, r"chunk_size should be None or greater than 0. \(got 0\)",
               lambda m, F: F.vmap(lambda a: a, chunk_size=0))
    raise_both(ValueError, "Expected all tensors to have the same size in the mapped dimension, got sizes \\[2, 3\\]",
               lambda m, F: F.vmap(lambda a, b: a + b)(t(m), t(m, 1)))
    raise_both(ValueError, "expected `in_dims` to be int or a \\(potentially nested\\) tuple",
               lambda m, F: F.vmap(lambda a: a, in_dims=[0])(t(m)))
    raise_both(ValueError, "expected `in_dims` to be int or a \\(potentially nested\\) tuple",
               lambda m, F: F.vmap(lambda a: a, in_dims=None)(t(m)))
    raise_both(ValueError, "in_dims is not compatible with the structure of `inputs`",
               lambda m, F: F.vmap(lambda a, b: a, in_dims=(0,))(t(m), t(m)))
    raise_both(ValueError, "in_dims is not compatible with the structure of `inputs`",
               lambda m, F: F.vmap(lambda p: p, in_dims=({"a": 0},))({"b": t(m)}))
    raise_both(ValueError, "Got in_dim=1.0 for an input but in_dim must be either an integer dimension or None",
               lambda m, F: F.vmap(lambda a: a, in_dims=(1.0,))(t(m)))
    raise_both(ValueError, "input is of type <class 'int'>. We cannot vmap over non-Tensor arguments",
               lambda m, F: F.vmap(lambda a, b: a, in_dims=(0, 0))(t(m), 2))
    raise_both(ValueError, "expected in_dim to satisfy -2 <= in_dim < 2",
               lambda m, F: F.vmap(lambda a: a, in_dims=2)(t(m)))
    raise_both(ValueError, "got no inputs", lambda m, F: F.vmap(lambda: 1)())
    raise_both(ValueError, "Expected at least one Tensor to vmap over",
               lambda m, F: F.vmap(lambda a: a, in_dims=(None,))(t(m)))
    raise_both(ValueError, "out_dims is not compatible with the structure of `outputs`",
               lambda m, F: F.vmap(lambda a: (a, a), out_dims=(0, 1, 2))(t(m)))
    raise_both(ValueError, "must only return Tensors, got type <class 'int'>",
               lambda m, F: F.vmap(lambda a: (a, 3))(t(m)))
    raise_both(ValueError, "`out_dims` must be an int, None or a python collection of ints",
               lambda m, F: F.vmap(lambda a: a, out_dims="a")(t(m)))
    raise_both(ValueError, "can not return a BatchedTensor when out_dim is None",
               lambda m, F: F.vmap(lambda a: a * 2, out_dims=None)(t(m)))
    with pytest.raises(Exception, match="out of range|Dimension"):
        vf.vmap(lambda a: a, out_dims=5)(t(vt))


# ---- compositions -------------------------------------------------------------------------------------------
def models():
    torch.manual_seed(0)
    tm = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh(), torch.nn.Linear(7, 3)).double()
    vm = vt.nn.Sequential(vt.nn.Linear(5, 7), vt.nn.Tanh(), vt.nn.Linear(7, 3)).double()
    vm.load_state_dict({k: vt.tensor(v.detach().numpy()) for k, v in tm.state_dict().items()})
    return vm, tm


def per_sample_grads(m, F, model, data, targets):
    """The per-sample-gradient recipe: a loss of one sample as a function of the parameters, grad of it, vmapped
    over the batch with the parameters shared."""
    params = {k: p.detach() for k, p in model.named_parameters()}
    buffers = {k: b.detach() for k, b in model.named_buffers()}

    def sample_loss(params, buffers, x, y):
        logits = F.functional_call(model, (params, buffers), (x.unsqueeze(0),))
        return m.nn.functional.cross_entropy(logits, y.unsqueeze(0))

    return F.vmap(F.grad(sample_loss), in_dims=(None, None, 0, 0))(params, buffers, data, targets)


def test_per_sample_gradients_with_functional_call():
    vm, tm = models()
    x = arrays((6, 5), seed=9)[0]
    y = np.array([0, 2, 1, 1, 0, 2])
    gv = per_sample_grads(vt, vf, vm, vt.tensor(x), vt.tensor(y))
    gt = per_sample_grads(torch, tf, tm, torch.tensor(x), torch.tensor(y))
    same(gv, gt)
    for k, p in vm.named_parameters():  # the stacked rows are the gradients of each sample's loss on its own
        assert tuple(gv[k].shape) == (6,) + tuple(p.shape)
        assert not gv[k].requires_grad and p.grad is None
    for i in (0, 4):
        vm.zero_grad()
        vt.nn.functional.cross_entropy(vm(vt.tensor(x[i:i + 1])), vt.tensor(y[i:i + 1])).backward()
        for k, p in vm.named_parameters():
            np.testing.assert_allclose(gv[k][i].numpy(), p.grad.numpy(), **TOL)


def test_model_ensemble_over_stacked_parameters():
    """Several copies of one model's weights stacked on a new dimension 0, all run on the same batch at once."""
    vm, tm = models()
    rng = np.random.default_rng(14)
    names = [k for k, _ in tm.named_parameters()]
    stacked = {k: rng.standard_normal((3,) + tuple(p.shape)) for k, p in tm.named_parameters()}
    x = rng.standard_normal((4, 5))

    def run(m, F, model):
        params = {k: m.tensor(stacked[k]) for k in names}
        return F.vmap(lambda p, data: F.functional_call(model, p, (data,)), in_dims=(0, None))(params, m.tensor(x))

    out = run(vt, vf, vm)
    same(out, run(torch, tf, tm))
    assert tuple(out.shape) == (3, 4, 3)


def test_batched_jacobians_and_hessians():
    def fn(m):
        return lambda x: (x.sin() * x.sum()).exp()

    x = arrays((4, 3), seed=10)[0]
    same(vf.vmap(vf.jacrev(fn(vt)))(vt.tensor(x)), tf.vmap(tf.jacrev(fn(torch)))(torch.tensor(x)))
    same(vf.vmap(vf.jacfwd(fn(vt)))(vt.tensor(x)), tf.vmap(tf.jacfwd(fn(torch)))(torch.tensor(x)))

    def scalar(m):
        return lambda x: (x.tanh() ** 3).sum()

    same(vf.vmap(vf.hessian(scalar(vt)))(vt.tensor(x)), tf.vmap(tf.hessian(scalar(torch)))(torch.tensor(x)))
    same(vf.jacrev(vf.vmap(scalar(vt)))(vt.tensor(x)), tf.jacrev(tf.vmap(scalar(torch)))(torch.tensor(x)))


def test_vmap_inside_grad_and_outer_backward():
    x, w = arrays((4, 3), (3,), seed=13)

    def fn(m, F):
        return lambda w, x: F.vmap(lambda r: (r * w).sin().sum())(x).pow(2).sum()

    same(vf.grad(fn(vt, vf))(vt.tensor(w), vt.tensor(x)), tf.grad(fn(torch, tf))(torch.tensor(w), torch.tensor(x)))
    wv, wt = vt.tensor(w, requires_grad=True), torch.tensor(w, requires_grad=True)
    ov, ot = vf.vmap(lambda r: (r * wv).cos())(vt.tensor(x)), tf.vmap(lambda r: (r * wt).cos())(torch.tensor(x))
    ov.sum().backward()
    ot.sum().backward()
    np.testing.assert_allclose(wv.grad.numpy(), wt.grad.numpy(), **TOL)
