"""F.ctc_loss and nn.CTCLoss against torch: values and float64 gradients (through log_softmax, the input torch's
CTC gradient is defined for), padded and concatenated targets, repeated labels, empty targets, infeasible
alignments with and without zero_infinity, unbatched inputs, lengths as tensors or tuples, and torch's errors."""
import numpy as np
import pytest
import torch

import vibetensor.torch as vt
from vibetensor.torch.nn import functional_ctc as C

T, N, K = 8, 4, 5
TARGETS = np.array([[1, 2, 2, 0], [3, 3, 3, 0], [1, 4, 2, 3], [2, 0, 0, 0]])
IN_LEN = [8, 6, 7, 5]
TG_LEN = [3, 0, 4, 1]


def _run(x, targets, il, tl, concat=False, as_tensor=False, dtype="float64", **kw):
    xt = torch.tensor(x, requires_grad=True)
    xv = vt.from_numpy(x.copy()).requires_grad_()
    tg = targets
    if concat:
        tg = np.concatenate([targets[i, :tl[i]] for i in range(len(tl))]).astype(np.int64)
    ilt, tlt, ilv, tlv = il, tl, il, tl
    if as_tensor:
        ilt, tlt = torch.tensor(il), torch.tensor(tl)
        ilv, tlv = vt.from_numpy(np.array(il)), vt.from_numpy(np.array(tl))
    lt = torch.nn.functional.ctc_loss(xt.log_softmax(-1), torch.tensor(tg), ilt, tlt, **kw)
    lv = C.ctc_loss(xv.log_softmax(-1), vt.from_numpy(np.asarray(tg)), ilv, tlv, **kw)
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == "float64" else dict(rtol=1e-5, atol=1e-5)
    assert tuple(lv.shape) == tuple(lt.shape)
    np.testing.assert_allclose(lv.detach().numpy(), lt.detach().numpy(), **tol)
    return xt, xv, lt, lv


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("concat", [False, True])
@pytest.mark.parametrize("as_tensor", [False, True])
def test_values_and_grads(reduction, concat, as_tensor):
    x = np.random.default_rng(0).standard_normal((T, N, K))
    xt, xv, lt, lv = _run(x, TARGETS, IN_LEN, TG_LEN, concat, as_tensor, reduction=reduction)
    g = np.random.default_rng(1).standard_normal(tuple(lt.shape))
    lt.backward(torch.tensor(g))
    lv.backward(vt.from_numpy(g.copy()))
    np.testing.assert_allclose(xv.grad.numpy(), xt.grad.numpy(), rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("blank", [0, 2, 4])
def test_blank_index_and_module(blank):
    rng = np.random.default_rng(blank)
    x = rng.standard_normal((6, 3, K))
    labels = [c for c in range(K) if c != blank]
    tg = rng.choice(labels, size=(3, 3)).astype(np.int64)
    tg[0] = [labels[0]] * 3  # all repeats: needs 2 * 3 - 1 = 5 frames
    xt = torch.tensor(x, requires_grad=True)
    xv = vt.from_numpy(x.copy()).requires_grad_()
    mt = torch.nn.CTCLoss(blank=blank, reduction="sum")
    mv = C.CTCLoss(blank=blank, reduction="sum")
    lt = mt(xt.log_softmax(2), torch.tensor(tg), (6, 5, 4), (3, 2, 3))
    lv = mv(xv.log_softmax(2), vt.from_numpy(tg), (6, 5, 4), (3, 2, 3))
    np.testing.assert_allclose(lv.item(), lt.item(), rtol=1e-10)
    lt.backward()
    lv.backward()
    np.testing.assert_allclose(xv.grad.numpy(), xt.grad.numpy(), rtol=1e-9, atol=1e-11)


def test_infeasible_inf_and_zero_infinity():
    x = np.random.default_rng(2).standard_normal((5, 3, K))
    tg = np.array([[1, 1, 1], [1, 2, 3], [2, 2, 0]])
    il, tl = [4, 2, 5], [3, 3, 2]  # samples 0 (needs 5 frames) and 1 (needs 3) cannot align
    _, _, lt, lv = _run(x, tg, il, tl, reduction="none")
    assert np.isinf(lv.detach().numpy()[:2]).all()
    xt, xv, lt, lv = _run(x, tg, il, tl, reduction="mean", zero_infinity=True)
    lt.backward()
    lv.backward()
    np.testing.assert_allclose(xv.grad.numpy(), xt.grad.numpy(), rtol=1e-9, atol=1e-11)
    assert np.all(xv.grad.numpy()[:, :2] == 0)
    xt, xv, lt, lv = _run(x, tg, il, tl, reduction="none", zero_infinity=True)
    assert np.all(lv.detach().numpy()[:2] == 0)


def test_zero_input_length_and_empty_target():
    x = np.random.default_rng(3).standard_normal((4, 2, K))
    tg = np.array([[1, 2], [0, 0]])
    for il, tl in (([0, 4], [2, 0]), ([0, 0], [0, 0]), ([4, 1], [0, 0])):
        _run(x, tg, il, tl, reduction="none")
        _run(x, tg, il, tl, reduction="none", zero_infinity=True)


def test_unbatched():
    x = np.random.default_rng(4).standard_normal((6, K))
    tg = np.array([1, 3, 3])
    for red in ("none", "mean", "sum"):
        _run_unbatched(x, tg, red)


def _run_unbatched(x, tg, red):
    xt = torch.tensor(x, requires_grad=True)
    xv = vt.from_numpy(x.copy()).requires_grad_()
    lt = torch.nn.functional.ctc_loss(xt.log_softmax(1), torch.tensor(tg), torch.tensor(6), torch.tensor(3),
                                      reduction=red)
    lv = C.ctc_loss(xv.log_softmax(1), vt.from_numpy(tg), vt.from_numpy(np.array(6)), vt.from_numpy(np.array(3)),
                    reduction=red)
    assert tuple(lv.shape) == tuple(lt.shape) == ()
    np.testing.assert_allclose(lv.item(), lt.item(), rtol=1e-10)
    lt.backward()
    lv.backward()
    np.testing.assert_allclose(xv.grad.numpy(), xt.grad.numpy(), rtol=1e-9, atol=1e-11)


def test_float32():
    x = np.random.default_rng(5).standard_normal((T, N, K)).astype(np.float32)
    _, _, lt, lv = _run(x, TARGETS, IN_LEN, TG_LEN, dtype="float32", reduction="none")
    assert lv.dtype == vt.float32


def test_module_repr_and_attrs():
    m = C.CTCLoss(blank=1, zero_infinity=True)
    assert (m.blank, m.reduction, m.zero_infinity) == (1, "mean", True)
    assert repr(m) == repr(torch.nn.CTCLoss(blank=1, zero_infinity=True))


@pytest.mark.parametrize("case", range(8))
def test_errors_match_torch(case):
    x = np.random.default_rng(6).standard_normal((5, 2, 4))
    tg = np.array([[1, 2], [1, 1]])
    args = [
        (tg, [6, 5], [2, 2], {}),
        (tg, [5, 5], [3, 2], {}),
        (tg, [-1, 5], [2, 2], {}),
        (tg, [5, 5], [-1, 2], {}),
        (np.array([1, 2, 1]), [5, 5], [2, 2], {}),
        (tg, [5], [2, 2], {}),
        (tg, [5, 5], [2, 2], {"blank": 4}),
        (tg, [5, 5], [2, 2], {"reduction": "avg"}),
    ][case]
    tgt, il, tl, kw = args
    with pytest.raises(Exception) as et:
        torch.nn.functional.ctc_loss(torch.tensor(x), torch.tensor(tgt), il, tl, **kw)
    with pytest.raises(et.type) as ev:
        C.ctc_loss(vt.from_numpy(x), vt.from_numpy(tgt), il, tl, **kw)
    assert str(ev.value).split(" (while")[0] == str(et.value).split(" (while")[0]
