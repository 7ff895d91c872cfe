"""vt.nn.utils.parametrizations: weight_norm, spectral_norm and orthogonal as parametrizations
(nn.utils.parametrize), with torch's layout: original0/original1 = g/v for weight_norm; original plus the
power-iteration vectors _u/_v as buffers of the parametrization for spectral_norm; original plus the orthogonal
`base` buffer (the trivialization) for orthogonal."""
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


# ---- orthogonal: Q = map(X) for an unconstrained X, optionally times a fixed orthogonal base (trivialization) ----
_ORTH_MAPS = ("matrix_exp", "cayley", "householder")


def _householder_product(A, tau):
    """The first k columns of H_1 ... H_k, H_i = I - tau_i v_i v_i^H with v_i = e_i + A[i+1:, i] (LAPACK's
    orgqr), composed of differentiable ops so gradients reach A and tau."""
    from .... import torch as vt

    n, k = A.shape[-2], A.shape[-1]
    eye = vt.eye(n, dtype=A.dtype, device=A.device)
    rows = vt.arange(n, device=A.device).unsqueeze(-1)
    Q = eye.expand(*A.shape[:-2], n, n)
    for i in range(k):
        below = (rows > i).to(A.dtype)
        v = A[..., :, i:i + 1] * below + eye[:, i:i + 1]
        Q = Q - (Q @ v) @ (v.mH * tau[..., i:i + 1].unsqueeze(-1))
    return Q[..., :, :k]


def _make_orthogonal(A):
    """A's QR factor with R's diagonal made positive (torch's geqrf + householder_product route gives the same)."""
    from ... import linalg

    Q, R = linalg.qr(A)
    return Q * R.diagonal(dim1=-2, dim2=-1).sgn().unsqueeze(-2)


def _is_orthogonal(Q):
    from .... import torch as vt
    from ... import finfo

    n, k = Q.shape[-2], Q.shape[-1]
    eye = vt.eye(k, dtype=Q.dtype, device=Q.device)
    return bool(vt.allclose(Q.mH @ Q, eye, atol=10.0 * n * finfo(Q.dtype).eps))


class _Orthogonal(Module):
    def __init__(self, weight, orthogonal_map, *, use_trivialization=True):
        super().__init__()
        if weight.is_complex() and orthogonal_map == "householder":
            raise ValueError("The householder parametrization does not support complex tensors.")
        self.shape = weight.shape
        self.orthogonal_map = orthogonal_map
        if use_trivialization:
            self.register_buffer("base", None)

    def forward(self, X):
        from .... import torch as vt

        n, k = X.shape[-2], X.shape[-1]
        transposed = n < k
        if transposed:
            X = X.mT
            n, k = k, n
        if self.orthogonal_map in ("matrix_exp", "cayley"):
            X = X.tril()
            if n != k:
                X = vt.cat([X, X.new_zeros(n, n - k).expand(*X.shape[:-2], -1, -1)], dim=-1)
            A = X - X.mH
            if self.orthogonal_map == "matrix_exp":
                Q = vt.matrix_exp(A)
            else:
                eye = vt.eye(n, dtype=A.dtype, device=A.device)
                Q = vt.linalg.solve(eye - 0.5 * A, eye + 0.5 * A)
            if n != k:
                Q = Q[..., :k]
        else:
            A = X.tril(diagonal=-1)
            tau = 2.0 / (1.0 + (A * A).sum(dim=-2))
            Q = _householder_product(A, tau)
            Q = Q * X.diagonal(dim1=-2, dim2=-1).int().unsqueeze(-2)
        if self.__dict__.get("_buffers", {}).get("base") is not None:
            Q = self.base @ Q
        return Q.mT if transposed else Q

    def right_inverse(self, Q):
        from .... import torch as vt

        if tuple(Q.shape) != tuple(self.shape):
            raise ValueError(f"Expected a matrix or batch of matrices of shape {self.shape}. Got a tensor of shape "
                             f"{Q.shape}.")
        with no_grad():
            Q_init = Q
            n, k = Q.shape[-2], Q.shape[-1]
            if n < k:
                Q = Q.mT
                n, k = k, n
            if "base" not in self._buffers:
                if self.orthogonal_map in ("matrix_exp", "cayley"):
                    raise NotImplementedError("It is not possible to assign to the matrix exponential or the "
                                              "Cayley parametrizations when use_trivialization=False.")
                raise NotImplementedError("orthogonal(use_trivialization=False) with householder needs geqrf, which "
                                          "vibetensor lacks")
            if n == k:
                Q = Q.clone() if _is_orthogonal(Q) else _make_orthogonal(Q)
            else:  # completed to a square orthogonal matrix with random columns, as torch's
                N = vt.randn(*Q.shape[:-2], n, n - k, dtype=Q.dtype, device=Q.device)
                Q = _make_orthogonal(vt.cat([Q, N], dim=-1))
            self.base = Q
            neg_id = vt.zeros_like(Q_init)  # householder(-Id) is Id, so base is the initial value
            neg_id.diagonal(dim1=-2, dim2=-1).fill_(-1.0)
            return neg_id


def orthogonal(module, name="weight", orthogonal_map=None, *, use_trivialization=True):
    """module.<name> constrained to an orthogonal (or unitary) matrix, or a matrix of orthonormal rows/columns."""
    from ...._C.core import Tensor

    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise ValueError(f"Module '{module}' has no parameter or buffer with name '{name}'")
    if weight.ndim < 2:
        raise ValueError(f"Expected a matrix or batch of matrices. Got a tensor of {weight.ndim} dimensions.")
    if orthogonal_map is None:
        square = weight.shape[-2] == weight.shape[-1]
        orthogonal_map = "matrix_exp" if square or weight.is_complex() else "householder"
    if orthogonal_map not in _ORTH_MAPS:
        raise ValueError('orthogonal_map has to be one of "matrix_exp", "cayley", "householder". '
                         f"Got: {orthogonal_map}")
    orth = _Orthogonal(weight, orthogonal_map, use_trivialization=use_trivialization)
    parametrize.register_parametrization(module, name, orth, unsafe=True)
    return module
