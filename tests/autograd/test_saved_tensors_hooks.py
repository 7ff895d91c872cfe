"""torch.autograd.graph.saved_tensors_hooks / save_on_cpu / disable_saved_tensors_hooks against torch: gradients
(first and second order) unchanged by identity, copying and offloading hooks, every saved tensor going through
pack and coming back through unpack once per backward (a custom Function's saved tensors exactly as torch's),
nesting, the version check left to the hooks, freeing after backward, and torch's errors for bad hooks."""
import numpy as np
import pytest
import torch

import vibetensor.torch as vt


def inputs(lib, seed=0):
    r = np.random.default_rng(seed)
    x = lib.from_numpy(r.standard_normal((3, 4))).requires_grad_()
    w = lib.from_numpy(r.standard_normal((4, 5))).requires_grad_()
    return x, w


def loss_of(lib, x, w):
    h = lib.tanh(x @ w)
    return (lib.softmax(h * 2.0, dim=-1) * h.exp()).sum() + lib.sigmoid(x).pow(3).sum()


def grads_with(lib, hooks=None, seed=0):
    x, w = inputs(lib, seed)
    if hooks is None:
        loss = loss_of(lib, x, w)
    else:
        with hooks:
            loss = loss_of(lib, x, w)
    return [g.numpy() for g in lib.autograd.grad(loss, [x, w])]


class Recorder:
    """Hooks that copy each saved tensor into a table and hand it back, counting both directions."""

    def __init__(self, lib, pop=True):
        self.lib, self.pop, self.table, self.packed, self.unpacked = lib, pop, {}, 0, 0

    def hooks(self):
        def pack(t):
            key = self.packed
            self.packed += 1
            self.table[key] = t.detach().clone()
            return key

        def unpack(key):
            self.unpacked += 1
            return self.table.pop(key) if self.pop else self.table[key]
        return self.lib.autograd.graph.saved_tensors_hooks(pack, unpack)


@pytest.mark.parametrize("kind", ["identity", "copy", "save_on_cpu"])
def test_gradients_are_unchanged_by_the_hooks(kind):
    for lib in (torch, vt):
        plain = grads_with(lib)
        if kind == "identity":
            hooks = lib.autograd.graph.saved_tensors_hooks(lambda t: t, lambda t: t)
        elif kind == "copy":
            rec = Recorder(lib)
            hooks = rec.hooks()
        else:
            hooks = lib.autograd.graph.save_on_cpu(pin_memory=False)
        hooked = grads_with(lib, hooks)
        for a, b in zip(hooked, plain):
            np.testing.assert_array_equal(a, b)
        if kind == "copy":  # (which tensors an op saves is its own business: counts differ from torch's)
            assert rec.unpacked > 5 and rec.unpacked + len(rec.table) == rec.packed
    for a, b in zip(grads_with(vt, vt.autograd.graph.save_on_cpu()), grads_with(torch)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_custom_function_saved_tensors_go_through_the_hooks_as_torchs():
    counts = {}
    for lib in (torch, vt):
        class Mul(lib.autograd.Function):
            @staticmethod
            def forward(ctx, a, b):
                ctx.save_for_backward(a, b)
                return a * b

            @staticmethod
            def backward(ctx, g):
                a, b = ctx.saved_tensors
                return g * b, g * a

        a, b = inputs(lib)
        b = b[:3, :4] * 2.0
        rec = Recorder(lib)
        with rec.hooks():
            y = Mul.apply(a, b)
        n_forward = rec.packed
        y.sum().backward()
        counts[lib] = (n_forward, rec.unpacked, a.grad.numpy().tolist())
    assert counts[vt] == counts[torch]
    assert counts[vt][:2] == (2, 2)  # exactly what save_for_backward named


def test_second_order_gradients_through_hooked_saved_outputs():
    out = {}
    for lib in (torch, vt):
        x, _ = inputs(lib)
        rec = Recorder(lib, pop=False)
        with rec.hooks():
            y = (lib.tanh(x) * lib.exp(x)).sum()  # tanh and exp save their outputs
        (g,) = lib.autograd.grad(y, x, create_graph=True)
        (gg,) = lib.autograd.grad(g.pow(2).sum(), x)
        out[lib] = (g.detach().numpy(), gg.numpy())
    for a, b in zip(out[vt], out[torch]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_nested_hooks_the_innermost_applies():
    for lib in (torch, vt):
        outer, inner = Recorder(lib), Recorder(lib)
        x, w = inputs(lib)
        with outer.hooks():
            h = lib.tanh(x @ w)
            before = outer.packed
            with inner.hooks():
                y = h.exp().sum()
            after = outer.packed
        assert before > 0 and after == before and inner.packed > 0
        y.backward()
        assert inner.unpacked == inner.packed and outer.unpacked == outer.packed


def test_the_hooks_replace_the_version_check():
    """Without hooks an in-place change of a saved tensor is refused; with them, what unpack gives is used."""
    grads = {}
    for lib in (torch, vt):
        x, _ = inputs(lib)
        h = x * 1.0
        y = (h * h).sum()
        h.add_(1.0)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            y.backward()
        with lib.autograd.graph.saved_tensors_hooks(lambda t: t, lambda t: t):
            h = x * 1.0
            y = (h * h).sum()  # saves h
        h.add_(1.0)
        y.backward()
        grads[lib] = x.grad.numpy()
    np.testing.assert_array_equal(grads[vt], grads[torch])


def test_second_backward_without_retain_graph_raises_and_retain_graph_unpacks_again():
    for lib in (torch, vt):
        x, w = inputs(lib)
        rec = Recorder(lib, pop=False)
        with rec.hooks():
            y = lib.tanh(x @ w).sum()
        y.backward(retain_graph=True)
        first = rec.unpacked
        y.backward()
        assert rec.unpacked == 2 * first > 0
        with pytest.raises(RuntimeError, match="backward through the graph a second time"):
            y.backward()


def test_bad_hooks_and_disabled_hooks_raise_as_torchs():
    for lib in (torch, vt):
        x, _ = inputs(lib)
        with lib.autograd.graph.saved_tensors_hooks(lambda t: t, lambda t: 3):
            y = (x * x).sum()
        with pytest.raises(TypeError):
            y.backward()
        with lib.autograd.graph.disable_saved_tensors_hooks("hooks are off here"):
            with pytest.raises(RuntimeError, match="hooks are off here"):
                with lib.autograd.graph.save_on_cpu():
                    pass
        with lib.autograd.graph.save_on_cpu():  # enabled again after the block
            y = (x * x).sum()
        y.backward()
        np.testing.assert_allclose(x.grad.numpy(), 2 * x.detach().numpy())


@pytest.mark.parametrize("op", ["mul", "div", "mul_", "div_"])
@pytest.mark.parametrize("needs", ["self", "other", "both"])
def test_binary_ops_save_only_what_the_needed_gradients_read(op, needs):
    """As torch's: x * c and x / c keep no x alive for the backward when c takes no gradient (attention scores
    divided by sqrt(d), LoRA's output times its scaling), x * y keeps x only for y's gradient."""
    shapes, grads = {}, {}
    for lib in (torch, vt):
        r = np.random.default_rng(1)
        x = lib.from_numpy(r.standard_normal((3, 4))).requires_grad_(needs != "other")
        y = lib.from_numpy(r.uniform(1.0, 2.0, (1, 4))).requires_grad_(needs != "self")
        seen = []
        with lib.autograd.graph.saved_tensors_hooks(lambda t: seen.append(tuple(t.shape)) or t, lambda t: t):
            if op.endswith("_"):
                h = x * 1.0 if x.requires_grad else x.clone()
                out = getattr(h, op)(y)
            else:
                out = getattr(lib, op)(x, y)
        shapes[lib] = sorted(s for s in seen if s)  # (0-dim wrapped numbers aside)
        wanted = [t for t in (x, y) if t.requires_grad]
        (g,) = lib.autograd.grad(out.pow(2).sum(), wanted[:1], create_graph=True)
        grads[lib] = [g.detach().numpy()] + [a.numpy() for a in lib.autograd.grad(g.sum(), wanted)]
    assert shapes[vt] == shapes[torch]
    for a, b in zip(grads[vt], grads[torch]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
