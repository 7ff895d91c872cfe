"""``MultivariateNormal(loc, covariance_matrix=None, precision_matrix=None, scale_tril=None)`` of
vt.distributions (torch.distributions.MultivariateNormal), parameterised internally by the lower Cholesky factor
L of the covariance: reparameterised sampling (loc + L eps), log_prob via a triangular solve, entropy, moments,
the three matrix views and expand; differentiable in loc and in whichever matrix was given."""
import math

import vibetensor.torch as vt

from . import constraints
from .distribution import Distribution, lazy_property

__all__ = ["MultivariateNormal"]


def _broadcast_shape(*shapes):
    out = []
    for dims in zip(*[(1,) * (max(map(len, shapes)) - len(s)) + tuple(s) for s in shapes]):
        sizes = {d for d in dims if d != 1}
        if len(sizes) > 1:
            raise ValueError(f"Incompatible batch shapes: {shapes}")
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


def _tril_inverse(tril):
    eye = vt.eye(tril.shape[-1], dtype=tril.dtype, device=tril.device)
    return vt.linalg.solve_triangular(tril, eye.expand_as(tril), upper=False)


def _precision_to_scale_tril(precision):
    # P = U U^T with U = flip(chol(flip(P))) upper triangular (flip reversing both matrix dims), so the
    # covariance P^-1 has the lower factor (U^T)^-1: one triangular solve, never a general inverse of P.
    lf = vt.linalg.cholesky(vt.flip(precision, (-2, -1)))
    l_inv = vt.flip(lf, (-2, -1)).transpose(-2, -1)
    return _tril_inverse(l_inv)


def _mahalanobis(tril, diff):
    """|L^-1 diff|^2 over the last dim, broadcasting L's batch dims against diff's."""
    shape = _broadcast_shape(tuple(tril.shape[:-2]), tuple(diff.shape[:-1]))
    n = diff.shape[-1]
    sol = vt.linalg.solve_triangular(tril.expand(shape + (n, n)), diff.expand(shape + (n,)).unsqueeze(-1),
                                     upper=False)
    return sol.squeeze(-1).pow(2).sum(-1)


class MultivariateNormal(Distribution):
    arg_constraints = {"loc": constraints.real_vector, "covariance_matrix": constraints.positive_definite,
                       "precision_matrix": constraints.positive_definite, "scale_tril": constraints.lower_cholesky}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, loc, covariance_matrix=None, precision_matrix=None, scale_tril=None, validate_args=None):
        if loc.dim() < 1:
            raise ValueError("loc must be at least one-dimensional.")
        if (covariance_matrix is not None) + (scale_tril is not None) + (precision_matrix is not None) != 1:
            raise ValueError("Exactly one of covariance_matrix or precision_matrix or scale_tril may be specified.")
        given = {"scale_tril": scale_tril, "covariance_matrix": covariance_matrix,
                 "precision_matrix": precision_matrix}
        name = next(k for k, v in given.items() if v is not None)
        matrix = given[name]
        if matrix.dim() < 2:
            raise ValueError(f"{name} matrix must be at least two-dimensional, with optional leading batch "
                             "dimensions")
        batch_shape = _broadcast_shape(tuple(matrix.shape[:-2]), tuple(loc.shape[:-1]))
        self.__dict__[name] = matrix.expand(batch_shape + tuple(matrix.shape[-2:]))
        self.loc = loc.expand(batch_shape + tuple(loc.shape[-1:]))
        super().__init__(batch_shape, tuple(self.loc.shape[-1:]), validate_args=validate_args)
        if scale_tril is not None:
            self._unbroadcasted_scale_tril = scale_tril
        elif covariance_matrix is not None:
            self._unbroadcasted_scale_tril = vt.linalg.cholesky(covariance_matrix)
        else:
            self._unbroadcasted_scale_tril = _precision_to_scale_tril(precision_matrix)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(MultivariateNormal, _instance)
        batch_shape = tuple(batch_shape)
        new.loc = self.loc.expand(batch_shape + self._event_shape)
        new._unbroadcasted_scale_tril = self._unbroadcasted_scale_tril
        for name in ["covariance_matrix", "precision_matrix", "scale_tril"]:
            if name in self.__dict__:
                new.__dict__[name] = self.__dict__[name].expand(batch_shape + self._event_shape * 2)
        return self._finish_expand(new, batch_shape)

    @lazy_property
    def scale_tril(self):
        return self._unbroadcasted_scale_tril.expand(self._batch_shape + self._event_shape * 2)

    @lazy_property
    def covariance_matrix(self):
        tril = self._unbroadcasted_scale_tril
        return (tril @ tril.transpose(-2, -1)).expand(self._batch_shape + self._event_shape * 2)

    @lazy_property
    def precision_matrix(self):
        tril_inv = _tril_inverse(self._unbroadcasted_scale_tril)
        return (tril_inv.transpose(-2, -1) @ tril_inv).expand(self._batch_shape + self._event_shape * 2)

    @property
    def mean(self):
        return self.loc

    @property
    def mode(self):
        return self.loc

    @property
    def variance(self):
        return self._unbroadcasted_scale_tril.pow(2).sum(-1).expand(self._batch_shape + self._event_shape)

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        eps = vt.randn(shape, dtype=self.loc.dtype, device=self.loc.device)
        return self.loc + (self._unbroadcasted_scale_tril @ eps.unsqueeze(-1)).squeeze(-1)

    def _half_log_det(self):
        return self._unbroadcasted_scale_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        m = _mahalanobis(self._unbroadcasted_scale_tril, value - self.loc)
        return -0.5 * (self._event_shape[0] * math.log(2 * math.pi) + m) - self._half_log_det()

    def entropy(self):
        h = 0.5 * self._event_shape[0] * (1.0 + math.log(2 * math.pi)) + self._half_log_det()
        return h if self._batch_shape == () else h.expand(self._batch_shape)
