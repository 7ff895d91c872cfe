"""vt.utils.data as torch.utils.data: the datasets (Dataset, IterableDataset, TensorDataset, ConcatDataset,
ChainDataset, StackDataset, Subset, random_split), the samplers (Sequential, Random, SubsetRandom, WeightedRandom,
Batch, Distributed) and default_collate / default_convert stacking tensors, numbers, NumPy arrays, tuples, lists and
dicts into vt tensors. DataLoader (with worker processes) and get_worker_info live in _dataloader.py, re-exported here.

Note [Shuffling]
Permutations come from the `generator` given: None draws from vt's global RNG (so vt.manual_seed makes runs repeat),
a vt.Generator from its own stream; a numpy.random.Generator uses its permutation(); a torch.Generator uses
torch.randperm with it, in torch's order of draws, so shuffled batch orders and random_split equal torch's for the
same seeded torch.Generator. As torch's, every DataLoader iterator (with or without workers; once for persistent
workers) first draws the workers' base seed from the loader's generator, then the sampler draws its permutation.
"""
import bisect
import collections.abc
import itertools
import math

import numpy as np

from .. import _functions as F
from .._generator import Generator
from ..._C import core as _core

Tensor = F.Tensor


def _is_torch_generator(g):
    return type(g).__module__.split(".")[0] == "torch" and type(g).__name__ == "Generator"


def _randperm(n, generator):
    """A permutation of range(n) as a list (Note [Shuffling])."""
    if generator is None or isinstance(generator, Generator):
        return F.rand(n, generator=generator).argsort().tolist() if n else []
    if _is_torch_generator(generator):
        import torch

        return torch.randperm(n, generator=generator).tolist()
    if isinstance(generator, np.random.Generator):
        return generator.permutation(n).tolist()
    raise TypeError(f"generator must be None, a vibetensor, numpy.random or torch Generator, got "
                    f"{type(generator).__name__}")


def _randint(n, size, generator):
    """`size` indices drawn uniformly from range(n), with replacement, as a list (from the generator's library)."""
    if generator is None or isinstance(generator, Generator):
        return F.randint(0, n, (size,), generator=generator).tolist() if size else []
    if _is_torch_generator(generator):
        import torch

        return torch.randint(high=n, size=(size,), dtype=torch.int64, generator=generator).tolist()
    if isinstance(generator, np.random.Generator):
        return generator.integers(0, n, size=size).tolist()
    raise TypeError(f"generator must be None, a vibetensor, numpy.random or torch Generator, got "
                    f"{type(generator).__name__}")


class Dataset:
    def __getitem__(self, index):
        raise NotImplementedError("Subclasses of Dataset should implement __getitem__.")

    def __add__(self, other):
        return ConcatDataset([self, other])


class IterableDataset(Dataset):
    """A stream of samples (__iter__); in DataLoader workers each worker iterates its own copy, so sharding is the
    dataset's business, through get_worker_info()."""

    def __iter__(self):
        raise NotImplementedError("Subclasses of IterableDataset should implement __iter__.")

    def __add__(self, other):
        return ChainDataset([self, other])


class TensorDataset(Dataset):
    """Samples are tuples of the tensors' rows: dataset[i] == tuple(t[i] for t in tensors)."""

    def __init__(self, *tensors):
        if not tensors or any(t.shape[:1] != tensors[0].shape[:1] for t in tensors) or tensors[0].dim() == 0:
            raise AssertionError("Size mismatch between tensors")
        self.tensors = tensors

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __len__(self):
        return self.tensors[0].shape[0]


class ConcatDataset(Dataset):
    def __init__(self, datasets):
        self.datasets = list(datasets)
        if not self.datasets:
            raise AssertionError("datasets should not be an empty iterable")
        if any(isinstance(d, IterableDataset) for d in self.datasets):
            raise AssertionError("ConcatDataset does not support IterableDataset")
        self.cumulative_sizes = list(itertools.accumulate(len(d) for d in self.datasets))

    def __len__(self):
        return self.cumulative_sizes[-1]

    def __getitem__(self, idx):
        if idx < 0:
            if -idx > len(self):
                raise ValueError("absolute value of index should not exceed dataset length")
            idx += len(self)
        d = bisect.bisect_right(self.cumulative_sizes, idx)
        return self.datasets[d][idx - (self.cumulative_sizes[d - 1] if d else 0)]


class ChainDataset(IterableDataset):
    """The IterableDatasets one after another, lazily."""

    def __init__(self, datasets):
        self.datasets = datasets

    def __iter__(self):
        for d in self.datasets:
            if not isinstance(d, IterableDataset):
                raise AssertionError("ChainDataset only supports IterableDataset")
            yield from d

    def __len__(self):
        total = 0
        for d in self.datasets:
            if not isinstance(d, IterableDataset):
                raise AssertionError("ChainDataset only supports IterableDataset")
            total += len(d)
        return total


class StackDataset(Dataset):
    """Samples zip the datasets: a tuple (positional datasets) or a dict (keyword datasets) of their items."""

    def __init__(self, *args, **kwargs):
        if args and kwargs:
            raise ValueError("Supported either ``tuple``- (via ``args``) or``dict``- (via ``kwargs``) like "
                             "input/output, but both types are given.")
        if not args and not kwargs:
            raise ValueError("At least one dataset should be passed")
        self.datasets = args if args else kwargs
        sizes = [len(d) for d in (args if args else kwargs.values())]
        if any(n != sizes[0] for n in sizes):
            raise ValueError("Size mismatch between datasets")
        self._length = sizes[0]

    def __getitem__(self, index):
        if isinstance(self.datasets, dict):
            return {k: d[index] for k, d in self.datasets.items()}
        return tuple(d[index] for d in self.datasets)

    def __len__(self):
        return self._length


class Subset(Dataset):
    def __init__(self, dataset, indices):
        self.dataset, self.indices = dataset, indices

    def __getitem__(self, idx):
        if isinstance(idx, list):
            return self.dataset[[self.indices[i] for i in idx]]
        return self.dataset[self.indices[idx]]

    def __len__(self):
        return len(self.indices)


def random_split(dataset, lengths, generator=None):
    """Disjoint Subsets of the given lengths (or fractions summing to 1, the remainder spread one by one over the
    first splits, as torch's) over one permutation (Note [Shuffling])."""
    n = len(dataset)
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        sizes = []
        for i, frac in enumerate(lengths):
            if frac < 0 or frac > 1:
                raise ValueError(f"Fraction at index {i} is not between 0 and 1")
            sizes.append(int(math.floor(n * frac)))
        for i in range(n - sum(sizes)):
            sizes[i % len(sizes)] += 1
        lengths = sizes
    if sum(lengths) != n:
        raise ValueError("Sum of input lengths does not equal the length of the input dataset!")
    perm = _randperm(n, generator)
    out, offset = [], 0
    for length in lengths:
        out.append(Subset(dataset, perm[offset:offset + length]))
        offset += length
    return out


class Sampler:
    def __init__(self, data_source=None):
        pass

    def __iter__(self):
        raise NotImplementedError


class SequentialSampler(Sampler):
    def __init__(self, data_source):
        self.data_source = data_source

    def __iter__(self):
        return iter(range(len(self.data_source)))

    def __len__(self):
        return len(self.data_source)


class RandomSampler(Sampler):
    def __init__(self, data_source, replacement=False, num_samples=None, generator=None):
        self.data_source, self.replacement, self._num_samples, self.generator = (data_source, replacement,
                                                                                 num_samples, generator)
        if not isinstance(replacement, bool):
            raise TypeError(f"replacement should be a boolean value, but got replacement={replacement}")
        if not isinstance(self.num_samples, int) or self.num_samples <= 0:
            raise ValueError(f"num_samples should be a positive integer value, but got num_samples={self.num_samples}")

    @property
    def num_samples(self):
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self):
        n = len(self.data_source)
        if self.replacement:  # in draws of 32, as torch's: a torch.Generator gives torch's indices
            for _ in range(self.num_samples // 32):
                yield from _randint(n, 32, self.generator)
            yield from _randint(n, self.num_samples % 32, self.generator)
            return
        for _ in range(self.num_samples // n):
            yield from _randperm(n, self.generator)
        yield from _randperm(n, self.generator)[:self.num_samples % n]

    def __len__(self):
        return self.num_samples


class SubsetRandomSampler(Sampler):
    """The given indices in a random order (Note [Shuffling]), a new one each epoch."""

    def __init__(self, indices, generator=None):
        self.indices, self.generator = indices, generator

    def __iter__(self):
        for i in _randperm(len(self.indices), self.generator):
            yield self.indices[i]

    def __len__(self):
        return len(self.indices)


class WeightedRandomSampler(Sampler):
    """num_samples indices drawn with probabilities proportional to weights (multinomial: vt's for None or a vt
    Generator, torch's for a torch.Generator so draws equal torch's)."""

    def __init__(self, weights, num_samples, replacement=True, generator=None):
        if not isinstance(num_samples, int) or isinstance(num_samples, bool) or num_samples <= 0:
            raise ValueError(f"num_samples should be a positive integer value, but got num_samples={num_samples}")
        if not isinstance(replacement, bool):
            raise ValueError(f"replacement should be a boolean value, but got replacement={replacement}")
        w = np.asarray(weights.tolist() if isinstance(weights, Tensor) else weights, dtype=np.float64)
        if w.ndim != 1:
            raise ValueError(f"weights should be a 1d sequence but given weights have shape {tuple(w.shape)}")
        self.weights = F.tensor(w.tolist(), dtype=_core.dtype.float64)
        self.num_samples, self.replacement, self.generator = num_samples, replacement, generator

    def __iter__(self):
        if _is_torch_generator(self.generator):
            import torch

            draws = torch.multinomial(torch.tensor(self.weights.tolist(), dtype=torch.float64), self.num_samples,
                                      self.replacement, generator=self.generator)
        else:
            from .._select_ops import multinomial

            draws = multinomial(self.weights, self.num_samples, self.replacement, generator=self.generator)
        yield from draws.tolist()

    def __len__(self):
        return self.num_samples


class DistributedSampler(Sampler):
    """This replica's share of the dataset: indices (shuffled with Generator seed + epoch, so every replica draws
    the same permutation) padded by wrapping around (or cut, drop_last) to a multiple of num_replicas, then every
    num_replicas-th from rank. vibetensor has no process group: num_replicas and rank must be given."""

    def __init__(self, dataset, num_replicas=None, rank=None, shuffle=True, seed=0, drop_last=False):
        if num_replicas is None or rank is None:
            # torch asks the default process group, which vibetensor never has; torch's error when none exists
            raise ValueError("Default process group has not been initialized, please make sure to call "
                             "init_process_group.")
        if rank >= num_replicas or rank < 0:
            raise ValueError(f"Invalid rank {rank}, rank should be in the interval [0, {num_replicas - 1}]")
        self.dataset, self.num_replicas, self.rank, self.epoch = dataset, num_replicas, rank, 0
        self.drop_last, self.shuffle, self.seed = drop_last, shuffle, seed
        n = len(dataset)
        if drop_last and n % num_replicas:
            self.num_samples = math.ceil((n - num_replicas) / num_replicas)
        else:
            self.num_samples = math.ceil(n / num_replicas)
        self.total_size = self.num_samples * num_replicas

    def __iter__(self):
        n = len(self.dataset)
        if self.shuffle:
            g = Generator()
            g.manual_seed(self.seed + self.epoch)
            indices = _randperm(n, g)
        else:
            indices = list(range(n))
        if not self.drop_last:
            pad = self.total_size - len(indices)
            while pad > 0:  # wrap around, more than once when the dataset is shorter than the padding
                indices += indices[:pad]
                pad = self.total_size - len(indices)
        indices = indices[:self.total_size]
        return iter(indices[self.rank:self.total_size:self.num_replicas])

    def __len__(self):
        return self.num_samples

    def set_epoch(self, epoch):
        self.epoch = epoch


class BatchSampler(Sampler):
    def __init__(self, sampler, batch_size, drop_last):
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
            raise ValueError(f"batch_size should be a positive integer value, but got batch_size={batch_size}")
        if not isinstance(drop_last, bool):
            raise ValueError(f"drop_last should be a boolean value, but got drop_last={drop_last}")
        self.sampler, self.batch_size, self.drop_last = sampler, batch_size, drop_last

    def __iter__(self):
        it = iter(self.sampler)
        while True:
            batch = list(itertools.islice(it, self.batch_size))
            if not batch or (self.drop_last and len(batch) < self.batch_size):
                return
            yield batch

    def __len__(self):
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else (n + self.batch_size - 1) // self.batch_size


def default_convert(data):
    """NumPy arrays and scalars to vt tensors, through containers; everything else unchanged."""
    if isinstance(data, np.ndarray) and data.dtype.kind not in "SUO":
        return F.from_numpy(np.ascontiguousarray(data))
    if isinstance(data, np.generic) and data.dtype.kind not in "SUO":
        return F.from_numpy(np.array(data))
    if isinstance(data, collections.abc.Mapping):
        return type(data)({k: default_convert(v) for k, v in data.items()})
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, (list, tuple)):
        return type(data)(default_convert(d) for d in data)
    return data


def default_collate(batch):
    """Stacks a batch (a list of samples) along a new first dimension, recursing through containers."""
    elem = batch[0]
    if isinstance(elem, Tensor):
        return F.stack(list(batch), 0)
    if isinstance(elem, (np.ndarray, np.generic)) and elem.dtype.kind not in "SUO":
        return F.stack([default_convert(b) for b in batch], 0)
    if isinstance(elem, float):
        return F.tensor(list(batch), dtype=_core.dtype.float64)
    if isinstance(elem, int):  # bool included: a bool tensor, as torch's
        return F.tensor(list(batch))
    if isinstance(elem, (str, bytes)):
        return batch  # as given: a tuple when it is a column of tuple samples, as torch's
    if isinstance(elem, np.ndarray) and elem.dtype.kind in "SUO":
        raise TypeError(f"default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; found "
                        f"{elem.dtype}")
    if isinstance(elem, collections.abc.Mapping):
        out = {k: default_collate([d[k] for d in batch]) for k in elem}
        try:
            return type(elem)(out)
        except TypeError:
            return out
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):
        return type(elem)(*(default_collate(s) for s in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        if any(len(b) != len(elem) for b in batch):
            raise RuntimeError("each element in list of batch should be of equal size")
        columns = [default_collate(s) for s in zip(*batch)]  # tuples, as torch's transpose gives
        if isinstance(elem, tuple):
            return columns  # torch gives a list for tuples
        try:
            return type(elem)(columns)
        except TypeError:
            return columns
    raise TypeError(f"default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; found "
                    f"{type(elem)}")


from ._dataloader import DataLoader, get_worker_info  # noqa: E402  (it builds on the classes above)


def _submodules():
    """torch.utils.data's submodule paths (`from torch.utils.data.distributed import DistributedSampler`,
    `from torch.utils.data.sampler import Sampler`, ...) as namespaces over the names above, registered in
    sys.modules so that import statements find them."""
    import sys
    import types

    here = globals()
    layout = {"dataset": ["Dataset", "IterableDataset", "TensorDataset", "StackDataset", "ConcatDataset",
                          "ChainDataset", "Subset", "random_split"],
              "sampler": ["BatchSampler", "RandomSampler", "Sampler", "SequentialSampler", "SubsetRandomSampler",
                          "WeightedRandomSampler"],
              "dataloader": ["DataLoader", "get_worker_info", "default_collate", "default_convert"],
              "distributed": ["DistributedSampler"]}
    for name, names in layout.items():
        mod = types.ModuleType(f"{__name__}.{name}")
        mod.__dict__.update({n: here[n] for n in names})
        mod.__all__ = list(names)
        sys.modules[mod.__name__] = mod
        here[name] = mod


_submodules()

__all__ = ["Dataset", "IterableDataset", "TensorDataset", "ConcatDataset", "ChainDataset", "StackDataset", "Subset",
           "random_split", "Sampler", "SequentialSampler", "RandomSampler", "SubsetRandomSampler",
           "WeightedRandomSampler", "BatchSampler", "DistributedSampler", "DataLoader", "get_worker_info",
           "default_collate", "default_convert"]
