"""`--plot FILE.png`: heatmaps of the link-type matrix and, when measured, of peer bandwidth (matplotlib)."""
from __future__ import annotations

from .schema import link_map, link_rank


def plot(doc: dict, path: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise RuntimeError("--plot needs matplotlib: pip install matplotlib") from None
    n = len(doc["devices"])
    links = link_map(doc)
    m = doc.get("measurements") or {}
    panels = [("Link type", None)] + [(title, m[key]) for key, title in
                                       (("ce_unidir_gbps", "CE peer GB/s (unidir)"),
                                        ("sm_unidir_gbps", "SM peer GB/s (unidir)")) if key in m]
    host_bw = "host_to_device_gbps" in m
    fig, axes = plt.subplots(1, len(panels) + host_bw, figsize=(4.5 * (len(panels) + host_bw), 4), squeeze=False)
    if host_bw:  # per-GPU host and local copy bandwidth as grouped bars
        ax = axes[0][-1]
        width = 0.25
        for k, (key, label) in enumerate((("host_to_device_gbps", "H2D"), ("device_to_host_gbps", "D2H"),
                                          ("device_local_gbps", "D2D local"))):
            ax.bar([i + (k - 1) * width for i in range(n)], m[key], width, label=label)
        ax.set_yscale("log")
        ax.set_xticks(range(n), [f"GPU{i}" for i in range(n)])
        ax.set_ylabel("GB/s")
        ax.set_title("Host and local copies")
        ax.legend()
    for ax, (title, mat) in zip(axes[0], panels):
        if mat is None:  # link types: colour by rank, label with the type
            ranks = sorted({link_rank(lk) for lk in doc["links"]})
            grid = [[len(ranks) if s == t else ranks.index(link_rank(links[(s, t)])) for t in range(n)]
                    for s in range(n)]
            labels = [["X" if s == t else links[(s, t)]["type"] for t in range(n)] for s in range(n)]
        else:
            grid = [[0.0 if v is None else v for v in row] for row in mat]
            labels = [["-" if v is None else f"{v:.0f}" for v in row] for row in mat]
        im = ax.imshow(grid, cmap="viridis")
        for s in range(n):
            for t in range(n):
                ax.text(t, s, labels[s][t], ha="center", va="center", color="w", fontsize=8)
        ax.set_title(title)
        ax.set_xticks(range(n), [f"GPU{i}" for i in range(n)], rotation=90)
        ax.set_yticks(range(n), [f"GPU{i}" for i in range(n)])
        if mat is not None:
            fig.colorbar(im, ax=ax, shrink=0.8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
