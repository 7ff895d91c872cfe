"""The Mamba-style selective state-space LM of tests/models/ssm.py, loaded once with torch and once with vibetensor
swapped in for torch, with the same weights: its structure and initialisation (tied head, inverse-softplus dt
bias, S4D-real A_log, the markers the optimizer groups read, kept through a cast), the sequential and the chunked
selective scans (each other and torch, values and input gradients), the forward loss and every gradient under
both scans (float32, float64, bfloat16 autocast), AdamW with undecayed A_log/D/norm groups, gradient clipping and
a warmup + cosine LambdaLR (losses, learning rates, final weights) and a checkpoint resume through save/load, and
the recurrent path under inference_mode (step by step, or after a parallel prefill) against the full forward and
against torch, greedy generation included. On the CPU and, where both see a GPU, on the GPU (marker cuda)."""
import io
import math

import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from side_by_side import both, close, DEVICES, load_torch_weights, train_side_by_side
from swap_import import pair

tssm, vssm = pair("ssm.py")

CFG = dict(vocab_size=24, d_model=16, n_layers=2, d_state=4, expand=2, d_conv=4, chunk_size=4)


def build(seed=0, device="cpu", wide=False, **over):
    """wide redraws out_proj at std 0.5 and the embedding at 0.3 (with the model's depth-scaled 0.007 and the
    tied unit-variance embedding, the scan's share of the logits is too small for a comparison to see, and greedy
    decoding just repeats the last token)."""
    cfg = dict(CFG, **over)
    torch.manual_seed(seed)
    tm = tssm.MambaLM(tssm.SSMConfig(**cfg))
    if wide:
        with torch.no_grad():
            for name, p in tm.named_parameters():
                if name.endswith("out_proj.weight"):
                    p.normal_(0.0, 0.5)
            tm.embedding.weight.normal_(0.0, 0.3)
    vm = vssm.MambaLM(vssm.SSMConfig(**cfg))
    load_torch_weights(vm, tm)
    return tm.to(device), vm.to(device)


def batch(seed, b=3, t=11, device="cpu", counting=False):
    """Random tokens, or (counting) runs start, start + 2, start + 4, ... mod vocab that a model can learn."""
    r = np.random.default_rng(seed)
    x = r.integers(0, CFG["vocab_size"], size=(b, t))
    if counting:
        x = (x[:, :1] + 2 * np.arange(t)) % CFG["vocab_size"]
    y = np.roll(x, -1, axis=1)
    y[:, -1] = -100
    (tx, ty), (vx, vy) = both(device, x, y)
    return (tx, ty), (vx, vy)


def test_structure_and_initialisation():
    tm, vm = build()
    assert [n for n, _ in vm.named_parameters()] == [n for n, _ in tm.named_parameters()]
    assert list(vm.state_dict()) == list(tm.state_dict())
    assert vm.lm_head.weight is vm.embedding.weight and "lm_head.weight" not in dict(vm.named_parameters())
    _, fresh = build(seed=1)  # vibetensor's own initialisation, not torch's copied in
    mixer = fresh.layers[0].mixer
    assert tuple(mixer.conv1d.weight.shape) == (32, 1, 4) and mixer.conv1d.groups == 32
    assert tuple(mixer.x_proj.weight.shape) == (1 + 2 * 4, 32) and mixer.dt_rank == 1
    dt = vt.nn.functional.softplus(mixer.dt_proj.bias).detach().numpy()
    assert dt.min() >= 1e-3 * (1 - 1e-5) and dt.max() <= 1e-1 * (1 + 1e-5) and dt.std() > 0
    assert not mixer.dt_proj.bias.requires_grad or mixer.dt_proj.bias.grad_fn is None  # copy_ ran under no_grad
    close(mixer.A_log, tm.layers[0].mixer.A_log, rtol=0, atol=0)
    np.testing.assert_array_equal(np.exp(mixer.A_log.detach().numpy()), np.tile(np.arange(1, 5), (32, 1)))
    # _init_weights: kaiming-uniform out_proj divided by sqrt(2 * n_layers) (std 1 / sqrt(3 fan_in) / 2),
    # the embedding at std 0.02, the dt bias left as it was (the range above)
    std = fresh.layers[1].mixer.out_proj.weight.detach().numpy().std()
    assert 0.8 < std / (1 / math.sqrt(3 * 32) / 2) < 1.2
    assert 0.015 < fresh.embedding.weight.detach().numpy().std() < 0.025
    # the markers the optimizer groups read survive a cast (Module.to keeps each Parameter, as torch's does)
    fresh.double()
    assert fresh.layers[0].mixer.A_log is mixer.A_log and mixer.A_log._no_weight_decay and mixer.D._no_weight_decay
    opt = vssm.configure_optimizer(fresh, lr=1e-3, weight_decay=0.1)
    assert any(p is mixer.A_log for p in opt.param_groups[1]["params"]) and mixer.A_log.dtype == vt.float64


def scan_inputs(seed, b=2, l=10, d=6, n=3):
    r = np.random.default_rng(seed)
    f = np.float32
    return [r.standard_normal((b, l, d)).astype(f), r.uniform(0.05, 0.8, (b, l, d)).astype(f),
            -r.uniform(0.1, 2.0, (d, n)).astype(f), r.standard_normal((b, l, n)).astype(f),
            r.standard_normal((b, l, n)).astype(f), r.standard_normal(d).astype(f)]


def run_scan(mod, scan, chunk_size, *args, h0):
    if scan == "chunked":
        return mod.selective_scan_chunked(*args, chunk_size, h0=h0)
    return mod.selective_scan_pscan(*args, h0=h0)


# (scan, chunk size, sequence length): chunks of one step, uneven, even, one chunk, longer than the sequence
SCANS = [("chunked", 1, 10), ("chunked", 3, 10), ("chunked", 4, 10), ("chunked", 10, 10), ("chunked", 16, 10),
         ("chunked", 4, 1), ("pscan", 0, 1), ("pscan", 0, 10), ("pscan", 0, 16)]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("scan,chunk_size,length", SCANS)
def test_parallel_scans_equal_sequential_scan_and_torch(scan, chunk_size, length, device):
    arrs = scan_inputs(chunk_size + length, l=length)
    targs, vargs = both(device, *arrs)
    for a in targs + vargs:
        a.requires_grad_()
    h0 = np.random.default_rng(7).standard_normal((2, 6, 3)).astype(np.float32)
    (th0,), (vh0,) = both(device, h0)
    results = {}
    for lib, mod, args, h in ((torch, tssm, targs, th0), (vt, vssm, vargs, vh0)):
        h.requires_grad_()
        ys, hs = mod.selective_scan_sequential(*args, h0=h)
        yp, hp = run_scan(mod, scan, chunk_size, *args, h0=h)
        close(yp, ys, rtol=1e-4, atol=1e-5)
        close(hp, hs, rtol=1e-4, atol=1e-5)
        w = lib.from_numpy(np.linspace(-1, 1, ys.numel(), dtype=np.float32).reshape(ys.shape)).to(device)
        gs = lib.autograd.grad((ys * w).sum() + hs.pow(2).sum(), args + (h,))
        gp = lib.autograd.grad((yp * w).sum() + hp.pow(2).sum(), args + (h,))
        for a, b in zip(gp, gs):
            close(a, b, rtol=1e-4, atol=1e-4)
        results[lib] = (yp, hp, gp)
    close(results[vt][0], results[torch][0])
    close(results[vt][1], results[torch][1])
    for a, b in zip(results[vt][2], results[torch][2]):
        close(a, b, rtol=1e-4, atol=1e-4)
    # the decays matter: a scan with A = 0 (no forgetting) gives a different output
    flat = vssm.selective_scan_sequential(*vargs[:2], vargs[2] * 0, *vargs[3:])[0]
    assert np.abs(flat.detach().cpu().numpy() - results[vt][0].detach().cpu().numpy()).max() > 0.1 or length == 1


@pytest.mark.parametrize("length", [1, 5, 8])
def test_linear_scan_function_passes_gradcheck(length):
    r = np.random.default_rng(length)
    a, b = r.uniform(0.2, 0.9, (2, length, 3)), r.standard_normal((2, length, 3))
    for lib, mod in ((torch, tssm), (vt, vssm)):
        inputs = tuple(lib.from_numpy(z.copy()).requires_grad_() for z in (a, b))
        assert lib.autograd.gradcheck(mod.LinearScan.apply, inputs)
        h = mod.LinearScan.apply(*inputs)
        assert h.grad_fn is not None
        expect = np.zeros_like(b)  # the recurrence, in numpy
        for t in range(length):
            expect[:, t] = a[:, t] * (expect[:, t - 1] if t else 0) + b[:, t]
        np.testing.assert_allclose(h.detach().numpy(), expect, rtol=1e-12)


def test_segsum_masks_above_the_diagonal():
    a = np.array([[0.5, -1.0, 2.0, 0.25]], dtype=np.float32)
    (ta,), (va,) = both("cpu", a)
    out, ref = vssm.segsum(va).numpy(), tssm.segsum(ta).numpy()
    np.testing.assert_array_equal(np.isinf(out), np.triu(np.ones((4, 4), bool), 1)[None])
    np.testing.assert_allclose(out, ref, rtol=1e-6)
    assert out[0, 3, 1] == pytest.approx(2.25)  # a[2] + a[3]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("scan", ["parallel", "sequential", "pscan"])
def test_forward_and_gradients_match_torch(scan, device):
    tm, vm = build(device=device, wide=True)
    (tx, ty), (vx, vy) = batch(1, device=device)
    tlogits, tl = tm(tx, ty, scan=scan)
    vlogits, vl = vm(vx, vy, scan=scan)
    close(vlogits, tlogits)
    close(vl, tl)
    tl.backward()
    vl.backward()
    tgrads = dict(tm.named_parameters())
    for name, p in vm.named_parameters():
        assert p.grad is not None, name
        close(p.grad, tgrads[name].grad, rtol=1e-3, atol=1e-6)
    assert np.abs(vm.layers[0].mixer.A_log.grad.cpu().numpy()).max() > 1e-5  # the scan is on the gradient path


def test_float64_model_matches_torch_tightly():
    tm, vm = build(seed=7, wide=True)
    tm.double()
    vm.double()
    assert vm.lm_head.weight is vm.embedding.weight and vm.layers[1].mixer.A_log.dtype == vt.float64
    (tx, ty), (vx, vy) = batch(7)
    tlogits, tl = tm(tx, ty)
    vlogits, vl = vm(vx, vy)
    assert vlogits.dtype == vt.float64
    close(vlogits, tlogits, rtol=1e-10, atol=1e-12)
    tl.backward()
    vl.backward()
    tgrads = dict(tm.named_parameters())
    for name, p in vm.named_parameters():
        close(p.grad, tgrads[name].grad, rtol=1e-8, atol=1e-12)
    # the decoding states take the weights' dtype: a float64 prefill and steps, as torch's
    tstates, vstates = tm.allocate_states(3), vm.allocate_states(3)
    assert vstates[0][1].dtype == vt.float64
    with torch.inference_mode(), vt.inference_mode():
        close(vm(vx[:, :5], states=vstates)[0], tm(tx[:, :5], states=tstates)[0], rtol=1e-10, atol=1e-12)
        for i in range(5, 8):
            close(vm.step(vx[:, i], vstates), tm.step(tx[:, i], tstates), rtol=1e-10, atol=1e-12)
        close(vm.step(vx[:, 8], vstates), vlogits[:, 8], rtol=1e-10, atol=1e-12)


def output_dtypes(lib, model, tokens, targets):
    """(module name, output dtype) for every module in a forward under bfloat16 autocast, and the loss."""
    seen = []
    handles = [m.register_forward_hook(lambda mod, args, out, name=name: seen.append(
        (name, str(out.dtype).split(".")[-1]))) for name, m in model.named_modules() if name]
    with lib.autocast("cpu", dtype=lib.bfloat16):
        logits, loss = model(tokens, targets)
    for h in handles:
        h.remove()
    return seen, logits, loss


@pytest.mark.parametrize("scan", ["sequential", "chunked", "pscan"])
def test_scans_under_bfloat16_autocast_cast_where_torch_does(scan):
    """Under autocast torch runs the scans' contractions in bfloat16 and their outer products (einsum with nothing
    to contract, the decays) in float32: the same casts in the same places give the same values."""
    arrs = scan_inputs(11)
    results = []
    for lib, mod in ((torch, tssm), (vt, vssm)):
        args = [lib.from_numpy(a.copy()) for a in arrs]
        # where the opt_einsum package is installed both contract the chunked scan's 3- and 4-operand einsums in
        # its order (vt.backends.opt_einsum), elsewhere left to right: the bfloat16 roundings fall in the same places
        with lib.autocast("cpu", dtype=lib.bfloat16):
            if scan == "sequential":
                y, h = mod.selective_scan_sequential(*args)
            else:
                y, h = run_scan(mod, scan, 4, *args, h0=None)
        results.append((str(y.dtype).split(".")[-1], str(h.dtype).split(".")[-1], y.float(), h.float()))
    (tyd, thd, ty, th), (vyd, vhd, vy, vh) = results
    assert (vyd, vhd) == (tyd, thd)
    close(vy, ty, rtol=1e-5, atol=1e-5)
    close(vh, th, rtol=1e-5, atol=1e-5)


def test_bfloat16_autocast_casts_as_torch():
    tm, vm = build(seed=8, wide=True)
    (tx, ty), (vx, vy) = batch(8)
    tseen, tlogits, tl = output_dtypes(torch, tm, tx, ty)
    vseen, vlogits, vl = output_dtypes(vt, vm, vx, vy)
    assert vseen == tseen and ("layers.0.mixer.conv1d", "bfloat16") in vseen  # the same ops run in bfloat16
    assert vlogits.dtype == vt.bfloat16 and vl.dtype == vt.float32
    close(vlogits.float(), tlogits.float(), rtol=0, atol=0.05 * np.abs(tlogits.float().detach().numpy()).max())
    np.testing.assert_allclose(vl.item(), tl.item(), rtol=1e-2)
    tl.backward()
    vl.backward()
    tgrads = dict(tm.named_parameters())
    for name, p in vm.named_parameters():  # bfloat16 rounding apart: within a tenth of the largest entry
        g, t = p.grad.numpy(), tgrads[name].grad.numpy()
        assert p.grad.dtype == vt.float32 and np.abs(g - t).max() <= 0.1 * np.abs(t).max(), name


@pytest.mark.parametrize("device", DEVICES)
def test_the_three_scans_give_the_same_model(device):
    _, vm = build(seed=2, device=device, wide=True)
    (_, _), (vx, _) = batch(2, t=13, device=device)
    with vt.no_grad():
        par = vm(vx)[0]
        seq = vm(vx, scan="sequential")[0]
        pscan = vm(vx, scan="pscan")[0]
        vm.layers[0].mixer.A_log.fill_(-20.0)  # no decay in layer 0: the logits must move
        moved = vm(vx)[0]
    close(par, seq, rtol=1e-4, atol=1e-4)
    close(pscan, seq, rtol=1e-4, atol=1e-4)
    assert np.abs(moved.cpu().numpy() - par.cpu().numpy()).max() > 1e-2


@pytest.mark.parametrize("device", DEVICES)
def test_adamw_groups_clipping_lambda_schedule_match_torch(device):
    tm, vm = build(device=device)
    steps = 8

    def optimizer(lib, mod, model):
        opt = mod.configure_optimizer(model, lr=1e-2, weight_decay=0.1)
        return opt, lib.optim.lr_scheduler.LambdaLR(opt, mod.lr_lambda(warmup=2, total=steps))

    topt, tsched = optimizer(torch, tssm, tm)
    vopt, vsched = optimizer(vt, vssm, vm)
    no_decay = {id(p) for p in vopt.param_groups[1]["params"]}
    names = {n for n, p in vm.named_parameters() if id(p) in no_decay}
    assert {"layers.0.mixer.A_log", "layers.1.mixer.D", "norm_f.weight", "layers.0.mixer.dt_proj.bias"} <= names
    assert "embedding.weight" not in names and len(vopt.param_groups[0]["params"]) == 2 * 5 + 1
    lrs = []

    def losses_at(step):
        (tx, ty), (vx, vy) = batch(20 + step, device=device, counting=True)
        return tm(tx, ty)[1], vm(vx, vy)[1]

    losses = train_side_by_side(tm, vm, topt, vopt, losses_at, steps, clip=1.0, scheds=(tsched, vsched),
                                after_step=lambda: lrs.append(vsched.get_last_lr()[0]))
    assert lrs[0] == pytest.approx(1e-2) and lrs[-1] == pytest.approx(1e-3)  # warmed up, decayed to the floor
    assert losses[-1] < losses[0] - 0.3, losses
    # A_log and D took no weight decay but did move
    assert not np.allclose(vm.layers[0].mixer.D.detach().cpu().numpy(), 1.0)


@pytest.mark.parametrize("device", DEVICES)
def test_recurrent_steps_match_full_forward_and_torch(device):
    tm, vm = build(seed=3, device=device, wide=True)
    (tx, _), (vx, _) = batch(4, b=2, t=9, device=device)
    with torch.no_grad(), vt.no_grad():
        vfull = vm(vx)[0]
    tstates, vstates = tm.allocate_states(2), vm.allocate_states(2)
    vsteps = []
    for i in range(9):
        ts, vs = tm.step(tx[:, i], tstates), vm.step(vx[:, i], vstates)
        close(vs, ts)
        assert not vs.requires_grad and vs.grad_fn is None
        vsteps.append(vs)
    close(vt.stack(vsteps, dim=1), vfull, rtol=1e-4, atol=1e-5)  # (each step matched torch's above)
    for (tc, th), (vc, vh) in zip(tstates, vstates):
        close(vc, tc)
        close(vh, th)
    assert np.abs(vstates[1][1].cpu().numpy()).max() > 1e-3  # the states did advance
    # the conv state holds the last d_conv inputs, newest last: its window starts one back after a step
    last = vstates[0][0][:, :, -1].clone()
    vm.step(vx[:, 0], vstates)
    close(vstates[0][0][:, :, -2], last, rtol=0, atol=0)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("prompt_len", [2, 4, 7])  # shorter than d_conv (left padding), equal, longer (cropping)
def test_prefill_then_steps_match_full_forward_and_torch(prompt_len, device):
    tm, vm = build(seed=6, device=device, wide=True)
    (tx, _), (vx, _) = batch(5, b=2, t=10, device=device)
    with torch.no_grad(), vt.no_grad():
        vfull = vm(vx)[0]
    tstates, vstates = tm.allocate_states(2), vm.allocate_states(2)
    stepped = vm.allocate_states(2)
    with torch.inference_mode(), vt.inference_mode():
        tpre, vpre = tm(tx[:, :prompt_len], states=tstates)[0], vm(vx[:, :prompt_len], states=vstates)[0]
    close(vpre, tpre)
    for i in range(prompt_len):
        vm.step(vx[:, i], stepped)
    for (tc, th), (vc, vh), (sc, sh) in zip(tstates, vstates, stepped):
        close(vc, tc)
        close(vh, th)
        close(vc, sc, rtol=1e-5, atol=1e-6)  # the prefill leaves the states that stepping does
        close(vh, sh, rtol=1e-4, atol=1e-5)
    parts = [vpre] + [vm.step(vx[:, i], vstates).unsqueeze(1) for i in range(prompt_len, 10)]
    close(vt.cat(parts, dim=1), vfull, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("prefill", [True, False])
def test_greedy_generation_matches_torch_and_the_full_forward(prefill):
    tm, vm = build(seed=10, wide=True)
    start = np.array([[1, 2, 3], [7, 8, 9]])
    tout = tm.generate(torch.from_numpy(start), 10, prefill=prefill)
    vout = vm.generate(vt.from_numpy(start), 10, prefill=prefill)
    assert vout.tolist() == tout.tolist()
    assert len(set(vout[:, 3:].reshape(-1).tolist())) >= 3  # not a degenerate repeat of one token
    with vt.no_grad():  # each generated token is the full forward's argmax over its prefix
        logits = vm(vout[:, :-1])[0]
    assert logits.argmax(dim=-1)[:, 2:].tolist() == vout[:, 3:].tolist()


def test_checkpoint_resume_continues_as_torch_and_as_if_uninterrupted():
    """Three steps, then model + AdamW + LambdaLR state through save/load into fresh objects, three more steps."""
    def train(lib, mod, model, opt, sched, steps, side):
        losses = []
        for k in steps:
            x, y = batch(30 + k, counting=True)[side]
            loss = model(x, y)[1]
            opt.zero_grad()
            loss.backward()
            lib.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            losses.append(loss.item())
        return losses

    def fresh(lib, mod, model):
        opt = mod.configure_optimizer(model, lr=1e-2, weight_decay=0.1)
        return opt, lib.optim.lr_scheduler.LambdaLR(opt, mod.lr_lambda(warmup=2, total=6))

    results = {}
    for lib, mod, side in ((torch, tssm, 0), (vt, vssm, 1)):
        model = build()[side]
        opt, sched = fresh(lib, mod, model)
        train(lib, mod, model, opt, sched, range(3), side)
        buf = io.BytesIO()
        lib.save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict()}, buf)
        buf.seek(0)
        ckpt = lib.load(buf)
        resumed = build(seed=1)[side]
        resumed.load_state_dict(ckpt["model"])
        ropt, rsched = fresh(lib, mod, resumed)
        ropt.load_state_dict(ckpt["opt"])
        rsched.load_state_dict(ckpt["sched"])
        assert resumed.lm_head.weight is resumed.embedding.weight
        results[lib] = (train(lib, mod, resumed, ropt, rsched, range(3, 6), side), rsched.get_last_lr(), resumed)
        if lib is vt:
            uninterrupted = train(lib, mod, model, opt, sched, range(3, 6), side)
            np.testing.assert_allclose(results[vt][0], uninterrupted, rtol=1e-6)
    np.testing.assert_allclose(results[vt][0], results[torch][0], rtol=2e-4)
    assert results[vt][1] == pytest.approx(results[torch][1], rel=1e-12)
    tp = dict(results[torch][2].named_parameters())
    for name, p in results[vt][2].named_parameters():
        close(p, tp[name], rtol=1e-3, atol=1e-4)
