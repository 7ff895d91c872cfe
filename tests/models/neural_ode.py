"""Neural ODEs and a physics-informed network written the way public research code writes them (imports torch only;
loaded with vibetensor swapped in by tests/models/swap_import.py):
  - an ODE function module f(t, y) (an MLP fed the time as an extra input, counting its evaluations), fixed-step
    Euler, midpoint and RK4 solvers written in torch that return the trajectory at the requested times
    (torch.stack of the states), backprop straight through the solver steps;
  - a latent ODE: a GRU encoder run backwards over the observations, a reparameterised initial latent state, the
    latent trajectory solved forward and decoded; an ODE-RNN cell that evolves its hidden state between
    irregular observation times with the solver and updates it with a GRUCell at each observation;
  - a PINN for the 1-D viscous Burgers / heat equation: an MLP u(t, x), its derivatives u_t, u_x, u_xx from
    torch.autograd.grad(create_graph=True) with grad_outputs=torch.ones_like, the PDE residual plus initial and
    boundary losses, trained with Adam and then LBFGS steps with a closure.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.autograd.functional import jacobian
from torch.quasirandom import SobolEngine


class ODEFunc(nn.Module):
    def __init__(self, dim=2, hidden=16, time_dependent=True):
        super().__init__()
        self.time_dependent = time_dependent
        self.net = nn.Sequential(nn.Linear(dim + int(time_dependent), hidden), nn.Tanh(),
                                 nn.Linear(hidden, hidden), nn.Softplus(), nn.Linear(hidden, dim))
        for m in self.net.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, mean=0, std=0.1)
                nn.init.constant_(m.bias, val=0)
        self.nfe = 0

    def forward(self, t, y):
        self.nfe += 1
        if self.time_dependent:
            tt = torch.ones_like(y[..., :1]) * t
            y = torch.cat([tt, y], dim=-1)
        return self.net(y)


def euler_step(func, t, dt, y):
    return y + dt * func(t, y)


def midpoint_step(func, t, dt, y):
    half = y + 0.5 * dt * func(t, y)
    return y + dt * func(t + 0.5 * dt, half)


def rk4_step(func, t, dt, y):
    k1 = func(t, y)
    k2 = func(t + dt / 2, y + dt * k1 / 2)
    k3 = func(t + dt / 2, y + dt * k2 / 2)
    k4 = func(t + dt, y + dt * k3)
    return y + dt * (k1 + 2 * k2 + 2 * k3 + k4) / 6


STEPS = {"euler": euler_step, "midpoint": midpoint_step, "rk4": rk4_step}


def odeint(func, y0, t, method="rk4", step_size=None):
    """The states at the times t [T] (t[0] is y0's time): [T, *y0.shape]. With step_size, each interval is cut
    into ceil(interval / step_size) equal steps."""
    step = STEPS[method]
    ys = [y0]
    y = y0
    for i in range(len(t) - 1):
        t0, t1 = t[i], t[i + 1]
        n = 1 if step_size is None else max(1, int(math.ceil(abs(float(t1 - t0)) / step_size)))
        dt = (t1 - t0) / n
        for k in range(n):
            y = step(func, t0 + k * dt, dt, y)
        ys.append(y)
    return torch.stack(ys)


class OdeintAdjoint(torch.autograd.Function):
    """The adjoint method (as torchdiffeq's odeint_adjoint): the forward solve keeps no graph; backward solves the
    augmented system [y, a, a_theta]' = [f, -a df/dy, -a df/dtheta] backwards in time, interval by interval, adding
    each observation's incoming gradient to the adjoint state a. Memory stays constant in the number of steps."""

    @staticmethod
    def forward(ctx, func, y0, t, method, step_size, *params):
        with torch.no_grad():
            ys = odeint(func, y0, t, method, step_size)
        ctx.func, ctx.method, ctx.step_size = func, method, step_size
        ctx.save_for_backward(t, ys, *params)
        return ys

    @staticmethod
    def backward(ctx, grad_ys):
        t, ys, *params = ctx.saved_tensors
        func, shape, n = ctx.func, ys.shape[1:], ys[0].numel()

        def augmented(s, aug):
            with torch.enable_grad():
                y = aug[:n].reshape(shape).detach().requires_grad_(True)
                f = func(s, y)
                vjps = torch.autograd.grad(f, (y,) + tuple(params), -aug[n:2 * n].reshape(shape),
                                           allow_unused=True)
            vjps = [torch.zeros_like(p) if v is None else v for v, p in zip(vjps, (y,) + tuple(params))]
            return torch.cat([f.reshape(-1)] + [v.reshape(-1) for v in vjps])

        adj_y = grad_ys[-1].reshape(-1)
        adj_p = torch.cat([torch.zeros_like(p).reshape(-1) for p in params])
        for i in range(len(t) - 1, 0, -1):
            aug = torch.cat([ys[i].reshape(-1), adj_y, adj_p])
            aug = odeint(augmented, aug, torch.stack([t[i], t[i - 1]]), ctx.method, ctx.step_size)[-1]
            adj_y = aug[n:2 * n] + grad_ys[i - 1].reshape(-1)
            adj_p = aug[2 * n:]
        grads, offset = [], 0
        for p in params:
            grads.append(adj_p[offset:offset + p.numel()].view_as(p))
            offset += p.numel()
        return (None, adj_y.view(shape), None, None, None, *grads)


def odeint_adjoint(func, y0, t, method="rk4", step_size=None):
    params = tuple(p for p in func.parameters() if p.requires_grad)
    return OdeintAdjoint.apply(func, y0, t, method, step_size, *params)


class NeuralODE(nn.Module):
    """Fits trajectories: y(t) = odeint(f, y0, t), or by the adjoint method."""

    def __init__(self, dim=2, hidden=16, method="rk4", step_size=None, adjoint=False):
        super().__init__()
        self.func = ODEFunc(dim, hidden)
        self.method, self.step_size, self.adjoint = method, step_size, adjoint

    def forward(self, y0, t):
        solve = odeint_adjoint if self.adjoint else odeint
        return solve(self.func, y0, t, self.method, self.step_size)


class LatentODE(nn.Module):
    """A GRU recognition network run backwards in time gives q(z0); z0 is sampled with the passed-in noise, solved
    forward with the ODE and decoded; the loss is the Gaussian negative log likelihood plus KL(q(z0) || N(0, 1))."""

    def __init__(self, obs_dim=2, latent_dim=3, rnn_hidden=8, ode_hidden=12, obs_std=0.3):
        super().__init__()
        self.rnn = nn.GRU(obs_dim + 1, rnn_hidden, batch_first=True)
        self.to_posterior = nn.Linear(rnn_hidden, 2 * latent_dim)
        self.func = ODEFunc(latent_dim, ode_hidden, time_dependent=False)
        self.decoder = nn.Sequential(nn.Linear(latent_dim, 16), nn.ReLU(), nn.Linear(16, obs_dim))
        self.register_buffer("obs_std", torch.tensor(obs_std))

    def forward(self, x, t, eps):
        """x [B, T, obs_dim] at times t [T]; eps [B, latent_dim] the standard normal draws."""
        b = x.shape[0]
        dts = torch.cat([torch.zeros_like(t[:1]), t[1:] - t[:-1]])
        rnn_in = torch.cat([x, dts.view(1, -1, 1).expand(b, -1, 1)], -1)
        _, h = self.rnn(torch.flip(rnn_in, dims=[1]))
        mean, logvar = self.to_posterior(h[-1]).chunk(2, dim=-1)
        z0 = mean + eps * torch.exp(0.5 * logvar)
        zs = odeint(self.func, z0, t, "rk4").permute(1, 0, 2)  # [B, T, latent]
        x_hat = self.decoder(zs)
        noise_logvar = 2 * torch.log(self.obs_std)
        log_px = -0.5 * (math.log(2 * math.pi) + noise_logvar + (x - x_hat) ** 2 / torch.exp(noise_logvar))
        kl = -0.5 * torch.sum(1 + logvar - mean.pow(2) - logvar.exp(), dim=-1)
        return x_hat, (-log_px.sum((1, 2)) + kl).mean()


class ODERNN(nn.Module):
    """Between observations the hidden state follows the ODE (Euler steps); at each it takes a GRUCell update."""

    def __init__(self, obs_dim=2, hidden=8, out_dim=1, step_size=0.25):
        super().__init__()
        self.hidden, self.step_size = hidden, step_size
        self.func = ODEFunc(hidden, 16, time_dependent=False)
        self.cell = nn.GRUCell(obs_dim, hidden)
        self.head = nn.Linear(hidden, out_dim)

    def forward(self, x, times):
        """x [B, T, obs_dim] observed at the irregular times [T]."""
        h = x.new_zeros(x.shape[0], self.hidden)
        prev = times[0]
        outs = []
        for i in range(x.shape[1]):
            if i > 0:
                h = odeint(self.func, h, torch.stack([prev, times[i]]), "euler", self.step_size)[-1]
            h = self.cell(x[:, i], h)
            outs.append(self.head(h))
            prev = times[i]
        return torch.stack(outs, dim=1)


class PINN(nn.Module):
    """u(t, x) for u_t + u u_x - nu u_xx = 0 on x in [-1, 1], u(0, x) = -sin(pi x), u(t, +-1) = 0 (Burgers), or
    u_t - nu u_xx = 0 with the same data (the heat equation)."""

    def __init__(self, hidden=16, depth=3, nu=0.01 / math.pi, equation="burgers"):
        super().__init__()
        layers, width = [], 2
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.Tanh()]
            width = hidden
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)
        self.nu, self.equation = nu, equation
        for m in self.net:
            if isinstance(m, nn.Linear):
                nn.init.xavier_normal_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, t, x):
        return self.net(torch.cat([t, x], dim=1))

    def residual(self, t, x):
        u = self(t, x)
        u_t, u_x = torch.autograd.grad(u, [t, x], grad_outputs=torch.ones_like(u), create_graph=True)
        u_xx = torch.autograd.grad(u_x, x, grad_outputs=torch.ones_like(u_x), create_graph=True)[0]
        if self.equation == "burgers":
            return u_t + u * u_x - self.nu * u_xx
        return u_t - self.nu * u_xx

    def loss(self, t_f, x_f, t_0, x_0, t_b, x_b):
        t_f = t_f.clone().requires_grad_(True)
        x_f = x_f.clone().requires_grad_(True)
        loss_f = torch.mean(self.residual(t_f, x_f) ** 2)
        loss_0 = F.mse_loss(self(t_0, x_0), -torch.sin(math.pi * x_0))
        u_b = self(t_b, x_b)
        loss_b = torch.mean(u_b ** 2)
        return loss_f + loss_0 + loss_b


def sobol_collocation(n, t_max=1.0):
    """Collocation points (t, x) in [0, t_max] x [-1, 1] from an unscrambled Sobol sequence, as PINN code draws
    them for an even cover of the domain."""
    pts = SobolEngine(dimension=2, scramble=False).draw(n)
    return pts[:, :1] * t_max, pts[:, 1:] * 2 - 1


def ode_jacobian(func, t, y):
    """df/dy at (t, y) by torch.autograd.functional.jacobian (the stiffness check of implicit solvers)."""
    return jacobian(lambda z: func(t, z), y)


def lbfgs_fit(lib_optim, model, data, steps, **lbfgs_kw):
    """LBFGS on the PINN loss with a closure; returns the losses each step() reported."""
    opt = lib_optim.LBFGS(model.parameters(), **lbfgs_kw)
    losses = []

    def closure():
        opt.zero_grad()
        loss = model.loss(*data)
        loss.backward()
        return loss

    for _ in range(steps):
        losses.append(float(opt.step(closure)))
    return losses
