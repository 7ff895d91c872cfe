"""F.embedding_bag's max_norm and scale_grad_by_freq against torch, and its index and offsets errors: max_norm
renormalizes the picked rows of weight in place before the bags are reduced (outputs, the renormalized weight
and the gradients of weight and per_sample_weights match torch); scale_grad_by_freq divides each row's gradient
by how often the input picks it (torch's CPU kernel divides by a wrong count when counts differ, pytorch#190063:
there the reference is numpy); an index out of range is refused with the message of the torch kernel that
would run, decreasing offsets with a RuntimeError, sparse=True with NotImplementedError. Max mode gives a tied
maximum's gradient to the bag's first entry holding it, as torch; float16/bfloat16 tables are reduced in float32;
per_sample_weights of another dtype than weight are refused as torch refuses them; indices and offsets of two
integer types are promoted to a common one first."""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt

W = np.random.default_rng(0).standard_normal((7, 3)).astype(np.float32) * 2  # row norms around 3
IDX = np.array([1, 4, 1, 0, 6, 4, 4, 2], dtype=np.int64)


def run(lib, idx, off, psw=None, **kw):
    """Output, weight after the call, weight.grad and per_sample_weights.grad (or None) under `lib`."""
    w = lib.from_numpy(W.copy()).requires_grad_()
    p = None if psw is None else lib.from_numpy(psw.copy()).requires_grad_()
    o = lib.nn.functional.embedding_bag(lib.from_numpy(idx), w, None if off is None else lib.from_numpy(off),
                                        per_sample_weights=p, **kw)
    up = np.arange(o.numel(), dtype=np.float32).reshape(tuple(o.shape)) - 3
    (o * lib.from_numpy(up)).sum().backward()
    return o.detach().numpy(), w.detach().numpy(), w.grad.numpy(), None if p is None else p.grad.numpy()


def assert_same(v, t):
    for a, b in zip(v, t):
        if b is None:
            assert a is None
        else:
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


MAX_NORM = [
    dict(mode="sum", max_norm=1.0), dict(mode="mean", max_norm=2.0, norm_type=1.0),
    dict(mode="max", max_norm=1.5, include_last_offset=True), dict(mode="sum", max_norm=1.0, psw=True),
    dict(mode="mean", max_norm=0.5, padding_idx=4), dict(mode="max", max_norm=1.0, norm_type=float("inf")),
]


@pytest.mark.parametrize("kw", MAX_NORM, ids=[str(i) for i in range(len(MAX_NORM))])
def test_max_norm_renormalizes_like_torch(kw):
    kw = dict(kw)
    psw = np.linspace(-1, 1, IDX.shape[0]).astype(np.float32) if kw.pop("psw", False) else None
    off = np.array([0, 3, 3, 8] if kw.get("include_last_offset") else [0, 3, 3])
    t, v = run(torch, IDX, off, psw, **kw), run(vt, IDX, off, psw, **kw)
    assert_same(v, t)
    # the picked rows were renormalized, row 5 (never picked) was not
    assert not np.allclose(v[1][[1, 4]], W[[1, 4]]) and np.array_equal(v[1][5], W[5])


def test_max_norm_on_2d_input_and_module_like_torch():
    idx = IDX.reshape(2, 4)
    assert_same(run(vt, idx, None, mode="mean", max_norm=1.0), run(torch, idx, None, mode="mean", max_norm=1.0))
    tm = torch.nn.EmbeddingBag.from_pretrained(torch.from_numpy(W.copy()), freeze=False, max_norm=1.0, mode="sum")
    vm = vt.nn.EmbeddingBag.from_pretrained(vt.from_numpy(W.copy()), freeze=False, max_norm=1.0, mode="sum")
    np.testing.assert_allclose(vm(vt.from_numpy(idx)).detach().numpy(), tm(torch.from_numpy(idx)).detach().numpy(),
                               rtol=1e-5)
    np.testing.assert_allclose(vm.weight.detach().numpy(), tm.weight.detach().numpy(), rtol=1e-6)


def freq_reference(idx, off, mode, psw=None, padding_idx=None, include_last_offset=False):
    """numpy weight.grad of run(): each entry's bag gradient (scaled by its weight, or by 1/bag size in mean
    mode) into its row, divided by how often the whole input holds that row."""
    n = idx.shape[0]
    ends = list(off[1:]) if include_last_offset else list(off[1:]) + [n]
    nb = len(ends)
    up = np.arange(nb * W.shape[1], dtype=np.float32).reshape(nb, -1) - 3
    counts = np.bincount(idx, minlength=W.shape[0])
    grad = np.zeros_like(W)
    for b in range(nb):
        members = [i for i in range(off[b], ends[b]) if idx[i] != padding_idx]
        for i in members:
            scale = psw[i] if psw is not None else (1 / len(members) if mode == "mean" else 1)
            grad[idx[i]] += up[b] * scale / counts[idx[i]]
    return grad


@pytest.mark.parametrize("kw", [dict(mode="sum"), dict(mode="mean"), dict(mode="sum", psw=True),
                                dict(mode="mean", padding_idx=4), dict(mode="sum", include_last_offset=True)])
def test_scale_grad_by_freq_divides_by_each_rows_count(kw):
    kw = dict(kw)
    psw = np.linspace(-1, 1, IDX.shape[0]).astype(np.float32) if kw.pop("psw", False) else None
    off = np.array([0, 3, 3, 8] if kw.get("include_last_offset") else [0, 3, 3])
    v = run(vt, IDX, off, psw, scale_grad_by_freq=True, **kw)
    np.testing.assert_allclose(v[2], freq_reference(IDX, off, psw=psw, **kw), rtol=1e-5, atol=1e-6)
    t = run(torch, IDX, off, psw, **kw)  # the forward and per_sample_weights' gradient are the unscaled ones
    np.testing.assert_allclose(v[0], t[0], rtol=1e-5)
    if psw is not None:
        np.testing.assert_allclose(v[3], t[3], rtol=1e-5, atol=1e-6)
    # where every picked row is picked equally often, torch's CPU kernel is right: the same as torch
    even, even_off = np.array([2, 5, 5, 2, 0, 0]), np.array([0, 2, 2])
    assert_same(run(vt, even, even_off, scale_grad_by_freq=True, mode=kw["mode"]),
                run(torch, even, even_off, scale_grad_by_freq=True, mode=kw["mode"]))


def raised(lib, call):
    with pytest.raises(Exception) as info:
        call(lib)
    return type(info.value), str(info.value)


ERRORS = {
    "sum_f32": lambda L: L.nn.functional.embedding_bag(L.tensor([0, 9]), L.ones(3, 2), L.tensor([0]), mode="sum"),
    "mean_neg": lambda L: L.nn.functional.embedding_bag(L.tensor([[0, -1]]), L.ones(3, 2)),
    "max_f32": lambda L: L.nn.functional.embedding_bag(L.tensor([0, 9]), L.ones(3, 2), L.tensor([0]), mode="max"),
    "sum_f64": lambda L: L.nn.functional.embedding_bag(L.tensor([0, 9]), L.ones(3, 2, dtype=L.float64),
                                                       L.tensor([0]), mode="sum"),
    "padding": lambda L: L.nn.functional.embedding_bag(L.tensor([0, 9]), L.ones(3, 2), L.tensor([0]),
                                                       padding_idx=1),
    "max_norm_high": lambda L: L.nn.functional.embedding_bag(L.tensor([0, 9]), L.ones(3, 2), L.tensor([0]),
                                                             max_norm=1.0),
    "max_norm_neg": lambda L: L.nn.functional.embedding_bag(L.tensor([0, -1]), L.ones(3, 2), L.tensor([0]),
                                                            max_norm=1.0),
}


@pytest.mark.parametrize("name", list(ERRORS))
def test_out_of_range_index_errors_like_torch(name):
    assert raised(vt, ERRORS[name]) == raised(torch, ERRORS[name])


def test_offsets_errors_and_unsupported():
    for off in ([0, 3, 1], [0, 2, 1, 4]):
        call = lambda L: L.nn.functional.embedding_bag(  # noqa: E731
            L.tensor([1, 2, 0, 1]), L.ones(3, 2), L.tensor(off), include_last_offset=len(off) == 4)
        assert raised(torch, call)[0] is RuntimeError
        kind, msg = raised(vt, call)
        assert kind is RuntimeError and "non-decreasing" in msg and str(off) in msg
    call = lambda L: L.nn.functional.embedding_bag(  # noqa: E731
        L.tensor([1]), L.ones(3, 2), L.tensor([], dtype=L.int64), include_last_offset=True)
    assert raised(vt, call) == raised(torch, call)
    # no bag: torch reads no index, so none is refused
    call = lambda L: L.nn.functional.embedding_bag(  # noqa: E731
        L.tensor([7]), L.ones(3, 2), L.tensor([0]), include_last_offset=True)
    assert tuple(call(vt).shape) == tuple(call(torch).shape) == (0, 2)
    with pytest.raises(NotImplementedError, match="sparse"):
        vt.nn.EmbeddingBag(3, 2, sparse=True)(vt.tensor([[0, 1]]))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_max_mode_ties_send_the_gradient_to_the_first_entry_like_torch(dtype):
    w = W.astype(dtype)
    w[1] += 10
    w[3] = w[1]  # rows 1 and 3 tie for the maximum in every column
    w[5, 0] = w[2, 0] = 10  # and rows 2 and 5 in one column
    idx, off = np.array([3, 1, 0, 5, 2, 2, 1, 3]), np.array([0, 3, 5])
    got = []
    for lib in (torch, vt):
        wt = lib.from_numpy(w.copy()).requires_grad_()
        o = lib.nn.functional.embedding_bag(lib.from_numpy(idx), wt, lib.from_numpy(off), mode="max")
        (o * lib.from_numpy(np.arange(9, dtype=dtype).reshape(3, 3) + 1)).sum().backward()
        got.append((o.detach().numpy(), wt.grad.numpy()))
    np.testing.assert_array_equal(got[1][0], got[0][0])
    np.testing.assert_array_equal(got[1][1], got[0][1])
    assert got[1][1][3].all() and got[1][1][5, 0] != 0  # bag 0 gives row 3 everything; bag 1 row 5 column 0


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_half_precision_tables_accumulate_in_float32(dtype, mode):
    """Bags of 8 rows: the output rounds once from float32 as torch's (float16 equal to torch; bfloat16, whose
    fast kernel rounds ties away from zero, within one unit), and the gradient is at least as close to the
    float64 one as torch's (which adds bfloat16 and float16 rows up in their own precision)."""
    r = np.random.default_rng(2)
    w, idx, off = r.standard_normal((20, 6)).astype(np.float32), r.integers(0, 20, 96), np.arange(0, 96, 8)
    up = np.linspace(-1, 1, 72).reshape(12, 6).astype(np.float32)
    got = []
    for lib in (torch, vt):
        wt = lib.from_numpy(w).to(getattr(lib, dtype)).requires_grad_()
        o = lib.nn.functional.embedding_bag(lib.from_numpy(idx), wt, lib.from_numpy(off), mode=mode)
        assert o.dtype == getattr(lib, dtype)
        (o * lib.from_numpy(up).to(getattr(lib, dtype))).sum().backward()
        got.append((o.float().detach().numpy(), wt.grad.float().numpy(), wt.detach().float().numpy()))
    exact_w = torch.from_numpy(got[0][2]).double().requires_grad_()
    exact_up = torch.from_numpy(up).to(getattr(torch, dtype)).double()
    ref = torch.nn.functional.embedding_bag(torch.from_numpy(idx), exact_w, torch.from_numpy(off), mode=mode)
    (ref * exact_up).sum().backward()
    if dtype == "float16" or mode == "max":
        np.testing.assert_array_equal(got[1][0], got[0][0])
    else:
        np.testing.assert_allclose(got[1][0], got[0][0], rtol=2 ** -7)
    exact = exact_w.grad.numpy()
    assert np.abs(got[1][1] - exact).sum() <= np.abs(got[0][1] - exact).sum()


@pytest.mark.parametrize("wd,pd", [("float32", "float64"), ("float32", "int64"), ("bfloat16", "float32"),
                                   ("float64", "float16")])
def test_per_sample_weights_dtype_must_match_like_torch(wd, pd):
    call = lambda L: L.nn.functional.embedding_bag(  # noqa: E731
        L.tensor([1, 2]), L.ones(3, 2, dtype=getattr(L, wd)), L.tensor([0]), mode="sum",
        per_sample_weights=L.ones(2, dtype=getattr(L, pd)))
    assert raised(vt, call) == raised(torch, call)


@pytest.mark.parametrize("idx_dtype,off_dtype", [("int16", "int64"), ("int64", "int16"), ("uint8", "int64"),
                                                 ("int32", "int16"), ("bool", "int64"), ("int16", "int16"),
                                                 ("int64", "float32"), ("float64", "float64")])
def test_indices_and_offsets_promote_to_a_common_type_like_torch(idx_dtype, off_dtype):
    def call(lib):
        idx = lib.tensor([1, 2, 0], dtype=getattr(lib, idx_dtype))
        return lib.nn.functional.embedding_bag(idx, lib.from_numpy(W.copy()),
                                               lib.tensor([0, 1], dtype=getattr(lib, off_dtype)))
    try:
        want = call(torch).numpy()
    except RuntimeError:
        assert raised(vt, call) == raised(torch, call)
        return
    np.testing.assert_allclose(call(vt).numpy(), want, rtol=1e-6)


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_entries_after_the_last_offset_belong_to_no_bag(mode):
    """include_last_offset with offsets[-1] < len(input): the trailing entries are in no bag in every mode
    (torch's CPU kernels disagree among modes there, pytorch#191965; its float32 sum agrees with this)."""
    w = np.array([[1.0, 1.0], [5.0, 5.0], [9.0, 9.0]], dtype=np.float32)
    wt = vt.from_numpy(w.copy()).requires_grad_()
    out = vt.nn.functional.embedding_bag(vt.tensor([0, 1, 2]), wt, vt.tensor([0, 2]), mode=mode,
                                         include_last_offset=True)
    np.testing.assert_allclose(out.detach().numpy(), {"sum": [[6, 6]], "mean": [[3, 3]], "max": [[5, 5]]}[mode])
    out.sum().backward()
    assert not wt.grad.numpy()[2].any()
    if mode == "sum":
        ref = torch.nn.functional.embedding_bag(torch.tensor([0, 1, 2]), torch.from_numpy(w), torch.tensor([0, 2]),
                                                mode="sum", include_last_offset=True)
        np.testing.assert_allclose(out.detach().numpy(), ref.numpy())
