"""The remaining torch.nn.functional activations and small ops: glu, softsign, tanhshrink, softmin, gumbel_softmax,
celu, selu, threshold, hardshrink, softshrink, rrelu, local_response_norm, bilinear and channel_shuffle, with
torch's signatures and argument checks, composed from vt's differentiable ops (where, exp, einsum, ...)."""
import warnings

from ..._C import autograd as _ag
from .. import _functions

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _F():
    return _functions  # imported above: vibetensor.torch imports _functions before nn


def _vt():
    from ... import torch as vt

    return vt


def _apply(input, fn, inplace):
    """fn(input), written back into input when inplace. Under autograd fn sees a copy, so what its backward
    saves is not overwritten by the write."""
    if not inplace:
        return fn(input)
    src = input.clone() if input.requires_grad and _ag.is_grad_enabled() else input
    return input.copy_(fn(src))


_TORCH_TYPE_NAMES = {"int64": "Long", "int32": "Int", "int16": "Short", "int8": "Char", "uint8": "Byte",
                     "bool": "Bool"}


def _need_float(input, kernel):
    """torch's kernels for these refuse integer and bool inputs (NotImplementedError naming the dtype)."""
    if not input.dtype.is_floating_point:
        name = str(input.dtype).split(".")[-1]
        raise NotImplementedError(f'"{kernel}" not implemented for \'{_TORCH_TYPE_NAMES.get(name, name)}\'')


def glu(input, dim=-1):
    _need_float(input, "glu")
    if input.dim() == 0:
        raise RuntimeError("glu does not support scalars because halving size must be even")
    if not -input.dim() <= dim < input.dim():
        raise IndexError(f"Dimension out of range (expected to be in range of [{-input.dim()}, {input.dim() - 1}], "
                         f"but got {dim})")
    n = input.shape[dim]
    if n % 2:
        raise RuntimeError(f"Halving dimension must be even, but dimension {dim % input.dim()} is size {n}")
    a, b = input.narrow(dim, 0, n // 2), input.narrow(dim, n // 2, n // 2)
    return a * b.sigmoid()


def softsign(input):
    return input / (input.abs() + 1)


def tanhshrink(input):
    return input - input.tanh()


def _legacy_softmax_dim(name, ndim):
    warnings.warn(f"Implicit dimension choice for {name} has been deprecated. Change the call to include dim=X as "
                  "an argument.", stacklevel=3)
    return 0 if ndim in (0, 1, 3) else 1


def softmin(input, dim=None, _stacklevel=3, dtype=None):
    from .functional import softmax

    if dim is None:
        dim = _legacy_softmax_dim("softmin", input.dim())
    if dtype is None:
        _need_float(input, "softmax")
    if dtype is not None:  # as torch: cast first, then negate, so the sum is taken in dtype
        input = input.to(dtype)
    return softmax(-input, dim)


def gumbel_softmax(logits, tau=1.0, hard=False, eps=1e-10, dim=-1):
    """softmax((logits + g) / tau) with g ~ Gumbel(0, 1) (g = -log(E), E ~ Exp(1) = -log(U)). hard: the one-hot of
    the argmax in the forward pass, with the soft sample's gradient (straight-through: y_hard - y_soft.detach()
    + y_soft)."""
    from .functional import softmax

    if eps != 1e-10:
        warnings.warn("`eps` parameter is deprecated and has no effect.")
    F = _F()
    u = F.rand_like(logits)
    # 1 - u lies in (0, 1]: E = -log(1 - u) is finite, and E = 0 only at u = 0, which clamping keeps off log(0).
    e = (-(1.0 - u).log()).clamp(min=1e-30)
    gumbels = -e.log()
    y_soft = softmax((logits + gumbels) / tau, dim)
    if not hard:
        return y_soft
    index = y_soft.argmax(dim, keepdim=True)
    y_hard = F.zeros_like(logits).scatter(dim, index, 1.0)
    return y_hard - y_soft.detach() + y_soft


def celu(input, alpha=1.0, inplace=False):
    if alpha == 0:
        raise RuntimeError("ZeroDivisionError: alpha cannot be 0 for CELU")
    _need_float(input, "elu")
    F = _F()
    # The negative branch sees min(x, 0), so a large x cannot overflow exp into an inf times a zero gradient.
    return _apply(input, lambda x: F.where(x > 0, x, (x.clamp(max=0) / alpha).expm1() * alpha), inplace)


def celu_(input, alpha=1.0):
    return celu(input, alpha, True)


def selu(input, inplace=False):
    from .functional import elu

    _need_float(input, "elu")
    return _apply(input, lambda x: elu(x, _SELU_ALPHA) * _SELU_SCALE, inplace)


def selu_(input):
    return selu(input, True)


def threshold(input, threshold, value, inplace=False):
    """input where input > threshold, else value."""
    F = _F()
    out = _apply(input, lambda x: F.where(x > threshold, x, F.full_like(x, value)), inplace)
    if inplace:
        return out
    from .._math_functions import _input_in_graph
    return _input_in_graph(out, input)


def threshold_(input, threshold, value):
    return globals()["threshold"](input, threshold, value, True)


def hardshrink(input, lambd=0.5):
    _need_float(input, "hardshrink")
    F = _F()
    return F.where(input.abs() > lambd, input, F.zeros_like(input))


def softshrink(input, lambd=0.5):
    if lambd < 0:
        raise RuntimeError(f"lambda must be in range [0, 3.40282e+38] for input dtype Float, but found {lambd:g}")
    _need_float(input, "softshrink")
    F = _F()
    return F.where(input > lambd, input - lambd, F.where(input < -lambd, input + lambd, F.zeros_like(input)))


def rrelu(input, lower=1.0 / 8, upper=1.0 / 3, training=False, inplace=False):
    """Leaky ReLU whose negative slope is, in training, drawn per element uniform in [lower, upper]; in eval the
    fixed mean (lower + upper) / 2."""
    if lower > upper:
        raise RuntimeError("Lower bound should be less than or equal to the upper bound")
    _need_float(input, "rrelu")
    F = _F()
    if not training:
        from .functional import leaky_relu

        return leaky_relu(input, (lower + upper) / 2, inplace)

    def fn(x):
        slope = F.empty_like(x).uniform_(lower, upper)
        return F.where(x >= 0, x, x * slope)

    return _apply(input, fn, inplace)


def rrelu_(input, lower=1.0 / 8, upper=1.0 / 3, training=False):
    return rrelu(input, lower, upper, training, True)


def local_response_norm(input, size, alpha=1e-4, beta=0.75, k=1.0):
    """x / (k + alpha / size * sum of x^2 over the `size` channels around each one)^beta; the window runs from
    size // 2 channels before to (size - 1) // 2 after, zero past the edges."""
    if input.dim() < 3:
        raise ValueError(f"Expected 3D or higher dimensionality                          input (got {input.dim()} "
                         "dimensions)")
    if size <= 0:
        raise RuntimeError(f"local_response_norm: size should be greater than zero, but got {size}")
    if input.numel() == 0:
        return input.clone()
    from .functional import pad

    sq = input * input
    C = input.shape[1]
    pads = [0, 0] * (input.dim() - 2) + [size // 2, (size - 1) // 2]
    padded = pad(sq, pads)
    total = padded.narrow(1, 0, C)
    for j in range(1, size):
        total = total + padded.narrow(1, j, C)
    div = (total * (alpha / size) + k) ** beta
    return input / div


def bilinear(input1, input2, weight, bias=None):
    """y[..., o] = sum_ij input1[..., i] weight[o, i, j] input2[..., j] + bias[o]."""
    if input1.dim() != input2.dim():
        raise RuntimeError(f"bilinear(): input dimensions do not match: got {input1.dim()} and {input2.dim()}")
    for i in range(input1.dim() - 1):
        if input1.shape[i] != input2.shape[i]:
            raise RuntimeError(f"bilinear(): input batch dimensions do not match at dim {i}: got "
                               f"{input1.shape[i]} and {input2.shape[i]}")
    if weight.dim() != 3:
        raise RuntimeError(f"bilinear(): weight must be 3-dimensional, but got {weight.dim()} dimensions")
    if input1.shape[-1] != weight.shape[1]:
        raise RuntimeError(f"bilinear(): input1 size does not match weight size: got {input1.shape[-1]} but "
                           f"expected {weight.shape[1]}")
    if input2.shape[-1] != weight.shape[2]:
        raise RuntimeError(f"bilinear(): input2 size does not match weight size: got {input2.shape[-1]} but "
                           f"expected {weight.shape[2]}")
    if bias is not None and (bias.dim() != 1 or bias.shape[0] != weight.shape[0]):
        raise RuntimeError(f"bilinear(): bias size does not match weight size: got {bias.shape[-1]} but expected "
                           f"{weight.shape[0]}")
    lead = list(input1.shape[:-1])
    a = input1.reshape(-1, input1.shape[-1])
    b = input2.reshape(-1, input2.shape[-1])
    O, I, J = weight.shape
    # (a W_o) for every o in one matmul, [n, o * j], then the dot with b over j.
    t = _F().matmul(a, weight.permute(1, 0, 2).reshape(I, O * J)).reshape(-1, O, J)
    out = (t * b.unsqueeze(1)).sum(-1)
    if bias is not None:
        out = out + bias
    return out.reshape(lead + [weight.shape[0]])


def channel_shuffle(input, groups):
    """Splits the channels (dim 1) into `groups` groups and interleaves them: [g, C/g] -> [C/g, g]."""
    if input.dim() <= 2:
        raise RuntimeError(f"channel_shuffle expects input with > 2 dims, but got input with sizes "
                           f"{list(input.shape)}")
    if groups <= 0:
        raise RuntimeError(f"Number of groups to divide channels in must be positive. Value of groups:{groups}")
    C = input.shape[1]
    if C % groups:
        raise RuntimeError(f"Number of channels must be divisible by groups. Got {C} channels and {groups} groups.")
    shape = list(input.shape)
    x = input.reshape([shape[0], groups, C // groups] + shape[2:]).transpose(1, 2)
    return x.reshape(shape)


native_channel_shuffle = channel_shuffle
