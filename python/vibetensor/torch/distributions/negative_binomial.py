"""``NegativeBinomial(total_count, probs=None, logits=None)`` of vt.distributions (torch.distributions
.NegativeBinomial): the number of successes, each of probability probs, before total_count failures (total_count
may be real, as in count-data likelihoods such as DeepAR's). log_prob goes through logsigmoid of the logits, so it
stays finite at both ends and is differentiable in total_count and the logits; sampling is the gamma-Poisson
mixture; moments and expand. Like torch's it has no entropy."""
import vibetensor.torch as vt
from vibetensor.torch.nn import functional as F

from . import constraints
from ._probs_logits import _BinaryProbsLogits, probs_or_logits
from ._samplers import poisson
from .distribution import Distribution, lazy_property
from .gamma import Gamma

__all__ = ["NegativeBinomial"]


class NegativeBinomial(_BinaryProbsLogits, Distribution):
    arg_constraints = {"total_count": constraints.greater_than_eq(0),
                       "probs": constraints.half_open_interval(0.0, 1.0), "logits": constraints.real}
    support = constraints.nonnegative_integer

    def __init__(self, total_count, probs=None, logits=None, validate_args=None):
        name, value = probs_or_logits(probs, logits)
        self._broadcast_params(total_count=total_count, **{name: value})
        self._param = self.__dict__[name]
        self.total_count = self.total_count.to(self._param.dtype)
        super().__init__(tuple(self._param.shape), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        return self._expand_params(NegativeBinomial, batch_shape, ["total_count", "probs", "logits", "_param"],
                                   _instance)

    @property
    def mean(self):
        return self.total_count * vt.exp(self.logits)

    @property
    def mode(self):
        return ((self.total_count - 1) * self.logits.exp()).floor().clamp(min=0.0)

    @property
    def variance(self):
        return self.mean / vt.sigmoid(-self.logits)

    @property
    def param_shape(self):
        return tuple(self._param.shape)

    @lazy_property
    def _gamma(self):
        # the mixing distribution of the rates; not validated, since total_count may be 0
        return Gamma(concentration=self.total_count, rate=vt.exp(-self.logits), validate_args=False)

    def sample(self, sample_shape=()):
        with vt.no_grad():
            return poisson(self._gamma.sample(sample_shape))

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        n = self.total_count
        log_unnormalized = n * F.logsigmoid(-self.logits) + value * F.logsigmoid(self.logits)
        log_normalization = vt.lgamma(1.0 + value) + vt.lgamma(n) - vt.lgamma(n + value)
        # total_count 0 with value 0 has probability 1, though lgamma(0) is infinite
        log_normalization = log_normalization.masked_fill(n + value == 0.0, 0.0)
        return log_unnormalized - log_normalization
