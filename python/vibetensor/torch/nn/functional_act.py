"""relu6, hardsigmoid, hardswish, prelu, the channel-wise dropouts (dropout1d/2d/3d) and alpha_dropout, with
torch's signatures, composed from vt's elementwise ops (hardtanh, where, mul) so autograd differentiates them."""
import warnings


def _F():
    from .. import _functions

    return _functions


def _inplace(input, out, inplace):
    return input.copy_(out) if inplace else out


def relu6(input, inplace=False):
    from .functional import hardtanh

    return hardtanh(input, 0.0, 6.0, inplace)


def hardsigmoid(input, inplace=False):
    from .functional import hardtanh

    # relu6(x + 3) / 6: slope 1/6 strictly inside (-3, 3), as torch's gradient.
    out = hardtanh(input + 3.0, 0.0, 6.0) / 6.0
    return _inplace(input, out, inplace)


def hardswish(input, inplace=False):
    from .functional import hardtanh

    out = input * (hardtanh(input + 3.0, 0.0, 6.0) / 6.0)
    return _inplace(input, out, inplace)


def prelu(input, weight):
    """max(0, x) + weight * min(0, x); a weight of several elements is per channel (dim 1; an input of fewer
    than 2 dims has one channel)."""
    if weight.dim() > 1:
        raise RuntimeError(f"prelu: Expected `weight` to be a scalar or 1D tensor, but got: ndim = {weight.dim()}")
    C = input.shape[1] if input.dim() >= 2 else 1
    if weight.numel() != 1 and weight.numel() != C:
        raise RuntimeError(f"Mismatch of parameter numbers and input channel size. Found parameter numbers = "
                           f"{weight.numel()} and channel size = {C}.")
    if input.dim() >= 2:
        weight = weight.reshape([1, -1] + [1] * (input.dim() - 2))
    elif weight.dim() > 0:
        weight = weight.reshape([])
    from .._math_functions import _input_in_graph
    return _input_in_graph(_F().where(input > 0, input, input * weight), input)


def _channel_dropout(input, p, training, inplace, batched_dim):
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0:
        return input
    F = _F()
    # One keep/drop draw per (sample, channel): the mask has size 1 over the spatial dims and broadcasts.
    lead = 2 if input.dim() == batched_dim else 1
    shape = list(input.shape[:lead]) + [1] * (input.dim() - lead)
    if p == 1:
        mask = F.zeros(shape, dtype=input.dtype, device=input.device)
    else:
        keep = F.empty(shape, dtype=input.dtype, device=input.device).uniform_(0.0, 1.0) >= p
        mask = keep.to(input.dtype) / (1.0 - p)
    if inplace:
        return input.mul_(mask)
    return input * mask


def dropout1d(input, p=0.5, training=True, inplace=False):
    if input.dim() not in (2, 3):
        raise RuntimeError(f"dropout1d: Expected 2D or 3D input, but received a {input.dim()}D input. Note that "
                           "dropout1d exists to provide channel-wise dropout on inputs with 1 spatial dimension, a "
                           "channel dimension, and an optional batch dimension (i.e. 2D or 3D inputs).")
    return _channel_dropout(input, p, training, inplace, 3)


def dropout2d(input, p=0.5, training=True, inplace=False):
    if input.dim() not in (3, 4):
        warnings.warn(f"dropout2d: Received a {input.dim()}-D input to dropout2d, which is deprecated and will "
                      "result in an error in a future release. To retain the behavior and silence this warning, "
                      "please use dropout instead. Note that dropout2d exists to provide channel-wise dropout on "
                      "inputs with 2 spatial dimensions, a channel dimension, and an optional batch dimension "
                      "(i.e. 3D or 4D inputs).")
    if input.dim() == 3:
        # As torch's: a 3-D input is taken as (N, C, L), one draw per (sample, channel).
        warnings.warn("dropout2d: Received a 3D input to dropout2d and assuming that channel-wise 1D dropout "
                      "behavior is desired - input is interpreted as shape (N, C, L), where C is the channel dim. "
                      "This behavior will change in a future release to interpret the input as one without a "
                      "batch dimension, i.e. shape (C, H, W). To maintain the 1D channel-wise dropout behavior, "
                      "please switch to using dropout1d instead.")
        return _channel_dropout(input, p, training, inplace, 3)
    return _channel_dropout(input, p, training, inplace, 4)


def dropout3d(input, p=0.5, training=True, inplace=False):
    if input.dim() not in (4, 5):
        warnings.warn(f"dropout3d: Received a {input.dim()}-D input to dropout3d, which is deprecated and will "
                      "result in an error in a future release. To retain the behavior and silence this warning, "
                      "please use dropout instead. Note that dropout3d exists to provide channel-wise dropout on "
                      "inputs with 3 spatial dimensions, a channel dimension, and an optional batch dimension "
                      "(i.e. 4D or 5D inputs).")
    return _channel_dropout(input, p, training, inplace, 5)


_SELU_NEG = 1.7580993408473766  # SELU's negative saturation value, -scale * alpha


def alpha_dropout(input, p=0.5, training=False, inplace=False):
    """Dropout for SELU networks: dropped elements take SELU's saturation value and the result is scaled and
    shifted (a, b) so that zero mean and unit variance are kept."""
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0:
        return input
    F = _F()
    if p == 1:
        return _inplace(input, input * 0.0, inplace)
    keep = (F.empty(list(input.shape), dtype=input.dtype, device=input.device).uniform_(0.0, 1.0) >= p)
    keep = keep.to(input.dtype)
    a = 1.0 / ((_SELU_NEG * _SELU_NEG * p + 1.0) * (1.0 - p)) ** 0.5
    # dropped: a * (-alpha') + b with b = a * alpha' * p; kept: a * x + b
    shift = (keep - 1.0) * (_SELU_NEG * a) + _SELU_NEG * a * p
    out = input * (keep * a) + shift
    return _inplace(input, out, inplace)


__all__ = ["relu6", "hardsigmoid", "hardswish", "prelu", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout"]
