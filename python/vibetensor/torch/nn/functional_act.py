"""relu6, hardsigmoid, hardswish, prelu and the channel-wise dropouts (dropout1d/2d/3d), with torch's
signatures, composed from vt's elementwise ops (hardtanh, where, mul) so autograd differentiates them."""
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
    """max(0, x) + weight * min(0, x); a weight of several elements is per channel (dim 1, or dim 0 of a
    1-D input)."""
    if weight.numel() != 1:
        C = input.shape[1] if input.dim() >= 2 else (input.shape[0] if input.dim() == 1 else 1)
        if input.dim() == 0 or weight.numel() != C:
            raise RuntimeError(f"Mismatch of parameter numbers and input channel size. Found parameter numbers = "
                               f"{weight.numel()} and channel size = {C}.")
        if input.dim() >= 2:
            weight = weight.reshape([1, -1] + [1] * (input.dim() - 2))
    elif weight.dim() > 0 and input.dim() >= 1:
        weight = weight.reshape([])
    return _F().where(input > 0, input, input * weight)


def _channel_dropout(input, p, training, inplace, batched_dim, name, spatial):
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
    return _channel_dropout(input, p, training, inplace, 3, "dropout1d", 1)


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
        return _channel_dropout(input, p, training, inplace, 3, "dropout2d", 1)
    return _channel_dropout(input, p, training, inplace, 4, "dropout2d", 2)


def dropout3d(input, p=0.5, training=True, inplace=False):
    if input.dim() not in (4, 5):
        warnings.warn(f"dropout3d: Received a {input.dim()}-D input to dropout3d, which is deprecated and will "
                      "result in an error in a future release. To retain the behavior and silence this warning, "
                      "please use dropout instead. Note that dropout3d exists to provide channel-wise dropout on "
                      "inputs with 3 spatial dimensions, a channel dimension, and an optional batch dimension "
                      "(i.e. 4D or 5D inputs).")
    return _channel_dropout(input, p, training, inplace, 5, "dropout3d", 3)


__all__ = ["relu6", "hardsigmoid", "hardswish", "prelu", "dropout1d", "dropout2d", "dropout3d"]
