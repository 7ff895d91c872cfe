"""The training examples run end to end through autograd and pass their own checks (short runs here; the
examples' defaults train longer)."""
import importlib.util
import pathlib

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"


def load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("name,argv", [("mlp", ["--steps", "120", "--target", "0.02"]),
                                       ("minigpt", ["--steps", "30", "--d", "32", "--target", "3.8"])])
def test_example_trains(name, argv, capsys):
    assert load(name).main(argv) == 0, capsys.readouterr().out
