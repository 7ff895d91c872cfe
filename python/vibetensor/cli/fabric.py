"""vt-fabric: the command line of vibetensor's Fabric layer.

    vt-fabric topo                 link matrix, P2P capabilities, devices (like nvidia-smi topo -m, and more)
    vt-fabric topo --json          the topology document
    vt-fabric topo --from F.json   render a saved document (no GPU needed)
    vt-fabric topo --measure       add bandwidth/latency matrices (copy engines, SMs, host, local)
    vt-fabric topo --rings         ring plan over the fastest links
    vt-fabric topo --plot F.png    heatmaps
    vt-fabric bench allreduce      collectives benchmarked as nccl-tests does, every backend side by side
Errors (bad files, unwritable paths) are one line and a non-zero exit.
"""
from __future__ import annotations

import sys

import click


def _rich_console():
    """A rich Console when stdout is a terminal and rich is installed, else None (plain text)."""
    if not sys.stdout.isatty():
        return None
    try:
        from rich.console import Console
    except ImportError:
        return None
    return Console(highlight=False)


def _print_rich(console, doc, rings):
    from rich.table import Table

    from vibetensor.topology import render

    def table(title, header, rows):
        t = Table(title=title, title_justify="left")
        for h in header:
            t.add_column(h)
        for r in rows:
            t.add_row(*[str(c) for c in r])
        console.print(t)

    for line in render.summary_lines(doc):
        console.print(line)
    table("Devices", *render.device_rows(doc))
    table("Links", *render.link_matrix(doc))
    console.print("Legend:\n" + render.legend_text(render.LEGEND + ((render.EMU_LEGEND,) if doc.get("emulated") else ())))
    table("P2P (access / atomics / functional check)", *render.p2p_matrix(doc))
    console.print(render.legend_text(render.P2P_LEGEND))
    if rings is not None:
        console.print(render.rings_text(doc, rings))
    if doc.get("measurements"):
        console.print(render.measurements_text(doc["measurements"]))
    if doc.get("unsupported"):
        console.print("[dim]Not supported on this platform: " + "; ".join(doc["unsupported"]) + "[/dim]")


def _check_writable(path):
    """Fails early, before any probing, if the plot could not be written; creates nothing."""
    import os

    target = path if os.path.exists(path) else (os.path.dirname(os.path.abspath(path)) or ".")
    if os.path.isdir(path) or not os.access(target, os.W_OK):
        raise click.ClickException(f"cannot write plot to {path}: "
                                   f"{'is a directory' if os.path.isdir(path) else 'permission denied or no such directory'}")


def _write_plot(doc, path):
    """Renders into memory, then writes the file in one go and checks the write (a full disk or /dev/full
    reports its error at flush). A write that fails removes the file it created, leaving no empty file."""
    import io
    import os

    from vibetensor.topology.plot import plot as draw

    buf = io.BytesIO()
    draw(doc, buf)
    existed = os.path.exists(path)
    try:
        with open(path, "wb") as f:
            f.write(buf.getvalue())
            f.flush()
    except OSError as e:
        if not existed:
            try:
                os.remove(path)
            except OSError:
                pass
        raise click.ClickException(f"cannot write plot to {path}: {e.strerror}") from None


@click.group(help="vibetensor Fabric: GPU topology, peer access and collectives inside one process.")
def main():
    pass


@main.command(help="Show how this machine's GPUs are connected.")
@click.option("--json", "as_json", is_flag=True, help="Print the topology document as JSON.")
@click.option("--from", "from_file", type=click.Path(dir_okay=False), help="Read a saved topology document.")
@click.option("--measure", is_flag=True, help="Measure peer/host/local bandwidth and peer latency.")
@click.option("--measure-size", default="64MiB", show_default=True, help="Bytes per measured copy.")
@click.option("--rings", is_flag=True, help="Plan rings over the fastest links.")
@click.option("--plot", type=click.Path(dir_okay=False), help="Write heatmaps to this PNG file.")
@click.option("--no-check", is_flag=True, help="Skip the functional P2P check (report attributes only).")
def topo(as_json, from_file, measure, measure_size, rings, plot, no_check):
    from vibetensor import topology

    if plot:
        _check_writable(plot)
    try:
        if from_file:
            doc = topology.load(from_file)
            if measure:
                raise click.ClickException("--measure needs the live machine; it cannot be combined with --from")
        else:
            doc = topology.probe(functional_check=not no_check)
            if measure and doc["devices"]:
                doc = topology.measure(doc, _parse_size(measure_size), progress=_progress())
    except topology.TopologyError as e:
        raise click.ClickException(str(e)) from None
    try:
        ring_plan = topology.plan_rings(doc) if rings else None
        if plot and doc["devices"]:
            _write_plot(doc, plot)
        if as_json:
            if ring_plan is not None:
                doc = dict(doc, rings=ring_plan)
            click.echo(topology.dumps(doc))
            return
        console = _rich_console()
        if console is not None and doc["devices"]:
            _print_rich(console, doc, ring_plan)
        else:
            click.echo(topology.render_text(doc, ring_plan))
    except click.ClickException:
        raise
    except Exception as e:  # noqa: BLE001  validate() should catch every bad document; this says so if not
        where = f" of {from_file}" if from_file else ""
        raise click.ClickException(f"cannot render the topology{where}: {type(e).__name__}: {e}") from None
    if plot and doc["devices"]:
        click.echo(f"wrote {plot}")


@main.command(help="Benchmark a collective over every device, as nccl-tests does (see vibetensor/cli/bench.py). "
                   "Under torchrun: one process per GPU with NCCL between them.")
@click.argument("collective", type=click.Choice(["allreduce", "reduce_scatter", "all_gather"]))
@click.option("-b", "--minbytes", default="8", show_default=True, help="Smallest size (bytes, or K/M/G).")
@click.option("-e", "--maxbytes", default="64M", show_default=True, help="Largest size.")
@click.option("-f", "--stepfactor", default=2, show_default=True, help="Size multiplier between rows.")
@click.option("-n", "--iters", default=20, show_default=True, help="Timed iterations per size.")
@click.option("-w", "--warmup_iters", default=5, show_default=True, help="Untimed iterations first.")
@click.option("-d", "--datatype", default="float32", show_default=True,
              type=click.Choice(["float32", "bfloat16", "float16", "float64"]))
@click.option("-o", "--op", default="sum", show_default=True, type=click.Choice(["sum", "avg", "max", "min"]))
@click.option("--backend", default="all", show_default=True,
              help="Comma-separated backends (ring, p2p, nccl; ring/one_shot, ring/two_shot, ring/ring pin the ring "
                   "backend's algorithm), or 'all' for every one this machine can run.")
@click.option("--mode", default="pipelined", show_default=True, type=click.Choice(["pipelined", "events", "graph"]))
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Write the rows as JSON.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), help="Write the rows as CSV.")
@click.option("--plot", type=click.Path(dir_okay=False), help="Plot busbw against size per backend (PNG).")
@click.option("--check", "check_runs", type=int, default=0,
              help="Instead of timing: N randomized all_reduce cases against a float64 reference (#wrong must be 0).")
@click.option("--tune", is_flag=True, help="Instead of timing: measure the ring algorithms' crossover sizes on this "
                                           "machine and save the table 'auto' uses.")
def bench(collective, minbytes, maxbytes, stepfactor, iters, warmup_iters, datatype, op, backend, mode, json_path,
          csv_path, plot, check_runs, tune):
    import os

    os.environ.setdefault("NCCL_NVLS_ENABLE", "0")
    from vibetensor.cli import bench as B
    import vibetensor.cuda as vcuda

    try:
        lo, hi = B.parse_size(minbytes), B.parse_size(maxbytes)
        B.sizes(lo, hi, stepfactor)
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    if iters < 1 or warmup_iters < 0:
        raise click.ClickException("-n must be >= 1 and -w >= 0")
    for p in (json_path, csv_path, plot):
        if p:
            _check_writable(p)
    if B.launched_by_torchrun():  # one process per GPU, NCCL between them
        rows = B.distributed_bench(B.KINDS[collective], lo, hi, stepfactor, iters, warmup_iters, datatype, op,
                                   emit=click.echo)
        if rows is not None:
            B.write_outputs(rows, {"collective": collective, "mode": "pipelined", "launcher": "torchrun"},
                            json_path, csv_path, plot)
        return
    if not vcuda.is_available() or vcuda.device_count() < 2:
        reason = vcuda.unavailable_reason() or f"{vcuda.device_count()} CUDA device"
        click.echo(f"vt-fabric bench: needs 2 or more CUDA devices ({reason}); on one GPU set VT_EMULATE_DEVICES=N")
        return
    from vibetensor.fabric import nccl, ring

    runnable = (["ring"] if ring.available() and datatype in ring.DTYPES else []) + ["p2p"] + (
        ["nccl"] if nccl.available() and not vcuda.is_emulated() else [])
    wanted = runnable if backend == "all" else [b.strip() for b in backend.split(",")]
    for b in wanted:
        if b.partition("/")[0] not in runnable or (b.partition("/")[2] not in ("", *ring.ALGORITHMS)):
            raise click.ClickException(f"backend {b!r} cannot run here (runnable: {', '.join(runnable)})")
    kind = B.KINDS[collective]
    n = vcuda.device_count()
    for line in B.environment(n):
        click.echo(line)
    if check_runs or tune:
        if not ring.available():
            raise click.ClickException("--check and --tune run the ring backend, which was not built here")
        if tune:
            path, measured = B.tune(n, datatype, iters, warmup_iters, hi, progress=_progress())
            for size, t in measured.items():
                click.echo(f"{size:>12} " + "  ".join(f"{a} {us:9.1f} us" for a, us in t.items()))
            click.echo(f"saved the crossover table to {path}")
            return
        runs, wrong, failures = B.check_random(n, check_runs, wanted[0].partition("/")[0] if backend != "all"
                                               else "ring", progress=_progress())
        click.echo(f"# randomized all_reduce: {runs} cases, #wrong {wrong}")
        for f in failures:
            click.echo(f"#   {f}")
        if wrong:
            raise SystemExit(1)
        return
    click.echo(f"# {collective}, mode {mode}, busbw = algbw x {'2(n-1)/n' if kind == 'all_reduce' else '(n-1)/n'}, "
               f"n = {n}")
    rows = B.bench(kind, wanted, lo, hi, stepfactor, iters, warmup_iters, datatype, op, mode, progress=_progress())
    for line in B.format_rows(rows):
        click.echo(line)
    meta = {"collective": collective, "mode": mode, "devices": n, "emulated": vcuda.emulation_label(),
            "title": f"{collective} over {n} devices ({mode}{', emulated' if vcuda.is_emulated() else ''})"}
    B.write_outputs(rows, meta, json_path, csv_path, plot)


def _parse_size(text: str) -> int:
    units = {"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "kb": 1000, "mb": 10**6, "gb": 10**9, "b": 1}
    t = text.strip().lower()
    for u, mult in units.items():
        if t.endswith(u) and t[: -len(u)].strip().isdigit():
            return int(t[: -len(u)]) * mult
    if t.isdigit():
        return int(t)
    raise click.ClickException(f"bad --measure-size {text!r}; use e.g. 64MiB")


def _progress():
    """Progress on stderr while measuring (a rich bar on a terminal, dots otherwise)."""
    if sys.stderr.isatty():
        try:
            from rich.progress import Progress

            bar = Progress(transient=True)
            bar.start()
            task = bar.add_task("measuring", total=None)

            def update(done, total, label):
                bar.update(task, total=total, completed=done, description=label)
                if done == total:
                    bar.stop()

            return update
        except ImportError:
            pass

    def dots(done, total, label):
        click.echo("." if done < total else " done\n", nl=False, err=True)

    return dots


if __name__ == "__main__":
    main()
