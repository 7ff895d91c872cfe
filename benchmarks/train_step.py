"""Training step time, vibetensor vs PyTorch eager on the same device in one run, as ratios (vt / torch).

  mlp:     1024-4096-1024 MLP, batch 256, float32, MSE loss, AdamW (goal <= 1.1x on the H100)
  minigpt: 6 layers, d=256, 4 heads, context 128, batch 64, cross-entropy, AdamW (goal <= 1.2x on the H100)
  vit:     ViT on 3x32x32 images, patch 4 (65 tokens), d=192, 6 layers, 3 heads, batch 128, cross-entropy,
           AdamW (goal <= 1.0x on the H100)
Both sides build their models from the same code (examples/minigpt.py's and examples/vit.py's model_class
over torch or vibetensor.torch) with identical shapes; a step is forward + backward + optimizer step, timed after
warm-up with a device synchronize closing each timed loop; --rounds alternates the two sides.
--profile adds, per model and side, the GPU kernel count and busy time per step (CUPTI through torch.profiler,
which sees every kernel of the process, vibetensor's included) beside the wall time, and the top kernels by time
(--top N, 20 by default): busy << wall means the step is host-bound. --graph captures each side's whole step
(forward, backward and a capturable AdamW step) as one CUDA graph and times its replays: the step without host
overhead on either side.
--compile adds torch.compile's step (the model compiled in its default mode, fused AdamW; compile and warm-up not
timed), eager even beside --graph, so that `--graph --compile` sets vibetensor's captured step against the
compiled one; --compile-graph captures the compiled step as well (the closest to mode="reduce-overhead").
--amp bfloat16 (or float16) runs every side's forward and loss inside an autocast region of that dtype (float32
weights and optimizer, mixed-precision activations: the usual AMP recipe; float16 without a GradScaler here).
Run: python benchmarks/train_step.py [--device cuda] [--models mlp,minigpt,vit] [--json out.json] [--profile]
     [--graph] [--compile] [--compile-graph] [--amp bfloat16]"""
import contextlib
import argparse
import importlib.util
import pathlib
import statistics

from _timing import median_time, write_results


def mlp(m):
    nn = m.nn
    return nn.Sequential(nn.Linear(1024, 4096), nn.GELU(), nn.Linear(4096, 1024))


def example_class(example, m):
    """examples/<example>.py's model class over m (torch or vibetensor.torch)."""
    path = pathlib.Path(__file__).resolve().parent.parent / "examples" / f"{example}.py"
    spec = importlib.util.spec_from_file_location(f"{example}_example", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.model_class(m)


def step_fn(m, name, device, graphed=False, compiled=False, amp=None):
    if name == "mlp":
        model = mlp(m).to(device)
        x, y = m.randn(256, 1024, device=device), m.randn(256, 1024, device=device)

        def loss_fn():
            return ((model(x) - y) ** 2).mean()
    elif name == "vit":
        model = example_class("vit", m)(d=192, depth=6, heads=3).to(device)
        images, labels = m.randn(128, 3, 32, 32, device=device), m.randint(0, 10, (128,), device=device)

        def loss_fn():
            return m.nn.functional.cross_entropy(model(images), labels)
    else:
        vocab, ctx = 96, 128
        model = example_class("minigpt", m)(vocab, 256, 4, 6, ctx).to(device)
        idx = m.randint(0, vocab, (64, ctx), device=device)
        tgt = m.randint(0, vocab, (64 * ctx,), device=device)

        def loss_fn():
            return m.nn.functional.cross_entropy(model(idx).reshape(-1, vocab), tgt)
    if compiled:  # torch only: the model through torch.compile (the loss closures read `model` when called)
        model = m.compile(model)
    opt = m.optim.AdamW(model.parameters(), lr=1e-4, capturable=graphed, **({"fused": True} if compiled else {}))

    def region():
        return m.autocast(device.split(":")[0], dtype=getattr(m, amp)) if amp else contextlib.nullcontext()

    def step():
        with region():
            loss = loss_fn()
        opt.zero_grad()
        loss.backward()
        opt.step()
    if not graphed:
        return step
    # The whole step as one CUDA graph (torch's whole-network capture recipe): warm-up steps on a side stream,
    # gradients set to None so that the captured backward allocates them from the graph's pool, then one capture
    # of forward, backward and the capturable AdamW step; each replay is the next training step.
    side = m.cuda.Stream()
    side.wait_stream(m.cuda.current_stream())
    with m.cuda.stream(side):
        for _ in range(3):
            step()
    m.cuda.current_stream().wait_stream(side)
    opt.zero_grad(set_to_none=True)
    graph = m.cuda.CUDAGraph()
    with m.cuda.graph(graph):
        with region():
            loss = loss_fn()
        loss.backward()
        opt.step()
    return graph.replay


def profile_step(step, sync, label, steps=3, top=20):
    """Kernels per step, GPU busy ms per step and the wall ms per step over `steps` profiled steps; the `top`
    kernels by time."""
    import time

    from torch.profiler import ProfilerActivity, profile

    step()
    sync()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        sync()
        wall = (time.perf_counter() - t0) / steps
    kernels = [e for e in prof.events() if e.device_type.name == "CUDA"]
    busy = sum(e.device_time for e in kernels) / steps / 1e3
    print(f"  {label}: {len(kernels) / steps:.0f} kernels/step, GPU busy {busy:.2f} ms of {wall * 1e3:.2f} ms wall")
    totals = {}
    for e in kernels:
        n, t = totals.get(e.name, (0, 0.0))
        totals[e.name] = (n + 1, t + e.device_time)
    for name, (n, t) in sorted(totals.items(), key=lambda kv: -kv[1][1])[:top]:
        print(f"    {t / steps / 1e3:8.3f} ms {n // steps:5d}x  {name[:110]}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--models", default="mlp,minigpt,vit")
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--top", type=int, default=20, help="kernels listed per side by --profile")
    ap.add_argument("--graph", action="store_true", help="both sides replay the whole step as one CUDA graph")
    ap.add_argument("--compile", action="store_true",
                    help="a third column: torch.compile'd model with fused AdamW (compile time not counted)")
    ap.add_argument("--compile-graph", action="store_true", help="the compiled step captured as one CUDA graph too")
    ap.add_argument("--amp", choices=["bfloat16", "float16"], help="forward and loss in an autocast region")
    args = ap.parse_args()
    import torch
    import vibetensor.torch as vt

    sync_t = torch.cuda.synchronize if args.device.startswith("cuda") else None
    sync_v = vt.cuda.synchronize if args.device.startswith("cuda") else None
    rows = []
    if (args.graph or args.compile_graph) and not args.device.startswith("cuda"):
        ap.error("--graph and --compile-graph need --device cuda")
    args.compile = args.compile or args.compile_graph
    mode = "whole step as one CUDA graph, capturable AdamW" if args.graph else "eager"
    mode += f", autocast {args.amp}" if args.amp else ""
    extra = f"{'compile ms':>12}{'vt/compile':>11}" if args.compile else ""
    compile_mode = "torch.compile step captured as one CUDA graph" if args.compile_graph else "torch.compile eager"
    print(f"{'model':<10}{'vibetensor ms':>15}{'torch ms':>12}{'ratio':>8}{extra}   device {args.device}, {mode}"
          + (f"; {compile_mode}" if args.compile else ""))
    for name in args.models.split(","):
        # Rounds alternate between the two sides so that a slow spell of the host hits both; medians of rounds.
        sv = step_fn(vt, name, args.device, args.graph, amp=args.amp)
        st = step_fn(torch, name, args.device, args.graph, amp=args.amp)
        sc = (step_fn(torch, name, args.device, args.compile_graph, compiled=True, amp=args.amp)
              if args.compile else None)
        tvs, tts, tcs = [], [], []
        for _ in range(args.rounds):
            tvs.append(median_time(sv, args.iters, repeats=3, warmup=2, sync=sync_v))
            tts.append(median_time(st, args.iters, repeats=3, warmup=2, sync=sync_t))
            if sc:
                tcs.append(median_time(sc, args.iters, repeats=3, warmup=3, sync=sync_t))
        tv, tt = statistics.median(tvs), statistics.median(tts)
        row = {"model": name, "mode": mode, "vt_ms": tv * 1e3, "torch_ms": tt * 1e3, "ratio": tv / tt}
        line = f"{name:<10}{tv * 1e3:>15.2f}{tt * 1e3:>12.2f}{tv / tt:>8.2f}"
        if sc:
            tc = statistics.median(tcs)
            row.update(torch_compile_ms=tc * 1e3, ratio_vs_compile=tv / tc, compile_mode=compile_mode)
            line += f"{tc * 1e3:>12.2f}{tv / tc:>11.2f}"
        rows.append(row)
        print(line)
        if args.profile and sync_v:
            profile_step(step_fn(vt, name, args.device, args.graph, amp=args.amp), sync_v, "vibetensor", top=args.top)
            profile_step(step_fn(torch, name, args.device, args.graph, amp=args.amp), sync_t, "torch", top=args.top)
            if sc:
                profile_step(sc, sync_t, "torch.compile", top=args.top)
    if args.json:
        write_results(args.json, rows, device=args.device, torch=torch.__version__)


if __name__ == "__main__":
    main()
