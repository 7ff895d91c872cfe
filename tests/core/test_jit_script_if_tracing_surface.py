"""vt.jit.script_if_tracing (and torchvision's private name _script_if_tracing) against torch's: outside tracing the
decorated function runs as written, with its name, arguments and results."""
import pytest
import torch
import vibetensor.torch as vt


@pytest.mark.parametrize("name", ["script_if_tracing", "_script_if_tracing"])
def test_the_decorated_function_runs_as_written(name):
    def build(L):
        @getattr(L.jit, name)
        def box_area(boxes):
            return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        return box_area

    boxes = [[0.0, 0.0, 2.0, 3.0], [1.0, 1.0, 4.0, 2.0]]
    t, v = build(torch), build(vt)
    assert v.__name__ == t.__name__ == "box_area"
    assert v(vt.tensor(boxes)).tolist() == t(torch.tensor(boxes)).tolist() == [6.0, 3.0]
    assert not vt.jit.is_tracing() and vt.jit.script_if_tracing is vt.jit._script_if_tracing
