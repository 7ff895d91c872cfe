"""torch's top-level ATen-signature functions (torch.conv2d, torch.layer_norm, torch.group_norm, torch.batch_norm,
torch.instance_norm, torch.rms_norm, torch.embedding, torch.dropout, the losses with integer reductions, ...),
rsub, randint_like, atleast_1d/2d/3d, unravel_index and the deterministic-algorithms switches, against torch:
values, gradients where they train, argument orders and errors."""
import numpy as np
import pytest
import torch

import vibetensor.torch as vt

R = np.random.default_rng(0)
X4 = R.standard_normal((2, 4, 5, 5))
W = R.standard_normal((3, 4, 3, 3))
B = R.standard_normal(3)
G = R.standard_normal(4)
V = R.standard_normal((3, 6))


def both(*arrs):
    return [torch.from_numpy(np.array(a)) for a in arrs], [vt.from_numpy(np.array(a)) for a in arrs]


CASES = [
    ("conv2d", lambda m, x, w, b, g: m.conv2d(x, w, b, 2, 1, 1, 1)),
    ("conv3d", lambda m, x, w, b, g: m.conv3d(x[:, :, None], w[:, :, None], b, padding=(0, 1, 1))),
    ("max_pool2d", lambda m, x, w, b, g: m.max_pool2d(x, 2)),
    ("max_pool2d_stride", lambda m, x, w, b, g: m.max_pool2d(x, [3, 3], [2, 2], [1, 1], [1, 1], True)),
    ("max_pool3d", lambda m, x, w, b, g: m.max_pool3d(x[None], (1, 2, 2))),
    ("group_norm", lambda m, x, w, b, g: m.group_norm(x, 2, g, g * 0.5, 1e-6)),
    ("layer_norm", lambda m, x, w, b, g: m.layer_norm(x, [5, 5], None, None, 1e-6, True)),
    ("rms_norm", lambda m, x, w, b, g: m.rms_norm(x, [5], x[0, 0, 0], 1e-6)),
    ("batch_norm", lambda m, x, w, b, g: m.batch_norm(
        x, g, g * 0.5, g.detach() * 0.1, g.detach().abs() + 1, False, 0.1, 1e-5, True)),
    ("batch_norm_train", lambda m, x, w, b, g: m.batch_norm(x, g, None, None, None, True, 0.1, 1e-5, False)),
    ("instance_norm", lambda m, x, w, b, g: m.instance_norm(x, g, g * 0.5, None, None, True, 0.1, 1e-5, False)),
    ("embedding", lambda m, x, w, b, g: m.embedding(w.reshape(3, -1), m.tensor([[0, 2], [1, 1]]))),
    ("embedding_padding", lambda m, x, w, b, g: m.embedding(w.reshape(3, -1), m.tensor([0, 2, 1]), 1)),
    ("dropout_eval", lambda m, x, w, b, g: m.dropout(x, 0.5, False)),
    ("alpha_dropout_eval", lambda m, x, w, b, g: m.alpha_dropout(x, 0.5, False)),
    ("cosine_similarity", lambda m, x, w, b, g: m.cosine_similarity(x, x.flip(1) + 1, 1, 1e-8)),
    ("pairwise_distance", lambda m, x, w, b, g: m.pairwise_distance(x[0, 0], x[1, 0], 1.5, 1e-6, True)),
    ("bce_logits", lambda m, x, w, b, g: m.binary_cross_entropy_with_logits(x, x.sigmoid(), None, None, 1)),
    ("bce_logits_sum", lambda m, x, w, b, g: m.binary_cross_entropy_with_logits(x, x.sigmoid(), reduction=2)),
    ("bce_logits_none", lambda m, x, w, b, g: m.binary_cross_entropy_with_logits(x, x.sigmoid(), reduction=0)),
    ("bce_logits_pos_weight", lambda m, x, w, b, g: m.binary_cross_entropy_with_logits(
        x[0, 0], x[1, 0].sigmoid(), None, x[0, 1, 0].detach().abs(), 1)),
    ("kl_div", lambda m, x, w, b, g: m.kl_div(x.log_softmax(1), x.flip(1).softmax(1), 2)),
    ("kl_div_log_target", lambda m, x, w, b, g: m.kl_div(x.log_softmax(1), x.flip(1).log_softmax(1), 1, log_target=True)),
    ("margin_ranking", lambda m, x, w, b, g: m.margin_ranking_loss(
        x[0, 0, 0], x[1, 0, 0], x[0, 1, 0].sign(), 0.2, 1)),
    ("hinge_embedding", lambda m, x, w, b, g: m.hinge_embedding_loss(x[0], x[1].sign(), 0.5, 0)),
    ("cosine_embedding", lambda m, x, w, b, g: m.cosine_embedding_loss(
        x[0, 0], x[1, 0], x[0, 1, :, 0].sign(), 0.1, 2)),
    ("triplet_margin", lambda m, x, w, b, g: m.triplet_margin_loss(x[0, 0], x[1, 0], x[0, 1], 0.5, 2, 1e-6, True, 1)),
    ("poisson_nll", lambda m, x, w, b, g: m.poisson_nll_loss(x, x.abs(), True, False, 1e-8, 1)),
    ("constant_pad_nd", lambda m, x, w, b, g: m.constant_pad_nd(x, [1, 2, 0, 1], 0.5)),
    ("rsub", lambda m, x, w, b, g: m.rsub(x, 2.0, alpha=3)),
    ("rsub_tensor", lambda m, x, w, b, g: m.rsub(x, x.flip(0))),
]


@pytest.mark.parametrize("name,call", CASES, ids=[c[0] for c in CASES])
def test_values_and_gradients(name, call):
    (tx, tw, tb, tg), (vx, vw, vb, vg) = both(X4, W, B, G)
    for t in (tx, tw, tg, vx, vw, vg):
        t.requires_grad_(True)
    to, vo = call(torch, tx, tw, tb, tg), call(vt, vx, vw, vb, vg)
    assert tuple(vo.shape) == tuple(to.shape)
    np.testing.assert_allclose(vo.detach().numpy(), to.detach().numpy(), rtol=1e-10, atol=1e-12)
    to.sum().backward()
    vo.sum().backward()
    for t, v in ((tx, vx), (tw, vw), (tg, vg)):
        if t.grad is not None:
            np.testing.assert_allclose(v.grad.numpy(), t.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_dropout_in_training_zeroes_and_scales():
    v = vt.dropout(vt.ones(1000, dtype=vt.float64), 0.25, True)
    kept = v.numpy()[v.numpy() != 0]
    assert 600 < kept.size < 900 and np.allclose(kept, 1 / 0.75)


def test_randint_like_and_atleast():
    base = vt.zeros(3, 4, dtype=vt.int32)
    r = vt.randint_like(base, 5)
    assert r.dtype == vt.int32 and tuple(r.shape) == (3, 4) and 0 <= r.min().item() and r.max().item() < 5
    r = vt.randint_like(vt.zeros(200), 3, 6)
    assert r.dtype == vt.float32 and r.min().item() >= 3 and r.max().item() <= 5 and r.unique().numel() == 3
    for n in (1, 2, 3):
        for shape in ((), (4,), (2, 3), (2, 3, 4)):
            t, v = getattr(torch, f"atleast_{n}d")(torch.zeros(shape)), getattr(vt, f"atleast_{n}d")(vt.zeros(shape))
            assert tuple(v.shape) == tuple(t.shape), (n, shape)
        tt = getattr(torch, f"atleast_{n}d")(torch.zeros(()), torch.zeros(2))
        vv = getattr(vt, f"atleast_{n}d")([vt.zeros(()), vt.zeros(2)])
        assert isinstance(vv, tuple) and [tuple(a.shape) for a in vv] == [tuple(a.shape) for a in tt]


@pytest.mark.parametrize("indices,shape", [([4, -1, 7, -7, 0], (2, 3)), (4, (2, 3)), ([[1, 5]], (6,)),
                                           ([3, 11], (2, 2, 3)), ([0], ())])
def test_unravel_index(indices, shape):
    t, v = torch.unravel_index(torch.tensor(indices), shape), vt.unravel_index(vt.tensor(indices), shape)
    assert len(v) == len(t)
    for a, b in zip(v, t):
        assert a.dtype == vt.int64 and tuple(a.shape) == tuple(b.shape)
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_unravel_index_errors():
    for m in (torch, vt):
        with pytest.raises(TypeError, match="integer dtype"):
            m.unravel_index(m.tensor([1.5]), (2,))
        with pytest.raises(ValueError, match="negative values"):
            m.unravel_index(m.tensor([1]), (-2, 3))


def test_deterministic_switches():
    try:
        for m in (torch, vt):
            assert not m.are_deterministic_algorithms_enabled() and m.get_deterministic_debug_mode() == 0
            m.use_deterministic_algorithms(True, warn_only=True)
            assert m.are_deterministic_algorithms_enabled() and m.is_deterministic_algorithms_warn_only_enabled()
            assert m.get_deterministic_debug_mode() == 1
            m.set_deterministic_debug_mode("error")
            assert m.get_deterministic_debug_mode() == 2 and not m.is_deterministic_algorithms_warn_only_enabled()
            for bad in ("x", 5):
                with pytest.raises(RuntimeError) as e:
                    m.set_deterministic_debug_mode(bad)
                assert "invalid value of debug_mode" in str(e.value)
    finally:
        torch.use_deterministic_algorithms(False)
        vt.use_deterministic_algorithms(False)
