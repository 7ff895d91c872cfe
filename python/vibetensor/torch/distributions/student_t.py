"""``StudentT(df, loc=0., scale=1.)`` and ``Chi2(df)`` of vt.distributions (torch.distributions.StudentT / Chi2):
StudentT samples loc + scale * N / sqrt(V / df) with V ~ Chi2(df) reparameterised through the gamma sampler's
implicit gradient, so rsample is differentiable in df, loc and scale; log_prob, entropy and torch's NaN/inf
moments for small df. Chi2(df) is Gamma(df / 2, 1 / 2)."""
import math

import vibetensor.torch as vt

from . import constraints
from ._gamma_rsample import standard_gamma_rsample
from .distribution import Distribution
from .gamma import Gamma

__all__ = ["Chi2", "StudentT"]


class Chi2(Gamma):
    arg_constraints = {"df": constraints.positive}

    def __init__(self, df, validate_args=None):
        super().__init__(0.5 * df, 0.5, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(Chi2, _instance)
        return super().expand(batch_shape, new)

    @property
    def df(self):
        return self.concentration * 2


class StudentT(Distribution):
    arg_constraints = {"df": constraints.positive, "loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    has_rsample = True

    def __init__(self, df, loc=0.0, scale=1.0, validate_args=None):
        batch_shape = self._broadcast_params(df=df, loc=loc, scale=scale)
        super().__init__(batch_shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        return self._expand_params(StudentT, batch_shape, ["df", "loc", "scale"], _instance)

    @property
    def mean(self):
        return vt.where(self.df > 1, self.loc, vt.full_like(self.loc, math.nan))

    @property
    def mode(self):
        return self.loc

    @property
    def variance(self):
        df = self.df
        # A safe df in the unselected branch keeps its gradient finite (0 * inf would be NaN).
        safe = vt.where(df > 2, df, vt.full_like(df, 3.0))
        finite = self.scale.pow(2) * safe / (safe - 2)
        undefined = vt.where(df > 1, vt.full_like(df, math.inf), vt.full_like(df, math.nan))
        return vt.where(df > 2, finite, undefined)

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        normal = vt.randn(shape, dtype=self.df.dtype, device=self.df.device)
        chi2 = 2 * standard_gamma_rsample(0.5 * self.df.expand(shape))
        return self.loc + self.scale * normal * vt.rsqrt(chi2 / self.df)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        df = self.df
        y = (value - self.loc) / self.scale
        log_norm = (self.scale.log() + 0.5 * df.log() + 0.5 * math.log(math.pi) + vt.lgamma(0.5 * df)
                    - vt.lgamma(0.5 * (df + 1.0)))
        return -0.5 * (df + 1.0) * vt.log1p(y.pow(2) / df) - log_norm

    def entropy(self):
        df = self.df
        half = 0.5 * (df + 1)
        log_beta = vt.lgamma(0.5 * df) + math.lgamma(0.5) - vt.lgamma(half)
        return (self.scale.log() + half * (vt.digamma(half) - vt.digamma(0.5 * df)) + 0.5 * df.log()
                + log_beta)
