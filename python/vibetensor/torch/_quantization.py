"""torch's quantization primitives outside torch.ao:
  - vt.fake_quantize_per_tensor_affine(input, scale, zero_point, quant_min, quant_max) and
    vt.fake_quantize_per_channel_affine(input, scale, zero_point, axis, quant_min, quant_max), the quantization-aware
    training primitives: round(input / scale) + zero_point clamped to [quant_min, quant_max], mapped back to floats,
    with the straight-through gradient masked to the unclamped elements (scale and zero_point get none);
  - vt._int_mm(self, mat2): the int8 x int8 -> int32 matrix product of W8A8 kernels.

Numerics follow torch's kernels bit for bit: the scale is a float32, the input is multiplied by its float32
reciprocal (not divided by it) in at least float32, rounded half to even; half and bfloat16 inputs compute in
float32 and round back once. A float zero point (per channel) is added before the rounding, an integer one after."""
from __future__ import annotations

import struct

from .._C import core as _core
from ..autograd.function import Function
from ._out import _torch_name

_dt = _core.dtype


def _vt():
    import vibetensor.torch as vt
    return vt


def _compute_dtype(x):
    return _dt.float64 if x.dtype == _dt.float64 else _dt.float32


class _FakeQuantize(Function):
    """scale / zero_point: python numbers or tensors broadcastable to input (already float32 / their own dtype)."""

    @staticmethod
    def forward(ctx, x, scale, zero_point, quant_min, quant_max, zp_in_round):
        vt = _vt()
        cd = _compute_dtype(x)
        xc = x.detach().to(cd)
        if isinstance(scale, _core.Tensor):  # float32: its reciprocal is float32 too, as the kernels take it
            inv = (1.0 / scale).to(cd)
            scale = scale.to(cd)
        else:
            inv = _f32(1.0 / scale)
        if zp_in_round:  # lrintf(zero_point + x * inv_scale): the sum rounded to float32 first
            q = vt.round((xc * inv + zero_point).to(_dt.float32))
        else:
            q = vt.round(xc * inv) + zero_point
        mask = (q >= quant_min) & (q <= quant_max)
        ctx.save_for_backward(mask)
        if zp_in_round:  # (q - zero_point) * scale in double, then float (q - zp is not a float32 integer)
            f64 = _dt.float64
            out = ((q.clamp(quant_min, quant_max).to(f64) - zero_point.to(f64)) * scale.to(f64)).to(_dt.float32)
        else:
            out = (q.clamp(quant_min, quant_max) - zero_point) * scale
        return out.to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (mask,) = ctx.saved_tensors
        return grad * mask.to(grad.dtype), None, None, None, None, None


def _check_input(name, kernel, input):
    if not isinstance(input, _core.Tensor):
        raise TypeError(f"{name}(): argument 'input' (position 1) must be Tensor, not {type(input).__name__}")
    if not input.dtype.is_floating_point:
        raise NotImplementedError(f"\"{kernel}\" not implemented for '{_torch_name(input.dtype)}'")


def _check_range(quant_min, quant_max):
    if quant_min > quant_max:
        raise RuntimeError("`quant_min` should be less than or equal to `quant_max`.")


def _f32(v):
    """A python float rounded to float32, as the kernels' `float scale` argument holds it."""
    return struct.unpack("f", struct.pack("f", float(v)))[0]


def fake_quantize_per_tensor_affine(input, scale, zero_point, quant_min, quant_max):
    _check_input("fake_quantize_per_tensor_affine", "fake_quantize_tensor_cachemask_kernel_type_handling", input)
    _check_range(quant_min, quant_max)
    if isinstance(scale, _core.Tensor):  # item() refuses several elements, as torch's does
        scale = scale.item()
    if isinstance(zero_point, _core.Tensor):
        zero_point = zero_point.item()
    zero_point = int(zero_point)
    if not quant_min <= zero_point <= quant_max:
        raise RuntimeError("`zero_point` must be between `quant_min` and `quant_max`.")
    s = _f32(scale)
    return _FakeQuantize.apply(input, s, zero_point, quant_min, quant_max, False)


def fake_quantize_per_channel_affine(input, scale, zero_point, axis, quant_min, quant_max):
    _check_input("fake_quantize_per_channel_affine", "fake_quantize_channel_cachemask_cpu_type_handling", input)
    _check_range(quant_min, quant_max)
    if scale.dtype not in (_dt.float32, _dt.bfloat16):
        raise RuntimeError(f"Scale must be Float or BFloat16, found {_torch_name(scale.dtype).replace('Tensor', '')}")
    if zero_point.dtype not in (_dt.int32, _dt.float32, _dt.float16):
        raise RuntimeError(f"Zero-point must be Int32, Float or Half, found "
                           f"{_torch_name(zero_point.dtype).replace('Tensor', '')}")
    if scale.dim() != 1:
        raise RuntimeError("scale should be a 1-D tensor")
    if zero_point.dim() != 1:
        raise RuntimeError("zero point should be a 1-D tensor")
    if scale.numel() != zero_point.numel():
        raise RuntimeError("scale and zero-point need to have the same dimensions")
    if not 0 <= axis < input.dim():
        raise RuntimeError("`axis` must be between 0 and number of dimensions of input")
    if scale.numel() != input.shape[axis]:
        raise RuntimeError("dimensions of scale and zero-point are not consistent with input tensor")
    zp_float = zero_point.dtype.is_floating_point
    if not zp_float and bool(((zero_point < quant_min) | (zero_point > quant_max)).any()):
        raise RuntimeError("`zero_point` must be between `quant_min` and `quant_max`.")
    shape = [1] * input.dim()
    shape[axis] = -1
    s = scale.to(_dt.float32).reshape(shape)
    zp = zero_point.to(_dt.float32 if zp_float else _dt.int64).reshape(shape)
    return _FakeQuantize.apply(input, s, zp, quant_min, quant_max, zp_float)


def _int_mm(self, mat2):
    name = "int_mm_out_cpu"
    if self.dim() != 2:
        raise RuntimeError(f"{name}: Expected self to be of dimension 2 but got {self.dim()}")
    if mat2.dim() != 2:
        raise RuntimeError(f"{name}: Expected mat2 to be of dimension 2 but got {mat2.dim()}")
    if self.shape[1] != mat2.shape[0]:
        raise RuntimeError(f"{name}: self.size(1) needs to match mat2.size(0) but got {self.shape[1]} and "
                           f"{mat2.shape[0]}")
    if self.dtype not in (_dt.int8, _dt.uint8):
        raise RuntimeError(f"{name}: Expected self dtype to be int8 or uint8 but got {_c_name(self.dtype)}")
    if mat2.dtype != _dt.int8:
        raise RuntimeError(f"{name}: Expected mat2 dtype to be of type int8 but got {_c_name(mat2.dtype)}")
    i32 = _dt.int32  # the products and their sums accumulate in int32, as the kernels do
    return self.to(i32) @ mat2.to(i32)


def _c_name(dtype):
    """The C type torch's int_mm messages name."""
    names = {"float32": "float", "float64": "double", "uint8": "unsigned char", "int8": "signed char",
             "int16": "short", "int32": "int", "int64": "long", "bool": "bool", "float16": "c10::Half",
             "bfloat16": "c10::BFloat16"}
    key = str(dtype).split(".")[-1]
    return names.get(key, key)


FUNCTIONS = {"_int_mm": _int_mm, "fake_quantize_per_tensor_affine": fake_quantize_per_tensor_affine,
             "fake_quantize_per_channel_affine": fake_quantize_per_channel_affine}
