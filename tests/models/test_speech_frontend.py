"""The speech frontends of tests/models/speech_frontend.py, loaded once with torch and once with vibetensor swapped in
for torch: framing, the real-DFT power spectrum (against numpy's rfft), mel filterbanks, the DCT, dB scaling,
deltas and masked CMVN piece by piece; the whole log-mel / MFCC frontend (snip-edges with the Povey window and
HTK mels, centred with Hamming and Slaney mels) and its gradient with respect to the waveform; sinc resampling
both ways with Hann and Kaiser windows; SincNet's learnable filters (values, gradients, Adam steps, float64). On
the CPU and, where both see a GPU, on the GPU (marker cuda)."""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from side_by_side import both, close, DEVICES, load_torch_weights, train_side_by_side
from swap_import import pair

tfe, vfe = pair("speech_frontend.py")

LENGTHS = np.array([800, 650, 400])
CONFIGS = {"snip": dict(), "center": dict(center=True, window="hamming", norm="slaney", mel_scale="slaney")}


def waves(seed, device="cpu", dtype=np.float32):
    r = np.random.default_rng(seed)
    t = np.arange(800) / 8000
    w = (np.sin(2 * np.pi * 440 * t)[None] + 0.3 * r.standard_normal((3, 800))).astype(dtype)
    w[np.arange(800)[None] >= LENGTHS[:, None]] = 0.0
    return both(device, w, LENGTHS)


def test_framing_and_power_spectrum():
    (tw, _), (vw, _) = waves(0)
    x = vw.numpy()
    pre = vfe.preemphasis(vw).numpy()
    np.testing.assert_allclose(pre[:, 1:], x[:, 1:] - 0.97 * x[:, :-1], rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(pre[:, 0], x[:, 0])
    assert not np.array_equal(pre, x)  # preemphasis works on a clone: the input is untouched
    for center in (False, True):
        vf, tf = vfe.frame(vw, 50, 20, center), tfe.frame(tw, 50, 20, center)
        assert tuple(vf.shape) == tuple(tf.shape) == ((3, 38, 50) if not center else (3, 41, 50))
        np.testing.assert_array_equal(vf.numpy(), tf.numpy())
    np.testing.assert_array_equal(vfe.frame(vw, 50, 20).numpy()[:, 3], x[:, 60:110])
    spec = vfe.power_spectrum(vfe.frame(vw, 50, 20), 64).numpy()
    frames = np.stack([x[:, i * 20:i * 20 + 50] for i in range(38)], 1)
    ref = np.abs(np.fft.rfft(frames, n=64, axis=-1)) ** 2
    np.testing.assert_allclose(spec, ref, rtol=1e-4, atol=1e-3)
    close(vfe.power_spectrum(vfe.frame(vw, 50, 20), 64), tfe.power_spectrum(tfe.frame(tw, 50, 20), 64),
          rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("norm,mel_scale", [(None, "htk"), ("slaney", "slaney"), ("slaney", "htk")])
def test_filterbanks_and_dct_match_torch(norm, mel_scale):
    vfb = vfe.melscale_fbanks(33, 20.0, 4000.0, 12, 8000, norm, mel_scale)
    tfb = tfe.melscale_fbanks(33, 20.0, 4000.0, 12, 8000, norm, mel_scale)
    assert tuple(vfb.shape) == (33, 12) and (vfb.numpy() >= 0).all()
    close(vfb, tfb, rtol=1e-5, atol=1e-6)
    assert (vfb.numpy().max(0) > 0).all()  # every filter sees some bin
    dct = vfe.create_dct(8, 12).numpy()
    np.testing.assert_allclose(dct, tfe.create_dct(8, 12).numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(dct.T @ dct, np.eye(8), atol=1e-6)  # orthonormal columns
    close(vfe.create_dct(8, 12, None), tfe.create_dct(8, 12, None), rtol=1e-6, atol=1e-6)


def test_db_deltas_and_cmvn():
    r = np.random.default_rng(1)
    spec = np.exp(r.uniform(-30, 5, (2, 6, 9))).astype(np.float32)
    (ts,), (vs,) = both("cpu", spec)
    for top_db in (None, 80.0, 20.0):
        close(vfe.amplitude_to_DB(vs, top_db=top_db), tfe.amplitude_to_DB(ts, top_db=top_db), rtol=1e-5, atol=1e-4)
    db = vfe.amplitude_to_DB(vs, top_db=20.0).numpy()
    assert (db.reshape(2, -1).max(1) - db.reshape(2, -1).min(1) <= 20.0 + 1e-4).all()
    x = r.standard_normal((2, 4, 7)).astype(np.float32)
    (tx,), (vx,) = both("cpu", x)
    d = vfe.compute_deltas(vx).numpy()
    close(vfe.compute_deltas(vx), tfe.compute_deltas(tx), rtol=1e-5, atol=1e-6)
    xp = np.pad(x, ((0, 0), (0, 0), (2, 2)), mode="edge")
    ref = sum(k * xp[..., 2 + k:2 + k + 7] for k in range(-2, 3)) / 10.0
    np.testing.assert_allclose(d, ref, rtol=1e-5, atol=1e-6)
    f = r.standard_normal((3, 6, 4)).astype(np.float32)
    (tf, tl), (vf, vl) = both("cpu", f, np.array([6, 4, 1]))
    out = vfe.utterance_cmvn(vf, vl).numpy()
    close(vfe.utterance_cmvn(vf, vl), tfe.utterance_cmvn(tf, tl), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out[1, :4].mean(0), 0.0, atol=1e-6)
    np.testing.assert_allclose(out[1, :4].std(0), 1.0, rtol=1e-3)
    assert not out[1, 4:].any() and not out[2].any()  # one frame: zero after removing its mean


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_frontend_matches_torch_with_waveform_gradients(config, device):
    tm, vm = tfe.LogMelFrontend(**CONFIGS[config]).to(device), vfe.LogMelFrontend(**CONFIGS[config]).to(device)
    assert sorted(vm.state_dict()) == sorted(tm.state_dict()) == ["dct", "fb", "window"]
    for name in ("window", "fb", "dct"):
        close(getattr(vm, name), getattr(tm, name), rtol=1e-5, atol=1e-6)
    (tw, tl), (vw, vl) = waves(2, device)
    tw.requires_grad_()
    vw.requires_grad_()
    tout, vout = tm(tw, tl), vm(vw, vl)
    close(vout[0], tout[0], rtol=1e-4, atol=1e-4)
    close(vout[1], tout[1], rtol=1e-3, atol=1e-3)
    assert vout[2].tolist() == tout[2].tolist() == ([38, 31, 18] if config == "snip" else [41, 33, 21])
    g = np.random.default_rng(3).standard_normal(tuple(tout[0].shape)).astype(np.float32)
    (tout[0] * torch.from_numpy(g).to(device)).sum().backward()
    (vout[0] * vt.from_numpy(g).to(device)).sum().backward()
    close(vw.grad, tw.grad, rtol=1e-3, atol=1e-3 * np.abs(tw.grad.cpu().numpy()).max())


def test_frontend_in_float64():
    tm, vm = tfe.LogMelFrontend().double(), vfe.LogMelFrontend().double()
    assert vm.fb.dtype == vt.float64
    (tw, tl), (vw, vl) = waves(4, dtype=np.float64)
    tout, vout = tm(tw, tl), vm(vw, vl)
    assert vout[0].dtype == vt.float64
    close(vout[0], tout[0], rtol=1e-5, atol=1e-6)  # (the buffers were built in float32: their rounding differs)
    close(vout[1], tout[1], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("method", ["sinc_interp_hann", "sinc_interp_kaiser"])
@pytest.mark.parametrize("orig,new", [(8000, 6000), (6000, 8000), (16000, 8000)])
def test_sinc_resampling_matches_torch(method, orig, new):
    (tw, _), (vw, _) = waves(5)
    tout, vout = tfe.resample(tw, orig, new, resampling_method=method), vfe.resample(vw, orig, new,
                                                                                      resampling_method=method)
    assert tuple(vout.shape) == tuple(tout.shape) == (3, int(np.ceil(800 * new / orig)))
    close(vout, tout, rtol=1e-5, atol=1e-5)
    # the tone survives (440 Hz at 8 kHz is 440 * orig / 8000 Hz of a signal sampled at orig)
    t = np.arange(vout.shape[1]) / new
    s = np.sin(2 * np.pi * 440 * orig / 8000 * t)
    assert np.corrcoef(vout.numpy()[0, 50:-50], s[50:-50])[0, 1] > 0.85


def build_sinc(seed=0, device="cpu"):
    torch.manual_seed(seed)
    tm, vm = tfe.SincFrontendClassifier(), vfe.SincFrontendClassifier()
    load_torch_weights(vm, tm)
    return tm.to(device), vm.to(device)


@pytest.mark.parametrize("device", DEVICES)
def test_sincnet_filters_forward_and_gradients(device):
    tm, vm = build_sinc(device=device)
    close(vm.sinc.n_, tm.sinc.n_, rtol=1e-6, atol=1e-7)
    close(vm.sinc.window_, tm.sinc.window_, rtol=1e-6, atol=1e-7)
    (tw, _), (vw, _) = waves(6, device)
    tout, vout = tm(tw), vm(vw)
    close(vm.sinc.filters, tm.sinc.filters, rtol=1e-4, atol=1e-5)
    f = vm.sinc.filters.detach().cpu().numpy()[:, 0]
    np.testing.assert_allclose(f, f[:, ::-1], rtol=1e-6)  # symmetric: the flip
    close(vout, tout)
    tout.pow(2).sum().backward()
    vout.pow(2).sum().backward()
    tgrads = dict(tm.named_parameters())
    for name, p in vm.named_parameters():
        close(p.grad, tgrads[name].grad, rtol=1e-3, atol=1e-6)
    assert np.abs(vm.sinc.low_hz_.grad.cpu().numpy()).max() > 0


@pytest.mark.parametrize("device", DEVICES)
def test_sincnet_adam_steps_match_torch(device):
    tm, vm = build_sinc(seed=1, device=device)
    topt = torch.optim.Adam(tm.parameters(), lr=1e-2)
    vopt = vt.optim.Adam(vm.parameters(), lr=1e-2)
    (tw, _), (vw, _) = waves(7, device)
    (ty,), (vy,) = both(device, np.array([0, 1, 2]))
    train_side_by_side(tm, vm, topt, vopt, lambda step: (torch.nn.functional.cross_entropy(tm(tw), ty),
                                                         vt.nn.functional.cross_entropy(vm(vw), vy)), 6)


def test_sincnet_float64_matches_torch_tightly():
    tm, vm = build_sinc(seed=2)
    tm.double()
    vm.double()
    (tw, _), (vw, _) = waves(8, dtype=np.float64)
    tout, vout = tm(tw), vm(vw)
    close(vout, tout, rtol=1e-10, atol=1e-12)
    tout.pow(2).sum().backward()
    vout.pow(2).sum().backward()
    tgrads = dict(tm.named_parameters())
    for name, p in vm.named_parameters():
        close(p.grad, tgrads[name].grad, rtol=1e-8, atol=1e-12)
