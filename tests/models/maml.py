"""Meta-learning written the way public MAML / prototypical-network code is written (imports torch only; loaded with
vibetensor swapped in by tests/models/swap_import.py):
  - a small conv or MLP learner run with torch.func.functional_call on a dict of "fast" weights;
  - MAML's inner loop: SGD steps on the support set through torch.autograd.grad(create_graph=True), so the outer
    loss on the query set differentiates through the adaptation (second-order meta-gradients); first-order MAML
    takes the inner gradients detached; the outer step is Adam on the meta-parameters, the meta-batch loss
    averaged over tasks; a learned per-parameter inner learning rate (Meta-SGD) is an option;
  - the same inner loop written functionally with explicit weight tensors (F.linear / F.conv2d on a list);
  - learn2learn's way: clone_module (a __new__ copy of each module with cloned parameter tensors in its
    _parameters) and update_module (p + p.update written back into _parameters), then adapt in place;
  - torchmeta's way: MetaModule subclasses (MetaLinear(nn.Linear, MetaModule), MetaSequential) whose forward
    takes params=, meta_named_parameters through Module._named_members with a function, get_subdict by regex,
    gradient_update_parameters differentiating with respect to params.values();
  - a prototypical network: class prototypes as means of the support embeddings, logits as negative squared
    euclidean distances to them, cross entropy and accuracy on the query set.
"""
import re
from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call, grad, vmap


class MLPLearner(nn.Module):
    def __init__(self, in_dim=1, hidden=16, out_dim=1):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.Tanh(),
                                 nn.Linear(hidden, out_dim))

    def forward(self, x):
        return self.net(x)


def conv_block(in_ch, out_ch):
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 3, padding=1), nn.BatchNorm2d(out_ch, track_running_stats=False),
                         nn.ReLU(), nn.MaxPool2d(2))


class ConvLearner(nn.Module):
    """The Omniglot-style 4-conv learner, smaller: conv-BN-ReLU-pool blocks, a linear classifier."""

    def __init__(self, in_ch=1, hidden=8, n_way=3, blocks=2, size=8):
        super().__init__()
        self.features = nn.Sequential(*[conv_block(in_ch if i == 0 else hidden, hidden) for i in range(blocks)])
        self.classifier = nn.Linear(hidden * (size // 2 ** blocks) ** 2, n_way)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


class MAML(nn.Module):
    def __init__(self, model, inner_lr=0.1, inner_steps=2, first_order=False, learn_lr=False, loss="mse"):
        super().__init__()
        self.model, self.inner_steps, self.first_order = model, inner_steps, first_order
        self.loss_fn = F.mse_loss if loss == "mse" else F.cross_entropy
        if learn_lr:  # Meta-SGD: one learned step size per weight entry
            self.inner_lrs = nn.ParameterDict({k.replace(".", "_"): nn.Parameter(torch.full_like(p, inner_lr))
                                               for k, p in model.named_parameters()})
        else:
            self.inner_lrs = None
            self.inner_lr = inner_lr

    def adapt(self, x_s, y_s):
        fast = OrderedDict(self.model.named_parameters())
        for _ in range(self.inner_steps):
            loss = self.loss_fn(functional_call(self.model, fast, (x_s,)), y_s)
            grads = torch.autograd.grad(loss, list(fast.values()), create_graph=not self.first_order)
            if self.first_order:
                grads = [g.detach() for g in grads]
            if self.inner_lrs is None:
                fast = OrderedDict((k, w - self.inner_lr * g) for (k, w), g in zip(fast.items(), grads))
            else:
                fast = OrderedDict((k, w - self.inner_lrs[k.replace(".", "_")] * g)
                                   for (k, w), g in zip(fast.items(), grads))
        return fast

    def forward(self, tasks):
        """Mean query loss over tasks [(x_s, y_s, x_q, y_q)] after adapting to each support set."""
        losses = []
        for x_s, y_s, x_q, y_q in tasks:
            fast = self.adapt(x_s, y_s)
            losses.append(self.loss_fn(functional_call(self.model, fast, (x_q,)), y_q))
        return torch.stack(losses).mean()


def functional_mlp(weights, x):
    """The MLP as explicit weight tensors [w0, b0, w1, b1, w2, b2], as the original MAML code writes it."""
    h = F.relu(F.linear(x, weights[0], weights[1]))
    h = torch.tanh(F.linear(h, weights[2], weights[3]))
    return F.linear(h, weights[4], weights[5])


def maml_functional_step(weights, tasks, inner_lr, inner_steps):
    """The meta-loss with the inner loop on a plain list of tensors."""
    total = 0.0
    for x_s, y_s, x_q, y_q in tasks:
        fast = list(weights)
        for _ in range(inner_steps):
            loss = F.mse_loss(functional_mlp(fast, x_s), y_s)
            grads = torch.autograd.grad(loss, fast, create_graph=True)
            fast = [w - inner_lr * g for w, g in zip(fast, grads)]
        total = total + F.mse_loss(functional_mlp(fast, x_q), y_q)
    return total / len(tasks)


class ProtoNet(nn.Module):
    def __init__(self, in_ch=1, hidden=8, blocks=2):
        super().__init__()
        self.encoder = nn.Sequential(*[conv_block(in_ch if i == 0 else hidden, hidden) for i in range(blocks)],
                                     nn.Flatten())

    def forward(self, support, support_labels, query, n_way):
        z_s = self.encoder(support)
        z_q = self.encoder(query)
        prototypes = torch.stack([z_s[support_labels == c].mean(0) for c in range(n_way)])
        dists = (z_q.unsqueeze(1) - prototypes.unsqueeze(0)).pow(2).sum(-1)
        return -dists

    def loss_and_accuracy(self, support, support_labels, query, query_labels, n_way):
        logits = self(support, support_labels, query, n_way)
        log_p = F.log_softmax(logits, dim=1)
        loss = F.nll_loss(log_p, query_labels)
        acc = (log_p.argmax(1) == query_labels).float().mean()
        return loss, acc


def prototypes_scatter(z, labels, n_way):
    """The class means by index_add_ and bincount, as batched ProtoNet code does."""
    sums = torch.zeros(n_way, z.shape[1], dtype=z.dtype, device=z.device).index_add_(0, labels, z)
    counts = torch.bincount(labels, minlength=n_way).to(z.dtype)
    return sums / counts.unsqueeze(1)


def euclidean_logits_cdist(z_q, prototypes):
    return -torch.cdist(z_q, prototypes).pow(2)


def vmap_maml_loss(model, params, x_s, y_s, x_q, y_q, inner_lr=0.1, inner_steps=1):
    """The functorch way: the inner loop written with torch.func.grad on a dict of weights, vmapped over a stacked
    batch of tasks [n_tasks, k, ...]; the mean query loss stays differentiable in params."""
    def loss_fn(p, x, y):
        return F.mse_loss(functional_call(model, p, (x,)), y)

    def task_loss(xs, ys, xq, yq):
        p = params
        for _ in range(inner_steps):
            g = grad(loss_fn)(p, xs, ys)
            p = {k: p[k] - inner_lr * g[k] for k in p}
        return loss_fn(p, xq, yq)

    return vmap(task_loss)(x_s, y_s, x_q, y_q).mean()


def clone_module(module, memo=None):
    """learn2learn's clone_module: the same module tree with each parameter replaced by a differentiable clone
    (shared parameters stay shared), buffers and submodules copied."""
    if memo is None:
        memo = {}
    if not isinstance(module, nn.Module):
        return module
    clone = module.__new__(type(module))
    clone.__dict__ = module.__dict__.copy()
    clone._parameters = clone._parameters.copy()
    clone._buffers = clone._buffers.copy()
    clone._modules = clone._modules.copy()
    for key, param in module._parameters.items():
        if param is not None:
            if id(param) not in memo:
                memo[id(param)] = param.clone()
            clone._parameters[key] = memo[id(param)]
    for key, buf in module._buffers.items():
        if buf is not None and buf.requires_grad:
            clone._buffers[key] = buf.clone()
    for key in clone._modules:
        clone._modules[key] = clone_module(module._modules[key], memo=memo)
    return clone


def update_module(module, updates=None):
    """learn2learn's update_module: p <- p + update for every parameter, written into _parameters (so the
    updated tensors are non-leaf results in the graph)."""
    if updates is not None:
        for p, g in zip(module.parameters(), updates):
            p.update = g
    for key, p in module._parameters.items():
        if p is not None and getattr(p, "update", None) is not None:
            module._parameters[key] = p + p.update
    for key in module._modules:
        module._modules[key] = update_module(module._modules[key])
    return module


class L2LMAML(nn.Module):
    """learn2learn.algorithms.MAML, cut down: clone() gives a learner, adapt(loss) takes one SGD step on it."""

    def __init__(self, model, lr, first_order=False):
        super().__init__()
        self.module, self.lr, self.first_order = model, lr, first_order

    def forward(self, *args):
        return self.module(*args)

    def clone(self):
        return L2LMAML(clone_module(self.module), self.lr, self.first_order)

    def adapt(self, loss):
        params = list(self.module.parameters())
        grads = torch.autograd.grad(loss, params, retain_graph=not self.first_order,
                                    create_graph=not self.first_order, allow_unused=True)
        updates = [None if g is None else -self.lr * g for g in grads]
        self.module = update_module(self.module, updates)


def l2l_meta_loss(maml, tasks, steps=2):
    total = 0.0
    for x_s, y_s, x_q, y_q in tasks:
        learner = maml.clone()
        for _ in range(steps):
            learner.adapt(F.mse_loss(learner(x_s), y_s))
        total = total + F.mse_loss(learner(x_q), y_q)
    return total / len(tasks)


class MetaModule(nn.Module):
    def meta_named_parameters(self, prefix="", recurse=True):
        return self._named_members(lambda module: module._parameters.items() if isinstance(module, MetaModule)
                                   else [], prefix=prefix, recurse=recurse)

    def meta_parameters(self, recurse=True):
        for _, param in self.meta_named_parameters(recurse=recurse):
            yield param

    def get_subdict(self, params, key=None):
        if params is None:
            return None
        key_re = re.compile(r"^{0}\.(.+)".format(re.escape(key)))
        return OrderedDict((key_re.sub(r"\1", k), v) for k, v in params.items() if key_re.match(k) is not None)


class MetaLinear(nn.Linear, MetaModule):
    def forward(self, input, params=None):
        if params is None:
            params = OrderedDict(self.named_parameters())
        return F.linear(input, params["weight"], params.get("bias", None))


class MetaSequential(nn.Sequential, MetaModule):
    def forward(self, input, params=None):
        for name, module in self._modules.items():
            if isinstance(module, MetaModule):
                input = module(input, params=self.get_subdict(params, name))
            else:
                input = module(input)
        return input


class MetaMLP(MetaModule):
    def __init__(self, hidden=16):
        super().__init__()
        self.features = MetaSequential(MetaLinear(1, hidden), nn.ReLU(), MetaLinear(hidden, hidden), nn.Tanh())
        self.head = MetaLinear(hidden, 1)

    def forward(self, x, params=None):
        return self.head(self.features(x, params=self.get_subdict(params, "features")),
                         params=self.get_subdict(params, "head"))


def gradient_update_parameters(model, loss, params=None, step_size=0.5, first_order=False):
    if params is None:
        params = OrderedDict(model.meta_named_parameters())
    grads = torch.autograd.grad(loss, params.values(), create_graph=not first_order)
    return OrderedDict((name, param - step_size * grad) for (name, param), grad in zip(params.items(), grads))


def torchmeta_meta_loss(model, tasks, step_size=0.1, steps=2, first_order=False):
    total = 0.0
    for x_s, y_s, x_q, y_q in tasks:
        params = None
        for _ in range(steps):
            loss = F.mse_loss(model(x_s, params=params), y_s)
            params = gradient_update_parameters(model, loss, params, step_size, first_order)
        total = total + F.mse_loss(model(x_q, params=params), y_q)
    return total / len(tasks)
