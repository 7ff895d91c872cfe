"""out= against torch (Note [out= by copy] in python/vibetensor/torch/_out.py): for every function that takes it,
the same values in out, out returned, and the same decision (write, resize with or without a warning, or raise)
for out tensors of the result's dtype, a castable and a non-castable dtype, empty, of another shape, strided,
aliasing an input, and under autograd."""
import warnings

import numpy as np
import pytest
import torch

import vibetensor.torch as vt

RNG = np.random.default_rng(0)
X = RNG.standard_normal((3, 4)).astype(np.float32)
Y = RNG.standard_normal((3, 4)).astype(np.float32)
P = (RNG.random((3, 4)) + 0.5).astype(np.float32)  # positive
M = RNG.random((3, 4)) > 0.5
V = RNG.standard_normal(4).astype(np.float32)
I = np.array([[0, 2], [1, 0], [3, 3]], dtype=np.int64)
SQ = RNG.standard_normal((4, 4)).astype(np.float32)
B3 = RNG.standard_normal((2, 3, 4)).astype(np.float32)
B4 = RNG.standard_normal((2, 4, 5)).astype(np.float32)


def both(arr):
    return vt.from_numpy(arr.copy()), torch.from_numpy(arr.copy())


# name -> a function of the module (vt or torch) and the converter, returning (args, kwargs)
CASES = {
    "add": lambda m, t: ((t(X), t(Y)), {"alpha": 2}), "sub": lambda m, t: ((t(X), t(Y)), {}),
    "mul": lambda m, t: ((t(X), t(Y)), {}), "div": lambda m, t: ((t(X), t(P)), {}),
    "pow": lambda m, t: ((t(P), t(Y)), {}), "atan2": lambda m, t: ((t(X), t(Y)), {}),
    "maximum": lambda m, t: ((t(X), t(Y)), {}), "minimum": lambda m, t: ((t(X), t(Y)), {}),
    "remainder": lambda m, t: ((t(X), t(P)), {}), "fmod": lambda m, t: ((t(X), t(P)), {}),
    "exp": lambda m, t: ((t(X),), {}), "log": lambda m, t: ((t(P),), {}), "sqrt": lambda m, t: ((t(P),), {}),
    "abs": lambda m, t: ((t(X),), {}), "neg": lambda m, t: ((t(X),), {}), "tanh": lambda m, t: ((t(X),), {}),
    "sigmoid": lambda m, t: ((t(X),), {}), "rsqrt": lambda m, t: ((t(P),), {}), "sin": lambda m, t: ((t(X),), {}),
    "floor": lambda m, t: ((t(X),), {}), "trunc": lambda m, t: ((t(X),), {}), "sign": lambda m, t: ((t(X),), {}),
    "reciprocal": lambda m, t: ((t(P),), {}), "square": lambda m, t: ((t(X),), {}),
    "round": lambda m, t: ((t(X),), {"decimals": 1}),
    "eq": lambda m, t: ((t(X), t(Y)), {}), "lt": lambda m, t: ((t(X), t(Y)), {}),
    "logical_and": lambda m, t: ((t(M), t(~M)), {}), "logical_not": lambda m, t: ((t(M),), {}),
    "clamp": lambda m, t: ((t(X),), {"min": -0.5, "max": 0.5}),
    "where": lambda m, t: ((t(M), t(X), t(Y)), {}),
    "lerp": lambda m, t: ((t(X), t(Y), t(P)), {}),
    "addcmul": lambda m, t: ((t(X), t(Y), t(P)), {"value": 0.5}),
    "addcdiv": lambda m, t: ((t(X), t(Y), t(P)), {"value": 0.5}),
    "sum": lambda m, t: ((t(X), 1), {}), "mean": lambda m, t: ((t(X), 0), {"keepdim": True}),
    "prod": lambda m, t: ((t(P), 1), {}), "amax": lambda m, t: ((t(X), 1), {}), "amin": lambda m, t: ((t(X), 0), {}),
    "logsumexp": lambda m, t: ((t(X), 1), {}), "norm": lambda m, t: ((t(X),), {"dim": 1}),
    "std": lambda m, t: ((t(X), 1), {}), "var": lambda m, t: ((t(X), 0), {}),
    "all": lambda m, t: ((t(M), 1), {}), "any": lambda m, t: ((t(M), 0), {}),
    "cumsum": lambda m, t: ((t(X), 1), {}), "cumprod": lambda m, t: ((t(X), 0), {}),
    "cat": lambda m, t: (([t(X), t(Y)], 1), {}), "stack": lambda m, t: (([t(X), t(Y)],), {}),
    "matmul": lambda m, t: ((t(X), t(SQ)), {}), "mm": lambda m, t: ((t(X), t(SQ)), {}),
    "bmm": lambda m, t: ((t(B3), t(B4)), {}),
    "addmm": lambda m, t: ((t(V), t(X), t(SQ)), {"beta": 0.5}),
    "outer": lambda m, t: ((t(V), t(V)), {}), "tril": lambda m, t: ((t(SQ),), {}), "triu": lambda m, t: ((t(SQ), 1), {}),
    "gather": lambda m, t: ((t(X), 1, t(I)), {}), "index_select": lambda m, t: ((t(X), 1, t(I[:, 0].copy())), {}),
    "masked_select": lambda m, t: ((t(X), t(M)), {}), "nonzero": lambda m, t: ((t(M),), {}),
    "max": lambda m, t: ((t(X),), {}), "min": lambda m, t: ((t(X),), {}),
    "acos": lambda m, t: ((t(X / 4),), {}), "asin": lambda m, t: ((t(X / 4),), {}), "atan": lambda m, t: ((t(X),), {}),
    "ceil": lambda m, t: ((t(X),), {}), "cos": lambda m, t: ((t(X),), {}), "cosh": lambda m, t: ((t(X),), {}),
    "erf": lambda m, t: ((t(X),), {}), "erfc": lambda m, t: ((t(X),), {}), "exp2": lambda m, t: ((t(X),), {}),
    "expm1": lambda m, t: ((t(X),), {}), "frac": lambda m, t: ((t(X),), {}), "log10": lambda m, t: ((t(P),), {}),
    "log1p": lambda m, t: ((t(P),), {}), "log2": lambda m, t: ((t(P),), {}), "sinh": lambda m, t: ((t(X),), {}),
    "tan": lambda m, t: ((t(X),), {}), "negative": lambda m, t: ((t(X),), {}),
    "floor_divide": lambda m, t: ((t(X), t(P)), {}), "multiply": lambda m, t: ((t(X), t(Y)), {}),
    "divide": lambda m, t: ((t(X), t(P)), {}), "subtract": lambda m, t: ((t(X), t(Y)), {}),
    "ge": lambda m, t: ((t(X), t(Y)), {}), "gt": lambda m, t: ((t(X), t(Y)), {}), "le": lambda m, t: ((t(X), t(Y)), {}),
    "ne": lambda m, t: ((t(X), t(Y)), {}), "logical_or": lambda m, t: ((t(M), t(~M)), {}),
    "logical_xor": lambda m, t: ((t(M), t(~M)), {}),
    "bitwise_and": lambda m, t: ((t(I), t(I + 1)), {}), "bitwise_or": lambda m, t: ((t(I), t(I + 1)), {}),
    "bitwise_xor": lambda m, t: ((t(I), t(I + 1)), {}), "bitwise_not": lambda m, t: ((t(I),), {}),
    "concat": lambda m, t: (([t(X), t(Y)],), {}), "concatenate": lambda m, t: (([t(X), t(Y)], 1), {}),
    "ger": lambda m, t: ((t(V), t(V)), {}), "baddbmm": lambda m, t: ((t(B3[:, :, :1] * 0 + 1), t(B3), t(B4)), {}),
}
MULTI = {  # multi-output: out is a tuple (values, indices)
    "max": lambda t: ((t(X), 1), {}), "min": lambda t: ((t(X), 0), {"keepdim": True}),
    "sort": lambda t: ((t(X), 1), {}), "topk": lambda t: ((t(X), 2), {}),
}


def run(mod, conv, name, args_of, out):
    args, kwargs = args_of(mod, conv)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        try:
            r = getattr(mod, name)(*args, **kwargs, out=out)
        except (RuntimeError, TypeError):  # torch raises either for a refused dtype (cat: TypeError)
            return ("raised",), None, 0  # (torch may warn about the resize before it refuses the dtype)
    return ("ok", r is out), r, len([x for x in w if "resized" in str(x.message)])


def convs():
    return (lambda a: vt.from_numpy(np.ascontiguousarray(a))), (lambda a: torch.from_numpy(np.ascontiguousarray(a)))


def reference_result(name, args_of):
    _, tc = convs()
    args, kwargs = args_of(torch, tc)
    return getattr(torch, name)(*args, **kwargs)


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("kind", ["exact", "float64", "int64", "empty", "reshaped", "strided", "bool"])
def test_out_matches_torch(name, kind):
    vc, tc = convs()
    ref = reference_result(name, CASES[name])
    dtype = {"float64": torch.float64, "int64": torch.int64, "bool": torch.bool}.get(kind, ref.dtype)
    vdtype = getattr(vt, str(dtype).split(".")[1])
    shape = {"empty": (0,), "reshaped": (ref.numel() + 3,)}.get(kind, tuple(ref.shape))
    if kind == "strided":  # a strided view of a larger buffer, the result's shape
        tbase, vbase = torch.zeros(*shape, 2, dtype=dtype), vt.zeros(*shape, 2, dtype=vdtype)
        tout, vout = tbase[..., 0], vbase[..., 0]
    else:
        tout, vout = torch.zeros(shape, dtype=dtype), vt.zeros(shape, dtype=vdtype)
    t_verdict, tr, t_warn = run(torch, tc, name, CASES[name], tout)
    v_verdict, vr, v_warn = run(vt, vc, name, CASES[name], vout)
    assert v_verdict == t_verdict, (name, kind, v_verdict, t_verdict)
    assert v_warn == t_warn, (name, kind, "resize warnings", v_warn, t_warn)
    if t_verdict[0] == "ok":
        assert tuple(vout.shape) == tuple(tout.shape) and vout.dtype == vdtype
        np.testing.assert_allclose(vout.double().numpy(), tout.double().numpy(), rtol=1e-5, atol=1e-6)
        if kind == "strided":
            np.testing.assert_allclose(vbase.double().numpy(), tbase.double().numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(MULTI))
@pytest.mark.parametrize("kind", ["exact", "empty", "wrong_index_dtype", "wrong_value_dtype", "not_a_tuple"])
def test_multi_output_out_matches_torch(name, kind):
    vc, tc = convs()
    targs, tkw = MULTI[name](tc)
    vargs, vkw = MULTI[name](vc)
    ref = getattr(torch, name)(*targs, **tkw)

    def outs(mod, lib):
        vdt = mod.float64 if kind == "wrong_value_dtype" else mod.float32
        idt = mod.float32 if kind == "wrong_index_dtype" else mod.int64
        shape = (0,) if kind == "empty" else tuple(ref[0].shape)
        o = (mod.zeros(shape, dtype=vdt), mod.zeros(shape, dtype=idt))
        return o[0] if kind == "not_a_tuple" else o

    def call(mod, args, kw):
        o = outs(mod, None)
        try:
            r = getattr(mod, name)(*args, **kw, out=o)
        except (RuntimeError, TypeError):
            return "raised", None, None
        return "ok", r, o

    tv, tr, to = call(torch, targs, tkw)
    vv, vr, vo = call(vt, vargs, vkw)
    assert vv == tv, (name, kind, vv, tv)
    if tv == "ok":
        assert vr[0] is vo[0] and vr[1] is vo[1] and vr.values is vo[0] and vr.indices is vo[1]
        np.testing.assert_allclose(vo[0].numpy(), to[0].numpy(), rtol=1e-6)
        np.testing.assert_array_equal(vo[1].numpy(), to[1].numpy())


def test_out_aliasing_an_input_and_autograd():
    a, b = both(X)
    y, ty = both(Y)
    vt.add(a, y, out=a)
    torch.add(b, ty, out=b)
    np.testing.assert_allclose(a.numpy(), b.numpy())
    vt.matmul(vt.from_numpy(SQ.copy()), vt.from_numpy(SQ.copy()), out=vt.from_numpy(SQ.copy()))
    x = vt.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="don't support automatic differentiation"):
        vt.exp(x, out=vt.empty(3))
    with pytest.raises(RuntimeError, match="don't support automatic differentiation"):
        vt.sum(x, 0, out=vt.empty(()))
    with vt.no_grad():  # without grad mode out= is fine, as in torch
        o = vt.empty(3)
        assert vt.exp(x, out=o) is o and o.tolist() == pytest.approx([np.e] * 3)
    with pytest.raises(TypeError, match="'out' must be Tensor"):
        vt.exp(vt.ones(3), out=[1, 2, 3])
    assert vt.exp(vt.zeros(2), out=None).tolist() == [1.0, 1.0]  # out=None is the plain call


def test_resize_matches_torch():
    for sizes in [(2, 3), (12,), (0,), (4, 5), ()]:
        v, t = vt.arange(6.0).view(2, 3), torch.arange(6.0).view(2, 3)
        v.resize_(*sizes) if sizes else v.resize_(())
        t.resize_(*sizes) if sizes else t.resize_(())
        assert tuple(v.shape) == tuple(t.shape) and v.is_contiguous()
        n = min(6, v.numel())
        np.testing.assert_array_equal(v.reshape(-1)[:n].numpy(), t.reshape(-1)[:n].numpy())  # old values kept
    base = vt.arange(4.0)
    view = base.view(2, 2)
    base.resize_(100)  # the storage grows in place: the view sees the new memory and the old values
    base[50] = 7.0
    assert view.tolist() == [[0.0, 1.0], [2.0, 3.0]] and base[50].item() == 7.0
    off = vt.arange(10.0)[4:]  # a storage offset is kept; the extent past it counts
    off.resize_(8)
    assert off.storage_offset() == 4 and off[:6].tolist() == [4.0, 5.0, 6.0, 7.0, 8.0, 9.0]
    with pytest.raises(RuntimeError, match="negative dimension"):
        vt.ones(2).resize_(-1)
    with pytest.raises(RuntimeError, match="require grad"):
        vt.ones(2, requires_grad=True).resize_(3)
    with pytest.raises(RuntimeError, match="overflows"):
        vt.ones(2).resize_(2**62, 4)
