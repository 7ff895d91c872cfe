"""The further losses, affine_grid/grid_sample and embedding_bag against torch's: forward values and float64
gradients for every reduction and option, the modules' attributes, buffers, parameters, state_dict and repr,
and the error cases (same exception type and message)."""
import json
import math
import re
import warnings

import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from ag_helpers import check_grads, leaves, to_np
from helpers import TORCH_VERSION
from vibetensor.torch.nn import functional_losses_more as VL
from vibetensor.torch.nn import functional_sampling as VS
from vibetensor.torch.nn import loss_layers_more as VM

REDUCTIONS = ["none", "mean", "sum"]


def F(m):
    return torch.nn.functional if m is torch else _VF


class _VF:  # the new functions under torch's names, plus the existing ones they lean on
    pass


for _mod in (VL, VS):
    for _k, _v in vars(_mod).items():
        if not _k.startswith("_") and callable(_v):
            setattr(_VF, _k, staticmethod(_v))
_VF.cosine_similarity = staticmethod(vt.nn.functional.cosine_similarity)
_VF.pairwise_distance = staticmethod(vt.nn.functional.pairwise_distance)


def nn(m):
    return torch.nn if m is torch else VM


def const(m, a, dtype=None):
    a = np.asarray(a) if dtype is None else np.asarray(a, dtype=dtype)
    return m.from_numpy(a.copy())


def _raises_like_torch(call):
    """call(m) raises in torch and vt: the same exception type; both messages, torch's torch.Size([a, b])
    written as a list."""
    with pytest.raises(Exception) as te:
        call(torch)
    with pytest.raises(type(te.value)) as ve:
        call(vt)
    t = re.sub(r"torch\.Size\((\[[^\]]*\])\)", lambda mo: str(json.loads(mo.group(1))), str(te.value))
    v = re.sub(r"torch\.Size\((\[[^\]]*\])\)", lambda mo: str(json.loads(mo.group(1))), str(ve.value))
    return t, v


def signs(m, shape, seed=0):
    return const(m, np.where(np.random.default_rng(seed).random(shape) < 0.5, -1.0, 1.0))


# ---- triplet ----
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("p,swap,margin,eps", [(2, False, 1.0, 1e-6), (1, True, 0.5, 1e-6), (3, True, 2.0, 1e-3),
                                               (2.5, False, 0.1, 0.0)])
@pytest.mark.parametrize("shape", [(5, 4), (4,), (2, 3, 4)])
def test_triplet_margin_loss(reduction, p, swap, margin, eps, shape):
    check_grads(lambda m, a, b, c: F(m).triplet_margin_loss(a, b, c, margin=margin, p=p, eps=eps, swap=swap,
                                                             reduction=reduction),
                leaves([shape, shape, shape], seed=len(shape)))


def test_triplet_margin_loss_broadcast_and_legacy_flags():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_grads(lambda m, a, b, c: F(m).triplet_margin_loss(a, b, c, swap=True, size_average=False),
                    leaves([(5, 4), (1, 4), (5, 4)]))
        check_grads(lambda m, a, b, c: F(m).triplet_margin_loss(a, b, c, reduce=False), leaves([(3, 4)] * 3))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("swap", [False, True])
@pytest.mark.parametrize("dist", ["default", "cosine", "l1"])
def test_triplet_margin_with_distance_loss(reduction, swap, dist):
    def run(m, a, b, c):
        fn = {"default": None,
              "cosine": lambda x, y: 1.0 - F(m).cosine_similarity(x, y),
              "l1": lambda x, y: (x - y).abs().sum(-1)}[dist]
        return F(m).triplet_margin_with_distance_loss(a, b, c, distance_function=fn, margin=0.7, swap=swap,
                                                       reduction=reduction)
    check_grads(run, leaves([(6, 3)] * 3, seed=4))


# ---- poisson / gaussian ----
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("log_input", [True, False])
@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("shape", [(4, 5), (7,), ()])
def test_poisson_nll_loss(reduction, log_input, full, shape):
    target = np.random.default_rng(3).poisson(2.0, shape).astype(np.float64)  # zeros, ones and > 1 alike

    def run(m, x):
        x = x if log_input else x.abs() + 0.1
        return F(m).poisson_nll_loss(x, const(m, target), log_input=log_input, full=full, eps=1e-3,
                                     reduction=reduction)
    check_grads(run, leaves([shape]))


def test_poisson_nll_loss_target_grad_and_errors():
    check_grads(lambda m, x, t: F(m).poisson_nll_loss(x, t.abs() * 3, full=True), leaves([(3, 4), (3, 4)]))
    t, v = _raises_like_torch(lambda m: F(m).poisson_nll_loss(const(m, np.ones(3)), const(m, np.ones(3)),
                                                              reduction="bad"))
    assert t == v == "bad is not a valid value for reduction"


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("vshape", [(4, 3), (4,), (4, 1), "float"])
def test_gaussian_nll_loss(reduction, full, vshape):
    def run(m, x, t, v):
        var = 0.7 if vshape == "float" else v.abs()[:math.prod(vshape)].reshape(vshape) + 0.05
        return F(m).gaussian_nll_loss(x, t, var, full=full, eps=1e-6, reduction=reduction)
    check_grads(run, leaves([(4, 3), (4, 3), (12,)]) if vshape != "float" else leaves([(4, 3), (4, 3), (1,)]))


def test_gaussian_nll_loss_eps_clamp_passes_gradient():
    # var below eps is clamped for the value but its gradient flows as through var itself (torch's no_grad clamp)
    check_grads(lambda m, x, t, v: F(m).gaussian_nll_loss(x, t, v.abs() * 1e-3, eps=0.01, reduction="sum"),
                leaves([(5, 2), (5, 2), (5, 2)]))
    check_grads(lambda m, x, t, v: F(m).gaussian_nll_loss(x, t, v.abs(), reduction="none"),
                leaves([(2, 3, 4), (2, 3, 4), (2, 1, 4)]))


GAUSS_ERRORS = [
    ("negative_var", (3, 2), -np.ones((3, 2)), "mean"),
    ("negative_float", (3, 2), -1.0, "mean"),
    ("var_size", (3, 2), np.ones((2, 2)), "mean"),
    ("var_two_dims", (3, 2, 4), np.ones((3, 1, 1)), "mean"),
    ("reduction", (3, 2), np.ones((3, 2)), "bad"),
]


@pytest.mark.parametrize("name,shape,var,reduction", GAUSS_ERRORS, ids=[e[0] for e in GAUSS_ERRORS])
def test_gaussian_nll_loss_errors(name, shape, var, reduction):
    x = np.zeros(shape)
    t, v = _raises_like_torch(lambda m: F(m).gaussian_nll_loss(
        const(m, x), const(m, x), var if isinstance(var, float) else const(m, var), reduction=reduction))
    assert t == v


# ---- margin losses ----
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(3, 5), (6,), (2, 3, 4), ()])
def test_soft_margin_loss(reduction, shape):
    check_grads(lambda m, x: F(m).soft_margin_loss(x * 3, signs(m, shape), reduction=reduction), leaves([shape]))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", [1.0, 0.3, -0.5])
@pytest.mark.parametrize("shape", [(3, 5), (6,), ()])
def test_hinge_embedding_loss(reduction, margin, shape):
    check_grads(lambda m, x: F(m).hinge_embedding_loss(x * 2, signs(m, shape), margin=margin, reduction=reduction),
                leaves([shape]))


def test_hinge_embedding_loss_other_targets_and_broadcast():
    # a target neither 1 nor -1 adds both terms, as torch's
    check_grads(lambda m, x: F(m).hinge_embedding_loss(x, const(m, [[0.0, 1.0, -1.0, 2.0]])), leaves([(3, 4)]))
    check_grads(lambda m, x, t: F(m).soft_margin_loss(x, t.detach()), leaves([(3, 4), (4,)]))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", [0.0, 0.4, -0.3])
@pytest.mark.parametrize("shape", [(6, 5), (5,)])
def test_cosine_embedding_loss(reduction, margin, shape):
    tshape = shape[:-1]
    check_grads(lambda m, a, b: F(m).cosine_embedding_loss(a, b, signs(m, tshape, 2), margin=margin,
                                                           reduction=reduction), leaves([shape, shape]))


def test_cosine_embedding_loss_zero_vector_and_empty():
    check_grads(lambda m, a, b: F(m).cosine_embedding_loss(a * const(m, [[1.0], [0.0], [1.0]]), b,
                                                           const(m, [1.0, -1.0, 1.0])), leaves([(3, 4), (3, 4)]))
    check_grads(lambda m, a, b: F(m).cosine_embedding_loss(a, b, const(m, np.zeros(0)), reduction="sum"),
                leaves([(0, 4), (0, 4)]))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("shape", [(4, 5), (5,), (2, 3, 5)])
def test_multilabel_soft_margin_loss(reduction, weighted, shape):
    target = (np.random.default_rng(1).random(shape) < 0.4).astype(np.float64)
    weight = np.random.default_rng(2).random(shape[-1]) + 0.2
    check_grads(lambda m, x: F(m).multilabel_soft_margin_loss(
        x * 2, const(m, target), weight=const(m, weight) if weighted else None, reduction=reduction),
        leaves([shape]))


def _ml_targets(n, c, seed):
    rng = np.random.default_rng(seed)
    out = np.full((n, c), -1, dtype=np.int64)
    for i in range(n):
        k = rng.integers(0, c + 1)
        out[i, :k] = rng.permutation(c)[:k]
        out[i, k + 1:] = rng.integers(0, c, c - k - 1) if k + 1 < c else out[i, k + 1:]  # junk after the -1
    return out


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("n,c", [(5, 4), (1, 6), (3, 1), (0, 3)])
def test_multilabel_margin_loss(reduction, n, c):
    target = _ml_targets(n, c, n * 10 + c)
    if n == 0 and reduction != "none":  # torch reduces an empty batch over uninitialised memory: any value
        x = vt.zeros(0, c, dtype=vt.float64)
        got = float(vt.nn.functional.multilabel_margin_loss(x, vt.from_numpy(target), reduction=reduction))
        assert got == 0.0 if reduction == "sum" else np.isnan(got)
        return
    check_grads(lambda m, x: F(m).multilabel_margin_loss(x, const(m, target), reduction=reduction),
                leaves([(n, c)]))


def test_multilabel_margin_loss_unbatched_and_repeats():
    check_grads(lambda m, x: F(m).multilabel_margin_loss(x, const(m, [3, 0, -1, 1, 2]), reduction="none"),
                leaves([(5,)]))
    # a class named twice counts twice, as torch's
    check_grads(lambda m, x: F(m).multilabel_margin_loss(x, const(m, [[1, 1, -1, 0], [2, 3, 0, 1]])),
                leaves([(2, 4)]))
    check_grads(lambda m, x: F(m).multilabel_margin_loss(x, const(m, 0, np.int64), reduction="none"),
                leaves([()]))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("margin", [1.0, 0.3])
@pytest.mark.parametrize("weighted", [False, True])
def test_multi_margin_loss(reduction, p, margin, weighted):
    target = np.array([0, 3, 4, 1, 3, 2])
    weight = np.linspace(0.5, 2.0, 5)
    check_grads(lambda m, x: F(m).multi_margin_loss(x, const(m, target), p=p, margin=margin, reduction=reduction,
                                                    weight=const(m, weight) if weighted else None),
                leaves([(6, 5)]))


@pytest.mark.parametrize("target", [2, [2]])
def test_multi_margin_loss_unbatched_and_empty(target):
    check_grads(lambda m, x: F(m).multi_margin_loss(x, const(m, target, np.int64), reduction="none"),
                leaves([(5,)]))
    check_grads(lambda m, x: F(m).multi_margin_loss(x, const(m, 0, np.int64), p=2), leaves([()]))
    for red in ("none", "sum"):  # torch's mean of an empty batch is uninitialised memory (vt: NaN)
        check_grads(lambda m, x: F(m).multi_margin_loss(x, const(m, np.zeros(0, np.int64)), reduction=red),
                    leaves([(0, 4)]))


def _i(m, a):
    return const(m, a, np.int64)


MARGIN_ERRORS = [
    ("mm_range", lambda m: F(m).multi_margin_loss(const(m, np.ones((3, 4))), _i(m, [0, 1, 5]))),
    ("mm_negative", lambda m: F(m).multi_margin_loss(const(m, np.ones((3, 4))), _i(m, [0, -1, 2]))),
    ("mm_batch", lambda m: F(m).multi_margin_loss(const(m, np.ones((3, 4))), _i(m, [0, 1]))),
    ("mm_target_rank", lambda m: F(m).multi_margin_loss(const(m, np.ones((3, 4))), _i(m, [[0, 1, 2]]))),
    ("mm_weight_size", lambda m: F(m).multi_margin_loss(const(m, np.ones((3, 4))), _i(m, [0, 1, 2]),
                                                        weight=const(m, np.ones(3)))),
    ("mm_weight_rank", lambda m: F(m).multi_margin_loss(const(m, np.ones((3, 4))), _i(m, [0, 1, 2]),
                                                        weight=const(m, np.ones((2, 2))))),
    ("mm_p", lambda m: F(m).multi_margin_loss(const(m, np.ones((3, 4))), _i(m, [0, 1, 2]), p=3)),
    ("mm_3d", lambda m: F(m).multi_margin_loss(const(m, np.ones((2, 3, 4))), _i(m, [0, 1]))),
    ("mm_no_classes", lambda m: F(m).multi_margin_loss(const(m, np.ones((2, 0))), _i(m, [0, 1]))),
    ("mm_float_target", lambda m: F(m).multi_margin_loss(const(m, np.ones((3, 4))), const(m, [0.0, 1, 2]))),
    ("mm_reduction", lambda m: F(m).multi_margin_loss(const(m, np.ones((3, 4))), _i(m, [0, 1, 2]),
                                                      reduction="bad")),
    ("ml_size", lambda m: F(m).multilabel_margin_loss(const(m, np.ones((3, 4))), _i(m, [0, 1, 2]))),
    ("ml_range", lambda m: F(m).multilabel_margin_loss(const(m, np.ones((1, 4))), _i(m, [[0, 1, 2, 9]]))),
    ("ml_below", lambda m: F(m).multilabel_margin_loss(const(m, np.ones((1, 4))), _i(m, [[0, -2, 2, 1]]))),
    ("ml_1d_size", lambda m: F(m).multilabel_margin_loss(const(m, np.ones(4)), _i(m, [0, 1]))),
    ("ml_float_target", lambda m: F(m).multilabel_margin_loss(const(m, np.ones((1, 4))),
                                                              const(m, [[0.0, 1, 2, 3]]))),
    ("ce_target_rank", lambda m: F(m).cosine_embedding_loss(const(m, np.ones((3, 4))), const(m, np.ones((3, 4))),
                                                            const(m, np.ones((3, 1))))),
    ("ce_0d_target", lambda m: F(m).cosine_embedding_loss(const(m, np.ones((3, 4))), const(m, np.ones((3, 4))),
                                                          const(m, 1.0))),
    ("ce_1d_target", lambda m: F(m).cosine_embedding_loss(const(m, np.ones(4)), const(m, np.ones(4)),
                                                          const(m, np.ones(3)))),
    ("triplet_rank", lambda m: F(m).triplet_margin_loss(const(m, np.ones((3, 4))), const(m, np.ones((3, 4))),
                                                        const(m, np.ones(4)))),
    ("triplet_dist_rank", lambda m: F(m).triplet_margin_with_distance_loss(
        const(m, np.ones((3, 4))), const(m, np.ones(4)), const(m, np.ones((3, 4))))),
    ("triplet_dist_margin", lambda m: F(m).triplet_margin_with_distance_loss(
        const(m, np.ones((3, 4))), const(m, np.ones((3, 4))), const(m, np.ones((3, 4))), margin=0)),
    ("soft_reduction", lambda m: F(m).soft_margin_loss(const(m, np.ones(3)), const(m, np.ones(3)),
                                                       reduction="bad")),
    ("hinge_reduction", lambda m: F(m).hinge_embedding_loss(const(m, np.ones(3)), const(m, np.ones(3)),
                                                            reduction="bad")),
    ("mlsm_reduction", lambda m: F(m).multilabel_soft_margin_loss(const(m, np.ones((2, 3))),
                                                                  const(m, np.ones((2, 3))), reduction="bad")),
]


@pytest.mark.parametrize("name,call", MARGIN_ERRORS, ids=[e[0] for e in MARGIN_ERRORS])
def test_loss_errors(name, call):
    t, v = _raises_like_torch(call)
    if name.startswith("mm_") and TORCH_VERSION < (2, 13):
        return  # torch 2.11 worded these "inconsistent target size, ..."; vibetensor words them as 2.13 does
    assert t == v


def test_soft_margin_loss_refuses_target_grad():
    t, v = _raises_like_torch(lambda m: F(m).soft_margin_loss(const(m, np.ones(3)),
                                                              const(m, np.ones(3)).requires_grad_()))
    assert t == v


def test_shape_mismatch_raises():
    for fn in ("soft_margin_loss", "hinge_embedding_loss", "multilabel_soft_margin_loss"):
        _raises_like_torch(lambda m: getattr(F(m), fn)(const(m, np.ones((3, 4))), const(m, np.ones((2, 4)))))
    _raises_like_torch(lambda m: F(m).cosine_embedding_loss(const(m, np.ones((3, 4))), const(m, np.ones((2, 4))),
                                                            const(m, np.ones(3))))


def test_float32_forward():
    (x, tx), (y, ty), (z, tz) = leaves([(4, 6)] * 3, dtype="float32")
    calls = [
        lambda m, a, b, c: F(m).triplet_margin_loss(a, b, c, swap=True),
        lambda m, a, b, c: F(m).poisson_nll_loss(a, b.abs() * 3, full=True),
        lambda m, a, b, c: F(m).gaussian_nll_loss(a, b, c.abs()),
        lambda m, a, b, c: F(m).soft_margin_loss(a, b.sign().detach()),
        lambda m, a, b, c: F(m).hinge_embedding_loss(a, b.sign()),
        lambda m, a, b, c: F(m).cosine_embedding_loss(a, b, c[:, 0].sign()),
        lambda m, a, b, c: F(m).multilabel_soft_margin_loss(a, (b > 0).float()),
        lambda m, a, b, c: F(m).multi_margin_loss(a, const(m, [0, 5, 2, 1], np.int64)),
    ]
    for i, fn in enumerate(calls):
        out = fn(vt, x, y, z)
        assert out.dtype == vt.float32, i
        np.testing.assert_allclose(to_np(out), to_np(fn(torch, tx, ty, tz)), rtol=1e-5, atol=1e-6, err_msg=str(i))


# ---- loss modules ----
LOSS_MODULES = [
    ("TripletMarginLoss", {"margin": 0.5, "p": 1.0, "swap": True}, "triplet"),
    ("TripletMarginLoss", {"reduction": "sum", "eps": 1e-3}, "triplet"),
    ("TripletMarginWithDistanceLoss", {"margin": 0.3, "swap": True}, "triplet"),
    ("PoissonNLLLoss", {"log_input": False, "full": True}, "poisson"),
    ("PoissonNLLLoss", {"reduction": "none", "eps": 1e-2}, "poisson"),
    ("GaussianNLLLoss", {"full": True, "eps": 1e-3}, "gauss"),
    ("GaussianNLLLoss", {"reduction": "sum"}, "gauss"),
    ("MultiLabelSoftMarginLoss", {"weight": (4,)}, "mlsm"), ("MultiLabelSoftMarginLoss", {}, "mlsm"),
    ("MultiLabelMarginLoss", {"reduction": "none"}, "mlm"),
    ("MultiMarginLoss", {"p": 2, "margin": 0.5, "weight": (4,)}, "mm"), ("MultiMarginLoss", {}, "mm"),
    ("SoftMarginLoss", {"reduction": "sum"}, "sign"), ("HingeEmbeddingLoss", {"margin": 0.4}, "sign"),
    ("CosineEmbeddingLoss", {"margin": 0.2, "reduction": "none"}, "cos"),
    ("SoftMarginLoss", {"size_average": False}, "sign"), ("HingeEmbeddingLoss", {"reduce": False}, "sign"),
]


@pytest.mark.parametrize("name,kwargs,kind", LOSS_MODULES, ids=[f"{m[0]}-{i}" for i, m in enumerate(LOSS_MODULES)])
def test_loss_modules_match_torch(name, kwargs, kind):
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
    for k, v in tm.state_dict().items():
        np.testing.assert_array_equal(to_np(vm.state_dict()[k]), v.numpy())
    assert list(vm.parameters()) == [] and list(tm.parameters()) == []

    def call(m, x, y, z):
        mod = mods[m]
        if kind == "triplet":
            return mod(x, y, z)
        if kind == "poisson":
            return mod(x.abs() + 0.1, (y * 3).abs().floor())
        if kind == "gauss":
            return mod(x, y, z.abs())
        if kind == "mlsm":
            return mod(x, (y > 0).to(x.dtype))
        if kind == "mlm":
            return mod(x, const(m, [[0, 2, -1, 1], [3, -1, 0, 0], [-1, 1, 1, 1]], np.int64))
        if kind == "mm":
            return mod(x, const(m, [0, 3, 2], np.int64))
        if kind == "cos":
            return mod(x, y, const(m, [1.0, -1.0, -1.0]))
        return mod(x, y.sign().detach())
    check_grads(call, leaves([(3, 4)] * 3))


def test_module_argument_errors():
    for call in (lambda m: nn(m).TripletMarginLoss(margin=0), lambda m: nn(m).TripletMarginWithDistanceLoss(margin=-1),
                 lambda m: nn(m).MultiMarginLoss(p=3),
                 lambda m: nn(m).MultiMarginLoss(weight=const(m, np.ones((2, 2))))):
        t, v = _raises_like_torch(call)
        assert t == v


def test_triplet_with_distance_module_holds_its_distance():
    vm = VM.TripletMarginWithDistanceLoss()
    assert [n for n, _ in vm.named_children()] == ["distance_function"]
    from vibetensor.torch.nn.loss_layers import PairwiseDistance

    assert type(vm.distance_function) is PairwiseDistance
    fn = lambda a, b: (a - b).abs().sum(-1)  # noqa: E731
    assert VM.TripletMarginWithDistanceLoss(distance_function=fn).distance_function is fn


def test_weight_buffer_loads_and_casts():
    m = VM.MultiMarginLoss(weight=vt.ones(3))
    m.load_state_dict({"weight": vt.full((3,), 2.0)})
    np.testing.assert_array_equal(m.weight.numpy(), np.full(3, 2.0))
    assert m.double().weight.dtype == vt.float64
    assert "weight" not in VM.MultiLabelSoftMarginLoss().state_dict()


# ---- affine_grid / grid_sample ----
@pytest.mark.parametrize("align_corners", [True, False])
@pytest.mark.parametrize("size", [(2, 3, 4, 5), (1, 1, 1, 3), (3, 2, 6, 1), (2, 1, 3, 4, 5), (1, 2, 1, 2, 3)])
def test_affine_grid(align_corners, size):
    rows = len(size) - 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the unit-size warning
        check_grads(lambda m, th: F(m).affine_grid(th, size, align_corners=align_corners),
                    leaves([(size[0], rows, rows + 1)]))


def test_affine_grid_warnings():
    th = vt.from_numpy(np.eye(2, 3)[None].copy())
    with pytest.warns(UserWarning, match="Default grid_sample and affine_grid behavior has changed"):
        g = VS.affine_grid(th, (1, 1, 2, 2))
    np.testing.assert_allclose(to_np(g), to_np(torch.nn.functional.affine_grid(
        torch.from_numpy(np.eye(2, 3)[None].copy()), (1, 1, 2, 2), align_corners=False)))
    with pytest.warns(UserWarning, match="unit-size grids"):
        VS.affine_grid(th, (1, 1, 1, 2), align_corners=True)


AFFINE_ERRORS = [
    ("int_theta", np.zeros((1, 2, 3), np.int64), (1, 1, 2, 2)),
    ("shape_2d", np.zeros((1, 3, 3)), (1, 1, 2, 2)),
    ("rank_2d", np.zeros((2, 3)), (1, 1, 2, 2)),
    ("shape_3d", np.zeros((1, 2, 3)), (1, 1, 2, 2, 2)),
    ("size_rank", np.zeros((1, 2, 3)), (1, 1, 2)),
    ("zero_size", np.zeros((1, 2, 3)), (1, 1, 0, 2)),
]


@pytest.mark.parametrize("name,theta,size", AFFINE_ERRORS, ids=[e[0] for e in AFFINE_ERRORS])
def test_affine_grid_errors(name, theta, size):
    t, v = _raises_like_torch(lambda m: F(m).affine_grid(const(m, theta), size, align_corners=False))
    if name == "int_theta":
        assert t.replace("torch.", "") == v.replace("vt.", "")
    else:
        assert t == v and str(size) in v


@pytest.mark.parametrize("align_corners", [True, False])
@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("mode", ["bilinear", "nearest", "bicubic"])
@pytest.mark.parametrize("shapes", [((2, 3, 4, 5), (2, 3, 6, 2)), ((1, 1, 1, 3), (1, 4, 2, 2)),
                                    ((1, 2, 3, 1), (1, 1, 5, 2)), ((2, 1, 5, 4), (2, 0, 3, 2)),
                                    ((2, 2, 3, 4, 2), (2, 2, 3, 4, 3)), ((1, 1, 1, 2, 3), (1, 3, 1, 2, 3))])
def test_grid_sample(align_corners, padding_mode, mode, shapes):
    xs, gs = shapes
    if mode == "bicubic" and len(xs) == 5:
        pytest.skip("bicubic takes 4-D input only (see the error test)")
    # grid points well outside [-1, 1] too, so every padding rule (several reflections) is exercised
    check_grads(lambda m, x, g: F(m).grid_sample(x, g * 2.5, mode=mode, padding_mode=padding_mode,
                                                 align_corners=align_corners),
                leaves([xs, gs], seed=xs[2]))


@pytest.mark.parametrize("align_corners", [True, False])
def test_grid_sample_through_affine_grid(align_corners):
    def run(m, x, th):
        g = F(m).affine_grid(th, (2, 3, 5, 6), align_corners=align_corners)
        return F(m).grid_sample(x, g, padding_mode="border", align_corners=align_corners)
    check_grads(run, leaves([(2, 3, 4, 4), (2, 2, 3)]))


@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("align_corners", [True, False])
@pytest.mark.parametrize("mode", ["bilinear", "nearest", "bicubic"])
@pytest.mark.parametrize("scale", [1.0, 2.0, 0.5])
def test_grid_sample_on_pixel_centres(padding_mode, align_corners, mode, scale):
    # an identity (or exactly scaled) grid lands on whole pixels and on the edges: the corner rules matter there.
    # Sizes whose grid points are exact binary fractions: torch's CPU kernel unnormalises with a fused
    # multiply-add, so for other sizes its whole-pixel points sit an ulp to one side (vt's: exactly on them)
    size = (1, 2, 3, 5) if align_corners else (1, 2, 4, 8)
    theta = np.array([[[scale, 0.0, 0.0], [0.0, scale, 0.0]]])
    pairs = leaves([size]) + [(vt.from_numpy(theta.copy()).requires_grad_(),
                               torch.from_numpy(theta.copy()).requires_grad_())]

    def run(m, x, th):
        g = F(m).affine_grid(th, size, align_corners=align_corners)
        return F(m).grid_sample(x, g, mode=mode, padding_mode=padding_mode, align_corners=align_corners)
    check_grads(run, pairs)


def test_grid_sample_float32_and_default_align():
    (x, tx), (g, tg) = leaves([(2, 2, 5, 5), (2, 3, 3, 2)], dtype="float32")
    with pytest.warns(UserWarning, match="align_corners=False since 1.3.0"):
        out = VS.grid_sample(x, g)
    assert out.dtype == vt.float32
    np.testing.assert_allclose(to_np(out), to_np(torch.nn.functional.grid_sample(tx, tg, align_corners=False)),
                               rtol=1e-5, atol=1e-6)


GRID_ERRORS = [
    ("mode", (1, 1, 2, 2), (1, 2, 2, 2), {"mode": "linear"}),
    ("padding", (1, 1, 2, 2), (1, 2, 2, 2), {"padding_mode": "wrap"}),
    ("rank", (1, 1, 2, 2), (1, 2, 2), {}),
    ("rank3", (1, 2, 2), (1, 2, 2), {}),
    ("rank5_grid4", (1, 1, 2, 2, 2), (1, 2, 2, 2), {}),
    ("rank5_grid_last", (1, 1, 2, 2, 2), (1, 2, 2, 2, 2), {}),
    ("rank5_batch", (1, 1, 2, 2, 2), (2, 2, 2, 2, 3), {}),
    ("rank5_empty", (1, 1, 2, 0, 2), (1, 2, 2, 2, 3), {}),
    ("rank5_bicubic", (1, 1, 2, 2, 2), (1, 2, 2, 2, 3), {"mode": "bicubic"}),
    ("rank4_grid5", (1, 1, 2, 2), (1, 2, 2, 2, 2), {}),
    ("batch", (2, 1, 2, 2), (1, 2, 2, 2), {}),
    ("last_dim", (1, 1, 2, 2), (1, 2, 2, 3), {}),
    ("empty_spatial", (1, 1, 0, 2), (1, 2, 2, 2), {}),
]


@pytest.mark.parametrize("name,xs,gs,kw", GRID_ERRORS, ids=[e[0] for e in GRID_ERRORS])
def test_grid_sample_errors(name, xs, gs, kw):
    t, v = _raises_like_torch(lambda m: F(m).grid_sample(const(m, np.zeros(xs)), const(m, np.zeros(gs)),
                                                          align_corners=False, **kw))
    assert t == v


def test_grid_sample_dtype_mismatch():
    t, v = _raises_like_torch(lambda m: F(m).grid_sample(const(m, np.zeros((1, 1, 2, 2), np.float32)),
                                                          const(m, np.zeros((1, 2, 2, 2))), align_corners=False))
    assert t == v == "expected scalar type Float but found Double"


@pytest.mark.parametrize("align_corners", [True, False])
def test_grid_sample_volumetric_through_affine_grid(align_corners):
    def run(m, x, th):
        g = F(m).affine_grid(th, (2, 2, 3, 4, 5), align_corners=align_corners)
        return F(m).grid_sample(x, g, padding_mode="reflection", align_corners=align_corners)
    check_grads(run, leaves([(2, 2, 4, 3, 3), (2, 3, 4)]))


# ---- embedding_bag ----
BAG_INPUT = [1, 2, 4, 5, 4, 3, 2, 9, 0, 0, 7]


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
@pytest.mark.parametrize("padding_idx", [None, 4, -1, 0])
@pytest.mark.parametrize("offsets,last", [([0, 2, 2, 5], False), ([0, 3, 3, 8, 11], True), ([0, 4, 4, 11], True),
                                          ([0], False), ([0, 11], False)])
def test_embedding_bag_1d(mode, padding_idx, offsets, last):
    check_grads(lambda m, w: F(m).embedding_bag(_i(m, BAG_INPUT), w, _i(m, offsets), mode=mode,
                                                include_last_offset=last, padding_idx=padding_idx),
                leaves([(10, 3)]))


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
@pytest.mark.parametrize("padding_idx", [None, 2])
def test_embedding_bag_2d(mode, padding_idx):
    idx = [[1, 2, 2], [2, 2, 2], [0, 5, 3], [4, 1, 0]]
    check_grads(lambda m, w: F(m).embedding_bag(_i(m, idx), w, mode=mode, padding_idx=padding_idx),
                leaves([(6, 4)]))


@pytest.mark.parametrize("padding_idx", [None, 3])
def test_embedding_bag_per_sample_weights(padding_idx):
    check_grads(lambda m, w, p: F(m).embedding_bag(_i(m, [[0, 3, 1], [2, 2, 4]]), w, mode="sum",
                                                   per_sample_weights=p, padding_idx=padding_idx),
                leaves([(5, 3), (2, 3)]))
    check_grads(lambda m, w, p: F(m).embedding_bag(_i(m, BAG_INPUT[:6]), w, _i(m, [0, 1, 1, 4]), mode="sum",
                                                   per_sample_weights=p, padding_idx=padding_idx),
                leaves([(6, 2), (6,)]))


def test_embedding_bag_empty_and_int32():
    for mode in ("sum", "mean", "max"):
        check_grads(lambda m, w: F(m).embedding_bag(_i(m, np.zeros(0)), w, _i(m, [0, 0]), mode=mode),
                    leaves([(4, 3)]))
        check_grads(lambda m, w: F(m).embedding_bag(const(m, [1, 3, 0], np.int32), w,
                                                    const(m, [0, 2], np.int32), mode=mode), leaves([(4, 3)]))
        # no bags at all: (0, dim) (torch's own call of this crashes the process, so no comparison)
        out = VS.embedding_bag(vt.tensor([1, 2]), vt.ones(4, 3), vt.tensor([0]), include_last_offset=True, mode=mode)
        assert tuple(out.shape) == (0, 3)


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_embedding_bag_many_random_bags(mode):
    rng = np.random.default_rng(11)
    idx = rng.integers(0, 50, 3000)
    offsets = np.sort(np.concatenate([[0], rng.integers(0, 3001, 399)]))  # repeats: empty bags, some at the end
    psw = rng.random(3000) if mode == "sum" else None
    check_grads(lambda m, w: F(m).embedding_bag(_i(m, idx), w, _i(m, offsets), mode=mode, padding_idx=7,
                                                per_sample_weights=None if psw is None else const(m, psw)),
                leaves([(50, 6)]))


BAG_ERRORS = [
    ("psw_shape", lambda m: F(m).embedding_bag(_i(m, [[0, 1]]), const(m, np.ones((3, 2))),
                                               per_sample_weights=const(m, np.ones(2)), mode="sum")),
    ("weight_rank", lambda m: F(m).embedding_bag(_i(m, [[0, 1]]), const(m, np.ones(3)))),
    ("2d_offsets", lambda m: F(m).embedding_bag(_i(m, [[0, 1]]), const(m, np.ones((3, 2))), _i(m, [0]))),
    ("1d_no_offsets", lambda m: F(m).embedding_bag(_i(m, [0, 1]), const(m, np.ones((3, 2))))),
    ("offsets_rank", lambda m: F(m).embedding_bag(_i(m, [0, 1]), const(m, np.ones((3, 2))), _i(m, [[0]]))),
    ("input_rank", lambda m: F(m).embedding_bag(_i(m, [[[0]]]), const(m, np.ones((3, 2))))),
    ("mode", lambda m: F(m).embedding_bag(_i(m, [[0, 1]]), const(m, np.ones((3, 2))), mode="min")),
    ("psw_mode", lambda m: F(m).embedding_bag(_i(m, [[0, 1]]), const(m, np.ones((3, 2))),
                                              per_sample_weights=const(m, np.ones((1, 2))))),
    ("max_freq", lambda m: F(m).embedding_bag(_i(m, [[0, 1]]), const(m, np.ones((3, 2))), mode="max",
                                              scale_grad_by_freq=True)),
    ("padding_idx", lambda m: F(m).embedding_bag(_i(m, [0, 1]), const(m, np.ones((3, 2))), _i(m, [0]),
                                                 padding_idx=5)),
    ("offsets0", lambda m: F(m).embedding_bag(_i(m, [0, 1]), const(m, np.ones((3, 2))), _i(m, [1]))),
    ("offsets_last", lambda m: F(m).embedding_bag(_i(m, [0, 1]), const(m, np.ones((3, 2))), _i(m, [0, 3]))),
    ("index", lambda m: F(m).embedding_bag(_i(m, [0, 5]), const(m, np.ones((3, 2))), _i(m, [0]))),
    ("zero_width", lambda m: F(m).embedding_bag(_i(m, np.zeros((3, 0))), const(m, np.ones((3, 2))))),
]


@pytest.mark.parametrize("name,call", BAG_ERRORS, ids=[e[0] for e in BAG_ERRORS])
def test_embedding_bag_errors(name, call):
    t, v = _raises_like_torch(call)
    if name == "offsets0":
        assert v.startswith(t.split(". However")[0])  # torch prints the offset as a tensor there
    elif name == "2d_offsets":
        assert v.split("offsets of type")[0] == t.split("offsets of type")[0] and "Tensor" in v
    else:
        assert t == v


def test_embedding_bag_float_index_and_unsupported():
    t, v = _raises_like_torch(lambda m: F(m).embedding_bag(const(m, [0.0, 1.0]), const(m, np.ones((3, 2))),
                                                            _i(m, [0])))
    assert t.split(";")[0] == v.split(";")[0]
    with pytest.raises(NotImplementedError, match="sparse"):  # max_norm: tests/autograd/test_embedding_bag_options.py
        VS.embedding_bag(vt.tensor([[0, 1]]), vt.ones(3, 2), sparse=True)


EMBEDDING_BAGS = [
    dict(), dict(mode="sum"), dict(mode="max", padding_idx=1), dict(padding_idx=-1, include_last_offset=True),
    dict(norm_type=1.0, mode="sum"),
]


@pytest.mark.parametrize("kwargs", EMBEDDING_BAGS, ids=[str(i) for i in range(len(EMBEDDING_BAGS))])
def test_embedding_bag_module(kwargs):
    tm, vm = torch.nn.EmbeddingBag(7, 3, **kwargs), VM.EmbeddingBag(7, 3, **kwargs)
    assert repr(vm) == repr(tm)
    public = lambda mod: {k: v for k, v in vars(mod).items() if not k.startswith("_")}  # noqa: E731
    assert public(vm) == public(tm)
    assert list(vm.state_dict()) == list(tm.state_dict()) == ["weight"]
    assert [n for n, _ in vm.named_parameters()] == ["weight"] and vm.weight.requires_grad
    if vm.padding_idx is not None:
        assert not vm.weight.numpy()[vm.padding_idx].any()
    vm.load_state_dict({"weight": vt.from_numpy(tm.weight.detach().numpy().astype(np.float32).copy())})
    idx, off = [0, 2, 6, 1, 1, 5], [0, 2, 2, 6] if kwargs.get("include_last_offset") else [0, 2, 2]
    out_v, out_t = vm(vt.tensor(idx), vt.tensor(off)), tm(torch.tensor(idx), torch.tensor(off))
    np.testing.assert_allclose(to_np(out_v), to_np(out_t), rtol=1e-6, atol=1e-7)
    if kwargs.get("mode") == "sum":
        psw = np.linspace(0.5, 1.5, 6).astype(np.float32)
        np.testing.assert_allclose(to_np(vm(vt.tensor(idx), vt.tensor(off), vt.from_numpy(psw))),
                                   to_np(tm(torch.tensor(idx), torch.tensor(off), torch.from_numpy(psw))),
                                   rtol=1e-6, atol=1e-7)


def test_embedding_bag_module_init_and_from_pretrained():
    vt.manual_seed(0)  # a fixed draw: the bounds below are 5 standard errors of 20,000 N(0, 1) samples
    vm = VM.EmbeddingBag(400, 50, dtype=vt.float64)
    w = vm.weight.numpy()
    assert w.dtype == np.float64 and abs(w.mean()) < 0.035 and abs(w.std() - 1.0) < 0.025  # N(0, 1), as torch's
    for call in (lambda m: nn(m).EmbeddingBag(3, 2, padding_idx=3), lambda m: nn(m).EmbeddingBag(3, 2, padding_idx=-4),
                 lambda m: nn(m).EmbeddingBag(3, 2, _weight=const(m, np.ones((2, 2), np.float32)))):
        t, v = _raises_like_torch(call)
        assert t == v
    emb = np.arange(12.0).reshape(4, 3)
    tb = torch.nn.EmbeddingBag.from_pretrained(torch.from_numpy(emb.copy()), mode="max")
    vb = VM.EmbeddingBag.from_pretrained(vt.from_numpy(emb.copy()), mode="max")
    assert repr(vb) == repr(tb) and not vb.weight.requires_grad
    np.testing.assert_array_equal(to_np(vb(vt.tensor([[0, 3], [2, 1]]))), to_np(tb(torch.tensor([[0, 3], [2, 1]]))))
    assert VM.EmbeddingBag.from_pretrained(vt.from_numpy(emb.copy()), freeze=False).weight.requires_grad
    assert math.isclose(float(to_np(vb.weight).sum()), 66.0)
