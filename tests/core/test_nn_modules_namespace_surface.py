"""vt.nn.modules against torch.nn.modules: the submodules and their public names, the private base classes public
code reaches through them (norms kept out of weight decay with isinstance(m, nn.modules.batchnorm._BatchNorm),
every convolution initialised through nn.modules.conv._ConvNd, a custom loss on nn.modules.loss._Loss), the
tuple parsers of nn.modules.utils, import statements of the submodules; and vt._assert against torch._assert."""
import importlib

import pytest
import torch
import vibetensor.torch as vt

SUBMODULES = ["activation", "adaptive", "batchnorm", "channelshuffle", "container", "conv", "distance", "dropout",
              "flatten", "fold", "instancenorm", "lazy", "linear", "loss", "module", "normalization", "padding",
              "pixelshuffle", "pooling", "rnn", "sparse", "transformer", "upsampling"]
ABSENT = {"CrossMapLRN2d", "NLLLoss2d", "LinearCrossEntropyLoss", "LinearCrossEntropyOptions", "FractionalMaxPool2d",
          "FractionalMaxPool3d", "Container"}


@pytest.mark.parametrize("name", SUBMODULES)
def test_each_submodule_has_torchs_public_classes(name):
    tmod, vmod = getattr(torch.nn.modules, name), getattr(vt.nn.modules, name)
    want = [n for n in getattr(tmod, "__all__", []) if n not in ABSENT and not n.startswith("register_module_")]
    for n in want:
        if hasattr(torch.nn, n):
            assert getattr(vmod, n) is getattr(vt.nn, n), n
            assert getattr(vt.nn.modules, n) is getattr(vt.nn, n), n
        else:  # LazyModuleMixin: only under nn.modules
            assert isinstance(getattr(vmod, n), type), n
    assert importlib.import_module(f"vibetensor.torch.nn.modules.{name}") is vmod


def test_the_package_lists_what_torchs_lists():
    absent = ABSENT
    if not hasattr(torch.nn, "LinearCrossEntropyLoss"):  # torch 2.13 added it and LinearCrossEntropyOptions
        absent = ABSENT - {"LinearCrossEntropyLoss", "LinearCrossEntropyOptions"}
    assert set(torch.nn.modules.__all__) - set(vt.nn.modules.__all__) == absent
    assert set(vt.nn.modules.__all__) <= set(torch.nn.modules.__all__)


def _kinds(L):
    nn = L.nn
    return [nn.BatchNorm2d(3), nn.SyncBatchNorm(3), nn.LazyBatchNorm1d(), nn.InstanceNorm2d(3), nn.GroupNorm(1, 3),
            nn.LayerNorm(3), nn.Conv2d(2, 2, 1), nn.ConvTranspose2d(2, 2, 1), nn.Conv3d(2, 2, 1),
            nn.LazyConv2d(2, 1), nn.Linear(2, 2), nn.MSELoss(), nn.CrossEntropyLoss(), nn.MaxPool2d(2),
            nn.AvgPool1d(2), nn.AdaptiveAvgPool2d(1), nn.ZeroPad2d(1), nn.MaxUnpool2d(2), nn.LPPool2d(2, 2)]


def _bases(L):
    m = L.nn.modules
    return [m.batchnorm._BatchNorm, m.batchnorm._NormBase, m.instancenorm._InstanceNorm, m.conv._ConvNd,
            m.conv._ConvTransposeNd, m.lazy.LazyModuleMixin, m.loss._Loss, m.loss._WeightedLoss,
            m.pooling._MaxPoolNd, m.pooling._AvgPoolNd, m.pooling._AdaptiveAvgPoolNd, m.padding._ConstantPadNd,
            m.pooling._MaxUnpoolNd, m.pooling._LPPoolNd]


def test_isinstance_against_the_private_bases_matches_torch():
    want = [[isinstance(x, b) for b in _bases(torch)] for x in _kinds(torch)]
    got = [[isinstance(x, b) for b in _bases(vt)] for x in _kinds(vt)]
    assert got == want


def test_norm_and_bias_parameters_split_off_weight_decay_as_public_code_does():
    def groups(L):
        L.manual_seed(0)
        nn = L.nn
        model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 4, 1, bias=False),
                              nn.GroupNorm(2, 4), nn.Flatten(), nn.LazyLinear(2))
        norms = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm)
        decay, no_decay = [], []
        for mname, m in model.named_modules():
            for pname, p in m.named_parameters(recurse=False):
                (no_decay if isinstance(m, norms) or pname == "bias" else decay).append(f"{mname}.{pname}")
        convs = [n for n, m in model.named_modules() if isinstance(m, nn.modules.conv._ConvNd)]
        return decay, no_decay, convs

    assert groups(vt) == groups(torch)


def test_a_loss_on_the_loss_base_takes_torchs_reduction_arguments():
    def focal(L):
        class FocalLoss(L.nn.modules.loss._Loss):
            def __init__(self, gamma=2.0, reduction="mean"):
                super().__init__(reduction=reduction)
                self.gamma = gamma

            def forward(self, logits, target):
                ce = L.nn.functional.cross_entropy(logits, target, reduction="none")
                loss = (1 - L.exp(-ce)) ** self.gamma * ce
                return loss.mean() if self.reduction == "mean" else loss.sum() if self.reduction == "sum" else loss
        return FocalLoss

    for reduction in ("mean", "sum", "none"):
        t, v = focal(torch)(reduction=reduction), focal(vt)(reduction=reduction)
        assert v.reduction == t.reduction == reduction
        logits, target = [[2.0, -1.0, 0.5], [0.1, 0.2, 0.3]], [0, 2]
        tv = t(torch.tensor(logits), torch.tensor(target))
        vv = v(vt.tensor(logits), vt.tensor(target))
        assert vv.tolist() == pytest.approx(tv.tolist(), rel=1e-6)
    for L in (torch, vt):  # the legacy size_average / reduce arguments map to a reduction, with a warning
        with pytest.warns(UserWarning, match="deprecated"):
            assert L.nn.modules.loss._Loss(size_average=False).reduction == "sum"
        with pytest.warns(UserWarning, match="deprecated"):
            assert L.nn.modules.loss._Loss(reduce=False).reduction == "none"
    v = focal(vt)()
    assert isinstance(v, vt.nn.Module)


@pytest.mark.parametrize("value", [3, (1, 2), [4, 5, 6], range(2), "ab"])
def test_utils_tuple_parsers_match_torch(value):
    tu, vu = torch.nn.modules.utils, vt.nn.modules.utils
    for name in ("_single", "_pair", "_triple", "_quadruple"):
        assert getattr(vu, name)(value) == getattr(tu, name)(value), name
        assert getattr(vu, name).__name__ == getattr(tu, name).__name__
    assert vu._ntuple(5, "five")(value) == tu._ntuple(5, "five")(value)
    assert vu._reverse_repeat_tuple((1, 2, 3), 2) == tu._reverse_repeat_tuple((1, 2, 3), 2)
    assert vu._list_with_default([None, 4], [2, 3, 7, 9]) == tu._list_with_default([None, 4], [2, 3, 7, 9])
    assert vu._list_with_default(5, [1]) == tu._list_with_default(5, [1]) == 5
    with pytest.raises(ValueError, match="Input dimension should be at least 3"):
        tu._list_with_default([None, 4], [2, 3])
    with pytest.raises(ValueError, match="Input dimension should be at least 3"):
        vu._list_with_default([None, 4], [2, 3])


def test_from_import_of_the_submodules():
    from vibetensor.torch.nn.modules.batchnorm import _BatchNorm
    from vibetensor.torch.nn.modules.utils import _pair
    import vibetensor.torch.nn.modules.conv as conv

    assert _BatchNorm is vt.nn.modules.batchnorm._BatchNorm and _pair(2) == (2, 2)
    assert conv.Conv2d is vt.nn.Conv2d and issubclass(conv.Conv2d, conv._ConvNd)


@pytest.mark.parametrize("cond", [True, 1, [0], "x"])
def test_assert_passes_on_truthy_conditions(cond):
    assert vt._assert(cond, "never") is torch._assert(cond, "never") is None
    assert vt._assert(vt.tensor([True]), "never") is None


@pytest.mark.parametrize("cond", [False, 0, [], None])
def test_assert_raises_assertion_error_with_the_message(cond):
    for L in (torch, vt):
        with pytest.raises(AssertionError, match="^shape mismatch: 3 != 4$"):
            L._assert(cond, "shape mismatch: 3 != 4")
    with pytest.raises(AssertionError, match="bad"):
        vt._assert(vt.tensor(False), "bad")
    with pytest.raises(RuntimeError, match="ambiguous"):
        vt._assert(vt.tensor([True, False]), "x")
    with pytest.raises(RuntimeError, match="ambiguous"):
        torch._assert(torch.tensor([True, False]), "x")
