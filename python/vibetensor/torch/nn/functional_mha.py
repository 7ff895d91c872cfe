"""F.multi_head_attention_forward with torch's signature: the attention that nn.MultiheadAttention runs (its
forward calls this), composed of linear, matmul, softmax and scaled_dot_product_attention so that gradients flow.
Inputs are (L, N, E) or unbatched (L, E); the module handles batch_first around it."""
import math
import warnings

from ..._C.core import dtype as _dtype
from . import functional as F


def _vt():
    from .. import _functions

    return _functions


def _canonical_mask(mask, mask_name, other_type, other_name, target_type, check_other=True):
    """torch's F._canonical_mask: a bool mask (True = masked out) becomes an additive one of target_type (-inf
    there, 0 elsewhere), a float mask stays; other dtypes are refused, and a mask whose dtype differs from the
    other mask's (other_type) draws torch's deprecation warning."""
    if mask is None:
        return None
    is_float = mask.dtype.is_floating_point
    if mask.dtype != _dtype.bool and not is_float:
        raise AssertionError(f"only bool and floating types of {mask_name} are supported")
    if check_other and other_type is not None and mask.dtype != other_type:
        warnings.warn(f"Support for mismatched {mask_name} and {other_name} is deprecated. Use same type for both "
                      "instead.", stacklevel=2)
    if not is_float:
        return _vt().zeros(*mask.shape, dtype=target_type, device=mask.device).masked_fill(mask, float("-inf"))
    return mask


def _none_or_dtype(input):
    """The dtype of a tensor, None for None (torch's F._none_or_dtype)."""
    if input is None:
        return None
    if hasattr(input, "dtype") and hasattr(input, "shape"):
        return input.dtype
    raise RuntimeError("input to _none_or_dtype() must be None or torch.Tensor")


def _check_shapes(query, key, value, key_padding_mask, attn_mask):
    """torch's rank checks; True when the query is batched."""
    if query.dim() == 3:
        if key.dim() != 3 or value.dim() != 3:
            raise AssertionError("For batched (3-D) `query`, expected `key` and `value` to be 3-D but found "
                                 f"{key.dim()}-D and {value.dim()}-D tensors respectively")
        if key_padding_mask is not None and key_padding_mask.dim() != 2:
            raise AssertionError("For batched (3-D) `query`, expected `key_padding_mask` to be `None` or 2-D "
                                 f"but found {key_padding_mask.dim()}-D tensor instead")
        if attn_mask is not None and attn_mask.dim() not in (2, 3):
            raise AssertionError("For batched (3-D) `query`, expected `attn_mask` to be `None`, 2-D or 3-D "
                                 f"but found {attn_mask.dim()}-D tensor instead")
        return True
    if query.dim() == 2:
        if key.dim() != 2 or value.dim() != 2:
            raise AssertionError("For unbatched (2-D) `query`, expected `key` and `value` to be 2-D but found "
                                 f"{key.dim()}-D and {value.dim()}-D tensors respectively")
        if key_padding_mask is not None and key_padding_mask.dim() != 1:
            raise AssertionError("For unbatched (2-D) `query`, expected `key_padding_mask` to be `None` or 1-D "
                                 f"but found {key_padding_mask.dim()}-D tensor instead")
        if attn_mask is not None and attn_mask.dim() not in (2, 3):
            raise AssertionError("For unbatched (2-D) `query`, expected `attn_mask` to be `None`, 2-D or 3-D "
                                 f"but found {attn_mask.dim()}-D tensor instead")
        return False
    raise AssertionError(f"query should be unbatched 2D or batched 3D tensor but received {query.dim()}-D query "
                         "tensor")


def multi_head_attention_forward(query, key, value, embed_dim_to_check, num_heads, in_proj_weight, in_proj_bias,
                                 bias_k, bias_v, add_zero_attn, dropout_p, out_proj_weight, out_proj_bias,
                                 training=True, key_padding_mask=None, need_weights=True, attn_mask=None,
                                 use_separate_proj_weight=False, q_proj_weight=None, k_proj_weight=None,
                                 v_proj_weight=None, static_k=None, static_v=None, average_attn_weights=True,
                                 is_causal=False):
    """softmax(Q K^T / sqrt(head_dim) + masks) V over num_heads heads, then the output projection. Returns
    (output, weights or None); weights are averaged over heads unless average_attn_weights=False."""
    batched = _check_shapes(query, key, value, key_padding_mask, attn_mask)
    if not batched:  # one batch entry of the (L, N, E) layout
        query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
        if key_padding_mask is not None:
            key_padding_mask = key_padding_mask.unsqueeze(0)
    q, k, v = query, key, value
    L, N, E = q.shape
    S, H = k.shape[0], num_heads
    if E != embed_dim_to_check:
        raise AssertionError(f"was expecting embedding dimension of {embed_dim_to_check}, but got {E}")
    D = E // H
    if D * H != E:
        raise AssertionError(f"embed_dim {E} not divisible by num_heads {H}")
    if tuple(k.shape[:2]) != tuple(v.shape[:2]):
        raise AssertionError(f"key shape {tuple(k.shape)} does not match value shape {tuple(v.shape)}")
    if is_causal and attn_mask is None:
        raise RuntimeError("Need attn_mask if specifying the is_causal hint. You may use the Transformer module "
                           "method `generate_square_subsequent_mask` to create this mask.")
    # As torch: with no padding mask and no weights asked for, is_causal stands for the mask.
    key_padding_mask = _canonical_mask(key_padding_mask, "key_padding_mask", _none_or_dtype(attn_mask), "attn_mask",
                                       q.dtype)
    causal = is_causal and key_padding_mask is None and not need_weights
    mask = None if causal else _canonical_mask(attn_mask, "attn_mask", None, "", q.dtype, check_other=False)
    if mask is not None:
        if mask.dim() == 2:
            if tuple(mask.shape) != (L, S):
                raise RuntimeError(f"The shape of the 2D attn_mask is {tuple(mask.shape)}, but should be {(L, S)}.")
            mask = mask.unsqueeze(0)
        elif tuple(mask.shape) != (N * H, L, S):
            raise RuntimeError(f"The shape of the 3D attn_mask is {tuple(mask.shape)}, but should be "
                               f"{(N * H, L, S)}.")
    if use_separate_proj_weight:
        if q_proj_weight is None or k_proj_weight is None or v_proj_weight is None:
            raise AssertionError("use_separate_proj_weight is True but q_proj_weight, k_proj_weight or "
                                 "v_proj_weight is None")
        wq, wk, wv = q_proj_weight, k_proj_weight, v_proj_weight
    else:
        if in_proj_weight is None:
            raise AssertionError("use_separate_proj_weight is False but in_proj_weight is None")
        wq, wk, wv = in_proj_weight.chunk(3, 0)
    bq = bk = bv = None
    if in_proj_bias is not None:
        bq, bk, bv = in_proj_bias.chunk(3, 0)
    q, k, v = F.linear(q, wq, bq), F.linear(k, wk, bk), F.linear(v, wv, bv)
    T = _vt()
    kpm = key_padding_mask
    if kpm is not None and tuple(kpm.shape) != (N, S):
        raise AssertionError(f"expecting key_padding_mask shape of {(N, S)}, but got {tuple(kpm.shape)}")

    def pad_masks(mask, kpm):  # one more key: masks get a zero (attend) column
        if mask is not None:
            mask = F.pad(mask, (0, 1))
        if kpm is not None:
            kpm = F.pad(kpm, (0, 1))
        return mask, kpm

    if bias_k is not None and bias_v is not None:
        if static_k is not None or static_v is not None:
            raise AssertionError("bias cannot be added to static key/value.")
        k = T.cat([k, bias_k.expand(1, N, E)], 0)
        v = T.cat([v, bias_v.expand(1, N, E)], 0)
        mask, kpm = pad_masks(mask, kpm)
        S += 1
    elif (bias_k is None) != (bias_v is None):
        raise AssertionError("bias_k and bias_v must both be given or both be None")
    # (len, N, E) -> (N, H, len, D); static_k / static_v come as (N * H, S, D) and replace the projections
    q = q.reshape(L, N, H, D).permute(1, 2, 0, 3)
    for name, st in (("k", static_k), ("v", static_v)):
        if st is not None and (st.shape[0] != N * H or st.shape[2] != D):
            raise AssertionError(f"expecting static_{name}.size(0) of {N * H} and size(2) of {D}, but got "
                                 f"{tuple(st.shape)}")
    k = k.reshape(S, N, H, D).permute(1, 2, 0, 3) if static_k is None else static_k.reshape(N, H, -1, D)
    v = v.reshape(S, N, H, D).permute(1, 2, 0, 3) if static_v is None else static_v.reshape(N, H, -1, D)
    S = k.shape[2]
    if add_zero_attn:
        k = T.cat([k, T.zeros(N, H, 1, D, dtype=k.dtype, device=k.device)], 2)
        v = T.cat([v, T.zeros(N, H, 1, D, dtype=v.dtype, device=v.device)], 2)
        mask, kpm = pad_masks(mask, kpm)
        S += 1
    if mask is not None:
        mask = mask.reshape(-1, H, L, S) if mask.shape[0] != 1 else mask.unsqueeze(0)
    if kpm is not None:
        kpm = kpm.reshape(N, 1, 1, S)
        mask = kpm if mask is None else mask + kpm
    p = dropout_p if training else 0.0
    if need_weights:
        scores = T.matmul(q * (1.0 / math.sqrt(D)), k.transpose(-2, -1))
        if mask is not None:
            scores = scores + mask
        weights = F.softmax(scores, -1)
        if p > 0:  # as torch, the weights returned are the ones applied: after dropout
            weights = F.dropout(weights, p)
        attn = T.matmul(weights, v)
    else:
        weights = None
        attn = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p, is_causal=causal)
    out = F.linear(attn.permute(2, 0, 1, 3).reshape(L, N, E), out_proj_weight, out_proj_bias)
    if weights is not None and average_attn_weights:
        weights = weights.mean(1)
    if not batched:
        out = out.squeeze(1)
        weights = weights.squeeze(0) if weights is not None else None
    return out, weights
