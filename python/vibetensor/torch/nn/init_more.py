"""More of torch's nn.init: dirac_ (the identity kernel of a convolution, per group). Fills in place under no_grad
and returns the tensor."""
from ...autograd import no_grad


def dirac_(tensor, groups=1):
    """Zeros, with a 1 at the spatial centre of kernel [g * out_per_group + d, d] for d < min(out_per_group,
    in_channels): a convolution with it copies (per group) its input channels to the first outputs."""
    dims = tensor.dim()
    if dims not in (3, 4, 5):
        raise ValueError("Only tensors with 3, 4, or 5 dimensions are supported")
    sizes = tuple(tensor.shape)
    if sizes[0] % groups != 0:
        raise ValueError("dim 0 must be divisible by groups")
    per_group = sizes[0] // groups
    centre = tuple(s // 2 for s in sizes[2:])
    with no_grad():
        tensor.zero_()
        for g in range(groups):
            for d in range(min(per_group, sizes[1])):
                tensor[(g * per_group + d, d) + centre] = 1
    return tensor
