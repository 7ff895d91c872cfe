"""parameters_to_vector / vector_to_parameters: all parameters as one flat vector and back (torch's order)."""
from .. import _tensor_api


def parameters_to_vector(parameters):
    from ... import _functions as vt

    params = list(parameters)
    devices = {str(p.device) for p in params}
    if len(devices) > 1:
        raise TypeError(f"Found two parameters on different devices, this is currently not supported: {sorted(devices)}")
    return vt.cat([p.reshape(-1) for p in params])


def vector_to_parameters(vec, parameters):
    """Copies consecutive slices of `vec` into the parameters (in place, no autograd history)."""
    from ....autograd import no_grad

    if not isinstance(vec, _tensor_api.Tensor):
        raise TypeError(f"expected torch.Tensor, but got: {type(vec).__name__}")
    params = list(parameters)
    total = sum(p.numel() for p in params)
    if vec.dim() != 1 or vec.numel() != total:
        raise RuntimeError(f"vector_to_parameters: expected a 1-D vector of {total} elements, got shape "
                           f"{list(vec.shape)}")
    offset = 0
    with no_grad():
        for p in params:
            n = p.numel()
            p.copy_(vec[offset:offset + n].reshape(*p.shape))
            offset += n
