"""A small convolutional VAE written the way public VAE code is written (imports torch only; loaded with
vibetensor swapped in by tests/models/swap_import.py):
  - encoder: strided convs to a flat feature, two Linear heads for the posterior mean and log-variance;
  - posterior q(z|x) = Independent(Normal(mu, std), 1), sampled with rsample (the reparameterisation trick)
    so the gradient reaches mu and std; prior p(z) = Independent(Normal(0, 1), 1);
  - decoder: Linear then transposed convs to logits; likelihood Independent(Bernoulli(logits=...), 3) or a
    Normal with a learned scale, scored with log_prob;
  - ELBO = E_q[log p(x|z)] - KL(q || p), with kl_divergence in closed form, or estimated from the draws for a
    learned Gaussian-mixture prior (MixtureSameFamily); the importance-weighted
    bound (IWAE) with logsumexp over the draws.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.distributions import Bernoulli, Categorical, Independent, MixtureSameFamily, Normal, kl_divergence


class Encoder(nn.Module):
    def __init__(self, in_ch, hidden, latent, size):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(in_ch, hidden, 3, stride=2, padding=1), nn.LeakyReLU(0.1),
            nn.Conv2d(hidden, 2 * hidden, 3, stride=2, padding=1), nn.LeakyReLU(0.1),
        )
        flat = 2 * hidden * (size // 4) ** 2
        self.mu = nn.Linear(flat, latent)
        self.logvar = nn.Linear(flat, latent)

    def forward(self, x):
        h = self.conv(x).flatten(1)
        return self.mu(h), self.logvar(h)


class Decoder(nn.Module):
    def __init__(self, out_ch, hidden, latent, size):
        super().__init__()
        self.hidden, self.side = hidden, size // 4
        self.fc = nn.Linear(latent, 2 * hidden * self.side ** 2)
        self.deconv = nn.Sequential(
            nn.ConvTranspose2d(2 * hidden, hidden, 4, stride=2, padding=1), nn.ELU(),
            nn.ConvTranspose2d(hidden, out_ch, 4, stride=2, padding=1),
        )

    def forward(self, z):
        h = F.elu(self.fc(z)).view(z.shape[0], 2 * self.hidden, self.side, self.side)
        return self.deconv(h)


class VAE(nn.Module):
    def __init__(self, in_ch=1, hidden=8, latent=4, size=8, likelihood="bernoulli", prior_components=0):
        super().__init__()
        if likelihood not in ("bernoulli", "normal"):
            raise ValueError(f"likelihood must be 'bernoulli' or 'normal', got {likelihood!r}")
        self.prior_components = prior_components
        if prior_components:  # a learned Gaussian-mixture prior instead of N(0, I)
            self.prior_logits = nn.Parameter(torch.zeros(prior_components))
            self.prior_means = nn.Parameter(torch.randn(prior_components, latent))
            self.prior_log_scales = nn.Parameter(torch.zeros(prior_components, latent))
        self.likelihood = likelihood
        self.latent = latent
        self.encoder = Encoder(in_ch, hidden, latent, size)
        self.decoder = Decoder(in_ch, hidden, latent, size)
        if likelihood == "normal":
            self.log_scale = nn.Parameter(torch.zeros(()))

    def posterior(self, x):
        mu, logvar = self.encoder(x)
        return Independent(Normal(mu, torch.exp(0.5 * logvar)), 1)

    def prior(self, like):
        if self.prior_components:
            components = Independent(Normal(self.prior_means, self.prior_log_scales.exp()), 1)
            return MixtureSameFamily(Categorical(logits=self.prior_logits), components)
        return Independent(Normal(torch.zeros_like(like), torch.ones_like(like)), 1)

    def kl(self, q, z):
        """KL(q || prior) per example: in closed form for the standard normal prior, else estimated from the
        [S, B, latent] draws z."""
        if self.prior_components:
            return (q.log_prob(z) - self.prior(q.mean).log_prob(z)).mean(0)
        return kl_divergence(q, self.prior(q.mean))

    def observation(self, z):
        out = self.decoder(z)
        if self.likelihood == "bernoulli":
            return Independent(Bernoulli(logits=out), 3)
        return Independent(Normal(out, self.log_scale.exp().expand_as(out)), 3)

    def forward(self, x, n_samples=1, eps=None):
        """Returns (loss, stats): loss is the negative ELBO per example, averaged over the batch; the
        reconstruction term is a Monte Carlo estimate over n_samples draws of z. eps ([S, B, latent] standard
        normal draws) fixes the draws, so that two runs can be compared."""
        q = self.posterior(x)
        if eps is None:
            z = q.rsample((n_samples,))  # [S, B, latent]
        else:
            n_samples = eps.shape[0]
            z = q.mean + q.stddev * eps  # what rsample computes, with given noise
        px = self.observation(z.flatten(0, 1))
        rec = px.log_prob(x.repeat(n_samples, 1, 1, 1)).view(n_samples, -1).mean(0)
        kl = self.kl(q, z)
        elbo = rec - kl
        return -elbo.mean(), {"rec": rec.detach(), "kl": kl.detach(), "z": z.detach()}

    def iwae_bound(self, x, eps):
        """The importance-weighted bound log (1/S) sum_s p(x, z_s) / q(z_s | x) with z_s = mu + std * eps[s]:
        log_prob of the [S, B, latent] draws broadcasts over the batch of q."""
        q = self.posterior(x)
        z = q.mean + q.stddev * eps
        s, b = z.shape[:2]
        px = self.observation(z.flatten(0, 1))
        log_px = px.log_prob(x.repeat(s, 1, 1, 1)).view(s, b)
        log_w = log_px + self.prior(q.mean).log_prob(z) - q.log_prob(z)
        return torch.logsumexp(log_w, dim=0) - math.log(s)

    @torch.no_grad()
    def reconstruct(self, x):
        """The decoder's mean at the posterior mean (no sampling)."""
        px = self.observation(self.posterior(x).mean)
        return px.mean

    @torch.no_grad()
    def sample(self, n, generator=None):
        if self.prior_components:
            z = self.prior(self.prior_means).sample((n,))
        else:
            z = torch.randn(n, self.latent, generator=generator, device=self.decoder.fc.weight.device)
        return self.observation(z).mean
