"""``LowRankMultivariateNormal(loc, cov_factor, cov_diag)`` of vt.distributions
(torch.distributions.LowRankMultivariateNormal): covariance W W^T + diag(D) with W of rank r, evaluated through the
r x r capacitance matrix C = I + W^T D^-1 W (Woodbury for the Mahalanobis term, the matrix determinant lemma for
log det), so no n x n factorisation is needed for log_prob, entropy or sampling; all differentiable."""
import math

import vibetensor.torch as vt

from . import constraints
from .distribution import Distribution, lazy_property
from .multivariate_normal import _broadcast_shape

__all__ = ["LowRankMultivariateNormal"]


class LowRankMultivariateNormal(Distribution):
    arg_constraints = {"loc": constraints.real_vector, "cov_factor": constraints.independent(constraints.real, 2),
                       "cov_diag": constraints.independent(constraints.positive, 1)}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, loc, cov_factor, cov_diag, validate_args=None):
        if loc.dim() < 1:
            raise ValueError("loc must be at least one-dimensional.")
        event_shape = tuple(loc.shape[-1:])
        if cov_factor.dim() < 2:
            raise ValueError("cov_factor must be at least two-dimensional, with optional leading batch dimensions")
        if tuple(cov_factor.shape[-2:-1]) != event_shape:
            raise ValueError(f"cov_factor must be a batch of matrices with shape {event_shape[0]} x m")
        if tuple(cov_diag.shape[-1:]) != event_shape:
            raise ValueError(f"cov_diag must be a batch of vectors with shape {event_shape}")
        try:
            batch_shape = _broadcast_shape(tuple(loc.shape[:-1]), tuple(cov_factor.shape[:-2]),
                                           tuple(cov_diag.shape[:-1]))
        except ValueError:
            raise ValueError(f"Incompatible batch shapes: loc {tuple(loc.shape)}, cov_factor "
                             f"{tuple(cov_factor.shape)}, cov_diag {tuple(cov_diag.shape)}") from None
        n, rank = event_shape[0], cov_factor.shape[-1]
        self.loc = loc.expand(batch_shape + (n,))
        self.cov_factor = cov_factor.expand(batch_shape + (n, rank))
        self.cov_diag = cov_diag.expand(batch_shape + (n,))
        self._unbroadcasted_cov_factor = cov_factor
        self._unbroadcasted_cov_diag = cov_diag
        super().__init__(batch_shape, event_shape, validate_args=validate_args)
        self._capacitance_tril = self._capacitance(cov_factor, cov_diag)

    @staticmethod
    def _capacitance(w, d):
        wt_dinv = w.transpose(-2, -1) / d.unsqueeze(-2)
        eye = vt.eye(w.shape[-1], dtype=w.dtype, device=w.device)
        return vt.linalg.cholesky(eye + wt_dinv @ w)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(LowRankMultivariateNormal, _instance)
        batch_shape = tuple(batch_shape)
        n, rank = self._event_shape[0], self.cov_factor.shape[-1]
        new.loc = self.loc.expand(batch_shape + (n,))
        new.cov_factor = self.cov_factor.expand(batch_shape + (n, rank))
        new.cov_diag = self.cov_diag.expand(batch_shape + (n,))
        new._unbroadcasted_cov_factor = self._unbroadcasted_cov_factor
        new._unbroadcasted_cov_diag = self._unbroadcasted_cov_diag
        new._capacitance_tril = self._capacitance_tril
        return self._finish_expand(new, batch_shape)

    @property
    def mean(self):
        return self.loc

    @property
    def mode(self):
        return self.loc

    @lazy_property
    def variance(self):
        w, d = self._unbroadcasted_cov_factor, self._unbroadcasted_cov_diag
        return (w.pow(2).sum(-1) + d).expand(self._batch_shape + self._event_shape)

    @lazy_property
    def covariance_matrix(self):
        w, d = self._unbroadcasted_cov_factor, self._unbroadcasted_cov_diag
        cov = w @ w.transpose(-2, -1) + vt.diag_embed(d)
        return cov.expand(self._batch_shape + self._event_shape * 2)

    @lazy_property
    def scale_tril(self):
        return vt.linalg.cholesky(self.covariance_matrix)

    @lazy_property
    def precision_matrix(self):
        # Woodbury: D^-1 - D^-1 W C^-1 W^T D^-1, with C^-1 applied as L_C^-T L_C^-1.
        w, d = self._unbroadcasted_cov_factor, self._unbroadcasted_cov_diag
        wt_dinv = w.transpose(-2, -1) / d.unsqueeze(-2)
        half = vt.linalg.solve_triangular(self._capacitance_tril, wt_dinv, upper=False)
        prec = vt.diag_embed(d.reciprocal()) - half.transpose(-2, -1) @ half
        return prec.expand(self._batch_shape + self._event_shape * 2)

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        w, d = self._unbroadcasted_cov_factor, self._unbroadcasted_cov_diag
        eps_w = vt.randn(tuple(shape[:-1]) + (w.shape[-1],), dtype=self.loc.dtype, device=self.loc.device)
        eps_d = vt.randn(shape, dtype=self.loc.dtype, device=self.loc.device)
        return self.loc + (w @ eps_w.unsqueeze(-1)).squeeze(-1) + d.sqrt() * eps_d

    def _log_det(self):
        """log det(W W^T + D) = 2 sum log diag(L_C) + sum log D (the matrix determinant lemma)."""
        tril = self._capacitance_tril
        return 2 * tril.diagonal(dim1=-2, dim2=-1).log().sum(-1) + self._unbroadcasted_cov_diag.log().sum(-1)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        diff = value - self.loc
        w, d, tril = self._unbroadcasted_cov_factor, self._unbroadcasted_cov_diag, self._capacitance_tril
        shape = _broadcast_shape(tuple(diff.shape[:-1]), tuple(w.shape[:-2]), tuple(d.shape[:-1]),
                                 tuple(tril.shape[:-2]))
        rank = w.shape[-1]
        wt_dinv_x = (w.transpose(-2, -1) @ (diff / d).unsqueeze(-1))  # (..., r, 1)
        sol = vt.linalg.solve_triangular(tril.expand(shape + (rank, rank)),
                                         wt_dinv_x.expand(shape + (rank, 1)), upper=False)
        m = (diff.pow(2) / d).sum(-1) - sol.squeeze(-1).pow(2).sum(-1)
        return -0.5 * (self._event_shape[0] * math.log(2 * math.pi) + m + self._log_det())

    def entropy(self):
        h = 0.5 * (self._event_shape[0] * (1.0 + math.log(2 * math.pi)) + self._log_det())
        return h if self._batch_shape == () else h.expand(self._batch_shape)
