"""vt.utils.data's IterableDataset, ChainDataset, StackDataset, SubsetRandomSampler, WeightedRandomSampler and
DistributedSampler against torch.utils.data's: equal sequences where torch's draws are reproducible (a seeded
torch.Generator, or no randomness), properties where vt's own RNG is used, and the same argument errors."""
import numpy as np
import pytest
import torch
import torch.utils.data as td
import vibetensor.torch as vt
from vibetensor.torch.utils import data as vd


class Stream:
    """Mixed into both libraries' IterableDataset: yields start..stop-1."""

    def __init__(self, start, stop):
        self.start, self.stop = start, stop

    def __iter__(self):
        return iter(range(self.start, self.stop))

    def __len__(self):
        return self.stop - self.start


class VStream(Stream, vd.IterableDataset):
    pass


class TStream(Stream, td.IterableDataset):
    pass


def test_iterable_and_chain_datasets_equal_torch():
    v, t = VStream(0, 3) + VStream(10, 12), TStream(0, 3) + TStream(10, 12)
    assert isinstance(v, vd.ChainDataset) and list(v) == list(t) == [0, 1, 2, 10, 11] and len(v) == len(t) == 5
    v3 = vd.ChainDataset([VStream(0, 2), VStream(5, 6), VStream(7, 7)])
    assert list(v3) == list(td.ChainDataset([TStream(0, 2), TStream(5, 6), TStream(7, 7)])) and len(v3) == 3
    assert list(iter(v3)) == list(iter(v3))  # iterable again
    with pytest.raises(NotImplementedError):
        iter(vd.IterableDataset())
    for lib, bad in ((vd, vd.TensorDataset(vt.arange(2))), (td, td.TensorDataset(torch.arange(2)))):
        with pytest.raises(AssertionError, match="ChainDataset only supports IterableDataset"):
            list(lib.ChainDataset([bad]))
        with pytest.raises(AssertionError, match="ChainDataset only supports IterableDataset"):
            len(lib.ChainDataset([bad]))
    with pytest.raises(AssertionError, match="ConcatDataset does not support IterableDataset"):
        vd.ConcatDataset([VStream(0, 2)])
    with pytest.raises(AssertionError, match="ConcatDataset does not support IterableDataset"):
        td.ConcatDataset([TStream(0, 2)])


def test_stack_dataset_equal_torch():
    a, b = list(range(4)), [str(i) for i in range(4)]
    v, t = vd.StackDataset(a, b), td.StackDataset(a, b)
    assert len(v) == len(t) == 4 and [v[i] for i in range(4)] == [t[i] for i in range(4)] == [(0, "0"), (1, "1"),
                                                                                             (2, "2"), (3, "3")]
    v, t = vd.StackDataset(x=a, y=b), td.StackDataset(x=a, y=b)
    assert v[2] == t[2] == {"x": 2, "y": "2"}
    batches = list(vd.DataLoader(vd.StackDataset(x=vd.TensorDataset(vt.arange(4.0)), y=a), batch_size=3))
    assert batches[0]["x"][0].tolist() == [0.0, 1.0, 2.0] and batches[1]["y"].tolist() == [3]
    for lib in (vd, td):
        with pytest.raises(ValueError, match="both types are given"):
            lib.StackDataset(a, y=b)
        with pytest.raises(ValueError, match="Size mismatch between datasets"):
            lib.StackDataset(a, b[:3])
        with pytest.raises(ValueError, match="At least one dataset should be passed"):
            lib.StackDataset()


@pytest.mark.parametrize("seed", [0, 3])
def test_subset_random_sampler(seed):
    idx = [7, 3, 11, 5, 2]
    v = vd.SubsetRandomSampler(idx, generator=torch.Generator().manual_seed(seed))
    t = td.SubsetRandomSampler(idx, generator=torch.Generator().manual_seed(seed))
    assert [list(v), list(v)] == [list(t), list(t)] and len(v) == len(t) == 5
    g = vt.Generator().manual_seed(seed)
    a, b = list(vd.SubsetRandomSampler(idx, generator=g)), list(vd.SubsetRandomSampler(idx, generator=g))
    assert sorted(a) == sorted(b) == sorted(idx) and a != b  # a new order each pass over one generator
    assert list(vd.SubsetRandomSampler(idx, generator=vt.Generator().manual_seed(seed))) == a
    assert list(vd.SubsetRandomSampler([])) == []


@pytest.mark.parametrize("replacement", [True, False])
def test_weighted_random_sampler_equals_torch_with_a_torch_generator(replacement):
    w = [0.1, 2.0, 0.0, 1.5, 0.7, 3.0]
    n = 20 if replacement else 4
    v = vd.WeightedRandomSampler(w, n, replacement, generator=torch.Generator().manual_seed(9))
    t = td.WeightedRandomSampler(w, n, replacement, generator=torch.Generator().manual_seed(9))
    assert [list(v), list(v)] == [list(t), list(t)] and len(v) == len(t) == n
    vw = vd.WeightedRandomSampler(vt.tensor(w), n, replacement, generator=torch.Generator().manual_seed(9))
    assert list(vw) == list(td.WeightedRandomSampler(torch.tensor(w), n, replacement,
                                                     generator=torch.Generator().manual_seed(9)))


def test_weighted_random_sampler_with_vt_rng_properties():
    w = np.array([1.0, 0.0, 4.0, 2.0, 0.0, 3.0])
    g = vt.Generator().manual_seed(1)
    draws = list(vd.WeightedRandomSampler(w, 4000, generator=g))
    counts = np.bincount(draws, minlength=6) / 4000
    assert counts[1] == counts[4] == 0 and np.allclose(counts, w / w.sum(), atol=0.04)
    no_rep = list(vd.WeightedRandomSampler(w, 4, replacement=False, generator=g))
    assert len(set(no_rep)) == 4 and not {1, 4} & set(no_rep)
    assert list(vd.WeightedRandomSampler(w, 5, generator=vt.Generator().manual_seed(2))) == list(
        vd.WeightedRandomSampler(w, 5, generator=vt.Generator().manual_seed(2)))


@pytest.mark.parametrize("args,exc,msg", [
    (([1.0, 2.0], 0), ValueError, "num_samples should be a positive integer value"),
    (([1.0, 2.0], 2.0), ValueError, "num_samples should be a positive integer value"),
    (([1.0, 2.0], 2, 1), ValueError, "replacement should be a boolean value"),
    (([[1.0, 2.0]], 2), ValueError, r"weights should be a 1d sequence but given weights have shape \(1, 2\)"),
])
def test_weighted_random_sampler_errors_match_torch(args, exc, msg):
    for lib in (vd, td):
        with pytest.raises(exc, match=msg):
            lib.WeightedRandomSampler(*args)


@pytest.mark.parametrize("n", [0, 1, 7, 8, 10])
@pytest.mark.parametrize("replicas", [1, 3, 4])
@pytest.mark.parametrize("drop_last", [False, True])
def test_distributed_sampler_unshuffled_equals_torch(n, replicas, drop_last):
    ds = list(range(n))
    for rank in range(replicas):
        v = vd.DistributedSampler(ds, replicas, rank, shuffle=False, drop_last=drop_last)
        t = td.DistributedSampler(ds, replicas, rank, shuffle=False, drop_last=drop_last)
        assert list(v) == list(t) and len(v) == len(t) == len(list(v))
        assert (v.num_samples, v.total_size) == (t.num_samples, t.total_size)


@pytest.mark.parametrize("n,replicas,drop_last", [(10, 3, False), (10, 3, True), (12, 4, False), (2, 5, False)])
def test_distributed_sampler_shuffled_properties(n, replicas, drop_last):
    ds = list(range(n))

    def shards(epoch, seed=0):
        out = []
        for rank in range(replicas):
            s = vd.DistributedSampler(ds, num_replicas=replicas, rank=rank, seed=seed, drop_last=drop_last)
            s.set_epoch(epoch)
            out.append(list(s))
        return out
    e0 = shards(0)
    t0 = [list(td.DistributedSampler(ds, replicas, r, drop_last=drop_last)) for r in range(replicas)]
    assert [len(s) for s in e0] == [len(s) for s in t0]
    flat = [i for s in e0 for i in s]
    if drop_last:  # disjoint, all but fewer than num_replicas indices
        assert len(set(flat)) == len(flat) and n - len(flat) < replicas
    else:  # every index at least once, padding repeats some
        assert set(flat) == set(range(n)) and len(flat) == -(-n // replicas) * replicas
    assert shards(0) == e0 and (shards(1) != e0 or n < 3) and (shards(0, seed=5) != e0 or n < 3)


def test_distributed_sampler_errors_match_torch():
    for lib in (vd, td):
        with pytest.raises(ValueError, match=r"Invalid rank 3, rank should be in the interval \[0, 2\]"):
            lib.DistributedSampler(list(range(4)), num_replicas=3, rank=3)
        with pytest.raises(ValueError, match=r"Invalid rank -1"):
            lib.DistributedSampler(list(range(4)), num_replicas=3, rank=-1)
        with pytest.raises(ValueError, match="Default process group has not been initialized"):
            lib.DistributedSampler(list(range(4)))
        with pytest.raises(ValueError, match="Default process group has not been initialized"):
            lib.DistributedSampler(list(range(4)), num_replicas=2)


def test_samplers_drive_the_loader_as_torch():
    ds = [float(i) for i in range(9)]
    for make in (lambda lib: lib.SubsetRandomSampler([1, 4, 6, 8], generator=torch.Generator().manual_seed(2)),
                 lambda lib: lib.WeightedRandomSampler([1.0] * 9, 6, generator=torch.Generator().manual_seed(2)),
                 lambda lib: lib.DistributedSampler(ds, 2, 1, shuffle=False)):
        got = [b.tolist() for b in vd.DataLoader(ds, batch_size=2, sampler=make(vd))]
        want = [b.tolist() for b in td.DataLoader(ds, batch_size=2, sampler=make(td))]
        assert got == want


def test_public_names_match_torch():
    import vibetensor.torch.utils.data as public

    names = ["IterableDataset", "ChainDataset", "StackDataset", "SubsetRandomSampler", "WeightedRandomSampler",
             "DistributedSampler", "get_worker_info", "DataLoader"]
    assert all(getattr(public, n) is getattr(vd, n) and hasattr(td, n) for n in names)
    assert vt.utils.data.get_worker_info() is None
