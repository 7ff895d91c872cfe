"""_ConvNd: the shared body of Conv1d/2d/3d and ConvTranspose1d/2d/3d (torch's arguments, checks, weight layout,
default initialisation and printing) and the non-zeros padding modes (reflect, replicate, circular), which pad
with F.pad and convolve unpadded, as torch's layers do."""
import math

from . import functional_conv as _fc
from .module import Module
from .parameter import Parameter


def _tuple(v, n):
    return tuple(v) if isinstance(v, (list, tuple)) else (v,) * n


class _ConvNd(Module):
    """Shared init: weight [out, in/g, *k] (or [in, out/g, *k] when transposed) and bias [out], both uniform in
    +-1/sqrt(fan_in) with fan_in = weight.shape[1] * prod(k) (torch's kaiming_uniform(a=sqrt(5)) default)."""

    _n = 1
    _conv = None  # the functional convolution of the subclass's rank

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode,
                 device, dtype, transposed, output_padding):
        super().__init__()
        from .. import _functions as T

        n = self._n
        if groups <= 0:
            raise ValueError("groups must be a positive integer")
        if in_channels % groups:
            raise ValueError("in_channels must be divisible by groups")
        if out_channels % groups:
            raise ValueError("out_channels must be divisible by groups")
        if padding_mode not in ("zeros", "reflect", "replicate", "circular"):
            raise ValueError(f"padding_mode must be one of ['zeros', 'reflect', 'replicate', 'circular'], but got "
                             f"padding_mode='{padding_mode}'")
        if transposed and padding_mode != "zeros":
            raise ValueError(f'Only "zeros" padding mode is supported for {type(self).__name__}')
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size, self.stride, self.dilation = _tuple(kernel_size, n), _tuple(stride, n), _tuple(dilation, n)
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"Invalid padding string '{padding}', should be one of ['valid', 'same']")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError("padding='same' is not supported for strided convolutions")
            self.padding = padding
        else:
            self.padding = _tuple(padding, n)
        self.output_padding, self.transposed = _tuple(output_padding, n), transposed
        # F.pad's list for the non-zeros modes, last dim first; a 'same' total's odd element goes at the end
        self._reversed_padding_repeated_twice = []
        for i in reversed(range(n)):
            if self.padding == "valid":
                self._reversed_padding_repeated_twice += [0, 0]
            elif self.padding == "same":
                total = self.dilation[i] * (self.kernel_size[i] - 1)
                self._reversed_padding_repeated_twice += [total // 2, total - total // 2]
            else:
                self._reversed_padding_repeated_twice += [self.padding[i]] * 2
        self.padding_mode = padding_mode
        shape = (in_channels, out_channels // groups) if transposed else (out_channels, in_channels // groups)
        shape = shape + self.kernel_size
        fan_in = shape[1] * math.prod(self.kernel_size)
        bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        self.weight = Parameter(T.empty(*shape, device=device, dtype=dtype).uniform_(-bound, bound))
        if bias:
            self.bias = Parameter(T.empty(out_channels, device=device, dtype=dtype).uniform_(-bound, bound))
        else:
            self.register_parameter("bias", None)

    def _conv_forward(self, input, weight, bias):
        """The subclass's conv (_conv) of input with this layer's options and the given weight and bias (torch's
        hook, which weight-standardising subclasses call with their own weight); a non-zeros padding_mode pads
        with F.pad first and convolves unpadded."""
        conv = type(self)._conv
        if self.padding_mode == "zeros":
            return conv(input, weight, bias, self.stride, self.padding, self.dilation, self.groups)
        x = _fc.pad(input, self._reversed_padding_repeated_twice, mode=self.padding_mode)
        return conv(x, weight, bias, self.stride, 0, self.dilation, self.groups)

    def forward(self, input):
        return self._conv_forward(input, self.weight, self.bias)

    def extra_repr(self):
        n = self._n
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0,) * n:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * n:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * n:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s
