"""vt-fabric bench: nccl-tests' conventions as pure functions (sizes, bus factors, exact expected results), the
table and output files, argument errors, and the plain message where fewer than two devices exist. The timed runs
themselves need GPUs (scripts/gpu_check.sh runs them under emulation)."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

import vibetensor.torch as vt
from vibetensor.cli import bench as B
from vibetensor.cli.fabric import main


def test_sizes_and_parse():
    assert B.sizes(8, 64, 2) == [8, 16, 32, 64]
    assert B.sizes(1, 100, 10) == [1, 10, 100]
    assert B.parse_size("64K") == 65536 and B.parse_size("128M") == 128 << 20 and B.parse_size("8") == 8
    for bad in ("", "1X", "-4"):
        with pytest.raises(ValueError, match="bad size"):
            B.parse_size(bad)
    with pytest.raises(ValueError, match="stepfactor"):
        B.sizes(64, 8, 2)


def test_bus_factors_are_nccl_tests():
    assert B.bus_factor("all_reduce", 8) == pytest.approx(2 * 7 / 8)
    assert B.bus_factor("reduce_scatter", 4) == pytest.approx(3 / 4)
    assert B.bus_factor("all_gather", 2) == pytest.approx(1 / 2)


@pytest.mark.parametrize("n", [2, 3, 8])
def test_expected_results_depend_on_rank_and_index(n):
    count = 10
    inputs = [r + 1 + (np.arange(count * n) % 7) for r in range(n)]
    total = np.sum(inputs, axis=0)
    for r in range(n):
        np.testing.assert_array_equal(B.expected("reduce_scatter", "sum", n, count, r), total[r * count:(r + 1) * count])
    np.testing.assert_array_equal(B.expected("all_reduce", "max", n, count, 0), n + np.arange(count) % 7)
    gathered = B.expected("all_gather", "sum", n, count, 1)
    assert gathered.shape == (n * count,) and gathered[count] == 2  # rank 1's first element


def test_table_and_outputs(tmp_path):
    rows = [{"backend": "p2p", "size": 1024, "count": 256, "type": "float32", "redop": "sum",
             "out_of_place": {"time_us": 10.0, "algbw": 0.1, "busbw": 0.15, "wrong": 0, "p99_us": None},
             "in_place": None}]
    lines = B.format_rows(rows)
    assert "#wrong" in lines[1] and "n/a" in lines[2] and "0.15" in lines[2]
    B.write_outputs(rows, {"title": "t"}, str(tmp_path / "r.json"), str(tmp_path / "r.csv"), str(tmp_path / "r.png"))
    assert json.loads((tmp_path / "r.json").read_text())["rows"][0]["size"] == 1024
    assert (tmp_path / "r.csv").read_text().splitlines()[1].startswith("p2p,1024,256,float32,sum,out_of_place")
    assert (tmp_path / "r.png").stat().st_size > 1000


def test_cli_arguments_and_no_devices():
    r = CliRunner().invoke(main, ["bench", "allreduce", "-b", "64", "-e", "8"])
    assert r.exit_code != 0 and "stepfactor" in r.output
    r = CliRunner().invoke(main, ["bench", "broadcast"])
    assert r.exit_code != 0
    if not vt.cuda.is_available() or vt.cuda.device_count() < 2:
        r = CliRunner().invoke(main, ["bench", "allreduce"])
        assert r.exit_code == 0 and "needs 2 or more CUDA devices" in r.output


@pytest.mark.cuda
def test_torchrun_one_process_per_gpu_with_nccl(tmp_path):
    """The multi-process path (as on several machines): torchrun starts one process per GPU, NCCL connects them.
    One process is enough to run the bootstrap, the communicator and the verification on one real GPU."""
    import os
    import subprocess
    import sys

    from vibetensor.fabric import nccl

    if not vt.cuda.is_available() or vt.cuda.is_emulated() or not nccl.available():
        pytest.skip("needs a real GPU and NCCL")
    pytest.importorskip("torch.distributed.run")
    out = tmp_path / "rows.json"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    env.pop("VT_EMULATE_DEVICES", None)
    p = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=1", "--master_port=29517",
                        "-m", "vibetensor.cli.fabric", "bench", "allreduce", "-b", "1K", "-e", "1M", "-f", "32", "-n", "3",
                        "-w", "1", "--json", str(out)], env=env, capture_output=True, text=True, timeout=240)
    assert p.returncode == 0, p.stdout + p.stderr
    rows = json.loads(out.read_text())["rows"]
    assert [r["size"] for r in rows] == [1024, 32768, 1 << 20]
    assert all(r["out_of_place"]["wrong"] == 0 and r["out_of_place"]["time_us"] > 0 for r in rows)
    assert "1 ranks (torchrun)" in p.stdout
