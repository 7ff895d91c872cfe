"""RNN, LSTM and GRU (multi-layer, bidirectional, dropout between layers) and their single-step cells,
torch-shaped: parameter names weight_ih_l{k}[_reverse] etc., torch's gate order (LSTM i, f, g, o; GRU r, z, n
with n = tanh(W_in x + b_in + r * (W_hn h + b_hn))), uniform(+-1/sqrt(hidden_size)) init. Each step is composed
of matmul and elementwise ops, so autograd runs through the unrolled loop; the input projection of a whole
sequence is one matmul ahead of the loop. The layers take a PackedSequence too (vt.nn.utils.rnn), as torch's do:
the batch shrinks as sequences end, so each sequence's final state is the one at its own last step."""
import math
import numbers
import warnings

from ..._C import core as _core
from .._no_autocast import region_dtype
from . import functional as F
from .module import Module
from .parameter import Parameter


def _vt():
    from .. import _functions

    return _functions


def _lstm_step(gi, h, c, w_hh, b_hh, w_hr=None):
    """gi: x W_ih^T + b_ih for this step. Returns (h', c'); with proj_size, h' is projected by w_hr."""
    g = gi + F.linear(h, w_hh, b_hh)
    i, f, n, o = g.chunk(4, -1)
    c = F.sigmoid(f) * c + F.sigmoid(i) * F.tanh(n)
    h = F.sigmoid(o) * F.tanh(c)
    return (h if w_hr is None else F.linear(h, w_hr)), c


def _gru_step(gi, h, w_hh, b_hh):
    gh = F.linear(h, w_hh, b_hh)
    ir, iz, in_ = gi.chunk(3, -1)
    hr, hz, hn = gh.chunk(3, -1)
    r, z = F.sigmoid(ir + hr), F.sigmoid(iz + hz)
    n = F.tanh(in_ + r * hn)
    return n + z * (h - n)  # (1 - z) * n + z * h


def _rnn_step(gi, h, w_hh, b_hh, relu):
    pre = gi + F.linear(h, w_hh, b_hh)
    return F.relu(pre) if relu else F.tanh(pre)


_GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}


class RNNBase(Module):
    def __init__(self, mode, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, proj_size=0, device=None, dtype=None):
        super().__init__()
        if (not isinstance(dropout, numbers.Number) or isinstance(dropout, bool) or not 0 <= dropout <= 1):
            raise ValueError("dropout should be a number in range [0, 1] representing the probability of an "
                             "element being zeroed")
        if dropout > 0 and num_layers == 1:
            warnings.warn("dropout option adds dropout after all but last recurrent layer, so non-zero dropout "
                          f"expects num_layers greater than 1, but got dropout={dropout} and num_layers={num_layers}")
        if not isinstance(hidden_size, int):
            raise TypeError(f"hidden_size should be of type int, got: {type(hidden_size).__name__}")
        if hidden_size <= 0:
            raise ValueError("hidden_size must be greater than zero")
        if num_layers <= 0:
            raise ValueError("num_layers must be greater than zero")
        if proj_size < 0:
            raise ValueError("proj_size should be a positive integer or zero to disable projections")
        if proj_size >= hidden_size:
            raise ValueError("proj_size has to be smaller than hidden_size")
        if proj_size != 0 and mode != "LSTM":
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        if mode not in _GATES:
            raise ValueError(f"Unrecognized RNN mode: {mode}")
        self.mode, self.input_size, self.hidden_size, self.num_layers = mode, input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.bidirectional, self.proj_size = bidirectional, proj_size
        dirs = 2 if bidirectional else 1
        gate = _GATES[mode] * hidden_size
        real_hidden = proj_size if proj_size > 0 else hidden_size
        T = _vt()
        self._flat_weights_names = []
        for layer in range(num_layers):
            in_size = input_size if layer == 0 else real_hidden * dirs
            for d in range(dirs):
                sfx = f"_l{layer}" + ("_reverse" if d else "")
                shapes = [("weight_ih", (gate, in_size)), ("weight_hh", (gate, real_hidden))]
                if bias:
                    shapes += [("bias_ih", (gate,)), ("bias_hh", (gate,))]
                if proj_size > 0:
                    shapes.append(("weight_hr", (proj_size, hidden_size)))
                for name, shape in shapes:
                    setattr(self, name + sfx, Parameter(T.empty(*shape, device=device, dtype=dtype)))
                    self._flat_weights_names.append(name + sfx)
        self.reset_parameters()

    def reset_parameters(self):
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0.0
        from ...autograd import no_grad

        with no_grad():
            for p in self.parameters():
                p.uniform_(-stdv, stdv)

    def flatten_parameters(self):
        """torch packs the weights into one cuDNN buffer here; these layers read each weight by name at every
        forward (so a plain tensor assigned in place of one, as weight-drop code does, is used), so there is
        nothing to pack. Public code calls it at the top of forward."""
        return None

    @property
    def all_weights(self):
        k = (4 if self.bias else 2) + (1 if self.proj_size > 0 else 0)
        names = self._flat_weights_names
        return [[getattr(self, n) for n in names[i:i + k]] for i in range(0, len(names), k)]

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size != 0:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.batch_first is not False:
            s += f", batch_first={self.batch_first}"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional is not False:
            s += f", bidirectional={self.bidirectional}"
        return s

    def _weights(self, layer, d):
        sfx = f"_l{layer}" + ("_reverse" if d else "")
        get = lambda n: getattr(self, n + sfx, None)  # noqa: E731
        return get("weight_ih"), get("weight_hh"), get("bias_ih"), get("bias_hh"), get("weight_hr")

    def _check_input(self, input, name):
        if input.dim() not in (2, 3):
            raise ValueError(f"{name}: Expected input to be 2D or 3D, got {input.dim()}D instead")
        if input.shape[-1] != self.input_size:
            raise RuntimeError(f"input.size(-1) must be equal to input_size. Expected {self.input_size}, "
                               f"got {input.shape[-1]}")

    def _check_hidden(self, hx, expected, what):
        if tuple(hx.shape) != expected:
            raise RuntimeError(f"Expected {what} size {expected}, got {list(hx.shape)}")

    def _step(self, gi, st, w_hh, b_hh, w_hr):
        if self.mode == "LSTM":
            return list(_lstm_step(gi, st[0], st[1], w_hh, b_hh, w_hr))
        if self.mode == "GRU":
            return [_gru_step(gi, st[0], w_hh, b_hh)]
        return [_rnn_step(gi, st[0], w_hh, b_hh, self.mode == "RNN_RELU")]

    def _run(self, x, states, batch_sizes=None):
        """x: (L, N, in), or with batch_sizes a PackedSequence's data (sum(batch_sizes), in); states: a list (one
        per tensor of state: h, or h and c) of (layers * dirs, N, H). Returns the output ((L, N, dirs * H), or
        packed like x) and the final states in the same layout. Packed, the batch shrinks as sequences end: the
        forward direction sets each sequence's final state aside at its last step, and the reverse direction
        starts each sequence from its initial state at its own last step."""
        dirs = 2 if self.bidirectional else 1
        T = _vt()
        packed = batch_sizes is not None
        sizes = batch_sizes if packed else [x.shape[1]] * x.shape[0]
        offsets = [0]
        for n in sizes:
            offsets.append(offsets[-1] + n)
        finals = [[] for _ in states]
        for layer in range(self.num_layers):
            outs = []
            for d in range(dirs):
                w_ih, w_hh, b_ih, b_hh, w_hr = self._weights(layer, d)
                gi = F.linear(x, w_ih, b_ih)  # every step's input projection at once
                init = [s[layer * dirs + d] for s in states]
                ys = [None] * len(sizes)
                if d == 0:
                    st, done = init, []  # done: the final states of sequences that ended, latest last
                    for t in range(len(sizes)):
                        n = sizes[t]
                        if n < st[0].shape[0]:
                            done.append([s.narrow(0, n, s.shape[0] - n) for s in st])
                            st = [s.narrow(0, 0, n) for s in st]
                        st = self._step(gi.narrow(0, offsets[t], n) if packed else gi[t], st, w_hh, b_hh, w_hr)
                        ys[t] = st[0]
                    if done:  # longer sequences come first in the batch
                        st = [T.cat([s] + [p[i] for p in reversed(done)], 0) for i, s in enumerate(st)]
                else:
                    st = None
                    for t in range(len(sizes) - 1, -1, -1):
                        n, have = sizes[t], 0 if st is None else st[0].shape[0]
                        if n > have:  # sequences whose last step is t join with their initial state
                            new = [s if have == 0 and n == s.shape[0] else s.narrow(0, have, n - have)
                                   for s in init]
                            st = new if st is None else [T.cat([a, b], 0) for a, b in zip(st, new)]
                        st = self._step(gi.narrow(0, offsets[t], n) if packed else gi[t], st, w_hh, b_hh, w_hr)
                        ys[t] = st[0]
                outs.append(T.cat(ys, 0) if packed else T.stack(ys, 0))
                for f, s in zip(finals, st):
                    f.append(s)
            x = outs[0] if dirs == 1 else T.cat(outs, -1)
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, True)
        return x, [T.stack(f, 0) for f in finals]

    def _autocast_state(self, x, hxs):
        dt = region_dtype(x)
        if dt is not None and x.is_floating_point() and x.dtype != _core.dtype.float64 and (
                x.is_cuda or self.mode != "GRU"):
            # torch's fused RNN kernels are on its autocast lists (on the CPU the LSTM's and the Elman RNN's, on
            # CUDA all three): the recurrent state runs in the region's dtype, so it starts there.
            hxs = [h.to(dt) if h.is_floating_point() and h.dtype != _core.dtype.float64 else h for h in hxs]
        return hxs

    def _forward_packed(self, input, hx):
        """A PackedSequence in, a PackedSequence out (same batch_sizes and indices). hx and the final states are
        in the batch's original order: hx is permuted into the packed (sorted) order and the finals back."""
        from .utils.rnn import PackedSequence

        data, batch_sizes, sorted_indices, unsorted_indices = input
        if data.dim() != 2:
            raise RuntimeError(f"input must have 2 dimensions, got {data.dim()}")
        if data.shape[-1] != self.input_size:
            raise RuntimeError(f"input.size(-1) must be equal to input_size. Expected {self.input_size}, "
                               f"got {data.shape[-1]}")
        sizes = batch_sizes.tolist()
        n_state = 2 if self.mode == "LSTM" else 1
        dirs = 2 if self.bidirectional else 1
        widths = [self.proj_size or self.hidden_size, self.hidden_size][:n_state]  # h (projected), c
        expected = [(self.num_layers * dirs, sizes[0], w) for w in widths]
        if hx is None:
            hxs = [_vt().zeros(*e, dtype=data.dtype, device=data.device) for e in expected]
        else:
            hxs = list(hx) if n_state == 2 else [hx]
            for i, (h, e) in enumerate(zip(hxs, expected)):
                self._check_hidden(h, e, f"hidden[{i}]" if n_state == 2 else "hidden")
            if sorted_indices is not None:
                hxs = [h.index_select(1, sorted_indices) for h in hxs]
        out, finals = self._run(data, self._autocast_state(data, hxs), sizes)
        if unsorted_indices is not None:
            finals = [f.index_select(1, unsorted_indices) for f in finals]
        out = PackedSequence(out, batch_sizes, sorted_indices, unsorted_indices)
        return out, (tuple(finals) if n_state == 2 else finals[0])

    def _forward(self, input, hx, name):
        from .utils.rnn import PackedSequence  # here: nn.utils imports modules that import this one

        if isinstance(input, PackedSequence):
            return self._forward_packed(input, hx)
        self._check_input(input, name)
        batched = input.dim() == 3
        n_state = 2 if self.mode == "LSTM" else 1
        hxs = None if hx is None else (list(hx) if n_state == 2 else [hx])
        if hxs is not None:
            rank = 3 if batched else 2
            if any(h.dim() != rank for h in hxs):
                dims = ", ".join(f"{h.dim()}-D" for h in hxs)
                kind = "batched 3-D" if batched else "unbatched 2-D"
                if n_state == 2:
                    raise RuntimeError(f"For {kind} input, hx and cx should also be {rank}-D but got ({dims}) "
                                       "tensors")
                raise RuntimeError(f"For {kind} input, hx should also be {rank}-D but got {dims} tensor")
        x = input if batched else input.unsqueeze(1)
        if batched and self.batch_first:
            x = x.transpose(0, 1)
        if hxs is not None and not batched:
            hxs = [h.unsqueeze(1) for h in hxs]
        dirs = 2 if self.bidirectional else 1
        if x.shape[0] == 0:
            raise RuntimeError("Expected sequence length to be larger than 0 in RNN")
        sizes = [self.proj_size or self.hidden_size, self.hidden_size][:n_state]  # h (projected), c
        expected = [(self.num_layers * dirs, x.shape[1], size) for size in sizes]
        if hxs is None:
            hxs = [_vt().zeros(*e, dtype=x.dtype, device=x.device) for e in expected]
        else:
            for i, (h, e) in enumerate(zip(hxs, expected)):
                self._check_hidden(h, e, f"hidden[{i}]" if n_state == 2 else "hidden")
        out, finals = self._run(x, self._autocast_state(x, hxs))
        if not batched:
            out, finals = out.squeeze(1), [f.squeeze(1) for f in finals]
        elif self.batch_first:
            out = out.transpose(0, 1)
        return out, (tuple(finals) if n_state == 2 else finals[0])


class RNN(RNNBase):
    """Elman RNN: h' = tanh (or relu) of x W_ih^T + b_ih + h W_hh^T + b_hh."""

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, device=None, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size, hidden_size, num_layers,
                         bias, batch_first, dropout, bidirectional, device=device, dtype=dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None):
        return self._forward(input, hx, "RNN")


class LSTM(RNNBase):
    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, proj_size=0, device=None, dtype=None):
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         proj_size, device=device, dtype=dtype)

    def forward(self, input, hx=None):
        """Returns (output, (h_n, c_n))."""
        return self._forward(input, hx, "LSTM")


class GRU(RNNBase):
    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, device=None, dtype=None):
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         device=device, dtype=dtype)

    def forward(self, input, hx=None):
        """Returns (output, h_n)."""
        return self._forward(input, hx, "GRU")


class RNNCellBase(Module):
    def __init__(self, input_size, hidden_size, bias, num_chunks, device=None, dtype=None):
        super().__init__()
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        T = _vt()
        self.weight_ih = Parameter(T.empty(num_chunks * hidden_size, input_size, device=device, dtype=dtype))
        self.weight_hh = Parameter(T.empty(num_chunks * hidden_size, hidden_size, device=device, dtype=dtype))
        if bias:
            self.bias_ih = Parameter(T.empty(num_chunks * hidden_size, device=device, dtype=dtype))
            self.bias_hh = Parameter(T.empty(num_chunks * hidden_size, device=device, dtype=dtype))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    reset_parameters = RNNBase.reset_parameters

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            s += f", nonlinearity={self.nonlinearity}"
        return s

    def _prepare(self, input, hx, n_state, name):
        if input.dim() not in (1, 2):
            raise ValueError(f"{name}: Expected input to be 1D or 2D, got {input.dim()}D instead")
        if hx is not None and any(h.dim() not in (1, 2) for h in (hx if n_state == 2 else (hx,))):
            raise ValueError(f"{name}: Expected hidden to be 1D or 2D, got "
                             f"{(hx[0] if n_state == 2 else hx).dim()}D instead")
        if input.shape[-1] != self.input_size:
            raise RuntimeError(f"input has inconsistent input_size: got {input.shape[-1]} expected {self.input_size}")
        batched = input.dim() == 2
        x = input if batched else input.unsqueeze(0)
        if hx is None:
            z = _vt().zeros(x.shape[0], self.hidden_size, dtype=x.dtype, device=x.device)
            hs = [z] * n_state
        else:
            hs = list(hx) if n_state == 2 else [hx]
            hs = hs if batched else [h.unsqueeze(0) for h in hs]
        dt = region_dtype(x) if x.is_cuda else None  # torch's CUDA cells are on its autocast list, its CPU ones not
        if dt is not None and x.is_floating_point() and x.dtype != _core.dtype.float64:
            hs = [h.to(dt) if h.is_floating_point() and h.dtype != _core.dtype.float64 else h for h in hs]
        return x, hs, batched


class RNNCell(RNNCellBase):
    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", device=None, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity: {nonlinearity}")
        super().__init__(input_size, hidden_size, bias, 1, device=device, dtype=dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None):
        x, (h,), batched = self._prepare(input, hx, 1, "RNNCell")
        h = _rnn_step(F.linear(x, self.weight_ih, self.bias_ih), h, self.weight_hh, self.bias_hh,
                      self.nonlinearity == "relu")
        return h if batched else h.squeeze(0)


class LSTMCell(RNNCellBase):
    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, 4, device=device, dtype=dtype)

    def forward(self, input, hx=None):
        """Returns (h', c')."""
        x, (h, c), batched = self._prepare(input, hx, 2, "LSTMCell")
        h, c = _lstm_step(F.linear(x, self.weight_ih, self.bias_ih), h, c, self.weight_hh, self.bias_hh)
        return (h, c) if batched else (h.squeeze(0), c.squeeze(0))


class GRUCell(RNNCellBase):
    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, 3, device=device, dtype=dtype)

    def forward(self, input, hx=None):
        x, (h,), batched = self._prepare(input, hx, 1, "GRUCell")
        h = _gru_step(F.linear(x, self.weight_ih, self.bias_ih), h, self.weight_hh, self.bias_hh)
        return h if batched else h.squeeze(0)
