"""Differential tests: vibetensor's tensor formatting vs. torch's repr()."""

import importlib.util
import math
import pathlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")

_PATH = (pathlib.Path(__file__).resolve().parents[2]
         / "python" / "vibetensor" / "torch" / "_tensor_str.py")
_spec = importlib.util.spec_from_file_location("_vt_tensor_str", _PATH)
ts = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ts)


@pytest.fixture(autouse=True)
def _restore_printoptions():
    torch_old = dict(torch._tensor_str.get_printoptions())
    vt_old = ts.get_printoptions()
    yield
    torch.set_printoptions(**torch_old)
    ts.set_printoptions(**vt_old)


def set_both(**kwargs):
    torch.set_printoptions(**kwargs)
    ts.set_printoptions(**kwargs)


def to_numpy(t):
    t = t.detach()
    if t.dtype.is_floating_point:
        return t.to(torch.float64).numpy()
    if t.dtype == torch.bool:
        return t.numpy()
    return t.to(torch.int64).numpy()


def ours(t, **kwargs):
    grad_fn = type(t.grad_fn).__name__ if t.grad_fn is not None else None
    return ts.format_tensor(to_numpy(t), str(t.dtype).replace("torch.", ""),
                            requires_grad=t.requires_grad, grad_fn=grad_fn, **kwargs)


def check(t):
    expected = repr(t).replace("torch.", "vt.")
    got = ours(t)
    assert got == expected, f"\n--- torch ---\n{expected}\n--- vt ---\n{got}"
    assert str(t).replace("torch.", "vt.") == got


FLOAT_DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]
INT_DTYPES = [torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8]

HAND_PICKED = [
    torch.tensor(3.0), torch.tensor(-0.0), torch.tensor(2.5), torch.tensor(1e-9),
    torch.tensor(7), torch.tensor(True), torch.tensor(float("nan")),
    torch.tensor(float("-inf")), torch.tensor(1e20),
    torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1.5, -2.25, 3.0]),
    torch.tensor([0.0, -0.0]), torch.tensor([-0.0, 1.5]), torch.tensor([-0.0, 1.0]),
    torch.tensor([1e-5, 1.0]), torch.tensor([1.0, 1001.0]), torch.tensor([1.0, 999.0]),
    torch.tensor([1e8, 1.0e8 + 8]), torch.tensor([2e8]), torch.tensor([123456789.0]),
    torch.tensor([float("nan"), 1.0]), torch.tensor([float("inf"), -float("inf"), 2.0]),
    torch.tensor([float("nan"), 1.5, -float("inf")]),
    torch.tensor([float("nan"), float("inf")]), torch.tensor([0.1, 0.25, 100.0]),
    torch.tensor([-1e-10, 1e10]), torch.tensor([1e300, 1e-300], dtype=torch.float64),
    torch.tensor([1, -22, 333]), torch.tensor([True, False]),
    torch.tensor([[1, 2], [3, 4]], dtype=torch.int32),
    torch.tensor([[True], [False]]), torch.tensor([65504.0, 1.0], dtype=torch.float16),
    torch.tensor([0.1, 0.2], dtype=torch.float16),
    torch.tensor([0.1, 3.3e38], dtype=torch.bfloat16),
    torch.tensor([-128, 127], dtype=torch.int8), torch.tensor([255], dtype=torch.uint8),
    torch.arange(100.0), torch.arange(100), torch.arange(60).reshape(3, 4, 5),
    torch.arange(1200).reshape(40, 30), torch.arange(2000.0) / 7,
    torch.arange(5000, dtype=torch.int32).reshape(10, 20, 25),
    torch.arange(2 * 3 * 4 * 5.0).reshape(2, 3, 4, 5) - 60,
    torch.arange(1001.0).reshape(1, 1001), torch.arange(1001.0).reshape(1001, 1),
    torch.tensor([1.0, 2.0]).reshape(1, 1, 2, 1),
    torch.linspace(-1e6, 1e6, 7), torch.logspace(-10, 10, 9),
]

EMPTY = [torch.zeros(0), torch.zeros(0, 3), torch.zeros(2, 0, 4), torch.zeros(0, dtype=torch.int64),
         torch.zeros(0, dtype=torch.bool), torch.zeros(3, 0, dtype=torch.float64),
         torch.zeros(0, dtype=torch.float16), torch.zeros(0, 2, dtype=torch.int32)]


@pytest.mark.parametrize("t", HAND_PICKED + EMPTY, ids=lambda t: f"{tuple(t.shape)}-{t.dtype}")
def test_hand_picked(t):
    check(t)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES + INT_DTYPES + [torch.bool])
@pytest.mark.parametrize("t", HAND_PICKED[:40], ids=lambda t: f"{tuple(t.shape)}")
def test_hand_picked_all_dtypes(t, dtype):
    t = t.to(torch.float64)
    if not dtype.is_floating_point and dtype != torch.bool:
        info = torch.iinfo(dtype)  # keep float->int casts in range
        t = torch.nan_to_num(t, nan=0.0).clamp(max(info.min, -1e15), min(info.max, 1e15))
    check(t.to(dtype))


def _random_tensor(rng):
    ndim = int(rng.integers(0, 5))
    shape = tuple(int(n) for n in rng.integers(1, 7 if ndim > 2 else 40, size=ndim))
    if rng.random() < 0.1:
        shape = (int(rng.integers(2, 6)), int(rng.integers(300, 700)))  # summarized
    kind = rng.choice(["int", "intfloat", "narrow", "wide", "tiny", "huge", "mixed", "bool"])
    n = int(np.prod(shape))
    if kind == "int":
        data = rng.integers(-10 ** int(rng.integers(1, 12)), 10 ** 6, size=n)
        return torch.tensor(data.reshape(shape), dtype=INT_DTYPES[int(rng.integers(0, 3))])
    if kind == "bool":
        return torch.tensor(rng.random(n).reshape(shape) < 0.5)
    if kind == "intfloat":
        data = rng.integers(-1000, 1000, size=n).astype(np.float64)
    elif kind == "narrow":
        data = rng.normal(size=n) * 10 ** rng.uniform(-3, 4)
    elif kind == "wide":
        data = rng.normal(size=n) * 10.0 ** rng.uniform(-8, 8, size=n)
    elif kind == "tiny":
        data = rng.normal(size=n) * 1e-6
    elif kind == "huge":
        data = rng.normal(size=n) * 1e9
    else:
        data = rng.normal(size=n) * 100
        special = rng.random(n)
        data[special < 0.05] = np.nan
        data[(special >= 0.05) & (special < 0.1)] = np.inf
        data[(special >= 0.1) & (special < 0.15)] = -np.inf
        data[(special >= 0.15) & (special < 0.2)] = 0.0
        data[(special >= 0.2) & (special < 0.25)] = -0.0
    dtype = FLOAT_DTYPES[int(rng.integers(0, len(FLOAT_DTYPES)))]
    return torch.tensor(data.reshape(shape), dtype=torch.float64).to(dtype)


@pytest.mark.parametrize("seed", range(400))
def test_random(seed):
    check(_random_tensor(np.random.default_rng(seed)))


@pytest.mark.parametrize("seed", range(150))
def test_random_with_printoptions(seed):
    rng = np.random.default_rng(10_000 + seed)
    opts = {}
    if rng.random() < 0.5:
        opts["precision"] = int(rng.integers(0, 9))
    if rng.random() < 0.5:
        opts["threshold"] = int(rng.integers(0, 60))
    if rng.random() < 0.5:
        opts["edgeitems"] = int(rng.integers(0, 5))
    if rng.random() < 0.5:
        opts["linewidth"] = int(rng.integers(10, 160))
    if rng.random() < 0.3:
        opts["sci_mode"] = bool(rng.random() < 0.5)
    if rng.random() < 0.2:
        opts["profile"] = str(rng.choice(["default", "short", "full"]))
    set_both(**opts)
    t = _random_tensor(rng)
    if rng.random() < 0.2:
        t = t.to(torch.float32).requires_grad_(True)
        if rng.random() < 0.5:
            t = t * 2
    check(t)


@pytest.mark.parametrize("profile", ["default", "short", "full"])
def test_profiles(profile):
    set_both(profile=profile)
    assert ts.get_printoptions() == torch._tensor_str.get_printoptions()
    for t in (torch.arange(3000.0) / 3, torch.arange(1500).reshape(30, 50),
              torch.tensor([1.23456789, 2.0])):
        check(t)


def test_printoptions_semantics():
    assert ts.get_printoptions() == {"precision": 4, "threshold": 1000, "edgeitems": 3,
                                     "linewidth": 80, "sci_mode": None}
    ts.set_printoptions(precision=2, sci_mode=True)
    ts.set_printoptions(linewidth=100)  # sci_mode resets to None, like torch
    assert ts.get_printoptions()["sci_mode"] is None
    assert ts.get_printoptions()["precision"] == 2
    with ts.printoptions(precision=7):
        assert ts.get_printoptions()["precision"] == 7
    assert ts.get_printoptions()["precision"] == 2
    ts.set_printoptions(profile="full")
    assert ts.get_printoptions()["threshold"] == math.inf
    with pytest.raises(ValueError):
        ts.set_printoptions(profile="nope")


@pytest.mark.parametrize("opts", [dict(sci_mode=True), dict(sci_mode=False),
                                  dict(precision=0), dict(precision=10),
                                  dict(edgeitems=0), dict(edgeitems=0, threshold=5),
                                  dict(edgeitems=1, threshold=3), dict(linewidth=1),
                                  dict(threshold=0), dict(linewidth=200)])
def test_printoptions_cases(opts):
    set_both(**opts)
    for t in HAND_PICKED + EMPTY:
        check(t)


def test_autograd_suffixes():
    a = torch.tensor([1.0, 2.0], requires_grad=True)
    check(a)
    check(a + 1)
    check((a * a).sum())
    check(torch.ones(3, 30, requires_grad=True) * 3.5)
    assert ts.format_tensor(np.array([1.0]), "float32", requires_grad=True,
                            grad_fn="AddBackward0") == "tensor([1.], grad_fn=<AddBackward0>)"


@pytest.mark.parametrize("linewidth", [20, 40, 60, 80])
def test_suffix_wrapping(linewidth):
    set_both(linewidth=linewidth)
    for n in range(1, 30):
        check(torch.arange(n, dtype=torch.int16))
        check(torch.arange(float(n), dtype=torch.float64).requires_grad_(True) * 1.5)


def test_device_suffix():
    f = ts.format_tensor
    assert f(np.array([1.0, 2.0]), "float32", "cuda:0") == "tensor([1., 2.], device='cuda:0')"
    assert f(np.array([1, 2]), "int32", "cuda:1") == \
        "tensor([1, 2], device='cuda:1', dtype=vt.int32)"
    assert f(np.array(3.0), "float32", "cuda") == "tensor(3., device='cuda:0')"
    assert f(np.zeros((0, 3)), "int64", "cuda:0") == \
        "tensor([], device='cuda:0', size=(0, 3), dtype=vt.int64)"
    assert f(np.array([1.0]), "float32", "cuda:0", requires_grad=True) == \
        "tensor([1.], device='cuda:0', requires_grad=True)"


def test_custom_prefix():
    t = torch.nn.Parameter(torch.arange(40.0).reshape(2, 20) / 3)
    expected = repr(t)  # "Parameter containing:\ntensor(...)"
    _, _, rest = expected.partition("\n")
    assert ts.format_tensor(to_numpy(t), "float32", requires_grad=True) == rest


def test_parameter_repr_matches_torch():
    import vibetensor.torch as vt  # the Tensor's own __repr__ (this file's other tests load the formatter alone)

    for data in (np.arange(6.0).reshape(2, 3) / 3, np.zeros((0, 2))):
        for requires_grad in (True, False):
            t = torch.nn.Parameter(torch.from_numpy(data.copy()).float(), requires_grad=requires_grad)
            v = vt.nn.Parameter(vt.from_numpy(data.copy()).float(), requires_grad=requires_grad)
            assert repr(v) == repr(t) and str(v) == str(t)
            assert repr(v).startswith("Parameter containing:\n")
            # what a parameter gives is a plain tensor again
            for fv, ft in ((v.detach(), t.detach()), (v.data, t.data), (v * 2, t * 2), (v[:1], t[:1])):
                assert repr(fv) == repr(ft)
    linear = vt.nn.Linear(2, 1)
    assert repr(linear.weight).startswith("Parameter containing:\ntensor([[")
