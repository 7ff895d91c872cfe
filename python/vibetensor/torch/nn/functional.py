"""vt.nn.functional: activations over the dispatcher's elementwise ops, with torch's signatures."""
import math

from ..._C import autograd as _ag
from ..._C import core as _core
from .. import _functions as F  # (vibetensor.torch imports _functions before nn)
from .. import _sdp_backends as _sdp
from ...autograd import no_grad as _no_grad

_op = _core.op


def relu_(input):
    return relu(input, inplace=True)


_relu = _core.fast_op("vt::relu")


def relu(input, inplace=False):
    if inplace:
        _op("vt::relu_")(input)
        return input
    return _relu(input)


def gelu(input, approximate="none"):
    return _op("vt::gelu")(input, approximate=approximate)


def silu(input, inplace=False):
    if inplace:  # the op returns a new wrapper of the same tensor; torch hands back input itself
        _op("vt::silu_")(input)
        return input
    return _op("vt::silu")(input)


def mish(input, inplace=False):
    if inplace:
        _op("vt::mish_")(input)
        return input
    return _op("vt::mish")(input)


def sigmoid(input):
    return _op("vt::sigmoid")(input)


def tanh(input):
    return _op("vt::tanh")(input)


def softplus(input, beta=1.0, threshold=20.0):
    return _op("vt::softplus")(input, beta, threshold)


def _write_back(input, op, *args):
    """inplace=True for activations without an in-place kernel: computes out of place and copies back. The op
    saves its input for backward, so under autograd it gets a copy (the write would make the saved one stale)."""
    src = input.clone() if input.requires_grad and _ag.is_grad_enabled() else input
    return input.copy_(_op(op)(src, *args))


def leaky_relu(input, negative_slope=0.01, inplace=False):
    if inplace:
        return _write_back(input, "vt::leaky_relu", negative_slope)
    return _op("vt::leaky_relu")(input, negative_slope)


def elu(input, alpha=1.0, inplace=False):
    if inplace:
        return _write_back(input, "vt::elu", alpha)
    return _op("vt::elu")(input, alpha)


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    if input.dtype == _core.dtype.bool:
        raise RuntimeError("Bool inputs not supported for hardtanh")
    if input.dtype == _core.dtype.uint8 and (int(min_val) < 0 or int(max_val) < 0):
        raise RuntimeError("cannot do hardtanh on an unsigned type with negative limits")
    if not input.dtype.is_floating_point:  # torch clamps integer tensors in their own dtype
        out = _op("vt::clamp")(input, int(min_val), int(max_val))
    elif inplace:
        return _write_back(input, "vt::hardtanh", min_val, max_val)
    else:
        out = _op("vt::hardtanh")(input, min_val, max_val)
    return input.copy_(out) if inplace else out


def logsigmoid(input):
    return _op("vt::logsigmoid")(input)


_linear_bias = _op("vt::_linear_bias")  # looked up once: F.linear is the hottest function of most models


def linear(input, weight, bias=None):
    """y = x W^T + b, as torch.nn.functional.linear (weight: [out_features, in_features]). With a bias and a
    batch of rows it is one op, vt::_linear_bias, which on CUDA adds the bias in the GEMM's epilogue (cuBLASLt)
    rather than in a second pass over the product."""
    if bias is not None and input.dim() >= 2 and weight.dim() == 2 and bias.dim() == 1:
        return _linear_bias(input, weight, bias)
    out = F.matmul(input, weight.t())
    return out + bias if bias is not None else out


_softmax_op, _log_softmax_op = _op("vt::softmax"), _op("vt::log_softmax")


# Without dim=, torch's legacy choice (0 for 0-, 1- and 3-d inputs, else 1) with its deprecation warning; it was
# the last dim here, a different answer for 3- and 4-d inputs.
def softmax(input, dim=None, _stacklevel=3, dtype=None):
    if dim is None:
        from .functional_act_more import _legacy_softmax_dim

        dim = _legacy_softmax_dim("softmax", input.dim())
    return _softmax_op(input, dim, dtype)


def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
    if dim is None:
        from .functional_act_more import _legacy_softmax_dim

        dim = _legacy_softmax_dim("log_softmax", input.dim())
    return _log_softmax_op(input, dim, dtype)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    shape = [normalized_shape] if isinstance(normalized_shape, int) else list(normalized_shape)
    return _op("vt::layer_norm")(input, shape, weight, bias, eps)


def rms_norm(input, normalized_shape, weight=None, eps=None):
    shape = [normalized_shape] if isinstance(normalized_shape, int) else list(normalized_shape)
    return _op("vt::rms_norm")(input, shape, weight, eps)


def _embedding_renorm_(weight, input, max_norm, norm_type):
    """torch.embedding_renorm_: every row of `weight` that `input` picks whose norm_type-norm exceeds max_norm is
    scaled in place (outside autograd) to norm max_norm, with torch's 1e-7 guard in the divisor."""
    from ..linalg import vector_norm

    if input.numel() == 0:  # nothing picked (and the inf norm of no rows has no identity)
        return weight
    with _no_grad():
        rows = input.reshape(-1).unique()
        picked = weight.index_select(0, rows)
        norms = vector_norm(picked, ord=norm_type, dim=1, keepdim=True)
        scale = F.where(norms > max_norm, max_norm / (norms + 1e-7), F.ones_like(norms))
        weight.index_copy_(0, rows, picked * scale)
    return weight


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False,
              sparse=False):
    """Rows of `weight` (num_embeddings x dim) picked by the integer tensor `input`. Positions holding
    padding_idx pass no gradient to its row (their output is taken detached). max_norm first renormalizes the
    picked rows of `weight` in place, as torch; scale_grad_by_freq divides each row's gradient by how often
    `input` picks it."""
    if sparse:
        raise NotImplementedError("embedding: sparse gradients are not supported (vibetensor has no sparse "
                                  "tensors); use sparse=False")
    if padding_idx is not None:
        if not -weight.shape[0] <= padding_idx < weight.shape[0]:
            raise AssertionError("Padding_idx must be within num_embeddings")
        padding_idx %= weight.shape[0]
    if max_norm is not None:
        _embedding_renorm_(weight, input, max_norm, norm_type)
    out = _op("vt::embedding")(weight, input)
    if not (weight.requires_grad and _ag.is_grad_enabled()):
        return out
    if scale_grad_by_freq:
        # the forward value is untouched; the hook scales the gradient on its way back into the rows
        from .._more_functions import bincount

        counts = bincount(input.reshape(-1), minlength=weight.shape[0])
        scale = (1.0 / counts.index_select(0, input.reshape(-1)).to(out.dtype)).reshape(input.shape).unsqueeze(-1)
        out.register_hook(lambda grad: grad * scale)
    if padding_idx is None:
        return out
    return F.where((input == padding_idx).unsqueeze(-1), out.detach(), out)


def dropout(input, p=0.5, training=True, inplace=False):
    if p < 0.0 or p > 1.0:  # a NaN p passes here and is refused by the op (a RuntimeError, as torch's)
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if (not training or p == 0) and p == p:  # the very tensor back, as torch does
        return input
    out = _op("vt::dropout")(input, p, training)
    return input.copy_(out) if inplace else out


_REDUCTIONS = {"none": 0, "mean": 1, "sum": 2}


def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """torch.nn.functional.cross_entropy: class-index or class-probability targets, per-class weights,
    ignore_index, label smoothing; reduction 'none', 'mean' or 'sum'."""
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{reduction} is not a valid value for reduction")
    return _op("vt::cross_entropy")(input, target, weight, _REDUCTIONS[reduction], ignore_index, label_smoothing)


_FLASH_DTYPES = (_core.dtype.float16, _core.dtype.bfloat16)
_TILED_CPU_DTYPES = (_core.dtype.float32, _core.dtype.float16, _core.dtype.bfloat16)
_TILED_CPU_TRAINING_SCORES = 256 * 256


def _flash_eligible(q, k, v):
    """The cases vt::_flash_attention's kernels cover: tensors of one dtype on one device, [B, H, T, E] or
    [H, T, E] with the same leading dims, one head dim, non-empty sequences; on CUDA 16-bit with a head dim of at
    most 128 and float32 with one of at most 64 (Note [Flash kernels by default]); on the CPU float32 or 16-bit,
    for inference always and for training from 256 x 256 scores per head up (the tiled backward recomputes the
    probabilities, which costs more than the composed path's saved ones below that: MiniGPT's 128 x 128 heads
    took 67 vs 65 ms forward + backward on the devbox, [4, 4, 512, 64] 19 vs 27 ms and [1, 8, 1024, 64] 34 vs
    52 ms)."""
    if q.dim() not in (3, 4) or any(t.dtype != q.dtype or t.dim() != q.dim() or t.device != q.device for t in (k, v)):
        return False
    lead, E = q.shape[:-2], q.shape[-1]
    if not (k.shape[:-2] == lead and v.shape[:-2] == lead and k.shape[-1] == E and v.shape[-1] == E
            and k.shape[-2] == v.shape[-2] and E > 0 and q.shape[-2] > 0 and k.shape[-2] > 0):
        return False
    if q.device.type == "cuda":
        widest = 128 if q.dtype in _FLASH_DTYPES else 64 if q.dtype == _core.dtype.float32 else 0
        return E <= widest and _sdp.cuda_flash_enabled()
    grad = _ag.is_grad_enabled() and (q.requires_grad or k.requires_grad or v.requires_grad)
    return (q.device.type == "cpu" and q.dtype in _TILED_CPU_DTYPES
            and (not grad or q.shape[-2] * k.shape[-2] >= _TILED_CPU_TRAINING_SCORES))


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
                                 enable_gqa=False):
    """softmax(Q K^T * scale + mask) V over the last two dims (batch dims broadcast), as torch's composed
    reference. attn_mask: bool (True = attend) or additive float; is_causal masks the upper triangle (aligned
    top-left when the query and key lengths differ, as torch's). enable_gqa: key/value heads shared by groups
    of query heads."""
    _sdp.check_enabled()
    if attn_mask is not None and not isinstance(attn_mask, _core.Tensor):
        from .attention.bias import CausalBias  # a symbolic causal mask: it picks how sdpa runs (torch's too)

        if isinstance(attn_mask, CausalBias):
            return attn_mask._sdpa(query, key, value, dropout_p, is_causal, scale, enable_gqa)
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    if enable_gqa and key.dim() >= 3 and key.shape[-3] != query.shape[-3]:
        groups = query.shape[-3] // key.shape[-3]
        key, value = key.repeat_interleave(groups, -3), value.repeat_interleave(groups, -3)
    if is_causal and attn_mask is not None:
        raise RuntimeError("scaled_dot_product_attention: pass either attn_mask or is_causal, not both")
    if attn_mask is None and dropout_p == 0.0 and _sdp.fused_enabled() and _flash_eligible(query, key, value):
        # The tiled kernels (core/src/ops/attention.h): no [L, S] scores in memory, forward or backward.
        batched = query.dim() == 4
        q, k, v = (t if batched else t.unsqueeze(0) for t in (query, key, value))
        out = _op("vt::_flash_attention")(q, k, v, float(scale), bool(is_causal))[0]
        return out if batched else out.squeeze(0)
    if query.dtype in _FLASH_DTYPES and key.dtype == query.dtype and value.dtype == query.dtype:
        # torch reduces 16-bit attention in float32 (its math backend upcasts, its fused kernels accumulate in
        # float32); scores and weights rounded to 16 bits cost about three times its error
        out = _sdpa_math(query.float(), key.float(), value.float(), attn_mask, dropout_p, is_causal, scale)
        return out.to(query.dtype)
    return _sdpa_math(query, key, value, attn_mask, dropout_p, is_causal, scale)


def _sdpa_math(query, key, value, attn_mask, dropout_p, is_causal, scale):
    scores = F.matmul(query, key.transpose(-2, -1))
    if attn_mask is None:  # scale and causal mask fused into the softmax kernel (and its backward)
        weights = _op("vt::_attention_softmax")(scores, scale, is_causal)
    else:
        scores = scores * scale
        if attn_mask.dtype == _core.dtype.bool:
            scores = scores.masked_fill(~attn_mask, float("-inf"))
        else:
            scores = scores + attn_mask
        # A query whose every key is masked attends to nothing: zeros, not NaN (torch's safe softmax). Its row
        # is softmaxed as zeros and then zeroed, so its gradient is zero too (a softmax of -inf everywhere would
        # give NaN in the backward even with the forward's NaN replaced).
        none_left = (scores == float("-inf")).all(-1, keepdim=True)
        weights = softmax(scores.masked_fill(none_left, 0.0), -1).masked_fill(none_left, 0.0)
    if dropout_p > 0.0:
        weights = dropout(weights, dropout_p)
    return F.matmul(weights, value)


from .functional_conv import (  # noqa: E402,F401
    adaptive_avg_pool2d, avg_pool2d, conv2d, fold, max_pool2d, one_hot, unfold,
)
from .functional_pad import pad  # noqa: E402,F401
from .functional_norm import batch_norm, group_norm, instance_norm  # noqa: E402,F401
from .functional_act import (  # noqa: E402,F401
    alpha_dropout, dropout1d, dropout2d, dropout3d, hardsigmoid, hardswish, prelu, relu6,
)
from .functional_resample import interpolate, pixel_shuffle, pixel_unshuffle  # noqa: E402,F401
from .functional_losses import (  # noqa: E402,F401
    binary_cross_entropy, binary_cross_entropy_with_logits, cosine_similarity, huber_loss, kl_div, l1_loss,
    margin_ranking_loss, mse_loss, nll_loss, normalize, pairwise_distance, smooth_l1_loss,
)
from .functional_conv_more import (  # noqa: E402,F401
    adaptive_avg_pool1d, adaptive_max_pool1d, adaptive_max_pool2d, avg_pool1d, conv1d, conv_transpose1d,
    conv_transpose2d, max_pool1d,
)
from .functional_act_more import (  # noqa: E402,F401
    bilinear, celu, celu_, channel_shuffle, glu, gumbel_softmax, hardshrink, local_response_norm,
    native_channel_shuffle, rrelu, rrelu_, selu, selu_, softmin, softshrink, softsign, tanhshrink, threshold,
    threshold_,
)
from .functional_losses_more import (  # noqa: E402,F401
    cosine_embedding_loss, gaussian_nll_loss, hinge_embedding_loss, multi_margin_loss, multilabel_margin_loss,
    multilabel_soft_margin_loss, poisson_nll_loss, soft_margin_loss, triplet_margin_loss,
    triplet_margin_with_distance_loss,
)
from .functional_sampling import affine_grid, embedding_bag, grid_sample  # noqa: E402,F401
from .functional_ctc import ctc_loss  # noqa: E402,F401
from .functional_mha import _canonical_mask, _none_or_dtype, multi_head_attention_forward  # noqa: E402,F401
from .functional_conv3d import (  # noqa: E402,F401
    adaptive_avg_pool3d, avg_pool3d, conv3d, lp_pool1d, lp_pool2d, lp_pool3d, max_pool3d,
)
from .conv_transpose3d import conv_transpose3d  # noqa: E402,F401
from .unpool import max_unpool1d, max_unpool2d, max_unpool3d  # noqa: E402,F401
from .pool_indices import (  # noqa: E402,F401
    adaptive_max_pool1d_with_indices, adaptive_max_pool2d_with_indices, adaptive_max_pool3d,
    adaptive_max_pool3d_with_indices, max_pool1d_with_indices, max_pool2d_with_indices, max_pool3d_with_indices,
)
from .functional_sweep import (  # noqa: E402,F401
    elu_, feature_alpha_dropout, hardtanh_, leaky_relu_, pdist, upsample, upsample_bilinear, upsample_nearest,
)
