"""vt.utils.data's submodule paths against torch.utils.data's: dataset, sampler, dataloader and distributed hold the
same names (the same objects as vt.utils.data's), import statements find them, and the DistributedSampler reached
through them splits a dataset as torch's does (without a process group both need num_replicas and rank)."""
import importlib

import pytest
import torch
import torch.utils.data as tdata
import vibetensor.torch as vt
import vibetensor.torch.utils.data as vdata

SUBMODULES = ["dataset", "sampler", "dataloader", "distributed"]


@pytest.mark.parametrize("name", SUBMODULES)
def test_each_submodule_holds_torchs_names(name):
    tmod = importlib.import_module(f"torch.utils.data.{name}")
    vmod = importlib.import_module(f"vibetensor.torch.utils.data.{name}")
    assert getattr(vdata, name) is vmod
    assert sorted(vmod.__all__) == sorted(tmod.__all__)
    for n in tmod.__all__:
        assert getattr(vmod, n) is getattr(vdata, n), n


def test_from_imports_as_training_scripts_write_them():
    from vibetensor.torch.utils.data.dataloader import default_collate
    from vibetensor.torch.utils.data.dataset import Dataset
    from vibetensor.torch.utils.data.distributed import DistributedSampler
    from vibetensor.torch.utils.data.sampler import BatchSampler, SequentialSampler

    assert DistributedSampler is vt.utils.data.DistributedSampler and issubclass(vdata.TensorDataset, Dataset)
    assert list(BatchSampler(SequentialSampler(range(5)), 2, drop_last=True)) == [[0, 1], [2, 3]]
    assert default_collate([vt.tensor(1), vt.tensor(2)]).tolist() == [1, 2]


@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize("n,replicas", [(10, 2), (10, 3), (2, 4)])
def test_distributed_sampler_splits_like_torchs(n, replicas, drop_last):
    from vibetensor.torch.utils.data.distributed import DistributedSampler as V
    from torch.utils.data.distributed import DistributedSampler as T

    for rank in range(replicas):
        t = T(list(range(n)), num_replicas=replicas, rank=rank, shuffle=False, drop_last=drop_last)
        v = V(list(range(n)), num_replicas=replicas, rank=rank, shuffle=False, drop_last=drop_last)
        assert list(v) == list(t) and len(v) == len(t)
    for S, L in ((T, torch), (V, vt)):
        with pytest.raises(ValueError, match="Default process group has not been initialized"):
            S(list(range(n)))
        loader = L.utils.data.DataLoader(list(range(n)), batch_size=2,
                                         sampler=S(list(range(n)), num_replicas=replicas, rank=0, shuffle=False))
        assert sum(len(b) for b in loader) == len(S(list(range(n)), num_replicas=replicas, rank=0))
