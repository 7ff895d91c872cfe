"""Lists of tensors for the foreach tests, shared by the CPU suite (tests/autograd/test_foreach.py) and the GPU
suite (tests/cuda/test_cuda_foreach.py): each list is built once in NumPy, copied to the device on both sides,
and only then viewed (transposed, strided, offset), so the vt and torch tensors carry the same layouts.

Norms are checked against the exact norm (float64 over the input's values, rounded to the result dtype) as
well as against torch: vt must be within `TIGHT` of it or no further from it than torch is. torch's CPU norm
sums in eight float lanes from start to end (3e-4 off for a million float32 elements at ord -1), so a plain
tolerance against torch would have to be loose enough to hide a real error of ours."""
import math

import numpy as np
import torch
import vibetensor.torch as vt
from helpers import dtype_name, pair_from_numpy, random_array

DTYPES = ["float32", "float64", "float16", "bfloat16"]
ORDS = [2.0, 1.0, math.inf, 3.0]
MORE_ORDS = [0.0, -math.inf, 0.5, -1.0]
# How far from the exact norm a result may be without comparing to torch's: a few float32 or float64
# roundings of the accumulation, or one unit in the last place of a 16-bit result.
TIGHT = {"float32": 1e-5, "float64": 1e-12, "float16": 2.0 ** -10, "bfloat16": 2.0 ** -7}

# (shape, view): the view's result has `shape`. "t": a transpose (dense, not contiguous), "step": every other
# column (not dense), "offset": x[1:] of a longer vector (misaligned for vector loads), "permute": a 3-D
# permutation.
ODD = [((0,), None), ((1,), None), ((3,), None), ((1000003,), None), ((65537,), None), ((16385,), None),
       ((4, 0), None), ((), None), ((33, 17), "t"), ((9, 11), "step"), ((200001,), "offset"), ((5, 6, 7), "permute")]
SMALL = [((0,), None), ((1,), None), ((7, 5), "t"), ((3, 4), "step"), ((129,), "offset"), ((2, 3, 4), "permute"),
         ((1000,), None)]


def many(rng):
    """300 small tensors (some empty, some single) and a few large ones spanning several chunks: more rows than
    one CUDA launch's table holds."""
    sizes = [int(s) for s in rng.integers(0, 300, size=300)] + [100003, 262144, 1000003]
    order = rng.permutation(len(sizes))
    return [((sizes[i],), None) for i in order]


def _viewed(x, shape, view):
    if view == "t":
        return x.t()
    if view == "step":
        return x[:, ::2]
    if view == "offset":
        return x[1:]
    if view == "permute":
        return x.permute(2, 0, 1)
    return x


def _base_shape(shape, view):
    if view == "t":
        return (shape[1], shape[0])
    if view == "step":
        return (shape[0], 2 * shape[1])
    if view == "offset":
        return (shape[0] + 1,)
    if view == "permute":
        return (shape[1], shape[2], shape[0])
    return shape


def make_lists(rng, specs, dtype, device, low=None):
    """(vt tensors, torch tensors, their bases): the same values and layouts on `device`."""
    vs, ts, bases = [], [], []
    for shape, view in specs:
        lo = low if low is not None else -4.0
        p = pair_from_numpy(random_array(_base_shape(shape, view), dtype, rng, low=lo), dtype)
        bv, bt = p.v.to(device), p.t.to(device)
        bases.append((bv, bt))
        vs.append(_viewed(bv, shape, view))
        ts.append(_viewed(bt, shape, view))
        assert tuple(vs[-1].shape) == tuple(shape) and vs[-1].is_contiguous() == ts[-1].is_contiguous()
    return vs, ts, bases


def _exact(t, p, dtype):
    """The exact norm of torch tensor t's values (float64), rounded to the result dtype."""
    x = np.abs(t.detach().cpu().double().numpy().ravel())
    if x.size == 1 and p != 0:
        e = float(x[0])  # torch's one-element norm is |x|
    else:
        e = float(np.linalg.norm(x, p)) if x.size else 0.0
    return float(torch.tensor(e, dtype=torch.float64).to(getattr(torch, dtype)).double())


def _dev_key(d):
    return d.type, (d.index or 0) if d.type != "cpu" else 0


def assert_norms_match(vres, tres, ts, p, dtype, what=""):
    """vt's norms (a tuple of 0-dim tensors) against torch's and the exact norms of torch's inputs `ts`, each on
    its input's device (see the module docstring)."""
    assert isinstance(vres, tuple) and len(vres) == len(tres), what
    for i, (v, t, x) in enumerate(zip(vres, tres, ts)):
        assert v.dim() == 0 and dtype_name(v.dtype) == dtype_name(t.dtype), (what, i, v.dtype)
        assert _dev_key(v.device) == _dev_key(x.device), (what, i, v.device, x.device)
        got, theirs, e = v.cpu().double().item(), t.cpu().double().item(), _exact(x, p, dtype)
        if math.isinf(e) or math.isnan(e):
            assert got == e or (math.isnan(e) and math.isnan(got)), (what, i, got, e)
            continue
        err, their_err = abs(got - e), abs(theirs - e)
        assert err <= max(their_err, TIGHT[dtype] * abs(e)) + 1e-30, \
            f"{what} [{i}] shape {tuple(x.shape)}: vt {got!r}, torch {theirs!r}, exact {e!r}"


def norm_bits(res):
    """The results as float64 values (exact for every dtype here), to compare runs bit for bit."""
    return [r.cpu().double().item().hex() for r in res]


def assert_lists_equal(vs, ts, what=""):
    """Bit-equal values (16-bit through float32, which is exact)."""
    for i, (v, t) in enumerate(zip(vs, ts)):
        a = v.cpu().to(vt.float32).numpy() if v.dtype in (vt.bfloat16, vt.float16) else v.cpu().numpy()
        b = t.cpu().to(torch.float32).numpy() if t.dtype in (torch.bfloat16, torch.float16) else t.cpu().numpy()
        np.testing.assert_array_equal(a, b, err_msg=f"{what} [{i}]")


# ---- checks, run on a device by both suites ----
def check_norm(rng, specs, dtype, p, device):
    if p < 0 or p == math.inf:  # no identity: an empty tensor is an error (test_errors)
        specs = [s for s in specs if math.prod(s[0]) > 0]
    vs, ts, _ = make_lists(rng, specs, dtype, device)
    assert_norms_match(vt._foreach_norm(vs, p), torch._foreach_norm(ts, p), ts, p, dtype, f"{dtype} ord {p}")


def check_mixed_dtypes(rng, device):
    """One call over a list mixing dtypes: one group each, every result at its tensor's place in its dtype; and
    the dtype= argument (the input widened first, as torch's linalg.vector_norm)."""
    vs, ts, pairs = [], [], []
    for i, dtype in enumerate(["float32", "bfloat16", "float64", "float32", "float16", "bfloat16", "float64"]):
        v, t, _ = make_lists(rng, [((50 + 1000 * i,), "offset" if i % 2 else None)], dtype, device)
        vs += v
        ts += t
        pairs.append(dtype)
    for p in (2.0, 1.0, math.inf):
        vres, tres = vt._foreach_norm(vs, p), torch._foreach_norm(ts, p)
        for i, dtype in enumerate(pairs):
            assert_norms_match(vres[i:i + 1], tres[i:i + 1], ts[i:i + 1], p, dtype, f"mixed [{i}] ord {p}")
    wide = [i for i, d in enumerate(pairs) if d != "float64"]
    vres = vt._foreach_norm([vs[i] for i in wide], 2.0, dtype=vt.float64)
    tres = torch._foreach_norm([ts[i] for i in wide], 2.0, dtype=torch.float64)
    assert_norms_match(vres, tres, [ts[i].double() for i in wide], 2.0, "float64", "dtype=float64")


def check_deterministic(rng, device, dtype="float32"):
    """The same list twice gives the same bits (Note [Foreach norm order])."""
    vs, _, _ = make_lists(rng, many(rng) + ODD, dtype, device)
    for p in (2.0, 1.0, 3.0):
        first = norm_bits(vt._foreach_norm(vs, p))
        for _ in range(2):
            assert norm_bits(vt._foreach_norm(vs, p)) == first, p


def scales(kind, dtype, device):
    """(vt scale, torch scale) of one kind: a 0-dim CPU tensor (float32 as clip_grad's, float64, int64), or a
    0-dim tensor on the device (the list's dtype, or float32 to be cast to it)."""
    value, dt = {"cpu float32": (0.37, "float32"), "cpu float64": (0.1, "float64"), "cpu int64": (3, "int64"),
                 "device same dtype": (0.37, dtype), "device float32": (0.37, "float32")}[kind]
    v, t = vt.tensor(value, dtype=getattr(vt, dt)), torch.tensor(value, dtype=getattr(torch, dt))
    if kind.startswith("device"):
        v, t = v.to(device), t.to(device)
    return v, t


SCALE_KINDS = ["cpu float32", "cpu float64", "cpu int64", "device same dtype", "device float32"]


def check_mul(rng, specs, dtype, kind, device):
    """_foreach_mul_ bit for bit against torch's: every tensor and every base (so views wrote through and
    nothing else changed); each written tensor's version moves."""
    vs, ts, bases = make_lists(rng, specs, dtype, device)
    sv, st = scales(kind, dtype, device)
    before = [v._version for v in vs]
    assert vt._foreach_mul_(vs, sv) is vs  # torch returns the list it was given
    torch._foreach_mul_(ts, st)
    assert_lists_equal(vs, ts, f"{dtype} {kind}")
    assert_lists_equal([b[0] for b in bases], [b[1] for b in bases], f"{dtype} {kind} bases")
    for i, v in enumerate(vs):
        assert v.numel() == 0 or v._version > before[i], (i, specs[i])


def check_mul_16bit_scalar(device):
    """A CPU scale multiplies a 16-bit tensor from its own value, not its 16-bit rounding (Note [Opmath
    scalars]): 0.5 * 70000 is 35008 in float16, not inf."""
    v, t = vt.tensor([0.5, 0.0], dtype=vt.float16).to(device), torch.tensor([0.5, 0.0], dtype=torch.float16).to(device)
    vt._foreach_mul_([v], vt.tensor(70000.0))
    torch._foreach_mul_([t], torch.tensor(70000.0))
    assert_lists_equal([v], [t])
    assert v.cpu().float().numpy().tolist() == [35008.0, 0.0]


def grads_pair(rng, dtypes, device, transposed=True, empty=True):
    """vt and torch parameters with the same gradients of `dtypes` in turn (a 2-D one transposed on both sides),
    one of them empty unless `empty` is False."""
    shapes = [(4, 5), (5,), (3, 2, 2), (0,) if empty else (2,), (1,), (33, 17), (1000,)]
    vps, tps = [], []
    for i, shape in enumerate(shapes):
        dtype = dtypes[i % len(dtypes)]
        view = "t" if transposed and len(shape) == 2 and i % 2 else None
        (gv,), (gt,), _ = make_lists(rng, [(shape, view)], dtype, device, low=-3.0)
        vp = vt.nn.Parameter(vt.zeros(*shape, dtype=gv.dtype, device=device))
        tp = torch.nn.Parameter(torch.zeros(*shape, dtype=gt.dtype, device=device))
        vp.grad, tp.grad = gv, gt
        vps.append(vp)
        tps.append(tp)
    return vps, tps


def clip_rtol(dtypes):
    return max({"float32": 1e-5, "float64": 1e-12, "float16": 2.0 ** -9, "bfloat16": 2.0 ** -6}[d] for d in dtypes)


def check_clip(rng, dtypes, norm_type, max_norm, foreach, device):
    vps, tps = grads_pair(rng, dtypes, device)
    if norm_type == math.inf:  # an empty gradient has no inf norm, in either
        for m, ps in ((torch, tps), (vt, vps)):
            try:
                m.nn.utils.clip_grad_norm_(ps, max_norm, norm_type, foreach=foreach)
                raise AssertionError(f"{m.__name__}: no error for the inf norm of an empty gradient")
            except RuntimeError as e:
                assert "empty" in str(e) or "numel() == 0" in str(e), e
        vps, tps = grads_pair(rng, dtypes, device, empty=False)
    tn = torch.nn.utils.clip_grad_norm_(tps, max_norm, norm_type, foreach=foreach)
    vn = vt.nn.utils.clip_grad_norm_(vps, max_norm, norm_type, foreach=foreach)
    assert vn.dim() == 0 and _dev_key(vn.device) == _dev_key(tn.device) and dtype_name(vn.dtype) == dtype_name(tn.dtype)
    rtol = clip_rtol(dtypes)
    np.testing.assert_allclose(vn.cpu().double().item(), tn.cpu().double().item(), rtol=rtol)
    for i, (v, t) in enumerate(zip(vps, tps)):
        np.testing.assert_allclose(v.grad.cpu().double().numpy(), t.grad.cpu().double().numpy(), rtol=rtol,
                                   atol=1e-6, err_msg=f"grad {i}")


def check_clip_nonfinite(rng, foreach, device):
    """error_if_nonfinite=True raises on an inf gradient (the one host read); False scales by the inf/nan norm as
    torch does."""
    for bad in (math.inf, math.nan):
        vps, tps = grads_pair(rng, ["float32"], device, transposed=False)
        vps[1].grad[2] = bad
        tps[1].grad[2] = bad
        for m, ps in ((torch, tps), (vt, vps)):
            try:
                m.nn.utils.clip_grad_norm_(ps, 1.0, error_if_nonfinite=True, foreach=foreach)
                raise AssertionError(f"{m.__name__}: no error for a {bad} gradient")
            except RuntimeError as e:
                assert "non-finite" in str(e)
        tn = torch.nn.utils.clip_grad_norm_(tps, 1.0, foreach=foreach)
        vn = vt.nn.utils.clip_grad_norm_(vps, 1.0, foreach=foreach)
        np.testing.assert_equal(vn.cpu().item(), tn.cpu().item())
        for v, t in zip(vps, tps):
            np.testing.assert_allclose(v.grad.cpu().numpy(), t.grad.cpu().numpy(), rtol=1e-5, atol=1e-7)


def check_total_norm_then_clip(rng, foreach, device):
    """get_total_norm and clip_grads_with_norm_, the two halves of clip_grad_norm_, against torch's."""
    vps, tps = grads_pair(rng, ["float32", "float64"], device)
    tn = torch.nn.utils.get_total_norm([p.grad for p in tps], 2.0, foreach=foreach)
    vn = vt.nn.utils.get_total_norm([p.grad for p in vps], 2.0, foreach=foreach)
    np.testing.assert_allclose(vn.cpu().item(), tn.cpu().item(), rtol=1e-6)
    torch.nn.utils.clip_grads_with_norm_(tps, 0.25, tn, foreach=foreach)
    assert vt.nn.utils.clip_grads_with_norm_(vps, 0.25, vn, foreach=foreach) is None
    for v, t in zip(vps, tps):
        np.testing.assert_allclose(v.grad.cpu().double().numpy(), t.grad.cpu().double().numpy(), rtol=1e-5, atol=1e-7)
