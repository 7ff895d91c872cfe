"""KL divergences of the families built on transforms, registered with vt.distributions.register_kl as torch
has them: TransformedDistribution||TransformedDistribution (equal transforms: the base KL, summed over the event
dims the transforms add), HalfNormal, Pareto and ContinuousBernoulli pairs."""
import math

import vibetensor.torch as vt

from .continuous_bernoulli import ContinuousBernoulli
from .half_normal import HalfNormal
from .kl import _kl_normal_normal, kl_divergence, register_kl
from .pareto import Pareto
from .transformed_distribution import TransformedDistribution
from .transforms import _sum_rightmost

__all__ = []


@register_kl(TransformedDistribution, TransformedDistribution)
def _kl_transformed_transformed(p, q):
    if p.transforms != q.transforms:
        raise NotImplementedError
    if p.event_shape != q.event_shape:
        raise NotImplementedError
    extra_event_dim = len(p.event_shape) - len(p.base_dist.event_shape)
    return _sum_rightmost(kl_divergence(p.base_dist, q.base_dist), extra_event_dim)


@register_kl(HalfNormal, HalfNormal)
def _kl_halfnormal_halfnormal(p, q):
    return _kl_normal_normal(p.base_dist, q.base_dist)  # folding both at 0 leaves the ratio of densities


@register_kl(Pareto, Pareto)
def _kl_pareto_pareto(p, q):
    scale_ratio = p.scale / q.scale
    alpha_ratio = q.alpha / p.alpha
    result = q.alpha * scale_ratio.log() - alpha_ratio.log() + alpha_ratio - 1
    # p puts mass below q's support (p.scale < q.scale): infinite
    return vt.where(p.scale < q.scale, vt.full_like(result, math.inf), result)


@register_kl(ContinuousBernoulli, ContinuousBernoulli)
def _kl_continuous_bernoulli(p, q):
    t1 = p.mean * (p.logits - q.logits)
    t2 = p._cont_bern_log_norm() + vt.log1p(-p.probs)
    t3 = -q._cont_bern_log_norm() - vt.log1p(-q.probs)
    return t1 + t2 + t3
