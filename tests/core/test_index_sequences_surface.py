"""Indexing with Python sequences and NumPy arrays, against torch: an empty list is an empty long index (read and
written: Hugging Face's no-repeat-ngram processor sets `scores[i, banned] = -inf` with nothing banned), a NumPy
array is an index like the list of its values (it was taken for an integer because it has __index__), and a
float sequence's values are cast to long as torch casts them, while a float alone stays an IndexError."""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt

X = np.arange(24, dtype=np.float32).reshape(2, 3, 4)

INDICES = {
    "empty_list": [],
    "dim1_empty_list": (0, []),
    "dim2_empty_list": (slice(None), slice(None), []),
    "empty_tuple_of_lists": ([], []),
    "numpy_int": np.array([1, 0, 1]),
    "numpy_int_dim2": (1, slice(None), np.array([3, 0])),
    "numpy_2d": (0, np.array([[0, 1], [2, 2]])),
    "numpy_bool": np.array([True, False]),
    "numpy_0d": np.array(1),
    "numpy_int64_scalar": np.int64(1),
    "numpy_empty_int": np.array([], dtype=np.int64),
    "numpy_float": (0, np.array([2.0, 1.0])),
    "float_list": (1, [0.0, 2.0]),
    "range": (0, range(1, 3)),
    "list_and_numpy": ([0, 1], np.array([2, 0])),
}


def same(v, t):
    assert tuple(v.shape) == tuple(t.shape)
    assert v.tolist() == t.tolist()


@pytest.mark.parametrize("name", list(INDICES))
def test_getitem_matches_torch(name):
    index = INDICES[name]
    same(vt.from_numpy(X.copy())[index], torch.from_numpy(X.copy())[index])


@pytest.mark.parametrize("name", list(INDICES))
def test_setitem_matches_torch(name):
    index = INDICES[name]
    v, t = vt.from_numpy(X.copy()), torch.from_numpy(X.copy())
    v[index] = -1.0
    t[index] = -1.0
    same(v, t)


def test_no_repeat_ngram_ban_as_huggingface_writes_it():
    """Bans, per row, the tokens that followed the row's last token before; most rows ban nothing."""
    ids = [[1, 4, 4, 7], [2, 2, 3, 9], [0, 5, 6, 5]]
    scores = np.random.default_rng(0).standard_normal((3, 10)).astype(np.float32)
    results = []
    for lib in (torch, vt):
        s = lib.from_numpy(scores.copy())
        for i, row in enumerate(ids):
            banned = [b for a, b in zip(row[:-1], row[1:]) if a == row[-1]]
            s[i, banned] = -float("inf")
        results.append(s)
    same(results[1], results[0])
    assert np.isinf(results[1].numpy()).sum() == 1


@pytest.mark.parametrize("index, error", [(1.5, IndexError), ((0, 0.5), IndexError), ((["a"],), TypeError),
                                          ((None, ["b"]), TypeError), ((0, ["c", 1]), TypeError)])
def test_what_torch_refuses_stays_refused(index, error):
    with pytest.raises(error) as t:
        torch.from_numpy(X.copy())[index]
    with pytest.raises(error) as v:
        vt.from_numpy(X.copy())[index]
    assert str(v.value) == str(t.value)
