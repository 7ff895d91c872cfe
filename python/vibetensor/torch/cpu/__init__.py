"""vt.cpu, torch.cpu's shape as far as training scripts reach for it: vt.cpu.amp.autocast (the deprecated
spelling of vt.autocast("cpu"))."""
from . import amp  # noqa: F401


def is_available():
    return True


def device_count():
    return 1
