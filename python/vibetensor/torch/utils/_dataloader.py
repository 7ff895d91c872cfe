"""vt.utils.data.DataLoader and get_worker_info, as torch's: batches from a map-style or iterable dataset, loaded
in the calling process (num_workers=0) or in worker processes (num_workers > 0; see _data_worker.py) with torch's
prefetch_factor, persistent_workers, timeout, worker_init_fn, seeding and error re-raising.

Note [Worker protocol]
Each worker has its own index queue; all answer on one data queue. The main process hands out task ids in order,
round-robin over the workers still active, keeping at most prefetch_factor * num_workers tasks outstanding, and
buffers results that come early so batches are yielded in sampler order (in_order=False: as they come). A worker
whose IterableDataset is exhausted answers _IterationEnd; its outstanding tasks are skipped. Shutdown sets
done_event, sends None to every index queue, joins each worker briefly and terminates stragglers, so an abandoned
iterator leaves no process.
"""
import itertools
import multiprocessing
import queue
import warnings

import numpy as np

from . import _data_worker as W
from . import data as D
from .. import _functions as F
from .._generator import Generator

get_worker_info = W.get_worker_info
_MP_STATUS_CHECK_INTERVAL = 1.0  # seconds between liveness checks of the workers while waiting for data


class _InfiniteConstantSampler(D.Sampler):
    """Index sampler of an IterableDataset: None forever, the dataset's iterator decides when to stop."""

    def __iter__(self):
        while True:
            yield None


def _base_seed(generator):
    """The int64 seed of an epoch's workers, drawn (as torch does, once per iterator) from the loader's generator."""
    if D._is_torch_generator(generator):
        import torch

        return int(torch.empty((), dtype=torch.int64).random_(generator=generator).item())
    if isinstance(generator, np.random.Generator):
        return int(generator.integers(0, 2 ** 63 - 1))
    if generator is not None and not isinstance(generator, Generator):
        raise TypeError(f"generator must be None, a vibetensor, numpy.random or torch Generator, got "
                        f"{type(generator).__name__}")
    return int(F.empty((), dtype=F._core.dtype.int64).random_(0, 2 ** 63 - 1, generator=generator).item())


def _warn_pin_memory(loader):
    if not loader.pin_memory:
        return
    from ... import cuda

    # with no accelerator torch ignores pin_memory with this warning; with one vibetensor still does not pin
    if not cuda.is_available():
        warnings.warn("'pin_memory' argument is set as true but no accelerator is found, then device pinned memory "
                      "won't be used.", stacklevel=3)
    else:
        warnings.warn("'pin_memory' argument is set as true but vibetensor's DataLoader does not pin memory: "
                      "batches stay in pageable host memory.", stacklevel=3)


class DataLoader:
    def __init__(self, dataset, batch_size=1, shuffle=None, sampler=None, batch_sampler=None, num_workers=0,
                 collate_fn=None, pin_memory=False, drop_last=False, timeout=0, worker_init_fn=None,
                 multiprocessing_context=None, generator=None, *, prefetch_factor=None, persistent_workers=False,
                 pin_memory_device="", in_order=True):
        if not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError("num_workers option should be non-negative; use num_workers=0 to disable "
                             "multiprocessing.")
        if timeout < 0:
            raise ValueError("timeout option should be non-negative")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError("prefetch_factor option could only be specified in multiprocessing.let num_workers > 0 "
                             "to enable multiprocessing, otherwise set prefetch_factor to None.")
        if num_workers > 0 and prefetch_factor is None:
            prefetch_factor = 2
        elif prefetch_factor is not None and prefetch_factor < 0:
            raise ValueError("prefetch_factor option should be non-negative")
        if persistent_workers and num_workers == 0:
            raise ValueError("persistent_workers option needs num_workers > 0")
        self._iterable = isinstance(dataset, D.IterableDataset)
        if self._iterable:
            if shuffle not in {False, None}:
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified shuffle option, but got "
                                 f"shuffle={shuffle}")
            if sampler is not None:
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified sampler option, but got "
                                 f"sampler={sampler}")
            if batch_sampler is not None:
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified batch_sampler option, but "
                                 f"got batch_sampler={batch_sampler}")
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("batch_sampler option is mutually exclusive with batch_size, shuffle, sampler, "
                                 "and drop_last")
            batch_size, drop_last = None, False
        elif batch_size is None and drop_last:
            raise ValueError("batch_size=None option disables auto-batching and is mutually exclusive with "
                             "drop_last")
        if sampler is None:
            if self._iterable:
                sampler = _InfiniteConstantSampler()
            else:
                sampler = D.RandomSampler(dataset, generator=generator) if shuffle else D.SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None:
            batch_sampler = D.BatchSampler(sampler, batch_size, drop_last)
        self.dataset, self.batch_size, self.drop_last, self.num_workers = dataset, batch_size, drop_last, num_workers
        self.sampler, self.batch_sampler, self.generator = sampler, batch_sampler, generator
        self.pin_memory, self.pin_memory_device, self.timeout = pin_memory, pin_memory_device, timeout
        self.worker_init_fn, self.in_order = worker_init_fn, in_order
        self.prefetch_factor, self.persistent_workers = prefetch_factor, persistent_workers
        self.collate_fn = collate_fn if collate_fn is not None else (
            D.default_collate if batch_sampler is not None else D.default_convert)
        self.multiprocessing_context = multiprocessing_context
        self._iterator = None

    @property
    def multiprocessing_context(self):
        return self._mp_context

    @multiprocessing_context.setter
    def multiprocessing_context(self, ctx):
        if ctx is not None:
            if self.num_workers == 0:
                raise ValueError(f"multiprocessing_context can only be used with multi-process loading "
                                 f"(num_workers > 0), but got num_workers={self.num_workers}")
            if isinstance(ctx, str):
                valid = multiprocessing.get_all_start_methods()
                if ctx not in valid:
                    raise ValueError(f"multiprocessing_context option should specify a valid start method in "
                                     f"{valid!r}, but got multiprocessing_context={ctx!r}")
                ctx = multiprocessing.get_context(ctx)
            elif not isinstance(ctx, multiprocessing.context.BaseContext):
                raise TypeError(f"multiprocessing_context option should be a valid context object or a string "
                                f"specifying the start method, but got multiprocessing_context={ctx}")
        self._mp_context = ctx

    @property
    def _index_sampler(self):
        return self.batch_sampler if self.batch_sampler is not None else self.sampler

    def __iter__(self):
        if self.num_workers == 0:
            return self._single_process_iter()
        if self.persistent_workers:
            if self._iterator is None or self._iterator._shutdown:
                self._iterator = _MultiProcessIter(self)
            else:
                self._iterator._reset(first=False)
            return self._iterator
        return _MultiProcessIter(self)

    def _single_process_iter(self):
        _warn_pin_memory(self)
        _base_seed(self.generator)  # drawn though unused, as torch does, so the generator's stream matches torch's
        fetcher = W.Fetcher(self.dataset, self._iterable, self.batch_sampler is not None, self.collate_fn,
                            self.drop_last)

        def batches():
            for index in self._index_sampler:
                try:
                    data = fetcher.fetch(index)
                except StopIteration:
                    return
                yield data
        return _SingleProcessIter(batches(), self)

    def __len__(self):
        if self._iterable:
            n = len(self.dataset)  # TypeError when the stream has no length, as torch
            if self.batch_size is not None:
                n = n // self.batch_size if self.drop_last else -(-n // self.batch_size)
            return n
        return len(self._index_sampler)


class _SingleProcessIter:
    """The batches of a num_workers=0 loader: an iterator with the loader's length, as torch's."""

    def __init__(self, batches, loader):
        self._batches, self._loader = batches, loader

    def __iter__(self):
        return self

    def __next__(self):
        return next(self._batches)

    def __len__(self):
        return len(self._loader)


class _MultiProcessIter:
    """Iterator of a DataLoader with worker processes (Note [Worker protocol])."""

    def __init__(self, loader):
        self._loader, self._shutdown = loader, False
        self._num_workers, self._prefetch = loader.num_workers, loader.prefetch_factor
        self._timeout, self._persistent = loader.timeout, loader.persistent_workers
        self._in_order = loader.in_order
        _warn_pin_memory(loader)
        seed = _base_seed(loader.generator)
        ctx = loader.multiprocessing_context or multiprocessing.get_context()
        self._done = ctx.Event()
        self._data_queue = ctx.Queue()
        self._index_queues, self._workers = [], []
        for wid in range(self._num_workers):
            iq = ctx.Queue()
            iq.cancel_join_thread()  # never block the main process's exit on unsent indices
            w = ctx.Process(target=W.worker_loop, name=f"vt-DataLoader-worker-{wid}", daemon=True, args=(
                loader.dataset, loader._iterable, iq, self._data_queue, self._done,
                loader.batch_sampler is not None, loader.collate_fn, loader.drop_last, seed,
                loader.worker_init_fn, wid, self._num_workers))
            w.start()
            self._index_queues.append(iq)
            self._workers.append(w)
        self._reset(first=True)

    def _reset(self, first):
        self._sampler_iter = iter(self._loader._index_sampler)
        self._send_idx = self._rcvd_idx = self._outstanding = 0
        self._tasks = {}  # task id -> [worker id] or [worker id, result]
        self._active = [True] * self._num_workers
        self._cycle = itertools.cycle(range(self._num_workers))
        if not first:  # persistent workers: start a new epoch, dropping what the last one left in flight
            for iq in self._index_queues:
                iq.put(W.ResumeIteration())
            acks = 0
            while acks < self._num_workers:
                if isinstance(self._get_data()[1], W.ResumeIteration):
                    acks += 1
        for _ in range(self._prefetch * self._num_workers):
            self._put_index()

    def _put_index(self):
        if self._outstanding >= self._prefetch * self._num_workers or not any(self._active):
            return
        try:
            index = next(self._sampler_iter)
        except StopIteration:
            return
        for _ in range(self._num_workers):
            wid = next(self._cycle)
            if self._active[wid]:
                break
        self._index_queues[wid].put((self._send_idx, index))
        self._tasks[self._send_idx] = [wid]
        self._outstanding += 1
        self._send_idx += 1

    def _get_data(self):
        idx, data = self._get_raw()
        return idx, data.load() if isinstance(data, W.Pickled) else data

    def _get_raw(self):
        if self._timeout > 0:
            try:
                return self._data_queue.get(timeout=self._timeout)
            except queue.Empty:
                dead = [w.pid for w in self._workers if not w.is_alive()]
                self._shutdown_workers()
                if dead:
                    raise RuntimeError(f"DataLoader worker (pid(s) {', '.join(map(str, dead))}) exited "
                                       f"unexpectedly") from None
                raise RuntimeError(f"DataLoader timed out after {self._timeout} seconds") from None
        while True:
            try:
                return self._data_queue.get(timeout=_MP_STATUS_CHECK_INTERVAL)
            except queue.Empty:
                dead = [w.pid for i, w in enumerate(self._workers) if self._active[i] and not w.is_alive()]
                if dead:
                    self._shutdown_workers()
                    raise RuntimeError(f"DataLoader worker (pid(s) {', '.join(map(str, dead))}) exited "
                                       f"unexpectedly") from None

    def __iter__(self):
        return self

    def __next__(self):
        while True:
            # skip the tasks of workers whose stream ended: they will never be answered
            # (and, in_order=False, tasks already answered out of order)
            while self._rcvd_idx < self._send_idx:
                task = self._tasks.get(self._rcvd_idx)
                if task is not None and (len(task) == 2 or self._active[task[0]]):
                    break
                self._tasks.pop(self._rcvd_idx, None)
                self._rcvd_idx += 1
            else:
                if not self._persistent:
                    self._shutdown_workers()
                raise StopIteration
            task = self._tasks[self._rcvd_idx]
            if len(task) == 2:
                del self._tasks[self._rcvd_idx]
                return self._process(task[1])
            if self._shutdown:
                raise StopIteration
            idx, data = self._get_data()
            self._outstanding -= 1
            if isinstance(data, W.IterationEnd):
                self._active[data.worker_id] = False
                if not self._persistent:  # torch ends that worker now; persistent ones wait for the next epoch
                    self._index_queues[data.worker_id].put(None)
                self._put_index()
                continue
            if idx != self._rcvd_idx:
                if not self._in_order:  # torch's in_order=False: whatever comes first
                    del self._tasks[idx]
                    self._put_index()
                    return self._raise_or_return(data)
                self._tasks[idx].append(data)
                continue
            del self._tasks[idx]
            return self._process(data)

    def _process(self, data):
        self._rcvd_idx += 1
        self._put_index()
        return self._raise_or_return(data)

    def _raise_or_return(self, data):
        if isinstance(data, W.ExceptionWrapper):
            if data.fatal:
                self._shutdown_workers()
            data.reraise()  # as torch, iteration may go on after a failed batch
        return data

    def __len__(self):
        return len(self._loader)

    def _shutdown_workers(self):
        if self._shutdown or not hasattr(self, "_workers"):
            return
        self._shutdown = True
        self._done.set()
        for iq in self._index_queues:
            try:
                iq.put(None)
            except (OSError, ValueError):
                pass
        for w in self._workers:
            w.join(timeout=_MP_STATUS_CHECK_INTERVAL)
        for w in self._workers:
            if w.is_alive():
                w.terminate()
                w.join()
        for q in self._index_queues + [self._data_queue]:
            q.cancel_join_thread()
            q.close()

    def __del__(self):
        self._shutdown_workers()
