"""torch.fx.wrap as model files use it, against torch: at module level, by name or as a decorator, it gives its
argument back (and the function still runs); anything else and calls from inside a function fail as torch's."""
import pytest
import torch
import torch.fx
import vibetensor.torch.fx as vfx

SOURCE = """
def pad_even(x):
    return x + 1

fx.wrap("pad_even")

@fx.wrap
def twice(x):
    return 2 * x

by_name = fx.wrap("pad_even")
"""


@pytest.mark.parametrize("fx", [torch.fx, vfx], ids=["torch", "vibetensor"])
def test_module_level_wrap_gives_its_argument_back(fx):
    scope = {"fx": fx}
    exec(compile(SOURCE, "<model file>", "exec"), scope)
    assert scope["by_name"] == "pad_even"
    assert scope["twice"](3) == 6 and scope["twice"].__name__ == "twice"
    assert scope["pad_even"](1) == 2


@pytest.mark.parametrize("arg", [3, None, 2.5])
def test_neither_callable_nor_name_raises_like_torch(arg):
    with pytest.raises(RuntimeError) as t:
        torch.fx.wrap(arg)
    with pytest.raises(RuntimeError) as v:
        vfx.wrap(arg)
    assert str(v.value) == str(t.value)


def test_wrap_inside_a_function_raises_like_torch():
    def inner(fx):
        return fx.wrap("something")

    with pytest.raises(NotImplementedError) as t:
        inner(torch.fx)
    with pytest.raises(NotImplementedError) as v:
        inner(vfx)
    assert str(v.value) == str(t.value) == "wrap must be called at the top level of a module"
