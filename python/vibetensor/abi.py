"""Where a native plugin finds vibetensor's plugin ABI header (vt/abi/vt_plugin.h).

    python -m vibetensor.abi --include     # the include directory, for -I or CMake
    python -m vibetensor.abi --version     # the plugin ABI version this vibetensor speaks ("1.1")

An installed vibetensor ships the header in <package>/include; a source checkout used without installing
(PYTHONPATH=python) finds it in core/include of the checkout.
"""
from __future__ import annotations

import argparse
import os

_HEADER = os.path.join("vt", "abi", "vt_plugin.h")


def include_dir() -> str:
    here = os.path.dirname(os.path.abspath(__file__))
    for candidate in (os.path.join(here, "include"), os.path.join(here, "..", "..", "core", "include")):
        if os.path.isfile(os.path.join(candidate, _HEADER)):
            return os.path.normpath(candidate)
    raise FileNotFoundError(f"vibetensor's {_HEADER} is missing from this installation (looked in {here}/include)")


def abi_version() -> str:
    from ._C import core

    return core.PLUGIN_ABI_VERSION


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vibetensor.abi", description=__doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--include", action="store_true", help="print the include directory of vt/abi/vt_plugin.h")
    group.add_argument("--version", action="store_true", help="print the plugin ABI version (major.minor)")
    args = parser.parse_args(argv)
    print(include_dir() if args.include else abi_version())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
