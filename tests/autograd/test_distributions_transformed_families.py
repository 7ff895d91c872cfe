"""Differential tests of the families built on transforms (HalfNormal, HalfCauchy, StudentT, Chi2,
LogitRelaxedBernoulli, RelaxedBernoulli, ExpRelaxedCategorical, RelaxedOneHotCategorical) against
torch.distributions on random float64 parameters: shapes, log_prob, entropy, mean/variance, cdf/icdf, their
gradients, rsample shapes and differentiability, expand and the validation errors."""
import numpy as np
import pytest
import torch

import vibetensor.torch as vt
from vibetensor.torch.distributions.half_normal import HalfCauchy, HalfNormal
from vibetensor.torch.distributions.pareto import Pareto
from vibetensor.torch.distributions.relaxed import (ExpRelaxedCategorical, LogitRelaxedBernoulli, RelaxedBernoulli,
                                                    RelaxedOneHotCategorical)
from vibetensor.torch.distributions.student_t import Chi2, StudentT
from vibetensor.torch.distributions.weibull import Weibull

from dist_helpers import Outputs, close, pair

TD = torch.distributions
RNG = np.random.default_rng(11)
TOL = dict(rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("cls_v,cls_t", [(HalfNormal, TD.HalfNormal), (HalfCauchy, TD.HalfCauchy)])
def test_half_families(cls_v, cls_t):
    sv, st = pair(RNG.uniform(0.3, 2.5, (2, 3)), grad=True)
    dv, dt = cls_v(sv), cls_t(st)
    assert dv.batch_shape == tuple(dt.batch_shape) and dv.event_shape == ()
    xv, xt = pair(RNG.uniform(0.01, 4.0, (4, 2, 3)))
    uv, ut = pair(RNG.uniform(0.05, 0.95, (4, 2, 3)))
    out = Outputs()
    out.add(dv.log_prob(xv), dt.log_prob(xt), **TOL)
    out.add(dv.cdf(xv), dt.cdf(xt), **TOL)
    out.add(dv.icdf(uv), dt.icdf(ut), **TOL)
    out.add(dv.entropy(), dt.entropy(), **TOL)
    close(dv.mean, dt.mean)
    close(dv.variance, dt.variance)
    close(dv.mode, dt.mode)
    out.check_grads((4, 2, 3), [sv], [st], RNG, rtol=1e-7, atol=1e-9)
    if cls_v is HalfNormal:
        out = Outputs()
        out.add(dv.mean, dt.mean)
        out.add(dv.variance, dt.variance)
        out.check_grads((2, 3), [sv], [st], RNG)
    r = dv.rsample((5,))
    assert tuple(r.shape) == (5, 2, 3) and bool((r >= 0).all().item()) and r.requires_grad
    assert dv.expand((4, 2, 3)).batch_shape == (4, 2, 3) and type(dv.expand((4, 2, 3))) is cls_v
    # outside the support: -inf like torch when validation is off, the support error when it is on
    nv, nt = pair(np.array([-1.0, 0.5, 1.0]))
    close(cls_v(sv[0], validate_args=False).log_prob(nv), cls_t(st[0], validate_args=False).log_prob(nt), **TOL)
    with pytest.raises(ValueError, match="support"):
        cls_v(sv[0], validate_args=True).log_prob(nv)
    with pytest.raises(ValueError, match="scale"):
        cls_v(vt.tensor([-1.0, 1.0], dtype=vt.float64), validate_args=True)
    assert repr(dv) == repr(dt)


def test_student_t():
    df = RNG.uniform(2.5, 8.0, (2, 3))
    df[0, :] = [0.5, 1.5, 2.0]  # NaN mean / inf or NaN variance, as torch
    (dfv, dft), (lv, lt), (sv, st) = pair(df, True), pair(RNG.standard_normal(3), True), pair(RNG.uniform(
        0.5, 2.0, (2, 1)), True)
    dv, dt = StudentT(dfv, lv, sv), TD.StudentT(dft, lt, st)
    assert dv.batch_shape == tuple(dt.batch_shape) == (2, 3)
    xv, xt = pair(RNG.standard_normal((4, 2, 3)) * 3)
    out = Outputs()
    out.add(dv.log_prob(xv), dt.log_prob(xt), **TOL)
    out.add(dv.entropy(), dt.entropy(), **TOL)
    out.check_grads((4, 2, 3), [dfv, lv, sv], [dft, lt, st], RNG, rtol=1e-7, atol=1e-9)
    close(dv.mean, dt.mean)
    close(dv.variance, dt.variance)
    close(dv.mode, dt.mode)
    good = Outputs()
    good.add(dv.mean[1], dt.mean[1])
    good.add(dv.variance[1], dt.variance[1])
    good.check_grads((3,), [dfv, lv, sv], [dft, lt, st], RNG, rtol=1e-7, atol=1e-9)
    r = dv.rsample((5,))
    assert tuple(r.shape) == (5, 2, 3)
    r.sum().backward()
    assert all(p.grad is not None for p in (dfv, lv, sv))
    # default loc/scale and Python numbers
    close(StudentT(3.0).log_prob(vt.tensor(0.7, dtype=vt.float32)),
          TD.StudentT(3.0).log_prob(torch.tensor(0.7)), rtol=1e-6)
    assert StudentT(dfv).expand((4, 2, 3)).batch_shape == (4, 2, 3)
    with pytest.raises(ValueError, match="df"):
        StudentT(vt.tensor([-1.0], dtype=vt.float64), validate_args=True)


def test_student_t_sample_moments():
    vt.manual_seed(0)
    s = StudentT(vt.tensor(6.0, dtype=vt.float64), 1.0, 2.0).sample((40000,)).numpy()
    assert abs(s.mean() - 1.0) < 0.06 and abs(s.var() - 4.0 * 6 / 4) < 0.35


def test_chi2():
    dfv, dft = pair(RNG.uniform(0.5, 6.0, (3,)), grad=True)
    dv, dt = Chi2(dfv), TD.Chi2(dft)
    xv, xt = pair(RNG.uniform(0.1, 5.0, (2, 3)))
    out = Outputs()
    out.add(dv.log_prob(xv), dt.log_prob(xt), **TOL)
    out.add(dv.entropy(), dt.entropy(), **TOL)
    out.add(dv.mean, dt.mean)
    out.add(dv.variance, dt.variance)
    out.check_grads((2, 3), [dfv], [dft], RNG)
    close(dv.df, dt.df)
    e = dv.expand((2, 3))
    assert type(e) is Chi2 and e.batch_shape == (2, 3)
    close(e.df, dt.expand((2, 3)).df)
    assert repr(dv) == repr(dt)
    with pytest.raises(ValueError, match="df"):
        Chi2(vt.tensor([-1.0], dtype=vt.float64), validate_args=True)


@pytest.mark.parametrize("use_probs", [False, True])
def test_relaxed_bernoulli(use_probs):
    temp = RNG.uniform(0.3, 2.0, (3,))
    param = RNG.uniform(0.1, 0.9, (2, 3)) if use_probs else RNG.standard_normal((2, 3))
    (tv, tt), (pv, pt) = pair(temp, True), pair(param, True)
    key = "probs" if use_probs else "logits"
    logit_t = TD.relaxed_bernoulli.LogitRelaxedBernoulli
    for cls_v, cls_t, value in [(LogitRelaxedBernoulli, logit_t, RNG.standard_normal((4, 2, 3))),
                                (RelaxedBernoulli, TD.RelaxedBernoulli, RNG.uniform(0.02, 0.98, (4, 2, 3)))]:
        dv, dt = cls_v(tv, **{key: pv}), cls_t(tt, **{key: pt})
        assert dv.batch_shape == tuple(dt.batch_shape) and dv.event_shape == ()
        xv, xt = pair(value)
        out = Outputs()
        out.add(dv.log_prob(xv), dt.log_prob(xt), **TOL)
        out.check_grads((4, 2, 3), [tv, pv], [tt, pt], RNG, rtol=1e-7, atol=1e-9)
        tv.grad = pv.grad = tt.grad = pt.grad = None
        r = dv.rsample((5,))
        assert tuple(r.shape) == (5, 2, 3) and r.requires_grad
        close(dv.logits, dt.logits)
        close(dv.probs, dt.probs)
        assert dv.expand((4, 2, 3)).batch_shape == (4, 2, 3)
    s = RelaxedBernoulli(tv, **{key: pv}).sample((100,)).numpy()
    assert ((s > 0) & (s < 1)).all()
    with pytest.raises(ValueError, match="Either `probs` or `logits`"):
        RelaxedBernoulli(tv)


def test_relaxed_one_hot_categorical():
    (tv, tt), (lv, lt) = pair(np.array(0.6), True), pair(RNG.standard_normal((2, 4)), True)
    for cls_v, cls_t in [(ExpRelaxedCategorical, TD.relaxed_categorical.ExpRelaxedCategorical),
                         (RelaxedOneHotCategorical, TD.RelaxedOneHotCategorical)]:
        dv, dt = cls_v(tv, logits=lv), cls_t(tt, logits=lt)
        assert dv.batch_shape == tuple(dt.batch_shape) == (2,) and dv.event_shape == tuple(dt.event_shape) == (4,)
        with torch.no_grad():
            value = dt.sample((3,))
        xv, xt = pair(value.numpy())
        out = Outputs()
        out.add(dv.log_prob(xv), dt.log_prob(xt), rtol=1e-7, atol=1e-9)
        out.check_grads((3, 2), [tv, lv], [tt, lt], RNG, rtol=1e-6, atol=1e-8)
        tv.grad = lv.grad = tt.grad = lt.grad = None
        r = dv.rsample((5,))
        assert tuple(r.shape) == (5, 2, 4) and r.requires_grad
        close(dv.probs, dt.probs)
        assert dv.expand((3, 2)).batch_shape == (3, 2)
    s = RelaxedOneHotCategorical(tv, probs=lv.detach().softmax(-1)).sample((50,)).numpy()
    np.testing.assert_allclose(s.sum(-1), 1.0, rtol=1e-9)
    with pytest.raises(ValueError, match="Either `probs` or `logits`"):
        RelaxedOneHotCategorical(tv, probs=lv, logits=lv)


@pytest.mark.parametrize("name", ["pareto", "weibull"])
def test_pareto_weibull(name):
    cls_v, cls_t = {"pareto": (Pareto, TD.Pareto), "weibull": (Weibull, TD.Weibull)}[name]
    (sv, st), (cv, ct) = pair(RNG.uniform(0.5, 2.0, (2, 1)), True), pair(RNG.uniform(0.6, 4.0, (3,)), True)
    dv, dt = cls_v(sv, cv), cls_t(st, ct)
    assert dv.batch_shape == tuple(dt.batch_shape) == (2, 3)
    with torch.no_grad():
        value = dt.sample((4,))
    xv, xt = pair(value.numpy())
    uv, ut = pair(RNG.uniform(0.05, 0.95, (4, 2, 3)))
    out = Outputs()
    out.add(dv.log_prob(xv), dt.log_prob(xt), **TOL)
    out.add(dv.cdf(xv), dt.cdf(xt), **TOL)
    out.add(dv.icdf(uv), dt.icdf(ut), **TOL)
    out.add(dv.entropy(), dt.entropy(), **TOL)
    out.add(dv.mode, dt.mode, **TOL)
    out.check_grads((4, 2, 3), [sv, cv], [st, ct], RNG, rtol=1e-7, atol=1e-9)
    close(dv.mean, dt.mean, **TOL)
    close(dv.variance, dt.variance, **TOL)
    r = dv.rsample((5,))
    assert tuple(r.shape) == (5, 2, 3) and r.requires_grad
    e = dv.expand((4, 2, 3))
    assert type(e) is cls_v and e.batch_shape == (4, 2, 3)
    close(e.log_prob(xv), dt.expand((4, 2, 3)).log_prob(xt), **TOL)
    assert type(dv.support).__name__ == type(dt.support).__name__
    with pytest.raises(ValueError, match="scale"):
        cls_v(vt.tensor([-1.0], dtype=vt.float64), 1.0, validate_args=True)
