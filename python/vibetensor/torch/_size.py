"""vt.Size, torch.Size: the tuple subclass x.shape and x.size() return (Note [Size] in core/bindings/tensor.cpp).
A tuple in every respect (equality, hashing, unpacking, indexing at tuple speed), plus torch's numel() and repr
(`torch.Size([2, 3])`), and concatenation and repetition that stay Sizes. Slicing gives a plain tuple here
(torch's gives a Size): overriding __getitem__ would put a Python call on every x.shape[-1]."""
import math
import operator

from .._C import core as _core


class Size(tuple):
    __slots__ = ()

    def __new__(cls, sizes=()):
        items = []
        for i, v in enumerate(sizes):
            try:
                items.append(operator.index(v))
            except TypeError:
                raise TypeError(f"torch.Size() takes an iterable of 'int' (item {i} is '{type(v).__name__}')") from None
        return super().__new__(cls, items)

    def numel(self):
        """The number of elements a tensor of this shape holds (1 for a 0-dim one)."""
        return math.prod(self)

    def __repr__(self):
        return f"torch.Size({list(self)})"

    __str__ = __repr__

    def __add__(self, other):
        if not isinstance(other, tuple):
            return NotImplemented
        return Size(tuple.__add__(self, other))

    def __radd__(self, other):
        if not isinstance(other, tuple):
            return NotImplemented
        return Size(tuple.__add__(other, self))

    def __mul__(self, n):
        return Size(tuple.__mul__(self, n))

    __rmul__ = __mul__

    def __reduce__(self):
        return (Size, (tuple(self),))


_core._set_size_type(Size)
