"""``Binomial(total_count=1, probs=None, logits=None)`` of vt.distributions (torch.distributions.Binomial):
sampling (_samplers.binomial), log_prob in the logits (stable for extreme probabilities), entropy and
enumerate_support for a homogeneous total_count, moments and expand."""
import vibetensor.torch as vt

from . import constraints
from ._samplers import binomial
from ._probs_logits import _BinaryProbsLogits, probs_or_logits
from .distribution import Distribution

__all__ = ["Binomial"]


def _clamp_by_zero(x):
    # max(x, 0) whose gradient at exactly 0 is 1/2 (torch's choice, so gradients agree there too).
    return (x.clamp(min=0) + x - x.clamp(max=0)) / 2


class Binomial(_BinaryProbsLogits, Distribution):
    arg_constraints = {"total_count": constraints.nonnegative_integer, "probs": constraints.unit_interval,
                       "logits": constraints.real}
    has_enumerate_support = True

    def __init__(self, total_count=1, probs=None, logits=None, validate_args=None):
        name, value = probs_or_logits(probs, logits)
        self._broadcast_params(total_count=total_count, **{name: value})
        self._param = self.__dict__[name]
        self.total_count = self.total_count.to(self._param.dtype)
        super().__init__(tuple(self._param.shape), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        return self._expand_params(Binomial, batch_shape, ["total_count", "probs", "logits", "_param"], _instance)

    @property
    def support(self):
        return constraints.integer_interval(0, self.total_count)

    @property
    def mean(self):
        return self.total_count * self.probs

    @property
    def mode(self):
        return ((self.total_count + 1) * self.probs).floor().clamp(max=self.total_count)

    @property
    def variance(self):
        return self.total_count * self.probs * (1 - self.probs)

    @property
    def param_shape(self):
        return tuple(self._param.shape)

    def sample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        with vt.no_grad():
            return binomial(self.total_count.expand(shape), self.probs.expand(shape))

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        n, logits = self.total_count, self.logits
        log_binom = vt.lgamma(n + 1) - vt.lgamma(value + 1) - vt.lgamma(n - value + 1)
        # n * log(1 + exp(logits)) written so neither sign of the logits overflows.
        log_norm = n * _clamp_by_zero(logits) + n * vt.log1p(vt.exp(-logits.abs()))
        return value * logits - log_norm + log_binom

    def _homogeneous_count(self, what):
        count = int(self.total_count.max().item())
        if not int(self.total_count.min().item()) == count:
            raise NotImplementedError(f"Inhomogeneous total count not supported by `{what}`.")
        return count

    def entropy(self):
        self._homogeneous_count("entropy")
        log_prob = self.log_prob(self.enumerate_support(False))
        return -(vt.exp(log_prob) * log_prob).sum(0)

    def enumerate_support(self, expand=True):
        count = self._homogeneous_count("enumerate_support")
        values = vt.arange(1 + count, dtype=self._param.dtype, device=self._param.device)
        values = values.reshape((-1,) + (1,) * len(self._batch_shape))
        if expand:
            values = values.expand((-1,) + self._batch_shape)
        return values
