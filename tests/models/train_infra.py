"""The training infrastructure public training scripts lean on, written against torch: map-style datasets that
return dicts and tuples, loaders with default and custom collation, a small MLP whose layers carry custom
(symmetric, Cayley-orthogonal) and weight-norm parametrizations, gradient hooks and clipping, scheduler chains,
a mid-training param group, optimizer/scheduler checkpoints and a GradScaler loop. Each script function returns
what such a script logs, so that a torch run and a vibetensor run can be compared value by value."""
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import parameters_to_vector, parametrize, prune, vector_to_parameters
from torch.nn.utils.parametrizations import orthogonal, weight_norm
from torch.nn.utils.rnn import pad_sequence
from torch.optim import lr_scheduler
from torch.utils.data import (BatchSampler, ConcatDataset, DataLoader, Dataset, SequentialSampler, Subset,
                              TensorDataset)


class DictDataset(Dataset):
    """Samples as a dict of a numpy feature row, an int label and nested metadata (lists and dicts)."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"x": self.x[i], "y": int(self.y[i]), "meta": {"idx": i, "pair": [float(self.x[i, 0]), self.x[i, :2]],
                                                           "name": f"row{i}"}}


class SeqDataset(Dataset):
    """Variable-length sequences as (tensor, label) tuples: they need a padding collate_fn."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, idx):
        n = 1 + idx % 3
        return torch.from_numpy(self.x[idx, :n].copy()), torch.tensor(self.y[idx])


def pad_collate(batch):
    seqs, labels = zip(*batch)
    lengths = torch.tensor([len(s) for s in seqs])
    return pad_sequence(list(seqs), batch_first=True, padding_value=-1.0), lengths, torch.stack(labels)


class Symmetric(nn.Module):
    def forward(self, X):
        return X.triu() + X.triu(1).transpose(-1, -2)

    def right_inverse(self, A):
        return A.triu()


class CayleyOrthogonal(nn.Module):
    """Q = (I + A)^-1 (I - A) with A = X - X^T: orthogonal for any X."""

    def forward(self, X):
        A = X.triu(1)
        A = A - A.transpose(-1, -2)
        eye = torch.eye(A.shape[-1], dtype=A.dtype, device=A.device)
        return torch.linalg.solve(eye + A, eye - A)


class InfraNet(nn.Module):
    def __init__(self, d_in=6, hidden=8, n_cls=3):
        super().__init__()
        self.inp = nn.Linear(d_in, hidden)
        self.mix = nn.Linear(hidden, hidden)
        self.rot = nn.Linear(hidden, hidden, bias=False)
        self.head = weight_norm(nn.Linear(hidden, n_cls))
        parametrize.register_parametrization(self.mix, "weight", Symmetric())
        parametrize.register_parametrization(self.rot, "weight", CayleyOrthogonal())

    def forward(self, x):
        h = torch.tanh(self.inp(x))
        h = F.gelu(self.mix(h)) + h
        return self.head(self.rot(h))


def datasets(x, y):
    """Tensor, dict and sequence datasets over the same rows, then the Subset/ConcatDataset views scripts build."""
    tds = TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
    dds = DictDataset(x, y)
    both = ConcatDataset([Subset(tds, list(range(0, len(x), 2))), Subset(tds, list(range(1, len(x), 2)))])
    return tds, dds, SeqDataset(x, y), both


def collated_batches(x, y, order):
    """Every batch of the loaders scripts write, for the fixed index stream `order` (a list of row indices)."""
    tds, dds, sds, cat = datasets(x, y)
    out = {}
    out["dict"] = list(DataLoader(Subset(dds, order), batch_size=4, drop_last=True))
    out["tensor"] = list(DataLoader(tds, batch_size=3, sampler=order))
    out["concat"] = [(len(cat), cat[i]) for i in (0, len(cat) // 2, len(cat) - 1)]
    out["padded"] = list(DataLoader(sds, batch_sampler=BatchSampler(order, 3, drop_last=False),
                                    collate_fn=pad_collate))
    out["named"] = list(DataLoader([(x[i], f"r{i}") for i in order], batch_size=5))  # a list as the dataset
    out["seq_sampler"] = list(BatchSampler(SequentialSampler(range(7)), 3, drop_last=True))
    return out


def nn_utils_trace(model, x, y):
    """Flat parameter round trip, gradient clipping (norm, value, nonfinite errors), parametrization removal."""
    log = {}
    vec = parameters_to_vector(model.parameters())
    log["numel"] = vec.numel()
    vector_to_parameters(vec * 0.5, model.parameters())
    log["halved"] = parameters_to_vector(model.parameters()).detach().clone()
    vector_to_parameters(vec, model.parameters())
    F.cross_entropy(model(x), y).backward()
    log["grads"] = {n: p.grad.clone() for n, p in model.named_parameters()}
    log["norm_inf"] = nn.utils.clip_grad_norm_(model.parameters(), 1e9, norm_type="inf")
    log["norm_foreach"] = nn.utils.clip_grad_norm_(model.parameters(), 0.05, foreach=True)
    log["norm_after"] = nn.utils.clip_grad_norm_(model.parameters(), 1e9, norm_type=2.0, foreach=False)
    nn.utils.clip_grad_value_(model.parameters(), 0.004)
    log["clipped"] = {n: p.grad.clone() for n, p in model.named_parameters()}
    next(model.parameters()).grad[0, 0] = float("nan")
    log["nan_norm"] = nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    try:
        nn.utils.clip_grad_norm_(model.parameters(), 1.0, error_if_nonfinite=True)
        log["raised"] = None
    except RuntimeError as e:
        log["raised"] = "non-finite" in str(e)
    log["parametrized"] = [parametrize.is_parametrized(model.mix), parametrize.is_parametrized(model.mix, "bias")]
    before = model.mix.weight.detach().clone()
    parametrize.remove_parametrizations(model.mix, "weight", leave_parametrized=True)
    log["after_remove"] = [parametrize.is_parametrized(model.mix), isinstance(model.mix.weight, nn.Parameter)]
    log["removed_weight_same"] = bool(torch.equal(before, model.mix.weight.detach()))
    q = model.rot.weight
    log["orthogonality"] = (q @ q.T - torch.eye(q.shape[0], dtype=q.dtype, device=q.device)).abs().max()
    # magnitude pruning as compression scripts do it: per-tensor, structured, then global, then made permanent
    prune.l1_unstructured(model.inp, "weight", amount=0.3)
    prune.ln_structured(model.inp, "weight", amount=2, n=2, dim=0)
    prune.global_unstructured([(model.inp, "bias"), (model.mix, "weight")], pruning_method=prune.L1Unstructured,
                              amount=0.2)
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    log["pruned"] = [sorted(model.inp.state_dict()), model.inp.weight_mask.clone(), model.mix.weight_mask.clone(),
                     model.inp.weight_orig.grad.clone(), prune.is_pruned(model)]
    for mod, name in ((model.inp, "weight"), (model.inp, "bias"), (model.mix, "weight")):
        prune.remove(mod, name)
    log["pruned_final"] = [sorted(model.state_dict()), prune.is_pruned(model), model.inp.weight.detach().clone()]
    return log


def orthogonal_trace(w, x, maps=("matrix_exp", "cayley")):
    """A recurrent-style square mixing matrix kept orthogonal by the built-in parametrization while it trains."""
    log = {}
    for orthogonal_map in maps:
        lin = nn.Linear(w.shape[1], w.shape[0], bias=False).double()
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w))
        orthogonal(lin, "weight", orthogonal_map=orthogonal_map)
        opt = torch.optim.Adam(lin.parameters(), lr=0.05)
        losses = []
        for _ in range(3):
            opt.zero_grad()
            loss = (lin(lin(x)) - x.flip(-1)).pow(2).mean()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        log[orthogonal_map] = (losses, lin.weight.detach().clone(), sorted(lin.state_dict()))
    return log


def hook_trace(model, x, y):
    """Tensor hooks that rescale gradients, retain_grad on an intermediate, module forward/pre/backward hooks."""
    log = {"pre": [], "fwd": [], "bwd": []}
    handles = [
        model.inp.register_forward_pre_hook(lambda m, args: (args[0] * 2.0,)),
        model.inp.register_forward_hook(lambda m, args, out: log["fwd"].append(out.detach().clone())),
        model.head.register_forward_hook(lambda m, args, out: out + 1.0),
        model.mix.register_full_backward_hook(lambda m, gin, gout: log["bwd"].append(
            (gin[0].clone(), gout[0].clone()))),
        model.register_forward_pre_hook(lambda m, args, kwargs: log["pre"].append(sorted(kwargs)) or None,
                                        with_kwargs=True),
    ]
    xin = x.clone().requires_grad_(True)
    h = torch.tanh(model.inp(xin))
    h.retain_grad()
    h.register_hook(lambda g: g * 3.0)
    out = model.head(model.rot(F.gelu(model.mix(h)) + h))
    loss = F.cross_entropy(out, y)
    loss.backward()
    log["loss"] = loss.detach()
    log["h_grad"] = h.grad.clone()
    log["x_grad"] = xin.grad.clone()
    seen = []
    handles.append(torch.nn.modules.module.register_module_forward_hook(
        lambda m, args, out: seen.append((type(m).__name__, tuple(out.shape)))))
    log["kw"] = model(x)
    log["kw_input"] = model.rot(input=log["kw"][:, :1].expand(-1, 8))  # the input by torch's keyword name
    log["global_seen"] = seen
    for hd in handles:
        hd.remove()
    log["unhooked"] = model(x)
    a = torch.tensor([1.0, 2.0], requires_grad=True)
    b = torch.tensor([3.0], requires_grad=True)
    (ga, gb) = torch.autograd.grad((a * a).sum(), [a, b], allow_unused=True)
    log["unused_none"] = (ga, gb)
    log["unused_zero"] = torch.autograd.grad((a * a).sum(), [a, b], allow_unused=True, materialize_grads=True)
    return log


def schedule_trace(kind, steps=12):
    """(lr, momentum) per step of one scheduler set-up, the way a script logs them."""
    w = nn.Parameter(torch.ones(2))
    opt = torch.optim.SGD([w], lr=0.1, momentum=0.9)
    if kind == "sequential":
        s = lr_scheduler.SequentialLR(opt, [lr_scheduler.LinearLR(opt, 0.1, total_iters=3),
                                            lr_scheduler.ExponentialLR(opt, 0.8)], milestones=[3])
    elif kind == "chained":
        s = lr_scheduler.ChainedScheduler([lr_scheduler.StepLR(opt, 3, 0.5), lr_scheduler.ExponentialLR(opt, 0.95)])
    elif kind == "cyclic":
        s = lr_scheduler.CyclicLR(opt, 0.01, 0.1, step_size_up=3, mode="triangular2", cycle_momentum=True,
                                  base_momentum=0.8, max_momentum=0.95)
    elif kind == "onecycle3":
        s = lr_scheduler.OneCycleLR(opt, max_lr=0.5, total_steps=steps + 1, three_phase=True, pct_start=0.3)
    elif kind == "onecycle_linear":
        s = lr_scheduler.OneCycleLR(opt, max_lr=[0.5], epochs=3, steps_per_epoch=5, anneal_strategy="linear",
                                    div_factor=10.0, final_div_factor=100.0)
    elif kind == "warm_restarts":
        s = lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=2, T_mult=2, eta_min=0.001)
    log = []
    for i in range(steps):
        opt.step()
        if kind == "warm_restarts":
            s.step(i * 0.6)  # fractional epochs, as scripts pass epoch + batch / n_batches
        else:
            s.step()
        g = opt.param_groups[0]
        log.append((g["lr"], g["momentum"], s.get_last_lr()[0]))
    return log


def plateau_trace(metrics, **kw):
    w = nn.Parameter(torch.ones(2))
    opt = torch.optim.SGD([w], lr=1.0)
    s = lr_scheduler.ReduceLROnPlateau(opt, **kw)
    log = []
    for m in metrics:
        s.step(m)
        log.append((opt.param_groups[0]["lr"], s.num_bad_epochs, s.cooldown_counter, s.best))
    return log


def train_script(model, x, y, order, steps=6):
    """A full loop: DataLoader over a dict dataset, warmup then cosine, clip, a param group added mid-run,
    zero_grad(set_to_none=False), then an optimizer+scheduler checkpoint restored into a fresh pair."""
    loader = DataLoader(Subset(DictDataset(x, y), order), batch_size=4, drop_last=True)
    body = [p for n, p in model.named_parameters() if not n.startswith("head")]
    opt = torch.optim.SGD(body, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-4)
    sched = lr_scheduler.SequentialLR(opt, [lr_scheduler.LinearLR(opt, 0.2, total_iters=2),
                                            lr_scheduler.CosineAnnealingLR(opt, T_max=steps)], milestones=[2])
    log = {"loss": [], "lr": [], "norm": []}
    step, device = 0, next(model.parameters()).device
    while step < steps:
        for batch in loader:
            if step == 2:
                opt.add_param_group({"params": list(model.head.parameters()), "lr": 0.02, "momentum": 0.5})
            opt.zero_grad(set_to_none=False)
            # the loader's batches are host tensors
            loss = F.cross_entropy(model(batch["x"].to(device)), batch["y"].to(device))
            loss.backward()
            log["norm"].append(nn.utils.clip_grad_norm_(model.parameters(), 0.5).item())
            opt.step()
            sched.step()
            log["loss"].append(loss.item())
            log["lr"].append([g["lr"] for g in opt.param_groups])
            step += 1
            if step == steps:
                break
    ckpt = {"opt": opt.state_dict(), "sched": sched.state_dict()}
    opt2 = torch.optim.SGD(body, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-4)
    opt2.add_param_group({"params": list(model.head.parameters()), "lr": 0.02, "momentum": 0.5})
    sched2 = lr_scheduler.SequentialLR(opt2, [lr_scheduler.LinearLR(opt2, 0.2, total_iters=2),
                                              lr_scheduler.CosineAnnealingLR(opt2, T_max=steps)], milestones=[2])
    opt2.load_state_dict(ckpt["opt"])
    sched2.load_state_dict(ckpt["sched"])
    sched2.step()
    sched.step()
    log["resumed_lr"] = [sched2.get_last_lr(), sched.get_last_lr()]
    log["resumed_buf"] = [opt2.state[p]["momentum_buffer"].clone() for p in body]
    log["ckpt_keys"] = sorted(ckpt["sched"])
    return log


def scaler_trace(model, x, y, steps=5, inf_at=(1, 3)):
    """torch.amp.GradScaler on the CPU: an inf injected into a gradient skips that step and backs the scale off."""
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 8, growth_factor=2.0, backoff_factor=0.5,
                                  growth_interval=2)
    log = {"loss": [], "scale": [], "norm": []}
    for step in range(steps):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        scaler.scale(loss).backward()
        if step in inf_at:
            model.inp.weight.grad[0, 0] = float("inf")
        scaler.unscale_(opt)
        log["norm"].append(nn.utils.clip_grad_norm_(model.parameters(), 10.0).item())
        scaler.step(opt)
        scaler.update()
        log["loss"].append(loss.item())
        log["scale"].append(scaler.get_scale())
    log["state"] = scaler.state_dict()
    return log


def rng_trace(seed):
    """manual_seed / get_rng_state / set_rng_state replay, and a seeded generator's replay, within one library."""
    torch.manual_seed(seed)
    state = torch.get_rng_state()
    a = torch.randn(4)
    b = torch.rand(3)
    torch.set_rng_state(state)
    g = torch.Generator().manual_seed(seed)
    gs = g.get_state()
    c = torch.randperm(6, generator=g)
    g.set_state(gs)
    return a, b, torch.randn(4), torch.rand(3), c, torch.randperm(6, generator=g), state.dtype
