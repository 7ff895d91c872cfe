"""``Categorical(probs=None, logits=None)`` of vt.distributions (torch.distributions.Categorical) over the last
dim of the parameter: sampling via vt.multinomial, log_prob by gathering normalised logits, entropy, and
enumerate_support. probs are normalised to sum 1 and logits to logsumexp 0, as torch does."""
import vibetensor.torch as vt

from . import constraints
from ._probs_logits import probs_or_logits
from .distribution import Distribution, lazy_property, logits_to_probs, probs_to_logits

__all__ = ["Categorical"]


class Categorical(Distribution):
    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}
    has_enumerate_support = True

    def __init__(self, probs=None, logits=None, validate_args=None):
        probs_or_logits(probs, logits)
        if probs is not None:
            probs = probs if vt.is_tensor(probs) else vt.tensor(probs, dtype=vt.get_default_dtype())
            if probs.dim() < 1:
                raise ValueError("`probs` parameter must be at least one-dimensional.")
            self.probs = probs / probs.sum(-1, keepdim=True)
        else:
            logits = logits if vt.is_tensor(logits) else vt.tensor(logits, dtype=vt.get_default_dtype())
            if logits.dim() < 1:
                raise ValueError("`logits` parameter must be at least one-dimensional.")
            self.logits = logits - logits.logsumexp(dim=-1, keepdim=True)
        self._param = self.probs if probs is not None else self.logits
        self._num_events = self._param.shape[-1]
        batch_shape = tuple(self._param.shape[:-1]) if self._param.dim() > 1 else ()
        super().__init__(batch_shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._expand_params(Categorical, batch_shape, ["probs", "logits", "_param"], _instance, event_dims=1)
        new._num_events = self._num_events
        return new

    @property
    def support(self):
        return constraints.integer_interval(0, self._num_events - 1)

    @lazy_property
    def logits(self):
        return probs_to_logits(self.probs)

    @lazy_property
    def probs(self):
        return logits_to_probs(self.logits)

    @property
    def param_shape(self):
        return tuple(self._param.shape)

    @property
    def mean(self):
        return vt.full(self._extended_shape(), float("nan"), dtype=self._param.dtype, device=self._param.device)

    @property
    def mode(self):
        return self.probs.argmax(dim=-1)

    @property
    def variance(self):
        return vt.full(self._extended_shape(), float("nan"), dtype=self._param.dtype, device=self._param.device)

    def sample(self, sample_shape=()):
        sample_shape = tuple(sample_shape)
        n = 1
        for s in sample_shape:
            n *= s
        with vt.no_grad():
            # One multinomial row per batch element; the transpose puts the draws first, then the batch.
            probs_2d = self.probs.reshape(-1, self._num_events)
            samples_2d = vt.multinomial(probs_2d, n, True).T
            return samples_2d.reshape(self._extended_shape(sample_shape))

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        value = value.long().unsqueeze(-1)
        value, log_pmf = vt.broadcast_tensors(value, self.logits)
        value = value[..., :1]
        return log_pmf.gather(-1, value).squeeze(-1)

    def entropy(self):
        # Clamp -inf logits (zero probs) to the most negative finite value so 0 * logit stays 0, not NaN.
        min_real = vt.finfo(self.logits.dtype).min
        logits = vt.clamp(self.logits, min=min_real)
        p_log_p = logits * self.probs
        return -p_log_p.sum(-1)

    def enumerate_support(self, expand=True):
        values = vt.arange(self._num_events, dtype=vt.int64, device=self._param.device)
        values = values.reshape((-1,) + (1,) * len(self._batch_shape))
        if expand:
            values = values.expand((-1,) + self._batch_shape)
        return values


def _read_through(name):
    return property(lambda self: getattr(self._categorical, name))


class _CategoricalWrapper:
    """Mixin of the distributions built on a Categorical over the last dim (OneHotCategorical, Multinomial): the
    parameters are those of the wrapped ``_categorical``."""
    _param = _read_through("_param")
    probs = _read_through("probs")
    logits = _read_through("logits")
    param_shape = _read_through("param_shape")
