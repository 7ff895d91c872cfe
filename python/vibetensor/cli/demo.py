"""vt-demo: the main job until `vt-fabric topo` lands. Reports the runtime (threads, ops registered, CUDA
devices or why there are none) and runs a short self-checking computation against NumPy."""
import sys

import numpy as np


def main() -> int:
    import vibetensor.torch as vt
    from vibetensor._C import core

    print(f"vibetensor {__import__('vibetensor').__version__}: {len(core.op_names())} ops registered, "
          f"{vt.get_num_threads()} CPU threads")
    if vt.cuda.is_available():
        print(f"CUDA: {vt.cuda.device_count()} device(s)")
    else:
        print(f"CUDA: no CUDA device ({vt.cuda.unavailable_reason()}); CPU features are all available")
    vt.manual_seed(0)
    x = vt.randn(256, 512)
    y = (x * 2 + 1).relu().sum(1)
    ref = np.maximum(x.numpy() * 2 + 1, 0).sum(1)
    err = float(np.abs(y.numpy() - ref).max() / max(np.abs(ref).max(), 1e-12))
    print(f"check: relu(2x+1).sum(1) over 256x512 matches NumPy (max rel err {err:.2e})")
    return 0 if err < 1e-5 else 1


if __name__ == "__main__":
    sys.exit(main())
