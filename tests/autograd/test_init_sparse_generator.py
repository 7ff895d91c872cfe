"""nn.init against torch: sparse_ (per-column zero count, std, errors), the deprecated non-underscore aliases
(FutureWarning with torch's message, same result as the underscore function), generator= reproducibility for every
initialiser that takes one, orthogonal_ (orthogonality to 1e-5, sign fix, gain), eye_, dirac_ as an identity
convolution, and the zero-element warning of kaiming_*."""
import math
import warnings

import numpy as np
import pytest
import torch
import vibetensor.torch as vt

init = vt.nn.init
ALIASES = ["uniform", "normal", "constant", "xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal",
           "orthogonal", "sparse", "dirac", "eye"]


def gen(seed):
    g = vt.Generator()
    g.manual_seed(seed)
    return g


@pytest.mark.parametrize("rows,cols,sparsity", [(10, 6, 0.3), (7, 3, 0.0), (5, 4, 1.0), (9, 2, 0.5), (1, 5, 0.1)])
def test_sparse_zero_count_per_column_matches_torch(rows, cols, sparsity):
    w = init.sparse_(vt.empty(rows, cols), sparsity, std=0.5)
    t = torch.nn.init.sparse_(torch.empty(rows, cols), sparsity, std=0.5)
    zeros = (w.numpy() == 0).sum(axis=0)
    np.testing.assert_array_equal(zeros, (t.numpy() == 0).sum(axis=0))
    assert (zeros == math.ceil(sparsity * rows)).all()


def test_sparse_std_and_rows_vary():
    w = init.sparse_(vt.empty(400, 300), 0.25, std=0.2).numpy()
    nz = w[w != 0]
    assert abs(nz.std() - 0.2) < 0.01 and abs(nz.mean()) < 0.01
    patterns = {tuple(np.flatnonzero(w[:, c] == 0)) for c in range(w.shape[1])}
    assert len(patterns) > 250  # each column draws its own zero rows


@pytest.mark.parametrize("shape", [(3,), (2, 3, 4), ()])
def test_sparse_rejects_non_matrix(shape):
    with pytest.raises(ValueError, match="Only tensors with 2 dimensions are supported"):
        torch.nn.init.sparse_(torch.empty(shape), 0.1)
    with pytest.raises(ValueError, match="Only tensors with 2 dimensions are supported"):
        init.sparse_(vt.empty(shape), 0.1)


def test_sparse_generator_fixes_values_not_zero_rows():
    a = init.sparse_(vt.empty(6, 4), 0.0, generator=gen(5)).numpy()
    b = init.sparse_(vt.empty(6, 4), 0.0, generator=gen(5)).numpy()
    np.testing.assert_array_equal(a, b)


ALIAS_ARGS = {"constant": (0.5,), "sparse": (0.0,)}


@pytest.mark.parametrize("name", ALIASES)
def test_deprecated_alias_warns_like_torch_and_matches(name):
    shape = (4, 4, 3) if name == "dirac" else (5, 4)
    args = ALIAS_ARGS.get(name, ())
    with pytest.warns(FutureWarning) as trec:
        getattr(torch.nn.init, name)(torch.empty(shape), *args)
    with pytest.warns(FutureWarning) as vrec:
        out = getattr(init, name)(vt.empty(*shape), *args)
    assert str(vrec[0].message) == str(trec[0].message)
    assert vrec[0].filename == __file__  # stacklevel points at the caller, as torch's
    assert getattr(init, name).__name__ == name
    vt.manual_seed(11)
    ref = getattr(init, name + "_")(vt.empty(*shape), *args)
    vt.manual_seed(11)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        out = getattr(init, name)(vt.empty(*shape), *args)
    np.testing.assert_array_equal(out.numpy(), ref.numpy())


GEN_CASES = [("uniform_", (-2.0, 3.0)), ("normal_", (1.0, 2.0)), ("xavier_uniform_", ()), ("xavier_normal_", ()),
             ("kaiming_uniform_", ()), ("kaiming_normal_", ()), ("trunc_normal_", ()), ("orthogonal_", ()),
             ("sparse_", (0.0,))]


@pytest.mark.parametrize("name,args", GEN_CASES)
def test_generator_is_used(name, args):
    assert "generator" in __import__("inspect").signature(getattr(torch.nn.init, name)).parameters
    a = getattr(init, name)(vt.empty(6, 5), *args, generator=gen(3)).numpy()
    vt.manual_seed(0)
    b = getattr(init, name)(vt.empty(6, 5), *args, generator=gen(3)).numpy()
    c = getattr(init, name)(vt.empty(6, 5), *args, generator=gen(4)).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    if name == "sparse_":
        return  # its zero rows come from the global stream, as torch's
    # the global stream is left alone by a private generator
    vt.manual_seed(9)
    getattr(init, name)(vt.empty(6, 5), *args, generator=gen(3))
    after = vt.rand(3).numpy()
    vt.manual_seed(9)
    np.testing.assert_array_equal(after, vt.rand(3).numpy())


@pytest.mark.parametrize("shape", [(6, 4), (4, 6), (5, 5), (3, 2, 4), (8, 3, 2, 2), (1, 7)])
@pytest.mark.parametrize("gain", [1, 2.5])
def test_orthogonal_rows_or_columns_are_orthonormal(shape, gain):
    w = init.orthogonal_(vt.empty(*shape, dtype=vt.float64), gain=gain).numpy().reshape(shape[0], -1) / gain
    small = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
    np.testing.assert_allclose(small, np.eye(small.shape[0]), atol=1e-5)
    t = torch.nn.init.orthogonal_(torch.empty(shape, dtype=torch.float64), gain=gain).reshape(shape[0], -1) / gain
    tsmall = t @ t.T if t.shape[0] <= t.shape[1] else t.T @ t
    np.testing.assert_allclose(small, tsmall.numpy(), atol=1e-5)


def test_orthogonal_float32_and_empty_and_errors():
    w = init.orthogonal_(vt.empty(16, 9)).numpy()
    np.testing.assert_allclose(w.T @ w, np.eye(9), atol=1e-5)
    assert tuple(init.orthogonal_(vt.empty(0, 3)).shape) == (0, 3)
    for shape in [(3,), ()]:
        with pytest.raises(ValueError, match="Only tensors with 2 or more dimensions are supported"):
            torch.nn.init.orthogonal_(torch.empty(shape))
        with pytest.raises(ValueError, match="Only tensors with 2 or more dimensions are supported"):
            init.orthogonal_(vt.empty(shape))


@pytest.mark.parametrize("shape", [(3, 5), (5, 3), (4, 4), (0, 2)])
def test_eye_matches_torch(shape):
    np.testing.assert_array_equal(init.eye_(vt.empty(*shape)).numpy(), torch.nn.init.eye_(torch.empty(shape)).numpy())


def test_eye_rejects_non_matrix():
    with pytest.raises(ValueError, match="Only tensors with 2 dimensions are supported"):
        torch.nn.init.eye_(torch.empty(2, 2, 2))
    with pytest.raises(ValueError, match="Only tensors with 2 dimensions are supported"):
        init.eye_(vt.empty(2, 2, 2))


@pytest.mark.parametrize("conv,shape,groups", [("conv1d", (4, 4, 3), 1), ("conv2d", (6, 3, 3, 3), 2),
                                               ("conv3d", (3, 3, 1, 3, 3), 1)])
def test_dirac_is_an_identity_convolution(conv, shape, groups, rng):
    w = init.dirac_(vt.empty(*shape, dtype=vt.float64), groups)
    cin = shape[1] * groups
    x = rng.standard_normal((2, cin) + (5,) * (len(shape) - 2))
    pad = tuple(k // 2 for k in shape[2:])
    y = getattr(vt.nn.functional, conv)(vt.from_numpy(x.copy()), w, padding=pad, groups=groups).numpy()
    per_group_out = shape[0] // groups
    for g in range(groups):
        for d in range(min(per_group_out, shape[1])):
            np.testing.assert_allclose(y[:, g * per_group_out + d], x[:, g * shape[1] + d], atol=1e-12)


@pytest.mark.parametrize("name", ["kaiming_uniform_", "kaiming_normal_"])
def test_kaiming_zero_element_warns_like_torch(name):
    with pytest.warns(UserWarning, match="Initializing zero-element tensors is a no-op"):
        getattr(torch.nn.init, name)(torch.empty(0, 3))
    with pytest.warns(UserWarning, match="Initializing zero-element tensors is a no-op"):
        out = getattr(init, name)(vt.empty(0, 3))
    assert tuple(out.shape) == (0, 3)


def test_public_names_cover_torch():
    names = [n for n in dir(torch.nn.init) if not n.startswith("_") and n[0].islower() and n not in ("torch",
                                                                                                    "warnings")]
    assert [n for n in names if not hasattr(init, n)] == []
