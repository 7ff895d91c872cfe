"""vt.nn.utils.rnn's packed sequences against torch.nn.utils.rnn: PackedSequence (fields, construction, the
device/dtype conversions), pack_padded_sequence / pad_packed_sequence / pack_sequence / unpack_sequence /
unpad_sequence (values, batch_sizes, the sort permutation and float64 gradients, for every option), and RNN /
LSTM / GRU on packed input (outputs, h_n, c_n and the gradients of the input, h_0, c_0 and every parameter, torch's
weights loaded into the vt module), plus the error cases with torch's exception types and messages."""
import numpy as np
import pytest
import torch
from torch.nn.utils import rnn as R

import vibetensor.torch as vt
from vibetensor.torch.nn.utils import rnn as V

from ag_helpers import check_grads, leaves, to_np

TOL = dict(rtol=1e-9, atol=1e-10)


def mod(m):
    return V if m is vt else R


def as_vt(t):
    return vt.from_numpy(t.detach().numpy().copy())


def same_index(a, b):
    """Two optional index tensors (vt, torch) hold the same values."""
    assert (a is None) == (b is None)
    if b is not None:
        assert a.dtype == vt.int64 and a.tolist() == b.tolist()


def _err(fn_t, fn_v, exc=RuntimeError):
    """Both raise exc, with the same message."""
    with pytest.raises(exc) as et:
        fn_t()
    with pytest.raises(exc) as ev:
        fn_v()
    assert str(ev.value) == str(et.value)


def padded(lengths, batch_first, extra_steps=0, trailing=(3,), seed=0):
    steps = max(lengths) + extra_steps
    shape = (len(lengths), steps) if batch_first else (steps, len(lengths))
    return leaves([shape + tuple(trailing)], seed=seed)


SORTED = [[5, 3, 3, 1], [4, 4, 4], [1, 1], [1], [6], [3, 2, 1]]
UNSORTED = [[2, 5, 1, 3], [3, 1, 3, 2, 1], [1, 4], [1, 1, 2]]


def lengths_as(lengths, kind):
    if kind == "list":
        return lengths, lengths
    if kind == "tuple":
        return tuple(lengths), tuple(lengths)
    dt = {"int64": (vt.int64, torch.int64), "int32": (vt.int32, torch.int32)}[kind]
    return vt.tensor(lengths, dtype=dt[0]), torch.tensor(lengths, dtype=dt[1])


# ---- pack_padded_sequence ----
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("lengths,enforce_sorted", [(x, True) for x in SORTED] +
                         [(x, False) for x in SORTED + UNSORTED])  # unsorted with enforce_sorted: errors below
@pytest.mark.parametrize("kind", ["list", "tuple", "int64", "int32"])
def test_pack_padded_sequence(batch_first, lengths, enforce_sorted, kind):
    pairs = padded(lengths, batch_first, extra_steps=len(lengths) % 2)  # sometimes longer than the longest
    lv, lt = lengths_as(lengths, kind)
    pv = V.pack_padded_sequence(pairs[0][0], lv, batch_first, enforce_sorted)
    pt = R.pack_padded_sequence(pairs[0][1], lt, batch_first, enforce_sorted)
    assert isinstance(pv, V.PackedSequence)
    assert pv.batch_sizes.dtype == vt.int64 and pv.batch_sizes.device.type == "cpu"
    assert pv.batch_sizes.tolist() == pt.batch_sizes.tolist()
    same_index(pv.sorted_indices, pt.sorted_indices)
    same_index(pv.unsorted_indices, pt.unsorted_indices)
    check_grads(lambda m, x: mod(m).pack_padded_sequence(x, lv if m is vt else lt, batch_first=batch_first,
                                                         enforce_sorted=enforce_sorted).data, pairs)


@pytest.mark.parametrize("trailing", [(), (2, 3), (1,)])
def test_pack_padded_trailing_shapes(trailing):
    pairs = padded([4, 2, 1], False, trailing=trailing)
    check_grads(lambda m, x: mod(m).pack_padded_sequence(x, [4, 2, 1]).data, pairs)
    pairs = padded([1, 4, 2], True, trailing=trailing)
    check_grads(lambda m, x: mod(m).pack_padded_sequence(x, [1, 4, 2], True, False).data, pairs)


def test_pack_padded_int_and_noncontiguous_input():
    a = np.arange(60).reshape(5, 4, 3)
    pv = V.pack_padded_sequence(vt.from_numpy(a.copy()), [2, 5, 1, 3], enforce_sorted=False)
    pt = R.pack_padded_sequence(torch.from_numpy(a.copy()), [2, 5, 1, 3], enforce_sorted=False)
    assert pv.data.dtype == vt.int64
    np.testing.assert_array_equal(to_np(pv.data), pt.data.numpy())
    v = vt.from_numpy(a.astype(np.float64).copy()).transpose(0, 2)  # (3, 4, 5), not contiguous
    t = torch.from_numpy(a.astype(np.float64).copy()).transpose(0, 2)
    pv = V.pack_padded_sequence(v, [3, 2, 2, 1])
    pt = R.pack_padded_sequence(t, [3, 2, 2, 1])
    np.testing.assert_array_equal(to_np(pv.data), pt.data.numpy())


def test_pack_padded_errors():
    x = np.random.default_rng(0).standard_normal((4, 3, 2))
    v, t = vt.from_numpy(x.copy()), torch.from_numpy(x.copy())
    for lengths in ([4, 5, 1], [1, 2, 3], [4, 0, 1], [4, 2, 0], [4, 2, -1], [4, 2, 1, 1], [4, 2]):
        _err(lambda: R.pack_padded_sequence(t, lengths), lambda: V.pack_padded_sequence(v, lengths))
    for lengths in ([4, 2, 0], [0, 3, 1], [-1, 2, 2]):
        _err(lambda: R.pack_padded_sequence(t, lengths, enforce_sorted=False),
             lambda: V.pack_padded_sequence(v, lengths, enforce_sorted=False))
    _err(lambda: R.pack_padded_sequence(t, torch.tensor([[4, 2, 1]])),
         lambda: V.pack_padded_sequence(v, vt.tensor([[4, 2, 1]])))
    _err(lambda: R.pack_padded_sequence(t, torch.tensor(3)), lambda: V.pack_padded_sequence(v, vt.tensor(3)))
    _err(lambda: R.pack_padded_sequence(t[:0], [1, 1, 1]), lambda: V.pack_padded_sequence(v[:0], [1, 1, 1]))
    _err(lambda: R.pack_padded_sequence(torch.zeros(4, 3, 0), [4, 2, 1]),
         lambda: V.pack_padded_sequence(vt.zeros(4, 3, 0), [4, 2, 1]))
    _err(lambda: R.pack_padded_sequence(torch.zeros(4, 0, 2), []),
         lambda: V.pack_padded_sequence(vt.zeros(4, 0, 2), []))
    with pytest.raises(IndexError):
        R.pack_padded_sequence(torch.zeros(4), [4])
    with pytest.raises(IndexError, match="time and a batch dimension"):
        V.pack_padded_sequence(vt.zeros(4), [4])


def test_pack_padded_length_longer_than_input():
    """torch returns a PackedSequence whose data has fewer rows than batch_sizes adds up to; vt raises."""
    t = torch.zeros(4, 3, 2)
    for lengths, es in (([5, 2, 1], True), ([1, 9, 2], False)):
        pt = R.pack_padded_sequence(t, lengths, enforce_sorted=es)
        assert int(pt.batch_sizes.sum()) != pt.data.shape[0]
        with pytest.raises(RuntimeError, match="a length of .* is longer than the input's 4 steps"):
            V.pack_padded_sequence(vt.zeros(4, 3, 2), lengths, enforce_sorted=es)
    with pytest.raises(RuntimeError, match="a length of 4 is longer than the input's 3 steps"):
        V.pack_padded_sequence(vt.zeros(3, 3, 2), [4, 2, 1], batch_first=True)


# ---- pad_packed_sequence ----
def packed_pair(data_pair, lengths, enforce_sorted):
    """(vt, torch) PackedSequences over the given data leaves, with torch's batch_sizes and permutation."""
    ref = R.pack_padded_sequence(torch.zeros(max(lengths), len(lengths)), lengths, enforce_sorted=enforce_sorted)
    si_t = ref.sorted_indices
    si_v = None if si_t is None else vt.tensor(si_t.tolist())
    return (V.PackedSequence(data_pair[0], vt.tensor(ref.batch_sizes.tolist()), si_v),
            R.PackedSequence(data_pair[1], ref.batch_sizes, si_t))


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("lengths,enforce_sorted", [(x, True) for x in SORTED] + [(x, False) for x in UNSORTED])
@pytest.mark.parametrize("padding_value", [0.0, -1.5])
@pytest.mark.parametrize("extra", [None, 0, 2])
def test_pad_packed_sequence(batch_first, lengths, enforce_sorted, padding_value, extra):
    total = None if extra is None else max(lengths) + extra
    pairs = leaves([(sum(lengths), 3)])
    pv, pt = packed_pair(pairs[0], lengths, enforce_sorted)
    ov, lv = V.pad_packed_sequence(pv, batch_first, padding_value, total)
    ot, lt = R.pad_packed_sequence(pt, batch_first, padding_value, total)
    assert lv.dtype == vt.int64 and lv.device.type == "cpu" and lv.tolist() == lt.tolist() == lengths
    check_grads(lambda m, d: mod(m).pad_packed_sequence(packed_pair((d, d), lengths, enforce_sorted)[m is torch],
                                                        batch_first=batch_first, padding_value=padding_value,
                                                        total_length=total)[0], pairs)


@pytest.mark.parametrize("trailing", [(), (2, 3)])
def test_pad_packed_trailing_shapes_and_int(trailing):
    lengths = [3, 1, 2]
    pairs = leaves([(6,) + trailing])
    check_grads(lambda m, d: mod(m).pad_packed_sequence(packed_pair((d, d), lengths, False)[m is torch],
                                                        True, 7.0)[0], pairs)
    a = np.arange(6 * int(np.prod(trailing))).reshape((6,) + trailing)
    pv, pt = packed_pair((vt.from_numpy(a.copy()), torch.from_numpy(a.copy())), lengths, False)
    ov, ot = V.pad_packed_sequence(pv, padding_value=-1)[0], R.pad_packed_sequence(pt, padding_value=-1)[0]
    assert ov.dtype == vt.int64
    np.testing.assert_array_equal(to_np(ov), ot.numpy())


def test_pad_packed_total_length_error():
    x = np.zeros((4, 3, 2))
    pv = V.pack_padded_sequence(vt.from_numpy(x.copy()), [4, 2, 1])
    pt = R.pack_padded_sequence(torch.from_numpy(x.copy()), [4, 2, 1])
    _err(lambda: R.pad_packed_sequence(pt, total_length=3), lambda: V.pad_packed_sequence(pv, total_length=3),
         ValueError)


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("lengths", [[2, 5, 1, 3], [4, 4], [1]])
def test_pack_then_pad_round_trip(batch_first, lengths):
    pairs = padded(lengths, batch_first, extra_steps=1)
    check_grads(lambda m, x: mod(m).pad_packed_sequence(
        mod(m).pack_padded_sequence(x, lengths, batch_first, False), batch_first, 0.5, max(lengths) + 1)[0], pairs)


# ---- pack_sequence, unpack_sequence, unpad_sequence ----
@pytest.mark.parametrize("shapes,enforce_sorted", [
    ([(5, 3), (3, 3), (3, 3), (1, 3)], True), ([(2, 3), (5, 3), (1, 3)], False), ([(4,), (2,), (3,)], False),
    ([(1, 2, 2)], True), ([(3, 2)] * 3, True), ([(3, 2)] * 3, False)])
def test_pack_sequence_and_unpack(shapes, enforce_sorted):
    pairs = leaves(shapes)
    pv = V.pack_sequence([p[0] for p in pairs], enforce_sorted)
    pt = R.pack_sequence([p[1] for p in pairs], enforce_sorted)
    assert pv.batch_sizes.tolist() == pt.batch_sizes.tolist()
    same_index(pv.sorted_indices, pt.sorted_indices)
    check_grads(lambda m, *s: mod(m).pack_sequence(list(s), enforce_sorted=enforce_sorted).data, pairs)
    check_grads(lambda m, *s: m.cat(mod(m).unpack_sequence(mod(m).pack_sequence(s, enforce_sorted)), 0), pairs)
    outs = V.unpack_sequence(pv)
    assert [tuple(o.shape) for o in outs] == [s for s in shapes]
    for o, p in zip(outs, pairs):
        np.testing.assert_array_equal(to_np(o), to_np(p[0]))


def test_pack_sequence_errors():
    _err(lambda: R.pack_sequence([]), lambda: V.pack_sequence([]))
    _err(lambda: R.pack_sequence([torch.zeros(1), torch.zeros(2)]), lambda: V.pack_sequence([vt.zeros(1),
                                                                                              vt.zeros(2)]))
    with pytest.raises(RuntimeError, match="trailing shape"):
        V.pack_sequence([vt.zeros(2, 3), vt.zeros(3, 2)])


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("lengths", [[2, 5, 1, 3], [5, 5], [1]])
def test_unpad_sequence(batch_first, lengths):
    pairs = padded(lengths, batch_first, extra_steps=1)
    # torch transposes its padded argument in place when batch_first is False: it gets a clone
    check_grads(lambda m, x: m.cat(mod(m).unpad_sequence(x if m is vt else x.clone(), m.tensor(lengths),
                                                         batch_first), 0), pairs)
    outs = V.unpad_sequence(pairs[0][0], vt.tensor(lengths), batch_first)
    assert [o.shape[0] for o in outs] == lengths
    assert tuple(pairs[0][0].shape) == tuple(pairs[0][1].shape)  # vt leaves its argument as it was
    assert [o.shape[0] for o in V.unpad_sequence(pairs[0][0], lengths, batch_first)] == lengths  # a list works
    with pytest.raises(RuntimeError, match="got 2 lengths for a batch of"):
        V.unpad_sequence(vt.zeros(3, 4, 2), [1, 1], True)


# ---- PackedSequence ----
def test_packed_sequence_fields_and_construction():
    pv = V.pack_sequence([vt.ones(2, 3), vt.ones(4, 3), vt.ones(1, 3)], enforce_sorted=False)
    data, batch_sizes, sorted_indices, unsorted_indices = pv
    assert isinstance(pv, tuple) and pv._fields == R.PackedSequence._fields and len(pv) == 4
    assert data is pv.data and pv[1] is pv.batch_sizes and sorted_indices is pv.sorted_indices
    assert unsorted_indices.tolist() == [1, 0, 2] and sorted_indices.tolist() == [1, 0, 2]
    assert repr(pv).startswith("PackedSequence(data=tensor(")
    si = [2, 0, 3, 1]
    d = np.zeros((4, 2))
    pv = V.PackedSequence(vt.from_numpy(d), vt.tensor([4]), vt.tensor(si))
    pt = R.PackedSequence(torch.from_numpy(d), torch.tensor([4]), torch.tensor(si))
    same_index(pv.unsorted_indices, pt.unsorted_indices)
    pv = V.PackedSequence(vt.from_numpy(d), vt.tensor([4]), vt.tensor(si), vt.tensor([0, 1, 2, 3]))
    assert pv.unsorted_indices.tolist() == [0, 1, 2, 3]  # given, not recomputed
    pv = V.PackedSequence((vt.from_numpy(d), vt.tensor([2, 2])))
    assert pv.batch_sizes.tolist() == [2, 2] and pv.sorted_indices is None and pv.unsorted_indices is None
    _err(lambda: R.PackedSequence(torch.zeros(3)), lambda: V.PackedSequence(vt.zeros(3)), AssertionError)
    pv2 = pv._replace(data=vt.ones(4, 2))
    assert isinstance(pv2, V.PackedSequence) and pv2.batch_sizes is pv.batch_sizes


def test_invert_permutation_and_names():
    for perm in ([2, 0, 1], [0], [3, 1, 0, 4, 2]):
        inv = V.invert_permutation(vt.tensor(perm))
        assert inv.dtype == vt.int64 and inv.tolist() == R.invert_permutation(torch.tensor(perm)).tolist()
    assert V.invert_permutation(None) is None
    assert sorted(V.__all__) == sorted(R.__all__)
    assert all(callable(getattr(V, n)) for n in V.__all__)
    assert vt.nn.utils.rnn is V


NAMES = {"double": "float64", "float": "float32", "half": "float16", "long": "int64", "int": "int32",
         "short": "int16", "char": "int8", "byte": "uint8"}


@pytest.mark.parametrize("method", list(NAMES))
def test_packed_sequence_dtype_converters(method):
    a = np.arange(12.0).reshape(3, 4, 1)
    pv = V.pack_padded_sequence(vt.from_numpy(a.copy()).float(), [2, 4, 1], True, False)
    pt = R.pack_padded_sequence(torch.from_numpy(a.copy()).float(), [2, 4, 1], True, False)
    ov, ot = getattr(pv, method)(), getattr(pt, method)()
    assert str(ot.data.dtype) == "torch." + NAMES[method] and ov.data.dtype == getattr(vt, NAMES[method])
    np.testing.assert_array_equal(to_np(ov.data), ot.data.numpy())
    assert (ov is pv) == (ot is pt)  # float() of float data is the same object
    assert ov.batch_sizes is pv.batch_sizes
    same_index(ov.sorted_indices, ot.sorted_indices)  # the indices keep int64
    same_index(ov.unsorted_indices, ot.unsorted_indices)


def test_packed_sequence_to_and_device():
    pv = V.pack_sequence([vt.ones(2, 3), vt.ones(4, 3)], enforce_sorted=False)
    assert pv.to(vt.float32) is pv and pv.to("cpu") is pv and pv.cpu() is pv
    assert pv.is_cuda is False and pv.is_pinned() is False
    pd = pv.to(dtype=vt.float64)
    assert pd.data.dtype == vt.float64 and isinstance(pd, V.PackedSequence)
    assert pv.to(vt.zeros(1, dtype=vt.float64)).data.dtype == vt.float64
    assert pv.to("cpu", vt.float64, copy=True).data.dtype == vt.float64


@pytest.mark.skipif(not vt.cuda.is_available(), reason="needs CUDA")
def test_packed_sequence_cuda():
    pv = V.pack_sequence([vt.ones(2, 3), vt.ones(4, 3), vt.ones(1, 3)], enforce_sorted=False)
    pc = pv.cuda()
    assert pc.is_cuda and pc.data.is_cuda and pc.sorted_indices.is_cuda and pc.unsorted_indices.is_cuda
    assert pc.batch_sizes.device.type == "cpu"
    assert pc.cuda() is pc
    assert pv.cuda(dtype=vt.float64).data.dtype == vt.float64
    back = pc.cpu()
    assert not back.is_cuda and back.sorted_indices.device.type == "cpu"
    assert pv.pin_memory().is_pinned()
    padded, lengths = V.pad_packed_sequence(pc, batch_first=True)
    assert padded.is_cuda and lengths.device.type == "cpu" and lengths.tolist() == [2, 4, 1]
    np.testing.assert_array_equal(to_np(padded.cpu()), to_np(V.pad_packed_sequence(pv, True)[0]))
    with pytest.raises(ValueError, match="batch_sizes should always be on CPU"):
        V.PackedSequence(pc.data, pc.batch_sizes.cuda())
    x = vt.randn(5, 3, 4, device="cuda")
    pk = V.pack_padded_sequence(x, vt.tensor([2, 5, 3]), enforce_sorted=False)
    assert pk.is_cuda and pk.sorted_indices.is_cuda
    np.testing.assert_array_equal(to_np(pk.data.cpu()), to_np(V.pack_padded_sequence(
        x.cpu(), vt.tensor([2, 5, 3]), enforce_sorted=False).data))
    with pytest.raises(RuntimeError, match="1D CPU int64 tensor, but got 1D cuda"):
        V.pack_padded_sequence(x, vt.tensor([2, 5, 3], device="cuda"), enforce_sorted=False)
    lstm = vt.nn.LSTM(4, 3, num_layers=2, bidirectional=True)
    out_c, (h_c, c_c) = lstm.cuda()(pk)
    out, (h, c) = lstm.cpu()(pk.cpu())
    assert out_c.is_cuda and h_c.is_cuda
    for a, b in ((out_c.data, out.data), (h_c, h), (c_c, c)):
        np.testing.assert_allclose(to_np(a.cpu()), to_np(b), rtol=1e-4, atol=1e-5)


# ---- RNN, LSTM and GRU on packed input ----
def module_pair(name, kw):
    tmod = getattr(torch.nn, name)(4, 5, **kw).double()
    with torch.no_grad():  # torch's init is uniform; a shift keeps biases and states from being symmetric
        for p in tmod.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    vmod = getattr(vt.nn, name)(4, 5, **kw).double()
    vmod.load_state_dict({k: as_vt(v) for k, v in tmod.state_dict().items()})
    return vmod, tmod


def states(out):
    """The final states as a list: [h_n] or [h_n, c_n]."""
    return list(out[1]) if isinstance(out[1], tuple) else [out[1]]


def run_both(vmod, tmod, x_pair, lengths, batch_first, enforce_sorted, h0_pairs):
    pv = V.pack_padded_sequence(x_pair[0], lengths, batch_first, enforce_sorted)
    pt = R.pack_padded_sequence(x_pair[1], lengths, batch_first, enforce_sorted)
    hv = ht = None
    if h0_pairs:
        hv = tuple(p[0] for p in h0_pairs) if len(h0_pairs) == 2 else h0_pairs[0][0]
        ht = tuple(p[1] for p in h0_pairs) if len(h0_pairs) == 2 else h0_pairs[0][1]
    return vmod(pv, hv), tmod(pt, ht)


MODELS = [("RNN", {}), ("RNN", {"nonlinearity": "relu"}), ("GRU", {}), ("LSTM", {}), ("LSTM", {"proj_size": 3})]


@pytest.mark.parametrize("name,kw", MODELS)
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("with_h0", [False, True])
@pytest.mark.parametrize("batch_first,lengths,enforce_sorted", [
    (False, [5, 3, 3, 1], True), (True, [5, 3, 3, 1], True), (False, [2, 5, 1, 3, 3], False),
    (True, [2, 5, 1, 3, 3], False), (True, [4, 4, 4], False), (False, [1, 1], True)])
def test_recurrent_layers_packed(name, kw, bidirectional, with_h0, batch_first, lengths, enforce_sorted):
    vmod, tmod = module_pair(name, dict(kw, num_layers=2, bidirectional=bidirectional, batch_first=batch_first))
    dirs, batch = 2 if bidirectional else 1, len(lengths)
    widths = [kw.get("proj_size") or 5] + ([5] if name == "LSTM" else [])
    x_pair = padded(lengths, batch_first, extra_steps=1, trailing=(4,), seed=3)[0]
    h0_pairs = leaves([(2 * dirs, batch, w) for w in widths], seed=4) if with_h0 else []
    out_v, out_t = run_both(vmod, tmod, x_pair, lengths, batch_first, enforce_sorted, h0_pairs)
    assert isinstance(out_v[0], V.PackedSequence)
    assert out_v[0].batch_sizes is not None and out_v[0].batch_sizes.tolist() == out_t[0].batch_sizes.tolist()
    same_index(out_v[0].sorted_indices, out_t[0].sorted_indices)
    same_index(out_v[0].unsorted_indices, out_t[0].unsorted_indices)
    pairs = [(out_v[0].data, out_t[0].data)] + list(zip(states(out_v), states(out_t)))
    rng = np.random.default_rng(11)
    loss_v = loss_t = 0
    for a, b in pairs:
        assert tuple(a.shape) == tuple(b.shape)
        np.testing.assert_allclose(to_np(a), b.detach().numpy(), **TOL)
        g = rng.standard_normal(tuple(b.shape))
        loss_v = loss_v + (a * vt.from_numpy(g.copy())).sum()
        loss_t = loss_t + (b * torch.from_numpy(g.copy())).sum()
    loss_t.backward()
    loss_v.backward()
    for i, (v, t) in enumerate([x_pair] + h0_pairs):
        np.testing.assert_allclose(to_np(v.grad), t.grad.numpy(), **TOL, err_msg=f"input {i}")
    vp = dict(vmod.named_parameters())
    for pname, p in tmod.named_parameters():
        np.testing.assert_allclose(to_np(vp[pname].grad), p.grad.numpy(), **TOL, err_msg=pname)


@pytest.mark.parametrize("name,kw", MODELS)
def test_packed_final_state_is_each_sequences_own(name, kw):
    """Independently of torch: h_n/c_n and the output of a packed batch equal those of each sequence run alone."""
    vmod, _ = module_pair(name, dict(kw, num_layers=2, bidirectional=True))
    rng = np.random.default_rng(5)
    seqs = [vt.from_numpy(rng.standard_normal((n, 4))) for n in (3, 6, 1, 4)]
    out, fin = vmod(V.pack_sequence(seqs, enforce_sorted=False))
    fin = fin if isinstance(fin, tuple) else (fin,)
    outs = V.unpack_sequence(out)
    for b, s in enumerate(seqs):
        o1, f1 = vmod(s.unsqueeze(1))
        f1 = f1 if isinstance(f1, tuple) else (f1,)
        np.testing.assert_allclose(to_np(outs[b]), to_np(o1.squeeze(1)), **TOL)
        for a, c in zip(fin, f1):
            np.testing.assert_allclose(to_np(a[:, b]), to_np(c[:, 0]), **TOL)


def test_packed_dropout_and_eval_shapes():
    lstm = vt.nn.LSTM(4, 6, num_layers=3, dropout=0.5, bidirectional=True)
    pk = V.pack_sequence([vt.randn(3, 4), vt.randn(5, 4)], enforce_sorted=False)
    out, (h, c) = lstm(pk)
    assert tuple(out.data.shape) == (8, 12) and tuple(h.shape) == (6, 2, 6) and tuple(c.shape) == (6, 2, 6)
    lstm.eval()
    a, b = lstm(pk)[0].data, lstm(pk)[0].data
    np.testing.assert_array_equal(to_np(a), to_np(b))
    padded_out, lengths = V.pad_packed_sequence(out, batch_first=True)
    assert tuple(padded_out.shape) == (2, 5, 12) and lengths.tolist() == [3, 5]


def test_recurrent_layers_packed_errors():
    """RNN and GRU raise torch's errors. torch's LSTM does not check a packed input's hx in Python (its kernel
    fails with an unrelated message, or crashes): vt's says what torch's says for padded input."""
    x = np.random.default_rng(0).standard_normal((4, 3, 4))
    pv = V.pack_padded_sequence(vt.from_numpy(x.copy()), [4, 2, 1])
    pt = R.pack_padded_sequence(torch.from_numpy(x.copy()), [4, 2, 1])
    bv, bt = vt.tensor([3, 2, 1, 1]), torch.tensor([3, 2, 1, 1])
    for name in ("RNN", "GRU"):
        vmod, tmod = module_pair(name, {"num_layers": 2})
        _err(lambda: tmod(pt, torch.zeros(2, 2, 5).double()), lambda: vmod(pv, vt.zeros(2, 2, 5).double()))
        _err(lambda: tmod(pt, torch.zeros(1, 3, 5).double()), lambda: vmod(pv, vt.zeros(1, 3, 5).double()))
        for shape in ((7, 3), (7, 4, 1)):
            _err(lambda: tmod(R.PackedSequence(torch.zeros(*shape).double(), bt)),
                 lambda: vmod(V.PackedSequence(vt.zeros(*shape).double(), bv)))
    vmod, _ = module_pair("LSTM", {"num_layers": 2, "proj_size": 2})
    z = vt.zeros
    with pytest.raises(RuntimeError, match=r"^Expected hidden\[0\] size \(2, 3, 2\), got \[2, 2, 2\]$"):
        vmod(pv, (z(2, 2, 2).double(), z(2, 3, 5).double()))
    with pytest.raises(RuntimeError, match=r"^Expected hidden\[1\] size \(2, 3, 5\), got \[1, 3, 5\]$"):
        vmod(pv, (z(2, 3, 2).double(), z(1, 3, 5).double()))
    with pytest.raises(RuntimeError, match="^input must have 2 dimensions, got 3$"):
        vmod(V.PackedSequence(z(7, 4, 1).double(), bv))
    with pytest.raises(RuntimeError, match="^input.size\\(-1\\) must be equal to input_size. Expected 4, got 3$"):
        vmod(V.PackedSequence(z(7, 3).double(), bv))
