"""torch's elementwise math functions and two samplers, composed over dispatcher ops so they run on any device and
differentiate: sgn, signbit, heaviside, xlogy, logit, erfinv, lgamma, digamma, polygamma (n = 0, 1), mvlgamma, i0,
sinc, deg2rad, rad2deg, copysign, ldexp, float_power, bernoulli, normal (the norms and products: _products.py).

The special functions (erfinv, lgamma, digamma, trigamma, i0) evaluate in float64 whatever the input's floating
dtype and round once at the end, so float32 results are correctly rounded to within an ulp or so. They are
autograd Functions with the textbook derivative, because differentiating the series / reflection compositions
would give NaN at the branches not taken.
"""
from __future__ import annotations

import builtins
import math
import numbers

from .._C import autograd as _ag
from .._C import core as _core
from ..autograd.function import Function
from . import _functions as F
from ._generator import drawing_from
from ._products import addmv, chain_matmul, dist, dot, multi_dot, mv, renorm, tensordot, trace, vdot  # noqa: F401

Tensor = _core.Tensor
_dt = _core.dtype


# ----------------------------------------------------------------------------------------------- helpers
def _float_dtype(dtype):
    """Integer and bool inputs compute in float32 (torch's promotion for its float-valued unary ops)."""
    return dtype if dtype.is_floating_point else _dt.float32


def _as_float(x):
    return x if x.dtype.is_floating_point else x.to(_float_dtype(x.dtype))


def _binary_float(a, b):
    """Both operands as tensors of their promoted floating dtype (a Python number joins the other's dtype)."""
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        raise TypeError("expected at least one Tensor argument")
    if not isinstance(a, Tensor):
        b = _as_float(b)
        return F.full_like(b, a) if b.dim() == 0 else F.tensor(a, dtype=b.dtype, device=b.device), b
    if not isinstance(b, Tensor):
        a = _as_float(a)
        return a, F.tensor(b, dtype=a.dtype, device=a.device)
    dtype = _float_dtype(_core.promote_types(a.dtype, b.dtype))
    return a.to(dtype), b.to(dtype)


def _where(cond, a, b):
    return F.where(cond, a, b)


class _InputInGraph(Function):
    """out unchanged (a view), whose backward also hands `x` a zero gradient that, under create_graph, is an op
    of x: Note [Masks keep the input in the graph] (core/src/autograd/formula_helpers.h) for composites whose
    backward reads their input only through a mask (threshold, prelu, max pooling). torch's native backward ops
    take the input, so their first-order gradient requires grad and a penalty on it reaches parameters before
    the op with a zero gradient, not None."""

    @staticmethod
    def forward(ctx, out, x):
        ctx.save_for_backward(x)
        return out.view_as(out)

    @staticmethod
    def backward(ctx, g):
        if not _ag.is_grad_enabled():  # first order only: nothing to keep
            return g, None
        x, = ctx.saved_tensors
        return g, F.where(F.zeros_like(x, dtype=_dt.bool), x, F.zeros_like(x))


def _input_in_graph(out, x):
    """_InputInGraph where autograd records (x requires grad), else out as it is."""
    if isinstance(x, Tensor) and x.requires_grad and _ag.is_grad_enabled():
        return _InputInGraph.apply(out, x)
    return out


def _linked(out, t):
    """out, with t in its graph at gradient zero (torch's zero gradient for an operand that only selects): a
    where that never picks t, so t's NaN or inf cannot leak in as 0 * t would."""
    if not (isinstance(t, Tensor) and t.requires_grad):
        return out
    never = F.zeros_like(out, dtype=_dt.bool)
    return F.where(never, t, out)


# --------------------------------------------------------------------------------------- sign functions
def sgn(input):
    return input.sign()


def signbit(input):
    """True where the sign bit is set: -0.0 and negative NaNs too (read from the bits)."""
    if input.dtype == _dt.bool:
        return F.zeros_like(input, dtype=_dt.bool)
    if not input.dtype.is_floating_point:
        return input < 0
    bits = {_dt.float64: _dt.int64, _dt.float32: _dt.int32}.get(input.dtype, _dt.int16)
    return input.contiguous().view(bits) < 0


def _abs(x):
    """|x| with +0.0 at zero (vt's abs keeps the sign bit of -0.0; torch's clears it)."""
    return _where(x == 0, F.zeros_like(x), x.abs())


def copysign(input, other):
    a, b = _binary_float(input, other)
    mag = _abs(a)
    return _linked(_where(signbit(b), -mag, mag), b)


def heaviside(input, values):
    if input.dtype != values.dtype:
        raise RuntimeError(f"heaviside is not yet implemented for tensors with different dtypes ({input.dtype} and "
                           f"{values.dtype})")
    step = (input > 0).to(input.dtype)
    return _where(input == 0, values.to(input.dtype), step)


# ------------------------------------------------------------------------------------ simple compositions
def _xlogy_value(x, y):
    """x * log(y), 0 where x == 0 (even at y == 0 or inf), NaN where y is NaN."""
    return _where((x == 0) & ~y.isnan(), F.zeros_like(x), x * y.log())


class _Xlogy(Function):
    """torch's derivatives: d/dx = xlogy(grad, y), 0 where x == 0 and y <= 0; d/dy = grad * x / y (NaN at
    x == y == 0, as torch's). Textbook composites would lose d/dx = log(y) at x == 0 < y."""

    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return _xlogy_value(x, y)

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        gx = _where((x == 0) & (y <= 0), F.zeros_like(grad), xlogy(grad, y))
        return gx, grad * x / y


def _binary_with_derivative(value, function, input, other):
    """value(x, y) of the promoted floating operands, through `function` (an autograd Function with the
    textbook derivatives) when either requires grad; it sees one shape, and the expands reduce the gradients
    back to each operand's."""
    x, y = _binary_float(input, other)
    if not (x.requires_grad or y.requires_grad):
        return value(x, y)
    if tuple(x.shape) != tuple(y.shape):
        shape = F.broadcast_shapes(tuple(x.shape), tuple(y.shape))
        x, y = x.expand(*shape), y.expand(*shape)
    return function.apply(x, y)


def xlogy(input, other):
    return _binary_with_derivative(_xlogy_value, _Xlogy, input, other)


def logit(input, eps=None):
    x = _as_float(input)
    if eps is not None:
        x = x.clamp(eps, 1 - eps)
    return (x / (1 - x)).log()


def sinc(input):
    """sin(pi x) / (pi x), 1 at 0."""
    x = _as_float(input)
    zero = x == 0
    safe = _where(zero, F.ones_like(x), x)
    px = safe * math.pi
    return _where(zero, F.ones_like(x), px.sin() / px)


def deg2rad(input):
    return _as_float(input) * (math.pi / 180.0)


def rad2deg(input):
    return _as_float(input) * (180.0 / math.pi)


def ldexp(input, other):
    """input * 2**other."""
    x, e = _binary_float(input, other)
    return x * e.exp2()


def float_power(input, exponent):
    """pow in float64, whatever the operands' dtypes."""
    if isinstance(input, Tensor):
        base = input.to(_dt.float64)
        return base.pow(exponent.to(_dt.float64) if isinstance(exponent, Tensor) else float(exponent))
    e = exponent.to(_dt.float64)
    return F.full_like(e, float(input)).pow(e)


def true_divide(input, other):
    return input / other


# ----------------------------------------------------------------------------------------------- erfinv
_SQRT_PI = math.sqrt(math.pi)
_GILES_CENTRAL = (2.81022636e-08, 3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087, -0.00125372503,
                  -0.00417768164, 0.246640727, 1.50140941)
_GILES_TAIL = (-0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773, -0.0076224613,
               0.00943887047, 1.00167406, 2.83297682)


def _horner(coefs, w):
    p = F.full_like(w, coefs[0])
    for c in coefs[1:]:
        p = p * w + c
    return p


def _erfinv_core(a, one_minus_a):
    """erfinv(a) for 0 <= a <= 1 in float64, given 1 - a separately (exact for ndtri's tiny tails): Giles' 2010
    single-precision approximation (past its range, w > 16, the tail's leading term sqrt(w - log(w)/2)), then
    Newton steps: on erf below a = 0.5, on log(erfc) above, which is nearly quadratic in x there and so converges
    in a few steps where Newton on erfc itself would crawl."""
    w = -(one_minus_a * (2 - one_minus_a)).log()
    central = _horner(_GILES_CENTRAL, w - 2.5)
    tail = _horner(_GILES_TAIL, w.clamp(min=0).sqrt() - 3)
    far = (w.clamp(min=16) - 0.5 * w.clamp(min=16).log()).sqrt()
    x = _where(w < 5, central * a, _where(w < 16, tail * a, far))
    pole = one_minus_a == 0
    x = _where(pole, F.ones_like(x), x)  # Newton on finite values; the pole is set below
    small = a < 0.5
    log_oma = _where(pole, F.ones_like(x), one_minus_a).log()
    for _ in range(4):
        e = x.erfc()
        step_small = (x.erf() - a) * (_SQRT_PI / 2) * (x * x).exp()
        step_tail = (log_oma - e.log()) * e * (_SQRT_PI / 2) * (x * x).exp()
        x = x - _where(small, step_small, step_tail)
    return _where(pole, F.full_like(x, math.inf), x)


def _erfinv_forward(y):
    y64 = y.to(_dt.float64)
    a = y64.abs()
    bad = a > 1
    a_safe = _where(bad, F.zeros_like(a), a)
    x = _erfinv_core(a_safe, 1 - a_safe)
    x = _where(bad | y64.isnan(), F.full_like(x, math.nan), x)
    x = _abs(x)
    return _where(signbit(y64), -x, x).to(y.dtype)


class _Erfinv(Function):
    @staticmethod
    def forward(ctx, y):
        out = _erfinv_forward(y)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * (_SQRT_PI / 2) * (out * out).exp()


def erfinv(input):
    return _Erfinv.apply(_as_float(input))


# ------------------------------------------------------------------------------------ gamma functions
# Lanczos (g = 7, n = 9) coefficients: about 1e-15 relative error for Re(z) >= 0.5.
_LANCZOS_G = 7.0
_LANCZOS = (0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
            12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7)
_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def _is_pole(x):
    return (x <= 0) & (x == x.floor())


def _lgamma_forward(x):
    """log|Gamma(x)| in float64: Lanczos for x >= 0.5, reflection log(pi / |sin(pi x)|) - lgamma(1 - x) below;
    +inf at 0 and the negative integers and at +-inf (torch's values)."""
    x = x.to(_dt.float64)
    reflect = x < 0.5
    z = _where(reflect, 1 - x, x) - 1  # Lanczos takes z = x - 1 >= -0.5
    z = _where(z.isfinite(), z, F.zeros_like(z))
    series = F.full_like(z, _LANCZOS[0])
    for k, c in enumerate(_LANCZOS[1:], start=1):
        series = series + c / (z + k)
    t = z + (_LANCZOS_G + 0.5)
    lg = _HALF_LOG_2PI + (z + 0.5) * t.log() - t + series.log()
    # sin(pi x) from the distance to the nearest integer keeps digits for large |x|
    frac = x - x.round()
    sin_pi = (frac * math.pi).sin().abs()
    refl = math.log(math.pi) - sin_pi.log() - lg
    out = _where(reflect, refl, lg)
    out = _where((x == 1) | (x == 2), F.zeros_like(out), out)  # exact zeros, as torch's
    out = _where(_is_pole(x) | x.isinf(), F.full_like(out, math.inf), out)
    return _where(x.isnan(), x, out)


_BERNOULLI = (1 / 6, -1 / 30, 1 / 42, -1 / 30, 5 / 66, -691 / 2730, 7 / 6, -3617 / 510, 43867 / 798)
_SHIFT = 10  # the asymptotic series is summed at x + 10 >= 10, where its terms fall below 1e-17


def _shifted(x, term):
    """The shared start of digamma and trigamma, returned as (x in float64, the reflection mask x < 0.5, the
    recurrence's sum of term(y + k) for k < _SHIFT, s = y + _SHIFT, 1 / s^2), where y is x reflected to 1 - x
    under the mask, with non-finite values parked at 1."""
    x = x.to(_dt.float64)
    reflect = x < 0.5
    y = _where(reflect, 1 - x, x)
    y = _where(y.isfinite(), y, F.ones_like(y))
    acc = F.zeros_like(y)
    for k in range(_SHIFT):
        acc = acc + term(y + k)
    s = y + _SHIFT
    return x, reflect, acc, s, 1 / (s * s)


def _digamma_forward(x):
    x, reflect, acc, s, inv2 = _shifted(x, lambda t: 1 / t)
    tail = F.zeros_like(s)
    for k in reversed(range(len(_BERNOULLI))):  # sum B_2k / (2k s^2k)
        tail = (tail + _BERNOULLI[k] / (2 * (k + 1))) * inv2
    psi = s.log() - 0.5 / s - tail - acc
    frac = x - x.round()
    cot = math.pi / (frac * math.pi).tan()  # pi cot(pi x), periodic: taken at the distance to an integer
    out = _where(reflect, psi - cot, psi)
    # torch's values at the poles: -inf at +0, +inf at -0, NaN at the negative integers
    out = _where(x == 0, _where(signbit(x), F.full_like(out, math.inf), F.full_like(out, -math.inf)), out)
    out = _where(_is_pole(x) & (x != 0), F.full_like(out, math.nan), out)
    out = _where(x == math.inf, x, out)
    return _where(x.isnan() | (x == -math.inf), F.full_like(out, math.nan), out)


def _trigamma_forward(x):
    x, reflect, acc, s, inv2 = _shifted(x, lambda t: 1 / (t * t))
    tail = F.zeros_like(s)
    for k in reversed(range(len(_BERNOULLI))):  # sum B_2k / s^(2k+1)
        tail = (tail + _BERNOULLI[k]) * inv2
    psi1 = 1 / s + 0.5 * inv2 + tail / s + acc
    sin_pi = ((x - x.round()) * math.pi).sin()
    out = _where(reflect, (math.pi ** 2) / (sin_pi * sin_pi) - psi1, psi1)
    out = _where(_is_pole(x), F.full_like(out, math.inf), out)
    out = _where(x == math.inf, F.zeros_like(out), out)
    return _where(x.isnan() | (x == -math.inf), F.full_like(out, math.nan), out)


def _special_function(name, fwd, deriv):
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return fwd(x).to(x.dtype)

    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * deriv(x)

    return type(name, (Function,), {"forward": staticmethod(forward), "backward": staticmethod(backward)})


class _TrigammaNoGrad(Function):
    @staticmethod
    def forward(ctx, x):
        return _trigamma_forward(x).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        raise RuntimeError("polygamma(1, x): the derivative (polygamma(2, x)) is not implemented")


_Trigamma = _TrigammaNoGrad
_Digamma = _special_function("_Digamma", _digamma_forward, lambda x: _Trigamma.apply(x))
_Lgamma = _special_function("_Lgamma", _lgamma_forward, lambda x: _Digamma.apply(x))


def lgamma(input):
    return _Lgamma.apply(_as_float(input))


def digamma(input):
    return _Digamma.apply(_as_float(input))


def polygamma(n, input):
    if not isinstance(n, numbers.Integral) or n < 0:
        raise RuntimeError(f"polygamma(n, x) does not support negative n (got n = {n})")
    if n == 0:
        return digamma(input)
    if n == 1:
        return _Trigamma.apply(_as_float(input))
    raise NotImplementedError(f"polygamma(n, x): only n = 0 and n = 1 are implemented here (got n = {n})")


def mvlgamma(input, p):
    """The multivariate log-gamma: sum_i lgamma(x - i/2) + p(p-1)/4 log(pi), for every x > (p - 1) / 2."""
    if p < 1:
        raise RuntimeError(f"p has to be greater than or equal to 1 (got p = {p})")
    x = _as_float(input)  # torch documents x > (p - 1) / 2 but checks nothing: values below are lgamma's
    offsets = F.arange(p, dtype=x.dtype, device=x.device) * -0.5
    return lgamma(x.unsqueeze(-1) + offsets).sum(-1) + p * (p - 1) / 4 * math.log(math.pi)


# ------------------------------------------------------------------------------------------------------ i0
_MAX = {_dt.float64: 1.7976931348623157e308, _dt.float32: 3.4028234663852886e38, _dt.float16: 65504.0,
        _dt.bfloat16: 3.3895313892515355e38}


def _i0_forward(x):
    """I0 in float64: its power series (all terms positive, so no cancellation) below 30, the asymptotic
    e^|x| / sqrt(2 pi |x|) * sum prod((2j-1)^2) / (k! (8|x|)^k) above."""
    a = x.to(_dt.float64).abs()
    small = a <= 30
    s = _where(small, a, F.zeros_like(a))
    q = (s * s) / 4
    term, total = F.ones_like(s), F.ones_like(s)
    for k in range(1, 90):
        term = term * q / (k * k)
        total = total + term
    big = _where(small, F.full_like(a, 31.0), a)
    big = _where(big.isfinite(), big, F.full_like(big, 31.0))
    term, series = F.ones_like(big), F.ones_like(big)
    for k in range(1, 25):
        term = term * ((2 * k - 1) ** 2) / (k * 8 * big)
        series = series + term
    # e^a / sqrt(a) computed as (e^(a/2))^2 / sqrt(a) would overflow the same way as torch: e^a first
    asym = (big - 0.5 * (2 * math.pi * big).log()).exp() * series
    out = _where(small, total, asym)
    # torch's values: inf where e^|x| overflows the input's dtype (so past 88.7 in float32), NaN at +-inf
    out = _where(a > math.log(_MAX[x.dtype]), F.full_like(out, math.inf), out)
    return _where(x.isnan() | (a == math.inf), F.full_like(out, math.nan), out)


def _i1_forward(x):
    """I1 (the derivative of I0) in float64, sign of x: the same two regimes."""
    xd = x.to(_dt.float64)
    a = xd.abs()
    small = a <= 30
    s = _where(small, a, F.zeros_like(a))
    q = (s * s) / 4
    term = s / 2
    total = term
    for k in range(1, 90):
        term = term * q / (k * (k + 1))
        total = total + term
    big = _where(small, F.full_like(a, 31.0), a)
    big = _where(big.isfinite(), big, F.full_like(big, 31.0))
    term, series = F.ones_like(big), F.ones_like(big)
    for k in range(1, 25):  # mu = 4: term_k = term_{k-1} * -(4 - (2k-1)^2) / (k 8 x)
        term = term * -(4 - (2 * k - 1) ** 2) / (k * 8 * big)
        series = series + term
    asym = (big - 0.5 * (2 * math.pi * big).log()).exp() * series
    out = _where(small, total, asym)
    out = _where(a == math.inf, a, out)
    return _where(signbit(xd), -out, out)


_I0 = _special_function("_I0", _i0_forward, lambda x: _i1_forward(x).to(x.dtype))


def i0(input):
    return _I0.apply(_as_float(input))


# ----------------------------------------------------------------------------------------------- samplers
def bernoulli(input, p=None, *, generator=None):
    """1 with probability p (the input's values when p is None), else 0, in the input's dtype."""
    if p is None:
        if not input.dtype.is_floating_point:
            raise RuntimeError(f"bernoulli: expected a floating point tensor of probabilities, got {input.dtype}")
        if input.numel() and not builtins.bool(((input >= 0) & (input <= 1)).all().item()):
            raise RuntimeError("Expected p_in >= 0 && p_in <= 1 to be true, but got false.")
        prob = input.detach()
    else:
        if isinstance(p, Tensor):
            prob = p.detach()
        elif not 0 <= p <= 1:
            raise RuntimeError(f"bernoulli_ expects p to be in [0, 1], but got p={p}")
        else:
            prob = p
    with drawing_from(generator):
        u = F.rand(*input.shape, dtype=_dt.float64, device=input.device)
    return _linked((u < prob).to(input.dtype), input)  # torch: requires grad, with zero gradient


def _check_std(std):
    if isinstance(std, Tensor):
        if std.numel() and not builtins.bool((std >= 0).all().item()):
            raise RuntimeError("normal expects all elements of std >= 0.0")
    elif std < 0:
        raise RuntimeError(f"normal expects std >= 0.0, but found std {std}")


def normal(mean, std=1.0, size=None, *, generator=None, out=None, dtype=None, layout=None, device=None,
           pin_memory=False, requires_grad=False):
    """torch.normal's four forms: (Tensor, Tensor), (Tensor, float), (float, Tensor), (float, float, size)."""
    F._check_layout(layout, "normal")
    _check_std(std)
    mt, st = isinstance(mean, Tensor), isinstance(std, Tensor)
    if not mt and not st:
        if size is None:
            raise TypeError("normal(mean: float, std: float) needs size=")
        size = (size,) if isinstance(size, numbers.Integral) else tuple(size)
        with drawing_from(generator):
            z = F.randn(*size, dtype=dtype or _dt.float32, device=device or "cpu")
        res = z * std + mean
        if requires_grad:
            res.requires_grad_()
    else:
        if size is not None:
            raise TypeError("normal: size= goes only with a float mean and a float std")
        ref = mean if mt else std
        for t, name in ((mean, "mean"), (std, "std")):
            if isinstance(t, Tensor) and not t.dtype.is_floating_point:
                raise RuntimeError(f"normal expects floating-point {name}, got {t.dtype}")
        shape = F.broadcast_shapes(mean.shape if mt else (), std.shape if st else ())
        if mt and st and mean.shape != std.shape and mean.numel() != std.numel():
            pass  # torch broadcasts them (with a deprecation warning when the numels agree); so do we
        with drawing_from(generator):
            z = F.randn(*shape, dtype=ref.dtype, device=ref.device)
        m = mean.detach() if mt else mean
        s = std.detach() if st else std
        res = _linked(_linked(z * s + m, mean), std)  # torch: zero gradients to mean and std
    if out is not None:
        out.copy_(res)
        return out
    return res


# ------------------------------------------------------------------------------------------ Tensor methods
def _inplace(fn):
    def method(self, *args, **kwargs):
        return self.copy_(fn(self, *args, **kwargs))
    method.__name__ = fn.__name__ + "_"
    return method


_METHODS = {
    "sgn": sgn, "signbit": signbit, "heaviside": heaviside, "xlogy": xlogy, "logit": logit, "erfinv": erfinv,
    "lgamma": lgamma, "digamma": digamma, "polygamma": lambda self, n: polygamma(n, self), "mvlgamma": mvlgamma,
    "i0": i0, "sinc": sinc, "deg2rad": deg2rad, "rad2deg": rad2deg, "copysign": copysign, "ldexp": ldexp,
    "float_power": float_power, "renorm": renorm, "dist": dist, "dot": dot,
    "vdot": vdot, "mv": mv, "addmv": addmv, "trace": trace,
    "bernoulli": lambda self, p=None, *, generator=None: bernoulli(self, p, generator=generator),
}
for _name in ("sgn", "xlogy", "logit", "erfinv", "lgamma", "digamma", "sinc", "deg2rad", "rad2deg", "copysign",
              "i0", "renorm"):
    _METHODS[_name + "_"] = _inplace(_METHODS[_name])
for _name, _fn in _METHODS.items():
    setattr(Tensor, _name, _fn)
