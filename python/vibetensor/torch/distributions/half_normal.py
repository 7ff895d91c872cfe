"""``HalfNormal(scale)`` and ``HalfCauchy(scale)`` of vt.distributions (torch.distributions.HalfNormal /
HalfCauchy): |X| for X centred Normal or Cauchy, as TransformedDistributions with an AbsTransform (so sampling is
reparameterised), with the folded density (twice the base's on x >= 0, -inf below), cdf/icdf, entropy and
moments written out as torch's."""
import math

import vibetensor.torch as vt

from . import constraints
from .cauchy import Cauchy
from .normal import Normal
from .transformed_distribution import TransformedDistribution
from .transforms import AbsTransform

__all__ = ["HalfCauchy", "HalfNormal"]


class _Half(TransformedDistribution):
    arg_constraints = {"scale": constraints.positive}
    support = constraints.nonnegative
    has_rsample = True
    _base = None

    def __init__(self, scale, validate_args=None):
        base = self._base(0.0, scale, validate_args=False)
        super().__init__(base, AbsTransform(), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(type(self)._family, _instance)
        return super().expand(batch_shape, _instance=new)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if _Half in cls.__bases__:
            cls._family = cls

    @property
    def scale(self):
        return self.base_dist.scale

    @property
    def mode(self):
        return vt.zeros_like(self.scale)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        folded = self.base_dist.log_prob(value) + math.log(2)
        return vt.where(value >= 0, folded, vt.full_like(folded, -math.inf))

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return 2 * self.base_dist.cdf(value) - 1

    def icdf(self, prob):
        return self.base_dist.icdf((prob + 1) / 2)

    def entropy(self):
        return self.base_dist.entropy() - math.log(2)


class HalfNormal(_Half):
    _base = Normal

    @property
    def mean(self):
        return self.scale * math.sqrt(2 / math.pi)

    @property
    def variance(self):
        return self.scale.pow(2) * (1 - 2 / math.pi)


class HalfCauchy(_Half):
    _base = Cauchy

    @property
    def mean(self):
        return vt.full(self._extended_shape(), math.inf, dtype=self.scale.dtype, device=self.scale.device)

    @property
    def variance(self):
        return self.base_dist.variance
