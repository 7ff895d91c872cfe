"""The loss and similarity functions and modules against torch's: forward values and float64 gradients for
every reduction and option (broadcast and empty inputs where torch takes them), the modules' attributes,
buffers, state_dict and repr, and the error cases (same exception type and message)."""
import json
import re
import warnings

import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from ag_helpers import check_grads, leaves, to_np
from vibetensor.torch.nn import functional_losses as VL
from vibetensor.torch.nn import loss_layers as VM

REDUCTIONS = ["none", "mean", "sum"]


def F(m):
    return torch.nn.functional if m is torch else VL


def nn(m):
    return torch.nn if m is torch else VM


def const(m, a, dtype=None):
    a = np.asarray(a) if dtype is None else np.asarray(a, dtype=dtype)
    return m.from_numpy(a.copy())


def unit(m, x):  # a probability in (0, 1) from a free leaf
    return x.sigmoid() * 0.98 + 0.01


ELEMENTWISE = [
    ("mse", lambda m, x, y, **kw: F(m).mse_loss(x, y, **kw)),
    ("l1", lambda m, x, y, **kw: F(m).l1_loss(x, y, **kw)),
    ("smooth_l1_b0", lambda m, x, y, **kw: F(m).smooth_l1_loss(x, y, beta=0.0, **kw)),
    ("smooth_l1_b05", lambda m, x, y, **kw: F(m).smooth_l1_loss(x, y, beta=0.5, **kw)),
    ("smooth_l1", lambda m, x, y, **kw: F(m).smooth_l1_loss(x, y, **kw)),
    ("smooth_l1_b2", lambda m, x, y, **kw: F(m).smooth_l1_loss(x, y, beta=2.0, **kw)),
    ("huber", lambda m, x, y, **kw: F(m).huber_loss(x, y, **kw)),
    ("huber_d05", lambda m, x, y, **kw: F(m).huber_loss(x, y, delta=0.5, **kw)),
    ("huber_d3", lambda m, x, y, **kw: F(m).huber_loss(x, y, delta=3.0, **kw)),
    ("margin_ranking", lambda m, x, y, **kw: F(m).margin_ranking_loss(x, y, (x - y).detach().sin().sign(),
                                                                       margin=0.3, **kw)),
    ("kl_div", lambda m, x, y, **kw: F(m).kl_div(x, y.exp(), **kw)),
    ("kl_div_log_target", lambda m, x, y, **kw: F(m).kl_div(x, y, log_target=True, **kw)),
    ("bce", lambda m, x, y, **kw: F(m).binary_cross_entropy(unit(m, x), unit(m, y), **kw)),
    ("bce_logits", lambda m, x, y, **kw: F(m).binary_cross_entropy_with_logits(x * 3, unit(m, y), **kw)),
]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name,fn", ELEMENTWISE, ids=[e[0] for e in ELEMENTWISE])
@pytest.mark.parametrize("shape", [(3, 5), (2, 3, 4), (7,), ()])
def test_elementwise_losses_match_torch(name, fn, reduction, shape):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # kl_div's 'mean' warning
        check_grads(lambda m, x, y: fn(m, x, y, reduction=reduction), leaves([shape, shape], seed=len(shape)))


@pytest.mark.parametrize("name,fn", ELEMENTWISE, ids=[e[0] for e in ELEMENTWISE])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_empty_inputs(name, fn, reduction):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_grads(lambda m, x, y: fn(m, x, y, reduction=reduction), leaves([(0, 3), (0, 3)]))


def test_float32_forward():
    (x, tx), (y, ty) = leaves([(4, 6), (4, 6)], dtype="float32")
    for name, fn in ELEMENTWISE:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = fn(vt, x, y)
            assert out.dtype == vt.float32, name
            np.testing.assert_allclose(to_np(out), to_np(fn(torch, tx, ty)), rtol=1e-5, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("fn", ["mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shapes", [[(3, 4), (4,)], [(1, 4), (3, 4)], [(3, 1), (1, 5)]])
def test_broadcast_target_warns_as_torch(fn, reduction, shapes):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_grads(lambda m, x, y: getattr(F(m), fn)(x, y, reduction=reduction), leaves(shapes))
    with pytest.warns(UserWarning, match="that is different to the input size"):
        getattr(VL, fn)(vt.ones(*shapes[0]), vt.ones(*shapes[1]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # same sizes: no warning
        getattr(VL, fn)(vt.ones(2), vt.ones(2))


@pytest.mark.parametrize("fn", ["mse_loss", "l1_loss", "huber_loss"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_elementwise_weight(fn, reduction):
    # mse/l1 take the weighted mean sum(w l) / sum(w), huber the plain mean of w l: as torch
    check_grads(lambda m, x, y, w: getattr(F(m), fn)(x, y, reduction=reduction, weight=w.abs()),
                leaves([(3, 4), (3, 4), (3, 4)]))


def test_elementwise_weight_must_match_input():
    for fn in ("mse_loss", "l1_loss", "huber_loss"):
        with pytest.raises(ValueError, match="Weights and input must have the same size"):
            getattr(VL, fn)(vt.ones(3, 4), vt.ones(3, 4), weight=vt.ones(4))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_weight_and_target_grad(reduction):
    w = np.random.default_rng(3).random((4,))
    check_grads(lambda m, x, y: F(m).binary_cross_entropy(unit(m, x), unit(m, y), weight=const(m, w),
                                                           reduction=reduction), leaves([(3, 4), (3, 4)]))
    w2 = np.random.default_rng(4).random((3, 1))
    check_grads(lambda m, x, y: F(m).binary_cross_entropy(unit(m, x), unit(m, y), weight=const(m, w2),
                                                           reduction=reduction), leaves([(3, 4), (3, 4)]))


def test_bce_clamps_log_at_minus_100():
    x, t = [0.0, 1.0, 1.0, 0.0, 0.5], [1.0, 0.0, 1.0, 0.0, 0.25]
    for red in REDUCTIONS:
        a = VL.binary_cross_entropy(const(vt, x), const(vt, t), reduction=red)
        b = torch.nn.functional.binary_cross_entropy(const(torch, x), const(torch, t), reduction=red)
        np.testing.assert_allclose(to_np(a), to_np(b), rtol=1e-6)
    assert VL.binary_cross_entropy(const(vt, [0.0]), const(vt, [1.0])).item() == 100.0
    # the gradients there are torch's too: +-1e12 for the input, +-inf for the target (not NaN); rtol 1e-7 as
    # torch's floor under x (1 - x) is a float32 1e-12
    for red in REDUCTIONS:
        grads = []
        for m in (torch, vt):
            a, b = const(m, x).requires_grad_(), const(m, t).requires_grad_()
            out = F(m).binary_cross_entropy(a, b, reduction=red)
            out.backward(const(m, np.arange(1.0, 6.0) if red == "none" else 1.5))
            grads.append((to_np(a.grad), to_np(b.grad)))
        np.testing.assert_allclose(grads[1][0], grads[0][0], rtol=1e-7)
        np.testing.assert_array_equal(grads[1][1], grads[0][1])
        assert abs(grads[1][0][0]) > 1e11


def test_bce_second_order():
    x = vt.from_numpy(np.array([0.2, 0.7, 0.4])).requires_grad_()
    t = vt.from_numpy(np.array([0.3, 0.9, 0.1])).requires_grad_()
    assert vt.autograd.gradgradcheck(lambda a, b: VL.binary_cross_entropy(a, b, reduction="sum"), (x, t))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("pos_shape", [None, (4,), (3, 4), (1, 1)])
@pytest.mark.parametrize("with_weight", [False, True])
def test_bce_with_logits_weights(reduction, pos_shape, with_weight):
    rng = np.random.default_rng(5)
    pw = None if pos_shape is None else rng.random(pos_shape) * 3
    w = rng.random((3, 4)) if with_weight else None

    def fn(m, x, y):
        return F(m).binary_cross_entropy_with_logits(
            x * 4, unit(m, y), weight=None if w is None else const(m, w),
            pos_weight=None if pw is None else const(m, pw), reduction=reduction)
    check_grads(fn, leaves([(3, 4), (3, 4)]))


def test_bce_with_logits_is_stable_at_large_logits():
    x, t = [-200.0, 200.0, 0.0, 800.0, -800.0], [1.0, 0.0, 0.5, 1.0, 0.0]
    a = VL.binary_cross_entropy_with_logits(const(vt, x), const(vt, t), reduction="none")
    b = torch.nn.functional.binary_cross_entropy_with_logits(const(torch, x), const(torch, t), reduction="none")
    assert np.isfinite(to_np(a)).all()
    np.testing.assert_allclose(to_np(a), to_np(b), rtol=1e-6, atol=1e-12)
    check_grads(lambda m, x: F(m).binary_cross_entropy_with_logits(x * 300, const(m, [[1.0, 0.0, 1.0]] * 2)),
                leaves([(2, 3)]))


NLL_CASES = [
    ("2d", (5, 4), [0, 3, 1, 1, 2]),
    ("2d_ignore", (5, 4), [0, -100, 1, 3, -100]),
    ("3d", (2, 4, 3), [[0, 3, 1], [2, 2, -100]]),
    ("4d", (2, 3, 2, 2), [[[0, 1], [2, 2]], [[1, -100], [0, 2]]]),
    ("5d", (1, 3, 2, 1, 2), [[[[0, 1]], [[2, 2]]]]),
    ("1d", (4,), 2),
    ("1d_ignored", (4,), -100),
    ("empty", (0, 4), np.zeros((0,), dtype=np.int64)),
    ("all_ignored", (3, 4), [-100, -100, -100]),
]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("name,shape,target", NLL_CASES, ids=[c[0] for c in NLL_CASES])
def test_nll_loss(name, shape, target, weighted, reduction):
    classes = shape[0] if len(shape) == 1 else shape[1]
    w = np.random.default_rng(6).random((classes,)) + 0.1

    def fn(m, x):
        return F(m).nll_loss(x, const(m, target, np.int64), weight=const(m, w) if weighted else None,
                             reduction=reduction)
    check_grads(fn, leaves([shape], noncontig=name == "2d"))


@pytest.mark.parametrize("ignore_index", [2, 0, -1])
def test_nll_loss_ignore_index(ignore_index):
    target = [0, 2, 1, 2, 3] if ignore_index != -1 else [0, -1, 1, 2, 3]
    for red in REDUCTIONS:
        check_grads(lambda m, x: F(m).nll_loss(x.log_softmax(1), const(m, target, np.int64),
                                               ignore_index=ignore_index, reduction=red), leaves([(5, 4)]))


def test_nll_loss_uint8_target_and_legacy_flags():
    check_grads(lambda m, x: F(m).nll_loss(x, const(m, [0, 2, 1], np.uint8), reduction="none"), leaves([(3, 4)]))
    for sa, rd in [(False, None), (None, False), (True, True)]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            check_grads(lambda m, x: F(m).nll_loss(x, const(m, [0, 2, 1], np.int64), size_average=sa, reduce=rd),
                        leaves([(3, 4)]))


def test_nll_loss_1d_input_with_1d_target():
    # torch's forward takes a [C] input with a [1] target (its backward then fails: a torch bug); vt does both
    for red in REDUCTIONS:
        a = VL.nll_loss(const(vt, [0.1, -2.0, 0.7]), const(vt, [1], np.int64), reduction=red)
        b = torch.nn.functional.nll_loss(const(torch, [0.1, -2.0, 0.7]), const(torch, [1], np.int64), reduction=red)
        assert tuple(a.shape) == tuple(b.shape) == ()
        assert a.item() == b.item() == 2.0


def _raises_like_torch(call):
    """call(m) raises in torch and vt: the same exception type. Returns both messages, torch's with its
    torch.Size([a, b]) written as vt's shapes print, (a, b)."""
    with pytest.raises(Exception) as te:
        call(torch)
    with pytest.raises(type(te.value)) as ve:
        call(vt)
    t = re.sub(r"torch\.Size\((\[[^\]]*\])\)", lambda mo: str(tuple(json.loads(mo.group(1)))), str(te.value))
    return t, str(ve.value)


NLL_ERRORS = [
    ("out_of_bounds", (3, 4), [0, 1, 5], None, "Target 5 is out of bounds."),
    ("negative", (2, 3), [0, -1], None, "Target -1 is out of bounds."),
    ("batch", (3, 4), [0, 1], None, "Expected input batch_size (3) to match target batch_size (2)."),
    ("batch_0d", (3, 4), 1, None, "Expected input batch_size (3) to match target batch_size (0)."),
    ("multi_target", (3, 4), [[0], [1], [2]], None, "multi-target not supported"),
    ("weight_size", (3, 4), [0, 1, 1], (3,), "weight tensor should be defined either for all 4 classes"),
    ("nd_size", (2, 3, 4), [[0, 1, 1], [0, 0, 0]], None, "Expected target size [2, 4], got [2, 3]"),
    ("nd_rank", (2, 3, 4), [0, 1], None, "Expected target size [2, 4], got [2]"),
    ("4d_rank", (2, 3, 4, 5), np.zeros((2, 4), dtype=np.int64), None, "only batches of spatial targets"),
    ("1d_size", (3,), [1, 2], None, "For 1D input, 1D target must have size 1, but got target size: 2"),
    ("0d_input", (), 0, None, "Expected 1 or more dimensions (got 0)"),
]


@pytest.mark.parametrize("name,shape,target,wshape,msg", NLL_ERRORS, ids=[e[0] for e in NLL_ERRORS])
def test_nll_loss_errors(name, shape, target, wshape, msg):
    x = np.zeros(shape)
    t, v = _raises_like_torch(lambda m: F(m).nll_loss(const(m, x), const(m, target, np.int64),
                                                      weight=None if wshape is None else const(m, np.ones(wshape))))
    assert msg in t and msg in v


def test_nll_loss_target_dtype_and_weight_grad_refused():
    with pytest.raises(RuntimeError, match="expected target dtype to be Long or Byte"):
        VL.nll_loss(vt.zeros(3, 4), vt.zeros(3))
    with pytest.raises(RuntimeError, match="not differentiable with respect to argument 'weight'"):
        VL.nll_loss(vt.zeros(3, 4), vt.tensor([0, 1, 2]), weight=vt.ones(4).requires_grad_())
    with pytest.raises(RuntimeError, match="not differentiable with respect to argument 'weight'"):
        VL.binary_cross_entropy(vt.full((4,), 0.5), vt.full((4,), 0.5), weight=vt.ones(4).requires_grad_())
    with pytest.raises(RuntimeError, match="argument 'pos_weight'"):
        VL.binary_cross_entropy_with_logits(vt.ones(4), vt.ones(4), pos_weight=vt.ones(4).requires_grad_())


@pytest.mark.parametrize("reduction", ["none", "mean", "sum", "batchmean"])
@pytest.mark.parametrize("log_target", [False, True])
@pytest.mark.parametrize("shape", [(3, 5), (4,), ()])
def test_kl_div(reduction, log_target, shape):
    def fn(m, x, y):
        return F(m).kl_div(x.log_softmax(-1) if shape else x, y if log_target else y.exp(), reduction=reduction,
                           log_target=log_target)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_grads(fn, leaves([shape, shape]))


def test_kl_div_zero_target_and_mean_warning():
    x, t = [[-1.0, -2.0, -0.5]], [[0.0, 0.5, 0.5]]
    for red in ["none", "sum", "batchmean"]:
        a = VL.kl_div(const(vt, x), const(vt, t), reduction=red)
        b = torch.nn.functional.kl_div(const(torch, x), const(torch, t), reduction=red)
        np.testing.assert_allclose(to_np(a), to_np(b), rtol=1e-12)
    check_grads(lambda m, x: F(m).kl_div(x, const(m, t), reduction="sum"), leaves([(1, 3)]))
    with pytest.warns(UserWarning, match="'batchmean' divides only by the batch size"):
        VL.kl_div(vt.zeros(2), vt.ones(2))
    check_grads(lambda m, x, y: F(m).kl_div(x, y.exp(), reduction="batchmean"), leaves([(3, 4), (4,)]))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", [0.0, 0.5, -0.2])
def test_margin_ranking_loss(reduction, margin):
    y = [[1.0, -1.0, 1.0, 1.0], [-1.0, -1.0, 1.0, -1.0], [1.0, 1.0, -1.0, 1.0]]
    check_grads(lambda m, a, b: F(m).margin_ranking_loss(a, b, const(m, y), margin=margin, reduction=reduction),
                leaves([(3, 4), (3, 4)]))
    check_grads(lambda m, a, b: F(m).margin_ranking_loss(a, b, const(m, [[1.0, -1.0, 1.0, 1.0]]), margin=margin,
                                                         reduction=reduction), leaves([(3, 4), (1, 4)]))


def test_margin_ranking_loss_rank_error():
    t, v = _raises_like_torch(lambda m: F(m).margin_ranking_loss(const(m, np.ones(3)), const(m, np.ones(3)),
                                                                 const(m, np.ones((1, 3)))))
    assert "All input tensors should have same dimension" in t and "All input tensors should have same dimension" in v


@pytest.mark.parametrize("shapes,dim", [([(3, 5), (3, 5)], 1), ([(3, 5), (3, 5)], 0), ([(2, 3, 4), (3, 4)], -1),
                                        ([(2, 1, 4), (3, 4)], 2), ([(5,), (5,)], 0), ([(4, 6), (1, 6)], -1)])
@pytest.mark.parametrize("eps", [1e-8, 0.5, 10.0])
def test_cosine_similarity(shapes, dim, eps):
    check_grads(lambda m, a, b: F(m).cosine_similarity(a, b, dim=dim, eps=eps), leaves(shapes))


def test_cosine_similarity_zero_vector():
    a = VL.cosine_similarity(vt.zeros(2, 3), vt.ones(2, 3))
    np.testing.assert_array_equal(a.numpy(), [0.0, 0.0])


@pytest.mark.parametrize("p", [2.0, 1.0, 3.0, 0.5, float("inf")])
@pytest.mark.parametrize("dim", [1, 0, -1])
@pytest.mark.parametrize("eps", [1e-12, 10.0])
def test_normalize(p, dim, eps):
    check_grads(lambda m, x: F(m).normalize(x, p=p, dim=dim, eps=eps), leaves([(3, 4)]))


def test_normalize_default_and_zero_row():
    check_grads(lambda m, x: F(m).normalize(x), leaves([(2, 3, 4)]))
    (x, tx), = leaves([(3, 4)])
    out = vt.empty(3, 4, dtype=vt.float64)
    with vt.no_grad():
        assert VL.normalize(x, dim=0, out=out) is out
    np.testing.assert_allclose(out.numpy(), torch.nn.functional.normalize(tx, dim=0).detach().numpy(), rtol=1e-12)
    x = vt.zeros(2, 3)
    np.testing.assert_array_equal(VL.normalize(x).numpy(), np.zeros((2, 3)))


@pytest.mark.parametrize("p", [2.0, 1.0, 3.0, float("inf")])
@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("shapes", [[(3, 5), (3, 5)], [(3, 5), (5,)], [(6,), (6,)], [(2, 3, 4), (1, 3, 4)]])
def test_pairwise_distance(p, keepdim, shapes):
    check_grads(lambda m, a, b: F(m).pairwise_distance(a, b, p=p, keepdim=keepdim), leaves(shapes))
    check_grads(lambda m, a, b: F(m).pairwise_distance(a, b, p=p, eps=0.1, keepdim=keepdim), leaves(shapes))


@pytest.mark.parametrize("fn", ["mse_loss", "l1_loss", "smooth_l1_loss", "binary_cross_entropy",
                                "binary_cross_entropy_with_logits", "nll_loss", "kl_div", "huber_loss"])
def test_invalid_reduction(fn):
    x = np.full((2, 3), 0.5)
    tgt = lambda m: const(m, [0, 1], np.int64) if fn == "nll_loss" else const(m, x)  # noqa: E731
    t, v = _raises_like_torch(lambda m: getattr(F(m), fn)(const(m, x), tgt(m), reduction="bogus"))
    assert t == v == "bogus is not a valid value for reduction"


def test_margin_ranking_invalid_reduction():
    with pytest.raises(ValueError, match="bogus is not a valid value for reduction"):
        VL.margin_ranking_loss(vt.ones(2), vt.ones(2), vt.ones(2), reduction="bogus")


BAD = [
    ("smooth_l1_beta", lambda m: F(m).smooth_l1_loss(const(m, [1.0]), const(m, [2.0]), beta=-1.0)),
    ("huber_delta", lambda m: F(m).huber_loss(const(m, [1.0]), const(m, [2.0]), delta=0.0)),
    ("bce_input_range", lambda m: F(m).binary_cross_entropy(const(m, [1.5]), const(m, [1.0]))),
    ("bce_input_nan", lambda m: F(m).binary_cross_entropy(const(m, [float("nan")]), const(m, [1.0]))),
    ("bce_target_range", lambda m: F(m).binary_cross_entropy(const(m, [0.5]), const(m, [-0.5]))),
    ("bce_size", lambda m: F(m).binary_cross_entropy(const(m, np.full((3, 4), 0.5)), const(m, np.full(4, 0.5)))),
    ("bce_logits_size", lambda m: F(m).binary_cross_entropy_with_logits(const(m, np.ones((3, 4))),
                                                                        const(m, np.ones(4)))),
    ("mse_no_broadcast", lambda m: F(m).mse_loss(const(m, np.ones((3, 4))), const(m, np.ones((2, 4))))),
    ("bce_logits_pos_weight", lambda m: F(m).binary_cross_entropy_with_logits(
        const(m, np.ones((3, 4))), const(m, np.ones((3, 4))), pos_weight=const(m, np.ones(3)))),
]


@pytest.mark.parametrize("name,call", BAD, ids=[b[0] for b in BAD])
def test_argument_errors(name, call):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t, v = _raises_like_torch(call)
    if name not in ("mse_no_broadcast", "bce_logits_pos_weight"):  # the op's own broadcast message
        assert t == v


def test_bce_dtype_mismatch_and_weight_broadcast_errors():
    with pytest.raises(RuntimeError, match="Found dtype"):
        VL.binary_cross_entropy(vt.full((2,), 0.5, dtype=vt.float64), vt.full((2,), 0.5))
    with pytest.raises(RuntimeError, match="cannot be broadcast"):
        VL.binary_cross_entropy(vt.full((3, 4), 0.5), vt.full((3, 4), 0.5), weight=vt.ones(2))


# ---- modules ----
MODULES = [
    ("MSELoss", {}, 2), ("MSELoss", {"reduction": "sum"}, 2), ("L1Loss", {"reduction": "none"}, 2),
    ("SmoothL1Loss", {"beta": 0.5}, 2), ("HuberLoss", {"delta": 0.7, "reduction": "sum"}, 2),
    ("BCELoss", {}, "bce"), ("BCELoss", {"weight": (4,)}, "bce"),
    ("BCEWithLogitsLoss", {"pos_weight": (4,)}, 2), ("BCEWithLogitsLoss", {"weight": (3, 4), "pos_weight": (4,)}, 2),
    ("NLLLoss", {"ignore_index": 1}, "nll"), ("NLLLoss", {"weight": (4,), "reduction": "sum"}, "nll"),
    ("CrossEntropyLoss", {"weight": (4,), "label_smoothing": 0.1}, "nll"), ("CrossEntropyLoss", {}, "nll"),
    ("KLDivLoss", {"reduction": "batchmean", "log_target": True}, 2),
    ("MarginRankingLoss", {"margin": 0.2}, "rank"),
    ("CosineSimilarity", {"dim": 0, "eps": 1e-6}, 2), ("PairwiseDistance", {"p": 1.0, "keepdim": True}, 2),
    ("MSELoss", {"size_average": False}, 2), ("L1Loss", {"reduce": False}, 2),
]


@pytest.mark.parametrize("name,kwargs,kind", MODULES, ids=[f"{m[0]}-{i}" for i, m in enumerate(MODULES)])
def test_modules_match_torch(name, kwargs, kind):
    rng = np.random.default_rng(7)
    vals = {k: (rng.random(v) + 0.1 if isinstance(v, tuple) else v) for k, v in kwargs.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mods = {m: getattr(nn(m), name)(**{k: const(m, v) if isinstance(v, np.ndarray) else v
                                           for k, v in vals.items()}) for m in (torch, vt)}
    tm, vm = mods[torch], mods[vt]
    assert repr(vm) == repr(tm)
    public = lambda mod: {k: v for k, v in vars(mod).items() if not k.startswith("_")}  # noqa: E731
    assert public(vm) == public(tm)
    assert list(vm.state_dict()) == list(tm.state_dict())
    assert [n for n, _ in vm.named_buffers()] == [n for n, _ in tm.named_buffers()]
    for k, v in tm.state_dict().items():
        np.testing.assert_array_equal(to_np(vm.state_dict()[k]), v.numpy())
    assert list(vm.parameters()) == [] and list(tm.parameters()) == []

    def call(m, x, y):
        mod = mods[m]
        if kind == "bce":
            return mod(unit(m, x), unit(m, y))
        if kind == "nll":
            return mod(x.log_softmax(1), const(m, [0, 1, 3], np.int64))
        if kind == "rank":
            return mod(x, y, const(m, np.sign(np.arange(12.0).reshape(3, 4) % 3 - 0.5)))
        return mod(x, y)
    check_grads(call, leaves([(3, 4), (3, 4)]))


def test_module_buffers_move_and_load():
    m = VM.BCEWithLogitsLoss(pos_weight=vt.ones(4))
    assert m.weight is None and "weight" not in m.state_dict()
    m.load_state_dict({"pos_weight": vt.full((4,), 2.0)})
    np.testing.assert_array_equal(m.pos_weight.numpy(), np.full(4, 2.0))
    assert m.double().pos_weight.dtype == vt.float64
    n = VM.NLLLoss(weight=vt.ones(3))
    assert list(n.state_dict()) == ["weight"] and list(n.buffers())[0] is n.weight


def test_public_names_exported():
    for name in ["mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "binary_cross_entropy",
                 "binary_cross_entropy_with_logits", "nll_loss", "kl_div", "margin_ranking_loss",
                 "cosine_similarity", "normalize", "pairwise_distance"]:
        assert getattr(vt.nn.functional, name) is getattr(VL, name), name
    for name in ["MSELoss", "L1Loss", "SmoothL1Loss", "HuberLoss", "BCELoss", "BCEWithLogitsLoss", "NLLLoss",
                 "CrossEntropyLoss", "KLDivLoss", "MarginRankingLoss", "CosineSimilarity", "PairwiseDistance"]:
        assert getattr(vt.nn, name) is getattr(VM, name), name
