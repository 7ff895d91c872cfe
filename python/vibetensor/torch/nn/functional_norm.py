"""batch_norm, instance_norm and group_norm, composed from vt's reductions and elementwise ops (so autograd
differentiates them), with torch's signatures, running-statistics updates and argument checks.

Note [Norms of 16-bit inputs]
A bfloat16 or float16 input is normalised in float32 and the result cast back to the input's dtype, whatever
the dtype of weight, bias and the running statistics: torch's kernels accumulate in float32 and write the
input's dtype, so a float32 BatchNorm after a bfloat16 convolution (mixed precision) passes bfloat16 on.
"""
from ..._C import core as _core
from ...autograd import no_grad
from ._layouts import _in_format, _keeps_channels_last


def _mf():
    from .. import _memory_format

    return _memory_format


_HALF = (_core.dtype.float16, _core.dtype.bfloat16)


def _in_float32(norm):
    """norm(input, ...) computed on a float32 copy of a 16-bit input, its result in the input's dtype."""
    def run(input, *args, **kwargs):
        if input.dtype not in _HALF:
            return norm(input, *args, **kwargs)
        return norm(input.float(), *args, **kwargs).to(input.dtype)
    run.__name__, run.__doc__, run.__wrapped__ = norm.__name__, norm.__doc__, norm
    return run


def _per_channel(t, dim):
    """A [C] tensor shaped [1, C, 1, ...] to broadcast over an input of `dim` dims."""
    return t.reshape([1, -1] + [1] * (dim - 2))


def _affine(out, weight, bias):
    if weight is not None:
        out = out * _per_channel(weight, out.dim())
    if bias is not None:
        out = out + _per_channel(bias, out.dim())
    return out


def _update_running(running_mean, running_var, mean, var_unbiased, momentum):
    # Running statistics are state, not part of the graph: updated in place, outside autograd.
    with no_grad():
        if running_mean is not None:
            running_mean.mul_(1.0 - momentum).add_(mean.detach().to(running_mean.dtype) * momentum)
        if running_var is not None:
            running_var.mul_(1.0 - momentum).add_(var_unbiased.detach().to(running_var.dtype) * momentum)


@_in_float32
def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    """Normalises each channel (dim 1) over the batch and the spatial dims. training: the batch's statistics
    (the biased variance), and the running ones move towards them by `momentum` (the unbiased variance, as
    torch's); otherwise the running statistics."""
    if input.dim() < 2:
        raise ValueError(f"expected 2D or more input (got {input.dim()}D input)")
    C = input.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight),
                    ("bias", bias)):
        if t is not None and t.numel() != C:
            raise RuntimeError(f"{name} should contain {C} elements not {t.numel()}")
    dims = [0] + list(range(2, input.dim()))
    if training:
        n = input.numel() // C if C else 0
        if n <= 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got input size "
                             f"torch.Size({list(input.shape)})")
        mean = input.mean(dims, keepdim=True)
        var = input.var(dims, unbiased=False, keepdim=True)
        if running_mean is not None or running_var is not None:
            _update_running(running_mean, running_var, mean.reshape(-1), var.reshape(-1) * (n / (n - 1)),
                            momentum)
    else:
        if running_mean is None or running_var is None:
            raise RuntimeError(f"running_{'mean' if running_mean is None else 'var'} must be defined in "
                               "evaluation mode")
        mean = _per_channel(running_mean, input.dim())
        var = _per_channel(running_var, input.dim())
    out = (input - mean) * (var + eps).rsqrt()
    # torch lays the result out in the input's suggested format: channels_last stays, any other layout (a
    # transposed [N, L, C] -> [N, C, L] view fed to BatchNorm1d) gives a contiguous result
    return _in_format(_affine(out, weight, bias), _mf().suggest_memory_format(input))


@_in_float32
def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None, use_input_stats=True,
                  momentum=0.1, eps=1e-5):
    """Normalises each (sample, channel) plane over its spatial dims; running statistics, when given, move
    towards the batch average of the per-instance ones (unbiased variances), as torch's."""
    if input.dim() < 3:
        raise ValueError(f"expected 3D or more input (got {input.dim()}D input)")
    if not use_input_stats:
        return batch_norm(input, running_mean, running_var, weight, bias, False, momentum, eps)
    dims = list(range(2, input.dim()))
    n = input.numel() // (input.shape[0] * input.shape[1]) if input.shape[0] * input.shape[1] else 0
    if n <= 1:
        raise ValueError(f"Expected more than 1 spatial element when training, got input size "
                         f"torch.Size({list(input.shape)})")
    mean = input.mean(dims, keepdim=True)
    var = input.var(dims, unbiased=False, keepdim=True)
    if running_mean is not None or running_var is not None:
        N, C = input.shape[0], input.shape[1]
        _update_running(running_mean, running_var, mean.reshape(N, C).mean(0),
                        (var.reshape(N, C) * (n / (n - 1))).mean(0), momentum)
    out = (input - mean) * (var + eps).rsqrt()
    return _in_format(_affine(out, weight, bias), _mf().contiguous_format)  # contiguous for any input, as torch's


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """Normalises each sample's channels in num_groups groups (each group over its channels and spatial
    dims): a layer_norm over the flattened group, then the per-channel affine. A channels_last input gives a
    channels_last result on the CPU and a contiguous one on CUDA, as torch's (its CUDA kernel normalises a
    contiguous copy), so a channels_last model's layouts match torch's on either device."""
    fn = _group_norm_keeping_layout if input.device.type == "cpu" else _group_norm
    return fn(input, num_groups, weight, bias, eps)


@_in_float32
def _group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    from .functional import layer_norm

    if input.dim() < 2:
        raise RuntimeError(f"Expected at least 2 dimensions for input tensor but received {input.dim()}")
    N, C = input.shape[0], input.shape[1]
    if num_groups <= 0 or C % num_groups:
        raise RuntimeError(f"Expected number of channels in input to be divisible by num_groups, but got input "
                           f"of shape {list(input.shape)} and num_groups={num_groups}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and (t.dim() != 1 or t.numel() != C):
            raise RuntimeError(f"Expected {name} to be a vector of size equal to the number of channels in "
                               f"input, but got {name} of shape {list(t.shape)} and input of shape "
                               f"{list(input.shape)}")
    if input.numel() == 0:
        return _affine(input * 1.0, weight, bias)
    grouped = input.reshape(N, num_groups, -1)
    out = layer_norm(grouped, [grouped.shape[-1]], None, None, eps).reshape(list(input.shape))
    return _affine(out, weight, bias)


_group_norm_keeping_layout = _keeps_channels_last(_group_norm)

__all__ = ["batch_norm", "instance_norm", "group_norm"]
