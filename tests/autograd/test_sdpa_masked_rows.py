"""Differential tests, vibetensor against torch, of attention over queries whose every key is masked out (an
all-padding sequence or set in a batch): F.scaled_dot_product_attention gives those rows zeros, and their
gradients are zeros too, not NaN, so one empty sequence cannot poison a training step; NaN inputs still
propagate as in torch. Also through nn.MultiheadAttention (need_weights=False) and nn.TransformerEncoderLayer."""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt


def close(v, t, rtol=1e-4, atol=1e-5):
    np.testing.assert_allclose(v.detach().cpu().numpy(), t.detach().cpu().numpy(), rtol=rtol, atol=atol)


def leaves(*arrs):
    return ([torch.from_numpy(a.copy()).requires_grad_() for a in arrs],
            [vt.from_numpy(a.copy()).requires_grad_() for a in arrs])


def qkv(seed=0, shape=(2, 2, 3, 4)):
    r = np.random.default_rng(seed)
    return [r.standard_normal(shape).astype(np.float32) for _ in range(3)]


def masks(kind):
    keep = np.ones((2, 1, 3, 3), dtype=bool)
    keep[1, :, 2, :] = False  # batch 1: query 2 sees no key
    keep[0, :, :, 2] = False  # batch 0: one key masked for everyone
    if kind == "bool":
        return keep
    return np.where(keep, 0.0, -np.inf).astype(np.float32)


@pytest.mark.parametrize("kind", ["bool", "float"])
def test_fully_masked_rows_give_zeros_and_finite_gradients(kind):
    (tq, tk, tv), (vq, vk, vv) = leaves(*qkv())
    m = masks(kind)
    to = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, attn_mask=torch.from_numpy(m))
    vo = vt.nn.functional.scaled_dot_product_attention(vq, vk, vv, attn_mask=vt.from_numpy(m))
    close(vo, to)
    assert not vo.detach().numpy()[1, :, 2].any()
    g = np.random.default_rng(1).standard_normal(to.shape).astype(np.float32)
    to.backward(torch.from_numpy(g))
    vo.backward(vt.from_numpy(g))
    for t, v in ((tq, vq), (tk, vk), (tv, vv)):
        assert np.isfinite(v.grad.numpy()).all()
        close(v.grad, t.grad)
    assert not vq.grad.numpy()[1, :, 2].any()


def test_nan_inputs_still_propagate_like_torch():
    arrs = qkv(2)
    arrs[1][0, 0, 1, 0] = np.nan
    (tq, tk, tv), (vq, vk, vv) = leaves(*arrs)
    m = masks("float")
    to = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, attn_mask=torch.from_numpy(m))
    vo = vt.nn.functional.scaled_dot_product_attention(vq, vk, vv, attn_mask=vt.from_numpy(m))
    assert np.isnan(vo.detach().numpy()).sum() == np.isnan(to.detach().numpy()).sum() > 0
    np.testing.assert_array_equal(np.isnan(vo.detach().numpy()), np.isnan(to.detach().numpy()))


@pytest.mark.parametrize("module", ["mha", "encoder_layer"])
def test_all_padding_sequence_trains_like_torch(module):
    x = np.random.default_rng(3).standard_normal((3, 4, 8)).astype(np.float32)
    pad = np.zeros((3, 4), dtype=bool)
    pad[1, :] = True  # an empty sequence in the batch
    pad[2, 3:] = True
    models = []
    for lib in (torch, vt):
        torch.manual_seed(0)
        if module == "mha":
            models.append(lib.nn.MultiheadAttention(8, 2, batch_first=True))
        else:
            models.append(lib.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True))
    tm, vm = models
    vm.load_state_dict({k: vt.from_numpy(v.detach().numpy().copy()) for k, v in tm.state_dict().items()})
    (tx,), (vx,) = leaves(x)
    if module == "mha":
        to = tm(tx, tx, tx, key_padding_mask=torch.from_numpy(pad), need_weights=False)[0]
        vo = vm(vx, vx, vx, key_padding_mask=vt.from_numpy(pad), need_weights=False)[0]
    else:
        to = tm(tx, src_key_padding_mask=torch.from_numpy(pad))
        vo = vm(vx, src_key_padding_mask=vt.from_numpy(pad))
    close(vo, to)
    to.square().sum().backward()
    vo.square().sum().backward()
    assert np.isfinite(vx.grad.numpy()).all()
    close(vx.grad, tx.grad, rtol=1e-3)
    tp = dict(tm.named_parameters())
    for name, p in vm.named_parameters():
        assert np.isfinite(p.grad.numpy()).all(), name
        close(p.grad, tp[name].grad, rtol=1e-3)


def test_eval_inference_gives_the_training_path_zeros():
    """Deliberately not torch's eval fast path: torch's native attention (eval, no_grad, batch_first
    self-attention) returns NaN for an all-padding sequence while its own SDPA path returns the same rows as
    zeros (pytorch/pytorch#107084, #118628; pull #190486 zeroes them). vibetensor answers both ways alike, and
    the other rows agree with torch's fast path."""
    x = np.random.default_rng(6).standard_normal((3, 4, 8)).astype(np.float32)
    pad = np.zeros((3, 4), dtype=bool)
    pad[1, :] = True
    torch.manual_seed(0)
    tm = torch.nn.MultiheadAttention(8, 2, batch_first=True).eval()
    vm = vt.nn.MultiheadAttention(8, 2, batch_first=True).eval()
    vm.load_state_dict({k: vt.from_numpy(v.detach().numpy().copy()) for k, v in tm.state_dict().items()})
    tx, vx, vpad = torch.from_numpy(x), vt.from_numpy(x), vt.from_numpy(pad)
    training_path = vm(vx, vx, vx, key_padding_mask=vpad, need_weights=False)[0].detach().numpy()
    with torch.no_grad(), vt.no_grad():
        to = tm(tx, tx, tx, key_padding_mask=torch.from_numpy(pad), need_weights=False)[0].numpy()
        vo = vm(vx, vx, vx, key_padding_mask=vpad, need_weights=False)[0].numpy()
    np.testing.assert_allclose(vo, training_path, rtol=1e-6, atol=1e-7)
    assert np.isfinite(vo).all()
    np.testing.assert_allclose(vo[[0, 2]], to[[0, 2]], rtol=1e-4, atol=1e-5)
    # the empty sequence's output is out_proj's bias alone (its attention is zeros)
    np.testing.assert_allclose(vo[1], np.broadcast_to(vm.out_proj.bias.detach().numpy(), (4, 8)), atol=1e-7)
