"""vibetensor.io safetensors against the `safetensors` package: round trips in both directions for every dtype,
0-dim and empty tensors and metadata; byte equality of written files; the safe_open surface; the checks
before saving; the zero-copy map and the staged (pread) reader that device loads share."""
from __future__ import annotations

import json
import os
import struct

import numpy as np
import pytest

safetensors = pytest.importorskip("safetensors")
import safetensors.torch as st  # noqa: E402
import torch
from helpers import ALL_DTYPES, random_array

import vibetensor.io as vio
import vibetensor.torch as vt

SHAPES = [(), (0,), (3, 0, 2), (1,), (5,), (2, 3), (2, 1, 4)]


def torch_random(shape, dtype, rng):
    return torch.from_numpy(random_array(shape, "float32" if dtype == "bfloat16" else dtype, rng)).to(
        getattr(torch, dtype))


def random_dict(rng, n=8):
    out = {}
    for i in range(n):
        dtype = ALL_DTYPES[int(rng.integers(len(ALL_DTYPES)))]
        shape = SHAPES[int(rng.integers(len(SHAPES)))]
        # names collide in prefixes and sort differently by bytes than by dtype
        out[f"layer.{int(rng.integers(20))}.{dtype}{i}"] = torch_random(shape, dtype, rng)
    return out


def to_vt(d):
    return {k: vt.from_dlpack(v) for k, v in d.items()}


def assert_same_tensors(vt_dict, torch_dict):
    assert list(vt_dict) == sorted(torch_dict)
    for k, t in torch_dict.items():
        got = torch.from_dlpack(vt_dict[k])
        assert got.dtype == t.dtype and got.shape == t.shape, k
        assert torch.equal(got, t), k


def sorted_metadata(package_bytes):
    """The package writes metadata keys in hash order; the same header with them sorted (same length)."""
    n = struct.unpack("<Q", package_bytes[:8])[0]
    header = json.loads(package_bytes[8:8 + n])
    meta = header.get("__metadata__")
    if not meta:
        return package_bytes
    raw = package_bytes[8:8 + n]
    start = raw.index(b'"__metadata__":') + len(b'"__metadata__":')
    end = raw.index(b"}", start) + 1  # metadata values are strings; '}' inside them is escaped only by quoting
    ours = json.dumps(dict(sorted(meta.items())), separators=(",", ":"), ensure_ascii=False).encode()
    assert len(ours) == end - start or "}" in "".join(meta.values())
    return package_bytes[:8 + start] + ours + package_bytes[8 + start + len(ours):]


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_every_dtype_both_directions_and_bytes(dtype, rng, tmp_path):
    tensors = {f"t{i}": torch_random(s, dtype, rng) for i, s in enumerate(SHAPES)}
    theirs = st.save(tensors, metadata={"format": "pt"})
    assert_same_tensors(vio.load(theirs), tensors)
    ours = vio.save(to_vt(tensors), metadata={"format": "pt"})
    assert ours == theirs
    vio.save_file(to_vt(tensors), tmp_path / "a.safetensors", metadata={"format": "pt"})
    assert (tmp_path / "a.safetensors").read_bytes() == theirs
    back = st.load_file(tmp_path / "a.safetensors")
    for k, t in tensors.items():
        assert torch.equal(back[k], t)


def test_mixed_dicts_bytes_identical(rng, tmp_path):
    for trial in range(20):
        tensors = random_dict(rng, n=int(rng.integers(0, 12)))
        metadata = None if trial % 3 == 0 else {f"k{j}": f"v\"{j}\n\u00e9\x01" for j in range(trial % 5)}
        theirs = sorted_metadata(st.save(tensors, metadata=metadata)) if tensors or metadata != {} else None
        ours = vio.save(to_vt(tensors), metadata=metadata)
        if theirs is not None:
            assert ours == theirs, (trial, ours[:200], theirs[:200])
        assert_same_tensors(vio.load(ours), tensors)
        assert_same_tensors(vio.load_file(_write(tmp_path / f"{trial}.st", ours)), tensors)
        assert vio.safe_open(tmp_path / f"{trial}.st", "vt").metadata() == metadata


def _write(path, data):
    path.write_bytes(data)
    return path


def test_empty_dict_and_empty_metadata():
    assert vio.save({}) == st.save({})
    # The package writes `{},"__metadata__":{}}` here, which it cannot read back; ours is valid JSON.
    ours = vio.save({}, metadata={})
    assert ours[8:].rstrip() == b'{"__metadata__":{}}'
    with pytest.raises(safetensors.SafetensorError):
        st.load(st.save({}, metadata={}))
    assert vio.load(ours) == {}


def test_load_file_is_a_writable_private_view(tmp_path):
    path = tmp_path / "m.safetensors"
    st.save_file({"w": torch.arange(6, dtype=torch.float32).reshape(2, 3)}, path)
    before = path.read_bytes()
    w = vio.load_file(path)["w"]
    w.add_(1)
    assert w.tolist() == [[1, 2, 3], [4, 5, 6]]
    assert path.read_bytes() == before  # copy-on-write: the file never changes
    again = vio.load_file(path)["w"]
    assert again.tolist() == [[0, 1, 2], [3, 4, 5]]
    del again
    # the map outlives the handle and the dict: only the tensor holds it now
    assert (w * 2).sum().item() == 42


def test_pread_backend_reads_through_staging(tmp_path, rng):
    # > 8 MiB so the staged reader cuts several chunks, some shared by small tensors and some part of a big one
    tensors = {"big": torch.from_numpy(rng.standard_normal(3_000_000).astype(np.float32)),
               "small.a": torch.arange(3, dtype=torch.int16), "small.b": torch.tensor(True),
               "mid": torch.from_numpy(rng.integers(0, 255, 5_000_001).astype(np.uint8)), "empty": torch.zeros(0, 4)}
    path = tmp_path / "big.safetensors"
    st.save_file(tensors, path)
    loaded = vio.load_file(path, backend="pread")
    assert_same_tensors(loaded, tensors)
    with vio.safe_open(path, "vt", backend="pread") as f:
        assert_same_tensors({"mid": f.get_tensor("mid")}, {"mid": tensors["mid"]})
    with pytest.raises(ValueError, match="backend"):
        vio.load_file(path, backend="cufile")


def test_misaligned_tensor_is_copied_and_correct():
    # a U8 of one byte puts the F64 at data offset 1: readable, but not alignable in place
    n = b'{"b":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"f":{"dtype":"F64","shape":[2],"data_offsets":[1,17]}}'
    data = struct.pack("<Q", len(n)) + n + b"\x07" + struct.pack("<2d", 1.5, -2.25)
    out = vio.load(data)
    assert out["f"].tolist() == [1.5, -2.25] and out["b"].tolist() == [7]
    assert out["f"].data_ptr() % 8 == 0


def test_safe_open_matches_package(tmp_path, rng):
    tensors = random_dict(rng, n=10)
    tensors["m"] = torch.arange(24, dtype=torch.float32).reshape(2, 3, 4)
    path = tmp_path / "s.safetensors"
    st.save_file(tensors, path, metadata={"a": "b"})
    with safetensors.safe_open(path, "pt") as theirs, vio.safe_open(path, "vt") as ours:
        assert ours.keys() == theirs.keys()
        # offset order; the package breaks ties between empty tensors at one offset in hash order
        raw = path.read_bytes()
        header = json.loads(raw[8:8 + struct.unpack("<Q", raw[:8])[0]])
        offsets = [tuple(header[k]["data_offsets"]) for k in ours.offset_keys()]
        assert offsets == sorted(offsets) and sorted(ours.offset_keys()) == sorted(theirs.offset_keys())
        assert ours.metadata() == theirs.metadata()
        for k in theirs.keys():
            assert_same_tensors({k: ours.get_tensor(k)}, {k: theirs.get_tensor(k)})
        all_ours = ours.get_tensors()
        assert list(all_ours) == ours.offset_keys()
        assert_same_tensors(dict(sorted(all_ours.items())), theirs.get_tensors())
        s, ts = ours.get_slice("m"), theirs.get_slice("m")
        assert s.get_shape() == ts.get_shape() and s.get_dtype() == ts.get_dtype() == "F32"
        for idx in [slice(None), 1, (slice(1, None), slice(None, None, 2)), (Ellipsis, 1), (0, slice(0, 2), 3),
                    slice(-1, None)]:
            assert torch.equal(torch.from_dlpack(s[idx]), ts[idx]), idx
        with pytest.raises(ValueError, match="step"):
            s[::-1]
        with pytest.raises(vio.SafetensorError, match="does not contain tensor nope"):
            ours.get_tensor("nope")
    with pytest.raises(vio.SafetensorError, match="closed"):
        ours.keys()
    arr = vio.safe_open(path, "numpy").get_tensor("m")
    assert isinstance(arr, np.ndarray) and arr.shape == (2, 3, 4)
    with pytest.raises(ValueError, match="framework"):
        vio.safe_open(path, "jax")


def test_save_checks_like_safetensors_torch(tmp_path):
    x = vt.arange(8, dtype=vt.float32)
    with pytest.raises(ValueError, match="non contiguous tensor: `a`"):
        vio.save({"a": x[::2]})
    with pytest.raises(RuntimeError, match="share memory"):
        vio.save({"a": x[:5], "b": x[4:]})
    vio.save({"a": x[:4], "b": x[4:]})  # views of one storage that do not overlap are fine, as in the package
    with pytest.raises(ValueError, match="expected vibetensor Tensor"):
        vio.save({"a": 3})
    with pytest.raises(ValueError, match="Expected a dict"):
        vio.save([x])
    with pytest.raises(TypeError, match="names must be str"):
        vio.save({1: x})
    with pytest.raises(TypeError, match="metadata"):
        vio.save({"a": x}, metadata={"k": 1})
    with pytest.raises(ValueError, match="reserved"):
        vio.save({"__metadata__": x})
    with pytest.raises(FileNotFoundError):
        vio.load_file(tmp_path / "missing.safetensors")
    with pytest.raises(RuntimeError, match="cannot open"):
        vio.save_file({"a": x}, tmp_path / "no" / "dir.safetensors")


def test_unsupported_dtype_loads_nothing_but_others_lazily(tmp_path):
    path = tmp_path / "f8.safetensors"
    st.save_file({"f8": torch.zeros(3, dtype=torch.float8_e4m3fn), "u32": torch.zeros(2, dtype=torch.uint32),
                  "ok": torch.arange(3.0)}, path)
    with pytest.raises(vio.SafetensorError, match="tensor 'f8'.*F8_E4M3") as e:
        vio.load_file(path)
    assert e.value.rule == "unsupported" and e.value.tensor == "f8"
    with vio.safe_open(path, "vt") as f:
        assert f.keys() == ["f8", "ok", "u32"]
        assert f.get_tensor("ok").tolist() == [0.0, 1.0, 2.0]
        assert f.get_slice("u32").get_dtype() == "U32"
        with pytest.raises(vio.SafetensorError, match="U32"):
            f.get_tensor("u32")


def test_error_attributes():
    bad = struct.pack("<Q", 4) + b'{"a"'
    with pytest.raises(vio.SafetensorError) as e:
        vio.load(bad)
    assert e.value.rule == "json" and e.value.tensor is None and e.value.offset == 12
    assert isinstance(e.value, Exception) and not isinstance(e.value, RuntimeError)


def test_shrunken_file_fails_cleanly_with_pread(tmp_path):
    path = tmp_path / "m.safetensors"
    vio.save_file({"a": vt.ones(3_000_000), "b": vt.ones(3_000_000)}, path)
    with vio.safe_open(path, "vt", backend="pread") as f:
        os.truncate(path, os.path.getsize(path) - 4_000_000)  # the header (read at open) still promises the bytes
        with pytest.raises(vio.SafetensorError, match="truncated") as e:
            f.get_tensors()
        assert e.value.rule == "io" and e.value.offset is None


def test_names_and_metadata_that_need_escaping_are_byte_identical(tmp_path):
    names = ["a\"b", "back\\slash", "tab\tnl\n", "ctl\x01\x1f", "slash/del\x7f", "\u00e9t\u00e9", "\U0001f600", "",
             "__meta", "Z", "a"]
    tensors = {n: torch.tensor([float(i)]) for i, n in enumerate(names)}
    metadata = {"q\"uote": "v\\al\u2028ue\x00"}
    ours = vio.save(to_vt(tensors), metadata=metadata)
    assert ours == st.save(tensors, metadata=metadata)
    back = vio.load(ours)
    assert list(back) == sorted(names) and vio.safe_open(_write(tmp_path / "e.st", ours), "vt").metadata() == metadata
    for n in names:
        assert back[n].tolist() == tensors[n].tolist()


@pytest.mark.parametrize("subset", [None, ["b", "d"], ["a", "e"], ["c"]])
def test_pread_subsets_across_chunk_boundaries(tmp_path, subset):
    # sizes straddle the reader's 8 MiB chunks; subsets leave gaps the planner must not read across
    mib = 1 << 20
    sizes = {"a": 8 * mib - 4, "b": 3, "c": 8 * mib + 4, "d": 1, "e": 5 * mib, "f": 0}
    tensors = {k: torch.from_numpy(np.random.default_rng(len(k) + n).integers(0, 256, n).astype(np.uint8))
               for k, n in sizes.items()}
    path = tmp_path / "c.safetensors"
    st.save_file(tensors, path)
    with vio.safe_open(path, "vt", backend="pread") as f:
        names = subset or f.keys()
        got = dict(zip(names, f._handle().load(names, "cpu", "pread")))
    for k in names:
        assert torch.equal(torch.from_dlpack(got[k]), tensors[k]), k


@pytest.mark.parametrize("chunk_mib,threads", [(1, 1), (1, 3), (2, 8)])
def test_pread_with_other_staging_knobs(tmp_path, monkeypatch, chunk_mib, threads):
    # the loader reads VT_IO_CHUNK_MIB and VT_IO_THREADS at every load (benchmarks/io.py --sweep): any chunk
    # size and worker count reads the same bytes
    mib = 1 << 20
    sizes = {"a": 3 * mib + 5, "b": 7, "c": mib - 1, "d": 2 * mib}
    tensors = {k: torch.from_numpy(np.random.default_rng(n).integers(0, 256, n).astype(np.uint8)) for k, n in sizes.items()}
    path = tmp_path / "k.safetensors"
    st.save_file(tensors, path)
    monkeypatch.setenv("VT_IO_CHUNK_MIB", str(chunk_mib))
    monkeypatch.setenv("VT_IO_THREADS", str(threads))
    got = vio.load_file(path, backend="pread")
    for k, t in tensors.items():
        assert torch.equal(torch.from_dlpack(got[k]), t), k

