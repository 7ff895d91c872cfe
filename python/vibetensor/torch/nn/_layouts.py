"""The memory layout of functional results: torch lays out the result of a pooling, an interpolation, a group
norm or a pad in its input's suggested memory format, so a channels_last model stays channels_last through
them; these helpers give vibetensor's results the same strides."""
import functools

from ..._C import core as _core

# The C++ test (this module loads before _memory_format wraps Tensor.is_contiguous with its memory_format
# argument; the wrapper would answer the same, only slower).
_is_contiguous = _core.Tensor.is_contiguous


def _keeps_channels_last(fn):
    """An op whose result torch lays out in its input's suggested format (poolings, interpolate, group_norm,
    pad): a channels_last input gives channels_last results (both of a (values, indices) pair), so a channels_last
    model stays channels_last through them, as in torch (x.permute(0, 2, 3, 1).view(...) then works)."""

    @functools.wraps(fn)
    def wrapper(input, *args, **kwargs):
        out = fn(input, *args, **kwargs)
        # A contiguous input never suggests channels_last (its channel stride exceeds its width's), and asking
        # costs more host time than a tiny kernel's launch: the common case returns here.
        if input.dim() not in (4, 5) or _is_contiguous(input):
            return out
        from .. import _memory_format as mf

        fmt = mf.suggest_memory_format(input)
        if fmt is mf.contiguous_format:
            return out
        keep = lambda t: _in_format(t, fmt) if t.dim() == input.dim() else t  # noqa: E731
        return tuple(keep(t) for t in out) if isinstance(out, tuple) else keep(out)
    return wrapper


def _in_format(t, fmt):
    """t laid out in memory format fmt with torch's exact strides, size-1 dims included (a [N, C, 1, 1] result
    then still reads as channels_last to the next op, as torch's): a copy only when the layout really differs."""
    from .. import _memory_format as mf

    t = mf.contiguous(t, fmt)
    target = mf._format_strides(tuple(t.shape), fmt)
    return t if list(t.stride()) == target else t.as_strided(tuple(t.shape), target, t.storage_offset())
