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
    }
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
