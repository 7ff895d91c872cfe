"""Standing checks on the tree itself: per-layer line counts with a per-file budget (the Node.js glue too), one-way layer
dependencies, nanobind/Python.h only inside bindings/ folders, and plugins that see only the C ABI header."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ["core", "topology", "python/vibetensor", "bindings", "plugins", "js/src", "js/lib"]
SOURCE = {".c", ".h", ".hpp", ".cc", ".cpp", ".cu", ".cuh", ".py", ".js", ".mjs"}
MAX_LINES = 600


def sources(layer):
    return [p for p in (ROOT / layer).rglob("*") if p.suffix in SOURCE and p.is_file()]


def test_file_line_budget():
    too_long = {}
    counts = {}
    for layer in LAYERS:
        total = 0
        for p in sources(layer):
            n = sum(1 for _ in p.open(errors="replace"))
            total += n
            if n > MAX_LINES:
                too_long[str(p.relative_to(ROOT))] = n
        counts[layer] = total
    print("lines per layer:", counts)
    assert not too_long, f"files over {MAX_LINES} lines (split them by responsibility): {too_long}"


def test_nanobind_only_in_bindings():
    offenders = []
    for layer in ("core", "topology"):
        for p in sources(layer):
            if "bindings" in p.parts:
                continue
            text = p.read_text(errors="replace")
            if re.search(r'#include\s*[<"](nanobind/|Python\.h)', text):
                offenders.append(str(p.relative_to(ROOT)))
    assert not offenders, f"nanobind/Python.h included outside bindings/: {offenders}"


def test_core_does_not_depend_on_upper_layers():
    offenders = []
    for p in sources("core"):
        text = p.read_text(errors="replace")
        if re.search(r'#include\s*"vt/(topology|fabric)/', text):
            offenders.append(str(p.relative_to(ROOT)))
    assert not offenders, f"core includes topology/fabric headers: {offenders}"


def test_plugins_see_only_the_abi_header():
    offenders = []
    for folder in ("plugins", "tests/fixtures/bad_plugins"):
        for p in (ROOT / folder).rglob("*"):
            if p.suffix not in SOURCE or not p.is_file():
                continue
            for inc in re.findall(r'#include\s*[<"](vt/[^">]+)[">]', p.read_text(errors="replace")):
                if inc != "vt/abi/vt_plugin.h":
                    offenders.append(f"{p.relative_to(ROOT)}: {inc}")
    assert not offenders, f"plugins include vibetensor headers other than vt/abi/vt_plugin.h: {offenders}"
