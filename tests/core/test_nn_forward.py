"""Forward nn ops against torch: softmax, log_softmax, layer_norm, rms_norm, embedding, dropout, Identity."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import vibetensor.torch as vt
import vibetensor.torch.nn.functional as F

TOL = {"float32": 2e-5, "float64": 1e-12, "float16": 2e-3, "bfloat16": 2e-2}


def pair(shape, dtype, rng, scale=3.0):
    a = np.asarray(rng.standard_normal(shape) * scale)
    return vt.from_numpy(a).to(getattr(vt, dtype)), torch.from_numpy(a).to(getattr(torch, dtype))


def close(v, t, dtype):
    vn = v.to(vt.float64).numpy()
    tn = t.to(torch.float64).numpy()
    assert vn.shape == tn.shape and v.dtype.name == str(t.dtype).replace("torch.", "")
    np.testing.assert_allclose(vn, tn, rtol=TOL[dtype], atol=TOL[dtype])


@pytest.mark.parametrize("dtype", list(TOL))
@pytest.mark.parametrize("shape, dim", [((7,), 0), ((4, 9), -1), ((4, 9), 0), ((2, 3, 5), 1), ((), 0), ((0, 3), 1)])
def test_softmax_log_softmax(shape, dim, dtype, rng):
    v, t = pair(shape, dtype, rng)
    close(F.softmax(v, dim), TF.softmax(t, dim), dtype)
    close(F.log_softmax(v, dim), TF.log_softmax(t, dim), dtype)
    close(v.softmax(dim), t.softmax(dim), dtype)


def test_softmax_extremes_and_dtype_arg():
    data = [[0.0, float("-inf"), 1.0], [float("-inf")] * 3, [1000.0, 1000.0, -1000.0]]
    v, t = vt.tensor(data), torch.tensor(data)
    np.testing.assert_allclose(F.softmax(v, -1).numpy(), TF.softmax(t, -1).numpy(), atol=1e-7)
    np.testing.assert_allclose(F.log_softmax(v, -1).numpy(), TF.log_softmax(t, -1).numpy(), atol=1e-6)
    x = vt.tensor([1.0, 2.0], dtype=vt.float16)
    assert F.softmax(x, 0, dtype=vt.float32).dtype == vt.float32
    with pytest.raises(NotImplementedError):
        F.softmax(vt.tensor([1, 2]), 0)


@pytest.mark.parametrize("dtype", list(TOL))
@pytest.mark.parametrize("shape, norm", [((4, 10), (10,)), ((2, 3, 8), (3, 8)), ((5, 6), 6)])
def test_layer_norm_and_rms_norm(shape, norm, dtype, rng):
    v, t = pair(shape, dtype, rng)
    nshape = (norm,) if isinstance(norm, int) else norm
    w, tw = pair(nshape, dtype, rng, 1.0)
    b, tb = pair(nshape, dtype, rng, 1.0)
    close(F.layer_norm(v, norm, w, b), TF.layer_norm(t, nshape, tw, tb), dtype)
    close(F.layer_norm(v, norm), TF.layer_norm(t, nshape), dtype)
    close(F.rms_norm(v, norm, w), TF.rms_norm(t, nshape, tw), dtype)
    close(F.rms_norm(v, norm, eps=1e-3), TF.rms_norm(t, nshape, eps=1e-3), dtype)


def test_norm_shape_errors():
    with pytest.raises(RuntimeError, match="normalized_shape|expected input"):
        F.layer_norm(vt.ones(3, 4), (5,))
    with pytest.raises(RuntimeError, match="weight to be of same shape as normalized_shape"):
        F.layer_norm(vt.ones(3, 4), (4,), vt.ones(3))


def test_embedding(rng):
    w, tw = pair((10, 4), "float32", rng)
    idx = rng.integers(0, 10, size=(3, 5))
    close(F.embedding(vt.from_numpy(idx), w), TF.embedding(torch.from_numpy(idx), tw), "float32")
    with pytest.raises(IndexError, match="out of bounds"):
        F.embedding(vt.tensor([10]), w)
    with pytest.raises(RuntimeError, match="Long, Int"):
        F.embedding(vt.tensor([1.0]), w)


def test_dropout_statistics_and_modes():
    vt.manual_seed(1)
    x = vt.ones(200_000)
    y = F.dropout(x, 0.3)
    kept = (y != 0).float().mean().item()
    assert abs(kept - 0.7) < 0.01
    assert vt.allclose(y[y != 0], vt.full((int((y != 0).sum().item()),), 1 / 0.7))
    assert F.dropout(x, 0.3, training=False) is x
    assert float(F.dropout(x, 1.0).abs().sum()) == 0.0
    with pytest.raises(ValueError, match="between 0 and 1"):
        F.dropout(x, 1.5)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("use_weight", [False, True])
@pytest.mark.parametrize("shape", [(6, 5), (5,), (3, 5, 4)])
def test_cross_entropy_class_indices(shape, use_weight, smoothing, reduction, rng):
    v, t = pair(shape, "float64", rng)
    C = shape[1] if len(shape) > 1 else shape[0]
    tshape = (shape[0],) + tuple(shape[2:]) if len(shape) > 1 else ()
    tgt = np.asarray(rng.integers(0, C, size=tshape))
    if tgt.ndim:
        tgt.flat[0] = -100  # one ignored position
    w, tw = pair((C,), "float64", rng, 1.0) if use_weight else (None, None)
    if use_weight:
        w, tw = w.abs(), tw.abs()
    got = F.cross_entropy(v, vt.from_numpy(tgt), weight=w, reduction=reduction, label_smoothing=smoothing)
    want = TF.cross_entropy(t, torch.from_numpy(tgt), weight=tw, reduction=reduction, label_smoothing=smoothing)
    close(got, want, "float64")


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_cross_entropy_probabilities(smoothing, rng):
    v, t = pair((4, 6), "float64", rng)
    p = np.asarray(rng.dirichlet(np.ones(6), size=4))
    close(F.cross_entropy(v, vt.from_numpy(p), label_smoothing=smoothing),
          TF.cross_entropy(t, torch.from_numpy(p), label_smoothing=smoothing), "float64")


def test_cross_entropy_float32_and_errors(rng):
    v, t = pair((8, 10), "float32", rng)
    tgt = rng.integers(0, 10, size=8)
    close(F.cross_entropy(v, vt.from_numpy(tgt)), TF.cross_entropy(t, torch.from_numpy(tgt)), "float32")
    with pytest.raises(IndexError, match="out of bounds"):
        F.cross_entropy(v, vt.full((8,), 10, dtype=vt.int64))
    with pytest.raises(ValueError, match="reduction"):
        F.cross_entropy(v, vt.from_numpy(tgt), reduction="avg")


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("mask", [None, "bool", "float"])
def test_scaled_dot_product_attention(causal, mask, rng):
    if causal and mask:
        pytest.skip("torch rejects both")
    q, tq = pair((2, 3, 5, 8), "float64", rng, 1.0)
    k, tk = pair((2, 3, 7, 8), "float64", rng, 1.0)
    v, tv = pair((2, 3, 7, 4), "float64", rng, 1.0)
    m = tm = None
    if mask == "bool":
        mm = np.asarray(rng.random((5, 7)) > 0.3)
        mm[:, 0] = True  # every query attends to something
        m, tm = vt.from_numpy(mm), torch.from_numpy(mm)
    elif mask == "float":
        m, tm = pair((5, 7), "float64", rng, 1.0)
    got = F.scaled_dot_product_attention(q, k, v, attn_mask=m, is_causal=causal)
    want = TF.scaled_dot_product_attention(tq, tk, tv, attn_mask=tm, is_causal=causal)
    close(got, want, "float64")


def test_identity_takes_and_ignores_any_arguments():
    # torch's Identity stands in for a configured layer (nn.Identity(dim, eps=...)), as PEFT and timm use it
    x = np.arange(6.0).reshape(2, 3)
    for lib in (torch, vt):
        layer = lib.nn.Identity(54, unused_argument1=0.1, unused_argument2=False)
        assert repr(layer) == "Identity()" and list(layer.parameters()) == []
        y = layer(lib.from_numpy(x))
        np.testing.assert_array_equal(y.numpy(), x)
