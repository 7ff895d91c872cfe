"""The weight-norm arithmetic shared by parametrizations.weight_norm and the legacy nn.utils.weight_norm:
w = g * v / ||v||, the norm over every dim but `dim`. As torch's, dim=-1 (what dim=None becomes) means the norm of
the whole tensor and a 0-d g, not the last dim."""


def norm_except_dim(v, dim):
    from ... import linalg
    if dim == -1:
        return linalg.vector_norm(v)
    if not -v.ndim <= dim < v.ndim:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-v.ndim}, {v.ndim - 1}], "
                         f"but got {dim})")
    dim = dim % v.ndim
    others = [d for d in range(v.ndim) if d != dim]
    return linalg.vector_norm(v, 2, dim=others, keepdim=True) if others else v.abs()


def weight_norm_value(g, v, dim):
    return v * (g / norm_except_dim(v, dim))
