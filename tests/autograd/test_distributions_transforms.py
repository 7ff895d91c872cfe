"""Differential tests of vt.distributions.transforms and the biject_to/transform_to registries against
torch.distributions on random float64 inputs: every transform's forward, inverse and log_abs_det_jacobian with
gradients (inputs and transform parameters), event dims through ComposeTransform / IndependentTransform /
ReshapeTransform, shapes, sign/bijective/domain/codomain, caching, and the error cases."""
import numpy as np
import pytest
import torch

import vibetensor.torch as vt
from vibetensor.torch.distributions import constraints as C
from vibetensor.torch.distributions import transforms as T
from vibetensor.torch.distributions.constraint_registry import biject_to, transform_to

from dist_helpers import check_grads, close, pair

TT = torch.distributions.transforms
TC = torch.distributions.constraints
RNG = np.random.default_rng(3)


def _real(shape):
    return RNG.standard_normal(shape) * 1.5


def _pos(shape):
    return RNG.uniform(0.2, 3.0, shape)


# name: (vt builder, torch builder, input maker, shape) -- builders take the (vt or torch) parameter tensors.
def _cases():
    loc, scale, expo = _real((3,)), RNG.uniform(-2, 2, (3,)), RNG.uniform(0.3, 2.5, (4, 1))
    return {
        "exp": (lambda m, p: m.ExpTransform(), [], _real, (4, 3)),
        "sigmoid": (lambda m, p: m.SigmoidTransform(), [], _real, (4, 3)),
        "tanh": (lambda m, p: m.TanhTransform(), [], _real, (2, 5)),
        "affine_num": (lambda m, p: m.AffineTransform(0.5, -2.0), [], _real, (2, 3)),
        "affine_tensor": (lambda m, p: m.AffineTransform(p[0], p[1]), [loc, scale], _real, (4, 3)),
        "affine_event1": (lambda m, p: m.AffineTransform(p[0], p[1], event_dim=1), [loc, scale], _real, (4, 3)),
        "affine_event2": (lambda m, p: m.AffineTransform(p[0], p[1], event_dim=2), [loc, scale], _real, (5, 4, 3)),
        "power": (lambda m, p: m.PowerTransform(p[0]), [expo], _pos, (4, 3)),
        "power_neg": (lambda m, p: m.PowerTransform(-1.5), [], _pos, (3,)),
        "stick": (lambda m, p: m.StickBreakingTransform(), [], _real, (4, 3)),
        "stick_1": (lambda m, p: m.StickBreakingTransform(), [], _real, (2, 1)),
        "independent": (lambda m, p: m.IndependentTransform(m.ExpTransform(), 2), [], _real, (2, 3, 4)),
        "reshape": (lambda m, p: m.ReshapeTransform((2, 3), (3, 2)), [], _real, (4, 2, 3)),
        "compose": (lambda m, p: m.ComposeTransform([m.AffineTransform(p[0], p[1]), m.ExpTransform(),
                                                     m.PowerTransform(0.5)]), [loc, scale], _real, (4, 3)),
        "compose_events": (lambda m, p: m.ComposeTransform([m.AffineTransform(p[0], p[1], event_dim=1),
                                                            m.StickBreakingTransform(), m.SigmoidTransform()]),
                           [loc, scale], _real, (2, 3)),
        "compose_reshape": (lambda m, p: m.ComposeTransform([m.ReshapeTransform((6,), (2, 3)), m.TanhTransform()]),
                            [], _real, (5, 6)),
        "inverse_of_sigmoid": (lambda m, p: m.SigmoidTransform().inv, [], lambda s: RNG.uniform(0.05, 0.95, s),
                               (3, 2)),
        "identity": (lambda m, p: m.ComposeTransform([]), [], _real, (3,)),
    }


@pytest.mark.parametrize("name", list(_cases()))
def test_transform_forward_inverse_jacobian(name):
    build, params, make, shape = _cases()[name]
    pv, pt = zip(*[pair(p, grad=True) for p in params]) if params else ((), ())
    tv, tt = build(T, pv), build(TT, pt)
    xv, xt = pair(make(shape), grad=True)
    yv, yt = tv(xv), tt(xt)
    close(yv, yt)
    jv, jt = tv.log_abs_det_jacobian(xv, yv), tt.log_abs_det_jacobian(xt, yt)
    close(jv, jt)
    check_grads(yv.sum() + jv.sum(), yt.sum() + jt.sum(), [xv, *pv], [xt, *pt], RNG)
    # the inverse of the forward output, with its gradient
    y2v, y2t = pair(yt.detach().numpy(), grad=True)
    iv, it = tv.inv(y2v), tt.inv(y2t)
    close(iv, it, rtol=1e-7, atol=1e-9)
    check_grads(iv, it, [y2v], [y2t], RNG, rtol=1e-6, atol=1e-8)
    close(tv.inv.log_abs_det_jacobian(y2v, iv), tt.inv.log_abs_det_jacobian(y2t, it), rtol=1e-7, atol=1e-9)
    assert tv.bijective == tt.bijective
    assert repr(tv.domain) == repr(tt.domain) and repr(tv.codomain) == repr(tt.codomain)
    assert tv.domain.event_dim == tt.domain.event_dim and tv.codomain.event_dim == tt.codomain.event_dim
    assert tuple(tv.forward_shape(shape)) == tuple(tt.forward_shape(shape))
    assert tuple(tv.inverse_shape(tuple(yt.shape))) == tuple(tt.inverse_shape(yt.shape))


def test_softmax_transform():
    xv, xt = pair(_real((3, 4)), grad=True)
    yv, yt = T.SoftmaxTransform()(xv), TT.SoftmaxTransform()(xt)
    close(yv, yt)
    check_grads(yv, yt, [xv], [xt], RNG)
    close(T.SoftmaxTransform().inv(yv), TT.SoftmaxTransform().inv(yt))
    assert not T.SoftmaxTransform().bijective and T.SoftmaxTransform().event_dim == 1
    with pytest.raises(NotImplementedError):
        T.SoftmaxTransform().log_abs_det_jacobian(xv, yv)


def test_abs_transform_non_bijective_and_tanh_stable_jacobian():
    xv, xt = pair(np.array([-2.0, 0.5, -0.1]))
    close(T.AbsTransform()(xv), TT.AbsTransform()(xt))
    close(T.AbsTransform().inv(xv.abs()), TT.AbsTransform().inv(xt.abs()))
    assert not T.AbsTransform().bijective
    # far in the tails 1 - tanh(x)^2 is 0 in float64; the jacobian term must stay finite and match torch
    xv, xt = pair(np.array([-40.0, -20.0, 0.0, 25.0, 400.0]), grad=True)
    jv = T.TanhTransform().log_abs_det_jacobian(xv, xv.tanh())
    jt = TT.TanhTransform().log_abs_det_jacobian(xt, xt.tanh())
    assert np.isfinite(jv.detach().numpy()).all()
    close(jv, jt)
    check_grads(jv, jt, [xv], [xt], RNG)


def test_signs_event_dims_and_equality():
    assert T.ExpTransform().sign == 1 and T.TanhTransform().sign == 1 and T.SigmoidTransform().inv.sign == 1
    assert T.AffineTransform(0.0, -3.0).sign == -1 and T.AffineTransform(0.0, 2.0).sign == 1
    sv, _ = pair(np.array([-1.0, 2.0]))
    close(T.AffineTransform(0.0, sv).sign, torch.tensor([-1.0, 1.0], dtype=torch.float64))
    assert T.ComposeTransform([T.AffineTransform(0.0, -1.0), T.ExpTransform()]).sign == -1
    assert T.AffineTransform(0.0, 1.0, event_dim=2).event_dim == 2
    assert T.StickBreakingTransform().domain.event_dim == 1
    with pytest.raises(ValueError, match="event_dim"):
        _ = T.ReshapeTransform((6,), (2, 3)).event_dim
    assert T.ExpTransform() == T.ExpTransform() and T.ExpTransform() != T.SigmoidTransform()
    assert T.AffineTransform(1.0, 2.0) == T.AffineTransform(1.0, 2.0) != T.AffineTransform(1.0, 3.0)
    t = T.ExpTransform()
    assert t.inv.inv is t and t.inv is t.inv
    assert repr(t.inv) == repr(TT.ExpTransform().inv) == "_InverseTransform(ExpTransform())"
    assert repr(T.ComposeTransform([T.ExpTransform(), T.TanhTransform()])) == repr(
        TT.ComposeTransform([TT.ExpTransform(), TT.TanhTransform()]))


def test_caching():
    xv, _ = pair(_real((3,)))
    t = T.TanhTransform(cache_size=1)
    y = t(xv)
    assert t(xv) is y and t.inv(y) is xv  # the cached pair comes back exactly
    t0 = T.TanhTransform()
    assert t0.inv(t0(xv)) is not xv
    assert t0.with_cache(1)._cache_size == 1 and t0.with_cache(0) is t0
    comp = T.ComposeTransform([T.AffineTransform(1.0, 2.0), T.ExpTransform()], cache_size=1)
    y = comp(xv)
    assert all(p._cache_size == 1 for p in comp.parts)
    close(comp.inv(y), torch.from_numpy(xv.numpy()))
    with pytest.raises(ValueError, match="cache_size must be 0 or 1"):
        T.ExpTransform(cache_size=2)


def test_transform_errors():
    with pytest.raises(ValueError, match="different numbers of elements"):
        T.ReshapeTransform((2, 3), (5,))
    with pytest.raises(ValueError):
        T.ReshapeTransform((2, 3), (6,)).forward_shape((4, 3, 2))
    with pytest.raises(ValueError, match="Too few dimensions"):
        T.StickBreakingTransform().forward_shape(())
    with pytest.raises(NotImplementedError):
        T.Transform()(vt.zeros(2))


@pytest.mark.parametrize("registry", ["biject_to", "transform_to"])
def test_constraint_registries(registry):
    reg_v, reg_t = {"biject_to": (biject_to, torch.distributions.biject_to),
                    "transform_to": (transform_to, torch.distributions.transform_to)}[registry]
    cases = [(C.real, TC.real), (C.positive, TC.positive), (C.nonnegative, TC.nonnegative),
             (C.greater_than(2.0), TC.greater_than(2.0)), (C.unit_interval, TC.unit_interval),
             (C.interval(-1.0, 3.0), TC.interval(-1.0, 3.0)), (C.simplex, TC.simplex),
             (C.real_vector, TC.real_vector), (C.independent(C.positive, 1), TC.independent(TC.positive, 1))]
    for cv, ct in cases:
        tv, tt = reg_v(cv), reg_t(ct)
        assert repr(tv) == repr(tt), (cv, repr(tv), repr(tt))
        xv, xt = pair(_real((2, 4)), grad=True)
        yv, yt = tv(xv), tt(xt)
        close(yv, yt)
        assert bool(cv.check(yv).all().item())
        if tt.bijective:
            jv, jt = tv.log_abs_det_jacobian(xv, yv), tt.log_abs_det_jacobian(xt, yt)
            close(jv, jt)
            check_grads(yv.sum() + jv.sum(), yt.sum() + jt.sum(), [xv], [xt], RNG)
            close(tv.inv(yv), xt, rtol=1e-7, atol=1e-9)
    with pytest.raises(NotImplementedError, match="Cannot transform _LowerCholesky constraints"):
        reg_v(C.lower_cholesky)
    with pytest.raises(TypeError):
        reg_v.register(int, lambda c: None)


def test_registry_register_decorator():
    class _Odd(C.Constraint):
        def check(self, value):
            return value == value

    @biject_to.register(_Odd)
    def _odd(constraint):
        return T.ExpTransform()
    try:
        assert isinstance(biject_to(_Odd()), T.ExpTransform)
    finally:
        del biject_to._registry[_Odd]


@pytest.mark.parametrize("dim,shape", [(1, (4, 5)), (-1, (4, 5)), (0, (5, 2))])
def test_cat_transform(dim, shape):
    lv, lt = [2, 3], [2, 3]
    tv = T.CatTransform([T.ExpTransform(), T.AffineTransform(1.0, -2.0)], dim=dim, lengths=lv)
    tt = TT.CatTransform([TT.ExpTransform(), TT.AffineTransform(1.0, -2.0)], dim=dim, lengths=lt)
    xv, xt = pair(_real(shape), grad=True)
    yv, yt = tv(xv), tt(xt)
    close(yv, yt)
    jv, jt = tv.log_abs_det_jacobian(xv, yv), tt.log_abs_det_jacobian(xt, yt)
    close(jv, jt)
    check_grads(yv.sum() + jv.sum(), yt.sum() + jt.sum(), [xv], [xt], RNG)
    close(tv.inv(yv), xt)
    assert tv.bijective and tv.event_dim == tt.event_dim == 0 and repr(tv.domain) == repr(tt.domain) == "Cat()"
    assert bool(tv.codomain.check(yv).all().item())
    with pytest.raises(ValueError):
        tv(vt.zeros(4, 4, dtype=vt.float64) if shape[0] == 4 else vt.zeros(4, 2, dtype=vt.float64))
    with pytest.raises(ValueError, match="lengths"):
        T.CatTransform([T.ExpTransform()], lengths=[1, 2])


def test_cat_transform_with_event_dims():
    tv2 = T.CatTransform([T.AffineTransform(0.0, 3.0, event_dim=1), T.ExpTransform()], dim=0, lengths=[1, 2])
    tt2 = TT.CatTransform([TT.AffineTransform(0.0, 3.0, event_dim=1), TT.ExpTransform()], dim=0, lengths=[1, 2])
    xv, xt = pair(_real((3, 4)), grad=True)
    assert tv2.event_dim == tt2.event_dim == 1 and tv2.domain.event_dim == tt2.domain.event_dim
    jv, jt = tv2.log_abs_det_jacobian(xv, tv2(xv)), tt2.log_abs_det_jacobian(xt, tt2(xt))
    close(jv, jt)
    check_grads(jv, jt, [xv], [xt], RNG)


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_stack_transform(dim):
    tv = T.StackTransform([T.ExpTransform(), T.TanhTransform(), T.AffineTransform(0.5, 2.0)], dim=dim)
    tt = TT.StackTransform([TT.ExpTransform(), TT.TanhTransform(), TT.AffineTransform(0.5, 2.0)], dim=dim)
    shape = [2, 4]
    shape.insert(dim if dim >= 0 else len(shape) + 1 + dim, 3)
    xv, xt = pair(_real(tuple(shape)), grad=True)
    yv, yt = tv(xv), tt(xt)
    close(yv, yt)
    jv, jt = tv.log_abs_det_jacobian(xv, yv), tt.log_abs_det_jacobian(xt, yt)
    close(jv, jt)
    check_grads(yv.sum() + jv.sum(), yt.sum() + jt.sum(), [xv], [xt], RNG)
    close(tv.inv(yv), xt, rtol=1e-8, atol=1e-10)
    assert repr(tv.codomain) == repr(tt.codomain) == "Stack()" and tv.bijective
    assert bool(tv.codomain.check(yv).all().item())
    with pytest.raises(ValueError, match="StackTransform expects size 3"):
        tv(vt.zeros(2, 2, 2, dtype=vt.float64))
    with pytest.raises(TypeError):
        T.StackTransform([T.ExpTransform(), 1])
