"""vt-fabric topo through click's runner: golden renderings, JSON, rings, plots, the no-GPU path, and the
error paths (one line, non-zero exit, no traceback)."""
import json

import pytest
from click.testing import CliRunner
from conftest import FIXTURES

import vibetensor.torch as vt
from vibetensor.cli.fabric import main
from vibetensor.topology import load


def run(*args):
    return CliRunner().invoke(main, ["topo", *args])


def test_golden_rendering(fixture_name):
    r = run("--from", str(FIXTURES / f"{fixture_name}.json"), "--rings")
    assert r.exit_code == 0, r.output
    assert r.output == (FIXTURES / f"{fixture_name}.golden.txt").read_text()


def test_json_round_trip(fixture_name):
    path = FIXTURES / f"{fixture_name}.json"
    r = run("--from", str(path), "--json")
    assert r.exit_code == 0
    assert json.loads(r.output) == load(path)


def test_json_with_rings(fixture_name):
    r = run("--from", str(FIXTURES / f"{fixture_name}.json"), "--json", "--rings")
    rings = json.loads(r.output)["rings"]
    assert rings and all(sorted(ring) == list(range(len(ring))) for ring in rings)


def test_plot_writes_png(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "topo.png"
    r = run("--from", str(FIXTURES / "dgx_h100_nvswitch_8gpu.json"), "--plot", str(out))
    assert r.exit_code == 0, r.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _one_line_error(r):
    assert r.exit_code != 0
    assert "Traceback" not in r.output
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), r.output
    return lines[0]


def test_malformed_file(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text("{ not json")
    assert "not valid JSON" in _one_line_error(run("--from", str(p)))


def test_wrong_version(tmp_path):
    doc = json.loads((FIXTURES / "nvlink_pair_2gpu.json").read_text())
    doc["schema"] = "vibetensor.topology/0"
    p = tmp_path / "old.json"
    p.write_text(json.dumps(doc))
    assert "unsupported topology schema" in _one_line_error(run("--from", str(p)))


def test_link_to_missing_device(tmp_path):
    doc = json.loads((FIXTURES / "nvlink_pair_2gpu.json").read_text())
    doc["links"][0]["dst"] = 5
    p = tmp_path / "ghost.json"
    p.write_text(json.dumps(doc))
    assert "does not exist" in _one_line_error(run("--from", str(p)))


def test_missing_file(tmp_path):
    assert "cannot read topology file" in _one_line_error(run("--from", str(tmp_path / "nope.json")))


def test_unwritable_plot_path(tmp_path):
    msg = _one_line_error(run("--from", str(FIXTURES / "nvlink_pair_2gpu.json"), "--plot",
                              str(tmp_path / "no" / "such" / "dir" / "x.png")))
    assert "cannot write plot" in msg


def test_measure_with_from_is_refused():
    assert "--measure" in _one_line_error(run("--from", str(FIXTURES / "nvlink_pair_2gpu.json"), "--measure"))


@pytest.mark.skipif(vt.cuda.is_available(), reason="checks the path of a machine without GPUs")
def test_no_gpu_machine_says_so_and_exits_zero():
    r = run()
    assert r.exit_code == 0
    assert r.output.startswith("No NVIDIA GPU found")
    assert "CPUs" in r.output
    r = run("--json")
    doc = json.loads(r.output)
    assert doc["devices"] == [] and doc["driver"]["cuda_error"]
    r = run("--rings")
    assert r.exit_code == 0
