"""vt.set_default_device / vt.get_default_device and `with vt.device(...)` against torch's: factories and nn
module construction without device= allocate on the default device, *_like and new_* keep their input's device,
an explicit device= wins, `with` blocks nest and take precedence, the state is per thread.

These tests run on a CPU-only machine: the default device is observed through a fake CUDA machine with 2
devices (vt.cuda.device_count patched), where "cuda:5" is a device that does not exist - a factory that
consults the default device fails naming cuda:5, one that does not succeeds on the CPU."""
import threading

import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from vibetensor.torch import _default_device

MISSING = r"device cuda:5 does not exist: this machine has 2 CUDA device\(s\)"


@pytest.fixture
def fake_cuda(monkeypatch):
    monkeypatch.setattr(vt.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(vt.cuda, "current_device", lambda: 1)


@pytest.fixture(autouse=True)
def reset():
    yield
    vt.set_default_device(None)
    torch.set_default_device(None)
    assert not _default_device._local.stack


FACTORIES = {
    "zeros": lambda: vt.zeros(2, 3), "ones": lambda: vt.ones((2,)), "empty": lambda: vt.empty(0),
    "zeros size=": lambda: vt.zeros(size=(2,)), "full": lambda: vt.full((2,), 1.5), "rand": lambda: vt.rand(3),
    "randn": lambda: vt.randn(2, 2), "randint": lambda: vt.randint(0, 5, (3,)), "arange": lambda: vt.arange(4),
    "eye": lambda: vt.eye(3), "linspace": lambda: vt.linspace(0, 1, 5), "tensor": lambda: vt.tensor([1.0, 2.0]),
    "tensor of a tensor": lambda: vt.tensor(vt.ones(1, device="cpu")), "as_tensor list": lambda: vt.as_tensor([1]),
    "as_tensor ndarray": lambda: vt.as_tensor(np.ones(2)), "scalar_tensor": lambda: vt.scalar_tensor(2.0),
    "empty_strided": lambda: vt.empty_strided((2, 2), (1, 2)), "randperm": lambda: vt.randperm(4),
    "tril_indices": lambda: vt.tril_indices(3, 3), "Linear": lambda: vt.nn.Linear(2, 3),
    "LayerNorm": lambda: vt.nn.LayerNorm(4), "Embedding": lambda: vt.nn.Embedding(5, 2),
    "Conv2d": lambda: vt.nn.Conv2d(1, 2, 3), "BatchNorm1d (buffers)": lambda: vt.nn.BatchNorm1d(3),
}


def cpu_tensor():
    return vt.ones(2, 3, device="cpu")


KEEP_DEVICE = {
    "zeros_like": lambda x: vt.zeros_like(x), "ones_like": lambda x: vt.ones_like(x),
    "empty_like": lambda x: vt.empty_like(x), "full_like": lambda x: vt.full_like(x, 2.0),
    "rand_like": lambda x: vt.rand_like(x), "randn_like": lambda x: vt.randn_like(x),
    "new_zeros": lambda x: x.new_zeros(2), "new_ones": lambda x: x.new_ones(2),
    "new_full": lambda x: x.new_full((2,), 1),
    "new_tensor": lambda x: x.new_tensor([1.0]), "from_numpy": lambda x: vt.from_numpy(np.ones(2)),
    "explicit device": lambda x: vt.zeros(2, device="cpu"), "explicit full": lambda x: vt.full((1,), 1, device="cpu"),
    "explicit tensor": lambda x: vt.tensor([1], device=vt.device("cpu")), "clone": lambda x: x.clone(),
    "op result": lambda x: x * 2 + 1,
}


@pytest.mark.parametrize("name", list(FACTORIES))
def test_factories_use_the_default_device(fake_cuda, name):
    make = FACTORIES[name]
    with vt.device("cuda:5"):
        with pytest.raises(RuntimeError, match=MISSING):
            make()
    vt.set_default_device("cuda:5")
    with pytest.raises(RuntimeError, match=MISSING):
        make()
    with vt.device("cpu"):  # the innermost default wins
        out = make()
        assert all(t.device == vt.device("cpu") for t in ([out] if isinstance(out, vt.Tensor) else
                                                           list(out.parameters()) + list(out.buffers())))
    vt.set_default_device(None)
    make()


@pytest.mark.parametrize("name", list(KEEP_DEVICE))
def test_like_new_and_explicit_keep_their_device(fake_cuda, name):
    x = cpu_tensor()
    with vt.device("cuda:5"):
        out = KEEP_DEVICE[name](x)
    assert out.device == vt.device("cpu")


def test_get_and_set_default_device_match_torch(fake_cuda):
    for m in (vt, torch):
        assert m.get_default_device() == m.device("cpu")
        m.set_default_device("cpu")
        assert m.get_default_device() == m.device("cpu")
        assert str(m.get_default_device()) == "cpu"
        m.set_default_device(None)
        assert m.get_default_device() == m.device("cpu")
        with m.device("cpu") as d:
            assert d == m.device("cpu") and isinstance(d, m.device)
            assert m.get_default_device() == m.device("cpu")
            assert m.zeros(2).device == m.device("cpu")
    vt.set_default_device("cuda")
    assert vt.get_default_device() == vt.device("cuda", 1)  # a CUDA default reads with the current index
    vt.set_default_device(vt.device("cuda", 0))
    assert vt.get_default_device() == vt.device("cuda:0")
    vt.set_default_device(1)
    assert vt.get_default_device() == vt.device("cuda:1")
    with vt.device("cpu"):
        assert vt.get_default_device() == vt.device("cpu")
    assert vt.get_default_device() == vt.device("cuda:1")


def test_nesting_and_reentry(fake_cuda):
    outer, inner = vt.device("cuda:5"), vt.device("cpu")
    with outer:
        with inner:
            with outer:
                with pytest.raises(RuntimeError, match=MISSING):
                    vt.zeros(1)
            assert vt.zeros(1).device == vt.device("cpu")
        with pytest.raises(RuntimeError, match=MISSING):
            vt.ones(1)
    assert vt.zeros(1).device == vt.device("cpu")
    with pytest.raises(ValueError):  # an exception leaves the block and the default with it
        with outer:
            raise ValueError("boom")
    assert vt.get_default_device() == vt.device("cpu")


def test_per_thread(fake_cuda):
    seen = []

    def work():
        seen.append(vt.zeros(2).device)
        seen.append(vt.get_default_device())

    vt.set_default_device("cuda:5")
    with vt.device("cuda:5"):
        th = threading.Thread(target=work)
        th.start()
        th.join()
    assert seen == [vt.device("cpu"), vt.device("cpu")]


@pytest.mark.parametrize("bad", ["nonexist", "cuda:x", ""])
def test_bad_device_strings(bad):
    for m in (vt, torch):
        with pytest.raises(RuntimeError):
            m.set_default_device(bad)
        with pytest.raises(RuntimeError):
            m.device(bad)
    with pytest.raises(TypeError, match="expected a device"):
        vt.set_default_device(2.5)


def test_missing_cuda_fails_at_first_factory_call():
    """On this CPU machine: setting "cuda" succeeds (as torch), the first factory call names the device."""
    if vt.cuda.device_count() > 0:
        pytest.skip("needs a machine without CUDA")
    vt.set_default_device("cuda")
    with pytest.raises(RuntimeError, match="cannot use device cuda"):
        vt.zeros(1)
    with pytest.raises(RuntimeError, match="cannot use device cuda"):
        vt.nn.Linear(2, 2)
    assert vt.zeros(1, device="cpu").device == vt.device("cpu")
