"""More of torch's nn.init: dirac_ (the identity kernel of a convolution, per group), sparse_ (Martens' sparse
columns) and the wrapper that makes torch's deprecated non-underscore aliases. Fills in place under no_grad and
returns the tensor."""
import functools
import math
import warnings

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


def sparse_(tensor, sparsity, std=0.01, generator=None):
    """Normal(0, std) entries with ceil(sparsity * rows) zeros in each column, at rows picked at random."""
    if tensor.dim() != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    from .._more_functions import randperm

    rows, cols = tuple(tensor.shape)
    num_zeros = math.ceil(sparsity * rows)
    with no_grad():
        tensor.normal_(0, std, generator=generator)
        for c in range(cols):
            # the zero rows come from the default generator, as torch's (its randperm takes no generator here)
            tensor[randperm(rows)[:num_zeros], c] = 0
    return tensor


def _make_deprecate(fn):
    new_name = fn.__name__
    old_name = new_name[:-1]

    @functools.wraps(fn)
    def deprecated_init(*args, **kwargs):
        warnings.warn(f"`nn.init.{old_name}` is now deprecated in favor of `nn.init.{new_name}`.", FutureWarning,
                      stacklevel=2)
        return fn(*args, **kwargs)

    deprecated_init.__name__ = deprecated_init.__qualname__ = old_name
    deprecated_init.__doc__ = f"{old_name}(...): deprecated; use nn.init.{new_name}."
    return deprecated_init
