"""The small FastSpeech 2 of tests/models/fastspeech.py, loaded once with torch and once with vibetensor swapped in
for torch, with the same weights: the frozen sinusoid tables and bins (parameters without gradients), the length
regulator against a numpy expansion, the bucketised pitch/energy embeddings, the teacher-forced outputs, the
masked loss and every gradient (float32 and float64), Adam steps, and inference from predicted durations
(rounded, clamped, masked) with its mel lengths. On the CPU and, where both see a GPU, on the GPU (marker
cuda)."""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from side_by_side import both, close, DEVICES, load_torch_weights, train_side_by_side
from swap_import import pair

tfs, vfs = pair("fastspeech.py")


def build(seed=0, device="cpu"):
    torch.manual_seed(seed)
    tm, vm = tfs.FastSpeech2(), vfs.FastSpeech2()
    load_torch_weights(vm, tm)
    return tm.to(device), vm.to(device)


def batch(seed, device="cpu", dtype=np.float32):
    r = np.random.default_rng(seed)
    src_lens = np.array([6, 4, 3])
    pad = np.arange(6)[None] >= src_lens[:, None]
    texts = r.integers(1, 12, (3, 6))
    texts[pad] = 0
    durations = r.integers(0, 4, (3, 6))
    durations[pad] = 0
    max_len = int(durations.sum(1).max())
    mels = r.standard_normal((3, max_len, 6)).astype(dtype)
    pitch = r.standard_normal((3, 6)).astype(dtype)
    energy = r.standard_normal((3, 6)).astype(dtype)
    return max_len, both(device, texts, src_lens, mels, durations, pitch, energy)


def run(model, max_len, data):
    texts, src_lens, mels, durations, pitch, energy = data
    return model(texts, src_lens, None, max_len, pitch, energy, durations)


def test_tables_bins_and_length_regulator():
    tm, vm = build()
    assert list(vm.state_dict()) == list(tm.state_dict())
    frozen = {n for n, p in vm.named_parameters() if not p.requires_grad}
    assert frozen == {"encoder.position_enc", "decoder.position_enc", "variance_adaptor.pitch_bins",
                      "variance_adaptor.energy_bins"}
    close(vm.encoder.position_enc, tm.encoder.position_enc, rtol=0, atol=0)
    np.testing.assert_allclose(vm.variance_adaptor.pitch_bins.detach().numpy(), np.linspace(-2, 2, 7), atol=3e-7)
    x = np.random.default_rng(1).standard_normal((2, 4, 3)).astype(np.float32)
    d = np.array([[2, 0, 1, 3], [1, 1, 0, 0]])
    (tx, td), (vx, vd) = both("cpu", x, d)
    vx.requires_grad_()
    out, mel_len = vm.variance_adaptor.length_regulator(vx, vd, 8)
    tout, tlen = tm.variance_adaptor.length_regulator(tx, td, 8)
    expect = np.zeros((2, 8, 3), np.float32)
    for b in range(2):
        e = np.repeat(x[b], d[b], axis=0)
        expect[b, :len(e)] = e
    np.testing.assert_array_equal(out.detach().numpy(), expect)
    np.testing.assert_array_equal(tout.numpy(), expect)
    assert mel_len.tolist() == tlen.tolist() == [6, 2]
    (out * vt.arange(8, dtype=vt.float32)[None, :, None]).sum().backward()
    np.testing.assert_array_equal(vx.grad.numpy()[0, :, 0], [0 + 1, 0, 2, 3 + 4 + 5])  # summed over the copies
    # pitch quantisation: bucketize into the 7 edges gives 8 embedding rows
    p = vt.tensor([[-3.0, -2.0, 0.1, 5.0]])
    idx = vt.bucketize(p, vm.variance_adaptor.pitch_bins)
    assert idx.tolist() == torch.bucketize(torch.tensor([[-3.0, -2.0, 0.1, 5.0]]),
                                           tm.variance_adaptor.pitch_bins).tolist() == [[0, 0, 4, 7]]


@pytest.mark.parametrize("device", DEVICES)
def test_teacher_forced_outputs_loss_and_gradients_match_torch(device):
    tm, vm = build(device=device)
    max_len, (tdata, vdata) = batch(0, device)
    tout, vout = run(tm, max_len, tdata), run(vm, max_len, vdata)
    for v, t in zip(vout, tout):
        close(v, t) if v.dtype != vt.bool else np.testing.assert_array_equal(v.cpu().numpy(), t.cpu().numpy())
    assert vout[7].tolist() == tdata[3].sum(1).tolist()  # the mel lengths are the durations' sums
    tl = tfs.fastspeech2_loss(tout, tdata[2], tdata[4], tdata[5], tdata[3])
    vl = vfs.fastspeech2_loss(vout, vdata[2], vdata[4], vdata[5], vdata[3])
    close(vl, tl)
    tl.backward()
    vl.backward()
    tp = dict(tm.named_parameters())
    for name, p in vm.named_parameters():
        if tp[name].grad is None:
            assert p.grad is None, name
        else:
            close(p.grad, tp[name].grad, rtol=1e-3, atol=1e-6)
    # padding_idx 0: its embedding row gets no gradient
    assert not vm.encoder.src_word_emb.weight.grad[0].cpu().numpy().any()


def _torch_mse_backward_takes_mixed_dtypes():
    x = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    try:
        torch.nn.functional.mse_loss(x, torch.zeros(1)).backward()
    except RuntimeError:  # torch 2.11: "Found dtype Float but expected Double"
        return False
    return True


def test_float64_matches_torch_tightly(monkeypatch):
    if not _torch_mse_backward_takes_mixed_dtypes():
        # torch 2.11's mse_loss backward refuses the float32 target the duration loss makes (log(d.float() + 1))
        # under the float64 prediction, though its forward promotes; torch 2.13 (and vt) promote in both. The
        # reference is then torch's loss on operands promoted before the call: the same values and gradients.
        mse = torch.nn.functional.mse_loss

        def promoted_mse(a, b, *args, **kwargs):
            dtype = torch.promote_types(a.dtype, b.dtype)
            return mse(a.to(dtype), b.to(dtype), *args, **kwargs)
        monkeypatch.setattr(torch.nn.functional, "mse_loss", promoted_mse)
    tm, vm = build(seed=1)
    tm.double()
    vm.double()
    max_len, (tdata, vdata) = batch(1, dtype=np.float64)
    tout, vout = run(tm, max_len, tdata), run(vm, max_len, vdata)
    assert vout[0].dtype == vt.float64
    close(vout[0], tout[0], rtol=1e-10, atol=1e-12)
    tl = tfs.fastspeech2_loss(tout, tdata[2], tdata[4], tdata[5], tdata[3])
    vl = vfs.fastspeech2_loss(vout, vdata[2], vdata[4], vdata[5], vdata[3])
    tl.backward()
    vl.backward()
    tp = dict(tm.named_parameters())
    for name, p in vm.named_parameters():
        if tp[name].grad is not None:
            close(p.grad, tp[name].grad, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("device", DEVICES)
def test_adam_steps_match_torch(device):
    tm, vm = build(seed=2, device=device)
    topt = torch.optim.Adam([p for p in tm.parameters() if p.requires_grad], lr=5e-3, betas=(0.9, 0.98), eps=1e-9)
    vopt = vt.optim.Adam([p for p in vm.parameters() if p.requires_grad], lr=5e-3, betas=(0.9, 0.98), eps=1e-9)
    max_len, (tdata, vdata) = batch(2, device)
    # the key part of each attention's in_proj_bias gets a gradient that is zero but for rounding (softmax ignores
    # a shift along the keys), which Adam turns into full steps either way: a gradient hook keeps it at zero
    for lib, model in ((torch, tm), (vt, vm)):
        keep = lib.ones(48, device=device)
        keep[16:32] = 0
        for name, p in model.named_parameters():
            if name.endswith("in_proj_bias"):
                p.register_hook(lambda g, keep=keep: g * keep)

    def losses_at(step):
        return (tfs.fastspeech2_loss(run(tm, max_len, tdata), tdata[2], tdata[4], tdata[5], tdata[3]),
                vfs.fastspeech2_loss(run(vm, max_len, vdata), vdata[2], vdata[4], vdata[5], vdata[3]))

    train_side_by_side(tm, vm, topt, vopt, losses_at, 5)


@pytest.mark.parametrize("device", DEVICES)
def test_inference_from_predicted_durations_matches_torch(device):
    tm, vm = build(seed=3, device=device)
    for m in (tm, vm):
        m.eval()
        m.variance_adaptor.duration_predictor.linear_layer.bias.data.fill_(1.2)  # exp(1.2) - 1: about 2 frames
    _, ((tt, tlen, *_), (vtext, vlen, *_)) = batch(3, device)
    with torch.no_grad(), vt.no_grad():
        tout, vout = tm(tt, tlen), vm(vtext, vlen)
    d = vout[4].cpu().numpy()
    assert vout[4].tolist() == tout[4].tolist() and vout[4].dtype == vt.int64
    assert not d[1, 4:].any() and not d[2, 3:].any() and d.sum() > 6  # masked past each length
    assert vout[7].tolist() == tout[7].tolist() == d.sum(1).tolist()
    close(vout[0], tout[0])
    np.testing.assert_array_equal(vout[6].cpu().numpy(), tout[6].cpu().numpy())
