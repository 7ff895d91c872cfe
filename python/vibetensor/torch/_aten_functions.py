"""torch's top-level (ATen-signature) forms of functional ops that public code calls as torch.conv2d,
torch.layer_norm, torch.group_norm, torch.batch_norm, torch.embedding, torch.dropout, ..., with ATen's argument
orders (torch.embedding(weight, indices), torch.batch_norm(input, weight, bias, running_mean, ...)), its
required `train` flags and its integer reductions (0 none, 1 mean, 2 sum), each forwarding to nn.functional;
rsub, randint_like, atleast_1d/2d/3d and unravel_index; and the deterministic-algorithms switches training
scripts set (vibetensor's kernels need no switch: the flag is kept and reported back)."""
import builtins

from .._C import core as _core

Tensor = _core.Tensor
_REDUCTIONS = {0: "none", 1: "mean", 2: "sum"}


def _F():
    from .nn import functional

    return functional


def _reduction(r):
    """ATen's enum: 1 mean, 2 sum, anything else none (as its kernels read it)."""
    return r if isinstance(r, str) else _REDUCTIONS.get(r, "none")


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    return _F().conv2d(input, weight, bias, stride, padding, dilation, groups)


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    return _F().conv3d(input, weight, bias, stride, padding, dilation, groups)


def _max_pool(fn):
    def pool(input, kernel_size, stride=(), padding=0, dilation=1, ceil_mode=False):
        stride = None if stride is None or (isinstance(stride, (list, tuple)) and not stride) else stride
        return getattr(_F(), fn)(input, kernel_size, stride, padding, dilation, ceil_mode=ceil_mode)
    pool.__name__ = fn
    return pool


max_pool1d, max_pool2d, max_pool3d = _max_pool("max_pool1d"), _max_pool("max_pool2d"), _max_pool("max_pool3d")


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-05, cudnn_enabled=True):
    return _F().group_norm(input, num_groups, weight, bias, eps)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-05, cudnn_enable=True):
    return _F().layer_norm(input, normalized_shape, weight, bias, eps)


def rms_norm(input, normalized_shape, weight=None, eps=None):
    return _F().rms_norm(input, normalized_shape, weight, eps)


def batch_norm(input, weight, bias, running_mean, running_var, training, momentum, eps, cudnn_enabled):
    return _F().batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)


def instance_norm(input, weight, bias, running_mean, running_var, use_input_stats, momentum, eps, cudnn_enabled):
    return _F().instance_norm(input, running_mean, running_var, weight, bias, use_input_stats, momentum, eps)


def embedding(weight, indices, padding_idx=-1, scale_grad_by_freq=False, sparse=False):
    """ATen's order (weight first); padding_idx -1 is none, as nn.functional passes it."""
    return _F().embedding(indices, weight, None if padding_idx == -1 else padding_idx,
                          scale_grad_by_freq=scale_grad_by_freq, sparse=sparse)


def dropout(input, p, train):
    return _F().dropout(input, p, train)


def alpha_dropout(input, p, train):
    return _F().alpha_dropout(input, p, train)


def feature_alpha_dropout(input, p, train):
    return _F().feature_alpha_dropout(input, p, train)


def cosine_similarity(x1, x2, dim=1, eps=1e-08):
    return _F().cosine_similarity(x1, x2, dim, eps)


def pairwise_distance(x1, x2, p=2.0, eps=1e-06, keepdim=False):
    return _F().pairwise_distance(x1, x2, p, eps, keepdim)


def binary_cross_entropy_with_logits(input, target, weight=None, pos_weight=None, reduction=1):
    return _F().binary_cross_entropy_with_logits(input, target, weight, reduction=_reduction(reduction),
                                                 pos_weight=pos_weight)


def kl_div(input, target, reduction=1, log_target=False):
    return _F().kl_div(input, target, reduction=_reduction(reduction), log_target=log_target)


def margin_ranking_loss(input1, input2, target, margin=0.0, reduction=1):
    return _F().margin_ranking_loss(input1, input2, target, margin, reduction=_reduction(reduction))


def hinge_embedding_loss(input, target, margin=1.0, reduction=1):
    return _F().hinge_embedding_loss(input, target, margin, reduction=_reduction(reduction))


def cosine_embedding_loss(input1, input2, target, margin=0.0, reduction=1):
    return _F().cosine_embedding_loss(input1, input2, target, margin, reduction=_reduction(reduction))


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2.0, eps=1e-06, swap=False, reduction=1):
    return _F().triplet_margin_loss(anchor, positive, negative, margin, p, eps, swap,
                                    reduction=_reduction(reduction))


def poisson_nll_loss(input, target, log_input, full, eps, reduction):
    return _F().poisson_nll_loss(input, target, log_input, full, eps=eps, reduction=_reduction(reduction))


def constant_pad_nd(input, pad, value=0):
    return _F().pad(input, list(pad), value=value)


def rsub(input, other, alpha=1):
    """other - alpha * input."""
    if isinstance(other, Tensor):
        return other.sub(input, alpha=alpha)
    return input.mul(-alpha).add(other) if alpha != 1 else input.neg().add(other)


def randint_like(input, low=0, high=None, *, dtype=None, layout=None, device=None, requires_grad=False,
                 memory_format=None):
    from ._functions import randint

    if high is None:
        low, high = 0, low
    out = randint(low, high, tuple(input.shape), dtype=dtype or input.dtype, layout=layout,
                  device=device if device is not None else input.device)
    return out.requires_grad_() if requires_grad else out


def _atleast(n):
    def fn(*tensors):
        if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
            return tuple(fn(t) for t in tensors[0])
        if len(tensors) != 1:
            return tuple(fn(t) for t in tensors)
        t = tensors[0]
        if t.dim() == 0:
            return t.reshape((1,) * n)
        if n >= 2 and t.dim() == 1:
            return t.unsqueeze(0) if n == 2 else t.unsqueeze(0).unsqueeze(-1)
        if n == 3 and t.dim() == 2:
            return t.unsqueeze(-1)
        return t
    fn.__name__ = f"atleast_{n}d"
    return fn


atleast_1d, atleast_2d, atleast_3d = _atleast(1), _atleast(2), _atleast(3)


def unravel_index(indices, shape):
    """The coordinates of flat `indices` in a tensor of `shape`, one int64 tensor per dim."""
    from ._functions import tensor

    if not isinstance(indices, Tensor):
        indices = tensor(indices)
    if indices.dtype.is_floating_point or indices.dtype == _core.dtype.bool:
        raise TypeError("expected 'indices' to be integer dtype, but got "
                        + str(indices.dtype).replace("vt.", "torch."))
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    if builtins.any(s < 0 for s in shape):
        raise ValueError("'shape' cannot have negative values, but got " + str(shape))
    numel = 1
    for s in shape:
        numel *= s
    idx = indices.to(_core.dtype.int64)
    idx = idx.remainder(numel) if numel else idx  # torch wraps indices outside [0, numel) around
    out = []
    for s in reversed(shape):
        out.append(idx.remainder(s))
        idx = idx.div(s, rounding_mode="floor")
    return tuple(reversed(out))


_DETERMINISTIC = {"mode": False, "warn_only": False}


def use_deterministic_algorithms(mode, *, warn_only=False):
    _DETERMINISTIC.update(mode=bool(mode), warn_only=bool(warn_only))


def are_deterministic_algorithms_enabled():
    return _DETERMINISTIC["mode"]


def is_deterministic_algorithms_warn_only_enabled():
    return _DETERMINISTIC["warn_only"]


def set_deterministic_debug_mode(debug_mode):
    modes = {"default": 0, "warn": 1, "error": 2}
    if isinstance(debug_mode, str):
        if debug_mode not in modes:
            raise RuntimeError("invalid value of debug_mode, expected one of `default`, `warn`, `error`, but got "
                               + debug_mode)
        debug_mode = modes[debug_mode]
    if debug_mode not in (0, 1, 2):
        raise RuntimeError(f"invalid value of debug_mode, expected 0, 1, or 2, but got {debug_mode}")
    use_deterministic_algorithms(debug_mode != 0, warn_only=debug_mode == 1)


def get_deterministic_debug_mode():
    if not _DETERMINISTIC["mode"]:
        return 0
    return 1 if _DETERMINISTIC["warn_only"] else 2


FUNCTIONS = {name: obj for name, obj in globals().items() if callable(obj) and not name.startswith("_")
             and getattr(obj, "__module__", None) == __name__ and name not in ("Tensor",)}
