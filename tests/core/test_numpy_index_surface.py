"""Indexing tensors with NumPy arrays, against torch: integer arrays (minibatch indices from np.random.permutation,
as RL and data-loading code slices its buffers), boolean masks computed in NumPy, 0-dim arrays and NumPy integer
scalars, alone and mixed with ints, slices, None and Ellipsis; reads, writes and the gradient through a read."""
import warnings

import numpy as np
import pytest
import torch

import vibetensor.torch as vt

PERM = np.random.default_rng(0).permutation(6)
MASK = np.array([True, False, True, True, False, False])
INDICES = {
    "perm_slice": lambda: PERM[:4],
    "negative": lambda: np.array([-1, 0, -6]),
    "int32": lambda: np.array([3, 1], dtype=np.int32),
    "uint16": lambda: np.array([5, 2], dtype=np.uint16),
    "uint8_mask": lambda: MASK.astype(np.uint8),  # torch's deprecated byte mask, as a uint8 tensor is
    "two_dim": lambda: np.array([[0, 2], [5, 1]]),
    "mask": lambda: MASK,
    "with_slice": lambda: (slice(1, None), PERM[:3] % 4),
    "with_int": lambda: (PERM[:3], 2),
    "int_then_array": lambda: (3, np.array([0, 3])),
    "two_arrays": lambda: (np.array([0, 5]), np.array([1, 3])),
    "ellipsis": lambda: (Ellipsis, np.array([3, 0])),
    "none": lambda: (None, np.array([1, 2])),
    "mask_2d": lambda: np.arange(24).reshape(6, 4) % 3 == 0,
    "zero_dim": lambda: np.array(4),
    "numpy_scalar": lambda: np.int64(2),
    "scalar_and_array": lambda: (np.int32(1), np.array([0, 2])),
}
DATA = np.arange(24, dtype=np.float32).reshape(6, 4)


@pytest.mark.parametrize("name", sorted(INDICES))
def test_read_matches_torch(name):
    index = INDICES[name]()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch's deprecation of byte masks
        expected = torch.from_numpy(DATA.copy())[index]
    got = vt.from_numpy(DATA.copy())[index]
    assert tuple(got.shape) == tuple(expected.shape)
    np.testing.assert_array_equal(got.numpy(), expected.numpy())


# (torch refuses a scalar write through a byte mask, masked_fill_ wanting bool; vibetensor's uint8 tensors write)
@pytest.mark.parametrize("name", sorted(set(INDICES) - {"uint8_mask"}))
def test_write_matches_torch(name):
    index = INDICES[name]()
    t, v = torch.from_numpy(DATA.copy()), vt.from_numpy(DATA.copy())
    warnings.simplefilter("ignore", UserWarning)  # (pytest restores the filters after the test)
    t[index] = -1.0
    v[index] = -1.0
    np.testing.assert_array_equal(v.numpy(), t.numpy())
    shape = tuple(t[index].shape)
    values = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape) + 100
    if name not in ("negative", "two_dim"):  # repeated targets: which write wins is unspecified
        t[index] = torch.from_numpy(values)
        v[index] = vt.from_numpy(values)
        np.testing.assert_array_equal(v.numpy(), t.numpy())


def test_gradient_through_a_numpy_indexed_read():
    idx = np.array([4, 1, 4, 0])  # a repeated row: its gradient accumulates
    grads = []
    for lib in (torch, vt):
        x = lib.from_numpy(DATA.copy()).requires_grad_(True)
        (x[idx] * lib.arange(4.0).unsqueeze(1)).sum().backward()
        grads.append(x.grad.numpy())
    np.testing.assert_array_equal(grads[1], grads[0])


def test_minibatches_from_a_permutation_cover_the_buffer():
    """The PPO loop: shuffled indices, split into minibatches, each slicing every buffer the same way."""
    obs, actions = vt.from_numpy(DATA.copy()), vt.from_numpy(np.arange(6))
    seen = []
    for start in range(0, 6, 2):
        mb = PERM[start:start + 2]
        np.testing.assert_array_equal(obs[mb].numpy(), DATA[mb])
        seen += actions[mb].tolist()
    assert sorted(seen) == list(range(6))


@pytest.mark.parametrize("lib", [torch, vt], ids=["torch", "vt"])
def test_a_mask_of_the_wrong_shape_is_an_index_error(lib):
    with pytest.raises(IndexError):
        lib.from_numpy(DATA.copy())[np.array([True, False])]
