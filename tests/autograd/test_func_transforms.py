"""vt.func's differentiation transforms (grad, grad_and_value, vjp, jvp, jacrev, jacfwd, hessian) against torch.func on
random float64 inputs: argnums (int, negative, tuple), pytree arguments and outputs, has_aux, scalar outputs,
compositions (grad of grad, jacrev of jacrev = hessian), which results keep a graph (an outer backward through
grad(f)), and torch's errors. vmap has its own file (test_vmap.py)."""
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


def tensors(m, arrs, requires_grad=False):
    return [m.tensor(a, dtype=m.float64, requires_grad=requires_grad) for a in arrs]


def same(rv, rt):
    """The same pytree (tuple / list / dict nesting) of tensors with equal values and requires_grad."""
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
        assert tuple(rv.shape) == tuple(rt.shape)
        np.testing.assert_allclose(rv.detach().numpy(), rt.detach().numpy(), **TOL)
        assert rv.requires_grad == rt.requires_grad
    else:
        assert rv == rt


def both(transform, fn, arrs, *targs, requires_grad=False, **kw):
    """transform(fn(m), *targs, **kw)(*inputs) on both sides."""
    rv = getattr(vf, transform)(fn(vt), *targs, **kw)(*tensors(vt, arrs, requires_grad))
    rt = getattr(tf, transform)(fn(torch), *targs, **kw)(*tensors(torch, arrs, requires_grad))
    same(rv, rt)
    return rv, rt


def f_scalar(m):
    return lambda x: (x.sin() * x ** 2).sum()


def f_two(m):
    return lambda x, y: (m.matmul(x, y).tanh() ** 2).sum() + (y ** 3).sum()


def f_three(m):  # y is a python number, z unused
    return lambda x, y, z: ((x * y).exp()).sum() / 3


@pytest.mark.parametrize("transform", ["grad", "grad_and_value"])
@pytest.mark.parametrize("fn,shapes,argnums", [
    (f_scalar, [(2, 3)], 0), (f_scalar, [()], 0), (f_scalar, [(5,)], -1),
    (f_two, [(2, 3), (3, 4)], 0), (f_two, [(2, 3), (3, 4)], 1), (f_two, [(2, 3), (3, 4)], (0, 1)),
    (f_two, [(1, 3), (3, 1)], (1, 0)), (f_two, [(2, 3), (3, 4)], (-1,)),
])
def test_grad(transform, fn, shapes, argnums):
    both(transform, fn, arrays(*shapes), argnums=argnums)


def test_grad_unused_argument_gives_zeros():
    def fn(m):
        return lambda x, y, z: (x ** 2).sum()

    both("grad", fn, arrays((3,), (2, 2), (1,)), argnums=(0, 1, 2))


def test_grad_non_tensor_args_and_kwargs_pass_through():
    x, z = arrays((4,), (2,))
    rv = vf.grad(f_three(vt))(vt.tensor(x), 0.5, vt.tensor(z))
    rt = tf.grad(f_three(torch))(torch.tensor(x), 0.5, torch.tensor(z))
    same(rv, rt)

    def g(m):
        return lambda x, *, scale: (x.cos() * scale).sum()

    same(vf.grad(g(vt))(vt.tensor(x), scale=vt.tensor(z[:1])),
         tf.grad(g(torch))(torch.tensor(x), scale=torch.tensor(z[:1])))


def test_grad_pytree_argument():
    a, b, c = arrays((2, 3), (3,), (4,))

    def fn(m):
        return lambda p, x: ((m.matmul(p["w"], p["b"]) + x[0].sum()) ** 2).sum() * p["b"].sum()

    rv = vf.grad_and_value(fn(vt))({"w": vt.tensor(a), "b": vt.tensor(b)}, (vt.tensor(c),))
    rt = tf.grad_and_value(fn(torch))({"w": torch.tensor(a), "b": torch.tensor(b)}, (torch.tensor(c),))
    same(rv, rt)
    rv = vf.grad(fn(vt), argnums=(0, 1))({"w": vt.tensor(a), "b": vt.tensor(b)}, [vt.tensor(c)])
    rt = tf.grad(fn(torch), argnums=(0, 1))({"w": torch.tensor(a), "b": torch.tensor(b)}, [torch.tensor(c)])
    same(rv, rt)


@pytest.mark.parametrize("transform", ["grad", "grad_and_value"])
def test_grad_has_aux(transform):
    def fn(m):
        return lambda x, y: ((x * y).sum(), {"prod": x * y, "pair": (x.sum(), y.exp())})

    both(transform, fn, arrays((3,), (3,)), argnums=1, has_aux=True)


def test_grad_of_grad():
    def fn(m):
        return lambda x: (x.sin() * x.exp()).sum()

    x = arrays(())
    same(vf.grad(vf.grad(fn(vt)))(*tensors(vt, x)), tf.grad(tf.grad(fn(torch)))(*tensors(torch, x)))
    third_v = vf.grad(vf.grad(vf.grad(fn(vt))))(*tensors(vt, x))
    third_t = tf.grad(tf.grad(tf.grad(fn(torch))))(*tensors(torch, x))
    same(third_v, third_t)

    def g(m, G):  # the gradient of a function of a gradient, over a vector
        return lambda x: (G.grad(lambda y: (y.tanh() ** 3).sum())(x) ** 2).sum()

    x = arrays((4,))
    same(vf.grad(g(vt, vf))(*tensors(vt, x)), tf.grad(g(torch, tf))(*tensors(torch, x)))


def test_results_keep_a_graph_only_to_outside_tensors():
    x, w = arrays((3,), (3,))
    # plain call: nothing outside requires grad, so nothing keeps a graph
    both("grad_and_value", f_scalar, [x])
    # the input requires grad: the gradient is a differentiable function of it (an outer backward sees through)
    for m, F in ((vt, vf), (torch, tf)):
        xs = m.tensor(x, requires_grad=True)
        g = F.grad(f_scalar(m))(xs)
        assert g.requires_grad
        (g ** 2).sum().backward()
    xv, xt = vt.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    (vf.grad(f_scalar(vt))(xv) ** 2).sum().backward()
    (tf.grad(f_scalar(torch))(xt) ** 2).sum().backward()
    np.testing.assert_allclose(xv.grad.numpy(), xt.grad.numpy(), **TOL)
    # a captured tensor that requires grad: the gradient depends on it, the input gets no .grad
    wv, wt = vt.tensor(w, requires_grad=True), torch.tensor(w, requires_grad=True)
    xv, xt = vt.tensor(x), torch.tensor(x)
    gv = vf.grad(lambda a: (a.sin() * wv ** 2).sum())(xv)
    gt = tf.grad(lambda a: (a.sin() * wt ** 2).sum())(xt)
    same(gv, gt)
    gv.sum().backward()
    gt.sum().backward()
    np.testing.assert_allclose(wv.grad.numpy(), wt.grad.numpy(), **TOL)
    # under no_grad the outer graph is not recorded
    with vt.no_grad():
        assert not vf.grad(f_scalar(vt))(vt.tensor(x, requires_grad=True)).requires_grad


def raise_both(exc, match, call):
    with pytest.raises(exc, match=match):
        call(torch, tf)
    with pytest.raises(exc, match=match):
        call(vt, vf)


def test_grad_errors():
    x = arrays((2, 3))
    t = lambda m: m.tensor(x[0])  # noqa: E731
    raise_both(RuntimeError, "to return a scalar Tensor, got tensor with 2 dims",
               lambda m, F: F.grad(lambda a: a * 2)(t(m)))
    raise_both(RuntimeError, "to return a Tensor, got <class 'float'>", lambda m, F: F.grad(lambda a: 1.0)(t(m)))
    raise_both(RuntimeError, r"should be a tuple: \(output, aux\)",
               lambda m, F: F.grad(lambda a: a.sum(), has_aux=True)(t(m)))
    raise_both(RuntimeError, "Expected tensors, got unsupported type <class 'int'>",
               lambda m, F: F.grad(lambda a: (a.sum(), 1), has_aux=True)(t(m)))
    raise_both(RuntimeError, "Got argnum=2, but only 1 positional inputs",
               lambda m, F: F.grad(lambda a: a.sum(), argnums=2)(t(m)))
    raise_both(RuntimeError, "Got argnum=-3, but only 2 positional inputs",
               lambda m, F: F.grad(lambda a, b: a.sum(), argnums=-3)(t(m), t(m)))
    raise_both(RuntimeError, "argnums must be non-empty", lambda m, F: F.grad(lambda a: a.sum(), argnums=())(t(m)))
    raise_both(RuntimeError, "argnums elements must be unique",
               lambda m, F: F.grad(lambda a, b: a.sum(), argnums=(0, -2))(t(m), t(m)))
    raise_both(RuntimeError, "argnums must be int or Tuple",
               lambda m, F: F.grad(lambda a: a.sum(), argnums=[0])(t(m)))
    raise_both(RuntimeError, "argnum must be int", lambda m, F: F.grad(lambda a: a.sum(), argnums=(0.0,))(t(m)))
    raise_both(ValueError, "Thing passed to transform API must be Tensor, got <class 'int'>",
               lambda m, F: F.grad(lambda a, n: a.sum(), argnums=1)(t(m), 3))


# ---- vjp / jvp ----------------------------------------------------------------------------------------------
def test_vjp_matches_and_can_be_called_again():
    x, y, c1, c2 = arrays((2, 3), (3,), (2, 3), (), seed=3)

    def fn(m):
        return lambda a, b: (a * b.sin(), {"s": (a ** 2).sum() * b[0]})

    ov, fv = vf.vjp(fn(vt), *tensors(vt, [x, y]))
    ot, ft = tf.vjp(fn(torch), *tensors(torch, [x, y]))
    same(ov, ot)
    for scale in (1.0, -2.0):
        cv = (vt.tensor(c1 * scale), {"s": vt.tensor(c2)})
        ct = (torch.tensor(c1 * scale), {"s": torch.tensor(c2)})
        same(fv(cv), ft(ct))


def test_vjp_single_tensor_has_aux_and_pytree_primal():
    x, c = arrays((4,), (4,))

    def fn(m):
        return lambda p: (p["a"].exp() * p["b"], (p["a"] * 2, "tag"))

    pv, pt = {"a": vt.tensor(x), "b": vt.tensor(c)}, {"a": torch.tensor(x), "b": torch.tensor(c)}
    with pytest.raises(RuntimeError, match="Expected tensors"):  # aux must hold tensors only, as in torch
        vf.vjp(fn(vt), pv, has_aux=True)

    def fn2(m):
        return lambda p: (p["a"].exp() * p["b"], p["a"] * 2)

    ov, fv, av = vf.vjp(fn2(vt), pv, has_aux=True)
    ot, ft, at = tf.vjp(fn2(torch), pt, has_aux=True)
    same((ov, av), (ot, at))
    same(fv(vt.tensor(c)), ft(torch.tensor(c)))


def test_vjp_errors():
    x = arrays((3,))
    t = lambda m: m.tensor(x[0])  # noqa: E731
    raise_both(RuntimeError, "Expected pytree structure of cotangents",
               lambda m, F: F.vjp(lambda a: (a.sin(), a), t(m))[1](t(m)))
    raise_both(RuntimeError, "All outputs of f must be floating-point",
               lambda m, F: F.vjp(lambda a: (a > 0), t(m)))
    raise_both(RuntimeError, "expected f\\(\\*primals\\) to return only tensors",
               lambda m, F: F.vjp(lambda a: 3, t(m)))
    raise_both(RuntimeError, r"should be a tuple: \(output, aux\)",
               lambda m, F: F.vjp(lambda a: a.sin(), t(m), has_aux=True))
    raise_both(ValueError, "Thing passed to transform API must be Tensor", lambda m, F: F.vjp(lambda a: a, 3))


def test_jvp():
    x, y, u, v = arrays((2, 3), (3,), (2, 3), (3,), seed=8)

    def fn(m):
        return lambda a, b: ((a * b).tanh(), (a ** 2).sum(0) * b)

    rv = vf.jvp(fn(vt), tuple(tensors(vt, [x, y])), tuple(tensors(vt, [u, v])))
    rt = tf.jvp(fn(torch), tuple(tensors(torch, [x, y])), tuple(tensors(torch, [u, v])))
    same(rv, rt)

    def aux(m):
        return lambda a: ((a.sin() * 3).sum(), a.cos())

    rv = vf.jvp(aux(vt), (vt.tensor(x),), (vt.tensor(u),), has_aux=True)
    rt = tf.jvp(aux(torch), (torch.tensor(x),), (torch.tensor(u),), has_aux=True)
    same(rv, rt)
    raise_both(RuntimeError, "Expected primals to be a tuple",
               lambda m, F: F.jvp(lambda a: a, m.tensor(x), m.tensor(u)))
    raise_both(RuntimeError, "Expected primals and tangents to have the same python structure",
               lambda m, F: F.jvp(lambda a: a, (m.tensor(x),), (m.tensor(u), m.tensor(u))))


# ---- Jacobians and Hessians ---------------------------------------------------------------------------------
def f_vec(m):
    return lambda x: (x.sin() * x.sum()).exp()


def f_multi(m):
    return lambda x, y: (m.matmul(x, y).sin(), {"n": (x ** 2).sum() * y.sum(), "y": y * 2})


@pytest.mark.parametrize("transform", ["jacrev", "jacfwd"])
@pytest.mark.parametrize("fn,shapes,argnums", [
    (f_vec, [(4,)], 0), (f_vec, [(2, 3)], 0), (f_vec, [()], 0), (f_scalar, [(3, 2)], 0),
    (f_multi, [(2, 3), (3, 1)], 0), (f_multi, [(2, 3), (3, 2)], 1), (f_multi, [(1, 2), (2, 3)], (1, 0)),
])
def test_jacobians(transform, fn, shapes, argnums):
    both(transform, fn, arrays(*shapes), argnums=argnums)


@pytest.mark.parametrize("transform", ["jacrev", "jacfwd"])
def test_jacobians_has_aux_and_pytree_input(transform):
    def fn(m):
        return lambda p, s: ((p["w"] * p["v"].sum()).cos() * s, {"norm": (p["w"] ** 2).sum()})

    a, b = arrays((2, 2), (3,))
    rv = getattr(vf, transform)(fn(vt), has_aux=True)({"w": vt.tensor(a), "v": vt.tensor(b)}, 1.5)
    rt = getattr(tf, transform)(fn(torch), has_aux=True)({"w": torch.tensor(a), "v": torch.tensor(b)}, 1.5)
    same(rv, rt)


def test_jacrev_of_jacrev_is_the_hessian():
    x, y = arrays((3,), (2, 3), seed=11)
    hv = vf.jacrev(vf.jacrev(f_scalar(vt)))(vt.tensor(x))
    same(hv, tf.hessian(f_scalar(torch))(torch.tensor(x)))
    same(vf.hessian(f_scalar(vt))(vt.tensor(x)), tf.hessian(f_scalar(torch))(torch.tensor(x)))
    same(vf.jacfwd(vf.jacrev(f_scalar(vt)))(vt.tensor(x)), tf.hessian(f_scalar(torch))(torch.tensor(x)))

    def fn(m):
        return lambda a, b: (m.matmul(b, a).sin() ** 2).sum()

    for argnums in (0, 1, (0, 1)):
        same(vf.hessian(fn(vt), argnums=argnums)(vt.tensor(x), vt.tensor(y)),
             tf.hessian(fn(torch), argnums=argnums)(torch.tensor(x), torch.tensor(y)))
        same(vf.jacrev(vf.jacrev(fn(vt), argnums=argnums), argnums=argnums)(vt.tensor(x), vt.tensor(y)),
             tf.hessian(fn(torch), argnums=argnums)(torch.tensor(x), torch.tensor(y)))


def test_jacobian_of_a_vector_function_of_a_gradient():
    x = arrays((4,), seed=12)

    def fn(m, F):
        return lambda a: F.grad(lambda b: (b.sin() ** 3).sum())(a) * a

    same(vf.jacrev(fn(vt, vf))(*tensors(vt, x)), tf.jacrev(fn(torch, tf))(*tensors(torch, x)))


def test_jacobian_errors():
    x = arrays((3,))
    raise_both(ValueError, "jacrev: `chunk_size` should be greater than 0.",
               lambda m, F: F.jacrev(lambda a: a, chunk_size=0))
    raise_both(RuntimeError, "expected f\\(\\*primals\\) to return only tensors",
               lambda m, F: F.jacrev(lambda a: (a, 3))(m.tensor(x[0])))
    raise_both(RuntimeError, "Got argnum=1, but only 1 positional inputs",
               lambda m, F: F.jacfwd(lambda a: a, argnums=1)(m.tensor(x[0])))
    same(vf.jacrev(f_vec(vt), chunk_size=2)(vt.tensor(x[0])), tf.jacrev(f_vec(torch), chunk_size=2)(torch.tensor(x[0])))
