"""Device-aware differential helpers for the CUDA op suites (tests/cuda/test_cuda_*.py): vibetensor on the GPU
against torch on the GPU.

Inputs are built once in NumPy (helpers.random_array / pair_from_numpy), copied to the device on both sides, and
only then viewed (transposed, sliced, expanded, offset), so the device tensors carry the non-contiguous layout
themselves. ``dcheck`` is ``helpers.check_op`` for device tensors: same exception-kind rule, and results must
stay on the inputs' device (vt's device equal to torch's) before they are copied back and compared.

``VT_CUDA_TEST_DEVICE=cpu`` runs these suites on the CPU backends (vt CPU against torch CPU) instead of the
GPU: a way to check the tests themselves on a machine without one. The default is ``cuda``.
"""
from __future__ import annotations

import os
import warnings
from contextlib import contextmanager

import pytest
import torch
import vibetensor.torch as vt
from helpers import (
    Pair,
    _cast_like,
    _noncontig_plan,
    _upcast,
    as_rng,
    assert_raises_like,
    assert_same,
    exception_kind,
    pair_from_numpy,
    pair_from_values,
    random_array,
    run_torch,
    side,
)

DEV = os.environ.get("VT_CUDA_TEST_DEVICE", "cuda")
ON_CUDA = DEV != "cpu"


def _torch_has_cuda() -> bool:
    try:
        return bool(torch.cuda.is_available())
    except Exception:  # noqa: BLE001
        return False


# `pytestmark = CUDA_MARKS` in each suite: the conftest skips `cuda` tests where vt sees no GPU; the oracle is
# torch's CUDA backend, so a torch build without CUDA skips them too.
CUDA_MARKS = [pytest.mark.cuda, pytest.mark.skipif(not _torch_has_cuda(), reason="torch has no CUDA: no oracle")] \
    if ON_CUDA else []
needs_two_devices = pytest.mark.skipif(not ON_CUDA, reason="mixed-device checks need a CUDA device next to the CPU")

if ON_CUDA and _torch_has_cuda():  # exact float32 products in the oracle (tf32 would lose ~3 decimal digits)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


# ------------------------------------------------------------------------------------------- inputs


def on_dev(p):
    """A Pair (or list/tuple of Pairs) copied to DEV on both sides."""
    if isinstance(p, Pair):
        return Pair(p.v.to(DEV), p.t.to(DEV))
    if isinstance(p, (list, tuple)):
        return type(p)(on_dev(q) for q in p)
    return p


def dpair(shape, dtype: str = "float32", *, noncontig=False, low=None, high=None, rng=None, seed=None,
          nonzero=False) -> Pair:
    """helpers.pair on DEV: random values through NumPy, the view (noncontig kind) applied on the device."""
    g = as_rng(rng, seed)
    base_shape, view = _noncontig_plan(shape, noncontig)
    p = on_dev(pair_from_numpy(random_array(base_shape, dtype, g, low=low, high=high, nonzero=nonzero), dtype))
    return Pair(view(p.v), view(p.t))


def dpair_np(arr, dtype: str | None = None) -> Pair:
    return on_dev(pair_from_numpy(arr, dtype))


def dpair_vals(values, dtype: str) -> Pair:
    return on_dev(pair_from_values(values, dtype))


def clone(p: Pair) -> Pair:
    return Pair(p.v.clone(), p.t.clone())


# ------------------------------------------------------------------------------------------ comparing


def _dev_key(d):
    return d.type, (d.index or 0) if d.type != "cpu" else 0


def host(x):
    """Results copied to the CPU (tensors inside tuples/lists too), ready for helpers.assert_same."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu()
    if isinstance(x, vt.Tensor):
        return x.cpu()
    if isinstance(x, (tuple, list)):
        return [host(y) for y in x]
    return x


def assert_on_device(actual, expected, msg=""):
    """Every tensor of a vt result lives where torch's does (for these suites: the GPU)."""
    if isinstance(expected, torch.Tensor):
        assert isinstance(actual, vt.Tensor), f"{msg}expected a vt.Tensor, got {type(actual).__name__}"
        assert _dev_key(actual.device) == _dev_key(expected.device), (
            f"{msg}device: vt {actual.device} vs torch {expected.device}")
        if ON_CUDA:
            assert actual.is_cuda, f"{msg}vt result is not on CUDA ({actual.device})"
    elif isinstance(expected, (tuple, list)) and isinstance(actual, (tuple, list)):
        for i, (a, e) in enumerate(zip(actual, expected)):
            assert_on_device(a, e, f"{msg}[{i}] ")


def dsame(actual, expected, *, msg="", **kw):
    """helpers.assert_same for device results: same device first, then dtype, shape and values."""
    assert_on_device(actual, expected, msg)
    assert_same(host(actual), host(expected), msg=msg, **kw)


def _to_cpu_args(x):
    if isinstance(x, torch.Tensor):
        return x.cpu()
    if isinstance(x, list):
        return [_to_cpu_args(y) for y in x]
    if isinstance(x, tuple) and type(x) is tuple:
        return tuple(_to_cpu_args(y) for y in x)
    if isinstance(x, dict):
        return {k: _to_cpu_args(y) for k, y in x.items()}
    return x


def _not_implemented(e) -> bool:
    """A missing dtype kernel in torch ("... not implemented for 'Bool'"), not a semantic error."""
    return isinstance(e, NotImplementedError) or "not implemented for" in str(e)


def _torch_on_cpu(fn, args, kwargs):
    """(result, exception) of fn(torch, ...) on CPU copies of the torch inputs."""
    return run_torch(lambda m, *a, **k: fn(m, *_to_cpu_args(a), **_to_cpu_args(k)), *args, **kwargs)


def _assert_all_on_dev(x, msg=""):
    if isinstance(x, vt.Tensor):
        assert _dev_key(x.device) == _dev_key(vt.device(DEV)), f"{msg}vt result on {x.device}, expected {DEV}"
    elif isinstance(x, (tuple, list)):
        for y in x:
            _assert_all_on_dev(y, msg)


def dcheck(fn, *args, rtol=None, atol=None, check_dtype=True, equal_nan=True, msg="", upcast_ref=False,
           cpu_ref=False, **kwargs):
    """Differential check of fn(m, *args, **kwargs) for m in (torch, vt) on device inputs (Pairs in args).

    When torch raises, vt must raise the same kind of exception (helpers.assert_raises_like). Otherwise the vt
    result must be on torch's device and equal torch's (assert_same). upcast_ref also accepts torch's result on
    float64 copies of the inputs (rounded to torch's dtype); cpu_ref also accepts torch's result on CPU copies
    (where torch's own CUDA and CPU kernels differ, e.g. in the last bit of a factory). Neither may be used with
    in-place functions. Returns (vt_result, torch_result), or None when torch raised.

    Where torch's CUDA and CPU backends disagree on whether a dtype is supported at all (abs of bool exists only
    on CUDA, integer matmul only on the CPU), vt may follow either: raising like the backend without the kernel,
    or computing torch's CPU result."""
    kw = {"rtol": rtol, "atol": atol, "check_dtype": check_dtype, "equal_nan": equal_nan, "msg": msg}
    expected, exc = run_torch(fn, *args, **kwargs)
    if exc is not None:
        box = []
        try:
            assert_raises_like(exc, lambda: box.append(fn(vt, *side(args, 0), **side(kwargs, 0))), msg)
            return None
        except AssertionError:
            if not (box and ON_CUDA and _not_implemented(exc)):
                raise
            on_cpu, cpu_exc = _torch_on_cpu(fn, args, kwargs)
            if cpu_exc is not None:
                raise
        _assert_all_on_dev(box[0], msg)
        assert_same(host(box[0]), host(on_cpu), **kw)
        return box[0], on_cpu
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            actual = fn(vt, *side(args, 0), **side(kwargs, 0))
    except Exception as e:
        if not ON_CUDA:
            raise
        _, cpu_exc = _torch_on_cpu(fn, args, kwargs)
        if cpu_exc is None or not _not_implemented(cpu_exc) or not isinstance(e, exception_kind(cpu_exc)):
            raise
        return None  # torch has no CPU kernel for this dtype either; vt raising is acceptable
    assert_on_device(actual, expected, msg)
    ha = host(actual)
    try:
        assert_same(ha, host(expected), **kw)
    except AssertionError as first:
        refs = []
        if upcast_ref:
            refs.append(("the float64 reference", lambda: _cast_like(
                fn(torch, *_upcast(side(args, 1)), **_upcast(side(kwargs, 1))), expected)))
        if cpu_ref:
            refs.append(("torch on the CPU", lambda: fn(torch, *_to_cpu_args(side(args, 1)),
                                                        **_to_cpu_args(side(kwargs, 1)))))
        if not refs:
            raise
        errors = [f"vs torch: {first}"]
        for name, ref in refs:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                r = ref()
            try:
                assert_same(ha, host(r), **kw)
                return actual, expected
            except AssertionError as e:
                errors.append(f"vs {name}: {e}")
        raise AssertionError("matches neither torch nor " + " nor ".join(n for n, _ in refs) + ".\n"
                             + "\n".join(errors)) from None
    return actual, expected


class Failures:
    """Runs many labelled cases inside one test and reports every failing one (not just the first), so a loop
    over dtypes stays attributable: ``with f.case(f"{op} {dtype}"): dcheck(...)``, then ``f.raise_if_any()``."""

    def __init__(self, limit: int = 1500):
        self.errors: list[str] = []
        self.count = 0
        self.limit = limit

    @contextmanager
    def case(self, label: str):
        self.count += 1
        try:
            yield
        except Exception as e:  # noqa: BLE001  (a vt exception where torch had none is a failure too)
            text = str(e).strip()
            if len(text) > self.limit:
                text = text[: self.limit] + " ..."
            self.errors.append(f"[{label}] {type(e).__name__}: {text}")

    def raise_if_any(self):
        if self.errors:
            head = f"{len(self.errors)} of {self.count} cases failed:\n"
            raise AssertionError(head + "\n\n".join(self.errors[:40]))
