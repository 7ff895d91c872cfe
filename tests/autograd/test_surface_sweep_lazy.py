"""nn.Buffer, Uninitialized{Parameter,Buffer}, the Lazy modules and F.conv_transpose3d / nn.ConvTranspose3d against
torch: registration and state_dict keys, materialisation at the first forward (class, repr, shapes, forward values
once both sides hold the same weights), load_state_dict before the first forward, errors; conv_transpose3d's values
and float64 gradients over every option."""
import inspect
import re

import numpy as np
import pytest
import torch

import vibetensor.torch as vt
from ag_helpers import check_grads, leaves
from vibetensor.torch.nn import conv_transpose3d as CT3
from vibetensor.torch.nn import lazy as L
from vibetensor.torch.nn.parameter import Buffer, Parameter, UninitializedBuffer, UninitializedParameter


# torch 2.13 gave the norm modules a keyword-only bias flag, shown in their repr as bias=...; vt follows 2.13
TORCH_NORM_HAS_BIAS = "bias" in inspect.signature(torch.nn.BatchNorm1d.__init__).parameters


def torch_repr(m):
    """repr(m) as torch 2.13 prints it: before the bias flag a norm's bias was there exactly when affine was."""
    r = repr(m)
    return r if TORCH_NORM_HAS_BIAS else re.sub(r"affine=(True|False)", r"affine=\1, bias=\1", r)


def V(t):
    return vt.from_numpy(t.detach().numpy().copy())


def N(t):
    return t.detach().numpy()


# ---- nn.Buffer ----
def test_buffer_tensor_and_marks():
    for data, persistent in ((torch.ones(2, requires_grad=True), False), (torch.zeros(3), True)):
        tb, vb = torch.nn.Buffer(data, persistent=persistent), Buffer(V(data).requires_grad_(data.requires_grad),
                                                                      persistent=persistent)
        assert isinstance(vb, Buffer) and isinstance(vb, vt.Tensor) and not isinstance(vb, Parameter)
        assert vb.persistent == tb.persistent and vb.requires_grad == tb.requires_grad and vb.is_leaf
        np.testing.assert_array_equal(N(vb), N(tb))
    assert not isinstance(vt.ones(1), Buffer)
    assert tuple(Buffer().shape) == tuple(torch.nn.Buffer().shape) == (0,)
    with pytest.raises(TypeError):
        Buffer(vt.ones(1), False)  # persistent is keyword-only


def _module_ops(nn, T):
    m = nn.Module()
    m.x = nn.Buffer(T.ones(2), persistent=False)
    m.y = nn.Buffer(T.zeros(1))
    keys = [list(m.state_dict()), sorted(dict(m.named_buffers()))]
    m.x = T.ones(3)  # a plain tensor keeps the name's persistence
    keys.append(list(m.state_dict()))
    m.x = nn.Buffer(T.ones(3))  # a Buffer brings its own
    keys.append(list(m.state_dict()))
    m.register_buffer("z", nn.Buffer(T.ones(1), persistent=False))  # register_buffer's argument wins
    keys.append(list(m.state_dict()))
    m.y = nn.Buffer(T.ones(2), persistent=False)
    keys.append(list(m.state_dict()))
    keys.append(sorted(m._non_persistent_buffers_set))
    return keys


def test_buffer_assignment_registers_like_torch():
    assert _module_ops(vt.nn, vt) == _module_ops(torch.nn, torch)


def test_buffer_assignment_errors():
    for nn, T in ((vt.nn, vt), (torch.nn, torch)):
        m = nn.Module()
        m.p = nn.Parameter(T.ones(1))
        with pytest.raises(TypeError, match="as parameter 'p'"):
            m.p = nn.Buffer(T.ones(1))
        m.c = nn.Linear(1, 1)
        with pytest.raises(TypeError, match="as child module 'c'"):
            m.c = nn.Buffer(T.ones(1))
        m.a = 5
        with pytest.raises(KeyError, match="already exists"):
            m.a = nn.Buffer(T.ones(1))
        m.b = nn.Buffer(T.ones(1))
        with pytest.raises(TypeError, match=r"\(torch.nn.Buffer, torch.Tensor or None expected\)"):
            m.b = 3
        m.b = None
        assert "b" in m._buffers and "b" not in m.state_dict()


# ---- Uninitialized* ----
def test_uninitialized_placeholders():
    for dtype in (None, vt.float64):
        p = UninitializedParameter(dtype=dtype)
        tp = torch.nn.UninitializedParameter(dtype=None if dtype is None else torch.float64)
        assert isinstance(p, Parameter) and repr(p) == repr(tp) == "<UninitializedParameter>"
        assert str(p.dtype).split(".")[-1] == str(tp.dtype).split(".")[-1] and p.requires_grad
        with pytest.raises(RuntimeError, match="Can't access the shape of an uninitialized parameter"):
            p.shape
        with pytest.raises(RuntimeError, match="Can't access the shape"):
            tp.shape
        m = p.materialize((2, 3))
        assert isinstance(m, Parameter) and tuple(m.shape) == (2, 3) and m.dtype == p.dtype and m.requires_grad
    b = UninitializedBuffer(persistent=False)
    assert repr(b) == "<UninitializedBuffer>" and not b.requires_grad and b.persistent is False
    t = b.materialize((4,), dtype=vt.float64)
    assert isinstance(t, vt.Tensor) and not isinstance(t, Parameter) and t.dtype == vt.float64
    assert tuple(t.shape) == (4,) and not t.requires_grad


# ---- Lazy modules ----
LAZY = [
    ("LazyLinear", (3,), {}, (2, 5, 4)),
    ("LazyLinear", (3,), {"bias": False}, (4,)),
    ("LazyConv1d", (4, 3), {"stride": 2, "padding": 1}, (2, 3, 9)),
    ("LazyConv1d", (4, 3), {"groups": 2, "padding_mode": "reflect", "padding": 1}, (2, 6, 7)),
    ("LazyConv1d", (2, 2), {"bias": False}, (3, 5)),  # unbatched
    ("LazyConv2d", (4, 3), {"dilation": 2, "padding": "same"}, (1, 2, 7, 6)),
    ("LazyConv3d", (2, (2, 3, 1)), {"stride": (1, 2, 1), "groups": 1}, (2, 3, 4, 5, 3)),
    ("LazyConvTranspose1d", (4, 3), {"stride": 2, "output_padding": 1}, (2, 3, 5)),
    ("LazyConvTranspose2d", (4, 3), {"groups": 2, "dilation": 2, "bias": False}, (1, 4, 3, 4)),
    ("LazyConvTranspose3d", (3, 2), {"stride": 2, "padding": 1, "output_padding": 1}, (2, 2, 3, 2, 3)),
    ("LazyBatchNorm1d", (), {}, (4, 3)),
    pytest.param("LazyBatchNorm1d", (), {"bias": False, "momentum": None}, (4, 3, 5),
                 marks=pytest.mark.skipif(not TORCH_NORM_HAS_BIAS, reason="torch 2.13 added the norms' bias flag")),
    ("LazyBatchNorm2d", (), {"affine": False}, (2, 3, 4, 5)),
    ("LazyBatchNorm3d", (), {"track_running_stats": False, "eps": 1e-3}, (2, 3, 2, 3, 2)),
    ("LazyInstanceNorm1d", (), {}, (2, 3, 6)),
    ("LazyInstanceNorm2d", (), {"affine": False, "track_running_stats": False}, (2, 3, 4, 5)),
    ("LazyInstanceNorm3d", (), {"momentum": 0.3}, (2, 2, 3, 3, 2)),
]


def _sd_summary(m):
    return [(k, type(v).__name__ if "Uninitialized" in type(v).__name__ else tuple(v.shape))
            for k, v in m.state_dict().items()]


@pytest.mark.parametrize("name,args,kwargs,shape", LAZY)
def test_lazy_module_matches_torch(name, args, kwargs, shape):
    tm, vm = getattr(torch.nn, name)(*args, **kwargs), getattr(L, name)(*args, **kwargs)
    assert type(vm).__name__ == name and repr(vm) == torch_repr(tm)
    assert vm.has_uninitialized_params() == tm.has_uninitialized_params()
    assert _sd_summary(vm) == _sd_summary(tm)
    assert len(list(vm.parameters())) == len(list(tm.parameters()))
    x = torch.randn(*shape, dtype=torch.float64)
    tm.double(), vm.double()
    ty = tm(x)
    vy = vm(V(x))
    assert type(vm).__name__ == type(tm).__name__ == getattr(L, name).cls_to_become.__name__
    assert isinstance(vm, getattr(L, name).cls_to_become) and not hasattr(vm, "has_uninitialized_params")
    assert repr(vm) == torch_repr(tm) and _sd_summary(vm) == _sd_summary(tm)
    assert all(isinstance(p, Parameter) and p.dtype == vt.float64 for p in vm.parameters())
    assert [p.requires_grad for p in vm.parameters()] == [p.requires_grad for p in tm.parameters()]
    assert vm._forward_pre_hooks == {} and "_initialize_hook" not in vm.__dict__
    # the default initialisation: norms' exact values; convs/linear inside torch's bound
    for k, v in vm.state_dict().items():
        t = tm.state_dict()[k]
        if "Norm" in name or k == "num_batches_tracked":  # running stats: updated by the first (training) call
            np.testing.assert_allclose(N(v), N(t), rtol=1e-12, atol=1e-14)
        elif k in ("weight", "bias"):
            fan_in = vm.weight.shape[1] * int(np.prod(vm.weight.shape[2:]))
            assert np.abs(N(v)).max() <= 1 / np.sqrt(fan_in) + 1e-12
            assert N(v).size <= 1 or np.unique(N(v)).size > 1  # drawn, not constant
    vm.load_state_dict({k: V(v) for k, v in tm.state_dict().items()})
    vm.train(tm.training)
    np.testing.assert_allclose(N(vm(V(x))), N(tm(x)), rtol=1e-10, atol=1e-12)
    assert tuple(vy.shape) == tuple(ty.shape)


def test_lazy_load_state_dict_before_forward():
    reprs = []
    for nn, T, conv in ((vt.nn, vt, V), (torch.nn, torch, lambda t: t)):
        seq = nn.Sequential(getattr(L if nn is vt.nn else nn, "LazyLinear")(3),
                            getattr(L if nn is vt.nn else nn, "LazyBatchNorm1d")())
        src = torch.nn.Sequential(torch.nn.Linear(5, 3), torch.nn.BatchNorm1d(3))
        seq.load_state_dict({k: conv(v) for k, v in src.state_dict().items()})
        assert type(seq[0]).__name__ == "LazyLinear" and not seq[0].has_uninitialized_params()
        assert repr(seq[0]) == "LazyLinear(in_features=0, out_features=3, bias=True)"
        np.testing.assert_array_equal(N(seq[0].weight), N(src[0].weight))
        x = torch.from_numpy(np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32))
        out = seq(conv(x))
        assert type(seq[0]).__name__ == "Linear" and seq[0].in_features == 5  # read off the input
        reprs.append(repr(seq) if nn is vt.nn else torch_repr(seq))
        np.testing.assert_allclose(N(out), N(src(x)), rtol=1e-5, atol=1e-6)
    assert reprs[0] == reprs[1] and "BatchNorm1d(0," in reprs[0]  # torch's: num_features stays 0 too


def test_lazy_state_dict_round_trip_and_errors():
    m = L.LazyLinear(3)
    assert m.load_state_dict(L.LazyLinear(3).state_dict()) is not None  # placeholders into placeholders
    assert m.has_uninitialized_params()
    with pytest.raises(RuntimeError, match="Can't access the shape"):
        vt.nn.Linear(2, 3).load_state_dict(L.LazyLinear(3).state_dict())
    with pytest.raises(RuntimeError, match="Can't access the shape"):
        torch.nn.Linear(2, 3).load_state_dict(torch.nn.LazyLinear(3).state_dict())
    for mod, T, x in ((L, vt, vt.randn(1, 3, 5, 5)), (torch.nn, torch, torch.randn(1, 3, 5, 5))):
        c = mod.LazyConv2d(4, 3, groups=2)
        with pytest.raises(ValueError, match="in_channels must be divisible by groups"):
            c(x)
        with pytest.raises(RuntimeError, match=r"Expected 3D \(unbatched\) or 4D \(batched\) input to LazyConv2d, "
                                               r"but got input of size: torch.Size\(\[5, 5\]\)"):
            c(x[0, 0])
        b = mod.LazyBatchNorm1d()
        with pytest.raises(IndexError):
            b(x[0, 0, 0])
    for mod, T in ((L, vt), (torch.nn, torch)):
        m = mod.LazyLinear(3)
        m.load_state_dict(mod.Linear(2, 3).state_dict())
        with pytest.raises(AssertionError, match="The in_features inferred from input: 4 is not equal to "
                                                 "in_features from self.weight: 2"):
            m(T.ones(1, 4))
    p = L.LazyLinear(3).to(vt.float64)
    assert p.weight.dtype == vt.float64 and isinstance(p.weight, UninitializedParameter)
    with pytest.raises(RuntimeError, match="DataParallel"):
        L.LazyLinear(3)._replicate_for_data_parallel()


def test_lazy_module_protocol_before_materialise():
    import copy

    m = L.LazyLinear(3)
    c = copy.deepcopy(m)
    c(vt.randn(2, 4))
    assert type(c).__name__ == "Linear" and type(m).__name__ == "LazyLinear" and m.has_uninitialized_params()
    m.zero_grad()
    m.requires_grad_(False)
    m(vt.randn(2, 5))
    assert not m.weight.requires_grad and not m.bias.requires_grad and tuple(m.weight.shape) == (3, 5)
    n = L.LazyBatchNorm1d().train(False)
    assert not n.training
    n(vt.randn(4, 2))
    assert not n.training and tuple(n.running_mean.shape) == (2,)


def test_lazy_grads_flow_after_materialise():
    m = L.LazyLinear(2, dtype=vt.float64)
    y = m(vt.randn(3, 4, dtype=vt.float64)).sum()
    y.backward()
    assert tuple(m.weight.grad.shape) == (2, 4) and tuple(m.bias.grad.shape) == (2,)


# ---- conv_transpose3d ----
CT3_CASES = [
    # (N, C, D, H, W), O, groups, kernel, stride, padding, output_padding, dilation
    ((2, 4, 3, 4, 5), 6, 2, (2, 3, 2), (2, 1, 3), (1, 0, 1), (1, 0, 2), (1, 2, 1)),
    ((1, 2, 1, 1, 1), 3, 1, 3, 1, 0, 0, 1),
    ((2, 3, 4, 3, 3), 2, 1, (3, 2, 2), (3, 2, 2), (2, 1, 0), (0, 1, 1), (2, 1, 1)),
    ((1, 2, 2, 2, 2), 2, 1, 2, 2, 0, 1, 2),  # output_padding >= stride (dilation allows it)
    ((4, 2, 2, 3), 4, 2, (1, 2, 2), 1, (0, 1, 1), 0, 1),  # unbatched
]


@pytest.mark.parametrize("shape,O,G,k,s,p,op,d", CT3_CASES)
@pytest.mark.parametrize("bias", [True, False])
def test_conv_transpose3d_values_and_grads(shape, O, G, k, s, p, op, d, bias):
    ks = (k,) * 3 if isinstance(k, int) else k
    C = shape[-4]
    shapes = [shape, (C, O // G) + ks] + ([(O,)] if bias else [])
    pairs = leaves(shapes)

    def fn(m, x, w, b=None):
        f = CT3.conv_transpose3d if m is vt else torch.nn.functional.conv_transpose3d
        return f(x, w, b, s, p, op, G, d)
    check_grads(fn, pairs)


def test_conv_transpose3d_errors():
    x, w = vt.randn(1, 2, 3, 3, 3), vt.randn(2, 2, 2, 2, 2)
    with pytest.raises(RuntimeError, match="output padding must be smaller than either stride or dilation"):
        CT3.conv_transpose3d(x, w, output_padding=1)
    with pytest.raises(RuntimeError, match="to have 2 channels, but got 3 channels"):
        CT3.conv_transpose3d(vt.randn(1, 3, 3, 3, 3), w)
    with pytest.raises(RuntimeError, match="Expected 4D \\(unbatched\\) or 5D \\(batched\\) input"):
        CT3.conv_transpose3d(vt.randn(3, 3, 3), w)
    with pytest.raises(RuntimeError, match="5-D weight"):
        CT3.conv_transpose3d(x, vt.randn(2, 2, 2, 2))
    with pytest.raises(RuntimeError):
        torch.nn.functional.conv_transpose3d(torch.randn(1, 2, 3, 3, 3), torch.randn(2, 2, 2, 2, 2), output_padding=1)


def test_conv_transpose3d_module():
    for kwargs in ({}, {"stride": 2, "padding": (1, 0, 1), "output_padding": 1, "groups": 2, "bias": False},
                   {"dilation": 2, "stride": (1, 2, 3)}):
        tm = torch.nn.ConvTranspose3d(4, 6, 3, **kwargs).double()
        vm = CT3.ConvTranspose3d(4, 6, 3, dtype=vt.float64, **kwargs)
        assert repr(vm) == repr(tm) and _sd_summary(vm) == _sd_summary(tm)
        vm.load_state_dict({k: V(v) for k, v in tm.state_dict().items()})
        x = torch.randn(2, 4, 3, 4, 3, dtype=torch.float64)
        np.testing.assert_allclose(N(vm(V(x))), N(tm(x)), rtol=1e-10, atol=1e-12)
        if kwargs.get("stride") == (1, 2, 3):  # output_size picks the output_padding
            size = [d + s - 1 for d, s in zip(tm(x).shape[2:], (1, 2, 3))]
            np.testing.assert_allclose(N(vm(V(x), output_size=size)), N(tm(x, output_size=size)), rtol=1e-10)
            assert tuple(vm(V(x), output_size=size).shape[2:]) == tuple(size)
            with pytest.raises(ValueError, match="requested an output size"):
                vm(V(x), output_size=[d + 3 for d in size])
    with pytest.raises(ValueError, match="padding must be an int or a tuple"):
        CT3.ConvTranspose3d(2, 2, 2, padding="same")
    with pytest.raises(ValueError, match='Only "zeros" padding mode is supported for ConvTranspose3d'):
        CT3.ConvTranspose3d(2, 2, 2, padding_mode="reflect")
    with pytest.raises(ValueError):
        torch.nn.ConvTranspose3d(2, 2, 2, padding_mode="reflect")
