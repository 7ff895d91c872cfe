"""torch's free-function forms of Tensor methods that vibetensor had only as methods: torch.clamp_min(x, 0.1),
torch.clone(x), torch.unflatten(x, 1, (2, 3)), torch.sigmoid_(x), ... Each forwards to the method of its first
argument (`input`, positional or by keyword), as torch's function and method are one op; a first argument that
is not a tensor is refused with torch's TypeError."""
from .._C import core as _core

Tensor = _core.Tensor

# in-place unary forms (torch.sqrt_(x) is x.sqrt_())
_INPLACE = ("abs_ acos_ acosh_ arccos_ arccosh_ arcsin_ arcsinh_ arctan_ arctanh_ asin_ asinh_ atan_ atanh_ "
            "ceil_ cos_ cosh_ deg2rad_ erf_ erfc_ exp2_ exp_ expm1_ fix_ floor_ frac_ i0_ log10_ log1p_ log2_ log_ "
            "neg_ negative_ rad2deg_ reciprocal_ round_ rsqrt_ sigmoid_ sin_ sinc_ sinh_ sqrt_ square_ tan_ tanh_ "
            "trunc_ zero_").split()
# forms with arguments, and queries
_OTHER = ("addmv_ adjoint as_strided_ cholesky cholesky_inverse clamp_ clamp_max clamp_max_ clamp_min clamp_min_ "
          "clip_ clone detach detach_ fill_ gcd_ get_device is_inference is_same_size is_signed lcm_ ldexp_ logit_ "
          "nan_to_num_ qr resize_as_ unflatten xlogy_").split()


def _forwarding(name):
    def fn(input, *args, **kwargs):
        if not isinstance(input, Tensor):
            raise TypeError(f"{name}(): argument 'input' (position 1) must be Tensor, not {type(input).__name__}")
        return getattr(input, name)(*args, **kwargs)

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"torch.{name}(input, ...): input.{name}(...)."
    return fn


FUNCTIONS = {name: _forwarding(name) for name in _INPLACE + _OTHER}  # the methods are attached later
