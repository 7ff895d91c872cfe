"""Tensor.__setitem__ with an advanced (tensor, list or boolean-mask) index against torch: a value tensor must
have the target's dtype (torch raises "Index put requires the source and destination dtypes match"), except a
0-dim one written through a single boolean mask (torch's masked_fill path); Python numbers are converted, and
basic indexing (a copy_) converts any value. As
PointNet++'s farthest point sampling writes `distance[mask] = dist[mask]` with a float32 distance and float64
points, vibetensor used to convert silently where torch refuses."""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt


def targets(mod):
    return mod.ones(2, 4), mod.ones(2, 4, dtype=mod.float64) > 0


REFUSED = [
    ("mask", lambda m, d, mask: d.__setitem__(mask, m.ones(8, dtype=m.float64))),
    ("list rows", lambda m, d, mask: d.__setitem__([0, 1], m.ones(4, dtype=m.float64))),
    ("tensor rows", lambda m, d, mask: d.__setitem__(m.tensor([0, 1]), m.ones(2, 4, dtype=m.float64))),
    ("one element", lambda m, d, mask: d.__setitem__(m.tensor([0, 1]), m.ones(1, dtype=m.float64))),
    ("0-dim into rows", lambda m, d, mask: d.__setitem__(m.tensor([1]), m.tensor(2.5, dtype=m.float64))),
    ("0-dim into list", lambda m, d, mask: d.__setitem__([1], m.tensor(2.5, dtype=m.float64))),
    ("0-dim by 0-dim mask", lambda m, d, mask: d.__setitem__(m.tensor(True), m.tensor(2.5, dtype=m.float64))),
    ("columns", lambda m, d, mask: d.__setitem__((slice(None), m.tensor([0, 1])), m.ones(2, 2, dtype=m.float64))),
    ("into long", lambda m, d, mask: m.zeros(4, dtype=m.int64).__setitem__(m.tensor([0, 1]), m.tensor([1.5, 2.5]))),
]


@pytest.mark.parametrize("name,write", REFUSED, ids=[r[0] for r in REFUSED])
def test_mismatched_dtype_value_is_refused_like_torch(name, write):
    messages = []
    for mod in (torch, vt):
        d, mask = targets(mod)
        with pytest.raises(RuntimeError, match="Index put requires the source and destination dtypes match") as e:
            write(mod, d, mask)
        messages.append(str(e.value))
        np.testing.assert_array_equal(d.numpy(), np.ones((2, 4)))  # nothing was written
    assert messages[1] == messages[0]


CONVERTED = [
    ("0-dim into mask", lambda m, d, mask: d.__setitem__(mask, m.tensor(3.0, dtype=m.float64))),
    ("0-dim by row mask", lambda m, d, mask: d.__setitem__((mask[:, 0], 1), m.tensor(2.5, dtype=m.float64))),
    ("0-dim by column mask", lambda m, d, mask: d.__setitem__((0, mask[0]), m.tensor(2.5, dtype=m.float64))),
    ("0-dim after ellipsis", lambda m, d, mask: d.__setitem__((..., mask[0]), m.tensor(2.5, dtype=m.float64))),
    ("number into rows", lambda m, d, mask: d.__setitem__([0], 7)),
    ("basic row", lambda m, d, mask: d.__setitem__(0, m.arange(4, dtype=m.float64))),
    ("basic slice", lambda m, d, mask: d.__setitem__((slice(None), slice(1, 3)), m.ones(2, 2, dtype=m.int64) * 5)),
    ("same dtype mask", lambda m, d, mask: d.__setitem__(mask, m.arange(8, dtype=m.float32))),
]


@pytest.mark.parametrize("name,write", CONVERTED, ids=[c[0] for c in CONVERTED])
def test_scalars_and_basic_indexing_still_convert_like_torch(name, write):
    (td, tmask), (vd, vmask) = targets(torch), targets(vt)
    write(torch, td, tmask)
    write(vt, vd, vmask)
    assert vd.dtype == vt.float32
    np.testing.assert_array_equal(vd.numpy(), td.numpy())


def test_farthest_point_sampling_update_with_matching_dtypes():
    for mod in (torch, vt):
        xyz = mod.from_numpy(np.random.default_rng(0).standard_normal((2, 5, 3)))
        distance = mod.ones(2, 5, dtype=xyz.dtype) * 1e10
        dist = mod.sum((xyz - xyz[:, :1]) ** 2, -1)
        mask = dist < distance
        distance[mask] = dist[mask]
        np.testing.assert_allclose(distance.numpy(), dist.numpy())
        with pytest.raises(RuntimeError, match="got Float for the destination and Double for the source"):
            (mod.ones(2, 5) * 1e10)[mask] = dist[mask]
