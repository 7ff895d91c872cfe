"""Per-op eager overhead on tiny tensors: vibetensor vs PyTorch in one run, as a ratio (vt time / torch time).

Goal: <= 0.5x PyTorch on the CPU, aiming at 0.33x. Run: python benchmarks/eager_overhead.py
[--device cpu] [--json out.json]. Timings are medians of several repeats of a tight loop.
"""
import argparse

from _timing import median_time, write_results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json")
    ap.add_argument("--only", help="comma-separated substrings: run the rows whose names contain one")
    args = ap.parse_args()
    import torch

    import vibetensor.torch as vt

    torch.set_num_threads(1)
    a_t, b_t = torch.ones(4, device=args.device), torch.ones(4, device=args.device)
    a_v, b_v = vt.ones(4, device=args.device), vt.ones(4, device=args.device)
    m_t, m_v = torch.ones(4, 4, device=args.device), vt.ones(4, 4, device=args.device)
    i_t, i_v = torch.tensor([2, 0], device=args.device), vt.tensor([2, 0], device=args.device)
    x_t, x_v = torch.ones(2, 3, 4, device=args.device), vt.ones(2, 3, 4, device=args.device)
    dev = args.device
    logits_t, logits_v = torch.ones(4, 10, device=dev), vt.ones(4, 10, device=dev)
    cls_t, cls_v = torch.tensor([1, 3, 0, 9], device=dev), vt.tensor([1, 3, 0, 9], device=dev)
    img_t, img_v = torch.ones(1, 1, 4, 4, device=dev), vt.ones(1, 1, 4, 4, device=dev)
    F_t, F_v = torch.nn.functional, vt.nn.functional

    def write(m):
        def go():
            m[:, 1] = 0.5
        return go
    cases = {
        "add": (lambda: a_v + b_v, lambda: a_t + b_t),
        "mul": (lambda: a_v * b_v, lambda: a_t * b_t),
        "add scalar": (lambda: a_v + 1.0, lambda: a_t + 1.0),
        "sum": (lambda: a_v.sum(), lambda: a_t.sum()),
        "view": (lambda: a_v.view(2, 2), lambda: a_t.view(2, 2)),
        "vt.relu()": (lambda: vt.relu(a_v), lambda: torch.relu(a_t)),
        "max": (lambda: a_v.max(), lambda: a_t.max()),
        "m[1]": (lambda: m_v[1], lambda: m_t[1]),
        "m[:, 1:3]": (lambda: m_v[:, 1:3], lambda: m_t[:, 1:3]),
        "m[:, 1] = 0.5": (write(m_v), write(m_t)),
        "m @ m": (lambda: m_v @ m_v, lambda: m_t @ m_t),
        "m.tril()": (lambda: m_v.tril(), lambda: m_t.tril()),
        "m[idx]": (lambda: m_v[i_v], lambda: m_t[i_t]),
        "a.to(device)": (lambda: a_v.to(a_v.device), lambda: a_t.to(a_t.device)),
        "vt.tensor(0.5)": (lambda: vt.tensor(0.5), lambda: torch.tensor(0.5)),
        "x3 @ m": (lambda: x_v @ m_v, lambda: x_t @ m_t),
        "m.narrow(1, 1, 2)": (lambda: m_v.narrow(1, 1, 2), lambda: m_t.narrow(1, 1, 2)),
        "full((4,), 2.0)": (lambda: vt.full((4,), 2.0, device=dev), lambda: torch.full((4,), 2.0, device=dev)),
        "tensor([1., 2.])": (lambda: vt.tensor([1.0, 2.0], device=dev), lambda: torch.tensor([1.0, 2.0], device=dev)),
        "F.pad(m, (1, 1))": (lambda: vt.nn.functional.pad(m_v, (1, 1)), lambda: torch.nn.functional.pad(m_t, (1, 1))),
        "einsum ij,jk->ik": (lambda: vt.einsum("ij,jk->ik", m_v, m_v), lambda: torch.einsum("ij,jk->ik", m_t, m_t)),
        "diag(a)": (lambda: vt.diag(a_v), lambda: torch.diag(a_t)),
        # Ops that torch runs as one kernel and a composition could run as several (on a GPU, each a launch).
        "mean": (lambda: a_v.mean(), lambda: a_t.mean()),
        "m.mean(1)": (lambda: m_v.mean(1), lambda: m_t.mean(1)),
        "std": (lambda: a_v.std(), lambda: a_t.std()),
        "m.var(1)": (lambda: m_v.var(1), lambda: m_t.var(1)),
        "norm": (lambda: a_v.norm(), lambda: a_t.norm()),
        "m.norm(dim=1)": (lambda: m_v.norm(dim=1), lambda: m_t.norm(dim=1)),
        "F.cross_entropy": (lambda: F_v.cross_entropy(logits_v, cls_v), lambda: F_t.cross_entropy(logits_t, cls_t)),
        "F.embedding": (lambda: F_v.embedding(i_v, m_v), lambda: F_t.embedding(i_t, m_t)),
        "F.interpolate x2": (lambda: F_v.interpolate(img_v, scale_factor=2),
                             lambda: F_t.interpolate(img_t, scale_factor=2)),
        "m.flip(0)": (lambda: m_v.flip(0), lambda: m_t.flip(0)),
        "a.roll(1)": (lambda: a_v.roll(1), lambda: a_t.roll(1)),
        "a.lerp_(b, 0.5)": (lambda: a_v.lerp_(b_v, 0.5), lambda: a_t.lerp_(b_t, 0.5)),
        "a.addcmul_(b, b)": (lambda: a_v.addcmul_(b_v, b_v, value=0), lambda: a_t.addcmul_(b_t, b_t, value=0)),
        "m.softmax(-1)": (lambda: m_v.softmax(-1), lambda: m_t.softmax(-1)),
    }
    if args.only:
        keys = args.only.split(",")
        cases = {k: v for k, v in cases.items() if any(s in k for s in keys)}
    rows = []
    print(f"{'op':<20}{'vibetensor us':>15}{'torch us':>12}{'ratio':>8}")
    for name, (fv, ft) in cases.items():
        tv, tt = median_time(fv, 20000, warmup=1000), median_time(ft, 20000, warmup=1000)
        rows.append({"op": name, "vt_us": tv * 1e6, "torch_us": tt * 1e6, "ratio": tv / tt})
        print(f"{name:<20}{tv * 1e6:>15.2f}{tt * 1e6:>12.2f}{tv / tt:>8.2f}")
    if args.json:
        write_results(args.json, rows, device=args.device, torch=torch.__version__)


if __name__ == "__main__":
    main()
