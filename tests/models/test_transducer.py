"""The small RNN transducer of tests/models/transducer.py, loaded once with torch and once with vibetensor swapped in
for torch, with the same weights: the RNN-T loss written cell by cell (indexed in-place writes into a tracked
tensor) and over anti-diagonals against each other, an independent numpy recursion and torch, under every
reduction, with float64 gradcheck; the model's loss and every gradient (float32 and float64); the predictor
stepped label by label against its full-sequence run; Adam steps; and greedy decoding of the trained model
against torch's. On the CPU and, where both see a GPU, on the GPU (marker cuda)."""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from side_by_side import both, close, DEVICES, load_torch_weights, train_side_by_side
from swap_import import pair

ttr, vtr = pair("transducer.py")


def build(seed=0, device="cpu", **over):
    torch.manual_seed(seed)
    tm = ttr.Transducer(ttr.TransducerConfig(**over))
    vm = vtr.Transducer(vtr.TransducerConfig(**over))
    load_torch_weights(vm, tm)
    return tm.to(device), vm.to(device)


def batch(seed, device="cpu", dtype=np.float32):
    r = np.random.default_rng(seed)
    x = r.standard_normal((3, 13, 8)).astype(dtype)
    y = r.integers(1, 6, (3, 4))
    return both(device, x, np.array([13, 10, 7]), y, np.array([4, 2, 3]))


def numpy_rnnt(lp, y, tlen, ulen, blank=0):
    """-log p per utterance by the textbook recursion over a [T, U + 1] table."""
    out = []
    for b in range(lp.shape[0]):
        T, U = int(tlen[b]), int(ulen[b])
        a = np.full((T, U + 1), -np.inf)
        a[0, 0] = 0.0
        for t in range(T):
            for u in range(U + 1):
                if t == 0 and u == 0:
                    continue
                terms = []
                if t > 0:
                    terms.append(a[t - 1, u] + lp[b, t - 1, u, blank])
                if u > 0:
                    terms.append(a[t, u - 1] + lp[b, t, u - 1, y[b, u - 1]])
                a[t, u] = np.logaddexp.reduce(terms)
        out.append(-(a[T - 1, U] + lp[b, T - 1, U, blank]))
    return np.array(out)


def random_log_probs(seed, B=3, T=5, U1=4, V=6):
    r = np.random.default_rng(seed)
    z = r.standard_normal((B, T, U1, V))
    return z - np.log(np.exp(z).sum(-1, keepdims=True)), r.integers(1, V, (B, U1 - 1))


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("loss", ["cellwise", "diagonal"])
def test_rnnt_losses_match_numpy_and_torch(loss, reduction):
    lp, y = random_log_probs(1)
    tlen, ulen = np.array([5, 3, 4]), np.array([3, 1, 0])  # an empty target: blanks only
    fn = "rnnt_loss_" + loss
    ref = numpy_rnnt(lp, y, tlen, ulen)
    (tlp, ty, ttl, tul), (vlp, vy, vtl, vul) = both("cpu", lp, y, tlen, ulen)
    tlp.requires_grad_()
    vlp.requires_grad_()
    tl = getattr(ttr, fn)(tlp, ty, ttl, tul, reduction=reduction)
    vl = getattr(vtr, fn)(vlp, vy, vtl, vul, reduction=reduction)
    expect = {"none": ref, "sum": ref.sum(), "mean": (ref / np.maximum(ulen, 1)).mean()}[reduction]
    np.testing.assert_allclose(vl.detach().numpy(), expect, rtol=1e-12)
    close(vl, tl, rtol=1e-12, atol=1e-12)
    w = np.linspace(0.5, 1.5, vl.numel()).reshape(tuple(vl.shape))
    (tl * torch.from_numpy(w)).sum().backward()
    (vl * vt.from_numpy(w)).sum().backward()
    close(vlp.grad, tlp.grad, rtol=1e-10, atol=1e-12)
    g = vlp.grad.numpy()
    assert not g[1, 3:].any() and not g[2, :, 1:].any()  # nothing past each utterance's lengths


@pytest.mark.parametrize("loss", ["cellwise", "diagonal"])
def test_rnnt_losses_pass_gradcheck(loss):
    lp, y = random_log_probs(2, B=2, T=3, U1=3, V=4)
    vy, tl, ul = vt.from_numpy(y), vt.tensor([3, 2]), vt.tensor([2, 1])
    fn = getattr(vtr, "rnnt_loss_" + loss)
    x = vt.from_numpy(lp).requires_grad_()
    assert vt.autograd.gradcheck(lambda z: fn(z, vy, tl, ul, reduction="none"), (x,))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("loss", ["cellwise", "diagonal"])
def test_model_loss_and_gradients_match_torch(loss, device):
    tm, vm = build(device=device)
    (tx, txl, ty, tyl), (vx, vxl, vy, vyl) = batch(0, device)
    tl, tlp = tm(tx, txl, ty, tyl, loss=loss)
    vl, vlp = vm(vx, vxl, vy, vyl, loss=loss)
    assert tuple(vlp.shape) == (3, 6, 5, 6)
    close(vlp, tlp)
    close(vl, tl)
    tl.backward()
    vl.backward()
    tgrads = dict(tm.named_parameters())
    for name, p in vm.named_parameters():
        close(p.grad, tgrads[name].grad, rtol=1e-3, atol=1e-6)


def test_float64_model_matches_torch_tightly():
    tm, vm = build(seed=1)
    tm.double()
    vm.double()
    (tx, txl, ty, tyl), (vx, vxl, vy, vyl) = batch(1, dtype=np.float64)
    tl, _ = tm(tx, txl, ty, tyl)
    vl, _ = vm(vx, vxl, vy, vyl)
    assert vl.dtype == vt.float64
    close(vl, tl, rtol=1e-12, atol=1e-12)
    tl.backward()
    vl.backward()
    tgrads = dict(tm.named_parameters())
    for name, p in vm.named_parameters():
        close(p.grad, tgrads[name].grad, rtol=1e-8, atol=1e-12)


def test_predictor_steps_equal_the_full_sequence():
    _, vm = build(seed=2)
    labels = vt.tensor([[3, 1, 4, 1], [5, 2, 2, 0]])
    with vt.no_grad():
        full, (h, c) = vm.predictor(labels)
        start = vt.zeros(2, 1, dtype=vt.int64)
        out, state = vm.predictor.step(start)
        outs = [out]
        for u in range(4):
            out, state = vm.predictor.step(labels[:, u:u + 1], state)
            outs.append(out)
    close(vt.cat(outs, dim=1), full, rtol=1e-5, atol=1e-6)
    close(state[0], h, rtol=1e-5, atol=1e-6)
    close(state[1], c, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("device", DEVICES)
def test_adam_steps_then_greedy_decoding_match_torch(device):
    tm, vm = build(seed=3, device=device)
    topt = torch.optim.Adam(tm.parameters(), lr=2e-2)
    vopt = vt.optim.Adam(vm.parameters(), lr=2e-2)
    (tx, txl, ty, tyl), (vx, vxl, vy, vyl) = batch(3, device)

    def losses_at(step):
        return tm(tx, txl, ty, tyl, loss="diagonal")[0], vm(vx, vxl, vy, vyl, loss="diagonal")[0]

    # on CUDA torch's own twelve steps end 7.1e-4 from its CPU ones (its cuDNN LSTM's weight_hh, an H200)
    losses = train_side_by_side(tm, vm, topt, vopt, losses_at, 12, param_atol=2e-3 if device == "cuda" else 1e-4)
    assert losses[-1] < 0.8 * losses[0]
    tm.eval()
    vm.eval()
    thyps, vhyps = tm.greedy_decode(tx, txl), vm.greedy_decode(vx, vxl)
    assert vhyps == thyps and any(len(h) >= 2 for h in vhyps)
    assert all(len(h) <= 3 * n for h, n in zip(vhyps, [6, 5, 3]))  # max_symbols per frame
