"""vt.nn.attention.bias: torch's causal attention biases (CausalVariant, CausalBias, causal_upper_left,
causal_lower_right). A CausalBias passed as attn_mask to F.scaled_dot_product_attention stands for a causal
mask without materialising it where it need not: the upper-left variant (or equal lengths) runs sdpa with
is_causal=True; the lower-right one runs it with its [L, S] bool mask. It is a plain object here, not a
Tensor subclass: vibetensor's Tensor cannot be subclassed, so F.scaled_dot_product_attention recognises it."""
import warnings
from enum import IntEnum, auto

from ... import _functions as _F
from ...._C import core as _core

__all__ = ["CausalBias", "CausalVariant", "causal_lower_right", "causal_upper_left"]


class CausalVariant(IntEnum):
    """UPPER_LEFT: query i attends to keys j <= i (the diagonal starts at the top-left corner).
    LOWER_RIGHT: query i attends to keys j <= i + S - L (the diagonal ends at the bottom-right corner), so
    the last query sees every key; with L > S the first L - S queries see none."""
    UPPER_LEFT = auto()
    LOWER_RIGHT = auto()


class CausalBias:
    """A causal mask of variant over [seq_len_q, seq_len_kv], kept symbolic until an attention needs it."""

    def __init__(self, variant, seq_len_q, seq_len_kv):
        if not isinstance(variant, CausalVariant):
            raise AssertionError(f"variant must be a CausalVariant, got {type(variant).__name__}")
        self.variant = variant
        self.seq_len_q = seq_len_q
        self.seq_len_kv = seq_len_kv
        if seq_len_q > seq_len_kv and variant == CausalVariant.LOWER_RIGHT:
            warnings.warn("Lower right causal bias will produce NaNs in the output when seq_len_q > seq_len_kv!",
                          stacklevel=2)

    def _tril(self, diagonal, device):
        ones = _F.ones(self.seq_len_q, self.seq_len_kv, dtype=_core.dtype.bool, device=device)
        return ones.tril(diagonal)

    def _upper_left(self, device):
        return self._tril(0, device)

    def _lower_right(self, device):
        return self._tril(self.seq_len_kv - self.seq_len_q, device)

    def _materialize(self, device=None):
        """The [seq_len_q, seq_len_kv] bool mask (True = attend)."""
        device = "cpu" if device is None else device
        if self.variant == CausalVariant.UPPER_LEFT:
            return self._upper_left(device)
        return self._lower_right(device)

    def _sdpa(self, query, key, value, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False):
        """F.scaled_dot_product_attention with this bias as its attn_mask."""
        from .. import functional as F

        if is_causal:
            raise ValueError("CausalBias should not be used with causal=True")
        if self.seq_len_q == self.seq_len_kv or self.variant == CausalVariant.UPPER_LEFT:
            return F.scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=dropout_p,
                                                  is_causal=True, scale=scale, enable_gqa=enable_gqa)
        return F.scaled_dot_product_attention(query, key, value, attn_mask=self._materialize(query.device),
                                              dropout_p=dropout_p, is_causal=False, scale=scale,
                                              enable_gqa=enable_gqa)

    def __repr__(self):
        return repr(self._materialize())


def causal_upper_left(*size):
    """CausalBias(UPPER_LEFT, seq_len_q, seq_len_kv) from size = (seq_len_q, seq_len_kv)."""
    if len(size) != 2:
        raise AssertionError("causal_upper_left only supports 2D tensors")
    return CausalBias(CausalVariant.UPPER_LEFT, size[0], size[1])


def causal_lower_right(*size):
    """CausalBias(LOWER_RIGHT, seq_len_q, seq_len_kv) from size = (seq_len_q, seq_len_kv)."""
    if len(size) != 2:
        raise AssertionError("causal_lower_right only supports 2D tensors")
    return CausalBias(CausalVariant.LOWER_RIGHT, size[0], size[1])
