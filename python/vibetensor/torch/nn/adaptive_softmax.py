"""nn.AdaptiveLogSoftmaxWithLoss (Grave et al., "Efficient softmax approximation for GPUs"), torch-shaped: same
constructor checks, submodules (head, tail.i.0/1, so state_dict keys match), forward -> (output, loss) named
_ASMoutput, log_prob and predict.

The head scores the shortlist (classes below cutoffs[0]) plus one entry per tail cluster; a class in cluster i has
log p = head's log p of cluster i + the cluster's own log-softmax over its classes. The forward scores only each
row's target: rows are grouped per cluster (index_select / scatter), so it is differentiable in the input and every
weight."""
import collections

from .containers import ModuleList, Sequential
from .layers import Linear
from .module import Module

_ASMoutput = collections.namedtuple("_ASMoutput", ["output", "loss"])


def _T():
    from .. import _functions
    return _functions


def _log_softmax(x):
    from . import functional
    return functional.log_softmax(x, dim=1)


class AdaptiveLogSoftmaxWithLoss(Module):
    def __init__(self, in_features, n_classes, cutoffs, div_value=4.0, head_bias=False, device=None, dtype=None):
        super().__init__()
        cutoffs = list(cutoffs)
        if len(cutoffs) == 0:
            raise ValueError("cutoffs should be a sequence of length larger than 0")
        if (cutoffs != sorted(cutoffs) or min(cutoffs) <= 0 or max(cutoffs) > n_classes - 1
                or len(set(cutoffs)) != len(cutoffs) or any(int(c) != c for c in cutoffs)):
            raise ValueError("cutoffs should be a sequence of unique, positive integers sorted in an increasing "
                             "order, where each value is between 1 and n_classes-1")
        self.in_features, self.n_classes, self.div_value, self.head_bias = in_features, n_classes, div_value, head_bias
        self.cutoffs = cutoffs + [n_classes]
        self.shortlist_size = self.cutoffs[0]
        self.n_clusters = len(self.cutoffs) - 1
        self.head_size = self.shortlist_size + self.n_clusters
        self.head = Linear(in_features, self.head_size, bias=head_bias, device=device, dtype=dtype)
        tail = []
        for i in range(self.n_clusters):
            hsz = int(in_features // (div_value ** (i + 1)))
            osz = self.cutoffs[i + 1] - self.cutoffs[i]
            tail.append(Sequential(Linear(in_features, hsz, bias=False, device=device, dtype=dtype),
                                   Linear(hsz, osz, bias=False, device=device, dtype=dtype)))
        self.tail = ModuleList(tail)

    def reset_parameters(self):
        """Fresh default initialisation of every Linear (vt's Linear initialises at construction)."""
        from ...autograd import no_grad

        with no_grad():
            for m in [self.head] + [lin for seq in self.tail for lin in seq]:
                fresh = Linear(m.in_features, m.out_features, m.bias is not None, m.weight.device, m.weight.dtype)
                m.weight.copy_(fresh.weight)
                if m.bias is not None:
                    m.bias.copy_(fresh.bias)

    def forward(self, input_, target_):
        targ_dim = target_.dim()
        if targ_dim == 1:
            if input_.shape[0] != target_.shape[0]:
                raise RuntimeError("Input and target should have the same size in the batch dimension.")
            if input_.dim() != 2:
                raise RuntimeError(f"1D target tensor expects 2D input tensors, but found inputs with size "
                                   f"{list(input_.shape)}")
        elif targ_dim == 0:
            if input_.dim() != 1:
                raise RuntimeError(f"0D target tensor expects 1D input tensors, but found inputs with size "
                                   f"{list(input_.shape)}")
        else:
            raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
        batched = targ_dim > 0
        input = input_ if batched else input_.unsqueeze(0)
        target = target_ if batched else target_.unsqueeze(0)
        T = _T()
        B = target.shape[0]
        head_ind = target.clone()  # the head entry each row scores: its class, or its cluster's entry
        output = T.zeros(B, dtype=input.dtype, device=input.device)
        used = int(((target >= 0) & (target < self.shortlist_size)).sum().item())
        for i in range(self.n_clusters):
            low, high = self.cutoffs[i], self.cutoffs[i + 1]
            rows = ((target >= low) & (target < high)).nonzero().reshape(-1)
            if rows.numel() == 0:
                continue
            used += rows.numel()
            head_ind = head_ind.index_fill(0, rows, self.shortlist_size + i)
            local = _log_softmax(self.tail[i](input.index_select(0, rows)))
            picked = local.gather(1, (target.index_select(0, rows) - low).unsqueeze(1)).squeeze(1)
            output = output.scatter(0, rows, picked)
        if used != B:
            raise RuntimeError(f"Target values should be in [0, {self.n_classes - 1}], but values in range "
                               f"[{target.min().item()}, {target.max().item()}] were found. ")
        head_logprob = _log_softmax(self.head(input))
        output = output + head_logprob.gather(1, head_ind.unsqueeze(1)).squeeze(1)
        loss = (-output).mean()
        return _ASMoutput(output if batched else output.squeeze(0), loss)

    def _full_log_prob(self, input, head_output):
        head_logprob = _log_softmax(head_output)
        parts = [head_logprob[:, :self.shortlist_size]]
        for i in range(self.n_clusters):
            parts.append(_log_softmax(self.tail[i](input)) + head_logprob[:, self.shortlist_size + i].unsqueeze(1))
        return _T().cat(parts, 1)

    def log_prob(self, input):
        batched = input.dim() == 2
        x = input if batched else input.unsqueeze(0)
        out = self._full_log_prob(x, self.head(x))
        return out if batched else out.squeeze(0)

    def predict(self, input):
        batched = input.dim() == 2
        x = input if batched else input.unsqueeze(0)
        head_output = self.head(x)
        out = head_output.argmax(1)
        tail_rows = (out >= self.shortlist_size).nonzero().reshape(-1)
        if tail_rows.numel():  # rows whose best head entry is a cluster: the argmax over every class decides
            sub = x.index_select(0, tail_rows)
            best = self._full_log_prob(sub, head_output.index_select(0, tail_rows)).argmax(1)
            out = out.index_copy(0, tail_rows, best)
        return out if batched else out.squeeze(0)
