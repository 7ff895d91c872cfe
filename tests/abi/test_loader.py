"""The plugin loader from Python: every bad plugin is refused with an exception naming the problem and leaves the
op registry exactly as it was; the same file (by inode) loads once; a copy defining the same ops is refused;
concurrent loads initialise a plugin once; kernel failures surface as the matching Python exceptions."""
from __future__ import annotations

import os
import shutil
import threading

import pytest

import vibetensor.torch as vt
from vibetensor._C import core as _core


@pytest.mark.parametrize("name, message", [
    ("wrong_major", "built for plugin ABI 2.0, but this vibetensor speaks ABI 1.x"),
    ("newer_minor", "newer than this vibetensor's"),
    ("missing_init", "does not export vt_plugin_init"),
    ("missing_version", "does not export vt_plugin_abi_version"),
    ("failing_init", "vt_plugin_init failed: failing_init gives up after registering two ops; nothing it registered"),
    ("duplicate_op", "define_op: operator vt::add is already defined"),
])
def test_bad_plugin_leaves_registry_unchanged(bad_plugin, name, message):
    before = _core.op_names()
    with pytest.raises(RuntimeError, match="load_library: '.*'") as info:
        vt.ops.load_library(bad_plugin(name))
    assert message in str(info.value)
    assert _core.op_names() == before
    assert all(bad_plugin(name) != p["path"] for p in vt.ops.loaded_libraries())


def test_missing_file_and_not_a_library(tmp_path):
    with pytest.raises(RuntimeError, match="cannot open '.*nope.so': No such file"):
        vt.ops.load_library(tmp_path / "nope.so")
    junk = tmp_path / "junk.so"
    junk.write_bytes(b"not an ELF file")
    with pytest.raises(RuntimeError, match="cannot load '.*junk.so'"):
        vt.ops.load_library(junk)


def test_exception_in_init_does_not_cross_the_abi(bad_plugin, monkeypatch):
    monkeypatch.setenv("VT_TEST_PLUGIN_THROW_IN_INIT", "1")
    before = _core.op_names()
    with pytest.raises(RuntimeError, match="vt_plugin_init let a C\\+\\+ exception escape"):
        vt.ops.load_library(bad_plugin("throws"))
    assert _core.op_names() == before
    monkeypatch.delenv("VT_TEST_PLUGIN_THROW_IN_INIT")
    vt.ops.load_library(bad_plugin("throws"))  # a failed load kept nothing, so a later one starts clean
    with pytest.raises(RuntimeError, match="throws::op: the kernel let a C\\+\\+ exception escape"):
        vt.ops.throws.op(vt.ones(2))


def test_same_file_loads_once(ref_plugin, plugin_dirs, tmp_path):
    path = os.path.join(plugin_dirs["reference"], "vt_ref_cpu.so")
    link = tmp_path / "another_name.so"
    os.symlink(path, link)
    assert vt.ops.load_library(link) == ref_plugin  # same inode: the first record, init not run again
    assert sum(p["path"] == ref_plugin["path"] for p in vt.ops.loaded_libraries()) == 1
    assert ref_plugin["abi_version"] == _core.PLUGIN_ABI_VERSION
    assert sorted(ref_plugin["ops"]) == ["ref::add", "ref::addcmul", "ref::fill_all_", "ref::sum_dim"]


def test_copy_defining_the_same_ops_is_refused(ref_plugin, plugin_dirs, tmp_path):
    copy = tmp_path / "copy.so"
    shutil.copy(os.path.join(plugin_dirs["reference"], "vt_ref_cpu.so"), copy)
    before = _core.op_names()
    with pytest.raises(RuntimeError, match="operator ref::add is already defined"):
        vt.ops.load_library(copy)
    assert _core.op_names() == before


def test_concurrent_loads_initialise_once(bad_plugin):
    results, errors = [], []

    def load():
        try:
            results.append(vt.ops.load_library(bad_plugin("kernel_error")))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=load) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 8 and all(r == results[0] for r in results)
    assert len(results[0]["ops"]) == 4


def test_kernel_errors_become_python_exceptions(bad_plugin):
    vt.ops.load_library(bad_plugin("kernel_error"))
    x = vt.ones(3)
    with pytest.raises(ValueError, match="kernel_error::with_message refuses every input"):
        vt.ops.kernel_error.with_message(x)
    with pytest.raises(RuntimeError, match="plugin kernel failed with status 1 \\(no message\\)"):
        vt.ops.kernel_error.without_message(x)
    with pytest.raises(IndexError, match="argument index 5 out of range"):
        vt.ops.kernel_error.bad_host_call(x)
    with pytest.raises(RuntimeError, match="returned VT_OK without setting result 0"):
        vt.ops.kernel_error.no_result(x)
    with pytest.raises(ValueError):  # a failure leaves nothing behind: the next call fails the same way
        vt.ops.kernel_error.with_message(x)


@pytest.mark.cuda
def test_cpu_only_plugin_op_on_cuda_says_so(ref_plugin):
    with pytest.raises(NotImplementedError, match="ref::add: no kernel registered for the CUDA backend"):
        vt.ops.ref.add(vt.ones(2, device="cuda"), vt.ones(2, device="cuda"))


def test_include_dir_holds_the_header():
    import subprocess
    import sys

    import vibetensor

    inc = vibetensor.get_include()
    assert os.path.isfile(os.path.join(inc, "vt", "abi", "vt_plugin.h"))
    out = subprocess.run([sys.executable, "-m", "vibetensor.abi", "--include"], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}).stdout.strip()
    assert out == inc
    version = subprocess.run([sys.executable, "-m", "vibetensor.abi", "--version"], capture_output=True, text=True,
                             check=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}).stdout.strip()
    assert version == _core.PLUGIN_ABI_VERSION == "1.1"
