"""Mixed-precision training as torch scripts write it - forward and loss in an autocast region, the loss scaled
by a GradScaler, unscale_ + clip, scaler.step / update - side by side with torch (CPU bfloat16 everywhere, CUDA
float16 where both have a GPU), and vt.cuda.amp's deprecated spellings."""
import warnings

import numpy as np
import pytest
import torch
import vibetensor.torch as vt

CUDA = vt.cuda.is_available() and torch.cuda.is_available()


def build(m, device, seed=0):
    rng = np.random.default_rng(seed)
    model = m.nn.Sequential(m.nn.Linear(8, 32), m.nn.GELU(), m.nn.LayerNorm(32), m.nn.Linear(32, 4))
    with (torch.no_grad() if m is torch else vt.no_grad()):
        for p in model.parameters():
            p.copy_((torch.from_numpy if m is torch else vt.from_numpy)(
                rng.standard_normal(tuple(p.shape)).astype(np.float32) * 0.3))
    return model.to(device)


@pytest.mark.parametrize("device,dtype", [("cpu", "bfloat16"), ("cpu", "float16")] +
                         ([("cuda", "float16"), ("cuda", "bfloat16")] if CUDA else []))
def test_amp_training_matches_torch(device, dtype):
    rng = np.random.default_rng(1)
    batches = [(rng.standard_normal((16, 8)).astype(np.float32), rng.integers(0, 4, 16)) for _ in range(6)]
    runs = []
    for m in (torch, vt):
        model = build(m, device)
        opt = m.optim.AdamW(model.parameters(), lr=1e-2)
        scaler = m.amp.GradScaler(device, init_scale=2.0**12, growth_interval=2)
        losses, scales = [], []
        for x, y in batches:
            x = (torch.from_numpy if m is torch else vt.from_numpy)(x.copy()).to(device)
            y = (torch.from_numpy if m is torch else vt.from_numpy)(y.copy()).to(device)
            with m.autocast(device, dtype=getattr(m, dtype)):
                logits = model(x)
                loss = m.nn.functional.cross_entropy(logits, y)
            assert logits.dtype == getattr(m, dtype) and loss.dtype == m.float32
            opt.zero_grad()
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
            m.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            scaler.step(opt)
            scaler.update()
            losses.append(loss.item())
            scales.append(scaler.get_scale())
        runs.append((losses, scales, [p.detach().float().cpu().numpy() for p in model.parameters()]))
    (lt, st, pt), (lv, sv, pv) = runs
    assert sv == st  # growth every 2 clean steps, exactly as torch
    np.testing.assert_allclose(lv, lt, rtol=3e-2, atol=3e-2)
    for a, b in zip(pv, pt):
        np.testing.assert_allclose(a, b, rtol=5e-2, atol=5e-2)


def test_cuda_amp_deprecated_spellings():
    with pytest.warns(FutureWarning, match=r"torch\.cuda\.amp\.autocast\(args\.\.\.\)` is deprecated"):
        region = vt.cuda.amp.autocast(enabled=False)
    assert region.device == "cuda" and region.fast_dtype == vt.float16
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # no GPU: the scaler disables itself, as torch's does
        with pytest.warns(FutureWarning, match=r"torch\.cuda\.amp\.GradScaler\(args\.\.\.\)` is deprecated"):
            scaler = vt.cuda.amp.GradScaler(init_scale=8.0)
    assert isinstance(scaler, vt.amp.GradScaler) and scaler.is_enabled() == vt.cuda.is_available()
    with pytest.warns(FutureWarning, match="custom_fwd"):
        fwd = vt.cuda.amp.custom_fwd(lambda ctx, x: x)
    assert fwd.__wrapped__ is not None
    with pytest.warns(FutureWarning, match="custom_bwd"):
        vt.cuda.amp.custom_bwd(lambda ctx, g: g)
    with pytest.raises(AttributeError, match="has no attribute 'ampx'"):
        vt.cuda.ampx
