"""Safetensors straight to a CUDA device: every dtype and a multi-chunk tensor against the CPU load, the
current-stream contract (a load on a side stream is ordered before work queued there after it), safe_open on
the device, saving device tensors, refusal during a graph capture, and a file that shrinks mid-load leaving
no device memory behind."""
import os

import numpy as np
import pytest

import vibetensor.io as vio
import vibetensor.torch as vt

pytestmark = pytest.mark.cuda
DTYPES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32", "float64"]


def make_file(path, rng):
    tensors = {f"t_{d}": vt.from_numpy(rng.integers(0, 2, size=(3, 5)).astype(np.float32)).to(getattr(vt, d))
               for d in DTYPES}
    tensors["scalar"] = vt.tensor(3.5)
    tensors["empty"] = vt.zeros(0, 7)
    tensors["big"] = vt.from_numpy(rng.standard_normal(5_000_000).astype(np.float32))  # 20 MB: several chunks
    vio.save_file(tensors, path, metadata={"k": "v"})
    return tensors


def same(a, b):
    return a.dtype == b.dtype and tuple(a.shape) == tuple(b.shape) and bool((a.cpu() == b.cpu()).all().item())


@pytest.mark.parametrize("read,chunk_mib,threads", [("pread", 1, 3), ("map", 2, 16), ("map", 8, 1)])
def test_load_to_device_with_other_staging_knobs(tmp_path, monkeypatch, read, chunk_mib, threads):
    # VT_IO_READ / VT_IO_CHUNK_MIB / VT_IO_THREADS, read at every load (benchmarks/io.py --sweep)
    rng = np.random.default_rng(1)
    path = tmp_path / "k.safetensors"
    ref = make_file(path, rng)
    monkeypatch.setenv("VT_IO_READ", read)
    monkeypatch.setenv("VT_IO_CHUNK_MIB", str(chunk_mib))
    monkeypatch.setenv("VT_IO_THREADS", str(threads))
    got = vio.load_file(path, device="cuda")
    for k, t in ref.items():
        assert same(got[k], t), k


@pytest.mark.parametrize("device", ["cuda", "cuda:0", 0])
def test_load_to_device_matches_cpu(tmp_path, device):
    rng = np.random.default_rng(0)
    path = tmp_path / "m.safetensors"
    ref = make_file(path, rng)
    got = vio.load_file(path, device=device)
    assert list(got) == sorted(ref)
    for k, t in ref.items():
        assert got[k].device == vt.device("cuda:0"), k
        assert same(got[k], t), k


def test_load_on_a_side_stream_is_ordered_on_it(tmp_path):
    rng = np.random.default_rng(1)
    path = tmp_path / "m.safetensors"
    ref = make_file(path, rng)
    s = vt.cuda.Stream()
    with vt.cuda.stream(s):
        big = vio.load_file(path, device="cuda")["big"]
        doubled = big * 2  # queued on s after the copies: must see the data
    vt.cuda.current_stream().wait_stream(s)
    assert bool((doubled.cpu() == ref["big"] * 2).all().item())


def test_safe_open_on_device_and_save_from_device(tmp_path):
    rng = np.random.default_rng(2)
    path = tmp_path / "m.safetensors"
    ref = make_file(path, rng)
    with vio.safe_open(path, "vt", device="cuda:0") as f:
        assert f.metadata() == {"k": "v"}
        x = f.get_tensor("t_bfloat16")
        assert x.device == vt.device("cuda:0") and same(x, ref["t_bfloat16"])
        part = f.get_slice("big")[1000:2000]
        assert part.device == vt.device("cuda:0") and same(part, ref["big"][1000:2000])
    on_device = {k: t.to("cuda") for k, t in ref.items()}
    assert vio.save(on_device, metadata={"k": "v"}) == path.read_bytes()


def test_load_refused_during_capture(tmp_path):
    path = tmp_path / "m.safetensors"
    vio.save_file({"a": vt.ones(4)}, path)
    g = vt.cuda.CUDAGraph()
    static = vt.zeros(4, device="cuda")
    with vt.cuda.graph(g):
        with pytest.raises(RuntimeError, match="capturing a CUDA graph"):
            vio.load_file(path, device="cuda")
        static.add_(1)
    g.replay()
    assert static.cpu().tolist() == [1.0] * 4


def test_shrunken_file_fails_without_leaking_device_memory(tmp_path):
    path = tmp_path / "m.safetensors"
    vio.save_file({"a": vt.ones(3_000_000), "b": vt.ones(3_000_000)}, path)
    vt.cuda.synchronize()
    before = vt.cuda.memory_stats()["allocated_bytes.all.current"]
    with vio.safe_open(path, "vt", device="cuda") as f:
        os.truncate(path, os.path.getsize(path) - 4_000_000)  # the header still promises the bytes
        with pytest.raises(vio.SafetensorError, match="truncated") as e:
            f.get_tensors()
        assert e.value.rule == "io"
    vt.cuda.synchronize()
    assert vt.cuda.memory_stats()["allocated_bytes.all.current"] == before


def test_load_to_a_second_device(tmp_path):
    """A second device, real or logical (VT_EMULATE_DEVICES=2 on one GPU): tensors and memory land there."""
    if vt.cuda.device_count() < 2:
        pytest.skip("needs 2 CUDA devices: run with VT_EMULATE_DEVICES=2 on one GPU")
    rng = np.random.default_rng(3)
    path = tmp_path / "m.safetensors"
    ref = make_file(path, rng)
    before = [vt.cuda.memory_allocated(d) for d in (0, 1)]
    got = vio.load_file(path, device="cuda:1")
    assert vt.cuda.memory_allocated(1) - before[1] >= 20_000_000 and vt.cuda.memory_allocated(0) == before[0]
    for k, t in ref.items():
        assert got[k].device == vt.device("cuda:1") and same(got[k], t), k
    assert vt.cuda.current_device() == 0
