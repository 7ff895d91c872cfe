"""Shape and arithmetic ops composed over dispatcher ops, torch-shaped: repeat, repeat_interleave, Tensor.unfold,
lerp with a tensor weight, outer, baddbmm/addmm; and flip, roll, tril, triu, addcmul, addcdiv and lerp with a
number as the weight, which are dispatcher ops of their own (core/src/ops/reorder.cpp, triangle.cpp and
pointwise_impl.h, a kernel per backend), bound here beside the others.

Each composition is also how one would write the kernel's data movement: they run on any device and
differentiate through their parts (where, cat, expand/reshape, as_strided, gather, matmul). A cost worth knowing:
repeat_interleave with a tensor of repeats reads the repeats back to size its result (a host sync, as torch's
without output_size)."""
import builtins
import numbers

from .._C import core as _core
from ..autograd.function import Function
from ._no_autocast import call_without_autocast
from . import _functions as F

Tensor = _core.Tensor


_tril, _triu, _tril_, _triu_ = (_core.op(f"vt::{name}") for name in ("tril", "triu", "tril_", "triu_"))


def tril(input, diagonal=0):
    return _tril(input, diagonal)


def triu(input, diagonal=0):
    return _triu(input, diagonal)


def tril_(self, diagonal=0):
    return _tril_(self, diagonal)


def triu_(self, diagonal=0):
    return _triu_(self, diagonal)


_flip, _roll = _core.op("vt::flip"), _core.op("vt::roll")


def flip(input, dims):
    """One gather (vt::flip: a kernel per backend, FlipBackward0)."""
    return _flip(input, [dims] if isinstance(dims, int) else dims)


def fliplr(input):
    if input.dim() < 2:
        raise RuntimeError("Input must be >= 2-d.")
    return flip(input, [1])


def flipud(input):
    if input.dim() < 1:
        raise RuntimeError("Input must be >= 1-d.")
    return flip(input, [0])


def roll(input, shifts, dims=None):
    """One gather (vt::roll: a kernel per backend, RollBackward0); no dims rolls the flattened tensor."""
    return _roll(input, [shifts] if isinstance(shifts, int) else shifts, [dims] if isinstance(dims, int) else dims)


def repeat(self, *sizes):
    if len(sizes) == 1 and not isinstance(sizes[0], int):
        sizes = tuple(sizes[0])
    if len(sizes) < self.dim():
        raise RuntimeError("Number of dimensions of repeat dims can not be smaller than number of dimensions of tensor")
    if any(s < 0 for s in sizes):
        raise RuntimeError(f"Trying to create tensor with negative dimension: {list(sizes)}")
    shape = [1] * (len(sizes) - self.dim()) + list(self.shape)
    x = self.reshape(*shape) if shape else self.reshape([])
    interleaved, target = [], []
    for r, s in zip(sizes, shape):  # [r0, s0, r1, s1, ...]: each dim's copies outside it
        interleaved += [1, s]
        target += [r, s]
    out = x.reshape(*interleaved).expand(*target).reshape(*[r * s for r, s in zip(sizes, shape)])
    # repeat always returns fresh memory; the reshape of the expand may alias self (stride 0 where a dim is
    # copied), which _is_view misses under no_grad (no view base is recorded there), so ask the storage
    return out.clone() if out._is_view_of(self) else out


def repeat_interleave(input, repeats=None, dim=None, *, output_size=None):
    if repeats is None:  # torch.repeat_interleave(repeats): the index pattern itself
        counts = input
        return repeat_interleave(F.arange(counts.numel(), device=counts.device), counts, 0)
    x = input.flatten() if dim is None else input
    d = 0 if dim is None else F._wrap(dim, builtins.max(x.dim(), 1))
    if isinstance(repeats, Tensor) and repeats.numel() == 1 and repeats.dim() <= 1:
        repeats = builtins.int(repeats.item())
    if isinstance(repeats, numbers.Integral):
        if repeats < 0:
            raise RuntimeError("repeats can not be negative")
        if x.dim() == 0:
            x = x.reshape(1)
        shape = list(x.shape)
        out = x.unsqueeze(d + 1).expand(*shape[:d + 1], repeats, *shape[d + 1:])
        return out.reshape(*shape[:d], shape[d] * repeats, *shape[d + 1:])
    if repeats.dim() != 1:
        raise RuntimeError("repeat_interleave only accept 1D vector as repeat")
    if repeats.numel() != x.shape[d]:
        raise RuntimeError("repeats must have the same size as input along dim")
    counts = repeats.tolist()
    if any(c < 0 for c in counts):
        raise RuntimeError("repeats can not be negative")
    picks = [i for i, c in enumerate(counts) for _ in range(c)]
    from ._select_ops import index_select

    return index_select(x, d, F.tensor(picks, dtype=_core.dtype.int64, device=x.device))


def unfold(self, dimension, size, step):
    """Windows of `size` elements every `step` along `dimension`, as a new last dim: a view (as_strided)."""
    nd = builtins.max(self.dim(), 1)
    d = F._wrap(dimension, nd)
    n = self.shape[d] if self.dim() else 1
    if size > n:
        raise RuntimeError(f"maximum size for tensor at dimension {d} is {n} but size is {size}")
    if step <= 0:
        raise RuntimeError(f"step is {step} but must be > 0")
    if size < 0:
        raise RuntimeError(f"size is {size} but must be >= 0")
    shape = list(self.shape) if self.dim() else [1]
    strides = list(self.stride()) if self.dim() else [1]
    shape[d], inner = (n - size) // step + 1, strides[d]
    strides[d] *= step
    return self.as_strided(shape + [size], strides + [inner], self.storage_offset())


# lerp with a number as the weight, addcmul and addcdiv are dispatcher ops of one kernel each (core/src/ops/
# pointwise_impl.h: computed in opmath, rounded once, as torch's), in place too; lerp with a tensor weight is
# composed here, in torch's two-sided form (exact at weight 0 and 1).
_lerp, _lerp_ = _core.fast_op("vt::lerp"), _core.fast_op("vt::lerp_")
_addcmul, _addcmul_ = _core.fast_op("vt::addcmul"), _core.fast_op("vt::addcmul_")
_addcdiv, _addcdiv_ = _core.fast_op("vt::addcdiv"), _core.fast_op("vt::addcdiv_")


def lerp(input, end, weight):
    """input + weight * (end - input)."""
    if isinstance(weight, Tensor):
        diff = end - input
        return F.where(weight.abs() < 0.5, input + weight * diff, end - diff * (1 - weight))
    return _lerp(input, end, weight)


def addcmul(input, tensor1, tensor2, *, value=1):
    return _addcmul(input, tensor1, tensor2, value=value)


def addcdiv(input, tensor1, tensor2, *, value=1):
    return _addcdiv(input, tensor1, tensor2, value=value)


def outer(input, vec2):
    if input.dim() != 1 or vec2.dim() != 1:
        raise RuntimeError(f"outer: expected 1-D vectors, got {input.dim()}-D and {vec2.dim()}-D")
    return input.unsqueeze(1) * vec2.unsqueeze(0)


def _scaled_sum(input, product, beta, alpha):
    if beta == 0:  # input is ignored, NaN and inf included (torch's rule), but still gets a zero gradient
        from ._math_functions import _linked  # (imported after this module)

        return _linked(product if alpha == 1 else product * alpha, input)
    scaled = product if alpha == 1 else product * alpha
    return scaled + (input if beta == 1 else input * beta)


def _round_once_in_float(input, mat):
    """A 16-bit scaled sum on the CPU, computed in float and rounded once, as torch's CPU kernels round it (on
    CUDA it stays in the operands' dtype, where the products keep their tensor cores: a few results then differ
    from torch's in the last bit)."""
    return (mat.dtype in (_core.dtype.bfloat16, _core.dtype.float16) and input.dtype == mat.dtype
            and mat.device.type == "cpu")


def baddbmm(input, batch1, batch2, *, beta=1, alpha=1):
    if batch1.dim() != 3 or batch2.dim() != 3:
        raise RuntimeError(f"batch1 must be a 3D tensor, batch2 must be a 3D tensor; got {batch1.dim()}-D and "
                           f"{batch2.dim()}-D")
    if _round_once_in_float(input, batch1):
        return _scaled_sum(input.float(), batch1.float().bmm(batch2.float()), beta, alpha).to(batch1.dtype)
    return _scaled_sum(input, batch1.bmm(batch2), beta, alpha)


_linear_bias = _core.op("vt::_linear_bias")


def addmm(input, mat1, mat2, *, beta=1, alpha=1):
    """beta * input + alpha * (mat1 @ mat2). A bias row added to the plain product (Hugging Face's Conv1D, say)
    is one op, vt::_linear_bias, which adds it before the product is rounded: torch rounds a 16-bit addmm once."""
    if (beta == 1 and alpha == 1 and input.dim() == 1 and mat1.dim() == 2 and mat2.dim() == 2
            and input.shape[0] in (1, mat2.shape[1]) and input.dtype == mat1.dtype == mat2.dtype
            and mat1.dtype.is_floating_point):
        return _linear_bias(mat1, mat2.t(), input)
    if _round_once_in_float(input, mat1):
        return _scaled_sum(input.float(), mat1.float().mm(mat2.float()), beta, alpha).to(mat1.dtype)
    return _scaled_sum(input, mat1.mm(mat2), beta, alpha)


def addbmm(input, batch1, batch2, *, beta=1, alpha=1):
    """beta * input + alpha * (the sum over the batch of batch1[i] @ batch2[i])."""
    if batch1.dim() != 3 or batch2.dim() != 3:
        raise RuntimeError(f"batch1 must be a 3D tensor, batch2 must be a 3D tensor; got {batch1.dim()}-D and "
                           f"{batch2.dim()}-D")
    return _scaled_sum(input, batch1.bmm(batch2).sum(0), beta, alpha)


def addr(input, vec1, vec2, *, beta=1, alpha=1):
    """beta * input + alpha * outer(vec1, vec2); on bool tensors the products are ANDs and the sum an OR."""
    for name, v in (("vec1", vec1), ("vec2", vec2)):
        if v.dim() != 1:
            raise RuntimeError(f"addr: Expected 1-D argument {name}, but got {v.dim()}-D")
    if input.dtype == _core.dtype.bool and vec1.dtype == _core.dtype.bool and vec2.dtype == _core.dtype.bool:
        product = vec1.unsqueeze(1).logical_and(vec2.unsqueeze(0))
        if not alpha:
            product = F.zeros_like(product)
        return product.logical_or(input if beta else F.zeros_like(input))  # broadcast either way
    if not input.dtype.is_floating_point and any(isinstance(s, float) for s in (beta, alpha)):
        name = "beta" if isinstance(beta, float) else "alpha"
        raise RuntimeError(f"For integral input tensors, argument {name} must not be a floating point number.")
    return _scaled_sum(input, outer(vec1, vec2), beta, alpha)


def _inplace(fn):
    def method(self, *args, **kwargs):  # (torch never autocasts an in-place form: it computes in self's dtype)
        return self.copy_(call_without_autocast(fn, self, *args, **kwargs))
    method.__name__ = fn.__name__ + "_"
    return method


baddbmm_, addbmm_, addr_, addmm_ = (_inplace(f) for f in (baddbmm, addbmm, addr, addmm))


def lerp_(self, end, weight):
    if isinstance(weight, Tensor):
        return self.copy_(call_without_autocast(lerp, self, end, weight))
    return _lerp_(self, end, weight)


def addcmul_(self, tensor1, tensor2, *, value=1):
    return _addcmul_(self, tensor1, tensor2, value=value)


def addcdiv_(self, tensor1, tensor2, *, value=1):
    return _addcdiv_(self, tensor1, tensor2, value=value)


class _EvenlyDistributed(Function):
    """value unchanged; its gradient shared evenly by the elements of x equal to it (the NaNs when it is NaN)."""

    @staticmethod
    def forward(ctx, x, v):
        ctx.save_for_backward(x, v)
        return v.clone()

    @staticmethod
    def backward(ctx, grad):
        x, v = ctx.saved_tensors
        mask = (x == v) | (x.isnan() & v.isnan()) if x.dtype.is_floating_point else x == v
        mask = mask.to(grad.dtype)
        return mask * (grad / mask.sum()), None


def evenly_distributed(input, value):
    """value (a full reduction of input that picks an element: median(), nanmedian()) with torch's gradient: the
    elements equal to it share the incoming gradient evenly."""
    return _EvenlyDistributed.apply(input, value.detach()) if input.requires_grad else value
