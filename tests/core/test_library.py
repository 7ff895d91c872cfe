"""vibetensor.library: Python-defined ops and Python overrides through the dispatcher's boxed path."""
import itertools

import numpy as np
import pytest

import vibetensor.library as vlib
import vibetensor.torch as vt

_names = (f"testlib{i}" for i in itertools.count())


def test_define_op_with_python_cpu_kernel():
    ns = next(_names)
    lib = vlib.Library(ns, "DEF")
    qual = lib.define("scale(Tensor self, float k=2.0, *, bool negate=False) -> Tensor")
    assert qual == f"{ns}::scale"

    def scale(self, k, *, negate):
        out = self * k
        return -out if negate else out

    lib.impl("scale", scale, "CPU")
    x = vt.arange(4, dtype=vt.float32)
    op = getattr(getattr(vt.ops, ns), "scale")
    np.testing.assert_allclose(op(x).numpy(), [0, 2, 4, 6])
    np.testing.assert_allclose(op(x, 0.5, negate=True).numpy(), [0, -0.5, -1, -1.5])
    assert "scale(Tensor self" in op.schema


def test_op_returning_nothing():
    """"-> ()" ops only mutate their arguments: Python sees None, and a Python kernel's return value is dropped."""
    ns = next(_names)
    lib = vlib.Library(ns, "DEF")
    lib.define("bump_(Tensor[] xs, *, float by) -> ()")
    lib.impl("bump_", lambda xs, *, by: [x.add_(by) for x in xs], "CPU")
    xs = [vt.zeros(2), vt.ones(3)]
    assert getattr(vt.ops, ns).bump_(xs, by=1.5) is None
    np.testing.assert_allclose(xs[1].numpy(), [2.5] * 3)
    with pytest.raises(RuntimeError, match="bad schema"):
        lib.define("f(Tensor self) -> (,)")


def test_python_override_of_an_op_returning_nothing():
    seen = []

    def sgd(params, grads, bufs, **kw):
        seen.append(len(params))
        return vlib.redispatch("vt::_fused_sgd_", params, grads, bufs, **kw)

    p, g = vt.ones(3), vt.full((3,), 2.0)
    with vlib.Library("vt", "IMPL") as lib:
        lib.impl("_fused_sgd_", sgd, "Python")
        assert vt.ops.vt._fused_sgd_([p], [g], [], lr=0.5) is None
    assert seen == [1]
    np.testing.assert_allclose(p.numpy(), [0.0] * 3)


def test_define_twice_is_rejected():
    ns = next(_names)
    lib = vlib.Library(ns, "DEF")
    lib.define("f(Tensor self) -> Tensor")
    with pytest.raises(RuntimeError, match="already defined"):
        lib.define("f(Tensor self) -> Tensor")


def test_bad_schema_and_key_are_rejected():
    lib = vlib.Library(next(_names), "DEF")
    with pytest.raises(RuntimeError, match="bad schema"):
        lib.define("f(Tensr self) -> Tensor")
    lib.define("g(Tensor self) -> Tensor")
    with pytest.raises(ValueError, match="dispatch key"):
        lib.impl("g", lambda t: t, "TPU")
    with pytest.raises(ValueError, match="no operator"):
        lib.impl("nope", lambda t: t, "CPU")


def test_python_override_sees_operator_calls_and_redispatches():
    calls = []

    def my_add(self, other, *, alpha):
        calls.append((tuple(self.shape), alpha))
        return vlib.redispatch("vt::add", self, other, alpha=alpha) * 10

    a, b = vt.ones(3), vt.full((3,), 2.0)
    with vlib.Library("vt", "IMPL") as lib:
        lib.impl("add", my_add, "Python")
        np.testing.assert_allclose((a + b).numpy(), [30, 30, 30])      # the C++ typed fast path reaches it
        np.testing.assert_allclose(vt.add(a, b, alpha=2).numpy(), [50, 50, 50])  # and the boxed path
    assert calls == [((3,), 1), ((3,), 2)]
    np.testing.assert_allclose((a + b).numpy(), [3, 3, 3])  # closed: the override is gone


def test_python_kernel_errors_propagate():
    lib = vlib.Library(next(_names), "DEF")
    lib.define("boom(Tensor self) -> Tensor")

    def boom(self):
        raise ValueError("kernel says no")

    lib.impl("boom", boom, "CPU")
    with pytest.raises(ValueError, match="kernel says no"):
        getattr(vt.ops, lib.ns).boom(vt.ones(2))


def test_python_kernel_wrong_return_type():
    lib = vlib.Library(next(_names), "DEF")
    lib.define("bad(Tensor self) -> Tensor")
    lib.impl("bad", lambda self: "not a tensor", "CPU")
    with pytest.raises(TypeError, match="must be Tensor"):
        getattr(vt.ops, lib.ns).bad(vt.ones(2))


def test_override_on_large_tensor_runs_with_gil():
    # Large inputs make the binding release the GIL; the Python kernel must re-acquire it.
    with vlib.Library("vt", "IMPL") as lib:
        lib.impl("mul", lambda self, other: vlib.redispatch("vt::mul", self, other) + 1, "Python")
        x = vt.ones(100_000)
        assert float((x * x).sum()) == 200_000.0
