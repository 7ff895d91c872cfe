"""The models of sequence_classics.py (written with `import torch`) on torch and on vibetensor from the same weights,
in float64: the CRF's negative log-likelihood and its gradients, its marginals by autograd.grad and their double
backward (and, on torch, against brute-force enumeration of every tag path), identical Viterbi paths, the
tutorial-style CRF and the BiLSTM-CRF trained a few steps, the AWD-LSTM language model's losses over several
truncated-BPTT windows with SGD then ASGD, its averaged weights, under both forms of weight drop, and the TCN and
N-BEATS outputs, gradients and training, and DeepAR's likelihood training (Gaussian, and negative binomial on
counts) and mean forecasts."""
import itertools

import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from side_by_side import DEVICES, load_torch_weights
from swap_import import pair

TMOD, VMOD = pair("sequence_classics.py")


def same_weights(name, device="cpu", dtype="double", **kwargs):
    torch.manual_seed(0)
    tm = getattr(getattr(TMOD, name)(**kwargs), dtype)().to(device)
    vm = getattr(getattr(VMOD, name)(**kwargs), dtype)().to(device)
    assert list(vm.state_dict()) == list(tm.state_dict())
    load_torch_weights(vm, tm)
    return tm, vm


def close(a, b, what, rtol=1e-9, atol=1e-12):
    a = a.detach().cpu().numpy() if hasattr(a, "detach") else a
    b = b.detach().cpu().numpy() if hasattr(b, "detach") else b
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol, err_msg=what)


def both(device, *arrays):
    return (tuple(torch.from_numpy(a).to(device) for a in arrays),
            tuple(vt.from_numpy(a.copy()).to(device) for a in arrays))


# float64 runs agree to rounding; float32 ones to float32's (scale=1e3 widens every tolerance)
def check_grads(tm, vm, what, scale=1.0):
    tg = dict(tm.named_parameters())
    for n, p in vm.named_parameters():
        assert (p.grad is None) == (tg[n].grad is None), f"{what}: grad of {n}"
        if p.grad is not None:
            close(p.grad, tg[n].grad, f"{what}: grad {n}", rtol=1e-7 * scale, atol=1e-10 * scale)


def check_weights(tm, vm, what, scale=1.0):
    ts = tm.state_dict()
    for k, v in vm.state_dict().items():
        close(v, ts[k], f"{what}: {k}", rtol=1e-7 * scale, atol=1e-10 * scale)


def train(tm, vm, topt, vopt, steps, loss, clip=None, scale=1.0):
    """Steps both models on the same batches: loss(lib, model, step) -> loss tensor; every loss, gradient,
    clipped norm and final weight must agree."""
    losses = []
    for step in range(steps):
        tl, vl = loss(torch, tm, step), loss(vt, vm, step)
        close(vl.item(), tl.item(), f"loss at step {step}", rtol=1e-9 * scale ** 1.5)
        losses.append(vl.item())
        topt.zero_grad()
        vopt.zero_grad()
        tl.backward()
        vl.backward()
        check_grads(tm, vm, f"step {step}", scale)
        if clip is not None:
            tn = torch.nn.utils.clip_grad_norm_(tm.parameters(), clip)
            vn = vt.nn.utils.clip_grad_norm_(vm.parameters(), clip)
            close(vn.item(), tn.item(), f"grad norm at step {step}", rtol=1e-9 * scale ** 1.5)
        topt.step()
        vopt.step()
    assert losses[-1] < losses[0], losses
    check_weights(tm, vm, "after training", scale)
    return losses


# ---------------------------------------------------------------- CRF

def tagging_batch(rng, batch=4, seq_len=6, num_tags=4, lengths=(6, 3, 1, 5)):
    mask = np.arange(seq_len)[None, :] < np.array(lengths)[:, None]
    return (rng.standard_normal((batch, seq_len, num_tags)), rng.integers(0, num_tags, size=(batch, seq_len)), mask)


def brute_force(crf, emissions, mask):
    """Every tag path of each sentence: (log partition, best path), from torch's CRF parameters."""
    start, end, trans = (p.detach().cpu().numpy() for p in (crf.start_transitions, crf.end_transitions,
                                                            crf.transitions))
    log_z, best = [], []
    for em, m in zip(emissions, mask):
        n = int(m.sum())
        scores = {}
        for path in itertools.product(range(crf.num_tags), repeat=n):
            s = start[path[0]] + end[path[-1]] + sum(em[i, t] for i, t in enumerate(path))
            scores[path] = s + sum(trans[a, b] for a, b in zip(path[:-1], path[1:]))
        values = np.array(list(scores.values()))
        log_z.append(values.max() + np.log(np.exp(values - values.max()).sum()))
        best.append(list(max(scores, key=scores.get)))
    return np.array(log_z), best


@pytest.mark.parametrize("device", DEVICES)
def test_crf_likelihood_gradients_and_viterbi_match_torch(device):
    tm, vm = same_weights("CRF", device, num_tags=4)
    rng = np.random.default_rng(0)
    em, tags, mask = tagging_batch(rng)
    (tem, ttags, tmask), (vem, vtags, vmask) = both(device, em, tags, mask)
    tem.requires_grad_()
    vem.requires_grad_()
    for reduction in ("none", "sum"):
        close(vm(vem, vtags, vmask, reduction=reduction), tm(tem, ttags, tmask, reduction=reduction), reduction)
    tl, vl = tm(tem, ttags, tmask), vm(vem, vtags, vmask)
    close(vl, tl, "mean NLL")
    tl.backward()
    vl.backward()
    close(vem.grad, tem.grad, "d NLL / d emissions")
    check_grads(tm, vm, "CRF")
    # the oracle itself, against enumeration: the log partition and the best path
    log_z, best = brute_force(tm, em, mask)
    close(tm._log_partition(tem, tmask), log_z, "torch log partition vs brute force")
    close(vm._log_partition(vem, vmask), log_z, "vibetensor log partition vs brute force")
    assert tm.decode(tem, tmask) == best
    assert vm.decode(vem, vmask) == best


@pytest.mark.parametrize("device", DEVICES)
def test_crf_marginals_by_autograd_and_their_gradients_match_torch(device):
    """Posterior tag marginals as the gradient of the log partition (public code's trick), taken with
    create_graph=True, then a loss on the marginals back-propagated: a double backward through logsumexp, where and
    the broadcast sums."""
    tm, vm = same_weights("CRF", device, num_tags=4)
    em, _, mask = tagging_batch(np.random.default_rng(3))
    (tem, tmask), (vem, vmask) = both(device, em, mask)
    margs = {}
    for lib, m, e, msk in ((torch, tm, tem, tmask), (vt, vm, vem, vmask)):
        e.requires_grad_()
        (marg,) = lib.autograd.grad(m._log_partition(e, msk).sum(), e, create_graph=True)
        (marg ** 2).sum().backward()  # a sharpness penalty on the marginals
        margs[lib] = marg
    close(margs[vt], margs[torch], "marginals")
    np.testing.assert_allclose(margs[vt].detach().cpu().numpy().sum(-1), mask.astype(float), atol=1e-12)
    close(vem.grad, tem.grad, "d penalty / d emissions")
    check_grads(tm, vm, "d penalty / d CRF parameters")


@pytest.mark.parametrize("device", DEVICES)
def test_viterbi_paths_identical_on_a_larger_batch(device):
    tm, vm = same_weights("CRF", device, num_tags=6)
    rng = np.random.default_rng(1)
    lengths = rng.integers(1, 13, size=16)
    em, _, mask = tagging_batch(rng, batch=16, seq_len=12, num_tags=6, lengths=lengths)
    em *= 0.3  # the transitions matter as much as the emissions
    with torch.no_grad():
        tm.transitions.normal_()
    load_torch_weights(vm, tm)
    (tem, tmask), (vem, vmask) = both(device, em, mask)
    paths = vm.decode(vem, vmask)
    assert paths == tm.decode(tem, tmask)
    assert [len(p) for p in paths] == list(lengths)


@pytest.mark.parametrize("device", DEVICES)
def test_sentence_crf_trains_and_decodes_like_torch(device):
    tm, vm = same_weights("SentenceCRF", device, num_tags=4)
    rng = np.random.default_rng(8)
    sentences = [both(device, rng.standard_normal((n, 4)), rng.integers(0, 4, size=n)) for n in (5, 1, 3)]
    # the oracle: the batched CRF with start = T[:K, start], end = T[stop, :K], transitions[from, to] = T[to, from]
    batched = TMOD.CRF(4).double().to(device)
    with torch.no_grad():
        k, trans = 4, tm.transitions
        batched.start_transitions.copy_(trans[:k, k])
        batched.end_transitions.copy_(trans[k + 1, :k])
        batched.transitions.copy_(trans[:k, :k].t())
    for (tf, _), _ in sentences:
        ones = torch.ones(1, tf.size(0), dtype=torch.bool, device=device)
        close(tm.log_partition(tf), batched._log_partition(tf.unsqueeze(0), ones)[0], "log partition vs batched")
        assert tm.viterbi(tf)[1] == batched.decode(tf.unsqueeze(0), ones)[0]

    def loss(lib, model, step):
        return sum(model.neg_log_likelihood(*s[0 if lib is torch else 1]) for s in sentences) / len(sentences)

    topt = torch.optim.SGD(tm.parameters(), lr=0.05)
    vopt = vt.optim.SGD(vm.parameters(), lr=0.05)
    train(tm, vm, topt, vopt, 3, loss)
    for (tf, _), (vf, _) in sentences:
        tscore, tpath = tm.viterbi(tf)
        vscore, vpath = vm.viterbi(vf)
        assert vpath == tpath
        close(vscore, tscore, "best path score")


@pytest.mark.parametrize("device", DEVICES)
def test_bilstm_crf_trains_and_decodes_like_torch(device):
    tm, vm = same_weights("BiLSTMCRF", device)
    rng = np.random.default_rng(2)
    batches = []
    for _ in range(3):
        lengths = np.array([5, 2, 4])  # not sorted: pack_padded_sequence(enforce_sorted=False) sorts them
        mask = np.arange(5)[None, :] < lengths[:, None]
        words = rng.integers(1, 30, size=(3, 5)) * mask
        chars = rng.integers(1, 12, size=(3, 5, 4)) * mask[:, :, None]
        chars[:, :, 3] = 0  # character padding inside each word
        batches.append(both(device, words, chars, rng.integers(0, 5, size=(3, 5)), mask))

    def loss(lib, model, step):
        return model(*batches[step][0 if lib is torch else 1])

    topt = torch.optim.SGD(tm.parameters(), lr=0.1, momentum=0.9)
    vopt = vt.optim.SGD(vm.parameters(), lr=0.1, momentum=0.9)
    train(tm, vm, topt, vopt, 3, loss, clip=5.0)
    for (tw, tc, _, tmask), (vw, vc, _, vmask) in batches:
        close(vm.emissions(vw, vc, vmask), tm.emissions(tw, tc, tmask), "emissions after training")
        assert vm.decode(vw, vc, vmask) == tm.decode(tw, tc, tmask)


# ---------------------------------------------------------------- AWD-LSTM

def lm_corpus(device, n=260, ntoken=40, bsz=4):
    data = np.random.default_rng(3).integers(0, ntoken, size=n)
    return TMOD.batchify(torch.from_numpy(data), bsz).to(device), VMOD.batchify(vt.from_numpy(data), bsz).to(device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("weight_drop", ["wrapper", "patched"])
def test_awd_lstm_bptt_with_nt_asgd_matches_torch(device, weight_drop):
    tm, vm = same_weights("AWDLSTM", device, weight_drop=weight_drop)
    assert vm.decoder.weight is vm.encoder.weight
    assert "rnn.weight_hh_l0_raw" in dict(vm.named_parameters())
    lstm = vm.rnn.module if weight_drop == "wrapper" else vm.rnn
    tdata, vdata = lm_corpus(device)
    bsz, bptt, lr = 4, 8, 2.0
    topt = torch.optim.SGD(tm.parameters(), lr=lr, weight_decay=1.2e-6)
    vopt = vt.optim.SGD(vm.parameters(), lr=lr, weight_decay=1.2e-6)
    th, vh = tm.init_hidden(bsz), vm.init_hidden(bsz)
    window_rng = np.random.default_rng(4)  # the variable BPTT length of the AWD-LSTM recipe
    i, step = 0, 0
    while i < tdata.size(0) - 2 and step < 6:
        if step == 3:  # NT-ASGD: once validation stops improving, SGD gives way to averaged SGD
            topt = torch.optim.ASGD(tm.parameters(), lr=lr, t0=0, lambd=0.0, weight_decay=1.2e-6)
            vopt = vt.optim.ASGD(vm.parameters(), lr=lr, t0=0, lambd=0.0, weight_decay=1.2e-6)
        base = bptt if window_rng.random() < 0.95 else bptt / 2
        seq_len = max(3, int(window_rng.normal(base, 2)))
        for opt in (topt, vopt):
            opt.param_groups[0]["lr"] = lr * seq_len / bptt
        th, vh = TMOD.repackage_hidden(th), VMOD.repackage_hidden(vh)
        assert not vh[0].requires_grad and vh[0].grad_fn is None
        tx, ty = TMOD.get_batch(tdata, i, seq_len)
        vx, vy = VMOD.get_batch(vdata, i, seq_len)
        tl, traw, th = TMOD.lm_loss(tm, tx, ty, th)
        vl, vraw, vh = VMOD.lm_loss(vm, vx, vy, vh)
        close(vl.item(), tl.item(), f"loss (with AR and TAR) of window {step}")
        close(vraw.item(), traw.item(), f"cross entropy of window {step}")
        dropped = (lstm.weight_hh_l1 == 0).double().mean().item()  # this window's DropConnect mask
        assert 0.25 < dropped < 0.55, dropped
        topt.zero_grad()
        vopt.zero_grad()
        tl.backward()
        vl.backward()
        check_grads(tm, vm, f"window {step}")
        close(vt.nn.utils.clip_grad_norm_(vm.parameters(), 0.25).item(),
              torch.nn.utils.clip_grad_norm_(tm.parameters(), 0.25).item(), f"grad norm of window {step}")
        topt.step()
        vopt.step()
        for k in (0, 1):
            close(vh[k], th[k], f"hidden state {k} after window {step}")
        i, step = i + seq_len, step + 1
    assert step == 6
    check_weights(tm, vm, "after BPTT")
    # evaluation on ASGD's averages, swapped in as the recipe does
    tparams = dict(tm.named_parameters())
    for n, p in vm.named_parameters():
        close(vopt.state[p]["ax"], topt.state[tparams[n]]["ax"], f"ASGD average of {n}")
        p.data = vopt.state[p]["ax"].clone()
        tparams[n].data = topt.state[tparams[n]]["ax"].clone()
    tm.eval()
    vm.eval()
    tx, ty = TMOD.get_batch(tdata, 0, 20)
    vx, vy = VMOD.get_batch(vdata, 0, 20)
    with torch.no_grad():
        tl = TMOD.lm_loss(tm, tx, ty, tm.init_hidden(bsz), alpha=0, beta=0)[0]
    with vt.no_grad():
        vl = VMOD.lm_loss(vm, vx, vy, vm.init_hidden(bsz), alpha=0, beta=0)[0]
    close(vl.item(), tl.item(), "evaluation loss on the averaged weights")
    names = list(dict(vm.named_parameters(remove_duplicate=False)))
    assert names == list(dict(tm.named_parameters(remove_duplicate=False)))
    assert ("rnn.weight_hh_l0" in names) == (weight_drop == "patched")


def test_awd_lstm_with_dropout_between_layers_evaluates_like_torch():
    tm, vm = same_weights("AWDLSTM", lstm_dropout=0.5)
    tdata, vdata = lm_corpus("cpu")
    tm.eval()
    vm.eval()
    tout, th = tm(tdata[:10], tm.init_hidden(4))[:2]
    vout, vh = vm(vdata[:10], vm.init_hidden(4))[:2]
    close(vout, tout, "eval logits")
    close(vh[1], th[1], "eval cell state")
    vm.train()  # in training the inter-layer dropout is live: the output changes, and stays finite
    vtrain = vm(vdata[:10], vm.init_hidden(4))[0]
    assert np.isfinite(vtrain.detach().numpy()).all()
    assert not np.allclose(vtrain.detach().numpy(), vout.detach().numpy())


# ---------------------------------------------------------------- TCN and N-BEATS

@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("parametrized, dtype", [
    pytest.param(False, "double", id="weight_norm-float64"),
    pytest.param(False, "float", id="weight_norm-float32"),
    pytest.param(True, "double", id="parametrizations.weight_norm-float64"),
    pytest.param(True, "float", id="parametrizations.weight_norm-float32")])
def test_tcn_outputs_gradients_and_training_match_torch(device, parametrized, dtype):
    tm, vm = same_weights("TCN", device, dtype, parametrized=parametrized)
    # torch's CUDA weight-norm kernel takes the norm's reciprocal in float32 (8.8e-9 from the exact float64
    # value on an H100; vt's is exact), so its float64 reference is good to about 1e-8 there
    scale = 1e3 if dtype == "float" else (100.0 if device == "cuda" else 1.0)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 2, 16)).astype(np.float64 if dtype == "double" else np.float32)
    (tx,), (vx,) = both(device, x)
    tx.requires_grad_()
    vx.requires_grad_()
    tout, vout = tm(tx), vm(vx)
    close(vout, tout, "TCN output", rtol=1e-9 * scale, atol=1e-12 * scale)
    (tout ** 2).sum().backward()
    (vout ** 2).sum().backward()
    assert vx.grad.dtype == vx.dtype and all(p.grad.dtype == vx.dtype for p in vm.parameters())
    # float32 input gradients of order 1e-2 cancel to 1e-4 in places: their rounding is absolute, about 1e-9;
    # through torch's CUDA weight norm the float64 ones were 1.4e-9 (9e-7 relative) from vt's on an H100
    grad_tol = dict(rtol=1e-9 * scale, atol=1e-12 * scale) if device == "cpu" and dtype == "double" else \
        dict(rtol=1e-7 * scale, atol=1e-10 * scale) if dtype == "double" else dict(rtol=1e-6, atol=1e-8)
    close(vx.grad, tx.grad, "d out / d input", **grad_tol)
    check_grads(tm, vm, "TCN", scale)
    # causality: the features at step t ignore every later step
    x2 = x.copy()
    x2[:, :, 10:] += 1.0
    (vx2,) = both(device, x2)[1]
    with vt.no_grad():
        close(vm.network(vx2)[:, :, :10], vm.network(vx.detach())[:, :, :10], "causal features",
              rtol=1e-9 * scale, atol=1e-12 * scale)
    batches = [both(device, *(a.astype(x.dtype) for a in (rng.standard_normal((4, 2, 16)),
                                                          rng.standard_normal((4, 3))))) for _ in range(4)]

    def loss(lib, model, step):
        xb, yb = batches[step][0 if lib is torch else 1]
        return lib.nn.functional.mse_loss(model(xb), yb)

    topt = torch.optim.Adam(tm.parameters(), lr=1e-2)
    vopt = vt.optim.Adam(vm.parameters(), lr=1e-2)
    train(tm, vm, topt, vopt, 4, loss, clip=1.0, scale=scale)


@pytest.mark.parametrize("device", DEVICES)
def test_nbeats_quantile_forecaster_trains_like_torch(device):
    tm, vm = same_weights("NBeats", device)
    rng = np.random.default_rng(6)
    t = np.arange(16)
    series = [np.sin(0.5 * (t + s)) + 0.05 * t + 0.1 * rng.standard_normal(16) for s in rng.integers(0, 20, 32)]
    series = np.stack(series)
    (tx, ty), (vx, vy) = both(device, series[:, :12], series[:, 12:])
    tout, vout = tm(tx), vm(vx)
    assert tuple(vout.shape) == (32, 4, 3)
    close(vout, tout, "forecast quantiles")
    close(VMOD.quantile_loss(vout, vy, vm.quantiles), TMOD.quantile_loss(tout, ty, tm.quantiles), "pinball loss")

    def loss(lib, model, step):
        mod, x, y = (TMOD, tx, ty) if lib is torch else (VMOD, vx, vy)
        return mod.quantile_loss(model(x), y, model.quantiles)

    topt = torch.optim.AdamW(tm.parameters(), lr=5e-3, weight_decay=1e-2)
    vopt = vt.optim.AdamW(vm.parameters(), lr=5e-3, weight_decay=1e-2)
    train(tm, vm, topt, vopt, 5, loss)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("likelihood", ["normal", "negbin"])
def test_deepar_likelihood_training_and_forecast_match_torch(device, likelihood):
    tm, vm = same_weights("DeepAR", device, likelihood=likelihood)
    rng = np.random.default_rng(7)
    t = np.arange(20)
    level = rng.uniform(1, 10, size=(6, 1))
    target = level * (1 + 0.3 * np.sin(0.6 * t + rng.uniform(0, 6, size=(6, 1)))) + 0.1 * rng.standard_normal((6, 20))
    if likelihood == "negbin":
        target = rng.poisson(target.clip(0.1)).astype(np.float64)  # counts
    cov = np.stack([np.sin(0.6 * t), np.cos(0.6 * t)], axis=-1)[None].repeat(6, 0)
    (ty, tc, ts), (vy, vc, vs) = both(device, target, cov, rng.integers(0, 5, size=6))

    def loss(lib, model, step):
        y, c, s = (ty, tc, ts) if lib is torch else (vy, vc, vs)
        return model(y[:, :16], c[:, :16], s, context_len=12)

    topt = torch.optim.Adam(tm.parameters(), lr=1e-2)
    vopt = vt.optim.Adam(vm.parameters(), lr=1e-2)
    train(tm, vm, topt, vopt, 4, loss, clip=10.0)
    tm.eval()
    vm.eval()
    tmean, tsig = tm.forecast(ty[:, :16], tc, ts, horizon=4)
    vmean, vsig = vm.forecast(vy[:, :16], vc, vs, horizon=4)
    assert tuple(vmean.shape) == (6, 4) and not vmean.requires_grad
    close(vmean, tmean, "mean forecast", rtol=1e-8, atol=1e-10)
    close(vsig, tsig, "forecast scale", rtol=1e-8, atol=1e-10)
