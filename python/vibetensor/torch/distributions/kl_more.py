"""The closed-form KL divergences torch registers among the distributions of this package beyond kl.py's four:
same-family pairs (Exponential, Gamma, Beta, Dirichlet, Laplace, Poisson, Geometric, Binomial, Gumbel, Cauchy,
LogNormal, OneHotCategorical, MultivariateNormal, Independent) and the cross-family pairs with a closed form or
an infinite value (q's support not covering p's). Importing this module registers them with kl_divergence."""
import math

import vibetensor.torch as vt

from .bernoulli import Bernoulli
from .beta import Beta
from .binomial import Binomial
from .cauchy import Cauchy
from .dirichlet import Dirichlet
from .exponential import Exponential
from .gamma import Gamma
from .geometric import Geometric
from .gumbel import Gumbel
from .independent import Independent, _sum_rightmost
from .kl import _kl_categorical_categorical, _set_where, kl_divergence, register_kl
from .laplace import Laplace
from .lognormal import LogNormal
from .multivariate_normal import MultivariateNormal, _broadcast_shape
from .normal import Normal
from .one_hot_categorical import OneHotCategorical
from .poisson import Poisson
from .uniform import Uniform

__all__ = []

_EULER = 0.57721566490153286060


def _inf_like(t):
    return vt.full_like(t, math.inf)


def _x_log_x(t):
    return t * t.log()


# ---- same family ----------------------------------------------------------------------------------------------

@register_kl(Exponential, Exponential)
def _kl_exponential_exponential(p, q):
    ratio = q.rate / p.rate
    return ratio - 1 - ratio.log()


@register_kl(Gamma, Gamma)
def _kl_gamma_gamma(p, q):
    t1 = q.concentration * vt.log(p.rate / q.rate)
    t2 = vt.lgamma(q.concentration) - vt.lgamma(p.concentration)
    t3 = (p.concentration - q.concentration) * vt.digamma(p.concentration)
    t4 = (q.rate - p.rate) * (p.concentration / p.rate)
    return t1 + t2 + t3 + t4


@register_kl(Beta, Beta)
def _kl_beta_beta(p, q):
    return _kl_dirichlet_dirichlet(p._dirichlet, q._dirichlet)


@register_kl(Dirichlet, Dirichlet)
def _kl_dirichlet_dirichlet(p, q):
    sum_p, sum_q = p.concentration.sum(-1), q.concentration.sum(-1)
    t1 = vt.lgamma(sum_p) - vt.lgamma(sum_q)
    t2 = (vt.lgamma(p.concentration) - vt.lgamma(q.concentration)).sum(-1)
    t3 = p.concentration - q.concentration
    t4 = vt.digamma(p.concentration) - vt.digamma(sum_p).unsqueeze(-1)
    return t1 - t2 + (t3 * t4).sum(-1)


@register_kl(Laplace, Laplace)
def _kl_laplace_laplace(p, q):
    scale_ratio = p.scale / q.scale
    loc_abs_diff = (p.loc - q.loc).abs()
    return -scale_ratio.log() + loc_abs_diff / q.scale + scale_ratio * vt.exp(-loc_abs_diff / p.scale) - 1


@register_kl(Poisson, Poisson)
def _kl_poisson_poisson(p, q):
    return p.rate * (p.rate.log() - q.rate.log()) - (p.rate - q.rate)


@register_kl(Geometric, Geometric)
def _kl_geometric_geometric(p, q):
    return -p.entropy() - vt.log1p(-q.probs) / p.probs - q.logits


@register_kl(Binomial, Binomial)
def _kl_binomial_binomial(p, q):
    # Only q.total_count <= p.total_count has a closed form here (and a larger p count is infinitely far).
    if bool((p.total_count < q.total_count).any().item()):
        raise NotImplementedError("KL between Binomials where q.total_count > p.total_count is not implemented")
    kl = p.total_count * (p.probs * (p.logits - q.logits) + vt.log1p(-p.probs) - vt.log1p(-q.probs))
    return _set_where(p.total_count > q.total_count, math.inf, kl)


@register_kl(Gumbel, Gumbel)
def _kl_gumbel_gumbel(p, q):
    ct1 = p.scale / q.scale
    ct2 = q.loc / q.scale
    ct3 = p.loc / q.scale
    t1 = -ct1.log() - ct2 + ct3
    t2 = ct1 * _EULER
    t3 = vt.exp(ct2 + vt.lgamma(1 + ct1) - ct3)
    return t1 + t2 + t3 - (1 + _EULER)


@register_kl(Cauchy, Cauchy)
def _kl_cauchy_cauchy(p, q):
    num = (p.scale + q.scale).pow(2) + (p.loc - q.loc).pow(2)
    return vt.log(num / (4 * p.scale * q.scale))


@register_kl(LogNormal, LogNormal)
def _kl_lognormal_lognormal(p, q):
    return kl_divergence(p.base_dist, q.base_dist)  # KL is invariant under the shared bijection exp


@register_kl(OneHotCategorical, OneHotCategorical)
def _kl_onehotcategorical_onehotcategorical(p, q):
    return _kl_categorical_categorical(p._categorical, q._categorical)


@register_kl(MultivariateNormal, MultivariateNormal)
def _kl_mvn_mvn(p, q):
    if p.event_shape != q.event_shape:
        raise ValueError("KL-divergence between two Multivariate Normals with different event shapes cannot be "
                         "computed")
    half_log_det = q._half_log_det() - p._half_log_det()
    n = p.event_shape[0]
    lq, lp = q._unbroadcasted_scale_tril, p._unbroadcasted_scale_tril
    shape = _broadcast_shape(tuple(lq.shape[:-2]), tuple(lp.shape[:-2]), tuple(p.loc.shape[:-1]),
                             tuple(q.loc.shape[:-1]))
    lq, lp = lq.expand(shape + (n, n)), lp.expand(shape + (n, n))
    # tr(Sq^-1 Sp) = |Lq^-1 Lp|_F^2 and the Mahalanobis term |Lq^-1 (mu_q - mu_p)|^2, both by triangular solves.
    term2 = vt.linalg.solve_triangular(lq, lp, upper=False).pow(2).sum((-2, -1))
    diff = (q.loc - p.loc).expand(shape + (n,)).unsqueeze(-1)
    term3 = vt.linalg.solve_triangular(lq, diff, upper=False).pow(2).sum((-2, -1))
    return half_log_det + 0.5 * (term2 + term3 - n)


@register_kl(Independent, Independent)
def _kl_independent_independent(p, q):
    if p.reinterpreted_batch_ndims != q.reinterpreted_batch_ndims:
        raise NotImplementedError
    return _sum_rightmost(kl_divergence(p.base_dist, q.base_dist), p.reinterpreted_batch_ndims)


# ---- cross family with a closed form: KL = -H(p) - E_p[log q] ----------------------------------------------------

def _neg_cross_gamma(mean, mean_log, q):
    # E_p[log q] for q = Gamma(a, b): a log b - lgamma(a) + (a - 1) E[log x] - b E[x].
    a, b = q.concentration, q.rate
    return a * b.log() - vt.lgamma(a) + (a - 1) * mean_log - b * mean


def _neg_cross_normal(mean, var, q):
    return -0.5 * vt.log(2 * math.pi * q.scale.pow(2)) - (var + (mean - q.loc).pow(2)) / (2 * q.scale.pow(2))


def _neg_cross_gumbel(mean, mean_exp_neg, q):
    # E_p[log q] for q = Gumbel(m, s): -log s - E[(x - m) / s] - exp(m / s) E[exp(-x / s)].
    return -q.scale.log() - (mean - q.loc) / q.scale - vt.exp(q.loc / q.scale) * mean_exp_neg


def _neg_cross_exponential(mean, q):
    return q.rate.log() - q.rate * mean


@register_kl(Exponential, Gamma)
def _kl_exponential_gamma(p, q):
    return -p.entropy() - _neg_cross_gamma(p.mean, -_EULER - p.rate.log(), q)


def _kl_to_normal(p, q):
    return -p.entropy() - _neg_cross_normal(p.mean, p.variance, q)


def _kl_to_exponential(p, q):
    return -p.entropy() - _neg_cross_exponential(p.mean, q)


# E_p[log q] needs only p's mean (and variance, for a Normal q): one closed form serves each of these p.
for _tp in (Gamma, Beta):
    register_kl(_tp, Exponential)(_kl_to_exponential)
for _tp in (Exponential, Gamma, Laplace, Gumbel, Beta, Uniform):
    register_kl(_tp, Normal)(_kl_to_normal)


@register_kl(Beta, Gamma)
def _kl_beta_gamma(p, q):
    mean_log = vt.digamma(p.concentration1) - vt.digamma(p.concentration1 + p.concentration0)
    return -p.entropy() - _neg_cross_gamma(p.mean, mean_log, q)


@register_kl(Beta, Uniform)
def _kl_beta_uniform(p, q):
    result = -p.entropy() + (q.high - q.low).log()
    return _set_where((q.low > 0) | (q.high < 1), math.inf, result)


@register_kl(Exponential, Gumbel)
def _kl_exponential_gumbel(p, q):
    mean_exp_neg = p.rate / (p.rate + 1 / q.scale)
    return -p.entropy() - _neg_cross_gumbel(p.mean, mean_exp_neg, q)


@register_kl(Gamma, Gumbel)
def _kl_gamma_gumbel(p, q):
    mean_exp_neg = (p.rate / (p.rate + 1 / q.scale)).pow(p.concentration)
    return -p.entropy() - _neg_cross_gumbel(p.mean, mean_exp_neg, q)


@register_kl(Normal, Gumbel)
def _kl_normal_gumbel(p, q):
    mean_exp_neg = vt.exp(-p.loc / q.scale + p.scale.pow(2) / (2 * q.scale.pow(2)))
    return -p.entropy() - _neg_cross_gumbel(p.mean, mean_exp_neg, q)


@register_kl(Normal, Laplace)
def _kl_normal_laplace(p, q):
    # E|x - m| for x ~ N(mu, s^2): s sqrt(2/pi) exp(-d^2 / 2s^2) + d erf(d / (s sqrt 2)), d = mu - m.
    d = p.loc - q.loc
    mean_abs = (p.scale * math.sqrt(2 / math.pi) * vt.exp(-0.5 * (d / p.scale).pow(2))
                + d * vt.erf(d / (p.scale * math.sqrt(2))))
    return -p.entropy() + vt.log(2 * q.scale) + mean_abs / q.scale


@register_kl(Uniform, Exponential)
def _kl_uniform_exponential(p, q):
    return _set_where(p.low < 0, math.inf, _kl_to_exponential(p, q))


@register_kl(Uniform, Gamma)
def _kl_uniform_gamma(p, q):
    width = p.high - p.low
    mean_log = (_x_log_x(p.high) - _x_log_x(p.low) - width) / width
    result = -p.entropy() - _neg_cross_gamma(p.mean, mean_log, q)
    return _set_where(p.low < 0, math.inf, result)


@register_kl(Uniform, Gumbel)
def _kl_uniform_gumbel(p, q):
    mean_exp_neg = q.scale * (vt.exp(-p.low / q.scale) - vt.exp(-p.high / q.scale)) / (p.high - p.low)
    return -p.entropy() - _neg_cross_gumbel(p.mean, mean_exp_neg, q)


@register_kl(Uniform, Beta)
def _kl_uniform_beta(p, q):
    width = p.high - p.low
    mean_log = (_x_log_x(p.high) - _x_log_x(p.low) - width) / width
    mean_log1m = (_x_log_x(1 - p.low) - _x_log_x(1 - p.high) - width) / width
    c1, c0 = q.concentration1, q.concentration0
    log_beta = vt.lgamma(c1) + vt.lgamma(c0) - vt.lgamma(c1 + c0)
    result = -p.entropy() + log_beta - (c1 - 1) * mean_log - (c0 - 1) * mean_log1m
    return _set_where((p.high > 1) | (p.low < 0), math.inf, result)


@register_kl(Bernoulli, Poisson)
def _kl_bernoulli_poisson(p, q):
    return -p.entropy() + q.rate - p.probs * q.rate.log()


# ---- q cannot cover p's support: infinite ------------------------------------------------------------------------

def _register_infinite(types_p, types_q, param):
    for tp in types_p:
        for tq in types_q:
            register_kl(tp, tq)(lambda p, q: _inf_like(getattr(p, param)))


_register_infinite([Exponential], [Beta, Uniform], "rate")
_register_infinite([Gamma], [Beta, Uniform], "concentration")
_register_infinite([Gumbel, Laplace, Normal], [Beta, Uniform, Exponential, Gamma], "loc")
_register_infinite([Poisson], [Bernoulli, Binomial], "rate")
