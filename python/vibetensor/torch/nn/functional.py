"""vt.nn.functional: activations over the dispatcher's elementwise ops, with torch's signatures."""
from ..._C import core as _core

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
    return _op("vt::silu_" if inplace else "vt::silu")(input)


def mish(input, inplace=False):
    return _op("vt::mish_" if inplace else "vt::mish")(input)


def sigmoid(input):
    return _op("vt::sigmoid")(input)


def tanh(input):
    return _op("vt::tanh")(input)


def softplus(input, beta=1.0, threshold=20.0):
    return _op("vt::softplus")(input, beta, threshold)


def leaky_relu(input, negative_slope=0.01, inplace=False):
    out = _op("vt::leaky_relu")(input, negative_slope)
    return input.copy_(out) if inplace else out


def elu(input, alpha=1.0, inplace=False):
    out = _op("vt::elu")(input, alpha)
    return input.copy_(out) if inplace else out


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    if input.dtype == _core.dtype.bool:
        raise RuntimeError("Bool inputs not supported for hardtanh")
    if input.dtype == _core.dtype.uint8 and (int(min_val) < 0 or int(max_val) < 0):
        raise RuntimeError("cannot do hardtanh on an unsigned type with negative limits")
    if not input.dtype.is_floating_point:  # torch clamps integer tensors in their own dtype
        out = _op("vt::clamp")(input, int(min_val), int(max_val))
    else:
        out = _op("vt::hardtanh")(input, min_val, max_val)
    return input.copy_(out) if inplace else out


def logsigmoid(input):
    return _op("vt::logsigmoid")(input)


def linear(input, weight, bias=None):
    """y = x W^T + b, as torch.nn.functional.linear (weight: [out_features, in_features])."""
    from .. import _functions as F

    out = F.matmul(input, weight.t())
    return out + bias if bias is not None else out
