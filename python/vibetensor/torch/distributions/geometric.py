"""``Geometric(probs=None, logits=None)`` of vt.distributions (torch.distributions.Geometric): the number of
failures before the first success. Sampling by inversion, log_prob, entropy, moments and expand; probs and logits
are derived from each other lazily."""
import vibetensor.torch as vt
from vibetensor.torch.nn import functional as F

from . import constraints
from ._probs_logits import _BinaryProbsLogits, probs_or_logits
from .distribution import Distribution, broadcast_all

__all__ = ["Geometric"]


class Geometric(_BinaryProbsLogits, Distribution):
    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.nonnegative_integer

    def __init__(self, probs=None, logits=None, validate_args=None):
        name, value = probs_or_logits(probs, logits)
        batch_shape = self._broadcast_params(**{name: value})
        super().__init__(batch_shape, validate_args=validate_args)
        if self._validate_args and probs is not None:
            # unit_interval admits 0, where the distribution is undefined; torch checks positivity as well.
            valid = self.probs > 0
            if not bool(valid.all().item()):
                raise ValueError(
                    f"Expected parameter probs ({type(self.probs).__name__} of shape {tuple(self.probs.shape)}) "
                    f"of distribution {repr(self)} to be positive but found invalid values:\n{self.probs[~valid]}")

    def expand(self, batch_shape, _instance=None):
        return self._expand_params(Geometric, batch_shape, ["probs", "logits"], _instance)

    @property
    def mean(self):
        return 1.0 / self.probs - 1.0

    @property
    def mode(self):
        return vt.zeros_like(self.probs)

    @property
    def variance(self):
        return (1.0 / self.probs - 1.0) / self.probs

    def sample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        tiny = vt.finfo(self.probs.dtype).tiny
        with vt.no_grad():
            u = vt.rand(shape, dtype=self.probs.dtype, device=self.probs.device).clamp(min=tiny)
            return (u.log() / vt.log1p(-self.probs)).floor()

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        value, probs = broadcast_all(value, self.probs)
        # At probs == 1 only value 0 is possible: make 0 * log(0) read 0 there, as torch does.
        probs = vt.where((probs == 1) & (value == 0), vt.zeros_like(probs), probs)
        return value * vt.log1p(-probs) + self.probs.log()

    def entropy(self):
        return F.binary_cross_entropy_with_logits(self.logits, self.probs, reduction="none") / self.probs
