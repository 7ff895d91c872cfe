"""The differential fuzzer over every op of the dispatcher (issue 12): see fuzz/differential.py for what a case
is and what counts as a find.

Two profiles:
  * CI (default, part of `pytest tests`): a few examples per op, each op's hypothesis seed derived from its name
    and VT_FUZZ_SEED (default 0), so a run is the same every time and a failure replays exactly;
    VT_FUZZ_EXAMPLES sets the examples per op.
  * long (by hand): `VT_FUZZ_LONG=<seconds> pytest tests/fuzz -m slow -s` cycles through the ops with fresh
    seeds until the time is up, records every find instead of stopping at the first, and prints the run time,
    the case count and the finds (VT_FUZZ_REPORT=<file.json> also writes them); VT_FUZZ_LONG_DEVICE=cuda puts
    every vibetensor tensor on the GPU, as the CUDA profile does. Turn each find into a regression test next to
    the tests of its area.
  * CUDA (`test_fuzz_cuda`, marked `cuda`): the CI profile with every vibetensor tensor on the GPU (the torch
    side stays on the CPU, the oracle).
"""
from __future__ import annotations

import json
import os
import time
import zlib

import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings

from fuzz import registry, strategies
from fuzz.differential import Find, cases, check, memory_cap

SPECS = registry.all_specs()
BASE_SEED = int(os.environ.get("VT_FUZZ_SEED", "0"))
CI_EXAMPLES = int(os.environ.get("VT_FUZZ_EXAMPLES", "12"))


def derived_seed(op: str, round_: int = 0) -> int:
    return zlib.crc32(f"{op}:{BASE_SEED}:{round_}".encode())


SHRINK = os.environ.get("VT_FUZZ_SHRINK", "1") != "0"


def run_op(spec, examples, seed_value, stats=None, shrink=True):
    phases = [Phase.generate, Phase.shrink] if shrink and SHRINK else [Phase.generate]

    @seed(seed_value)
    @settings(max_examples=examples, database=None, deadline=None, derandomize=False, phases=phases,
              suppress_health_check=list(HealthCheck))
    @given(case=cases(spec))
    def prop(case):
        recipes, autograd = case
        verdict = check(spec, recipes, autograd)
        if stats is not None:
            stats[verdict] = stats.get(verdict, 0) + 1

    with memory_cap():
        prop()


def test_oracle_refuses_torch_inputs_that_corrupt_or_kill_the_process():
    """The oracle's guards raise instead of calling torch where torch 2.13's CPU kernel traps (INT_MIN / -1) or
    writes past its output (a 16-bit arange of more than 2**24 elements); the same calls on small inputs run."""
    import torch

    with pytest.raises(registry.TorchWouldTrap, match="writes past its output"):
        registry._arange(0, 2**25 + 3, dtype=torch.bfloat16)
    with pytest.raises(registry.TorchWouldTrap, match="writes past its output"):
        registry._arange(3.0, 2.0**31 - 1, 1.0, dtype=torch.float16)
    assert registry._arange(0, 2**24, 4096, dtype=torch.bfloat16).shape == (4096,)
    assert registry._arange(0, 2**25 + 3, 2**20, dtype=torch.float32).shape == (33,)
    with pytest.raises(registry.TorchWouldTrap, match="INT_MIN"):
        registry._div(torch.tensor([-2**31], dtype=torch.int32), -1, rounding_mode="trunc")
    assert registry._div(torch.tensor([7], dtype=torch.int32), -2, rounding_mode="trunc").tolist() == [-3]


def test_registry_covers_every_op():
    names = {s.name for s in SPECS}
    assert len(names) + len(registry.UNFUZZED) == len(dir(__import__("vibetensor.torch").torch.ops.vt))
    assert {"add_", "cat", "index_put_", "copy_", "cross_entropy", "embedding"} <= names


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_fuzz_ci(spec):
    run_op(spec, CI_EXAMPLES, derived_seed(spec.name))


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("VT_FUZZ_LONG"), reason="the long profile runs by hand: VT_FUZZ_LONG=<seconds>")
def test_fuzz_long(monkeypatch):
    budget = float(os.environ["VT_FUZZ_LONG"])
    device = os.environ.get("VT_FUZZ_LONG_DEVICE", "cpu")
    if device != "cpu":
        import vibetensor.torch as vt

        if not vt.cuda.is_available():
            pytest.skip(f"VT_FUZZ_LONG_DEVICE={device} needs a GPU")
        monkeypatch.setattr(strategies, "VT_DEVICE", device)
    start, round_, stats, finds = time.perf_counter(), 1, {}, {}

    def report(current=None):
        """Written after every op, so that a run cut short (a hang is a find too) still leaves its record."""
        r = {"device": device, "seconds": round(time.perf_counter() - start, 1), "rounds": round_, "cases": sum(stats.values()),
             "verdicts": stats, "finds": finds, "running": current}
        if os.environ.get("VT_FUZZ_REPORT"):
            with open(os.environ["VT_FUZZ_REPORT"], "w") as f:
                json.dump(r, f, indent=1)
        return r

    while time.perf_counter() - start < budget:
        for spec in SPECS:
            if time.perf_counter() - start >= budget:
                break
            report(spec.name)
            try:
                run_op(spec, 50, derived_seed(spec.name, round_), stats, shrink=True)
            except Exception as group:  # noqa: BLE001  Finds, or errors of the harness itself: recorded, not fatal
                for e in getattr(group, "exceptions", [group]):  # hypothesis groups distinct failures
                    finds.setdefault(spec.name, []).append(f"{'' if isinstance(e, Find) else type(e).__name__ + ': '}"
                                                           f"{str(e)[:600]}")
                    stats["find"] = stats.get("find", 0) + 1
        round_ += 1
    print(json.dumps(report(), indent=1))
    assert not finds, f"{sum(len(v) for v in finds.values())} finds in {len(finds)} ops"


@pytest.mark.cuda
@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_fuzz_cuda(spec, monkeypatch):
    """The CI profile with vibetensor's tensors on the GPU (torch stays on the CPU as the oracle)."""
    monkeypatch.setattr(strategies, "VT_DEVICE", "cuda")
    run_op(spec, CI_EXAMPLES, derived_seed(spec.name))
