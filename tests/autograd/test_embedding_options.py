"""F.embedding's and nn.Embedding's max_norm / norm_type (the picked rows renormalized in place first),
scale_grad_by_freq (each row's gradient divided by how often it is picked), padding_idx checks, and
nn.Embedding.from_pretrained, its printing and reset_parameters, against torch: values, the renormalized weights
and float64 gradients. Before these, nn.Embedding stored none of max_norm / norm_type / scale_grad_by_freq and
silently ignored them."""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from ag_helpers import check_grads, leaves

IDX = {"2d": np.array([[1, 1, 2, 6], [5, 1, 0, 6]]), "1d": np.array([3, 3, 3]), "empty": np.zeros((0, 2), np.int64),
       "scalar": np.array(4)}


def weight_pair(rows=7, cols=3, seed=0, scale=1.0):
    a = np.random.default_rng(seed).standard_normal((rows, cols)) * scale
    return vt.from_numpy(a.copy()).requires_grad_(), torch.from_numpy(a.copy()).requires_grad_()


@pytest.mark.parametrize("idx", list(IDX))
@pytest.mark.parametrize("max_norm,norm_type", [(1.0, 2.0), (0.5, 1.0), (0.8, float("inf")), (2.0, 3.0)])
@pytest.mark.parametrize("padding_idx", [None, 1])
def test_max_norm_renormalizes_picked_rows_like_torch(idx, max_norm, norm_type, padding_idx):
    v, t = weight_pair(scale=1.5)
    check_grads(lambda m, w: m.nn.functional.embedding(m.from_numpy(IDX[idx]), w, padding_idx=padding_idx,
                                                       max_norm=max_norm, norm_type=norm_type), [(v, t)])
    np.testing.assert_allclose(v.detach().numpy(), t.detach().numpy(), rtol=1e-12, atol=1e-14)
    picked = np.unique(IDX[idx])
    norms = np.linalg.norm(v.detach().numpy(), ord=norm_type, axis=1)
    assert np.all(norms[picked] <= max_norm + 1e-6)
    if idx == "2d":  # rows never picked keep their norms, some of them above max_norm
        unpicked = np.setdiff1d(np.arange(7), picked)
        assert np.any(norms[unpicked] > max_norm)


@pytest.mark.parametrize("idx", list(IDX))
@pytest.mark.parametrize("padding_idx", [None, 1, -1])
def test_scale_grad_by_freq_matches_torch(idx, padding_idx):
    pairs = leaves([(7, 3)])
    v, t = check_grads(lambda m, w: m.nn.functional.embedding(m.from_numpy(IDX[idx]), w, padding_idx=padding_idx,
                                                              scale_grad_by_freq=True), pairs)
    if idx == "2d":  # row 1 is picked three times: its gradient is the mean, not the sum, of theirs
        g = np.random.default_rng(1).standard_normal((2, 4, 3))
        if padding_idx is None:
            np.testing.assert_allclose(pairs[0][0].grad.numpy()[1], (g[0, 0] + g[0, 1] + g[1, 1]) / 3, rtol=1e-12)


def test_scale_grad_by_freq_with_max_norm_and_a_float32_weight():
    v, t = weight_pair(scale=2.0)
    v, t = v.detach().float().requires_grad_(), t.detach().float().requires_grad_()
    check_grads(lambda m, w: m.nn.functional.embedding(m.from_numpy(IDX["2d"]), w, max_norm=1.5,
                                                       scale_grad_by_freq=True) * 2, [(v, t)], dtype="float32")
    np.testing.assert_allclose(v.detach().numpy(), t.detach().numpy(), rtol=1e-6, atol=1e-7)


def test_no_grad_and_frozen_weights_still_renormalize():
    v, t = weight_pair(scale=2.0)
    with vt.no_grad(), torch.no_grad():
        out_v = vt.nn.functional.embedding(vt.from_numpy(IDX["1d"]), v, max_norm=1.0, scale_grad_by_freq=True)
        out_t = torch.nn.functional.embedding(torch.from_numpy(IDX["1d"]), t, max_norm=1.0, scale_grad_by_freq=True)
    np.testing.assert_allclose(out_v.numpy(), out_t.numpy(), rtol=1e-12)
    np.testing.assert_allclose(v.detach().numpy(), t.detach().numpy(), rtol=1e-12)
    assert not out_v.requires_grad


@pytest.mark.parametrize("padding_idx", [7, -8, 100])
def test_padding_idx_out_of_range_is_an_assertion_error(padding_idx):
    v, t = weight_pair()
    for m, w in ((torch, t), (vt, v)):
        with pytest.raises(AssertionError, match="Padding_idx must be within num_embeddings"):
            m.nn.functional.embedding(m.tensor([0]), w, padding_idx=padding_idx)
        with pytest.raises(AssertionError, match="Padding_idx must be within num_embeddings"):
            m.nn.Embedding(7, 3, padding_idx=padding_idx)


def test_sparse_is_refused_not_ignored():
    v, _ = weight_pair()
    with pytest.raises(NotImplementedError, match="sparse"):
        vt.nn.functional.embedding(vt.tensor([0]), v, sparse=True)
    with pytest.raises(NotImplementedError, match="sparse"):
        vt.nn.Embedding(7, 3, sparse=True)(vt.tensor([0]))


@pytest.mark.parametrize("kw", [dict(), dict(padding_idx=2), dict(max_norm=1.0), dict(norm_type=1.0),
                                dict(scale_grad_by_freq=True), dict(sparse=True),
                                dict(padding_idx=-1, max_norm=0.5, norm_type=3.0, scale_grad_by_freq=True)])
def test_module_attributes_and_printing_match_torch(kw):
    tm, vm = torch.nn.Embedding(9, 4, **kw), vt.nn.Embedding(9, 4, **kw)
    assert repr(vm) == repr(tm)
    for name in ("num_embeddings", "embedding_dim", "padding_idx", "max_norm", "norm_type", "scale_grad_by_freq",
                 "sparse"):
        assert getattr(vm, name) == getattr(tm, name), name
    if vm.padding_idx is not None:
        assert not vm.weight[vm.padding_idx].abs().sum().item()


@pytest.mark.parametrize("kw", [dict(max_norm=1.0), dict(max_norm=0.7, norm_type=1.0, scale_grad_by_freq=True),
                                dict(padding_idx=1, scale_grad_by_freq=True)])
def test_module_forward_backward_matches_torch(kw):
    tm = torch.nn.Embedding(7, 3, **kw).double()
    vm = vt.nn.Embedding(7, 3, **kw).double()
    vm.load_state_dict({k: vt.from_numpy(x.detach().numpy().copy() * 2) for k, x in tm.state_dict().items()})
    with torch.no_grad():
        tm.weight.mul_(2)
    idx = IDX["2d"]
    tout, vout = tm(torch.from_numpy(idx)), vm(vt.from_numpy(idx))
    np.testing.assert_allclose(vout.detach().numpy(), tout.detach().numpy(), rtol=1e-12)
    g = np.random.default_rng(3).standard_normal(tuple(tout.shape))
    tout.backward(torch.from_numpy(g))
    vout.backward(vt.from_numpy(g.copy()))
    np.testing.assert_allclose(vm.weight.grad.numpy(), tm.weight.grad.numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(vm.weight.detach().numpy(), tm.weight.detach().numpy(), rtol=1e-12)


@pytest.mark.parametrize("freeze", [True, False])
def test_from_pretrained_matches_torch(freeze):
    a = np.random.default_rng(4).standard_normal((5, 3))
    src_v, src_t = vt.from_numpy(a.copy()), torch.from_numpy(a.copy())
    vm = vt.nn.Embedding.from_pretrained(src_v, freeze=freeze, padding_idx=0, max_norm=1.0)
    tm = torch.nn.Embedding.from_pretrained(src_t, freeze=freeze, padding_idx=0, max_norm=1.0)
    assert repr(vm) == repr(tm) and vm.weight.requires_grad == tm.weight.requires_grad == (not freeze)
    # the padding row keeps its pretrained values (only a fresh weight starts zero there)
    np.testing.assert_allclose(vm.weight.detach().numpy()[0], a[0])
    idx = np.array([[0, 2, 4], [2, 2, 3]])
    np.testing.assert_allclose(vm(vt.from_numpy(idx)).detach().numpy(), tm(torch.from_numpy(idx)).detach().numpy(),
                               rtol=1e-12)
    np.testing.assert_allclose(src_v.numpy(), src_t.numpy(), rtol=1e-12)  # the weight is the tensor given
    for m in (vt, torch):
        with pytest.raises(AssertionError, match="2-dimensional"):
            m.nn.Embedding.from_pretrained(m.ones(5))
        with pytest.raises(AssertionError, match="Shape of weight does not match"):
            m.nn.Embedding(4, 3, _weight=m.ones(5, 3))


def test_reset_parameters_redraws_and_zeroes_the_padding_row():
    vm = vt.nn.Embedding(50, 8, padding_idx=3)
    before = vm.weight.detach().clone()
    vm.reset_parameters()
    w = vm.weight.detach().numpy()
    assert not np.allclose(w, before.numpy()) and not np.abs(w[3]).sum()
    assert abs(w.std() - 1.0) < 0.15 and vm.weight.requires_grad
