"""torch.nn.utils' module-level helpers: folding an eval-mode BatchNorm into the conv / linear before it
(fuse_conv_bn_eval and friends), skip_init, and convert_conv{2,3}d_weight_memory_format.

Folding: in eval, bn(y) = (y - mean) * w / sqrt(var + eps) + b is affine per channel, so it moves into the conv's
weight (scaled along the output-channel dim: dim 0, or dim 1 for a transposed conv's (in, out/groups, ...) weight)
and bias. The fused module is a deep copy of the conv/linear with two new Parameters.

Memory format: vibetensor tensors carry strides, so a conv weight is restrided in place to channels_last (the same
Parameter object, as torch's weight.data swap keeps it, so optimizers built before still hold it)."""
import copy
import inspect

from ....autograd import no_grad
from ..parameter import Parameter


def fuse_conv_bn_eval(conv, bn, transpose=False):
    if conv.training or bn.training:
        raise AssertionError("Fusion only for eval!")
    fused = copy.deepcopy(conv)
    if bn.running_mean is None or bn.running_var is None:
        raise AssertionError("bn.running_mean and bn.running_var must not be None")
    fused.weight, fused.bias = fuse_conv_bn_weights(fused.weight, fused.bias, bn.running_mean, bn.running_var,
                                                    bn.eps, bn.weight, bn.bias, transpose)
    return fused


def fuse_conv_bn_weights(conv_w, conv_b, bn_rm, bn_rv, bn_eps, bn_w, bn_b, transpose=False):
    from ... import _functions as F

    w_dtype = conv_w.dtype
    b_dtype = w_dtype if conv_b is None else conv_b.dtype
    if conv_b is None:
        conv_b = F.zeros_like(bn_rm)
    if bn_w is None:
        bn_w = F.ones_like(bn_rm)
    if bn_b is None:
        bn_b = F.zeros_like(bn_rm)
    inv_std = (bn_rv + bn_eps).rsqrt()
    shape = ([1, -1] if transpose else [-1, 1]) + [1] * (conv_w.dim() - 2)
    fused_w = (conv_w * (bn_w * inv_std).reshape(shape)).to(w_dtype)
    fused_b = ((conv_b - bn_rm) * inv_std * bn_w + bn_b).to(b_dtype)
    return Parameter(fused_w, conv_w.requires_grad), Parameter(fused_b, conv_b.requires_grad)


def fuse_linear_bn_eval(linear, bn):
    if linear.training or bn.training:
        raise AssertionError("Fusion only for eval!")
    fused = copy.deepcopy(linear)
    # the bn's channels must broadcast against the linear's output features to keep the linear's shapes
    if linear.out_features != bn.num_features and bn.num_features != 1:
        raise AssertionError("To fuse, linear.out_features == bn.num_features or bn.num_features == 1, got "
                             f"linear.out_features={linear.out_features} and bn.num_features={bn.num_features}")
    if bn.running_mean is None or bn.running_var is None:
        raise AssertionError("bn.running_mean and bn.running_var must not be None")
    fused.weight, fused.bias = fuse_linear_bn_weights(fused.weight, fused.bias, bn.running_mean, bn.running_var,
                                                      bn.eps, bn.weight, bn.bias)
    return fused


def fuse_linear_bn_weights(linear_w, linear_b, bn_rm, bn_rv, bn_eps, bn_w, bn_b):
    from ... import _functions as F

    w_dtype = linear_w.dtype
    b_dtype = w_dtype if linear_b is None else linear_b.dtype
    if linear_b is None:
        linear_b = F.zeros_like(bn_rm)
    scale = bn_w * (bn_rv + bn_eps).rsqrt()
    fused_w = linear_w * scale.unsqueeze(-1).to(w_dtype)
    fused_b = ((linear_b - bn_rm) * scale + bn_b).to(b_dtype)
    return Parameter(fused_w, linear_w.requires_grad), Parameter(fused_b, linear_b.requires_grad)


def skip_init(module_cls, *args, **kwargs):
    """module_cls(*args, **kwargs) whose parameter values are unspecified. torch builds it on the meta device and
    allocates empty storage; vibetensor has no meta device, so the module is built on the target device with its
    usual initialisation, whose values stand in for torch's uninitialised memory (callers overwrite them)."""
    from ..module import Module

    if not (isinstance(module_cls, type) and issubclass(module_cls, Module)):
        raise RuntimeError(f"Expected a Module; got {module_cls}")
    if "device" not in inspect.signature(module_cls).parameters:
        raise RuntimeError("Module must support a 'device' arg to skip initialization")
    kwargs["device"] = kwargs.pop("device", "cpu")
    return module_cls(*args, **kwargs)


def _restride_weight(module, memory_format):
    w = module.weight
    with no_grad():
        values = w.detach().clone()
        layout = values.clone(memory_format=memory_format)
        w.as_strided_(tuple(w.shape), layout.stride())
        w.copy_(values)


def convert_conv2d_weight_memory_format(module, memory_format):
    """Restride the weight of every Conv2d / ConvTranspose2d in module (recursively) to memory_format."""
    from ..conv_layers import Conv2d
    from ..conv_more_layers import ConvTranspose2d

    if isinstance(module, (Conv2d, ConvTranspose2d)):
        _restride_weight(module, memory_format)
    for child in module.children():
        convert_conv2d_weight_memory_format(child, memory_format)
    return module


def convert_conv3d_weight_memory_format(module, memory_format):
    """Restride the weight of every Conv3d / ConvTranspose3d in module (recursively) to memory_format."""
    from ..conv3d_layers import Conv3d
    from ..conv_transpose3d import ConvTranspose3d

    if isinstance(module, (Conv3d, ConvTranspose3d)):
        _restride_weight(module, memory_format)
    for child in module.children():
        convert_conv3d_weight_memory_format(child, memory_format)
    return module
