"""A whole training step - forward, backward and a capturable AdamW step - captured as one CUDA graph and
replayed, torch's whole-network capture recipe, on examples/minigpt.py's model: every replay is the next training
step, and eight steps (three eager warm-up steps, then five replays with new batches copied into the static
inputs) equal eight eager steps, losses and parameters. Also capturable AdamW against torch's on the GPU.

GPU run: PYTHONPATH=python python -m pytest tests/cuda/test_graph_training_step.py -q -p no:cacheprovider
"""
import importlib.util
import pathlib

import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from cuda_helpers import CUDA_MARKS, ON_CUDA

pytestmark = CUDA_MARKS + [pytest.mark.skipif(not ON_CUDA, reason="CUDA graphs and capturable steps on a GPU")]
VOCAB, D, HEADS, LAYERS, CTX, BATCH = 29, 32, 2, 2, 16, 4


def minigpt_class():
    path = pathlib.Path(__file__).resolve().parents[2] / "examples" / "minigpt.py"
    spec = importlib.util.spec_from_file_location("minigpt_example", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.model_class(vt)


def batches(n, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.integers(0, VOCAB, (BATCH, CTX)), rng.integers(0, VOCAB, BATCH * CTX)) for _ in range(n)]


def cuda(a):
    return vt.from_numpy(np.ascontiguousarray(a)).to("cuda")


def train(data, graphed, warmup=3):
    vt.manual_seed(0)
    model = minigpt_class()(VOCAB, D, HEADS, LAYERS, CTX).to("cuda")
    opt = vt.optim.AdamW(model.parameters(), lr=3e-3, capturable=True)

    def step(idx, tgt):
        loss = vt.nn.functional.cross_entropy(model(idx).reshape(-1, VOCAB), tgt)
        loss.backward()
        opt.step()
        return loss

    losses = []
    if not graphed:
        for idx, tgt in data:
            opt.zero_grad(set_to_none=True)
            losses.append(float(step(cuda(idx), cuda(tgt))))
        return losses, [p.detach().to("cpu").numpy() for p in model.parameters()], opt

    static_idx, static_tgt = cuda(data[0][0]), cuda(data[0][1])
    side = vt.cuda.Stream()
    side.wait_stream(vt.cuda.current_stream())
    with vt.cuda.stream(side):  # warm-up steps on a side stream, as torch's recipe
        for idx, tgt in data[:warmup]:
            static_idx.copy_(cuda(idx))
            static_tgt.copy_(cuda(tgt))
            opt.zero_grad(set_to_none=True)
            losses.append(float(step(static_idx, static_tgt)))
    vt.cuda.current_stream().wait_stream(side)
    opt.zero_grad(set_to_none=True)  # the captured backward allocates the gradients from the graph's pool
    g = vt.cuda.CUDAGraph()
    with vt.cuda.graph(g):
        static_loss = step(static_idx, static_tgt)
    for idx, tgt in data[warmup:]:
        static_idx.copy_(cuda(idx))
        static_tgt.copy_(cuda(tgt))
        g.replay()
        losses.append(float(static_loss))
    return losses, [p.detach().to("cpu").numpy() for p in model.parameters()], opt


def test_whole_training_step_replays_as_the_next_step():
    data = batches(8)
    eager_losses, eager_params, _ = train(data, graphed=False)
    graph_losses, graph_params, opt = train(data, graphed=True)
    np.testing.assert_allclose(graph_losses, eager_losses, rtol=1e-5, atol=1e-6)
    assert eager_losses[-1] < eager_losses[0]  # it trains
    # Two eager runs differ in the same way: embedding's backward adds rows with atomics in no fixed order, and
    # Adam's m / sqrt(v) turns last-bit differences of near-zero gradients into parameter differences of a small
    # fraction of lr (3e-3) per step (1.7e-4 seen on the H200); the losses above agree to 1e-5.
    for a, b in zip(graph_params, eager_params):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=6e-4)
    steps = {float(st["step"]) for st in opt.state.values()}
    assert steps == {8.0}  # each replay advanced the device-side step counts


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_capturable_adamw_matches_torch_on_the_gpu(dtype, rng):
    shapes = [(), (1,), (7,), (33, 17), (0, 4), (130, 257), (70001,)]
    vals = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    tps = [torch.nn.Parameter(torch.from_numpy(v.copy()).to("cuda", getattr(torch, dtype))) for v in vals]
    vps = [vt.nn.Parameter(vt.from_numpy(v.copy()).to("cuda").to(getattr(vt, dtype))) for v in vals]
    kw = dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1, capturable=True)
    # torch's fused kernel, like vibetensor's, computes in float and rounds once (its foreach path rounds each
    # intermediate of a 16-bit param to 16 bits)
    topt, vopt = torch.optim.AdamW(tps, fused=True, **kw), vt.optim.AdamW(vps, **kw)
    for _ in range(4):
        for tp, vp in zip(tps, vps):
            g = rng.standard_normal(tuple(tp.shape)).astype(np.float32)
            tp.grad = torch.from_numpy(g.copy()).to("cuda", tp.dtype)
            vp.grad = vt.from_numpy(g.copy()).to("cuda").to(vp.dtype)
        topt.step()
        vopt.step()
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == "float32" else dict(rtol=2 ** -6, atol=2 ** -8)
    for tp, vp in zip(tps, vps):
        np.testing.assert_allclose(vp.detach().to("cpu").to(vt.float32).numpy(),
                                   tp.detach().float().cpu().numpy(), **tol)
        assert float(vopt.state[id(vp)]["step"]) == float(topt.state[tp]["step"]) == 4.0
