"""What runs inside a DataLoader worker process: torch's seeding (Python's random and vt's global RNG get
base_seed + worker_id, NumPy's global RNG the SeedSequence([worker_id, low 32 bits, high 32 bits, 0]) state torch
uses), get_worker_info(), worker_init_fn, fetching and collating batches, and exceptions sent back to be re-raised
in the main process naming the worker. Also the Fetcher the in-process loader shares."""
import os
import pickle
import queue
import random
import sys
import traceback

import numpy as np

_worker_info = None


class WorkerInfo:
    """id, num_workers, seed and dataset (this worker's copy) of the current worker; read-only once made."""

    __initialized = False

    def __init__(self, **kwargs):
        for k, v in kwargs.items():
            setattr(self, k, v)
        self.__keys = tuple(kwargs)
        self.__initialized = True

    def __setattr__(self, key, val):
        if self.__initialized:
            raise RuntimeError(f"Cannot assign attributes to {self.__class__.__name__} objects")
        return super().__setattr__(key, val)

    def __repr__(self):
        return f"{self.__class__.__name__}({', '.join(f'{k}={getattr(self, k)}' for k in self.__keys)})"


def get_worker_info():
    """This worker's WorkerInfo inside a DataLoader worker process, None in the main process."""
    return _worker_info


class IterationEnd:
    """A worker's IterableDataset is exhausted for this epoch."""

    def __init__(self, worker_id):
        self.worker_id = worker_id


class ResumeIteration:
    """Persistent workers: start a new epoch (sent to the worker, echoed back as the acknowledgement)."""


class ExceptionWrapper:
    """An exception caught in a worker, carried to the main process as its type and formatted traceback."""

    def __init__(self, where, fatal=False):
        self.fatal = fatal  # the worker cannot go on (worker_init_fn failed): the loader shuts down
        exc_type, exc, tb = sys.exc_info()
        try:
            pickle.dumps(exc_type)
        except Exception:  # a class the main process could not unpickle (a local one): send a RuntimeError
            exc_type = RuntimeError
        self.exc_type, self.where = exc_type, where
        self.exc_msg = "".join(traceback.format_exception(exc_type, exc, tb))

    def reraise(self):
        msg = f"Caught {self.exc_type.__name__} {self.where}.\nOriginal {self.exc_msg}"
        if self.exc_type is KeyError:
            msg = _KeyErrorMessage(msg)  # KeyError's str() would repr() the message, escaping its newlines
        try:
            exc = self.exc_type(msg)
        except TypeError:  # an exception type whose constructor wants other arguments
            raise RuntimeError(msg) from None
        raise exc


class Pickled:
    """A batch pickled in the worker: the queue's own feeder thread would drop an object that fails to pickle
    without a word and leave the main process waiting for it; pickled here, the failure becomes the batch's
    error instead."""

    def __init__(self, blob):
        self.blob = blob

    def load(self):
        return pickle.loads(self.blob)


def _pickled(data, worker_id):
    try:
        return Pickled(pickle.dumps(data, pickle.HIGHEST_PROTOCOL))
    except Exception:
        err = ExceptionWrapper(f"in DataLoader worker process {worker_id} (pickling its batch for the main process)")
        return Pickled(pickle.dumps(err, pickle.HIGHEST_PROTOCOL))


class _KeyErrorMessage(str):
    def __repr__(self):
        return self


class Fetcher:
    """One batch (or sample, without auto-collation) per index: map-style datasets are indexed (through
    __getitems__ when the dataset has it), iterable ones advanced; StopIteration when the stream ends (a short last
    batch is kept unless drop_last)."""

    def __init__(self, dataset, iterable, auto_collation, collate_fn, drop_last):
        self.dataset, self.iterable, self.auto_collation = dataset, iterable, auto_collation
        self.collate_fn, self.drop_last = collate_fn, drop_last
        self.reset()

    def reset(self):
        self.it, self.ended = (iter(self.dataset) if self.iterable else None), False

    def fetch(self, index):
        if self.iterable:
            if self.ended:
                raise StopIteration
            if self.auto_collation:
                data = []
                for _ in index:
                    try:
                        data.append(next(self.it))
                    except StopIteration:
                        self.ended = True
                        break
                if not data or (self.drop_last and len(data) < len(index)):
                    raise StopIteration
            else:
                try:
                    data = next(self.it)
                except StopIteration:
                    self.ended = True
                    raise
        elif self.auto_collation:
            getitems = getattr(self.dataset, "__getitems__", None)
            data = getitems(index) if getitems is not None else [self.dataset[i] for i in index]
        else:
            data = self.dataset[index]
        return self.collate_fn(data)


def _seed(base_seed, worker_id):
    from ... import torch as vt

    seed = base_seed + worker_id
    random.seed(seed)
    vt.manual_seed(seed)
    np.random.seed(np.random.SeedSequence([worker_id, base_seed & 0xFFFFFFFF, base_seed >> 32, 0]).generate_state(4))
    return seed


def worker_loop(dataset, iterable, index_queue, data_queue, done_event, auto_collation, collate_fn, drop_last,
                base_seed, init_fn, worker_id, num_workers):
    global _worker_info
    parent = os.getppid()
    try:
        seed = _seed(base_seed, worker_id)
        _worker_info = WorkerInfo(id=worker_id, num_workers=num_workers, seed=seed, dataset=dataset)
        init_error = None
        try:
            if init_fn is not None:
                init_fn(worker_id)
            fetcher = Fetcher(dataset, iterable, auto_collation, collate_fn, drop_last)
        except Exception:
            init_error = ExceptionWrapper(f"in DataLoader worker process {worker_id}", fatal=True)
        ended = False
        while os.getppid() == parent:  # a parent that died reparents us: stop then
            try:
                r = index_queue.get(timeout=1.0)
            except queue.Empty:
                continue
            if r is None:
                break
            if isinstance(r, ResumeIteration):
                data_queue.put((None, r))
                ended = False
                if init_error is None:
                    fetcher.reset()
                continue
            if done_event.is_set() or ended:
                continue  # nothing more is wanted, or the stream already ended this epoch
            idx, index = r
            if init_error is not None:
                data, init_error = init_error, None
                ended = True
            else:
                try:
                    data = fetcher.fetch(index)
                except StopIteration:
                    data, ended = IterationEnd(worker_id), True
                except Exception:
                    data = ExceptionWrapper(f"in DataLoader worker process {worker_id}")
            data_queue.put((idx, _pickled(data, worker_id)))
            del data, index, r  # drop this batch's memory before waiting for the next task
    except KeyboardInterrupt:
        pass
    if done_event.is_set():
        data_queue.cancel_join_thread()  # the main process stopped reading: do not block exit flushing results
        data_queue.close()
