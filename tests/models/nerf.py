"""A NeRF written the way public NeRF code is written (imports torch only; loaded with vibetensor swapped in by
tests/models/swap_import.py):
  - positional encoding: the input and sin/cos of 2^k-scaled inputs, concatenated with torch.cat;
  - an MLP with a skip connection (the encoded position concatenated back in halfway), a density head, and a
    view-dependent colour head fed the feature and the encoded direction;
  - rays sampled at torch.linspace depths, optionally jittered within their bins by a passed-in array
    (stratified sampling);
  - volume rendering: deltas between samples (the last one 1e10), alpha = 1 - exp(-relu(sigma) * delta),
    transmittance as an exclusive torch.cumprod of (1 - alpha + 1e-10), weights, and the rgb, depth, acc and
    disparity maps, an optional white background;
  - rays from a pinhole camera: a pixel meshgrid (torch.meshgrid's default "ij", transposed), directions
    rotated by the camera-to-world matrix with np.newaxis indexing, origins expanded; NDC rays for
    forward-facing scenes;
  - hierarchical sampling: a piecewise-constant PDF from the coarse weights, its CDF, inverted with
    torch.searchsorted(right=True), torch.gather of the bin ends, then the coarse and fine depths sorted together.
"""
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class PositionalEncoding(nn.Module):
    def __init__(self, n_freqs, include_input=True, log_sampling=True):
        super().__init__()
        self.include_input = include_input
        if log_sampling:
            bands = 2.0 ** torch.linspace(0.0, n_freqs - 1, n_freqs)
        else:
            bands = torch.linspace(2.0 ** 0.0, 2.0 ** (n_freqs - 1), n_freqs)
        self.register_buffer("freq_bands", bands, persistent=False)

    def out_dim(self, d):
        return d * (int(self.include_input) + 2 * len(self.freq_bands))

    def forward(self, x):
        out = [x] if self.include_input else []
        for freq in self.freq_bands:
            for fn in (torch.sin, torch.cos):
                out.append(fn(x * freq))
        return torch.cat(out, dim=-1)


class NeRF(nn.Module):
    def __init__(self, depth=4, width=32, pos_freqs=4, dir_freqs=2, skips=(2,), use_viewdirs=True):
        super().__init__()
        self.skips, self.use_viewdirs = skips, use_viewdirs
        self.embed_pos = PositionalEncoding(pos_freqs)
        self.embed_dir = PositionalEncoding(dir_freqs)
        in_pos, in_dir = self.embed_pos.out_dim(3), self.embed_dir.out_dim(3)
        self.pts_linears = nn.ModuleList(
            [nn.Linear(in_pos, width)]
            + [nn.Linear(width + (in_pos if i in skips else 0), width) for i in range(1, depth)])
        if use_viewdirs:
            self.feature_linear = nn.Linear(width, width)
            self.alpha_linear = nn.Linear(width, 1)
            self.views_linears = nn.ModuleList([nn.Linear(in_dir + width, width // 2)])
            self.rgb_linear = nn.Linear(width // 2, 3)
        else:
            self.output_linear = nn.Linear(width, 4)

    def forward(self, pts, viewdirs):
        input_pts = self.embed_pos(pts)
        h = input_pts
        for i, layer in enumerate(self.pts_linears):
            if i in self.skips:
                h = torch.cat([input_pts, h], -1)
            h = F.relu(layer(h))
        if not self.use_viewdirs:
            return self.output_linear(h)
        alpha = self.alpha_linear(h)
        feature = self.feature_linear(h)
        dirs = self.embed_dir(viewdirs)[..., None, :].expand(*pts.shape[:-1], -1)
        h = torch.cat([feature, dirs], -1)
        for layer in self.views_linears:
            h = F.relu(layer(h))
        rgb = self.rgb_linear(h)
        return torch.cat([rgb, alpha], -1)


def sample_along_rays(rays_o, rays_d, near, far, n_samples, jitter=None, lindisp=False):
    """Depths [R, S] and points [R, S, 3]; jitter [R, S] in [0, 1) moves each depth within its bin."""
    t_vals = torch.linspace(0.0, 1.0, steps=n_samples, dtype=rays_o.dtype, device=rays_o.device)
    if lindisp:
        z_vals = 1.0 / (1.0 / near * (1.0 - t_vals) + 1.0 / far * t_vals)
    else:
        z_vals = near * (1.0 - t_vals) + far * t_vals
    z_vals = z_vals.expand([rays_o.shape[0], n_samples])
    if jitter is not None:
        mids = 0.5 * (z_vals[..., 1:] + z_vals[..., :-1])
        upper = torch.cat([mids, z_vals[..., -1:]], -1)
        lower = torch.cat([z_vals[..., :1], mids], -1)
        z_vals = lower + (upper - lower) * jitter
    pts = rays_o[..., None, :] + rays_d[..., None, :] * z_vals[..., :, None]
    return z_vals, pts


def raw2outputs(raw, z_vals, rays_d, white_bkgd=False, noise=None):
    """Volume rendering of raw [R, S, 4] at depths z_vals [R, S]."""
    dists = z_vals[..., 1:] - z_vals[..., :-1]
    dists = torch.cat([dists, torch.tensor([1e10], dtype=z_vals.dtype, device=z_vals.device).expand(
        dists[..., :1].shape)], -1)
    dists = dists * torch.norm(rays_d[..., None, :], dim=-1)
    rgb = torch.sigmoid(raw[..., :3])
    sigma = raw[..., 3] if noise is None else raw[..., 3] + noise
    alpha = 1.0 - torch.exp(-F.relu(sigma) * dists)
    ones = torch.ones((alpha.shape[0], 1), dtype=alpha.dtype, device=alpha.device)
    transmittance = torch.cumprod(torch.cat([ones, 1.0 - alpha + 1e-10], -1), -1)[:, :-1]
    weights = alpha * transmittance
    rgb_map = torch.sum(weights[..., None] * rgb, -2)
    depth_map = torch.sum(weights * z_vals, -1)
    acc_map = torch.sum(weights, -1)
    disp_map = 1.0 / torch.max(1e-10 * torch.ones_like(depth_map), depth_map / acc_map)
    if white_bkgd:
        rgb_map = rgb_map + (1.0 - acc_map[..., None])
    return rgb_map, disp_map, acc_map, weights, depth_map


def sample_pdf(bins, weights, n_samples, u=None):
    """Draws n_samples depths [R, n_samples] from the piecewise-constant PDF of weights [R, B-1] over bins [R, B];
    u [R, n_samples] are the uniform draws (evenly spaced when None)."""
    weights = weights + 1e-5  # no NaN where every weight is 0
    pdf = weights / torch.sum(weights, -1, keepdim=True)
    cdf = torch.cumsum(pdf, -1)
    cdf = torch.cat([torch.zeros_like(cdf[..., :1]), cdf], -1)
    if u is None:
        u = torch.linspace(0.0, 1.0, steps=n_samples, dtype=bins.dtype, device=bins.device)
        u = u.expand(list(cdf.shape[:-1]) + [n_samples])
    u = u.contiguous()
    inds = torch.searchsorted(cdf, u, right=True)
    below = torch.max(torch.zeros_like(inds - 1), inds - 1)
    above = torch.min((cdf.shape[-1] - 1) * torch.ones_like(inds), inds)
    inds_g = torch.stack([below, above], -1)  # [R, n, 2]
    matched = [inds_g.shape[0], inds_g.shape[1], cdf.shape[-1]]
    cdf_g = torch.gather(cdf.unsqueeze(1).expand(matched), 2, inds_g)
    bins_g = torch.gather(bins.unsqueeze(1).expand(matched), 2, inds_g)
    denom = cdf_g[..., 1] - cdf_g[..., 0]
    denom = torch.where(denom < 1e-5, torch.ones_like(denom), denom)
    t = (u - cdf_g[..., 0]) / denom
    return bins_g[..., 0] + t * (bins_g[..., 1] - bins_g[..., 0])


class NeRFRenderer(nn.Module):
    """The coarse and fine networks and the two-pass rendering of a batch of rays."""

    def __init__(self, n_coarse=8, n_fine=8, near=2.0, far=6.0, white_bkgd=False, **net):
        super().__init__()
        self.n_coarse, self.n_fine, self.near, self.far, self.white_bkgd = n_coarse, n_fine, near, far, white_bkgd
        self.coarse = NeRF(**net)
        self.fine = NeRF(**net)

    def render(self, net, rays_o, rays_d, viewdirs, z_vals):
        pts = rays_o[..., None, :] + rays_d[..., None, :] * z_vals[..., :, None]
        raw = net(pts, viewdirs)
        return raw2outputs(raw, z_vals, rays_d, self.white_bkgd)

    def forward(self, rays_o, rays_d, jitter=None, u=None):
        viewdirs = rays_d / torch.norm(rays_d, dim=-1, keepdim=True)
        z_vals, _ = sample_along_rays(rays_o, rays_d, self.near, self.far, self.n_coarse, jitter)
        rgb0, disp0, acc0, weights, _ = self.render(self.coarse, rays_o, rays_d, viewdirs, z_vals)
        z_mid = 0.5 * (z_vals[..., 1:] + z_vals[..., :-1])
        z_samples = sample_pdf(z_mid, weights[..., 1:-1], self.n_fine, u).detach()
        z_all, _ = torch.sort(torch.cat([z_vals, z_samples], -1), -1)
        rgb, disp, acc, _, depth = self.render(self.fine, rays_o, rays_d, viewdirs, z_all)
        return {"rgb_map": rgb, "disp_map": disp, "acc_map": acc, "depth_map": depth, "rgb0": rgb0,
                "z_vals": z_all, "z_samples": z_samples}


def img2mse(x, y):
    return torch.mean((x - y) ** 2)


def mse2psnr(x):
    return -10.0 * torch.log(x) / torch.log(torch.tensor([10.0], device=x.device))


def get_rays(H, W, K, c2w):
    """Origins and directions [H, W, 3] of the rays through every pixel; K the 3x3 intrinsics, c2w [3, 4]."""
    i, j = torch.meshgrid(torch.linspace(0, W - 1, W), torch.linspace(0, H - 1, H), indexing="ij")
    i = i.t()
    j = j.t()
    dirs = torch.stack([(i - K[0][2]) / K[0][0], -(j - K[1][2]) / K[1][1], -torch.ones_like(i)], -1)
    rays_d = torch.sum(dirs[..., np.newaxis, :] * c2w[:3, :3], -1)
    rays_o = c2w[:3, -1].expand(rays_d.shape)
    return rays_o, rays_d


def ndc_rays(H, W, focal, near, rays_o, rays_d):
    """Rays in normalised device coordinates (origins moved to the near plane first)."""
    t = -(near + rays_o[..., 2]) / rays_d[..., 2]
    rays_o = rays_o + t[..., None] * rays_d
    o0 = -1.0 / (W / (2.0 * focal)) * rays_o[..., 0] / rays_o[..., 2]
    o1 = -1.0 / (H / (2.0 * focal)) * rays_o[..., 1] / rays_o[..., 2]
    o2 = 1.0 + 2.0 * near / rays_o[..., 2]
    d0 = -1.0 / (W / (2.0 * focal)) * (rays_d[..., 0] / rays_d[..., 2] - rays_o[..., 0] / rays_o[..., 2])
    d1 = -1.0 / (H / (2.0 * focal)) * (rays_d[..., 1] / rays_d[..., 2] - rays_o[..., 1] / rays_o[..., 2])
    d2 = -2.0 * near / rays_o[..., 2]
    return torch.stack([o0, o1, o2], -1), torch.stack([d0, d1, d2], -1)
