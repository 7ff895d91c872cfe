"""vt-fabric: the command line of vibetensor's Fabric layer.

    vt-fabric topo                 link matrix, P2P capabilities, devices (like nvidia-smi topo -m, and more)
    vt-fabric topo --json          the topology document
    vt-fabric topo --from F.json   render a saved document (no GPU needed)
    vt-fabric topo --measure       add bandwidth/latency matrices (copy engines, SMs, host, local)
    vt-fabric topo --rings         ring plan over the fastest links
    vt-fabric topo --plot F.png    heatmaps
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
    console.print("Legend:\n" + render.legend_text(render.LEGEND))
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
