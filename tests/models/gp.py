"""Gaussian-process regression written the way public research code writes it in plain torch (imports torch only;
loaded with vibetensor swapped in by tests/models/swap_import.py):
  - an RBF (squared-exponential) kernel with ARD lengthscales from torch.cdist of scaled inputs, and a Matern-5/2
    kernel; hyperparameters kept as unconstrained raw Parameters mapped through softplus;
  - the exact marginal likelihood by Cholesky with jitter: alpha by torch.cholesky_solve, the log-determinant from
    the diagonal of L, the data-fit term, fitted with Adam;
  - the posterior at test points: mean K*^T alpha, variance by whitening with the deprecated
    torch.triangular_solve (older GP code) or linalg.solve_triangular;
  - a deep-kernel variant: a small MLP feature extractor in front of the kernel.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class RBFKernel(nn.Module):
    def __init__(self, dims, matern=False):
        super().__init__()
        self.matern = matern
        self.raw_lengthscale = nn.Parameter(torch.zeros(dims))
        self.raw_outputscale = nn.Parameter(torch.tensor(0.0))

    @property
    def lengthscale(self):
        return F.softplus(self.raw_lengthscale)

    @property
    def outputscale(self):
        return F.softplus(self.raw_outputscale)

    def forward(self, x1, x2):
        d = torch.cdist(x1 / self.lengthscale, x2 / self.lengthscale)
        if self.matern:  # Matern 5/2
            s = math.sqrt(5.0) * d
            return self.outputscale * (1 + s + s ** 2 / 3) * torch.exp(-s)
        return self.outputscale * torch.exp(-0.5 * d.pow(2))


class ExactGP(nn.Module):
    def __init__(self, dims, matern=False, feature_dims=None, jitter=1e-6):
        super().__init__()
        self.features = None
        if feature_dims is not None:
            self.features = nn.Sequential(nn.Linear(dims, 16), nn.Tanh(), nn.Linear(16, feature_dims))
            dims = feature_dims
        self.kernel = RBFKernel(dims, matern)
        self.raw_noise = nn.Parameter(torch.tensor(-2.0))
        self.mean_constant = nn.Parameter(torch.tensor(0.0))
        self.jitter = jitter

    @property
    def noise(self):
        return F.softplus(self.raw_noise) + 1e-4

    def embed(self, x):
        return x if self.features is None else self.features(x)

    def marginal_nll(self, x, y):
        """-log p(y | x) / n."""
        z = self.embed(x)
        n = x.shape[0]
        K = self.kernel(z, z) + (self.noise + self.jitter) * torch.eye(n, dtype=x.dtype, device=x.device)
        L = torch.linalg.cholesky(K)
        r = (y - self.mean_constant).unsqueeze(-1)
        alpha = torch.cholesky_solve(r, L)
        fit = 0.5 * (r * alpha).sum()
        logdet = torch.log(torch.diagonal(L)).sum()
        return (fit + logdet + 0.5 * n * math.log(2 * math.pi)) / n

    @torch.no_grad()
    def predict(self, x, y, x_test, legacy=True):
        """Posterior mean and variance of f at x_test."""
        z, zt = self.embed(x), self.embed(x_test)
        n = x.shape[0]
        K = self.kernel(z, z) + (self.noise + self.jitter) * torch.eye(n, dtype=x.dtype, device=x.device)
        L = torch.linalg.cholesky(K)
        Ks = self.kernel(z, zt)
        alpha = torch.cholesky_solve((y - self.mean_constant).unsqueeze(-1), L)
        mean = self.mean_constant + (Ks.t() @ alpha).squeeze(-1)
        if legacy:
            v = torch.triangular_solve(Ks, L, upper=False).solution
        else:
            v = torch.linalg.solve_triangular(L, Ks, upper=False)
        var = self.kernel.outputscale - v.pow(2).sum(0)
        return mean, var.clamp_min(1e-10)
