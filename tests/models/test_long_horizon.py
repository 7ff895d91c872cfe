"""benchmarks/long_horizon.py end to end on a short, small run: both models train on both sides from the same
weights and batches, the curves agree (here to rounding), and the JSON and plot are written."""
import importlib.util
import json
import pathlib

SCRIPT = pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "long_horizon.py"


def test_short_long_horizon_run(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("long_horizon", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    argv = ["--steps", "12", "--d", "32", "--layers", "1", "--batch", "4", "--context", "16", "--window", "4",
            "--tolerance", "0.01", "--out", str(tmp_path)]
    assert mod.main(argv) == 0, capsys.readouterr().out
    for name in ("minigpt", "vit"):
        row = json.loads((tmp_path / f"long_horizon_{name}_cpu.json").read_text())
        assert len(row["vt"]) == len(row["torch"]) == 12 and row["ok"]
