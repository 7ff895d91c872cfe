"""The layout of convolution and unfold results against torch's: contiguous for contiguous inputs and weights
(so that conv(x).view(N, -1), the classic flatten, works as in torch), channels_last (3-D for 5-D) when the input
or the weight suggests it, contiguous for 1-D convolutions whatever the input's strides; values and gradients
unchanged. (Before: a groups=1 conv2d returned the column product's channels_last strides for any input, so
.view(N, -1) raised; grouped and transposed convolutions dropped channels_last; conv1d / conv3d / unfold
returned non-contiguous results.) And the poolings, interpolate, group_norm and pad keep a channels_last input's
layout, as torch's (before: contiguous results, so a channels_last model left the format at each of them); batch_norm
takes its input's suggested format and instance_norm is contiguous (before: a transposed [N, C, L] view fed to
BatchNorm1d gave a non-contiguous result, so .view failed where torch's works)."""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt

R = np.random.default_rng(0)
X4 = R.standard_normal((2, 4, 6, 6)).astype(np.float32)
X3 = R.standard_normal((2, 4, 7)).astype(np.float32)
X5 = R.standard_normal((2, 4, 5, 5, 5)).astype(np.float32)


def lib_input(L, arr, layout):
    t = L.from_numpy(arr.copy())
    if layout == "cl":
        return t.contiguous(memory_format=L.channels_last if t.dim() == 4 else L.channels_last_3d)
    if layout == "transposed":  # a 3-D input viewed from [N, L, C], as sequence models feed conv1d
        return L.from_numpy(arr.transpose(0, 2, 1).copy()).transpose(1, 2)
    return t


def make(L, kind, weight_cl):
    L.manual_seed(0)
    nn = L.nn
    m = {"conv": lambda: nn.Conv2d(4, 8, 3), "grouped": lambda: nn.Conv2d(4, 8, 3, groups=2),
         "depthwise": lambda: nn.Conv2d(4, 4, 3, stride=2, padding=1, groups=4),
         "pointwise": lambda: nn.Conv2d(4, 6, 1, bias=False), "same": lambda: nn.Conv2d(4, 6, 4, padding="same"),
         "transposed": lambda: nn.ConvTranspose2d(4, 8, 3, stride=2),
         "transposed_grouped": lambda: nn.ConvTranspose2d(4, 8, 3, groups=2),
         "conv3d": lambda: nn.Conv3d(4, 6, 3, padding=1), "conv3d_grouped": lambda: nn.Conv3d(4, 6, 3, groups=2),
         "conv1d": lambda: nn.Conv1d(4, 8, 3), "conv1d_grouped": lambda: nn.Conv1d(4, 8, 3, groups=4),
         "conv_transpose1d": lambda: nn.ConvTranspose1d(4, 8, 3, stride=2)}[kind]()
    if weight_cl:
        m.to(memory_format=L.channels_last if m.weight.dim() == 4 else L.channels_last_3d)
    return m


KINDS_2D = ["conv", "grouped", "depthwise", "pointwise", "same", "transposed", "transposed_grouped"]
KINDS_3D = ["conv3d", "conv3d_grouped"]
KINDS_1D = ["conv1d", "conv1d_grouped", "conv_transpose1d"]
CASES = ([(k, X4, lay, w) for k in KINDS_2D for lay in ("plain", "cl") for w in (False, True)]
         + [(k, X5, lay, w) for k in KINDS_3D for lay in ("plain", "cl") for w in (False, True)]
         + [(k, X3, lay, False) for k in KINDS_1D for lay in ("plain", "transposed")])


@pytest.mark.parametrize("kind,arr,layout,weight_cl", CASES,
                         ids=[f"{k}-{lay}-{'wcl' if w else 'w'}" for k, _, lay, w in CASES])
def test_conv_result_strides_values_and_gradients_match_torch(kind, arr, layout, weight_cl):
    tm, vm = make(torch, kind, weight_cl), make(vt, kind, weight_cl)
    vm.load_state_dict({k: vt.from_numpy(v.detach().numpy().copy()) for k, v in tm.state_dict().items()})
    if weight_cl:  # load_state_dict copies values into the existing (channels_last) parameters
        assert tuple(vm.weight.stride()) == tuple(tm.weight.stride())
    tx, vx = lib_input(torch, arr, layout).requires_grad_(), lib_input(vt, arr, layout).requires_grad_()
    assert tuple(vx.stride()) == tuple(tx.stride())
    ty, vy = tm(tx), vm(vx)
    assert tuple(vy.stride()) == tuple(ty.stride())
    assert vy.is_contiguous() == ty.is_contiguous()
    np.testing.assert_allclose(vy.detach().numpy(), ty.detach().numpy(), rtol=1e-5, atol=1e-5)
    g = R.standard_normal(tuple(ty.shape)).astype(np.float32)
    ty.backward(torch.from_numpy(g))
    vy.backward(vt.from_numpy(g))
    np.testing.assert_allclose(vx.grad.numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(vm.weight.grad.numpy(), tm.weight.grad.numpy(), rtol=1e-4, atol=1e-4)


def test_flatten_by_view_after_a_conv_works_as_in_torch():
    """The classic `x = conv(x); x.view(x.size(0), -1)` (and DCGAN's output.view(-1, 1)); on a channels_last
    result torch's view raises, and so does vibetensor's."""
    for L in (torch, vt):
        L.manual_seed(0)
        conv = L.nn.Conv2d(4, 8, 3)
        y = conv(L.from_numpy(X4))
        assert tuple(y.view(y.size(0), -1).shape) == (2, 128) and tuple(y.view(-1, 1).shape) == (256, 1)
        y = conv.to(memory_format=L.channels_last)(L.from_numpy(X4))
        with pytest.raises(RuntimeError, match="view size is not compatible|view size .* not compatible"):
            y.view(y.size(0), -1)
        assert tuple(y.reshape(y.size(0), -1).shape) == (2, 128)


@pytest.mark.parametrize("layout", ["plain", "cl"])
def test_unfold_is_contiguous_like_torch(layout):
    t = torch.nn.functional.unfold(lib_input(torch, X4, layout), 2, stride=2)
    v = vt.nn.functional.unfold(lib_input(vt, X4, layout), 2, stride=2)
    assert v.is_contiguous() and tuple(v.stride()) == tuple(t.stride())
    np.testing.assert_array_equal(v.numpy(), t.numpy())
    np.testing.assert_array_equal(v.view(2, -1).numpy(), t.view(2, -1).numpy())
    u = vt.nn.functional.unfold(vt.from_numpy(X4[0].copy()), 3)  # unbatched
    assert u.is_contiguous() and tuple(u.shape) == (36, 16)


def _cl_ops(L):
    F = L.nn.functional
    return {"max_pool2d": lambda x: F.max_pool2d(x, 2), "max_pool2d_indices": lambda x: F.max_pool2d(
                x, 3, 2, 1, return_indices=True), "avg_pool2d": lambda x: F.avg_pool2d(x, 3, 2, 1),
            "adaptive_avg_pool2d": lambda x: F.adaptive_avg_pool2d(x, 4),
            "global_avg_pool": lambda x: F.adaptive_avg_pool2d(x, 1),
            "adaptive_max_pool2d": lambda x: F.adaptive_max_pool2d(x, 3, return_indices=True),
            "nearest": lambda x: F.interpolate(x, scale_factor=2, mode="nearest"),
            "bilinear": lambda x: F.interpolate(x, size=(9, 7), mode="bilinear", align_corners=False),
            "group_norm": lambda x: F.group_norm(x, 2, L.ones(4), L.zeros(4)),
            "pad": lambda x: F.pad(x, (1, 2, 0, 1)), "pad_reflect": lambda x: F.pad(x, (1, 1, 2, 2), mode="reflect"),
            "pad_replicate": lambda x: F.pad(x, (1, 0, 2, 1), mode="replicate"),
            "pad_circular": lambda x: F.pad(x, (1, 1, 1, 1), mode="circular"),  # (torch's is contiguous)
            "pad_crop": lambda x: F.pad(x, (-1, 1, 0, -2)),
            "trilinear": lambda x: F.interpolate(x.unsqueeze(2).expand(2, 4, 3, 6, 6).contiguous(
                memory_format=L.channels_last_3d), scale_factor=2, mode="trilinear")}


@pytest.mark.parametrize("layout", ["plain", "cl"])
@pytest.mark.parametrize("op", list(_cl_ops(torch)))
def test_pool_resample_norm_and_pad_keep_the_layout_like_torch(op, layout):
    tx, vx = lib_input(torch, X4, layout).requires_grad_(), lib_input(vt, X4, layout).requires_grad_()
    ty, vy = _cl_ops(torch)[op](tx), _cl_ops(vt)[op](vx)
    ty, vy = (ty, vy) if isinstance(ty, tuple) else ((ty,), (vy,))
    for t, v in zip(ty, vy):
        assert tuple(v.stride()) == tuple(t.stride())
        np.testing.assert_allclose(v.detach().numpy(), t.detach().numpy(), rtol=1e-5, atol=1e-6)
    g = R.standard_normal(tuple(ty[0].shape)).astype(np.float32)
    ty[0].backward(torch.from_numpy(g))
    vy[0].backward(vt.from_numpy(g))
    np.testing.assert_allclose(vx.grad.numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_max_pool1d_without_indices_is_contiguous_like_torch():
    for L in (torch, vt):
        x = lib_input(L, X3, "transposed")
        y = L.nn.functional.max_pool1d(x, 2)
        assert y.is_contiguous() and tuple(y.view(2, -1).shape) == (2, 12)


@pytest.mark.parametrize("weight_cl", [False, True])
def test_squeeze_excite_on_a_global_pool_keeps_torchs_strides(weight_cl):
    """[N, C, 1, 1] tensors: only the strides of size-1 dims tell channels_last apart, and the next op reads them."""
    strides = {}
    for L in (torch, vt):
        L.manual_seed(0)
        fc1, fc2 = L.nn.Conv2d(4, 2, 1), L.nn.Conv2d(2, 4, 1)
        if weight_cl:
            fc1.to(memory_format=L.channels_last)
            fc2.to(memory_format=L.channels_last)
        x = lib_input(L, X4, "cl")
        s = L.nn.functional.adaptive_avg_pool2d(x, 1)
        h = fc1(s)
        g = fc2(L.nn.functional.relu(h))
        out = x * L.nn.functional.hardsigmoid(g)
        strides[L.__name__] = [tuple(t.stride()) for t in (s, h, g, out)]
    assert strides["vibetensor.torch"] == strides["torch"]


@pytest.mark.parametrize("shape", [(0, 4, 5, 5), (4, 5, 5), (1, 4, 1, 1), (2, 4, 1, 7)])
@pytest.mark.parametrize("weight_cl", [False, True])
def test_edge_shapes_take_torchs_strides(shape, weight_cl):
    """An empty batch, an unbatched input, 1x1 and single-row planes (size-1 dims' strides included)."""
    got = {}
    for L in (torch, vt):
        L.manual_seed(0)
        conv = L.nn.Conv2d(4, 8, 3, padding=1)
        if weight_cl and len(shape) == 4:
            conv.to(memory_format=L.channels_last)
        y = conv(L.zeros(shape))
        got[L.__name__] = (tuple(y.shape), tuple(y.stride()))
    assert got["vibetensor.torch"] == got["torch"]


NORM_INPUTS = {"transposed_3d": lambda L: lib_input(L, X3, "transposed"),
               "transposed_2d": lambda L: L.from_numpy(X3[0].copy()).t(),
               "channels_last": lambda L: lib_input(L, X4, "cl"),
               "permuted_4d": lambda L: L.from_numpy(X4.transpose(0, 2, 3, 1).copy()).permute(0, 3, 1, 2),
               "plain": lambda L: lib_input(L, X4, "plain")}


@pytest.mark.parametrize("norm", ["batch_train", "batch_eval", "instance"])
@pytest.mark.parametrize("inp", list(NORM_INPUTS))
def test_batch_and_instance_norm_results_take_torchs_layout(norm, inp):
    outs = {}
    for L in (torch, vt):
        x = NORM_INPUTS[inp](L).requires_grad_()
        C = x.shape[1]
        F = L.nn.functional
        if norm == "instance":
            if x.dim() < 3:
                pytest.skip("instance_norm takes 3-D or more")
            y = F.instance_norm(x)
        else:
            rm, rv = L.zeros(C), L.ones(C)
            y = F.batch_norm(x, rm, rv, L.full((C,), 1.5), L.full((C,), 0.5), training=norm == "batch_train")
        y.backward(L.from_numpy(np.arange(y.numel(), dtype=np.float32).reshape(tuple(y.shape)) / y.numel()))
        outs[L.__name__] = (tuple(y.stride()), y.detach().numpy(), x.grad.numpy())
    v, t = outs["vibetensor.torch"], outs["torch"]
    assert v[0] == t[0]
    np.testing.assert_allclose(v[1], t[1], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(v[2], t[2], rtol=1e-4, atol=1e-5)


def test_batchnorm1d_on_a_transposed_sequence_then_view_works_like_torch():
    for L in (torch, vt):
        bn = L.nn.BatchNorm1d(4)
        x = lib_input(L, X3, "transposed")  # [N, C, L] from an [N, L, C] sequence
        y = bn(x)
        assert y.is_contiguous() and tuple(y.view(2, -1).shape) == (2, 28)
