"""What the distributions parameterised by ``probs`` or ``logits`` share: the check that exactly one was given
(torch's message) and, for the two-outcome families (Bernoulli, Binomial, Geometric), each of probs/logits derived
lazily from the one given."""
from .distribution import lazy_property, logits_to_probs, probs_to_logits

__all__ = []


def probs_or_logits(probs, logits):
    """(name, value) of whichever of probs/logits was given; ValueError unless exactly one was."""
    if (probs is None) == (logits is None):
        raise ValueError("Either `probs` or `logits` must be specified, but not both.")
    return ("probs", probs) if probs is not None else ("logits", logits)


class _BinaryProbsLogits:
    """Mixin: the success probability and its log-odds, the missing one computed from the other on first use."""

    @lazy_property
    def logits(self):
        return probs_to_logits(self.probs, is_binary=True)

    @lazy_property
    def probs(self):
        return logits_to_probs(self.logits, is_binary=True)
