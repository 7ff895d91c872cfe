"""User errors: exception types match torch's and messages name the offending shapes / dims / indices / devices.

Cases that could kill the interpreter if unguarded (integer division by zero, INT_MIN // -1 -> SIGFPE) run in a
subprocess so a crash is reported as a test failure instead of taking down the whole run.
"""
import os
import re
import subprocess
import sys
import textwrap

import pytest

import vibetensor.torch as vt
from helpers import check_op, shape_regex


def _raises_msg(exc_type, fn):
    with pytest.raises(exc_type) as ei:
        fn()
    msg = str(ei.value)
    assert "INTERNAL" not in msg.upper() or "assert" not in msg.lower(), f"user error reported as internal: {msg}"
    return msg


# ------------------------------------------------------------------------------------------- broadcasting


@pytest.mark.parametrize("a,b", [((2, 3), (4, 3)), ((3,), (4,)), ((2, 1, 5), (3, 4)), ((0, 3), (2, 3)),
                                 ((5, 2), (5, 3))], ids=str)
@pytest.mark.parametrize("op", ["add", "mul", "sub", "div", "maximum", "eq", "where", "lt", "logical_and"])
def test_broadcast_mismatch(op, a, b):
    x, y = vt.ones(*a), vt.ones(*b)
    fn = {"add": lambda: x + y, "mul": lambda: vt.mul(x, y), "sub": lambda: x - y, "div": lambda: x / y,
          "maximum": lambda: vt.maximum(x, y), "eq": lambda: x == y, "where": lambda: vt.where(x > 0, x, y),
          "lt": lambda: vt.lt(x, y), "logical_and": lambda: vt.logical_and(x, y)}[op]
    msg = _raises_msg(RuntimeError, fn)
    assert re.search(shape_regex(a), msg) and re.search(shape_regex(b), msg), \
        f"message should name both shapes {a} and {b}: {msg!r}"


def test_inplace_broadcast_mismatch_names_shapes():
    x = vt.ones(1, 5)
    msg = _raises_msg(RuntimeError, lambda: x.add_(vt.ones(4, 5)))
    assert re.search(shape_regex((1, 5)), msg) and re.search(shape_regex((4, 5)), msg), msg


def test_expand_mismatch_names_sizes():
    msg = _raises_msg(RuntimeError, lambda: vt.ones(2, 3).expand(4, 4))
    assert "4" in msg and "3" in msg, msg


# ------------------------------------------------------------------------------------------ dims


DIM_ERRORS = {
    "sum": lambda x: x.sum(3),
    "sum_neg": lambda x: x.sum(-4),
    "sum_tuple": lambda x: vt.sum(x, (0, 5)),
    "mean": lambda x: x.mean(7),
    "amax": lambda x: vt.amax(x, 3),
    "max_dim": lambda x: vt.max(x, 3),
    "argmax": lambda x: x.argmax(3),
    "var": lambda x: x.var(3),
    "cumsum": lambda x: x.cumsum(3),
    "transpose": lambda x: x.transpose(0, 3),
    "permute": lambda x: x.permute(0, 1, 5),
    "unsqueeze": lambda x: x.unsqueeze(4),
    "unsqueeze_neg": lambda x: x.unsqueeze(-5),
    "squeeze": lambda x: x.squeeze(3),
    "select": lambda x: x.select(3, 0),
    "narrow": lambda x: x.narrow(3, 0, 1),
    "flatten": lambda x: x.flatten(0, 3),
    "movedim": lambda x: x.movedim(3, 0),
    "size": lambda x: x.size(3),
    "stride": lambda x: x.stride(-4),
    "cat": lambda x: vt.cat([x, x], 3),
    "stack": lambda x: vt.stack([x, x], 4),
    "split": lambda x: x.split(1, 3),
    "chunk": lambda x: x.chunk(2, 3),
    "unbind": lambda x: x.unbind(3),
    "softmax_like_logsumexp": lambda x: vt.logsumexp(x, 3),
    "norm": lambda x: vt.norm(x, dim=3),
}


@pytest.mark.parametrize("name", list(DIM_ERRORS))
def test_dim_out_of_range(name):
    x = vt.zeros(2, 3, 4)
    msg = _raises_msg(IndexError, lambda: DIM_ERRORS[name](x))
    assert re.search(r"-?\d", msg), f"message should name the dim: {msg!r}"


@pytest.mark.parametrize("name", ["sum", "transpose", "unsqueeze", "select", "size"])
def test_dim_out_of_range_names_dim_and_range(name):
    x = vt.zeros(2, 3, 4)
    msg = _raises_msg(IndexError, lambda: DIM_ERRORS[name](x))
    wanted = {"sum": "3", "transpose": "3", "unsqueeze": "4", "select": "3", "size": "3"}[name]
    assert re.search(rf"(?<![\d-]){wanted}(?!\d)", msg), f"message should name dim {wanted}: {msg!r}"


def test_dim_errors_on_zero_dim_tensor():
    check_op(lambda m: m.tensor(1.0).sum(1))
    check_op(lambda m: m.tensor(1.0).unsqueeze(2))
    check_op(lambda m: m.tensor(1.0).transpose(0, 1))


# ----------------------------------------------------------------------------------------- indices


@pytest.mark.parametrize("fn,index,size", [
    (lambda x: x[3], "3", "3"),
    (lambda x: x[-4], "-4", "3"),
    (lambda x: x[:, 4], "4", "4"),
    (lambda x: x[vt.tensor([0, 7])], "7", "3"),
    (lambda x: x[:, vt.tensor([-5])], "-5", "4"),
    (lambda x: x.select(0, 3), "3", "3"),
    (lambda x: x.select(1, -5), "-5", "4"),
], ids=["int", "neg_int", "dim1", "tensor", "tensor_neg_dim1", "select", "select_neg"])
def test_index_out_of_range(fn, index, size):
    x = vt.zeros(3, 4)
    msg = _raises_msg(IndexError, lambda: fn(x))
    assert index in msg, f"message should name index {index}: {msg!r}"
    assert size in msg, f"message should name the size {size}: {msg!r}"


def test_setitem_index_out_of_range():
    x = vt.zeros(3, 4)

    def f():
        x[5] = 1.0
    msg = _raises_msg(IndexError, f)
    assert "5" in msg


def test_too_many_indices():
    check_op(lambda m: m.zeros(3, 4)[0, 0, 0])


# ------------------------------------------------------------------------------------------- views


@pytest.mark.parametrize("fn", [lambda x: x.t().view(12), lambda x: x[:, :3].view(9),
                                lambda x: x.t().view(2, 6)], ids=["transposed", "strided", "transposed_2d"])
def test_view_incompatible_strides(fn):
    x = vt.zeros(3, 4)
    msg = _raises_msg(RuntimeError, lambda: fn(x))
    assert re.search(r"(?i)stride|contiguous|reshape|view", msg), msg


@pytest.mark.parametrize("fn,shape", [(lambda x: x.view(5), (5,)), (lambda x: x.view(5, -1), (5, -1)),
                                      (lambda x: x.reshape(4, 4), (4, 4))], ids=["view", "view_infer", "reshape"])
def test_view_wrong_numel_names_shape_and_size(fn, shape):
    x = vt.zeros(3, 4)
    msg = _raises_msg(RuntimeError, lambda: fn(x))
    assert re.search(shape_regex(shape), msg) or all(str(s) in msg for s in shape), msg
    assert "12" in msg, f"message should name the number of elements: {msg!r}"


# -------------------------------------------------------------------------------------------- dtypes


@pytest.mark.parametrize("fn", [
    lambda: vt.zeros(2, dtype="float33"),
    lambda: vt.ones(2, dtype="fp32x"),
    lambda: vt.full((2,), 1.0, dtype="nope"),
    lambda: vt.tensor([1, 2], dtype="int65"),
    lambda: vt.arange(3, dtype="float33"),
    lambda: vt.empty(2, dtype="bf17"),
    lambda: vt.zeros(2).to(dtype="float33"),
], ids=["zeros", "ones", "full", "tensor", "arange", "empty", "to"])
def test_unknown_dtype_string(fn):
    _raises_msg(TypeError, fn)


def test_non_dtype_object_as_dtype():
    check_op(lambda m: m.zeros(2, dtype=3))
    check_op(lambda m: m.zeros(2, dtype=object()))


@pytest.mark.parametrize("fn", [
    lambda m: m.bitwise_and(m.ones(2), m.ones(2)),
    lambda m: ~m.ones(2),
    lambda m: m.ones(2) & m.ones(2),
    lambda m: -m.ones(2, dtype=m.bool),
    lambda m: m.ones(2, dtype=m.bool) - m.ones(2, dtype=m.bool),
    lambda m: m.ones(2, 2).item(),
    lambda m: m.tensor(object()),
    lambda m: m.add(m.ones(2), "x"),
    lambda m: m.ones(2, dtype=m.int64).add_(1.5),
    lambda m: m.ones(2, dtype=m.int64).div_(2),
    lambda m: m.ones(2, dtype=m.bool).add_(m.ones(2)),
    lambda m: m.ones(2, dtype=m.int32) ** -1,
    lambda m: m.ones(2, dtype=m.bfloat16).numpy(),
], ids=["bitwise_float", "invert_float", "and_float", "neg_bool", "sub_bool", "item_multi", "tensor_object",
        "add_str", "int_add_float_", "int_div_", "bool_add_float_", "int_neg_pow", "bf16_numpy"])
def test_type_errors_match_torch(fn):
    check_op(fn)


# ------------------------------------------------------------------------------------------- devices


def _cuda_count():
    try:
        return vt.cuda.device_count() if vt.cuda.is_available() else 0
    except Exception:  # noqa: BLE001
        return 0


@pytest.mark.skipif(_cuda_count() > 7, reason="cuda:7 exists here")
@pytest.mark.parametrize("fn", [
    lambda: vt.zeros(2, device="cuda:7"),
    lambda: vt.ones(2, 3, device="cuda:7"),
    lambda: vt.empty(4, device="cuda:7"),
    lambda: vt.full((2,), 1.0, device="cuda:7"),
    lambda: vt.arange(3, device="cuda:7"),
    lambda: vt.tensor([1.0, 2.0], device="cuda:7"),
    lambda: vt.zeros(2).to("cuda:7"),
    lambda: vt.zeros(2).to(device="cuda:7"),
], ids=["zeros", "ones", "empty", "full", "arange", "tensor", "to", "to_kw"])
def test_missing_cuda_device(fn):
    msg = _raises_msg(RuntimeError, fn)
    assert "cuda:7" in msg or ("cuda" in msg.lower() and "7" in msg), f"message should name the device: {msg!r}"


@pytest.mark.parametrize("dev", ["gpu", "cuda:x", "cpu:0:1", "", "tpu:0"])
def test_bad_device_string(dev):
    msg = _raises_msg(RuntimeError, lambda: vt.zeros(2, device=dev))
    if dev:
        assert dev.split(":")[0] in msg, f"message should name the device string: {msg!r}"


# ---------------------------------------------------------------------------------------- dlpack


def test_dlpack_capsule_consumed_twice():
    cap = vt.ones(3).__dlpack__()
    vt.from_dlpack(cap)
    with pytest.raises((RuntimeError, ValueError, BufferError)):
        vt.from_dlpack(cap)


# ----------------------------------------------------------------------- crash-prone integer arithmetic

_CRASH_CASES = {
    "floordiv_scalar_zero": ("vt.tensor([1, 2]) // 0", True),
    "remainder_scalar_zero": ("vt.tensor([1, 2]) % 0", True),
    "floor_divide_tensor_zero": ("vt.floor_divide(vt.tensor([1, 2]), vt.tensor([0, 1]))", True),
    "remainder_tensor_zero": ("vt.remainder(vt.tensor([5, 2], dtype=vt.int32), vt.tensor([1, 0], dtype=vt.int32))",
                              True),
    "fmod_tensor_zero": ("vt.fmod(vt.tensor([5, 2]), vt.tensor([0, 1]))", True),
    "div_trunc_zero": ("vt.div(vt.tensor([5, 2]), vt.tensor([0, 1]), rounding_mode='trunc')", True),
    "div_floor_zero": ("vt.div(vt.tensor([5, 2], dtype=vt.int16), vt.tensor([0, 1], dtype=vt.int16), "
                       "rounding_mode='floor')", True),
    "uint8_mod_zero": ("vt.tensor([1], dtype=vt.uint8) % vt.tensor([0], dtype=vt.uint8)", True),
    "rfloordiv_zero": ("3 // vt.tensor([0, 1])", True),
    "int64_min_floordiv_neg1": ("(vt.tensor([-2**63]) // -1).tolist()", False),
    "int64_min_mod_neg1": ("(vt.tensor([-2**63]) % -1).tolist()", False),
    "int32_min_floordiv_neg1": ("(vt.tensor([-2**31], dtype=vt.int32) // vt.tensor([-1], dtype=vt.int32)).tolist()",
                                False),
    "int64_min_fmod_neg1": ("vt.fmod(vt.tensor([-2**63]), vt.tensor([-1])).tolist()", False),
    "int64_min_div_trunc_neg1": ("vt.div(vt.tensor([-2**63]), -1, rounding_mode='trunc').tolist()", False),
    "large_floordiv_zero": ("vt.ones(100_003, dtype=vt.int64) // vt.zeros(100_003, dtype=vt.int64)", True),
}
_TORCH_RESULTS = {
    "int64_min_floordiv_neg1": [-2**63], "int64_min_mod_neg1": [0], "int32_min_floordiv_neg1": [-2**31],
    "int64_min_fmod_neg1": [0], "int64_min_div_trunc_neg1": [-2**63],
}


@pytest.mark.parametrize("name", list(_CRASH_CASES))
def test_integer_division_edge_cases_in_subprocess(name):
    expr, should_raise = _CRASH_CASES[name]
    script = textwrap.dedent(f"""
        import sys
        import vibetensor.torch as vt
        try:
            r = {expr}
        except RuntimeError as e:
            print("RAISED RuntimeError:", e)
            sys.exit(0)
        except Exception as e:
            print("RAISED", type(e).__name__ + ":", e)
            sys.exit(0)
        print("RESULT", r if isinstance(r, list) else r.tolist())
    """)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"interpreter died (returncode {proc.returncode}) on `{expr}`:\n{out[-2000:]}"
    if should_raise:
        # torch: RuntimeError("ZeroDivisionError")
        assert "RAISED RuntimeError" in out, f"`{expr}` should raise RuntimeError like torch; got:\n{out[-2000:]}"
    else:
        assert f"RESULT {_TORCH_RESULTS[name]}" in out, \
            f"`{expr}` should give torch's {_TORCH_RESULTS[name]}; got:\n{out[-2000:]}"
