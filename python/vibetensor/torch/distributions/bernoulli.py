"""``Bernoulli(probs=None, logits=None)`` of vt.distributions (torch.distributions.Bernoulli): sampling via
vt.bernoulli, log_prob/entropy through binary_cross_entropy_with_logits (differentiable in probs and logits),
moments and enumerate_support; probs and logits are derived from each other lazily."""
import vibetensor.torch as vt
from vibetensor.torch.nn import functional as F

from . import constraints
from ._probs_logits import _BinaryProbsLogits, probs_or_logits
from .distribution import Distribution, broadcast_all

__all__ = ["Bernoulli"]


class Bernoulli(_BinaryProbsLogits, Distribution):
    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.boolean
    has_enumerate_support = True

    def __init__(self, probs=None, logits=None, validate_args=None):
        name, value = probs_or_logits(probs, logits)
        batch_shape = self._broadcast_params(**{name: value})
        self._param = self.__dict__[name]
        super().__init__(batch_shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        return self._expand_params(Bernoulli, batch_shape, ["probs", "logits", "_param"], _instance)

    @property
    def mean(self):
        return self.probs

    @property
    def mode(self):
        mode = (self.probs >= 0.5).to(self.probs.dtype)
        return vt.where(self.probs == 0.5, vt.full_like(mode, float("nan")), mode)

    @property
    def variance(self):
        return self.probs * (1 - self.probs)

    @property
    def param_shape(self):
        return tuple(self._param.shape)

    def sample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        with vt.no_grad():
            return vt.bernoulli(self.probs.expand(shape))

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        logits, value = broadcast_all(self.logits, value)
        return -F.binary_cross_entropy_with_logits(logits, value, reduction="none")

    def entropy(self):
        return F.binary_cross_entropy_with_logits(self.logits, self.probs, reduction="none")

    def enumerate_support(self, expand=True):
        values = vt.arange(2, dtype=self._param.dtype, device=self._param.device)
        values = values.reshape((-1,) + (1,) * len(self._batch_shape))
        if expand:
            values = values.expand((-1,) + self._batch_shape)
        return values
