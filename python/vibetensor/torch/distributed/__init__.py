"""vt.distributed: the part of torch.distributed that single-process model code touches. vibetensor has no
process-group backend (several GPUs go through vibetensor.fabric), so this is torch.distributed as a build without
it reports itself - is_available() is False - plus torch's answers before init_process_group for the code that
asks anyway: is_initialized() is False, and the collectives, get_rank, get_world_size and get_backend raise torch's
ValueError. That is what the usual guards expect, e.g. a detection loss's

    def reduce_mean(t):
        if not dist.is_available() or not dist.is_initialized():
            return t
        ...

init_process_group raises RuntimeError: there is no group to join."""
import enum

_NOT_INITIALIZED = "Default process group has not been initialized, please make sure to call init_process_group."


class ReduceOp(enum.Enum):
    """The reduction names of torch.distributed.ReduceOp, for code that names them in signatures."""
    SUM = 0
    AVG = 1
    PRODUCT = 2
    MIN = 3
    MAX = 4
    BAND = 5
    BOR = 6
    BXOR = 7
    PREMUL_SUM = 8


def is_available():
    return False


def is_initialized():
    return False


def is_torchelastic_launched():
    return False


def init_process_group(*args, **kwargs):
    raise RuntimeError("vibetensor has no torch.distributed backend: init_process_group cannot create a process "
                       "group (run on one process, or use vibetensor.fabric for several GPUs)")


def _uninitialized(name):
    def fn(*args, **kwargs):
        raise ValueError(_NOT_INITIALIZED)
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"torch.distributed.{name}: raises torch's ValueError, as no process group is ever initialised."
    return fn


_COLLECTIVES = ("get_rank", "get_world_size", "get_backend", "barrier", "all_reduce", "reduce", "broadcast",
                "all_gather", "all_gather_object", "gather", "scatter", "reduce_scatter", "all_to_all",
                "broadcast_object_list", "new_group")
for _name in _COLLECTIVES:
    globals()[_name] = _uninitialized(_name)
del _name

__all__ = ["ReduceOp", "is_available", "is_initialized", "is_torchelastic_launched", "init_process_group",
           *_COLLECTIVES]
