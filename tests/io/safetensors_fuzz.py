"""Fuzz target for the safetensors reader, differential against the `safetensors` package.

Run it coverage-guided with atheris (libFuzzer arguments pass through; the first directory receives new
inputs, later ones are read-only seeds):

    PYTHONPATH=python python tests/io/safetensors_fuzz.py /tmp/corpus tests/fixtures/safetensors -max_total_time=60

`check(data)` is the oracle, shared with the hypothesis test in test_safetensors_fuzz.py:
  * vibetensor.io.load(data) returns, or raises SafetensorError with a known rule; anything else is a bug;
  * if it returns, the package loads the same bytes to the same names, dtypes, shapes and contents;
  * if the package loads what we refuse, the rule must be one where we are stricter on purpose.
The C++ reader is not compiled with coverage instrumentation (gcc builds cannot feed libFuzzer), so the rule an
input breaks is turned into a Python branch (`rule_branch`): an input reaching a new rule counts as new coverage
and is kept, which steers mutation deeper into validation. `mutate` adds structure: it edits the JSON header
(offsets, shapes, dtypes, names, metadata) and fixes up the length prefix, besides libFuzzer's byte mutations.
"""
from __future__ import annotations

import json
import random
import struct
import sys

RULES = ("header_too_small", "header_too_large", "header_length", "utf8", "header_start", "json", "schema", "dtype",
         "duplicate", "overflow", "size", "offsets", "incomplete", "unsupported")
# Rules where we refuse files the package reads: duplicates (it keeps the last), a header not starting with '{'
# (the format says MUST; the package allows leading whitespace), dtypes vibetensor has no tensor for.
STRICTER = ("duplicate", "header_start", "unsupported")
# Where the package (serde_json) refuses valid JSON that we read: numbers beyond f64 in fields we ignore.
PACKAGE_ONLY = ("number out of range", "recursion limit")


def rule_branch(rule):
    if rule == "header_too_small":
        return 0
    if rule == "header_too_large":
        return 1
    if rule == "header_length":
        return 2
    if rule == "utf8":
        return 3
    if rule == "header_start":
        return 4
    if rule == "json":
        return 5
    if rule == "schema":
        return 6
    if rule == "dtype":
        return 7
    if rule == "duplicate":
        return 8
    if rule == "overflow":
        return 9
    if rule == "size":
        return 10
    if rule == "offsets":
        return 11
    if rule == "incomplete":
        return 12
    if rule == "unsupported":
        return 13
    raise AssertionError(f"unknown rule {rule!r}")


def _package_load(data):
    import safetensors.torch

    try:
        return safetensors.torch.load(data), None
    except Exception as e:  # the package raises SafetensorError, KeyError (F4), ValueError...
        return None, e


def check(data: bytes):
    import torch

    import vibetensor.io as vio

    try:
        ours = vio.load(data)
        error = None
    except vio.SafetensorError as e:
        ours, error = None, e
    theirs, their_error = _package_load(data)
    if error is not None:
        rule_branch(error.rule)
        if theirs is not None and error.rule not in STRICTER:
            raise AssertionError(f"we refuse ({error}) what the package loads: {data[:120]!r}")
        return
    if theirs is None:
        if any(s in str(their_error) for s in PACKAGE_ONLY):
            return
        raise AssertionError(f"we load what the package refuses ({their_error!r}): {data[:120]!r}")
    assert list(ours) == sorted(theirs), (list(ours), sorted(theirs))
    for name, t in theirs.items():
        mine = torch.from_dlpack(ours[name])
        assert mine.dtype == t.dtype and mine.shape == t.shape, name
        assert raw_bytes(mine) == raw_bytes(t), name


def raw_bytes(t):
    import torch

    return t.reshape(-1).contiguous().view(torch.uint8).tolist()


def _split(data):
    if len(data) < 8:
        return None
    n = struct.unpack("<Q", data[:8])[0]
    if n > len(data) - 8:
        return None
    try:
        header = json.loads(data[8:8 + n])
    except (ValueError, UnicodeDecodeError):
        return None
    return (header, data[8 + n:]) if isinstance(header, dict) else None


def _edit(header, data, r):
    names = [k for k in header if k != "__metadata__" and isinstance(header[k], dict)]
    choice = r.randrange(9)
    if names and choice < 6:
        info = header[r.choice(names)]
        if choice == 0 and isinstance(info.get("data_offsets"), list) and info["data_offsets"]:
            i = r.randrange(len(info["data_offsets"]))
            old = info["data_offsets"][i]
            near = [old - 1, old + 1] if isinstance(old, int) and not isinstance(old, bool) else []
            info["data_offsets"][i] = r.choice([0, 1, 4, len(data), 2**63, 2**64 - 1] + near)
        elif choice == 1:
            info["shape"] = [r.choice([0, 1, 2, 3, 2**31, 2**32, 2**63]) for _ in range(r.randrange(4))]
        elif choice == 2:
            info["dtype"] = r.choice(["F32", "F16", "BF16", "BOOL", "U8", "I64", "F64", "F4", "F6_E2M3", "F8_E4M3",
                                      "U32", "C64", "X", "f32", ""])
        elif choice == 3:
            info.pop(r.choice(["dtype", "shape", "data_offsets"]), None)
        elif choice == 4:
            header[r.choice(names) + r.choice(["x", "\u00e9", "\n"])] = dict(info)
        else:
            info[r.choice(["extra", "dtype"])] = r.choice([None, 1.5, [], {}, "F32", -1])
    elif choice == 6:
        header["__metadata__"] = r.choice([None, {}, {"k": "v"}, {"k": 1}, [], "x"])
    elif choice == 7:
        data = data[:r.randrange(len(data) + 1)] if data and r.random() < 0.5 else data + b"\0" * r.randrange(1, 9)
    else:
        header.pop(r.choice(names), None) if names else None
    return header, data


def mutate_structure(data: bytes, r: random.Random) -> bytes:
    """One structural edit of a safetensors image; the length prefix is rewritten unless r says otherwise."""
    parts = _split(data)
    if parts is None:
        return data
    header, payload = _edit(*parts, r)
    ascii_only = r.random() < 0.5
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=ascii_only)
    if len(header) and r.random() < 0.1:  # repeat one member: a duplicate key, which a dict cannot hold
        name = r.choice(list(header))
        text = "{" + json.dumps({name: header[name]}, separators=(",", ":"), ensure_ascii=ascii_only)[1:-1] + "," + text[1:]
    text = text.encode("utf-8", "surrogatepass")
    text += b" " * ((8 - len(text) % 8) % 8 if r.random() < 0.8 else r.randrange(3))
    n = len(text) if r.random() < 0.9 else len(text) + r.choice([-1, 1, 2**40])
    return struct.pack("<Q", max(n, 0) % 2**64) + text + payload


def main():
    import atheris

    import safetensors.torch  # noqa: F401  (imported before fuzzing starts, so no input pays for it)
    import torch  # noqa: F401

    with atheris.instrument_imports(include=["vibetensor.io"]):
        import vibetensor.io  # noqa: F401
    for name in ("check", "rule_branch", "mutate_structure", "_split", "_edit"):  # this script's own branches
        globals()[name] = atheris.instrument_func(globals()[name])

    def test_one(data):
        check(bytes(data))

    def custom_mutator(data, max_size, seed):
        r = random.Random(seed)
        if r.random() < 0.5:
            out = mutate_structure(bytes(data), r)
            if out != data and len(out) <= max_size:
                return out
        return atheris.Mutate(data, max_size)

    atheris.Setup(sys.argv, test_one, custom_mutator=custom_mutator)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
