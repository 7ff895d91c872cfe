"""vt.autocast against torch.autocast: for each op with a policy (and a few without), the result's dtype and
values inside a region, on CPU and (where both have a GPU) on CUDA, in bfloat16 and float16; gradients of a
region's forward; nesting, decorators, threads, backward inside a region, custom_fwd / custom_bwd, and the
argument errors."""
import threading
import warnings

import numpy as np
import pytest
import torch
import vibetensor.torch as vt

DEVICES = ["cpu"] + (["cuda"] if vt.cuda.is_available() and torch.cuda.is_available() else [])
DTYPES = ["bfloat16", "float16"]


def arr(*shape, seed=0, positive=False):
    a = np.random.default_rng(seed + 7 * len(shape)).standard_normal(shape).astype(np.float32)
    return np.abs(a) + 0.5 if positive else a


def make(m, a, dev, dtype="float32"):
    t = (torch.from_numpy(a.copy()) if m is torch else vt.from_numpy(a.copy())).to(dev)
    return t.to(getattr(m, dtype))


def idx(m, values, dev):
    return (torch.tensor(values) if m is torch else vt.tensor(values)).to(dev)


def F(m):
    return m.nn.functional


X, W, B = arr(4, 8), arr(6, 8, seed=1), arr(6, seed=2)
IMG, KER = arr(1, 2, 5, 5, seed=3), arr(3, 2, 3, 3, seed=4)
CASES = {
    # lower precision: float32 in, the region's dtype out
    "mm": lambda m, d: m.mm(make(m, X, d), make(m, W, d).t()),
    "matmul_op": lambda m, d: make(m, X, d) @ make(m, W, d).t(),
    "matmul_vec": lambda m, d: m.matmul(make(m, X, d), make(m, X[0], d)),
    "bmm": lambda m, d: m.bmm(make(m, X, d)[None], make(m, W, d).t()[None]),
    "linear_bias": lambda m, d: F(m).linear(make(m, X, d), make(m, W, d), make(m, B, d)),
    "linear_1d": lambda m, d: F(m).linear(make(m, X[0], d), make(m, W, d), make(m, B, d)),
    "linear_nobias": lambda m, d: F(m).linear(make(m, X, d), make(m, W, d)),
    "addmm": lambda m, d: m.addmm(make(m, B, d), make(m, X, d), make(m, W, d).t()),
    "baddbmm": lambda m, d: m.baddbmm(make(m, B, d), make(m, X, d)[None], make(m, W, d).t()[None]),
    "conv2d": lambda m, d: F(m).conv2d(make(m, IMG, d), make(m, KER, d), make(m, B[:3], d), padding=1),
    "conv1d": lambda m, d: F(m).conv1d(make(m, IMG[:, :, 0], d), make(m, KER[:, :, 0], d)),
    "sdpa": lambda m, d: F(m).scaled_dot_product_attention(*(make(m, X, d)[None] for _ in range(3))),
    # float64 and integers are never cast
    "mm_double": lambda m, d: m.mm(make(m, X, d, "float64"), make(m, W, d, "float64").t()),
    "mm_long": lambda m, d: m.mm(idx(m, [[1, 2]], d), idx(m, [[3], [4]], d)),
    # 16-bit in: float32 out on both devices
    "prod": lambda m, d: make(m, X[:2, :3], d, "bfloat16").prod(),
    "cross_entropy": lambda m, d: F(m).cross_entropy(make(m, X, d, "bfloat16"), idx(m, [1, 2, 3, 4], d)),
    "nll_loss": lambda m, d: F(m).nll_loss(make(m, X, d, "bfloat16"), idx(m, [1, 2, 3, 4], d)),
    "mse_loss": lambda m, d: F(m).mse_loss(make(m, X, d, "bfloat16"), make(m, X[::-1], d, "bfloat16")),
    "mse_loss_mixed": lambda m, d: F(m).mse_loss(make(m, X, d, "bfloat16"), make(m, X[::-1], d)),
    "l1_loss": lambda m, d: F(m).l1_loss(make(m, X, d, "bfloat16"), make(m, X[::-1], d, "bfloat16")),
    "bce_logits": lambda m, d: F(m).binary_cross_entropy_with_logits(make(m, X, d, "bfloat16"),
                                                                   make(m, X[::-1], d).sigmoid()),
    "kl_div": lambda m, d: F(m).kl_div(make(m, X, d, "bfloat16"), make(m, X[::-1], d, "bfloat16"),
                                       reduction="batchmean", log_target=True),
    # CUDA: float32 out; CPU: the input's 16-bit dtype kept
    "exp": lambda m, d: make(m, X, d, "bfloat16").exp(),
    "log": lambda m, d: m.log(make(m, arr(4, 8, positive=True), d, "bfloat16")),
    "pow": lambda m, d: make(m, X, d, "bfloat16").pow(2),
    "rsqrt": lambda m, d: make(m, arr(4, 8, positive=True), d, "float16").rsqrt(),
    "softmax": lambda m, d: F(m).softmax(make(m, X, d, "bfloat16"), -1),
    "softmax_method": lambda m, d: make(m, X, d, "float16").softmax(-1),
    "log_softmax": lambda m, d: F(m).log_softmax(make(m, X, d, "bfloat16"), dim=1),
    "softmax_dtype": lambda m, d: F(m).softmax(make(m, X, d, "bfloat16"), -1, dtype=m.float64),
    "sum": lambda m, d: make(m, X, d, "bfloat16").sum(),
    "cumsum": lambda m, d: make(m, X, d, "bfloat16").cumsum(0),
    "layer_norm": lambda m, d: F(m).layer_norm(make(m, X, d, "bfloat16"), (8,)),
    "layer_norm_f32": lambda m, d: F(m).layer_norm(make(m, X, d), (8,), make(m, X[0], d), make(m, X[1], d)),
    "group_norm": lambda m, d: F(m).group_norm(make(m, IMG, d, "bfloat16"), 2),
    "norm": lambda m, d: make(m, X, d, "bfloat16").norm(),
    "logsumexp": lambda m, d: make(m, X, d, "bfloat16").logsumexp(1),
    "cosine_similarity": lambda m, d: F(m).cosine_similarity(make(m, X, d, "bfloat16"), make(m, X[::-1], d,
                                                                                               "bfloat16")),
    # no policy: ordinary type promotion
    "add_mixed": lambda m, d: make(m, X, d, "bfloat16") + make(m, X, d),
    "gelu": lambda m, d: F(m).gelu(make(m, X, d, "bfloat16")),
    "relu_f32": lambda m, d: F(m).relu(make(m, X, d)),
}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(CASES))
def test_region_result_like_torch(name, dtype, device):
    if name == "mm_long" and device == "cuda":
        pytest.skip("torch has no integer matrix product on CUDA")
    fn = CASES[name]
    with torch.autocast(device, dtype=getattr(torch, dtype)):
        t = fn(torch, device)
    with vt.autocast(device, dtype=getattr(vt, dtype)):
        v = fn(vt, device)
    assert str(v.dtype).split(".")[-1] == str(t.dtype).split(".")[-1], (name, v.dtype, t.dtype)
    # Either side may round through a 16-bit dtype where the other does not (torch on CUDA rounds cross_entropy's
    # log-probabilities through the region's dtype; several cases take bfloat16 inputs in a float16 region): the
    # dtype is checked exactly, the values to bfloat16's precision.
    np.testing.assert_allclose(v.float().cpu().numpy(), t.float().cpu().numpy(), rtol=3e-2, atol=3e-2)


@pytest.mark.parametrize("device", DEVICES)
def test_outside_a_region_nothing_changes(device):
    for name in ("mm", "linear_bias", "exp", "softmax", "prod", "mse_loss"):
        t, v = CASES[name](torch, device), CASES[name](vt, device)
        assert str(v.dtype).split(".")[-1] == str(t.dtype).split(".")[-1], name


@pytest.mark.parametrize("device", DEVICES)
def test_gradients_of_a_region_like_torch(device):
    """Forward of a small MLP in a region, backward outside: float32 leaves get float32 gradients close to
    torch's, through the recorded casts."""
    def run(m):
        x = make(m, X, device).requires_grad_()
        w1, b1 = make(m, W, device).requires_grad_(), make(m, B, device).requires_grad_()
        w2 = make(m, arr(3, 6, seed=5), device).requires_grad_()
        with m.autocast(device, dtype=m.bfloat16):
            h = F(m).gelu(F(m).linear(x, w1, b1))
            out = F(m).linear(h, w2)
            loss = F(m).cross_entropy(out, idx(m, [0, 1, 2, 0], device))
        assert loss.dtype == m.float32 and out.dtype == m.bfloat16
        loss.backward()
        return [p.grad for p in (x, w1, b1, w2)]
    for g_v, g_t in zip(run(vt), run(torch)):
        assert g_v.dtype == vt.float32 and g_t.dtype == torch.float32
        g_t = g_t.cpu().numpy()  # bfloat16 products either side: within a few bfloat16 steps of the largest
        np.testing.assert_allclose(g_v.cpu().numpy(), g_t, rtol=0, atol=0.04 * np.abs(g_t).max())


@pytest.mark.parametrize("device", DEVICES)
def test_backward_inside_a_region_keeps_the_forward_dtypes(device):
    grads = []
    for inside in (False, True):
        a, b = make(vt, X, device).requires_grad_(), make(vt, W, device).requires_grad_()
        with vt.autocast(device):
            loss = (a @ b.t()).float().exp().sum()
            if inside:
                loss.backward()
        if not inside:
            loss.backward()
        grads.append((a.grad.cpu().numpy(), b.grad.cpu().numpy()))
    np.testing.assert_array_equal(grads[0][0], grads[1][0])
    np.testing.assert_array_equal(grads[0][1], grads[1][1])


def test_nesting_decorator_and_state_functions():
    a, b = make(vt, X, "cpu"), make(vt, W, "cpu").t()
    assert not vt.is_autocast_enabled("cpu") and vt.get_autocast_dtype("cpu") == vt.bfloat16
    with vt.autocast("cpu"):
        assert vt.is_autocast_enabled("cpu") and not vt.is_autocast_enabled("cuda")
        with vt.autocast("cpu", enabled=False):
            assert vt.mm(a, b).dtype == vt.float32
        with vt.autocast("cpu", dtype=vt.float16):
            assert vt.mm(a, b).dtype == vt.float16
        assert vt.mm(a, b).dtype == vt.bfloat16
    with pytest.raises(ZeroDivisionError):
        with vt.autocast("cpu"):
            1 / 0
    assert not vt.is_autocast_enabled("cpu") and vt.mm(a, b).dtype == vt.float32

    @vt.autocast("cpu")
    def product(x, y):
        return x @ y
    assert product(a, b).dtype == vt.bfloat16 and (a @ b).dtype == vt.float32
    vt.set_autocast_enabled("cpu", True)
    vt.set_autocast_dtype("cpu", vt.float16)
    try:
        assert vt.mm(a, b).dtype == vt.float16 and vt.get_autocast_dtype("cpu") == vt.float16
        assert vt.nn.functional.linear(a, b.t()).dtype == vt.float16  # a Python composite sees it too
    finally:
        vt.set_autocast_enabled("cpu", False)
        vt.set_autocast_dtype("cpu", vt.bfloat16)
    assert vt.mm(a, b).dtype == vt.float32
    assert vt.amp.is_autocast_available("cpu") and not vt.amp.is_autocast_available("mps")


def test_a_region_belongs_to_its_thread():
    a, b = make(vt, X, "cpu"), make(vt, W, "cpu").t()
    seen = []
    started, done = threading.Event(), threading.Event()

    def other():
        started.wait(5)
        seen.append((vt.mm(a, b).dtype, vt.is_autocast_enabled("cpu")))
        done.set()
    th = threading.Thread(target=other)
    th.start()
    with vt.autocast("cpu"):
        started.set()
        done.wait(5)
        assert vt.mm(a, b).dtype == vt.bfloat16
    th.join()
    assert seen == [(vt.float32, False)]


def test_argument_errors_and_disabling_warnings_like_torch():
    for m in (torch, vt):
        with pytest.raises(ValueError, match="Expected `device_type` of type `str`"):
            m.autocast(0)
        with pytest.warns(UserWarning, match="In CPU autocast, but the target dtype is not supported"):
            with m.autocast("cpu", dtype=m.float32):
                assert not m.is_autocast_enabled("cpu")
    if not vt.cuda.is_available():
        with pytest.warns(UserWarning, match="CUDA is not available. Disabling"):
            with vt.autocast("cuda"):
                assert not vt.is_autocast_enabled("cuda")
    with pytest.raises(RuntimeError, match="unsupported autocast device_type 'mps'"):  # no such device here
        vt.autocast("mps")
    with pytest.raises(TypeError, match="dtype must be a vibetensor dtype"):
        vt.autocast("cpu", dtype="bfloat16")


def _scaled_matmul(m, cast_inputs):
    """An autograd Function written for float32, made autocast-aware with custom_fwd / custom_bwd."""
    fwd_kw = {"cast_inputs": m.float32} if cast_inputs else {}

    class ScaledMM(m.autograd.Function):
        @staticmethod
        @m.amp.custom_fwd(device_type="cpu", **fwd_kw)
        def forward(ctx, a, b):
            ctx.save_for_backward(a, b)
            return m.mm(a, b) * 2

        @staticmethod
        @m.amp.custom_bwd(device_type="cpu")
        def backward(ctx, g):
            a, b = ctx.saved_tensors
            return m.mm(g, b.t()) * 2, m.mm(a.t(), g) * 2
    return ScaledMM


@pytest.mark.parametrize("cast_inputs", [True, False])
def test_custom_fwd_and_custom_bwd_like_torch(cast_inputs):
    """With cast_inputs forward runs in float32 with autocast off; without, as the region says (bfloat16), and
    backward then runs in a region too, so its products come out bfloat16 as in torch."""
    results = []
    for m in (torch, vt):
        a = make(m, X, "cpu", "bfloat16").requires_grad_()
        b = make(m, W, "cpu").t().contiguous().requires_grad_()
        with m.autocast("cpu"):
            out = _scaled_matmul(m, cast_inputs).apply(a, b)
        out.float().sum().backward()
        results.append((str(out.dtype), str(a.grad.dtype), str(b.grad.dtype), a.grad.float().numpy(),
                        b.grad.float().numpy()))
    t, v = results
    assert [x.split(".")[-1] for x in v[:3]] == [x.split(".")[-1] for x in t[:3]]
    np.testing.assert_allclose(v[3], t[3], rtol=3e-2, atol=3e-2)
    np.testing.assert_allclose(v[4], t[4], rtol=3e-2, atol=3e-2)


def test_custom_fwd_needs_a_device_type():
    with pytest.raises(TypeError):
        vt.amp.custom_fwd(lambda ctx, x: x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        vt.amp.custom_fwd(device_type="cpu")(lambda ctx, x: x)


class CountCasts:
    """Counts the vt::to_dtype calls on leaves that require grad (the autocast layer's casts of the weight; the
    CPU's bfloat16 product casts its own float32 result too, which this leaves out) through a Python override."""

    def __enter__(self):
        import vibetensor.library as library
        self.n = 0
        self.lib = library.Library("vt", "IMPL")

        def counted(x, dtype):
            self.n += x.requires_grad and x.is_leaf
            return vt.ops.vt.to_dtype.redispatch(x, dtype)
        self.lib.impl("to_dtype", counted, "Python")
        return self

    def __exit__(self, *exc):
        self.lib.__exit__(None, None, None)


def test_a_weight_is_cast_once_per_region_while_unchanged():
    """Note [Autocast cast cache]: a weight used three times casts once; its gradient is the three uses' sum;
    an in-place update, a new region or cache_enabled=False casts again; casts under no_grad are not kept."""
    w = vt.from_numpy(arr(8, 8, seed=9)).requires_grad_()
    x = make(vt, X, "cpu")
    with CountCasts() as c:
        with vt.autocast("cpu"):
            y = vt.mm(vt.mm(vt.mm(x, w), w), w)
            assert c.n == 1
            with vt.no_grad():
                w.mul_(1.0)  # an in-place update bumps the version: the next use casts again
            vt.mm(x, w)
            assert c.n == 2
        y.float().sum().backward()
        with vt.autocast("cpu"):  # a new region: the cache was cleared at the outermost exit
            vt.mm(x, w)
        assert c.n == 3
        with vt.autocast("cpu", cache_enabled=False):
            vt.mm(x, w), vt.mm(x, w)
        assert c.n == 5
        with vt.autocast("cpu"), vt.no_grad():
            vt.mm(x, w), vt.mm(x, w)
        assert c.n == 7
    t_w = torch.from_numpy(arr(8, 8, seed=9)).requires_grad_()
    with torch.autocast("cpu"):
        t_y = torch.mm(torch.mm(torch.mm(torch.from_numpy(X.copy()), t_w), t_w), t_w)
    t_y.float().sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), t_w.grad.numpy(), rtol=3e-2, atol=3e-2 * np.abs(t_w.grad.numpy()).max())
    assert vt.is_autocast_cache_enabled()
