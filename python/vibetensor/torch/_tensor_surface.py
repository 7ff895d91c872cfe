"""Tensor methods for the selection, sorting, shape and arithmetic compositions (_select_ops, _composite_ops,
_einsum) and the `data` alias, attached to the compiled Tensor class at import, as _tensor.py does for the rest
of torch's Tensor API."""
from .._C import core as _core
from . import _composite_ops as C
from . import _select_ops as S
from ._linalg_svd import torch_cross

Tensor = _core.Tensor


def _flip(self, *dims, **kwargs):
    """Tensor.flip(*dims) and Tensor.flip(dims): the dims as varargs, one sequence, or the keyword `dims`."""
    if "dims" in kwargs:
        if dims:
            raise TypeError("flip() got multiple values for argument 'dims'")
        dims = kwargs.pop("dims")
        if isinstance(dims, int):
            raise TypeError("flip(): argument 'dims' must be tuple of ints, not int")
        dims = (dims,)
    if kwargs:
        raise TypeError(f"flip() got an unexpected keyword argument '{next(iter(kwargs))}'")
    if not dims:
        raise TypeError('flip() missing 1 required positional arguments: "dims"')
    return C.flip(self, dims[0] if len(dims) == 1 and not isinstance(dims[0], int) else dims)


_METHODS = {
    "gather": S.gather, "scatter": S.scatter, "scatter_": S.scatter_, "scatter_add": S.scatter_add,
    "scatter_add_": S.scatter_add_, "scatter_reduce": S.scatter_reduce, "scatter_reduce_": S.scatter_reduce_,
    "index_select": S.index_select, "masked_select": S.masked_select, "sort": S.sort, "argsort": S.argsort,
    "topk": S.topk, "multinomial": S.multinomial, "index_put_": S.index_put_, "index_put": S.index_put,
    "index_add_": S.index_add_, "index_add": S.index_add, "index_copy_": S.index_copy_, "index_copy": S.index_copy,
    "index_fill_": S.index_fill_, "index_fill": S.index_fill,
    "tril": C.tril, "triu": C.triu, "tril_": C.tril_, "triu_": C.triu_, "flip": _flip,
    "fliplr": C.fliplr, "flipud": C.flipud, "roll": C.roll, "repeat": C.repeat,
    "repeat_interleave": C.repeat_interleave, "unfold": C.unfold, "lerp": C.lerp, "lerp_": C.lerp_,
    "addcmul": C.addcmul, "addcmul_": C.addcmul_, "addcdiv": C.addcdiv, "addcdiv_": C.addcdiv_, "outer": C.outer,
    "ger": C.outer, "baddbmm": C.baddbmm, "baddbmm_": C.baddbmm_, "addmm": C.addmm,
    "addbmm": C.addbmm, "addbmm_": C.addbmm_, "addr": C.addr, "addr_": C.addr_, "addmm_": C.addmm_, "cross": torch_cross,
    # torch's .data: the same storage without autograd history; assigning it swaps what the tensor views, keeping
    # the tensor (Note [Data assignment])
    "data": property(lambda self: self.detach(), lambda self, value: self._set_data(value)),
}

for _name, _fn in _METHODS.items():
    setattr(Tensor, _name, _fn)
