"""default_collate's strings and string arrays against torch's: a column of strings from tuple samples
(an (image, filename) dataset) stays the tuple torch's transpose makes, dict and list samples give lists, and numpy
string arrays are refused with torch's TypeError naming their dtype."""
import collections

import numpy as np
import pytest
import torch
import torch.utils.data as td
import vibetensor.torch.utils.data as vd

Pair = collections.namedtuple("Pair", "name n")
BATCHES = [
    [("a.png", 1), ("b.png", 2)],
    [["a", 1], ["b", 2]],
    [{"name": "a", "tags": ("x", "y")}, {"name": "b", "tags": ("z", "w")}],
    [Pair("a", 1), Pair("b", 2)],
    [(b"raw", 0.5), (b"bytes", 1.5)],
]


def plain(x):
    """The collated structure with tensors as (values, dtype name), containers' types kept."""
    if hasattr(x, "tolist") and hasattr(x, "dtype"):
        return ("tensor", x.tolist(), str(x.dtype).split(".")[-1])
    if isinstance(x, dict):
        return {k: plain(v) for k, v in x.items()}
    if isinstance(x, tuple) and hasattr(x, "_fields"):
        return (type(x).__name__, [plain(v) for v in x])
    if isinstance(x, (list, tuple)):
        return type(x)(plain(v) for v in x)
    return x


@pytest.mark.parametrize("batch", BATCHES, ids=["tuple", "list", "dict", "namedtuple", "bytes"])
def test_string_columns_match_torch(batch):
    assert plain(vd.default_collate(batch)) == plain(td.default_collate(batch))


def test_loader_of_tuple_samples_with_names_matches_torch():
    class Named:
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return np.full(2, float(i)), f"img{i}.png"

    t = [plain(b) for b in td.DataLoader(Named(), batch_size=3)]
    v = [plain(b) for b in vd.DataLoader(Named(), batch_size=3)]
    assert v == t and t[0][1] == ("img0.png", "img1.png", "img2.png")


@pytest.mark.parametrize("arr", [np.array(["a"]), np.array([b"a"]), np.array([object()])])
def test_numpy_string_arrays_are_refused_like_torch(arr):
    with pytest.raises(TypeError) as t:
        td.default_collate([arr, arr])
    with pytest.raises(TypeError) as v:
        vd.default_collate([arr, arr])
    assert str(v.value) == str(t.value)
