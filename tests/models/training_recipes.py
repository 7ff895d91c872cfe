"""Training recipes beyond a plain supervised step, written the way public training scripts write them (imports
torch only; loaded with vibetensor swapped in by tests/models/swap_import.py):
  - CLIP-style contrastive training: an image tower on small conv features and a text tower (nn.Embedding, masked
    mean pooling over non-padding tokens), both L2-normalised; a learnable log temperature that the forward clamps
    and exponentiates; a symmetric cross-entropy with label smoothing; the in-place clamp_ of logit_scale under
    torch.no_grad after each optimizer step, as open_clip's training loop does;
  - a small GAN: MLP generator and discriminator (spectral norm optional), BCEWithLogitsLoss, two Adam optimizers
    with betas=(0.5, 0.999), the discriminator step on fake.detach(), zero_grad(set_to_none=True); the noise comes
    from the caller (numpy); a WGAN-GP critic step, whose gradient penalty differentiates through
    torch.autograd.grad(create_graph=True), and StyleGAN2's lazy R1 regularisation (every few steps, a critic step
    on the R1 penalty alone);
  - REINFORCE on a corridor environment written in numpy: actions are drawn by a numpy Generator from the policy's
    probabilities, the update scores them with Categorical(logits=...).log_prob, normalises the discounted returns
    by their mean and std and adds an entropy bonus; and PPO on the same environment (GAE in numpy, minibatches
    indexed by numpy permutations, the clipped ratio objective, a value loss, clip_grad_norm_); SAC updates with a
    tanh-squashed Gaussian actor (noise from the caller; np.log(2) in the log-probability's correction), twin Q
    networks and their Polyak-averaged targets, frozen Q weights for the actor step, a learned temperature;
  - gradient accumulation over micro-batches (each loss scaled by 1 / micro-batches), clip_grad_value_ then
    clip_grad_norm_, activation checkpointing of each residual block (use_reentrant=False), and an EMA of the
    weights kept with torch._foreach_mul_ / _foreach_add_ (as timm's ModelEmaV3 does);
  - save / resume: model, EMA, optimizer, scheduler, step and RNG state in one torch.save file, loaded into fresh
    objects;
  - stochastic weight averaging: a cosine schedule, then SWALR and AveragedModel updates once per epoch, and
    update_bn to recompute the averaged model's batch-norm statistics;
  - knowledge distillation on mixup batches: the mixing weight and permutation come from the caller (numpy), the
    loss mixes the two hard-label cross-entropies and a temperature-scaled KL to a frozen teacher in eval mode.
"""
import copy
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.distributions import Categorical, Normal
from torch.optim.swa_utils import AveragedModel, SWALR, update_bn
from torch.utils.checkpoint import checkpoint


# ---------------------------------------------------------------- CLIP
class ImageTower(nn.Module):
    def __init__(self, channels=3, width=8, embed_dim=16):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1), nn.GELU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.GELU())
        self.proj = nn.Linear(2 * width, embed_dim)

    def forward(self, images):
        return self.proj(self.features(images).mean(dim=(-2, -1)))


class TextTower(nn.Module):
    def __init__(self, vocab_size=32, width=16, embed_dim=16, pad_id=0):
        super().__init__()
        self.pad_id = pad_id
        self.embed = nn.Embedding(vocab_size, width, padding_idx=pad_id)
        self.mlp = nn.Sequential(nn.Linear(width, width), nn.GELU())
        self.ln = nn.LayerNorm(width)
        self.proj = nn.Linear(width, embed_dim, bias=False)

    def forward(self, tokens):
        mask = (tokens != self.pad_id).unsqueeze(-1).to(self.embed.weight.dtype)
        h = self.mlp(self.embed(tokens))
        # mean over real tokens only; an all-padding caption would divide by zero without the clamp
        pooled = (h * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
        return self.proj(self.ln(pooled))


class CLIP(nn.Module):
    def __init__(self, embed_dim=16, vocab_size=32, init_logit_scale=math.log(1 / 0.07),
                 max_logit_scale=math.log(100)):
        super().__init__()
        self.visual = ImageTower(embed_dim=embed_dim)
        self.text = TextTower(vocab_size=vocab_size, embed_dim=embed_dim)
        self.logit_scale = nn.Parameter(torch.ones([]) * init_logit_scale)
        self.max_logit_scale = max_logit_scale

    def forward(self, images, tokens):
        image_features = F.normalize(self.visual(images), dim=-1)
        text_features = F.normalize(self.text(tokens), dim=-1)
        scale = self.logit_scale.clamp(max=self.max_logit_scale).exp()
        logits_per_image = scale * image_features @ text_features.t()
        return logits_per_image, logits_per_image.t()


def clip_loss(logits_per_image, logits_per_text, label_smoothing=0.1):
    labels = torch.arange(logits_per_image.shape[0], device=logits_per_image.device)
    return (F.cross_entropy(logits_per_image, labels, label_smoothing=label_smoothing)
            + F.cross_entropy(logits_per_text, labels, label_smoothing=label_smoothing)) / 2


def clip_param_groups(model, weight_decay):
    """open_clip's split: gains, biases and logit_scale are not decayed."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim < 2 or "logit_scale" in name else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def clip_train_step(model, optimizer, images, tokens, label_smoothing=0.1):
    optimizer.zero_grad(set_to_none=True)
    loss = clip_loss(*model(images, tokens), label_smoothing=label_smoothing)
    loss.backward()
    optimizer.step()
    # the optimizer may push the temperature past its bound: put it back in place, outside autograd
    with torch.no_grad():
        model.logit_scale.clamp_(0, model.max_logit_scale)
    return loss.detach()


# ---------------------------------------------------------------- GAN
class Generator(nn.Module):
    def __init__(self, latent_dim=4, hidden=16, out_dim=2):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(latent_dim, hidden), nn.BatchNorm1d(hidden), nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(hidden, hidden), nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(hidden, out_dim), nn.Tanh())

    def forward(self, z):
        return self.net(z)


class Discriminator(nn.Module):
    def __init__(self, in_dim=2, hidden=16, spectral_norm=False):
        super().__init__()
        # SNGAN: each weight divided by its largest singular value, estimated by a power iteration per forward
        sn = nn.utils.parametrizations.spectral_norm if spectral_norm else (lambda m: m)
        self.net = nn.Sequential(
            sn(nn.Linear(in_dim, hidden)), nn.LeakyReLU(0.2, inplace=True),
            sn(nn.Linear(hidden, hidden)), nn.LeakyReLU(0.2, inplace=True),
            sn(nn.Linear(hidden, 1)))

    def forward(self, x):
        return self.net(x)


def gan_optimizers(generator, discriminator, lr=2e-3):
    return (torch.optim.Adam(generator.parameters(), lr=lr, betas=(0.5, 0.999)),
            torch.optim.Adam(discriminator.parameters(), lr=lr, betas=(0.5, 0.999)))


def gan_train_step(generator, discriminator, opt_g, opt_d, real, noise, criterion, real_label=1.0, fake_label=0.0):
    """One discriminator step then one generator step, as the DCGAN example writes them. Returns
    (discriminator loss, generator loss) as floats."""
    label = torch.full((real.shape[0],), real_label, dtype=torch.float, device=real.device)
    opt_d.zero_grad(set_to_none=True)
    err_d_real = criterion(discriminator(real).view(-1), label)
    err_d_real.backward()
    fake = generator(noise)
    label.fill_(fake_label)  # after the backward that needed the real labels
    # detach: the discriminator's loss must not reach the generator's weights
    err_d_fake = criterion(discriminator(fake.detach()).view(-1), label)
    err_d_fake.backward()  # accumulates onto the real half's gradients
    opt_d.step()

    opt_g.zero_grad(set_to_none=True)
    label.fill_(real_label)  # the generator wants its fakes called real
    err_g = criterion(discriminator(fake).view(-1), label)
    err_g.backward()
    opt_g.step()
    return (err_d_real + err_d_fake).item(), err_g.item()


def gradient_penalty(critic, real, fake, alpha):
    """WGAN-GP: (||d critic / d x|| - 1)^2 at points between real and fake samples (alpha [B, 1] from the caller)."""
    interp = (alpha * real + (1 - alpha) * fake.detach()).requires_grad_(True)
    scores = critic(interp)
    # create_graph: the penalty is itself differentiated with respect to the critic's weights
    grads, = torch.autograd.grad(outputs=scores, inputs=interp, grad_outputs=torch.ones_like(scores),
                                 create_graph=True, retain_graph=True)
    return ((grads.norm(2, dim=1) - 1) ** 2).mean()


def wgan_gp_critic_step(generator, critic, opt_c, real, noise, alpha, gp_weight=10.0):
    opt_c.zero_grad(set_to_none=True)
    fake = generator(noise)
    loss = (critic(fake.detach()).mean() - critic(real).mean()
            + gp_weight * gradient_penalty(critic, real, fake, alpha))
    loss.backward()
    opt_c.step()
    return loss.item()


def r1_penalty(critic, real):
    """||d critic / d x||^2 at the real samples."""
    real = real.detach().requires_grad_(True)
    grads, = torch.autograd.grad(critic(real).sum(), real, create_graph=True)
    return grads.pow(2).sum(dim=1).mean()


def lazy_r1_step(critic, opt_c, real, gamma=10.0, interval=4):
    """The regularisation step of lazy R1: the penalty alone, scaled by the interval it runs at."""
    opt_c.zero_grad(set_to_none=True)
    loss = gamma / 2 * r1_penalty(critic, real) * interval
    loss.backward()
    opt_c.step()
    return loss.item()


# ---------------------------------------------------------------- REINFORCE
class Corridor:
    """Cells 0..size-1; start in `start`; action 0 moves left (the wall at 0 holds), 1 moves right. Reaching the
    last cell pays 1 and ends the episode; every other step costs `step_cost`; episodes stop after max_steps."""
    n_actions = 2

    def __init__(self, size=6, start=2, step_cost=0.05, max_steps=12):
        self.size, self.start, self.step_cost, self.max_steps = size, start, step_cost, max_steps

    def observe(self):
        obs = np.zeros(self.size, dtype=np.float32)
        obs[self.pos] = 1.0
        return obs

    def reset(self):
        self.pos, self.t = self.start, 0
        return self.observe()

    def step(self, action):
        self.pos = max(0, self.pos - 1) if action == 0 else self.pos + 1
        self.t += 1
        # rewards are NumPy float64 scalars, as NumPy environments return them: torch.tensor keeps float64
        if self.pos == self.size - 1:
            return self.observe(), np.float64(1.0), True
        return self.observe(), np.float64(-self.step_cost), self.t >= self.max_steps


class Policy(nn.Module):
    def __init__(self, obs_dim=6, hidden=16, n_actions=2):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(obs_dim, hidden), nn.Tanh(), nn.Linear(hidden, n_actions))

    def forward(self, obs):
        return self.net(obs)


def run_episode(policy, env, rng):
    """One episode; the action is drawn by the numpy Generator `rng` from the policy's probabilities."""
    device = next(policy.parameters()).device
    obs, done = env.reset(), False
    observations, actions, rewards = [], [], []
    while not done:
        with torch.no_grad():
            probs = F.softmax(policy(torch.from_numpy(obs).unsqueeze(0).to(device)), dim=-1)[0]
        p = probs.cpu().numpy().astype(np.float64)
        action = int(rng.choice(len(p), p=p / p.sum()))
        observations.append(obs)
        actions.append(action)
        obs, reward, done = env.step(action)
        rewards.append(reward)
    return observations, actions, rewards


def discounted_returns(rewards, gamma):
    returns, g = [], 0.0
    for r in reversed(rewards):
        g = r + gamma * g
        returns.insert(0, g)
    return returns


def reinforce_update(policy, optimizer, episodes, gamma=0.9, entropy_coef=0.01, eps=1e-8):
    """One policy-gradient step on a batch of episodes. Returns the loss as a float."""
    device = next(policy.parameters()).device
    observations = [o for ep in episodes for o in ep[0]]
    actions = [a for ep in episodes for a in ep[1]]
    returns = torch.tensor([g for ep in episodes for g in discounted_returns(ep[2], gamma)], device=device)
    returns = (returns - returns.mean()) / (returns.std() + eps)
    dist = Categorical(logits=policy(torch.from_numpy(np.stack(observations)).to(device)))
    log_probs = dist.log_prob(torch.tensor(actions, device=device))
    loss = -(log_probs * returns).mean() - entropy_coef * dist.entropy().mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


class ActorCritic(nn.Module):
    def __init__(self, obs_dim=6, hidden=16, n_actions=2):
        super().__init__()
        self.actor = nn.Sequential(nn.Linear(obs_dim, hidden), nn.Tanh(), nn.Linear(hidden, n_actions))
        self.critic = nn.Sequential(nn.Linear(obs_dim, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    def evaluate(self, obs, actions):
        dist = Categorical(logits=self.actor(obs))
        return dist.log_prob(actions), dist.entropy(), self.critic(obs).squeeze(-1)


def collect(agent, env, rng, steps):
    """`steps` transitions (a finished episode restarts); numpy arrays of what PPO needs, and the last value."""
    device = next(agent.parameters()).device
    obs, rows = env.reset(), []
    for _ in range(steps):
        with torch.no_grad():
            o = torch.from_numpy(obs).unsqueeze(0).to(device)
            log_probs, value = F.log_softmax(agent.actor(o), dim=-1)[0], agent.critic(o).item()
        p = log_probs.exp().cpu().numpy().astype(np.float64)
        action = int(rng.choice(len(p), p=p / p.sum()))
        next_obs, reward, done = env.step(action)
        rows.append((obs, action, reward, float(done), value, log_probs[action].item()))
        obs = env.reset() if done else next_obs
    with torch.no_grad():
        last_value = agent.critic(torch.from_numpy(obs).unsqueeze(0).to(device)).item()
    cols = list(zip(*rows))
    batch = {"obs": np.stack(cols[0]), "actions": np.array(cols[1], dtype=np.int64)}
    names = ("rewards", "dones", "values", "log_probs")
    batch.update({k: np.array(c, dtype=np.float32) for k, c in zip(names, cols[2:])})
    return batch, last_value


def gae(rewards, values, dones, last_value, gamma=0.9, lam=0.95):
    """Generalised advantage estimates and the returns they imply."""
    advantages, running = np.zeros(len(rewards), dtype=np.float32), 0.0
    for t in reversed(range(len(rewards))):
        next_value = last_value if t == len(rewards) - 1 else values[t + 1]
        nonterminal = 1.0 - dones[t]
        delta = rewards[t] + gamma * next_value * nonterminal - values[t]
        running = delta + gamma * lam * nonterminal * running
        advantages[t] = running
    return advantages, advantages + values


def ppo_update(agent, optimizer, batch, advantages, returns, rng, epochs=3, minibatch=8, clip=0.2, vf_coef=0.5,
               ent_coef=0.01, max_norm=0.5):
    """Returns each minibatch's loss and clipped fraction."""
    device = next(agent.parameters()).device
    obs, actions, old_log_probs = (torch.from_numpy(batch[k]).to(device) for k in ("obs", "actions", "log_probs"))
    advantages, returns = torch.from_numpy(advantages).to(device), torch.from_numpy(returns).to(device)
    losses, clipped = [], []
    for _ in range(epochs):
        perm = rng.permutation(len(obs))
        for start in range(0, len(obs), minibatch):
            mb = perm[start:start + minibatch]
            log_probs, entropy, values = agent.evaluate(obs[mb], actions[mb])
            ratio = (log_probs - old_log_probs[mb]).exp()
            adv = advantages[mb]
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
            policy_loss = torch.max(-adv * ratio, -adv * torch.clamp(ratio, 1 - clip, 1 + clip)).mean()
            value_loss = 0.5 * ((values - returns[mb]) ** 2).mean()
            loss = policy_loss - ent_coef * entropy.mean() + vf_coef * value_loss
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(agent.parameters(), max_norm)
            optimizer.step()
            losses.append(loss.item())
            clipped.append(((ratio - 1.0).abs() > clip).float().mean().item())
    return losses, clipped


class SquashedGaussianActor(nn.Module):
    def __init__(self, obs_dim=3, act_dim=2, hidden=16, log_std_bounds=(-5.0, 2.0)):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(obs_dim, hidden), nn.Tanh(), nn.Linear(hidden, 2 * act_dim))
        self.log_std_bounds = log_std_bounds

    def forward(self, obs, noise):
        """A reparameterised action tanh(mu + std * noise) and its log-probability."""
        mu, log_std = self.net(obs).chunk(2, dim=-1)
        std = torch.clamp(log_std, *self.log_std_bounds).exp()
        u = mu + std * noise
        # log|d tanh(u) / du| = 2 (log 2 - u - softplus(-2u)), the numerically stable form
        logp = Normal(mu, std).log_prob(u).sum(-1) - (2 * (np.log(2) - u - F.softplus(-2 * u))).sum(-1)
        return torch.tanh(u), logp


class QNetwork(nn.Module):
    def __init__(self, obs_dim=3, act_dim=2, hidden=16):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(obs_dim + act_dim, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    def forward(self, obs, act):
        return self.net(torch.cat([obs, act], dim=-1)).squeeze(-1)


class SAC:
    def __init__(self, actor, q1, q2, lr=3e-3, init_alpha=0.2, target_entropy=-2.0):
        self.actor, self.q1, self.q2 = actor, q1, q2
        self.q1_targ, self.q2_targ = copy.deepcopy(q1), copy.deepcopy(q2)
        for p in list(self.q1_targ.parameters()) + list(self.q2_targ.parameters()):
            p.requires_grad = False  # moved by Polyak averaging only
        device = next(actor.parameters()).device
        self.log_alpha = torch.tensor(math.log(init_alpha), device=device, requires_grad=True)
        self.q_params = list(q1.parameters()) + list(q2.parameters())
        self.q_opt = torch.optim.Adam(self.q_params, lr=lr)
        self.pi_opt = torch.optim.Adam(actor.parameters(), lr=lr)
        self.alpha_opt = torch.optim.Adam([self.log_alpha], lr=lr)
        self.target_entropy = target_entropy

    def update(self, obs, act, rew, obs2, done, noise_next, noise_pi, gamma=0.99, polyak=0.9):
        with torch.no_grad():
            a2, logp_a2 = self.actor(obs2, noise_next)
            q_targ = torch.min(self.q1_targ(obs2, a2), self.q2_targ(obs2, a2))
            backup = rew + gamma * (1 - done) * (q_targ - self.log_alpha.exp() * logp_a2)
        loss_q = ((self.q1(obs, act) - backup) ** 2).mean() + ((self.q2(obs, act) - backup) ** 2).mean()
        self.q_opt.zero_grad()
        loss_q.backward()
        self.q_opt.step()

        for p in self.q_params:  # the actor's loss must not reach the Q networks
            p.requires_grad = False
        pi, logp_pi = self.actor(obs, noise_pi)
        loss_pi = (self.log_alpha.exp().detach() * logp_pi - torch.min(self.q1(obs, pi), self.q2(obs, pi))).mean()
        self.pi_opt.zero_grad()
        loss_pi.backward()
        self.pi_opt.step()
        for p in self.q_params:
            p.requires_grad = True

        loss_alpha = -(self.log_alpha * (logp_pi.detach() + self.target_entropy)).mean()
        self.alpha_opt.zero_grad()
        loss_alpha.backward()
        self.alpha_opt.step()

        with torch.no_grad():
            for net, targ in ((self.q1, self.q1_targ), (self.q2, self.q2_targ)):
                for p, p_targ in zip(net.parameters(), targ.parameters()):
                    p_targ.mul_(polyak).add_((1 - polyak) * p)
        return loss_q.item(), loss_pi.item(), loss_alpha.item()


# ---------------------------------------------------------------- accumulation, clipping, checkpointing, EMA
class ResidualBlock(nn.Module):
    def __init__(self, dim, hidden, dropout=0.0):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden)
        self.drop = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return x + self.fc2(self.drop(F.gelu(self.fc1(self.norm(x)))))


class Regressor(nn.Module):
    def __init__(self, in_dim=6, dim=16, hidden=32, depth=2, out_dim=3, dropout=0.0, grad_checkpointing=True):
        super().__init__()
        self.inp = nn.Linear(in_dim, dim)
        self.blocks = nn.ModuleList(ResidualBlock(dim, hidden, dropout) for _ in range(depth))
        self.head = nn.Linear(dim, out_dim)
        self.grad_checkpointing = grad_checkpointing

    def forward(self, x):
        x = self.inp(x)
        for block in self.blocks:
            if self.grad_checkpointing and self.training:
                # the block's activations are recomputed in backward instead of being kept (its dropout mask
                # too: checkpoint restores the RNG state before recomputing)
                x = checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x)
        return self.head(x)


class ModelEMA:
    """shadow = decay * shadow + (1 - decay) * weight for every parameter and float buffer, updated with the
    multi-tensor foreach kernels."""

    def __init__(self, model, decay=0.9):
        self.decay = decay
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items() if v.dtype.is_floating_point}

    @torch.no_grad()
    def update(self, model):
        current = model.state_dict()
        names = list(self.shadow)
        shadow = [self.shadow[k] for k in names]
        torch._foreach_mul_(shadow, self.decay)
        torch._foreach_add_(shadow, [current[k].detach() for k in names], alpha=1.0 - self.decay)

    def state_dict(self):
        return dict(self.shadow)

    def load_state_dict(self, state):
        for k, v in state.items():
            self.shadow[k].copy_(v)


def accumulation_step(model, optimizer, inputs, targets, micro_batches, max_norm=1.0, clip_value=0.5):
    """One optimizer step over `micro_batches` chunks of the batch. Returns (loss, grad norm before clipping)."""
    optimizer.zero_grad(set_to_none=True)
    total = 0.0
    for x, y in zip(inputs.chunk(micro_batches), targets.chunk(micro_batches)):
        # each chunk's mean is scaled so that the summed gradients are those of the whole batch's mean
        loss = F.mse_loss(model(x), y) / micro_batches
        loss.backward()
        total += loss.detach()
    torch.nn.utils.clip_grad_value_(model.parameters(), clip_value)
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    optimizer.step()
    return total, grad_norm


def warmup_cosine(warmup, total):
    def factor(step):
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))
    return factor


def make_trainer(model, lr=1e-2, warmup=2, total=8, schedule="warmup_cosine"):
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
    if schedule == "warmup_cosine":
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(warmup, total))
    else:  # step decay, as ResNet recipes schedule it
        scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[2, 4], gamma=0.5)
    return optimizer, scheduler


# ---------------------------------------------------------------- save / resume
def save_checkpoint(path, model, ema, optimizer, scheduler, step):
    rng = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    torch.save({"model": model.state_dict(), "ema": ema.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "step": step, "rng": rng}, path)


def load_checkpoint(path, model, ema, optimizer, scheduler, map_location="cpu"):
    state = torch.load(path, map_location=map_location, weights_only=True)
    model.load_state_dict(state["model"])
    ema.load_state_dict(state["ema"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    # dropout after the resume draws what it would have drawn; the states are loaded on the CPU, as set_rng_state
    # wants them, whatever map_location moved the weights to
    torch.set_rng_state(state["rng"]["cpu"].cpu())
    if "cuda" in state["rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["rng"]["cuda"]])
    return state["step"]


# ---------------------------------------------------------------- SWA, distillation with mixup
class Classifier(nn.Module):
    def __init__(self, in_dim=6, hidden=16, classes=3):
        super().__init__()
        # no bias before the batch norm: it would subtract it again (and Adam would chase its rounding noise)
        self.net = nn.Sequential(nn.Linear(in_dim, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(),
                                 nn.Linear(hidden, classes))

    def forward(self, x):
        return self.net(x)


def swa_train(model, loader, epochs=6, swa_start=3, lr=0.1, swa_lr=0.02):
    """SGD with a cosine schedule until swa_start, then SWALR and one AveragedModel update per epoch; update_bn
    at the end. Returns the averaged model and each epoch's (last loss, lr after the epoch)."""
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    swa_model = AveragedModel(model)
    swa_scheduler = SWALR(optimizer, swa_lr=swa_lr, anneal_epochs=2, anneal_strategy="linear")
    history = []
    for epoch in range(epochs):
        model.train()
        for x, y in loader:
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
        if epoch >= swa_start:
            swa_model.update_parameters(model)
            swa_scheduler.step()
        else:
            scheduler.step()
        history.append((loss.item(), optimizer.param_groups[0]["lr"]))
    # the averaged weights never ran forward: their batch-norm statistics are recomputed over the data
    update_bn(loader, swa_model)
    return swa_model, history


def mixup(x, y, lam, perm):
    perm = torch.as_tensor(perm, device=x.device)
    return lam * x + (1 - lam) * x[perm], y, y[perm]


def distillation_step(student, teacher, optimizer, x, y, lam, perm, temperature=2.0, alpha=0.7):
    """One step on a mixup batch: alpha * T^2 * KL(teacher || student at temperature T) + (1 - alpha) * the
    mixed hard-label loss. The teacher is frozen and in eval mode. Returns the loss, detached."""
    x, y_a, y_b = mixup(x, y, lam, perm)
    with torch.no_grad():
        teacher_logits = teacher(x)
    logits = student(x)
    hard = lam * F.cross_entropy(logits, y_a) + (1 - lam) * F.cross_entropy(logits, y_b)
    # T^2 keeps the soft term's gradients on the hard term's scale as T grows
    soft = F.kl_div(F.log_softmax(logits / temperature, dim=-1), F.log_softmax(teacher_logits / temperature, dim=-1),
                    reduction="batchmean", log_target=True) * temperature ** 2
    loss = alpha * soft + (1 - alpha) * hard
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach()
