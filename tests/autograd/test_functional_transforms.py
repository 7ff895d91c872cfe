"""vt.autograd.functional (vjp, jvp, jacobian, hessian, vhp, hvp) against torch.autograd.functional on random float64
inputs: Tensor-vs-tuple inputs and outputs mirrored in the results, odd shapes, scalar outputs, outputs independent of
an input (zeros, or strict errors), create_graph (results differentiable again, compared by a second backward),
jacobian's vectorize / strategy combinations, and the argument errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.autograd.functional as TF

import vibetensor.torch as vt

VF = vt.autograd.functional

TOL = dict(rtol=1e-10, atol=1e-12)


def arrays(*shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s) for s in shapes]


def side(m, arrs, as_tuple, requires_grad=False):
    ts = tuple(m.tensor(a, dtype=m.float64, requires_grad=requires_grad) for a in arrs)
    return ts if as_tuple else ts[0]


def same(rv, rt, graph=None):
    """Same nesting (tuple / list / Tensor), shapes, values and requires_grad; graph=False: no history at all."""
    if isinstance(rt, (tuple, list)):
        assert type(rv) is type(rt) and len(rv) == len(rt), (type(rv), rt)
        for a, b in zip(rv, rt):
            same(a, b, graph)
        return
    assert isinstance(rv, vt.Tensor), type(rv)
    assert tuple(rv.shape) == tuple(rt.shape)
    np.testing.assert_allclose(rv.detach().numpy(), rt.detach().numpy(), **TOL)
    assert rv.requires_grad == rt.requires_grad
    if graph is False:
        assert not rv.requires_grad


# the functions, written once for both libraries
def f_one(m):
    return lambda x: (x.sin() * x).exp() - x ** 3


def f_to_tuple(m):
    return lambda x: (x.cos() * 2, (x ** 2).sum(), x.sum(0))


def f_tuple(m):
    return lambda x, y: (x * y.sum()).tanh()


def f_tuple_tuple(m):
    return lambda x, y: (m.matmul(x, y).sin(), (x ** 2).sum() * y[0, 0])


def f_unused(m):
    return lambda x, y: (x.sin() ** 2).sum(0)  # y unused


def f_scalar(m):
    return lambda x: (x.sin() * x ** 2).sum()


def f_scalar2(m):
    return lambda x, y: (m.matmul(x, y).tanh() ** 2).sum() + (y ** 3).sum()


def f_scalar_unused(m):
    return lambda x, y: (x ** 3).sum()


CASES = [  # (function, input shapes, inputs as a tuple)
    (f_one, [(2, 3)], False),
    (f_one, [(5,)], True),
    (f_to_tuple, [(3, 2)], False),
    (f_tuple, [(2, 3), (1, 3)], True),
    (f_tuple_tuple, [(2, 3), (3, 4)], True),
    (f_unused, [(3, 2), (2,)], True),
]
SCALAR_CASES = [(f_scalar, [(2, 3)], False), (f_scalar, [(4,)], True), (f_scalar2, [(2, 3), (3, 2)], True),
                (f_scalar_unused, [(3,), (2, 2)], True), (f_scalar, [()], False)]


def out_arrays(fn, shapes, as_tuple, seed):
    """Random arrays shaped like fn's outputs."""
    out = fn(torch)(*(torch.zeros(s, dtype=torch.float64) for s in shapes))
    outs = out if isinstance(out, tuple) else (out,)
    return arrays(*[tuple(o.shape) for o in outs], seed=seed), isinstance(out, tuple)


@pytest.mark.parametrize("fn,shapes,as_tuple", CASES)
@pytest.mark.parametrize("create_graph", [False, True])
def test_vjp(fn, shapes, as_tuple, create_graph):
    x = arrays(*shapes)
    v, v_tuple = out_arrays(fn, shapes, as_tuple, seed=5)
    iv, it = side(vt, x, as_tuple, create_graph), side(torch, x, as_tuple, create_graph)
    rv = VF.vjp(fn(vt), iv, side(vt, v, v_tuple), create_graph=create_graph)
    rt = TF.vjp(fn(torch), it, side(torch, v, v_tuple), create_graph=create_graph)
    same(rv, rt, graph=create_graph)
    if create_graph:  # the products are differentiable functions of the inputs
        second(rv[1], rt[1], iv, it)


def second(rv, rt, iv, it):
    """Backpropagates sum(result ** 2) on both sides into the inputs and compares their gradients."""
    rv, rt = (rv,) if not isinstance(rv, tuple) else rv, (rt,) if not isinstance(rt, tuple) else rt
    iv, it = (iv,) if not isinstance(iv, tuple) else iv, (it,) if not isinstance(it, tuple) else it
    gv = vt.autograd.grad(sum((r ** 2).sum() for r in rv), iv, allow_unused=True)
    gt = torch.autograd.grad(sum((r ** 2).sum() for r in rt), it, allow_unused=True)
    for a, b in zip(gv, gt):
        assert (a is None) == (b is None)
        if b is not None:
            np.testing.assert_allclose(a.numpy(), b.numpy(), **TOL)


@pytest.mark.parametrize("fn,shapes,as_tuple", CASES)
@pytest.mark.parametrize("create_graph", [False, True])
def test_jvp(fn, shapes, as_tuple, create_graph):
    x, v = arrays(*shapes), arrays(*shapes, seed=3)
    iv, it = side(vt, x, as_tuple, create_graph), side(torch, x, as_tuple, create_graph)
    rv = VF.jvp(fn(vt), iv, side(vt, v, as_tuple), create_graph=create_graph)
    rt = TF.jvp(fn(torch), it, side(torch, v, as_tuple), create_graph=create_graph)
    same(rv, rt, graph=create_graph)
    if create_graph:
        second(rv[1], rt[1], iv, it)


@pytest.mark.parametrize("fn,shapes,as_tuple", CASES + SCALAR_CASES)
@pytest.mark.parametrize("options", [{}, {"create_graph": True}, {"vectorize": True},
                                     {"vectorize": True, "strategy": "forward-mode"}])
def test_jacobian(fn, shapes, as_tuple, options):
    x = arrays(*shapes)
    create_graph = options.get("create_graph", False)
    iv, it = side(vt, x, as_tuple, create_graph), side(torch, x, as_tuple, create_graph)
    rv, rt = VF.jacobian(fn(vt), iv, **options), TF.jacobian(fn(torch), it, **options)
    same(rv, rt, graph=create_graph)
    if create_graph:
        second(tuple(flat(rv)), tuple(flat(rt)), iv, it)


def flat(r):
    return [t for el in r for t in flat(el)] if isinstance(r, (tuple, list)) else [r]


@pytest.mark.parametrize("fn,shapes,as_tuple", SCALAR_CASES)
@pytest.mark.parametrize("options", [{}, {"create_graph": True}, {"vectorize": True},
                                     {"vectorize": True, "outer_jacobian_strategy": "forward-mode"}])
def test_hessian(fn, shapes, as_tuple, options):
    x = arrays(*shapes, seed=2)
    create_graph = options.get("create_graph", False)
    iv, it = side(vt, x, as_tuple, create_graph), side(torch, x, as_tuple, create_graph)
    rv, rt = VF.hessian(fn(vt), iv, **options), TF.hessian(fn(torch), it, **options)
    if "outer_jacobian_strategy" in options:  # torch's forward-over-reverse leaves history on its result; ours has none
        assert isinstance(rv, list) == isinstance(rt, list)
        rt, rv = (tuple(t.detach() for t in flat(r)) if isinstance(r, list) else r.detach() for r in (rt, rv))
    same(rv, rt, graph=create_graph)
    if create_graph:
        second(tuple(flat(rv)), tuple(flat(rt)), iv, it)


@pytest.mark.parametrize("api", ["vhp", "hvp"])
@pytest.mark.parametrize("fn,shapes,as_tuple", SCALAR_CASES)
@pytest.mark.parametrize("create_graph", [False, True])
def test_vhp_hvp(api, fn, shapes, as_tuple, create_graph):
    x, v = arrays(*shapes, seed=4), arrays(*shapes, seed=6)
    iv, it = side(vt, x, as_tuple, create_graph), side(torch, x, as_tuple, create_graph)
    rv = getattr(VF, api)(fn(vt), iv, side(vt, v, as_tuple), create_graph=create_graph)
    rt = getattr(TF, api)(fn(torch), it, side(torch, v, as_tuple), create_graph=create_graph)
    same(rv, rt, graph=create_graph)
    if create_graph:
        second(rv[1], rt[1], iv, it)


@pytest.mark.parametrize("api", ["vjp", "jvp", "vhp", "hvp"])
def test_v_may_be_omitted_for_single_elements(api):
    x = arrays((1,), seed=7)
    fn = f_scalar
    rv = getattr(VF, api)(fn(vt), side(vt, x, False))
    rt = getattr(TF, api)(fn(torch), side(torch, x, False))
    same(rv, rt, graph=False)


def test_inputs_requiring_grad_without_create_graph_give_detached_results():
    x = arrays((3,))
    xv = side(vt, x, False, requires_grad=True)
    out, prod = VF.vjp(f_one(vt), xv, vt.ones(3, dtype=vt.float64))
    assert not out.requires_grad and not prod.requires_grad
    jac = VF.jacobian(f_one(vt), xv)
    assert not jac.requires_grad and xv.grad is None


def test_captured_tensors_are_constants():
    """A tensor the function captures is not the input even when it is the same tensor."""
    x = arrays((3,))
    xv, xt = side(vt, x, False), side(torch, x, False)
    same(VF.jacobian(lambda a: a * xv, xv), TF.jacobian(lambda a: a * xt, xt))


def test_no_grad_mode_outside():
    x = arrays((2, 2))
    with vt.no_grad():
        rv = VF.hessian(f_scalar(vt), side(vt, x, False))
        pv = VF.vjp(f_one(vt), side(vt, x, False), side(vt, x, False))
    with torch.no_grad():
        rt = TF.hessian(f_scalar(torch), side(torch, x, False))
        pt = TF.vjp(f_one(torch), side(torch, x, False), side(torch, x, False))
    same(rv, rt, graph=False)
    same(pv, pt, graph=False)


def test_constant_output_gives_zeros():
    x = arrays((2, 3))
    const = [np.ones(2)]

    def fn(m):
        c = m.tensor(const[0], dtype=m.float64)
        return lambda a: c * 2

    for api in ("jacobian", "vjp"):
        args = (side(vt, x, False),) + ((vt.ones(2, dtype=vt.float64),) if api == "vjp" else ())
        targs = (side(torch, x, False),) + ((torch.ones(2, dtype=torch.float64),) if api == "vjp" else ())
        same(getattr(VF, api)(fn(vt), *args), getattr(TF, api)(fn(torch), *targs))


# ---- strict -------------------------------------------------------------------------------------------------
def both_raise(exc, match, call):
    """The call raises `exc` matching `match` with torch's module and with vibetensor's."""
    with pytest.raises(exc, match=match):
        call(torch, TF)
    with pytest.raises(exc, match=match):
        call(vt, VF)


def inp(m, *shapes):
    return tuple(m.tensor(a, dtype=m.float64) for a in arrays(*shapes))


@pytest.mark.parametrize("api", ["vjp", "jvp", "jacobian"])
def test_strict_independent_input(api):
    def call(m, F):
        x, y = inp(m, (3,), (2,))
        if api == "vjp":
            return F.vjp(f_unused(m), (x, y), m.ones((), dtype=m.float64), strict=True)
        if api == "jvp":
            return F.jvp(f_unused(m), (x, y), (x, y), strict=True)
        return F.jacobian(f_unused(m), (x, y), strict=True)

    both_raise(RuntimeError, "independent of (input|entry)", call)


@pytest.mark.parametrize("api", ["vjp", "jvp", "jacobian", "hessian", "vhp", "hvp"])
def test_strict_output_without_graph(api):
    def call(m, F):
        x, = inp(m, (3,))
        fn = lambda a: m.zeros((), dtype=m.float64)  # noqa: E731
        if api in ("vjp", "jacobian", "hessian"):
            return getattr(F, api)(fn, x, strict=True) if api != "vjp" else F.vjp(fn, x, strict=True)
        return getattr(F, api)(fn, x, x, strict=True)

    both_raise(RuntimeError, "does not require gradients", call)


@pytest.mark.parametrize("api", ["hessian", "vhp", "hvp"])
def test_strict_linear_function(api):
    """The gradient of a linear function is constant: strict second-order products refuse it."""
    def call(m, F):
        x, = inp(m, (3,))
        fn = lambda a: (a * 2).sum()  # noqa: E731
        return F.hessian(fn, x, strict=True) if api == "hessian" else getattr(F, api)(fn, x, x, strict=True)

    both_raise(RuntimeError, "independent of the input", call)


def test_strict_passes_for_dependent_inputs():
    x = arrays((2, 3), (1, 3))
    same(VF.jacobian(f_tuple(vt), side(vt, x, True), strict=True),
         TF.jacobian(f_tuple(torch), side(torch, x, True), strict=True))
    same(VF.hessian(f_scalar(vt), side(vt, x[:1], False), strict=True, create_graph=True),
         TF.hessian(f_scalar(torch), side(torch, x[:1], False), strict=True, create_graph=True))


# ---- argument errors ----------------------------------------------------------------------------------------
def test_jacobian_strategy_errors():
    def call_with(**kw):
        return lambda m, F: F.jacobian(f_one(m), inp(m, (3,))[0], **kw)

    both_raise(AssertionError, "Expected strategy to be either", call_with(strategy="sideways"))
    both_raise(NotImplementedError, "create_graph=True", call_with(strategy="forward-mode", create_graph=True,
                                                                    vectorize=True))
    both_raise(NotImplementedError, "only implemented for `vectorize=True`", call_with(strategy="forward-mode"))
    both_raise(RuntimeError, "`strict=True` and `strategy=", call_with(strategy="forward-mode", strict=True,
                                                                       vectorize=True))
    both_raise(RuntimeError, "`strict=True` and `vectorized=True`", call_with(strict=True, vectorize=True))


def test_hessian_strategy_errors():
    def call_with(**kw):
        return lambda m, F: F.hessian(f_scalar(m), inp(m, (3,))[0], **kw)

    both_raise(AssertionError, "Expected strategy to be either", call_with(outer_jacobian_strategy="x"))
    both_raise(NotImplementedError, "only implemented for `vectorize=True`",
               call_with(outer_jacobian_strategy="forward-mode"))
    both_raise(NotImplementedError, "create_graph=True", call_with(outer_jacobian_strategy="forward-mode",
                                                                    create_graph=True, vectorize=True))


@pytest.mark.parametrize("api", ["hessian", "vhp", "hvp"])
def test_scalar_function_required(api):
    def call_fn(fn):
        def call(m, F):
            x, = inp(m, (3,))
            return F.hessian(fn(m), x) if api == "hessian" else getattr(F, api)(fn(m), x, x)
        return call

    both_raise(RuntimeError, "should contain a single element", call_fn(f_one))
    both_raise(RuntimeError, "should return a single Tensor", call_fn(lambda m: lambda a: (a.sum(), a.sum())))


@pytest.mark.parametrize("api", ["vjp", "jvp", "jacobian", "hessian", "vhp", "hvp"])
def test_type_errors(api):
    def bad_input(m, F):
        x, = inp(m, (3,))
        return getattr(F, api)(f_scalar(m), (x, 3.0))

    def bad_output(m, F):
        x, = inp(m, (3,))
        args = (x, x) if api in ("jvp", "vhp", "hvp") else (x,)
        return getattr(F, api)(lambda a: [a.sum()], *args)

    both_raise(TypeError, "must be either a Tensor or a tuple of Tensors but the value at index 1", bad_input)
    both_raise(TypeError, "outputs of the user-provided function given to", bad_output)


@pytest.mark.parametrize("api", ["vjp", "jvp", "vhp", "hvp"])
def test_v_errors(api):
    def call_v(v, shapes=((3,), (2,)), single=False):
        def call(m, F):
            xs = inp(m, *shapes)
            fn = f_one(m) if single else (lambda a, b: (a.sin() ** 2).sum() + (b ** 3).sum())
            vv = v(m) if v is not None else None
            return getattr(F, api)(fn, xs[0] if single else xs, vv)
        return call

    ones = lambda *s: lambda m: m.ones(*s, dtype=m.float64)  # noqa: E731
    if api == "vjp":  # v is shaped like the outputs
        both_raise(RuntimeError, "v can only be None", call_v(None, ((3,),), single=True))
        both_raise(RuntimeError, "v has invalid size", call_v(ones(4), ((3,),), single=True))
        both_raise(RuntimeError, "should contain a single Tensor",
                   call_v(lambda m: (m.ones(3), m.ones(3)), ((3,),), single=True))
        return
    both_raise(RuntimeError, "v can only be None", call_v(None))
    both_raise(RuntimeError, "v is a tuple of invalid length: should be 2 but got 1",
               call_v(lambda m: (m.ones(3, dtype=m.float64),)))
    both_raise(RuntimeError, "Entry 1 in v has invalid size",
               call_v(lambda m: (m.ones(3, dtype=m.float64), m.ones(5, dtype=m.float64))))


def test_torch_import_paths():
    if vt is torch:  # the suite's self-check against torch itself: nothing of vibetensor's to import
        pytest.skip("vibetensor.torch is torch")
    from vibetensor.torch.autograd.functional import jacobian
    from vibetensor.torch.autograd import functional

    assert jacobian is VF.jacobian and functional is VF and vt.autograd.functional is VF
