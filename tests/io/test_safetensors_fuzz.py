"""The malformed-file corpus (tests/fixtures/safetensors) against the rules it was written for, and two bounded
fuzz runs of the differential oracle in safetensors_fuzz.py: atheris (coverage-guided, a few seconds, in a
subprocess) and a hypothesis-driven mutation fuzzer over the same seeds, which runs even without atheris."""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys

import pytest

pytest.importorskip("safetensors")
import safetensors_fuzz  # noqa: E402
from hypothesis import given, settings
from hypothesis import strategies as hs

import vibetensor.io as vio

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(os.path.dirname(HERE), "fixtures", "safetensors")
with open(os.path.join(CORPUS, "expected.json")) as f:
    EXPECTED = json.load(f)
SEEDS = sorted(EXPECTED)


def read(name):
    with open(os.path.join(CORPUS, name), "rb") as f:
        return f.read()


@pytest.mark.parametrize("name", SEEDS)
def test_corpus_file_breaks_its_rule(name, tmp_path):
    want = EXPECTED[name]
    data = read(name)
    if want["rule"] is None:
        safetensors_fuzz.check(data)
        vio.load_file(os.path.join(CORPUS, name))
        return
    for load in (lambda: vio.load(data), lambda: vio.load_file(os.path.join(CORPUS, name))):
        with pytest.raises(vio.SafetensorError) as e:
            load()
        assert (e.value.rule, e.value.tensor) == (want["rule"], want["tensor"]), str(e.value)
        if want["offset"] is not None:
            assert e.value.offset == want["offset"], str(e.value)
        if e.value.tensor is not None:
            assert f"'{e.value.tensor}'" in str(e.value)
        if e.value.offset is not None:
            assert f"at byte {e.value.offset} of the file" in str(e.value)
    safetensors_fuzz.check(data)  # and the package agrees (or we are stricter on purpose)


@settings(max_examples=300, deadline=None, derandomize=False)
@given(seed=hs.integers(0, 2**32 - 1), name=hs.sampled_from(SEEDS), rounds=hs.integers(1, 4))
def test_mutation_fuzz(seed, name, rounds):
    r = random.Random(seed)
    data = read(name)
    for _ in range(rounds):
        data = safetensors_fuzz.mutate_structure(data, r)
        if r.random() < 0.3 and data:  # and a byte flip now and then
            i = r.randrange(len(data))
            data = data[:i] + bytes([r.randrange(256)]) + data[i + 1:]
        safetensors_fuzz.check(data)


def test_atheris_bounded_run(tmp_path):
    pytest.importorskip("atheris")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    run = subprocess.run(
        [sys.executable, os.path.join(HERE, "safetensors_fuzz.py"), str(tmp_path), CORPUS, "-max_total_time=4",
         "-timeout=30", "-rss_limit_mb=16384", f"-artifact_prefix={tmp_path}/"],
        env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Done" in run.stderr
