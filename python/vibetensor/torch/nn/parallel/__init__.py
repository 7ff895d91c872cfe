"""vt.nn.parallel, torch.nn.parallel's single-process data parallelism: DataParallel, data_parallel and its parts
(replicate, scatter, gather, parallel_apply)."""
from .data_parallel import DataParallel, data_parallel  # noqa: F401
from .parallel_apply import parallel_apply  # noqa: F401
from .replicate import replicate  # noqa: F401
from .scatter_gather import gather, scatter, scatter_kwargs  # noqa: F401
