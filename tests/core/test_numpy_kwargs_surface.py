"""torch's NumPy-style keyword spellings (python/vibetensor/torch/_numpy_kwargs.py) against torch: every function
and Tensor method listed there takes `axis` for `dim` and `keepdims` for `keepdim` with torch's results, a
dimension given twice is torch's TypeError, and the Python-level functions torch leaves without the spellings
(torch.split, F.softmax) refuse them as torch does."""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from vibetensor.torch import _numpy_kwargs

pytestmark = pytest.mark.filterwarnings(r"ignore:index_reduce\(\) is in beta")

X = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)
IDX = np.array([[[0, 2, 1, 0]], [[1, 1, 2, 0]]])  # [2, 1, 4] along dim 1
SRC = np.random.default_rng(1).standard_normal((2, 1, 4)).astype(np.float32)


def case(lib, name, method=False):
    """Calls `name` with the NumPy spelling, as a function or (method) on the first tensor."""
    x, idx, src = lib.from_numpy(X.copy()), lib.from_numpy(IDX), lib.from_numpy(SRC)
    ones = lib.tensor([0, 2])
    table = {
        "kthvalue": ((x, 2), dict(axis=1, keepdims=True)),
        "quantile": ((x, 0.5), dict(axis=1, keepdims=True)),
        "nanquantile": ((x, 0.5), dict(axis=1)),
        "count_nonzero": ((x > 0,), dict(axis=1)),
        "all": ((x > -1,), dict(axis=1, keepdims=True)),
        "any": ((x > 1,), dict(axis=2)),
        "topk": ((x, 2), dict(axis=1)),
        "renorm": ((x, 2), dict(axis=0, maxnorm=1.0)),
        "chunk": ((x, 2), dict(axis=2)),
        "narrow": ((x,), dict(axis=1, start=1, length=2)),
        "select": ((x,), dict(axis=1, index=2)),
        "squeeze": ((x[:, :1],), dict(axis=1)),
        "unsqueeze": ((x,), dict(axis=0)),
        "tensor_split": ((x, 2), dict(axis=2)),
        "split_with_sizes": ((x, [1, 3]), dict(axis=2)),
        "repeat_interleave": ((x, 2), dict(axis=1)),
        "cross": ((x[:, :, 0], x[:, :, 1]), dict(axis=1)),
        "take_along_dim": ((x, idx), dict(axis=1)),
        "gather": ((x,), dict(axis=1, index=idx)),
        "index_add": ((x,), dict(axis=1, index=ones, source=x[:, :2])),
        "index_copy": ((x,), dict(axis=1, index=ones, source=x[:, :2] * 2)),
        "index_fill": ((x,), dict(axis=1, index=ones, value=-1.0)),
        "index_reduce": ((x,), dict(axis=1, index=ones, source=x[:, :2], reduce="prod")),
        "index_select": ((x,), dict(axis=1, index=ones)),
        "scatter": ((x,), dict(axis=1, index=idx, src=src)),
        "scatter_add": ((x,), dict(axis=1, index=idx, src=src)),
        "scatter_reduce": ((x,), dict(axis=1, index=idx, src=src, reduce="amax")),
        "select_scatter": ((x, x[:, 0] + 1), dict(axis=1, index=0)),
        "slice_scatter": ((x, x[:, :1] + 1), dict(axis=1, start=0, end=1)),
        "cat": (([x, x],), dict(axis=-1)),
        "concat": (([x, x],), dict(axis=1)),
        "concatenate": (([x, x],), dict(axis=0)),
        "stack": (([x, x],), dict(axis=2)),
    }
    base = name.rstrip("_")
    if base in table:
        args, kwargs = table[base]
    elif base in ("argsort", "cummax", "cummin", "cumprod", "cumsum", "log_softmax", "logcumsumexp", "softmax",
                  "sort", "diff", "unbind", "std_mean", "var_mean"):
        args, kwargs = (x,), dict(axis=1)
    else:  # the reductions with keepdim
        args, kwargs = (x,), dict(axis=1, keepdims=True)
    if method:
        return getattr(args[0], name)(*args[1:], **kwargs)
    return getattr(lib, name)(*args, **kwargs)


def same(v, t):
    """Equal results: a tensor, or a tuple (values, indices; chunks) of them."""
    if isinstance(t, (tuple, list)):
        assert isinstance(v, (tuple, list)) and len(v) == len(t)
        for a, b in zip(v, t):
            same(a, b)
        return
    assert tuple(v.shape) == tuple(t.shape)
    assert str(v.dtype).rsplit(".", 1)[-1] == str(t.dtype).rsplit(".", 1)[-1]
    np.testing.assert_allclose(np.asarray(v.tolist(), dtype=np.float64), np.asarray(t.tolist(), dtype=np.float64),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", _numpy_kwargs.FUNCTIONS)
def test_functions_take_axis_and_keepdims_like_torch(name):
    same(case(vt, name), case(torch, name))


@pytest.mark.parametrize("name", _numpy_kwargs.METHODS)
def test_tensor_methods_take_axis_and_keepdims_like_torch(name):
    if name in ("cat", "concat", "concatenate", "stack"):
        pytest.skip("not a Tensor method")
    same(case(vt, name, method=True), case(torch, name, method=True))


def test_lists_name_only_what_torch_names():
    """Every listed name is a torch function (or method) that takes the spelling: the lists claim no more."""
    for name in _numpy_kwargs.FUNCTIONS:
        assert hasattr(torch, name) and hasattr(vt, name), name
    for name in _numpy_kwargs.METHODS:
        assert hasattr(torch.Tensor, name) and hasattr(vt.Tensor, name), name


def test_the_spellings_change_nothing_else():
    x = vt.from_numpy(X)
    assert x.sum(axis=1, keepdims=True).tolist() == x.sum(dim=1, keepdim=True).tolist()
    assert vt.sum(x, 1, keepdims=True).tolist() == vt.sum(x, 1, keepdim=True).tolist()
    values, indices = x.max(axis=2)
    assert indices.tolist() == torch.from_numpy(X).max(axis=2).indices.tolist()
    assert vt.cat([x, x], axis=-1).shape == (2, 3, 8)
    assert vt.sum(x).item() == pytest.approx(float(X.sum()), rel=1e-5)  # no dim at all still works
    assert vt.cat.__name__ == "cat" and x.sum.__name__ == "sum"


@pytest.mark.parametrize("call", [
    lambda lib, x: lib.sum(x, dim=0, axis=1),
    lambda lib, x: x.sum(0, axis=1),
    lambda lib, x: lib.sum(x, 0, keepdim=True, keepdims=True),
    lambda lib, x: lib.cat([x], dim=0, axis=0),
    lambda lib, x: x.softmax(0, axis=0),
])
def test_a_dimension_given_twice_is_torchs_type_error(call):
    with pytest.raises(TypeError) as t:
        call(torch, torch.from_numpy(X))
    with pytest.raises(TypeError) as v:
        call(vt, vt.from_numpy(X))
    assert str(v.value).split("(")[0] == str(t.value).split("(")[0]
    assert str(v.value).rsplit(" ", 1)[-1] == str(t.value).rsplit(" ", 1)[-1]  # names the same keyword


@pytest.mark.parametrize("call", [
    lambda lib, x: lib.split(x, 1, axis=0),
    lambda lib, x: x.split(1, axis=0),
    lambda lib, x: lib.nn.functional.softmax(x, axis=0),
    lambda lib, x: lib.flip(x, axis=0),
])
def test_functions_torch_leaves_without_the_spelling_refuse_it(call):
    with pytest.raises(TypeError):
        call(torch, torch.from_numpy(X))
    with pytest.raises(TypeError):
        call(vt, vt.from_numpy(X))
