"""Note [Adjacent gradient pieces]: the backward of an unbind or a split joins its pieces' gradients as a view of
their buffer when they already lie side by side in it, and with a copy otherwise. A custom Function hands back
gradients laid out as chosen; the input's gradient is checked against the values torch's stack/cat would give,
and a hook on the input sees whether the join was a view of the buffer (it must be exactly where the layout
qualifies: stacked or interleaved pieces, adjacent split pieces) or a copy (pieces out of order, with gaps, under
create_graph)."""
import numpy as np
import pytest

import vibetensor.torch as vt
from vibetensor.autograd import Function

BUFFERS = []  # the buffer each backward laid its gradients out in


def _layout(name, g):
    """(gradients of the pieces a, b, c, the buffer they live in) for g, 2 g and 3 g."""
    parts = [g, g * 2.0, g * 3.0]
    if name == "stacked":  # buf[i] is piece i: a step of one piece
        buf = vt.stack(parts)
        return [buf[0], buf[1], buf[2]], buf
    if name == "interleaved":  # buf[..., i] is piece i: a step of one element, still a dense join
        buf = vt.stack(parts, dim=-1)
        return [buf[..., 0], buf[..., 1], buf[..., 2]], buf
    if name == "reversed":  # piece i at buf[2 - i]: a negative step
        buf = vt.stack(parts[::-1])
        return [buf[2], buf[1], buf[0]], buf
    if name == "gaps":  # pieces at buf[0], buf[2], buf[4]: one step, but the join would skip buf[1] and buf[3]
        buf = vt.zeros(5, *g.shape, dtype=g.dtype)
        for i, p in enumerate(parts):
            buf[2 * i] = p
        return [buf[0], buf[2], buf[4]], buf
    raise AssertionError(name)


class Weighted(Function):
    """a + 2 b + 3 c, whose backward hands back g, 2 g and 3 g in the layout ctx.layout names."""

    @staticmethod
    def forward(ctx, a, b, c, layout):
        ctx.layout = layout
        return a + b * 2.0 + c * 3.0

    @staticmethod
    def backward(ctx, g):
        grads, buf = _layout(ctx.layout, g)
        BUFFERS.append(buf)
        return grads[0], grads[1], grads[2], None


def _grad_and_join(pieces_of, x, layout, create_graph=False):
    BUFFERS.clear()
    seen = []
    x.register_hook(lambda g: seen.append(g))
    a, b, c = pieces_of(x)
    y = Weighted.apply(a, b, c, layout)
    y.backward(vt.ones_like(y), create_graph=create_graph)
    return x.grad, seen[0], BUFFERS[0]


@pytest.mark.parametrize("layout,view", [("stacked", True), ("interleaved", True), ("reversed", False),
                                         ("gaps", False)])
def test_unbind_join(layout, view):
    x = vt.from_numpy(np.random.default_rng(0).standard_normal((3, 4, 5))).requires_grad_()
    gx, joined, buf = _grad_and_join(lambda t: t.unbind(0), x, layout)
    want = np.stack([np.ones((4, 5)) * k for k in (1.0, 2.0, 3.0)])
    np.testing.assert_array_equal(gx.numpy(), want)
    assert (joined.data_ptr() == buf.data_ptr()) == view


def test_split_join_of_adjacent_slices():
    class Slices(Function):
        @staticmethod
        def forward(ctx, a, b, c):
            return a + b * 2.0 + c * 3.0

        @staticmethod
        def backward(ctx, g):
            buf = vt.cat([g, g * 2.0, g * 3.0], dim=1)  # [4, 9]: pieces side by side along dim 1
            BUFFERS.append(buf)
            return buf[:, 0:3], buf[:, 3:6], buf[:, 6:9]

    BUFFERS.clear()
    seen = []
    x = vt.from_numpy(np.random.default_rng(1).standard_normal((4, 9))).requires_grad_()
    x.register_hook(lambda g: seen.append(g))
    a, b, c = x.split(3, dim=1)
    Slices.apply(a, b, c).backward(vt.ones(4, 3, dtype=vt.float64))
    np.testing.assert_array_equal(x.grad.numpy(), np.repeat([[1.0, 2.0, 3.0]], 3, axis=1).repeat(4, axis=0))
    assert seen[0].data_ptr() == BUFFERS[0].data_ptr()


def test_create_graph_copies():
    x = vt.from_numpy(np.random.default_rng(2).standard_normal((3, 2, 2))).requires_grad_()
    gx, joined, buf = _grad_and_join(lambda t: t.unbind(0), x, "stacked", create_graph=True)
    np.testing.assert_array_equal(gx.detach().numpy(), np.stack([np.full((2, 2), k) for k in (1.0, 2.0, 3.0)]))
    assert joined.data_ptr() != buf.data_ptr()
