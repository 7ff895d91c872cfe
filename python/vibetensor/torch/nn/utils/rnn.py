"""vt.nn.utils.rnn.pad_sequence: a list of [L_i, *] tensors padded to the longest and stacked, torch's semantics
(batch_first, padding_value, padding_side); the packed-sequence helpers are not provided."""


def pad_sequence(sequences, batch_first=False, padding_value=0.0, padding_side="right"):
    from .. import functional as F
    from ... import _functions as vt

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
    return vt.stack(padded, 0 if batch_first else 1)
