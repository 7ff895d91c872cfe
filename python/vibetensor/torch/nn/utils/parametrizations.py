"""vt.nn.utils.parametrizations: weight_norm and spectral_norm as parametrizations (nn.utils.parametrize), with
torch's layout: original0/original1 = g/v for weight_norm; original plus the power-iteration vectors _u/_v as
buffers of the parametrization for spectral_norm."""
from ....autograd import no_grad
from ..module import Module
from . import parametrize
from ._wn import norm_except_dim, weight_norm_value


class _WeightNorm(Module):
    def __init__(self, dim=0):
        super().__init__()
        self.dim = -1 if dim is None else dim

    def forward(self, weight_g, weight_v):
        return weight_norm_value(weight_g, weight_v, self.dim)

    def right_inverse(self, weight):
        return norm_except_dim(weight, self.dim), weight


def weight_norm(module, name="weight", dim=0):
    """module.<name> = g * v / ||v|| with g = original0 and v = original1."""
    parametrize.register_parametrization(module, name, _WeightNorm(dim), unsafe=True)
    return module


def _normalize(x, eps):
    from .. import functional as F
    return F.normalize(x, dim=0, eps=eps)


class _SpectralNorm(Module):
    def __init__(self, weight, n_power_iterations=1, dim=0, eps=1e-12):
        super().__init__()
        from ... import _functions as T
        ndim = weight.ndim
        if dim >= ndim or dim < -ndim:
            raise IndexError(f"Dimension out of range (expected to be in range of [-{ndim}, {ndim - 1}] "
                             f"but got {dim})")
        if n_power_iterations <= 0:
            raise ValueError("Expected n_power_iterations to be positive, but got "
                             f"n_power_iterations={n_power_iterations}")
        self.dim = dim if dim >= 0 else dim + ndim
        self.eps = eps
        if ndim > 1:
            self.n_power_iterations = n_power_iterations
            w = self._reshape_weight_to_matrix(weight.detach())
            h, wd = w.shape
            opts = dict(dtype=weight.dtype, device=weight.device)
            self.register_buffer("_u", _normalize(T.randn(h, **opts), eps))
            self.register_buffer("_v", _normalize(T.randn(wd, **opts), eps))
            self._power_method(w, 15)

    def _reshape_weight_to_matrix(self, weight):
        if self.dim != 0:
            weight = weight.movedim(self.dim, 0)
        return weight.flatten(1)

    def _power_method(self, w, n):
        # u, v converge to the leading singular vectors of w; updated in place (they are module state)
        with no_grad():
            u, v = self._u, self._v
            for _ in range(n):
                u = _normalize(w.mv(v), self.eps)
                v = _normalize(w.t().mv(u), self.eps)
            self._u.copy_(u)
            self._v.copy_(v)

    def forward(self, weight):
        if weight.ndim == 1:
            return _normalize(weight, self.eps)
        w = self._reshape_weight_to_matrix(weight)
        if self.training:
            self._power_method(w.detach(), self.n_power_iterations)
        u, v = self._u.clone(), self._v.clone()
        sigma = (u * w.mv(v)).sum()
        return weight / sigma

    def right_inverse(self, value):
        return value


def spectral_norm(module, name="weight", n_power_iterations=1, eps=1e-12, dim=None):
    """module.<name> divided by its largest singular value (estimated by power iteration in training mode)."""
    weight = getattr(module, name, None)
    from .._tensor_api import Tensor
    if not isinstance(weight, Tensor):
        raise ValueError(f"Module '{module}' has no parameter or buffer with name '{name}'")
    if dim is None:
        # ConvTranspose weights are [in, out/g, *k]: the output dim is 1
        cls = parametrize.type_before_parametrizations(module)
        dim = 1 if cls.__name__.startswith("ConvTranspose") else 0
    parametrize.register_parametrization(module, name, _SpectralNorm(weight, n_power_iterations, dim, eps))
    return module
