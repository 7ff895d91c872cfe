"""Gaussian diffusion as public diffusion code writes it: a small class-conditional conv/attention denoiser
(sinusoidal timestep embedding, GroupNorm, SiLU, FiLM scale/shift, a null class for classifier-free guidance,
optional gradient checkpointing, learned variance and a low-resolution conditioning image), linear and cosine
beta schedules held as float32 buffers, q_sample and the epsilon / x0 / v objectives with min-SNR loss weights
plus the variational bound for a learned variance (hybrid loss), an EMA of the weights, and the DDPM, DDIM and
Euler/Heun (Karras sigmas) samplers with classifier-free guidance, x0 clipping and dynamic thresholding.
Randomness (timesteps, noise, label dropout, sampler noise) is drawn from a numpy Generator so that two
libraries running this file see the same draws."""
import copy
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint


def timestep_embedding(t, dim, max_period=10000, dtype=torch.float32):
    """Sinusoidal embedding of (possibly fractional) timesteps t of shape (B,) -> (B, dim), computed in dtype
    (the model passes its own: a float32 exp rounded the other way is magnified by t)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=dtype, device=t.device) / half)
    args = t[:, None].to(dtype) * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


class ResBlock(nn.Module):
    def __init__(self, cin, cout, emb_dim, groups=4, dropout=0.0, use_checkpoint=False):
        super().__init__()
        self.use_checkpoint = use_checkpoint
        self.norm1 = nn.GroupNorm(groups, cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.emb_proj = nn.Sequential(nn.SiLU(), nn.Linear(emb_dim, 2 * cout))
        self.norm2 = nn.GroupNorm(groups, cout)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, emb):
        if self.use_checkpoint and torch.is_grad_enabled():  # recompute the activations in backward
            return checkpoint(self._forward, x, emb, use_reentrant=False)
        return self._forward(x, emb)

    def _forward(self, x, emb):
        h = self.conv1(F.silu(self.norm1(x)))
        # FiLM: the embedding scales and shifts the normalised features
        scale, shift = self.emb_proj(emb)[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(self.dropout(F.silu(h)))
        return h + self.skip(x)


class AttnBlock(nn.Module):
    def __init__(self, ch, heads=2, groups=4):
        super().__init__()
        self.heads = heads
        self.norm = nn.GroupNorm(groups, ch)
        self.qkv = nn.Conv2d(ch, 3 * ch, 1)
        self.proj = nn.Conv2d(ch, ch, 1)

    def forward(self, x):
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, self.heads, c // self.heads, h * w).unbind(1)
        attn = torch.einsum("bhdi,bhdj->bhij", q, k) * (c // self.heads) ** -0.5
        out = torch.einsum("bhij,bhdj->bhdi", attn.softmax(dim=-1), v)
        return x + self.proj(out.reshape(b, c, h, w))


class Denoiser(nn.Module):
    """A two-level U-Net: in -> res -> down -> res/attn/res -> up -> res(with skip) -> out. With learn_sigma
    it also outputs per-pixel variance interpolation values (twice the channels); with cond_ch it reads a
    conditioning image (an upsampled low-resolution one) concatenated to its input."""

    def __init__(self, in_ch=3, ch=8, emb_dim=16, num_classes=4, groups=4, learn_sigma=False, cond_ch=0,
                 use_checkpoint=False):
        super().__init__()
        self.ch, self.num_classes, self.learn_sigma = ch, num_classes, learn_sigma
        ck = dict(use_checkpoint=use_checkpoint)
        self.time_mlp = nn.Sequential(nn.Linear(ch, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.class_emb = nn.Embedding(num_classes + 1, emb_dim)  # index num_classes is the null class
        self.inp = nn.Conv2d(in_ch + cond_ch, ch, 3, padding=1)
        self.down = ResBlock(ch, ch, emb_dim, groups, **ck)
        self.downsample = nn.Conv2d(ch, 2 * ch, 3, stride=2, padding=1)
        self.mid1 = ResBlock(2 * ch, 2 * ch, emb_dim, groups, **ck)
        self.attn = AttnBlock(2 * ch, groups=groups)
        self.mid2 = ResBlock(2 * ch, 2 * ch, emb_dim, groups, **ck)
        self.upsample = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(2 * ch, ch, 3, padding=1))
        self.up = ResBlock(2 * ch, ch, emb_dim, groups, **ck)
        out_ch = 2 * in_ch if learn_sigma else in_ch
        self.out = nn.Sequential(nn.GroupNorm(groups, ch), nn.SiLU(), nn.Conv2d(ch, out_ch, 3, padding=1))

    def forward(self, x, t, y, cond=None):
        if cond is not None:
            x = torch.cat([x, cond], dim=1)
        emb = self.time_mlp(timestep_embedding(t, self.ch, dtype=x.dtype)) + self.class_emb(y)
        h1 = self.down(self.inp(x), emb)
        h = self.mid2(self.attn(self.mid1(self.downsample(h1), emb)), emb)
        h = self.up(torch.cat([self.upsample(h), h1], dim=1), emb)
        return self.out(h)


def linear_beta_schedule(timesteps):
    scale = 1000 / timesteps  # keeps the end points of the 1000-step schedule for shorter ones
    return torch.linspace(scale * 1e-4, scale * 0.02, timesteps, dtype=torch.float64)


def cosine_beta_schedule(timesteps, s=0.008):
    x = torch.linspace(0, timesteps, timesteps + 1, dtype=torch.float64)
    alphas_cumprod = torch.cos(((x / timesteps) + s) / (1 + s) * math.pi * 0.5) ** 2
    alphas_cumprod = alphas_cumprod / alphas_cumprod[0]
    betas = 1 - (alphas_cumprod[1:] / alphas_cumprod[:-1])
    return torch.clip(betas, 0, 0.999)


def extract(a, t, x_shape):
    """a[t] for each sample, shaped to broadcast against a batch of shape x_shape."""
    b = t.shape[0]
    out = a.gather(-1, t)
    return out.reshape(b, *((1,) * (len(x_shape) - 1)))


def karras_sigmas(n, sigma_min, sigma_max, rho=7.0, device="cpu"):
    ramp = torch.linspace(0, 1, n, device=device, dtype=torch.float64)
    min_inv_rho, max_inv_rho = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    sigmas = (max_inv_rho + ramp * (min_inv_rho - max_inv_rho)) ** rho
    return F.pad(sigmas, (0, 1), value=0.0)  # the last step lands on sigma = 0


def drop_labels(y, p, null_class, rng):
    """Label dropout for classifier-free guidance: each label becomes the null class with probability p."""
    mask = torch.from_numpy(rng.random(y.shape[0]) < p).to(y.device)
    return torch.where(mask, torch.full_like(y, null_class), y)


def normal_kl(mean1, logvar1, mean2, logvar2):
    """KL(N(mean1, exp(logvar1)) || N(mean2, exp(logvar2))), elementwise."""
    return 0.5 * (logvar2 - logvar1 - 1.0 + torch.exp(logvar1 - logvar2)
                  + (mean1 - mean2) ** 2 * torch.exp(-logvar2))


def gaussian_cdf_approx(x):
    return 0.5 * (1.0 + torch.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * torch.pow(x, 3))))


def discretized_log_likelihood(x, mean, log_scale, bin_width=2.0 / 255.0):
    """log P(x) for data in [-1, 1] quantised to 256 levels under N(mean, exp(log_scale)^2); the edge bins
    extend to infinity."""
    inv_std = torch.exp(-log_scale)
    upper = gaussian_cdf_approx(inv_std * (x - mean + bin_width / 2))
    lower = gaussian_cdf_approx(inv_std * (x - mean - bin_width / 2))
    log_upper = torch.log(upper.clamp(min=1e-12))
    log_one_minus_lower = torch.log((1.0 - lower).clamp(min=1e-12))
    log_bin = torch.log((upper - lower).clamp(min=1e-12))
    return torch.where(x < -0.999, log_upper, torch.where(x > 0.999, log_one_minus_lower, log_bin))


def mean_flat(x):
    return x.mean(dim=list(range(1, len(x.shape))))


def make_lowres(img, size):
    """The conditioning of a super-resolution model: downsampled with antialiasing, upsampled back."""
    small = F.interpolate(img, size=(size, size), mode="bicubic", antialias=True, align_corners=False)
    return F.interpolate(small, size=img.shape[-2:], mode="bilinear", align_corners=False)


def randn_from(rng, shape, like):
    return torch.from_numpy(rng.standard_normal(tuple(shape))).to(device=like.device, dtype=like.dtype)


class GaussianDiffusion(nn.Module):
    def __init__(self, model, timesteps=20, beta_schedule="cosine", objective="pred_v", min_snr_gamma=5.0,
                 p_uncond=0.2, lowres_size=None):
        super().__init__()
        self.model, self.num_timesteps, self.objective = model, timesteps, objective
        self.learn_sigma, self.lowres_size = model.learn_sigma, lowres_size
        self.null_class, self.p_uncond = model.num_classes, p_uncond
        betas = {"linear": linear_beta_schedule, "cosine": cosine_beta_schedule}[beta_schedule](timesteps)
        alphas = 1.0 - betas
        alphas_cumprod = torch.cumprod(alphas, dim=0)
        alphas_cumprod_prev = F.pad(alphas_cumprod[:-1], (1, 0), value=1.0)

        def register(name, val):  # computed in float64, kept in float32 as public code keeps them
            self.register_buffer(name, val.to(torch.float32))

        register("betas", betas)
        register("log_betas", torch.log(betas))
        register("alphas_cumprod", alphas_cumprod)
        register("alphas_cumprod_prev", alphas_cumprod_prev)
        register("sqrt_alphas_cumprod", torch.sqrt(alphas_cumprod))
        register("sqrt_one_minus_alphas_cumprod", torch.sqrt(1.0 - alphas_cumprod))
        register("log_one_minus_alphas_cumprod", torch.log(1.0 - alphas_cumprod))
        register("sqrt_recip_alphas_cumprod", torch.sqrt(1.0 / alphas_cumprod))
        register("sqrt_recipm1_alphas_cumprod", torch.sqrt(1.0 / alphas_cumprod - 1))
        posterior_variance = betas * (1.0 - alphas_cumprod_prev) / (1.0 - alphas_cumprod)
        register("posterior_variance", posterior_variance)
        # the first posterior variance is 0: clip it before the log
        register("posterior_log_variance_clipped", torch.log(posterior_variance.clamp(min=1e-20)))
        register("posterior_mean_coef1", betas * torch.sqrt(alphas_cumprod_prev) / (1.0 - alphas_cumprod))
        register("posterior_mean_coef2", (1.0 - alphas_cumprod_prev) * torch.sqrt(alphas) / (1.0 - alphas_cumprod))
        snr = alphas_cumprod / (1 - alphas_cumprod)
        clipped_snr = torch.minimum(snr, torch.full_like(snr, min_snr_gamma))  # min-SNR-gamma weighting
        weight = {"pred_noise": clipped_snr / snr, "pred_x0": clipped_snr, "pred_v": clipped_snr / (snr + 1)}
        register("loss_weight", weight[objective])
        register("log_sigmas", torch.log(torch.sqrt((1 - alphas_cumprod) / alphas_cumprod)))

    # --- the forward process and conversions between parameterisations
    def q_sample(self, x_start, t, noise):
        return (extract(self.sqrt_alphas_cumprod, t, x_start.shape) * x_start
                + extract(self.sqrt_one_minus_alphas_cumprod, t, x_start.shape) * noise)

    def predict_v(self, x_start, t, noise):
        return (extract(self.sqrt_alphas_cumprod, t, x_start.shape) * noise
                - extract(self.sqrt_one_minus_alphas_cumprod, t, x_start.shape) * x_start)

    def predict_start_from_noise(self, x_t, t, noise):
        return (extract(self.sqrt_recip_alphas_cumprod, t, x_t.shape) * x_t
                - extract(self.sqrt_recipm1_alphas_cumprod, t, x_t.shape) * noise)

    def predict_noise_from_start(self, x_t, t, x0):
        return ((extract(self.sqrt_recip_alphas_cumprod, t, x_t.shape) * x_t - x0)
                / extract(self.sqrt_recipm1_alphas_cumprod, t, x_t.shape))

    def predict_start_from_v(self, x_t, t, v):
        return (extract(self.sqrt_alphas_cumprod, t, x_t.shape) * x_t
                - extract(self.sqrt_one_minus_alphas_cumprod, t, x_t.shape) * v)

    # --- training
    def p_losses(self, x_start, t, y, noise, cond=None):
        x = self.q_sample(x_start, t, noise)
        out, var_out = self.split_output(self.model(x, t, y, cond))
        vb = 0.0
        if var_out is not None:  # the bound trains the variance only: it sees the mean through a detached output
            vb = self.vb_term(x_start, x, t, out.detach(), var_out) * (self.num_timesteps / 1000.0)
        target = {"pred_noise": lambda: noise, "pred_x0": lambda: x_start,
                  "pred_v": lambda: self.predict_v(x_start, t, noise)}[self.objective]()
        loss = F.mse_loss(out, target, reduction="none")
        loss = loss.mean(dim=list(range(1, loss.ndim)))
        return (loss * extract(self.loss_weight, t, loss.shape) + vb).mean()

    def split_output(self, out):
        return out.chunk(2, dim=1) if self.learn_sigma else (out, None)

    def x0_from_output(self, x, t, out):
        if self.objective == "pred_noise":
            return self.predict_start_from_noise(x, t, out)
        return out if self.objective == "pred_x0" else self.predict_start_from_v(x, t, out)

    def posterior(self, x0, x_t, t, var_out=None):
        """Mean and log variance of q(x_{t-1} | x_t, x0); with var_out, the log variance interpolates between
        the posterior's and beta_t's."""
        mean = (extract(self.posterior_mean_coef1, t, x_t.shape) * x0
                + extract(self.posterior_mean_coef2, t, x_t.shape) * x_t)
        log_var = extract(self.posterior_log_variance_clipped, t, x_t.shape)
        if var_out is not None:
            frac = (var_out + 1) / 2
            log_var = frac * extract(self.log_betas, t, x_t.shape) + (1 - frac) * log_var
        return mean, log_var

    def vb_term(self, x_start, x_t, t, out, var_out):
        """The variational bound's term at t in bits per dimension: the KL to the true posterior, or at t = 0
        the decoder's negative log-likelihood."""
        true_mean, true_log_var = self.posterior(x_start, x_t, t)
        mean, log_var = self.posterior(self.x0_from_output(x_t, t, out).clamp(-1, 1), x_t, t, var_out)
        kl = mean_flat(normal_kl(true_mean, true_log_var, mean, log_var)) / np.log(2.0)
        nll = -mean_flat(discretized_log_likelihood(x_start, mean, 0.5 * log_var)) / np.log(2.0)
        return torch.where(t == 0, nll, kl)

    def forward(self, img, y, rng):
        b = img.shape[0]
        t = torch.from_numpy(rng.integers(0, self.num_timesteps, size=b)).to(img.device)
        noise = randn_from(rng, img.shape, img)
        cond = make_lowres(img, self.lowres_size) if self.lowres_size else None
        return self.p_losses(img, t, drop_labels(y, self.p_uncond, self.null_class, rng), noise, cond)

    # --- sampling
    def model_output(self, x, t, y, guidance_scale=1.0, cond=None):
        """The denoiser's output; with guidance_scale != 1 the conditional and unconditional passes run as one
        batch and are mixed (a learned variance is the conditional pass's)."""
        if guidance_scale == 1.0:
            return self.model(x, t, y, cond)
        out_cond, out_uncond = self.model(torch.cat([x, x]), torch.cat([t, t]),
                                          torch.cat([y, torch.full_like(y, self.null_class)]),
                                          None if cond is None else torch.cat([cond, cond])).chunk(2)
        (out_cond, var_out), (out_uncond, _) = self.split_output(out_cond), self.split_output(out_uncond)
        guided = out_uncond + guidance_scale * (out_cond - out_uncond)
        return guided if var_out is None else torch.cat([guided, var_out], dim=1)

    @staticmethod
    def limit_x0(x0, clip_x0=False, dynamic_p=None):
        if dynamic_p is not None:
            return dynamic_threshold(x0, dynamic_p)
        return torch.clamp(x0, -1.0, 1.0) if clip_x0 else x0

    def model_predictions(self, x, t, y, guidance_scale=1.0, clip_x0=False, dynamic_p=None, cond=None):
        """(predicted noise, predicted x0, variance output or None) at integer timesteps t; the noise is
        rederived from a limited x0."""
        out, var_out = self.split_output(self.model_output(x, t, y, guidance_scale, cond))
        x0 = self.limit_x0(self.x0_from_output(x, t, out), clip_x0, dynamic_p)
        return self.predict_noise_from_start(x, t, x0), x0, var_out

    @torch.no_grad()
    def ddpm_sample(self, shape, y, rng, **pred_kw):
        """Ancestral sampling through every timestep; returns the trajectory (B, T + 1, ...)."""
        img = randn_from(rng, shape, self.betas)
        imgs = [img]
        for i in reversed(range(self.num_timesteps)):
            t = torch.full((shape[0],), i, device=img.device, dtype=torch.long)
            _, x0, var_out = self.model_predictions(img, t, y, **pred_kw)
            mean, log_var = self.posterior(x0, img, t, var_out)
            noise = randn_from(rng, shape, img) if i > 0 else torch.zeros_like(img)
            img = mean + (0.5 * log_var).exp() * noise
            imgs.append(img)
        return torch.stack(imgs, dim=1)

    @torch.no_grad()
    def ddim_sample(self, shape, y, rng, steps=10, eta=0.0, **pred_kw):
        times = torch.linspace(-1, self.num_timesteps - 1, steps=steps + 1)
        times = list(reversed(times.int().tolist()))
        img = randn_from(rng, shape, self.betas)
        imgs = [img]
        for time, time_next in zip(times[:-1], times[1:]):
            t = torch.full((shape[0],), time, device=img.device, dtype=torch.long)
            pred_noise, x0, _ = self.model_predictions(img, t, y, **pred_kw)
            if time_next < 0:
                img = x0
            else:
                alpha, alpha_next = self.alphas_cumprod[time], self.alphas_cumprod[time_next]
                sigma = eta * ((1 - alpha / alpha_next) * (1 - alpha_next) / (1 - alpha)).sqrt()
                c = (1 - alpha_next - sigma ** 2).sqrt()
                img = x0 * alpha_next.sqrt() + c * pred_noise + sigma * randn_from(rng, shape, img)
            imgs.append(img)
        return torch.stack(imgs, dim=1)

    def sigma_to_t(self, sigma):
        """Fractional timestep whose log-sigma interpolates linearly to log(sigma)."""
        log_sigma = sigma.log()
        hi = torch.searchsorted(self.log_sigmas, log_sigma).clamp(1, self.num_timesteps - 1)
        lo = hi - 1
        w = ((log_sigma - self.log_sigmas[lo]) / (self.log_sigmas[hi] - self.log_sigmas[lo])).clamp(0, 1)
        return lo + w

    def denoise(self, x, sigma, y, guidance_scale=1.0, clip_x0=False, dynamic_p=None, cond=None):
        """x0 predicted from x = x0 + sigma * eps (variance-exploding form) through the VP-trained model, whose
        input is x * a with a = 1 / sqrt(1 + sigma^2), noise level s = sigma * a, at a fractional timestep."""
        a = 1 / (sigma ** 2 + 1).sqrt()
        s = sigma * a
        x_vp = x * a
        t = self.sigma_to_t(sigma).expand(x.shape[0])
        out, _ = self.split_output(self.model_output(x_vp, t, y, guidance_scale, cond))
        if self.objective == "pred_noise":
            x0 = (x_vp - s * out) / a
        elif self.objective == "pred_x0":
            x0 = out
        else:
            x0 = a * x_vp - s * out
        return self.limit_x0(x0, clip_x0, dynamic_p)

    @torch.no_grad()
    def euler_sample(self, shape, y, rng, steps=8, rho=7.0, heun=False, **pred_kw):
        sigmas = self.log_sigmas.exp()
        sigmas = karras_sigmas(steps, sigmas[0].item(), sigmas[-1].item(), rho, self.betas.device).to(self.betas)
        x = randn_from(rng, shape, self.betas) * sigmas[0]
        xs = [x]
        for i in range(steps):
            sigma, sigma_next = sigmas[i], sigmas[i + 1]
            d = (x - self.denoise(x, sigma, y, **pred_kw)) / sigma
            x_next = x + d * (sigma_next - sigma)
            if heun and sigma_next > 0:  # second order: average with the slope at the Euler point
                d_next = (x_next - self.denoise(x_next, sigma_next, y, **pred_kw)) / sigma_next
                x_next = x + (d + d_next) / 2 * (sigma_next - sigma)
            x = x_next
            xs.append(x)
        return torch.stack(xs, dim=1)


class EDMPrecond(nn.Module):
    """Karras et al. (2022)'s preconditioned denoiser D(x; sigma) = c_skip x + c_out F(c_in x; c_noise, y) around
    the same network, trained on log-normal sigmas with the weight that makes the loss unit-variance, sampled with
    the second-order stochastic sampler (noise "churn" added before each Heun step)."""

    def __init__(self, model, sigma_data=0.5, p_mean=-1.2, p_std=1.2, p_uncond=0.2):
        super().__init__()
        self.model, self.sigma_data, self.p_uncond = model, sigma_data, p_uncond
        self.p_mean, self.p_std = p_mean, p_std  # log sigma ~ N(p_mean, p_std^2) in training

    def forward(self, x, sigma, y):
        sigma = sigma.to(x.dtype).reshape(-1, 1, 1, 1)
        sd2 = self.sigma_data ** 2
        c_skip = sd2 / (sigma ** 2 + sd2)
        c_out = sigma * self.sigma_data / (sigma ** 2 + sd2).sqrt()
        c_in = 1 / (sd2 + sigma ** 2).sqrt()
        c_noise = (sigma.log() / 4).reshape(-1).expand(x.shape[0])
        return c_skip * x + c_out * self.model(c_in * x, c_noise, y)

    def loss(self, images, y, rng):
        sigma = (randn_from(rng, (images.shape[0], 1, 1, 1), images) * self.p_std + self.p_mean).exp()
        weight = (sigma ** 2 + self.sigma_data ** 2) / (sigma * self.sigma_data) ** 2
        noisy = images + randn_from(rng, images.shape, images) * sigma
        denoised = self(noisy, sigma, drop_labels(y, self.p_uncond, self.model.num_classes, rng))
        return (weight * (denoised - images) ** 2).mean()

    def guided(self, x, sigma, y, guidance_scale):
        if guidance_scale == 1.0:
            return self(x, sigma, y)
        cond, uncond = self(torch.cat([x, x]), sigma, torch.cat([y, torch.full_like(y, self.model.num_classes)])
                            ).chunk(2)
        return uncond + guidance_scale * (cond - uncond)

    @torch.no_grad()
    def sample(self, shape, y, rng, steps=6, sigma_min=0.002, sigma_max=80.0, rho=7.0, churn=0.0,
               churn_range=(0.0, float("inf")), s_noise=1.0, guidance_scale=1.0, schedule="karras"):
        dev = self.model.inp.weight
        if schedule == "karras":
            sigmas = karras_sigmas(steps, sigma_min, sigma_max, rho, dev.device)
        else:  # evenly spaced in log sigma
            sigmas = torch.logspace(math.log10(sigma_max), math.log10(sigma_min), steps, dtype=torch.float64,
                                    device=dev.device)
            sigmas = torch.cat([sigmas, sigmas.new_zeros(1)])
        sigmas = sigmas.to(dev.dtype)
        x = randn_from(rng, shape, dev) * sigmas[0]
        xs = [x]
        for i, (sigma, sigma_next) in enumerate(zip(sigmas[:-1], sigmas[1:])):
            # raise the noise level to sigma_hat by adding fresh noise, then step from there
            gamma = min(churn / steps, np.sqrt(2) - 1) if churn_range[0] <= sigma <= churn_range[1] else 0.0
            sigma_hat = sigma + gamma * sigma
            x_hat = x + (sigma_hat ** 2 - sigma ** 2).sqrt() * s_noise * randn_from(rng, shape, x)
            d = (x_hat - self.guided(x_hat, sigma_hat, y, guidance_scale)) / sigma_hat
            x = x_hat + (sigma_next - sigma_hat) * d
            if i < steps - 1:  # Heun's correction, except on the last step to sigma = 0
                d_next = (x - self.guided(x, sigma_next, y, guidance_scale)) / sigma_next
                x = x_hat + (sigma_next - sigma_hat) * (0.5 * d + 0.5 * d_next)
            xs.append(x)
        return torch.stack(xs, dim=1)


def dynamic_threshold(x0, p=0.9):
    """Imagen's dynamic thresholding: s is the p-quantile of |x0| per sample (at least 1); clamp to [-s, s]
    and divide by s."""
    s = torch.quantile(x0.reshape(x0.shape[0], -1).abs(), p, dim=-1)
    s = torch.clamp(s, min=1.0).view(-1, *((1,) * (x0.ndim - 1)))
    return torch.clamp(x0, -s, s) / s


class EMA:
    """Exponential moving average of a model's weights, with the usual warm-up of the decay."""

    def __init__(self, model, decay=0.99, use_lerp=True):
        self.shadow = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay, self.use_lerp, self.num_updates = decay, use_lerp, 0

    @torch.no_grad()
    def update(self, model):
        self.num_updates += 1
        decay = min(self.decay, (1 + self.num_updates) / (10 + self.num_updates))
        for e, p in zip(self.shadow.parameters(), model.parameters()):
            if self.use_lerp:
                e.lerp_(p, 1.0 - decay)
            else:
                e.mul_(decay).add_(p, alpha=1.0 - decay)
        for e, b in zip(self.shadow.buffers(), model.buffers()):
            e.copy_(b)


def train_step(diffusion, opt, ema, img, y, rng, max_norm=1.0):
    """One step of the usual loop; returns (loss, gradient norm before clipping)."""
    loss = diffusion(img, y, rng)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(diffusion.parameters(), max_norm)
    opt.step()
    ema.update(diffusion)
    return loss.detach(), norm
