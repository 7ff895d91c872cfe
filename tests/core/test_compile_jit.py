"""torch.compile, torch.jit and torch.compiler as code calls them (vibetensor runs eagerly): compiled modules and
functions compute what the originals do, a compiled module's state_dict carries torch's `_orig_mod.` prefix (so
checkpoint code that strips it works), attributes read through, argument checks raise as torch's; TorchScript's
decorators give their argument back and its archives raise; jit.fork / wait, jit.isinstance on typed containers,
Attribute, Error and ScriptModule behave as torch's eager ones."""
import math
import typing

import numpy as np
import pytest
import torch

import vibetensor.torch as vt


class Block(vt.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = vt.nn.Linear(8, 8)
        self.norm = vt.nn.LayerNorm(8)
        self.scale = 2.0

    def forward(self, x):
        return self.norm(x + self.fc(x)) * self.scale


@vt.jit.script
def gelu_tanh(x):  # the way public model code marks small fused functions
    return 0.5 * x * (1.0 + vt.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def test_compiled_module_trains_and_checkpoints_like_torch():
    vt.manual_seed(0)
    model = Block()
    compiled = vt.compile(model)
    x = vt.randn(4, 8)
    np.testing.assert_array_equal(compiled(x).numpy(), model(x).numpy())
    assert compiled.scale == 2.0 and compiled.fc is model.fc and compiled._orig_mod is model
    assert list(compiled.state_dict()) == [f"_orig_mod.{k}" for k in model.state_dict()]
    opt = vt.optim.AdamW(compiled.parameters(), lr=1e-2)
    compiled(x).pow(2).mean().backward()
    opt.step()
    # a training script's checkpoint code: strip torch.compile's prefix, load into a fresh, uncompiled model
    state = {k.removeprefix("_orig_mod."): v for k, v in compiled.state_dict().items()}
    fresh = Block()
    fresh.load_state_dict(state)
    np.testing.assert_array_equal(fresh(x).numpy(), model(x).numpy())
    compiled.eval()
    assert not model.training


def test_compiled_state_dict_prefix_matches_torch():
    t = torch.compile(torch.nn.Linear(3, 2))  # no compilation happens before the first call
    v = vt.compile(vt.nn.Linear(3, 2))
    assert list(v.state_dict()) == list(t.state_dict())
    assert type(v).__name__ == type(t).__name__ == "OptimizedModule"


def test_compile_as_decorator_and_call():
    @vt.compile
    def f(x):
        return x * 2

    @vt.compile(mode="reduce-overhead", fullgraph=True)
    def g(x):
        return x + 1

    assert f.__name__ == "f" and f(vt.ones(2)).tolist() == [2.0, 2.0] and g(vt.ones(1)).tolist() == [2.0]
    model = vt.nn.Linear(2, 2)
    assert vt.compile(model, disable=True) is model
    assert gelu_tanh(vt.tensor([1.0])).item() == pytest.approx(
        torch.nn.functional.gelu(torch.tensor([1.0]), approximate="tanh").item(), rel=1e-6)


def test_compile_checks_arguments_as_torch():
    for kwargs in (dict(mode="max-autotune", options={"a": 1}), dict(mode="fastest")):
        with pytest.raises(RuntimeError) as ours:
            vt.compile(vt.nn.Linear(1, 1), **kwargs)
        with pytest.raises(RuntimeError) as theirs:
            torch.compile(torch.nn.Linear(1, 1), **kwargs)
        # the same message (the list of modes after it grows with torch's versions)
        assert str(ours.value).split(", should")[0] == str(theirs.value).split(", should")[0]


def test_jit_and_compiler_entry_points():
    fn = lambda x: x  # noqa: E731
    assert vt.jit.script(fn) is fn and vt.jit.trace(fn, (vt.ones(1),)) is fn
    assert vt.jit.ignore(fn) is fn and vt.jit.ignore(drop=True)(fn) is fn and vt.jit.unused(fn) is fn
    assert vt.jit.annotate(list, [1]) == [1] and not vt.jit.is_scripting() and not vt.jit.is_tracing()
    assert not vt.compiler.is_compiling() and vt.compiler.disable(fn) is fn and vt.compiler.disable()(fn) is fn
    with pytest.raises(NotImplementedError, match="TorchScript"):
        vt.jit.save(fn, "x.pt")


def test_dynamo_and_inductor_config_modules_behave_as_torchs():
    import importlib

    for lib in (torch, vt):
        name = lib.__name__
        dynamo_cfg = importlib.import_module(name + "._dynamo.config")
        inductor_cfg = importlib.import_module(name + "._inductor.config")
        assert lib._dynamo.config is dynamo_cfg and lib._inductor.config is inductor_cfg
    # torch's defaults for the options scripts set
    for cfg, keys in (("_dynamo", ("cache_size_limit", "suppress_errors", "automatic_dynamic_shapes",
                                   "capture_scalar_outputs", "assume_static_by_default")),
                      ("_inductor", ("coordinate_descent_tuning", "fx_graph_cache", "freezing", "max_autotune",
                                     "epilogue_fusion"))):
        for k in keys:
            assert getattr(getattr(vt, cfg).config, k) == getattr(getattr(torch, cfg).config, k), k
    for k in ("unique_kernel_names", "cudagraphs", "cudagraph_trees"):
        assert getattr(vt._inductor.config.triton, k) == getattr(torch._inductor.config.triton, k)
    # setting works, and an option torch lacks is refused with torch's message
    old = vt._inductor.config.coordinate_descent_tuning
    vt._inductor.config.coordinate_descent_tuning = not old
    assert vt._inductor.config.coordinate_descent_tuning is (not old)
    vt._inductor.config.coordinate_descent_tuning = old
    for lib in (torch, vt):
        with pytest.raises(AttributeError, match=r"^torch\._dynamo\.config\.no_such_option does not exist$"):
            lib._dynamo.config.no_such_option = 1
        with pytest.raises(AttributeError, match="no_such_option does not exist"):
            lib._dynamo.config.no_such_option
        with pytest.raises(AttributeError, match="triton.no_such_option does not exist"):
            lib._inductor.config.triton.no_such_option = 1
        # patch: a context manager and a decorator, restoring the value after
        before = lib._dynamo.config.cache_size_limit
        with lib._dynamo.config.patch(cache_size_limit=before + 5):
            assert lib._dynamo.config.cache_size_limit == before + 5
        assert lib._dynamo.config.cache_size_limit == before

        @lib._dynamo.config.patch("suppress_errors", True)
        def inside():
            return lib._dynamo.config.suppress_errors
        assert inside() is True and lib._dynamo.config.suppress_errors is False
    # the shape marks are accepted and change nothing
    x = vt.ones(2, 3)
    vt._dynamo.mark_dynamic(x, 0)
    vt._dynamo.mark_static(x, 1)
    vt._dynamo.maybe_mark_dynamic(x, 0)
    assert vt._dynamo.reset() is None and not vt._dynamo.is_compiling()


# (object, type spelled as code): "T" in the object stands for a tensor of the library under test
TYPED = [([1, 2], "List[int]"), ([1, "a"], "List[int]"), ([[1], [2, 3]], "List[List[int]]"), ([1.5], "List[int]"),
         ({"a": 1}, "Dict[str, int]"), ({"a": "b"}, "Dict[str, int]"), ({1: 2}, "Dict[str, int]"),
         (None, "Optional[int]"), (3, "Optional[int]"), ("x", "Optional[int]"), ((1, "a"), "Tuple[int, str]"),
         ((1, 2), "Tuple[int, str]"), ((1, 2, 3), "Tuple[int, ...]"), (3, "Union[int, str]"),
         (2.0, "Union[int, str]"), (True, "int"), ([1], "Tuple[int]"), ("T", "Tensor"), (["T", "T"], "List[Tensor]"),
         ({"k": ["T"]}, "Dict[str, List[Tensor]]"), ([], "List[int]"), ({}, "Dict[str, float]")]


@pytest.mark.parametrize("obj,spec", TYPED)
@pytest.mark.filterwarnings("ignore:The inner type of a container")
def test_jit_isinstance_checks_typed_containers_as_torch(obj, spec):
    def build(lib):
        tensor = lib.ones(1)
        swap = lambda o: tensor if o == "T" else ([swap(x) for x in o] if type(o) is list else  # noqa: E731
                                                  {k: swap(v) for k, v in o.items()} if type(o) is dict else o)
        names = {n: getattr(typing, n) for n in ("Dict", "List", "Optional", "Tuple", "Union")}
        return swap(obj), eval(spec, dict(names, Tensor=lib.Tensor))

    assert vt.jit.isinstance(*build(vt)) == torch.jit.isinstance(*build(torch))


def test_jit_fork_wait_attribute_error_and_script_module():
    def add(a, b=1):
        return a + b

    for lib in (torch, vt):
        fut = lib.jit.fork(add, lib.ones(2), b=lib.full((2,), 4.0))
        assert fut.done() and lib.jit.wait(fut).tolist() == fut.wait().tolist() == fut.value().tolist() == [5.0, 5.0]
        with pytest.raises(ZeroDivisionError):  # eager fork runs the call at once
            lib.jit.fork(lambda: 1 / 0)
        assert tuple(lib.jit.Attribute(3, int)) == (3, int) and lib.jit.Attribute(3, int).value == 3
        assert issubclass(lib.jit.Error, Exception) and not isinstance(lib.nn.Linear(1, 1), lib.jit.ScriptModule)
        with pytest.raises(RuntimeError, match="without a contained type"):
            lib.jit.isinstance([1], list)
        with pytest.warns(UserWarning, match="inner type of a container is lost"):
            assert lib.jit.isinstance([], typing.List[int])
    with pytest.raises(NotImplementedError, match="TorchScript"):
        vt.jit.optimize_for_inference(vt.nn.Linear(1, 1))
