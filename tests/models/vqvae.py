"""A VQ-VAE written the way public VQ-VAE code is written (imports torch only; loaded with vibetensor swapped in by
tests/models/swap_import.py):
  - encoder: strided convs and residual blocks to a grid of latent vectors; decoder: residual blocks and
    transposed convs back to the image;
  - the quantiser finds each latent's nearest codebook entry (by torch.cdist, or by the expanded squared distance
    |z|^2 - 2 z.e + |e|^2), one-hot encodes the argmin with F.one_hot, looks the codes up by a matmul with the
    one-hots, and passes gradients straight through (z + (z_q - z).detach()); the loss is the codebook term plus
    beta times the commitment term; it reports the perplexity of the code usage;
  - residual VQ (each stage quantises what the previous stages left) and finite scalar quantisation (FSQ:
    tanh-bounded, rounded through the straight-through estimator, mixed-radix code indices from a cumprod);
  - the EMA variant keeps the cluster sizes and sums as buffers, updated under torch.no_grad with mul_/add_ and
    index_add_ (or scatter_add_), Laplace-smooths the counts, and restarts dead codes from random latents.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


class ResidualBlock(nn.Module):
    def __init__(self, ch, hidden):
        super().__init__()
        self.block = nn.Sequential(
            nn.ReLU(), nn.Conv2d(ch, hidden, 3, padding=1),
            nn.ReLU(inplace=True), nn.Conv2d(hidden, ch, 1),
        )

    def forward(self, x):
        return x + self.block(x)


class Encoder(nn.Module):
    def __init__(self, in_ch, ch, n_res, res_ch, emb_dim):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, ch // 2, 4, stride=2, padding=1)
        self.conv2 = nn.Conv2d(ch // 2, ch, 4, stride=2, padding=1)
        self.conv3 = nn.Conv2d(ch, ch, 3, padding=1)
        self.res = nn.Sequential(*[ResidualBlock(ch, res_ch) for _ in range(n_res)])
        self.pre_vq = nn.Conv2d(ch, emb_dim, 1)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = self.res(self.conv3(x))
        return self.pre_vq(F.relu(x))


class Decoder(nn.Module):
    def __init__(self, out_ch, ch, n_res, res_ch, emb_dim):
        super().__init__()
        self.conv1 = nn.Conv2d(emb_dim, ch, 3, padding=1)
        self.res = nn.Sequential(*[ResidualBlock(ch, res_ch) for _ in range(n_res)])
        self.up1 = nn.ConvTranspose2d(ch, ch // 2, 4, stride=2, padding=1)
        self.up2 = nn.ConvTranspose2d(ch // 2, out_ch, 4, stride=2, padding=1)

    def forward(self, z):
        x = self.res(self.conv1(z))
        x = F.relu(self.up1(F.relu(x)))
        return self.up2(x)


def nearest_codes(flat, codebook, method="expanded"):
    """Index of the nearest codebook row for each row of flat [N, D]."""
    if method == "cdist":
        dist = torch.cdist(flat, codebook)
    else:
        dist = (torch.sum(flat ** 2, dim=1, keepdim=True) - 2 * torch.matmul(flat, codebook.t())
                + torch.sum(codebook ** 2, dim=1))
    return torch.argmin(dist, dim=1)


class VectorQuantizer(nn.Module):
    """The codebook trained by gradient: loss = |sg[z] - e|^2 + beta |z - sg[e]|^2."""

    def __init__(self, num_codes, dim, beta=0.25, method="expanded"):
        super().__init__()
        self.num_codes, self.dim, self.beta, self.method = num_codes, dim, beta, method
        self.embedding = nn.Embedding(num_codes, dim)
        self.embedding.weight.data.uniform_(-1.0 / num_codes, 1.0 / num_codes)

    def forward(self, z):
        z = z.permute(0, 2, 3, 1).contiguous()  # BCHW -> BHWC
        flat = z.view(-1, self.dim)
        idx = nearest_codes(flat, self.embedding.weight, self.method)
        encodings = F.one_hot(idx, self.num_codes).type(flat.dtype)
        z_q = torch.matmul(encodings, self.embedding.weight).view(z.shape)
        codebook_loss = F.mse_loss(z_q, z.detach())
        commitment_loss = F.mse_loss(z, z_q.detach())
        loss = codebook_loss + self.beta * commitment_loss
        z_q = z + (z_q - z).detach()  # straight-through estimator
        avg_probs = torch.mean(encodings, dim=0)
        perplexity = torch.exp(-torch.sum(avg_probs * torch.log(avg_probs + 1e-10)))
        return z_q.permute(0, 3, 1, 2).contiguous(), loss, perplexity, idx.view(z.shape[:-1])


class VectorQuantizerEMA(nn.Module):
    """The codebook as exponential moving averages of the latents assigned to each code (no gradient reaches it):
    N_k <- d N_k + (1 - d) n_k, m_k <- d m_k + (1 - d) sum z, e_k = m_k / smoothed N_k."""

    def __init__(self, num_codes, dim, beta=0.25, decay=0.9, eps=1e-5, accumulate="index_add", restart=0.0):
        super().__init__()
        self.num_codes, self.dim, self.beta, self.decay, self.eps = num_codes, dim, beta, decay, eps
        self.accumulate, self.restart = accumulate, restart
        embed = torch.randn(num_codes, dim)
        self.register_buffer("embedding", embed)
        self.register_buffer("cluster_size", torch.zeros(num_codes))
        self.register_buffer("embed_avg", embed.clone())

    def forward(self, z, restart_from=None):
        z = z.permute(0, 2, 3, 1).contiguous()
        flat = z.reshape(-1, self.dim)
        idx = nearest_codes(flat, self.embedding)
        encodings = F.one_hot(idx, self.num_codes).to(flat.dtype)
        z_q = F.embedding(idx, self.embedding).view_as(z)
        if self.training:
            with torch.no_grad():
                counts = encodings.sum(0)
                if self.accumulate == "index_add":
                    sums = torch.zeros_like(self.embed_avg).index_add_(0, idx, flat)
                else:
                    sums = torch.zeros_like(self.embed_avg).scatter_add_(
                        0, idx.unsqueeze(1).expand(-1, self.dim), flat)
                self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
                self.embed_avg.mul_(self.decay).add_(sums, alpha=1 - self.decay)
                n = self.cluster_size.sum()
                smoothed = (self.cluster_size + self.eps) / (n + self.num_codes * self.eps) * n  # Laplace
                self.embedding.copy_(self.embed_avg / smoothed.unsqueeze(1))
                if restart_from is not None:
                    self.restart_dead_codes(flat, restart_from)
        loss = self.beta * F.mse_loss(z, z_q.detach())
        z_q = z + (z_q - z).detach()
        avg_probs = encodings.mean(0)
        perplexity = torch.exp(-(avg_probs * torch.log(avg_probs + 1e-10)).sum())
        return z_q.permute(0, 3, 1, 2).contiguous(), loss, perplexity, idx.view(z.shape[:-1])

    @torch.no_grad()
    def restart_dead_codes(self, flat, picks):
        """Codes whose usage fell below `restart` take the latents at the passed-in row indices `picks`."""
        dead = self.cluster_size < self.restart
        n_dead = int(dead.sum().item())
        if n_dead == 0:
            return
        new = flat[picks[:n_dead]]
        self.embedding[dead] = new
        self.embed_avg[dead] = new
        self.cluster_size.masked_fill_(dead, 1.0)


class VQVAE(nn.Module):
    def __init__(self, in_ch=3, ch=16, n_res=1, res_ch=8, num_codes=12, emb_dim=4, beta=0.25, ema=False,
                 method="expanded", **ema_kw):
        super().__init__()
        self.encoder = Encoder(in_ch, ch, n_res, res_ch, emb_dim)
        if ema:
            self.vq = VectorQuantizerEMA(num_codes, emb_dim, beta=beta, **ema_kw)
        else:
            self.vq = VectorQuantizer(num_codes, emb_dim, beta=beta, method=method)
        self.decoder = Decoder(in_ch, ch, n_res, res_ch, emb_dim)

    def forward(self, x, **kw):
        z = self.encoder(x)
        z_q, vq_loss, perplexity, idx = self.vq(z, **kw)
        x_rec = self.decoder(z_q)
        rec_loss = F.mse_loss(x_rec, x)
        return x_rec, rec_loss + vq_loss, perplexity, idx


class ResidualVQ(nn.Module):
    """Stages of codebooks, each quantising the residual the previous ones left; the sum of their codes."""

    def __init__(self, num_stages, num_codes, dim, beta=0.25):
        super().__init__()
        self.layers = nn.ModuleList([VectorQuantizer(num_codes, dim, beta) for _ in range(num_stages)])

    def forward(self, z):
        residual, out = z, torch.zeros_like(z)
        losses, indices = [], []
        for layer in self.layers:
            q, loss, _, idx = layer(residual)
            residual = residual - q.detach()
            out = out + q
            losses.append(loss)
            indices.append(idx)
        return out, torch.stack(losses).sum(), torch.stack(indices, dim=-1)


def round_ste(z):
    """Round with a straight-through gradient."""
    zhat = z.round()
    return z + (zhat - z).detach()


class FSQ(nn.Module):
    """Finite scalar quantisation: each channel bounded to levels[i] values, codes as mixed-radix integers."""

    def __init__(self, levels, eps=1e-3):
        super().__init__()
        self.eps = eps
        self.register_buffer("levels", torch.tensor(levels, dtype=torch.int32), persistent=False)
        self.register_buffer("basis", torch.cumprod(torch.tensor([1] + levels[:-1]), dim=0, dtype=torch.int32),
                             persistent=False)
        self.codebook_size = int(torch.prod(self.levels).item())

    def bound(self, z):
        half_l = (self.levels - 1) * (1 + self.eps) / 2
        offset = torch.where(self.levels % 2 == 0, 0.5, 0.0)
        shift = (offset / half_l).atanh()
        return (z + shift).tanh() * half_l - offset

    def forward(self, z):
        """z [..., d] -> quantised values in [-1, 1] and the code indices."""
        half_width = self.levels // 2
        zhat = round_ste(self.bound(z)) / half_width
        indices = ((zhat * half_width + half_width) * self.basis).sum(dim=-1).to(torch.int32)
        return zhat, indices

    def indices_to_codes(self, indices):
        half_width = self.levels // 2
        level_indices = (indices.unsqueeze(-1) // self.basis) % self.levels
        return (level_indices - half_width) / half_width
