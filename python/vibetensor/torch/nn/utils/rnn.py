"""vt.nn.utils.rnn: torch's padded and packed variable-length sequences.

pad_sequence / unpad_sequence turn a list of [L_i, *] tensors into one padded tensor and back. A PackedSequence
holds the valid steps only, time-major (data: step 0 of every sequence, then step 1 of those at least 2 long, ...),
how many sequences each step has (batch_sizes, an int64 CPU tensor) and the permutation that sorted the batch by
decreasing length (sorted_indices, unsorted_indices; None when the input was already sorted).
pack_padded_sequence, pad_packed_sequence, pack_sequence and unpack_sequence convert between the forms; the data
moves through one index_select each way (indices built on the host from the lengths), so autograd flows through.
invert_permutation gives unsorted_indices from sorted_indices.
"""
import collections

__all__ = ["PackedSequence", "invert_permutation", "pack_padded_sequence", "pad_packed_sequence", "pad_sequence",
           "unpad_sequence", "pack_sequence", "unpack_sequence"]


def _vt():
    from .... import torch as vt  # the package, imported by the time anything here runs

    return vt


def _core():
    from ...._C import core

    return core


def pad_sequence(sequences, batch_first=False, padding_value=0.0, padding_side="right"):
    from .. import functional as F

    if padding_side not in ("left", "right"):
        raise RuntimeError(f"Expected padding_side to be one of left or right, but got {padding_side}.")
    if not isinstance(sequences, (list, tuple)):  # a tensor is a sequence of its rows, as in torch
        sequences = list(sequences.unbind(0))
    if len(sequences) == 0:
        raise RuntimeError("received an empty list of sequences")
    first = sequences[0]
    if first.dim() == 0:
        raise RuntimeError("pad_sequence: expected each sequence to have at least 1 dimension, got a 0-d tensor")
    trailing = list(first.shape[1:])
    for i, s in enumerate(sequences):
        if list(s.shape[1:]) != trailing:
            raise RuntimeError(f"pad_sequence: sequence {i} has trailing shape {list(s.shape[1:])}, but sequence 0 "
                               f"has {trailing}")
    max_len = max(s.shape[0] for s in sequences)
    padded = []
    for s in sequences:
        extra = max_len - s.shape[0]
        side = [0, extra] if padding_side == "right" else [extra, 0]
        s = s.to(first.dtype)
        padded.append(F.pad(s, [0, 0] * len(trailing) + side, value=padding_value) if extra else s)
    return _vt().stack(padded, 0 if batch_first else 1)


def invert_permutation(perm):
    """The inverse of a permutation tensor (None for None)."""
    if perm is None:
        return None
    T = _vt()
    return T.empty_like(perm).scatter_(0, perm, T.arange(perm.numel(), dtype=perm.dtype, device=perm.device))


_PackedFields = collections.namedtuple("PackedSequence", ["data", "batch_sizes", "sorted_indices",
                                                          "unsorted_indices"])


class PackedSequence(_PackedFields):
    """The packed form of a batch of variable-length sequences (see the module docstring). Build it with
    pack_padded_sequence or pack_sequence; constructing one directly (data, batch_sizes[, sorted_indices]) fills
    unsorted_indices as the inverse of sorted_indices."""
    __slots__ = ()

    def __new__(cls, data, batch_sizes=None, sorted_indices=None, unsorted_indices=None):
        if unsorted_indices is None:
            unsorted_indices = invert_permutation(sorted_indices)
        if batch_sizes is None:  # PackedSequence((data, batch_sizes)), torch's older form
            if not (isinstance(data, (list, tuple)) and len(data) == 2):
                raise AssertionError("Expected data to be a list or tuple of length 2")
            data, batch_sizes = data
        if batch_sizes.device.type != "cpu":
            raise ValueError("batch_sizes should always be on CPU. Instances of PackedSequence should never be "
                             "created manually. They should be instantiated by functions like pack_sequence and "
                             "pack_padded_sequences in nn.utils.rnn.")
        return super().__new__(cls, data, batch_sizes, sorted_indices, unsorted_indices)

    def to(self, *args, **kwargs):
        """Moves/casts data as Tensor.to does; the indices follow data's device (never its dtype) and batch_sizes
        stays on the CPU. Returns self when data does not change."""
        data = self.data.to(*args, **kwargs)
        if data is self.data:
            return self
        rest = {k: v for k, v in kwargs.items() if k not in ("device", "dtype")}

        def move(t):
            return None if t is None else t.to(data.device, **rest)

        return type(self)(data, self.batch_sizes, move(self.sorted_indices), move(self.unsorted_indices))

    def _to_device_kind(self, kind, args, kwargs):
        # with arguments that already name a device of this kind (cuda(1), cuda("cuda:1")) those win
        probe = _vt().empty(0, dtype=self.data.dtype, device=self.data.device).to(*args, **kwargs)
        if probe.device.type == kind:
            return self.to(*args, **kwargs)
        kwargs["device"] = kind
        return self.to(*args, **kwargs)

    def cuda(self, *args, **kwargs):
        return self._to_device_kind("cuda", args, dict(kwargs))

    def cpu(self, *args, **kwargs):
        return self._to_device_kind("cpu", args, dict(kwargs))

    def pin_memory(self):
        def pin(t):
            return None if t is None else t.pin_memory()

        return type(self)(self.data.pin_memory(), self.batch_sizes, pin(self.sorted_indices),
                          pin(self.unsorted_indices))

    def is_pinned(self):
        return self.data.is_pinned()

    @property
    def is_cuda(self):
        return self.data.is_cuda

    def double(self):
        return self.to(dtype=_core().dtype.float64)

    def float(self):
        return self.to(dtype=_core().dtype.float32)

    def half(self):
        return self.to(dtype=_core().dtype.float16)

    def long(self):
        return self.to(dtype=_core().dtype.int64)

    def int(self):
        return self.to(dtype=_core().dtype.int32)

    def short(self):
        return self.to(dtype=_core().dtype.int16)

    def char(self):
        return self.to(dtype=_core().dtype.int8)

    def byte(self):
        return self.to(dtype=_core().dtype.uint8)


def _lengths_tensor(lengths):
    """lengths as torch takes them: a sequence, or a tensor cast to int64, which must be 1-D and on the CPU."""
    T, core = _vt(), _core()
    if isinstance(lengths, core.Tensor):
        lengths = lengths.to(dtype=core.dtype.int64)
    else:
        lengths = T.as_tensor(lengths, dtype=core.dtype.int64, device="cpu")
    if lengths.dim() != 1 or lengths.device.type != "cpu":
        raise RuntimeError(f"'lengths' argument should be a 1D CPU int64 tensor, but got {lengths.dim()}D "
                           f"{lengths.device} Long tensor")
    return lengths


def _batch_sizes(lengths):
    """For sorted (decreasing) lengths: how many sequences are still running at each step."""
    sizes, b = [], len(lengths)
    for t in range(lengths[0] if lengths else 0):
        while b and lengths[b - 1] <= t:
            b -= 1
        sizes.append(b)
    return sizes


def pack_padded_sequence(input, lengths, batch_first=False, enforce_sorted=True):
    """input: (T, B, *) (or (B, T, *) with batch_first) padded sequences; lengths: each one's length. With
    enforce_sorted the lengths must be decreasing; otherwise the batch is sorted here and the permutation kept in
    the result, so pad_packed_sequence and the recurrent layers give results in the original order."""
    T, core = _vt(), _core()
    lengths = _lengths_tensor(lengths)
    if input.dim() < 2:
        raise IndexError(f"pack_padded_sequence: expected the input to have a time and a batch dimension, got a "
                         f"{input.dim()}-D tensor")
    batch_dim = 0 if batch_first else 1
    if lengths.shape[0] != input.shape[batch_dim]:
        raise RuntimeError(f"Expected `len(lengths)` to be equal to batch_size, but got {lengths.shape[0]} "
                           f"(batch_size={input.shape[batch_dim]})")
    sorted_indices = None
    if not enforce_sorted:
        lengths, sorted_indices = T.sort(lengths, descending=True, stable=True)
        sorted_indices = sorted_indices.to(input.device)
        input = input.index_select(batch_dim, sorted_indices)
    if input.numel() == 0:
        raise RuntimeError("Cannot pack empty tensors.")
    lens = lengths.tolist()
    if lens[-1] <= 0:
        raise RuntimeError("Length of all samples has to be greater than 0, but found an element in 'lengths' "
                           "that is <= 0")
    if any(a < b for a, b in zip(lens, lens[1:])):
        raise RuntimeError("`lengths` array must be sorted in decreasing order when `enforce_sorted` is True. You "
                           "can pass `enforce_sorted=False` to pack_padded_sequence and/or pack_sequence to "
                           "sidestep this requirement if you do not need ONNX exportability.")
    x = input.transpose(0, 1) if batch_first else input
    steps, batch = x.shape[0], x.shape[1]
    if lens[0] > steps:  # torch silently builds a PackedSequence whose data and batch_sizes disagree
        raise RuntimeError(f"pack_padded_sequence: a length of {lens[0]} is longer than the input's "
                           f"{steps} steps")
    sizes = _batch_sizes(lens)
    rows = [t * batch + b for t, n in enumerate(sizes) for b in range(n)]
    data = x.flatten(0, 1).index_select(0, T.tensor(rows, dtype=core.dtype.int64, device=x.device))
    return PackedSequence(data, T.tensor(sizes, dtype=core.dtype.int64), sorted_indices, None)


def pad_packed_sequence(sequence, batch_first=False, padding_value=0.0, total_length=None):
    """The inverse of pack_padded_sequence: (padded (T, B, *) or (B, T, *), lengths as an int64 CPU tensor), in
    the batch's original order. T is the longest length, or total_length when given."""
    from .. import functional as F

    T, core = _vt(), _core()
    data, sizes = sequence.data, sequence.batch_sizes.tolist()
    steps = len(sizes)
    if total_length is not None:
        if total_length < steps:
            raise ValueError("Expected total_length to be at least the length of the longest sequence in input, "
                             f"but got total_length={total_length} and max sequence length being {steps}")
        steps = total_length
    batch = sizes[0]
    lengths = [sum(1 for n in sizes if n > b) for b in range(batch)]  # in sorted order
    offsets = [0]
    for n in sizes:
        offsets.append(offsets[-1] + n)
    pad_row = offsets[-1]  # one extra row of padding_value appended to data
    order = list(range(batch)) if sequence.unsorted_indices is None else sequence.unsorted_indices.tolist()

    def row(t, s):
        return offsets[t] + s if t < lengths[s] else pad_row

    # one gather straight into the final layout and the original batch order
    if batch_first:
        rows = [row(t, s) for s in order for t in range(steps)]
    else:
        rows = [row(t, s) for t in range(steps) for s in order]
    trailing = list(data.shape[1:])
    src = F.pad(data, [0, 0] * len(trailing) + [0, 1], value=padding_value)
    out = src.index_select(0, T.tensor(rows, dtype=core.dtype.int64, device=data.device))
    shape = [batch, steps] if batch_first else [steps, batch]
    return out.reshape(shape + trailing), T.tensor([lengths[s] for s in order], dtype=core.dtype.int64)


def pack_sequence(sequences, enforce_sorted=True):
    """A list of [L_i, *] tensors packed (pad_sequence, then pack_padded_sequence)."""
    lengths = [s.shape[0] for s in sequences]
    return pack_padded_sequence(pad_sequence(sequences), lengths, enforce_sorted=enforce_sorted)


def unpad_sequence(padded_sequences, lengths, batch_first=False):
    """The list of [L_i, *] sequences of a padded batch (each a copy, as in torch). Unlike torch, the padded
    tensor is not transposed in place when batch_first is False."""
    x = padded_sequences if batch_first else padded_sequences.transpose(0, 1)
    lens = lengths.tolist() if isinstance(lengths, _core().Tensor) else list(lengths)
    if len(lens) != x.shape[0]:
        raise RuntimeError(f"unpad_sequence: got {len(lens)} lengths for a batch of {x.shape[0]} sequences")
    return [x[b, :max(int(n), 0)].clone() for b, n in enumerate(lens)]


def unpack_sequence(packed_sequences):
    """The list of sequences of a PackedSequence, in their original order."""
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)
