"""vt.backends.cudnn, torch.backends.cudnn-shaped, so training scripts that set its flags run unchanged.
vibetensor has no cuDNN: enabled, benchmark, deterministic and allow_tf32 are plain settable attributes with
torch's defaults and have no effect here; is_available() is False and version() None. (TF32 for matrix products
is vt.backends.cuda.matmul.allow_tf32, which does take effect.)"""
import contextlib
import types


def _is_available():
    return False


def _version():
    return None


cudnn = types.ModuleType("vibetensor.torch.backends.cudnn", __doc__)
cudnn.enabled = True
cudnn.benchmark = False
cudnn.benchmark_limit = None  # torch's value without a CUDA build
cudnn.deterministic = False
cudnn.allow_tf32 = True
cudnn.is_available = _is_available
cudnn.version = _version


@contextlib.contextmanager
def _flags(enabled=False, benchmark=False, benchmark_limit=10, deterministic=False, allow_tf32=True,
           fp32_precision="none", depthwise_kernel="auto"):
    """torch.backends.cudnn.flags: sets the flags for the block and restores them after (the last two, which
    select cuDNN kernels, are accepted and ignored)."""
    names = ("enabled", "benchmark", "benchmark_limit", "deterministic", "allow_tf32")
    saved = {n: getattr(cudnn, n) for n in names}
    for n, v in zip(names, (enabled, benchmark, benchmark_limit, deterministic, allow_tf32)):
        setattr(cudnn, n, v)
    try:
        yield
    finally:
        for n, v in saved.items():
            setattr(cudnn, n, v)


cudnn.flags = _flags
