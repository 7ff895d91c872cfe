"""vt.utils.data.DataLoader with worker processes against torch.utils.data.DataLoader on the same datasets: batch
order and contents (seeded torch.Generator, so sampler orders and worker base seeds are torch's), worker seeding
(random, NumPy, vt; get_worker_info, worker_init_fn), IterableDataset sharding, prefetch_factor,
persistent_workers, timeout, errors re-raised naming the worker, pin_memory on a machine without accelerator, and
no worker process left behind by abandoned iterators. Two workers, tiny datasets: fast on a 2-core machine."""
import gc
import multiprocessing
import os
import random
import time

import numpy as np
import pytest
import torch
import torch.utils.data as td
import vibetensor.torch as vt
from vibetensor.torch.utils import data as vd
from vibetensor.torch.utils._data_worker import WorkerInfo


def as_list(x):
    """Batches of vt or torch tensors (nested in lists/tuples/dicts) as plain Python values."""
    if isinstance(x, (vt.Tensor, torch.Tensor)):
        return x.tolist()
    if isinstance(x, dict):
        return {k: as_list(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [as_list(v) for v in x]
    return x


def vt_workers():
    """Live worker processes of vt's loaders (torch's, which may linger until collected, are not counted)."""
    return [p for p in multiprocessing.active_children() if p.name.startswith("vt-DataLoader-worker-")]


def no_children_left():
    gc.collect()
    deadline = time.time() + 5
    while vt_workers() and time.time() < deadline:
        time.sleep(0.05)
    return vt_workers() == []


class Squares:
    """Map-style, the same class for both libraries: sample i is (i, i * i as float)."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return i, float(i * i)


class SeedProbe:
    """Each sample reports which worker made it and what its seeded RNGs drew."""

    def __init__(self, n, info):
        self.n, self.info = n, info

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        wi = self.info()
        return [i, wi.id, wi.num_workers, wi.seed % 2 ** 31, int(random.random() * 2 ** 30),
                int(np.random.randint(2 ** 30)), int(wi.dataset is self), os.getpid()]


def shard_cls(base, info):
    class Shards(base):
        """0..n-1 split over the workers by get_worker_info (every num_workers-th from the worker's id)."""

        def __init__(self, n):
            self.n = n

        def __iter__(self):
            wi = info()
            return iter(range(self.n) if wi is None else range(wi.id, self.n, wi.num_workers))

        def __len__(self):
            return self.n
    return Shards


VShards, TShards = shard_cls(vd.IterableDataset, vd.get_worker_info), shard_cls(td.IterableDataset,
                                                                                td.get_worker_info)


@pytest.mark.parametrize("kw", [dict(batch_size=3), dict(batch_size=3, shuffle=True, drop_last=True),
                                dict(batch_size=4, shuffle=True), dict(batch_size=None, shuffle=True),
                                dict(batch_size=2, prefetch_factor=1), dict(batch_size=1, prefetch_factor=4)])
def test_map_style_batches_equal_torch(kw):
    ds = Squares(11)
    got = as_list(list(vd.DataLoader(ds, num_workers=2, generator=torch.Generator().manual_seed(3), **kw)))
    want = as_list(list(td.DataLoader(ds, num_workers=2, generator=torch.Generator().manual_seed(3), **kw)))
    assert got == want
    assert len(vd.DataLoader(ds, num_workers=2, **kw)) == len(td.DataLoader(ds, num_workers=2, **kw))
    assert no_children_left()


def test_batches_are_vt_tensors_in_order_and_every_index_once():
    ds = vd.TensorDataset(vt.arange(13).float(), vt.arange(13))
    batches = list(vd.DataLoader(ds, batch_size=2, shuffle=True, num_workers=2,
                                 generator=vt.Generator().manual_seed(7)))
    assert all(isinstance(b[0], vt.Tensor) and b[0].dtype == vt.float32 for b in batches)
    seen = [i for b in batches for i in b[1].tolist()]
    assert sorted(seen) == list(range(13))
    # in-order: workers change nothing about which batch comes when
    inproc = list(vd.DataLoader(ds, batch_size=2, shuffle=True, generator=vt.Generator().manual_seed(7)))
    assert [b[1].tolist() for b in inproc] == [b[1].tolist() for b in batches]


def test_worker_seeds_equal_torch():
    """A seeded torch.Generator gives the same base_seed: worker seeds, random and np.random draws equal torch's."""
    def run(lib, info):
        ds = SeedProbe(6, info)
        rows = as_list(list(lib.DataLoader(ds, batch_size=None, num_workers=2,
                                           generator=torch.Generator().manual_seed(11))))
        return [r[:7] for r in rows], {r[1]: r[7] for r in rows}
    got, pids = run(vd, vd.get_worker_info)
    want, _ = run(td, td.get_worker_info)
    assert got == want
    assert [r[1] for r in got] == [0, 1, 0, 1, 0, 1] and all(r[2] == 2 and r[6] == 1 for r in got)
    assert got[0][3] != got[1][3] and os.getpid() not in pids.values() and len(set(pids.values())) == 2


def test_vt_seeded_workers_are_deterministic_and_distinct():
    class VtDraws(vd.Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return vt.rand(3), vd.get_worker_info().seed

    def run(seed):
        return as_list(list(vd.DataLoader(VtDraws(), batch_size=None, num_workers=2,
                                          generator=vt.Generator().manual_seed(seed))))
    a, b, c = run(1), run(1), run(2)
    assert a == b and a != c
    assert a[1][1] == a[0][1] + 1 and a[0][0] != a[1][0]  # seeds base + id; the two workers draw differently


def _record_init(worker_id):
    wi = vd.get_worker_info()
    assert wi.id == worker_id
    random.seed(1000 + worker_id)  # worker_init_fn runs after torch-style seeding: it may reseed


def test_worker_init_fn_and_get_worker_info():
    assert vd.get_worker_info() is None
    ds = SeedProbe(4, vd.get_worker_info)
    rows = as_list(list(vd.DataLoader(ds, batch_size=None, num_workers=2, worker_init_fn=_record_init)))
    random.seed(1000)
    first = int(random.random() * 2 ** 30)
    assert rows[0][4] == first and rows[0][1] == 0
    info = WorkerInfo(id=0, num_workers=1, seed=3, dataset=None)
    with pytest.raises(RuntimeError, match="Cannot assign attributes to WorkerInfo"):
        info.id = 1
    assert "id=0" in repr(info) and vd.get_worker_info() is None


@pytest.mark.parametrize("kw", [dict(batch_size=2), dict(batch_size=2, drop_last=True), dict(batch_size=None),
                                dict(batch_size=3, prefetch_factor=1)])
@pytest.mark.parametrize("num_workers", [0, 2])
def test_iterable_dataset_sharding_equal_torch(kw, num_workers):
    if num_workers == 0 and "prefetch_factor" in kw:
        return  # an error then, tested below
    got = as_list(list(vd.DataLoader(VShards(9), num_workers=num_workers, **kw)))
    want = as_list(list(td.DataLoader(TShards(9), num_workers=num_workers, **kw)))
    assert got == want
    n = dict(num_workers=num_workers)
    assert len(vd.DataLoader(VShards(9), **kw, **n)) == len(td.DataLoader(TShards(9), **kw, **n))


def test_uneven_iterable_shards_keep_going_after_one_worker_ends():
    class Uneven(vd.IterableDataset):
        def __iter__(self):
            return iter(range(1) if vd.get_worker_info().id == 0 else range(100, 105))

    class TUneven(td.IterableDataset):
        def __iter__(self):
            return iter(range(1) if td.get_worker_info().id == 0 else range(100, 105))
    got = as_list(list(vd.DataLoader(Uneven(), batch_size=2, num_workers=2)))
    assert got == as_list(list(td.DataLoader(TUneven(), batch_size=2, num_workers=2)))
    assert no_children_left()


def test_persistent_workers_reuse_processes_and_match_torch_orders():
    ds = SeedProbe(5, vd.get_worker_info)
    loader = vd.DataLoader(ds, batch_size=2, shuffle=True, num_workers=2, persistent_workers=True,
                           generator=torch.Generator().manual_seed(5))
    tloader = td.DataLoader(SeedProbe(5, td.get_worker_info), batch_size=2, shuffle=True, num_workers=2,
                            persistent_workers=True, generator=torch.Generator().manual_seed(5))
    epochs = [as_list(list(loader)) for _ in range(3)]
    tepochs = [as_list(list(tloader)) for _ in range(3)]
    assert [[b[0] for b in e] for e in epochs] == [[b[0] for b in e] for e in tepochs]
    pids = {p for e in epochs for b in e for p in b[7]}
    del tloader
    assert len(pids) == 2 and pids <= {p.pid for p in vt_workers()}
    it = iter(loader)
    next(it)  # abandon an epoch halfway: the next one starts clean
    assert sorted(i for b in list(loader) for i in b[0]) == list(range(5))
    del loader, it
    assert no_children_left()


def test_persistent_iterable_workers_restart_their_streams():
    loader = vd.DataLoader(VShards(5), batch_size=2, num_workers=2, persistent_workers=True)
    first, second = as_list(list(loader)), as_list(list(loader))
    assert first == second == as_list(list(td.DataLoader(TShards(5), batch_size=2, num_workers=2)))
    del loader
    assert no_children_left()


def test_abandoned_iteration_leaves_no_process():
    ds = Squares(50)
    it = iter(vd.DataLoader(ds, batch_size=2, num_workers=2))
    next(it)
    next(it)
    assert len(vt_workers()) == 2
    del it
    assert no_children_left()
    for _ in vd.DataLoader(ds, batch_size=2, num_workers=2):
        break
    assert no_children_left()


class Failing:
    def __init__(self, exc):
        self.exc = exc

    def __len__(self):
        return 6

    def __getitem__(self, i):
        if i == 3:
            raise self.exc
        return i


def test_worker_errors_reraised_as_torch():
    def raised(lib, exc):
        with pytest.raises(type(exc)) as info:
            list(lib.DataLoader(Failing(exc), batch_size=1, num_workers=2))
        return str(info.value)
    # torch once (its workers take seconds to shut down after an error), vt for more exception types
    want = raised(td, ValueError("bad sample 3"))
    got = raised(vd, ValueError("bad sample 3"))
    assert got.splitlines()[0] == want.splitlines()[0] == "Caught ValueError in DataLoader worker process 1."
    assert got.splitlines()[-1] == want.splitlines()[-1] == "ValueError: bad sample 3"
    assert "Traceback" in got
    got = raised(vd, KeyError("missing"))
    assert got.splitlines()[0] == "Caught KeyError in DataLoader worker process 1." and "'missing'" in got
    assert no_children_left()


def test_iteration_goes_on_after_a_worker_error_as_torch():
    def run(lib):
        out, it = [], iter(lib.DataLoader(Failing(ValueError("x")), batch_size=1, num_workers=2))
        while True:
            try:
                out.append(as_list(next(it)))
            except ValueError:
                out.append("error")
            except StopIteration:
                return out
    assert run(vd) == run(td) == [[0], [1], [2], "error", [4], [5]]
    assert no_children_left()


def _bad_init(worker_id):
    raise ZeroDivisionError(f"init {worker_id}")


def test_worker_init_fn_error_reraised():
    with pytest.raises(ZeroDivisionError, match="Caught ZeroDivisionError in DataLoader worker process 0"):
        list(vd.DataLoader(Squares(4), num_workers=2, worker_init_fn=_bad_init))
    assert no_children_left()


class Slow(Squares):
    def __getitem__(self, i):
        time.sleep(3)
        return i


def test_timeout_message_equals_torch():
    msgs = []
    for lib in (vd, td):
        with pytest.raises(RuntimeError) as info:
            list(lib.DataLoader(Slow(4), num_workers=2, timeout=0.2))
        msgs.append(str(info.value))
    assert no_children_left()
    assert msgs[0] == msgs[1] == "DataLoader timed out after 0.2 seconds"


class Dying(Squares):
    def __getitem__(self, i):
        if i == 1:
            os._exit(3)
        return i


def test_dead_worker_is_reported():
    with pytest.raises(RuntimeError, match=r"DataLoader worker \(pid\(s\) \d+\) exited unexpectedly"):
        list(vd.DataLoader(Dying(4), num_workers=2))
    assert no_children_left()


def test_pin_memory_without_accelerator_warns_as_torch(monkeypatch):
    import vibetensor.cuda

    # a machine without an accelerator, also where there is one (the GPU test machine): what each DataLoader asks
    monkeypatch.setattr(vibetensor.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.accelerator, "is_available", lambda: False)
    for lib in (vd, td):
        with pytest.warns(UserWarning, match="'pin_memory' argument is set as true but no accelerator is found"):
            batches = as_list(list(lib.DataLoader(Squares(4), batch_size=2, pin_memory=True, num_workers=2)))
        assert batches == [[[0, 1], [0.0, 1.0]], [[2, 3], [4.0, 9.0]]]
    with pytest.warns(UserWarning, match="no accelerator"):
        list(vd.DataLoader(Squares(2), pin_memory=True))


def test_pin_memory_with_an_accelerator_says_it_does_not_pin(monkeypatch):
    import vibetensor.cuda

    monkeypatch.setattr(vibetensor.cuda, "is_available", lambda: True)
    with pytest.warns(UserWarning, match="vibetensor's DataLoader does not pin memory"):
        assert as_list(list(vd.DataLoader(Squares(2), pin_memory=True))) == [[[0], [0.0]], [[1], [1.0]]]


class Batched(Squares):
    """__getitems__ fetches a whole batch at once (the fetcher prefers it over __getitem__, as torch's)."""

    def __getitems__(self, indices):
        return [(i, -1.0) for i in indices]


def test_getitems_used_for_batches():
    for nw in (0, 2):
        got = as_list(list(vd.DataLoader(Batched(5), batch_size=2, num_workers=nw)))
        assert got == as_list(list(td.DataLoader(Batched(5), batch_size=2, num_workers=nw)))
        assert got[0] == [[0, 1], [-1.0, -1.0]]


class SlowFirst(Squares):
    def __getitem__(self, i):
        if i == 0:
            time.sleep(1.0)
        return i


def test_in_order_false_yields_what_is_ready_first():
    for lib in (vd, td):
        got = [b.item() for b in lib.DataLoader(SlowFirst(6), num_workers=2, in_order=False)]
        assert sorted(got) == list(range(6)) and got[0] != 0
        assert [b.item() for b in lib.DataLoader(SlowFirst(4), num_workers=2)] == [0, 1, 2, 3]
    assert no_children_left()


def _pairs(batch):
    return {"x": vd.default_collate([b[0] for b in batch]), "n": len(batch)}


def test_collate_fn_and_dict_samples_in_workers():
    got = list(vd.DataLoader(Squares(5), batch_size=2, num_workers=2, collate_fn=_pairs))
    assert [(g["x"].tolist(), g["n"]) for g in got] == [([0, 1], 2), ([2, 3], 2), ([4], 1)]
    samples = [{"a": np.float32(i), "b": [i, i + 1]} for i in range(4)]
    got = as_list(list(vd.DataLoader(samples, batch_size=3, num_workers=2)))
    assert got == as_list(list(td.DataLoader(samples, batch_size=3, num_workers=2)))


def test_spawn_context_works_with_picklable_dataset():
    loader = vd.DataLoader(vd.TensorDataset(vt.arange(4)), batch_size=2, num_workers=2,
                           multiprocessing_context="spawn")
    assert [b[0].tolist() for b in loader] == [[0, 1], [2, 3]]


@pytest.mark.parametrize("kw,exc,msg", [
    (dict(prefetch_factor=2), ValueError, "prefetch_factor option could only be specified in multiprocessing"),
    (dict(persistent_workers=True), ValueError, "persistent_workers option needs num_workers > 0"),
    (dict(multiprocessing_context="fork"), ValueError, "multiprocessing_context can only be used"),
    (dict(num_workers=1, multiprocessing_context="nope"), ValueError, "should specify a valid start method"),
    (dict(num_workers=1, multiprocessing_context=3), TypeError, "should be a valid context object"),
    (dict(timeout=-1), ValueError, "timeout option should be non-negative"),
])
def test_worker_argument_errors_match_torch(kw, exc, msg):
    for lib in (vd, td):
        with pytest.raises(exc, match=msg):
            lib.DataLoader(list(range(4)), **kw)


@pytest.mark.parametrize("kw,msg", [
    (dict(shuffle=True), "expected unspecified shuffle option, but got shuffle=True"),
    (dict(sampler=[0]), "expected unspecified sampler option"),
    (dict(batch_sampler=[[0]]), "expected unspecified batch_sampler option"),
])
def test_iterable_dataset_argument_errors_match_torch(kw, msg):
    for lib, ds in ((vd, VShards(3)), (td, TShards(3))):
        with pytest.raises(ValueError, match=msg):
            lib.DataLoader(ds, **kw)


def test_iterable_dataset_without_len():
    class NoLen(vd.IterableDataset):
        def __iter__(self):
            return iter(range(3))
    loader = vd.DataLoader(NoLen(), batch_size=2)
    assert as_list(list(loader)) == [[0, 1], [2]]
    with pytest.raises(TypeError):
        len(loader)


class _Unpicklable:
    def __reduce__(self):
        raise TypeError("this batch cannot be pickled")


class _UnpicklableDataset(vt.utils.data.Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        return _Unpicklable() if i == 2 else i


def test_unpicklable_batch_raises_instead_of_hanging():
    """The worker pickles each batch itself: a batch that cannot be pickled comes back as its error, naming the
    worker, instead of being dropped by the queue's feeder thread while the main process waits for it."""
    loader = vt.utils.data.DataLoader(_UnpicklableDataset(), batch_size=None, num_workers=2,
                                      collate_fn=lambda x: x)
    it = iter(loader)
    assert [next(it), next(it)] == [0, 1]
    with pytest.raises(TypeError, match="cannot be pickled"):
        next(it)
