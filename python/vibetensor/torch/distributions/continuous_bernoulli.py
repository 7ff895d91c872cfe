"""``ContinuousBernoulli(probs=None, logits=None, lims=(0.499, 0.501))`` of vt.distributions
(torch.distributions.ContinuousBernoulli): the density C(p) p^x (1-p)^(1-x) on [0, 1]. Its normaliser, mean,
variance, cdf and icdf have 0/0 forms at p = 1/2, so inside ``lims`` they use Taylor expansions around 1/2 (the
closed forms are evaluated at a safe p there, keeping gradients finite); reparameterised sampling via icdf."""
import math

import vibetensor.torch as vt
from vibetensor.torch.nn import functional as F

from . import constraints
from ._probs_logits import _BinaryProbsLogits, probs_or_logits
from .distribution import Distribution, broadcast_all, clamp_probs

__all__ = ["ContinuousBernoulli"]


class ContinuousBernoulli(_BinaryProbsLogits, Distribution):
    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.unit_interval
    has_rsample = True
    _mean_carrier_measure = 0

    def __init__(self, probs=None, logits=None, lims=(0.499, 0.501), validate_args=None):
        name, value = probs_or_logits(probs, logits)
        batch_shape = self._broadcast_params(**{name: value})
        self._param = self.__dict__[name]
        self._lims = lims
        super().__init__(batch_shape, validate_args=validate_args)
        if name == "probs":  # validated as given, then kept off 0 and 1 as torch does
            self.probs = self._param = clamp_probs(self.probs)

    def expand(self, batch_shape, _instance=None):
        new = self._expand_params(ContinuousBernoulli, batch_shape, ["probs", "logits", "_param"], _instance)
        new._lims = self._lims
        return new

    def _outside_unstable_region(self):
        return (self.probs <= self._lims[0]) | (self.probs > self._lims[1])

    def _cut_probs(self):
        # p where the closed forms are stable, a fixed safe value inside the Taylor region
        return vt.where(self._outside_unstable_region(), self.probs, vt.full_like(self.probs, self._lims[0]))

    def _log_logit_gap(self, cut):
        return vt.log1p(-cut) - vt.log(cut)

    def _cont_bern_log_norm(self):
        cut = self._cut_probs()
        below = vt.where(cut <= 0.5, cut, vt.zeros_like(cut))
        above = vt.where(cut >= 0.5, cut, vt.ones_like(cut))
        log_norm = vt.log(self._log_logit_gap(cut).abs()) - vt.where(cut <= 0.5, vt.log1p(-2.0 * below),
                                                                      vt.log(2.0 * above - 1.0))
        x = (self.probs - 0.5).pow(2)
        taylor = math.log(2.0) + (4.0 / 3.0 + 104.0 / 45.0 * x) * x
        return vt.where(self._outside_unstable_region(), log_norm, taylor)

    @property
    def mean(self):
        cut = self._cut_probs()
        mus = cut / (2.0 * cut - 1.0) + 1.0 / self._log_logit_gap(cut)
        x = self.probs - 0.5
        taylor = 0.5 + (1.0 / 3.0 + 16.0 / 45.0 * x.pow(2)) * x
        return vt.where(self._outside_unstable_region(), mus, taylor)

    @property
    def stddev(self):
        return self.variance.sqrt()

    @property
    def variance(self):
        cut = self._cut_probs()
        vars_ = cut * (cut - 1.0) / (1.0 - 2.0 * cut).pow(2) + 1.0 / self._log_logit_gap(cut).pow(2)
        x = (self.probs - 0.5).pow(2)
        taylor = 1.0 / 12.0 - (1.0 / 15.0 - 128.0 / 945.0 * x) * x
        return vt.where(self._outside_unstable_region(), vars_, taylor)

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        u = vt.rand(shape, dtype=self.probs.dtype, device=self.probs.device)
        return self.icdf(u)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        logits, value = broadcast_all(self.logits, value)
        return -F.binary_cross_entropy_with_logits(logits, value, reduction="none") + self._cont_bern_log_norm()

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        cut = self._cut_probs()
        cdfs = (cut.pow(value) * (1.0 - cut).pow(1.0 - value) + cut - 1.0) / (2.0 * cut - 1.0)
        unbounded = vt.where(self._outside_unstable_region(), cdfs, value)
        return vt.where(value <= 0.0, vt.zeros_like(value), vt.where(value >= 1.0, vt.ones_like(value), unbounded))

    def icdf(self, value):
        cut = self._cut_probs()
        inv = (vt.log1p(-cut + value * (2.0 * cut - 1.0)) - vt.log1p(-cut)) / (vt.log(cut) - vt.log1p(-cut))
        return vt.where(self._outside_unstable_region(), inv, value)

    def entropy(self):
        log_p0, log_p1 = vt.log1p(-self.probs), vt.log(self.probs)
        return self.mean * (log_p0 - log_p1) - self._cont_bern_log_norm() - log_p0
