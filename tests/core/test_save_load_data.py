"""vt.save / vt.load round trips (dtypes incl. bfloat16/float16/bool/int, 0-dim, empty, views, nested containers,
module and optimizer state_dicts, map_location, weights_only refusal, torch's files refused) and vt.utils.data
against torch.utils.data: batch contents and order (sequential, explicit samplers, shuffled with the same seeded
torch.Generator), collate of numbers/tuples/dicts/arrays, random_split, Subset, ConcatDataset, argument errors."""
import collections
import io
import os
import pickle

import numpy as np
import pytest
import torch
import torch.utils.data as td
import vibetensor.torch as vt
from vibetensor.torch.optim.rmsprop_adagrad_adamax_nadam import RMSprop
from vibetensor.torch.serialization import load, save
from vibetensor.torch.utils import data as vd

DTYPES = ["float32", "float64", "float16", "bfloat16", "bool", "uint8", "int8", "int16", "int32", "int64"]
SHAPES = [(), (0,), (3, 0, 2), (5,), (2, 3, 4)]


def random_tensor(rng, dtype, shape):
    """A vt tensor and the torch tensor with the same values."""
    if dtype == "bool":
        a = rng.random(shape) < 0.5
    elif dtype.startswith(("int", "uint")):
        a = rng.integers(0, 100, size=shape).astype(dtype)
    else:
        a = rng.standard_normal(shape).astype("float32" if dtype == "bfloat16" else dtype)
    t = torch.from_numpy(np.array(a)).to(getattr(torch, dtype))
    v = vt.from_numpy(np.array(a)).to(getattr(vt, dtype))
    return v, t


def values(v):
    if v.dtype == vt.bfloat16:
        return v.float().numpy()
    return v.numpy()


def round_trip(obj, **load_kw):
    buf = io.BytesIO()
    save(obj, buf)
    buf.seek(0)
    return load(buf, **load_kw)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_tensor_round_trip_keeps_dtype_shape_values(dtype, shape, rng):
    v, t = random_tensor(rng, dtype, shape)
    r = round_trip(v)
    assert r.dtype == v.dtype and tuple(r.shape) == tuple(v.shape) and str(r.device) == "cpu"
    np.testing.assert_array_equal(values(r), values(v))
    if dtype == "bfloat16":  # the bit patterns survive, and equal torch's rounding of the same float32 values
        np.testing.assert_array_equal(values(r), t.float().numpy())


def test_nested_containers_views_identity_and_parameters(tmp_path, rng):
    base = vt.from_numpy(rng.standard_normal((4, 6)))
    view = base.t()[1:3]
    shared = vt.ones(2, dtype=vt.int32)
    p = vt.nn.Parameter(vt.zeros(3))
    grad_leaf = vt.ones(2).requires_grad_(True)
    obj = {"od": collections.OrderedDict(a=shared, b=[shared, (view, 7)]), "n": [1, 2.5, True, None, "s", b"x"],
           "set": {1, 2}, "p": p, "g": grad_leaf, "dtype": vt.bfloat16, "dev": vt.device("cpu"), 3: -1.5}
    path = tmp_path / "obj.vt"
    save(obj, str(path))
    r = load(path)  # a str or an os.PathLike
    assert isinstance(r["od"], collections.OrderedDict) and list(r["od"]) == ["a", "b"]
    assert r["od"]["a"] is r["od"]["b"][0]  # one object saved once, identity kept
    assert r["od"]["b"][1][1] == 7 and isinstance(r["od"]["b"][1], tuple)
    np.testing.assert_array_equal(r["od"]["b"][1][0].numpy(), view.numpy())  # a view saved as its own data
    assert r["od"]["b"][1][0].is_contiguous()
    assert r["n"] == [1, 2.5, True, None, "s", b"x"] and r["set"] == {1, 2} and r[3] == -1.5
    assert isinstance(r["p"], vt.nn.Parameter) and r["p"].requires_grad and r["p"].is_leaf
    assert r["g"].requires_grad and not isinstance(r["g"], vt.nn.Parameter)
    assert r["dtype"] == vt.bfloat16 and str(r["dev"]) == "cpu"
    # a file object, opened by the caller, written twice and read back in order
    with open(path, "wb") as f:
        save([1], f)
        save({"x": shared}, f)
    with open(path, "rb") as f:
        assert load(f) == [1]
        assert load(f)["x"].tolist() == [1, 1]


def test_module_and_optimizer_state_dicts(rng):
    model = vt.nn.Sequential(vt.nn.Linear(3, 4), vt.nn.ReLU(), vt.nn.Linear(4, 2))
    opt = RMSprop(model.parameters(), lr=0.01, momentum=0.9, centered=True)
    for _ in range(2):
        opt.zero_grad()
        model(vt.from_numpy(rng.standard_normal((5, 3)).astype(np.float32))).sum().backward()
        opt.step()
    ckpt = {"model": model.state_dict(), "opt": opt.state_dict(), "epoch": 2}
    r = round_trip(ckpt)
    assert list(r["model"]) == list(model.state_dict()) and r["epoch"] == 2
    model2 = vt.nn.Sequential(vt.nn.Linear(3, 4), vt.nn.ReLU(), vt.nn.Linear(4, 2))
    model2.load_state_dict(r["model"])
    opt2 = RMSprop(model2.parameters(), lr=0.5)
    opt2.load_state_dict(r["opt"])
    assert opt2.param_groups[0]["lr"] == 0.01 and opt2.state_dict()["param_groups"] == ckpt["opt"]["param_groups"]
    x = vt.from_numpy(rng.standard_normal((5, 3)).astype(np.float32))
    for m, o in ((model, opt), (model2, opt2)):
        o.zero_grad()
        m(x).sum().backward()
        o.step()
    for a, b in zip(model.parameters(), model2.parameters()):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())


@pytest.mark.parametrize("wrap", ["tensor", "parameter", "frozen"])
def test_load_state_dict_assign_takes_the_checkpoints_tensors(wrap):
    """assign=True (meta-device init, then real weights): the checkpoint's tensors themselves, their dtype and
    storage, with the replaced parameters' requires_grad; buffers too; default loads copy in the module's dtype."""
    w = np.arange(6.0).reshape(2, 3)
    seen = {}
    for lib in (torch, vt):
        m = lib.nn.Sequential(lib.nn.Linear(3, 2), lib.nn.BatchNorm1d(2))
        if wrap == "frozen":
            m[0].weight.requires_grad_(False)
        sd = {k: v.detach().clone().double() for k, v in m.state_dict().items()}
        sd["0.weight"] = lib.from_numpy(w.copy())
        if wrap == "parameter":
            sd["0.weight"] = lib.nn.Parameter(sd["0.weight"], requires_grad=False)
        copied = type(m)(lib.nn.Linear(3, 2), lib.nn.BatchNorm1d(2))
        copied.load_state_dict(sd)
        res = m.load_state_dict(sd, assign=True)
        weight = m[0].weight
        seen[lib] = (str(weight.dtype).split(".")[-1], weight.requires_grad, isinstance(weight, lib.nn.Parameter),
                     weight.data_ptr() == sd["0.weight"].data_ptr(), weight is sd["0.weight"],
                     str(m[1].running_mean.dtype).split(".")[-1], m[1].running_mean is sd["1.running_mean"],
                     str(copied[0].weight.dtype).split(".")[-1], list(res.missing_keys), list(res.unexpected_keys))
        assert "0.weight" in dict(m.named_parameters())
        np.testing.assert_array_equal(weight.detach().numpy(), w)
    assert seen[vt] == seen[torch]
    assert seen[vt][:4] == ("float64", wrap != "frozen", True, True)


def test_map_location_forms(rng):
    v, _ = random_tensor(rng, "float32", (2, 3))
    for loc in ("cpu", vt.device("cpu"), {"cpu": "cpu"}):
        r = round_trip({"w": v}, map_location=loc)
        assert str(r["w"].device) == "cpu" and r["w"].numpy().tolist() == v.numpy().tolist()
    seen = []
    r = round_trip([v], map_location=lambda t, loc: seen.append(loc) or t * 2)
    assert seen == ["cpu"] and r[0].numpy().tolist() == (v * 2).numpy().tolist()


@pytest.mark.cuda
def test_cuda_tensors_keep_device_or_map_to_cpu(rng):
    v = vt.from_numpy(rng.standard_normal((3, 2)).astype(np.float32)).to("cuda")
    b = vt.ones(4, dtype=vt.bfloat16).to("cuda")
    r = round_trip({"v": v, "b": b})
    assert str(r["v"].device) == str(v.device) and r["b"].dtype == vt.bfloat16
    np.testing.assert_array_equal(r["v"].cpu().numpy(), v.cpu().numpy())
    r = round_trip({"v": v}, map_location="cpu")
    assert str(r["v"].device) == "cpu"
    r = round_trip({"v": v.cpu()}, map_location="cuda:0")
    assert str(r["v"].device) == "cuda:0"


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


class Plain:
    pass


def test_weights_only_refuses_arbitrary_classes():
    for obj in (Evil(), {"x": Plain()}, [len]):
        buf = io.BytesIO()
        save(obj, buf)
        for kw in ({}, {"weights_only": True}):
            buf.seek(0)
            with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
                load(buf, **kw)
    buf = io.BytesIO()
    save({"x": Plain(), "t": vt.ones(2)}, buf)
    buf.seek(0)
    r = load(buf, weights_only=False)
    assert isinstance(r["x"], Plain) and r["t"].tolist() == [1.0, 1.0]


def test_foreign_files_and_bad_arguments(tmp_path):
    path = tmp_path / "t.pt"
    torch.save({"a": torch.ones(2)}, path)
    with pytest.raises(RuntimeError, match="torch's .pt format"):
        load(path)
    path.write_bytes(b"hello world, not a checkpoint")
    with pytest.raises(RuntimeError, match="not a vt.save file"):
        load(path)
    with pytest.raises(AttributeError, match="file-like object"):
        save(vt.ones(1), 3)
    with pytest.raises(AttributeError, match="file-like object"):
        load(3)
    # and torch cannot read a vt.save file
    save({"a": vt.ones(2)}, str(path))
    with pytest.raises(Exception):
        torch.load(path, weights_only=True)


# ---- vt.utils.data ----

def pair_datasets(rng, n=11):
    x = rng.standard_normal((n, 3))
    y = rng.integers(0, 5, size=n)
    return (vd.TensorDataset(vt.from_numpy(x), vt.from_numpy(y)),
            td.TensorDataset(torch.from_numpy(x), torch.from_numpy(y)))


def assert_same_batches(vloader, tloader):
    vb, tb = list(vloader), list(tloader)
    assert len(vb) == len(tb) == len(vloader) == len(tloader)
    for v, t in zip(vb, tb):
        assert isinstance(v, list) and len(v) == len(t)
        for a, b in zip(v, t):
            assert a.dtype == getattr(vt, str(b.dtype).split(".")[-1])
            np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("kw", [{}, {"batch_size": 4}, {"batch_size": 4, "drop_last": True},
                                {"batch_size": 11}, {"batch_size": 20, "drop_last": True}, {"batch_size": None}])
def test_sequential_batches_match_torch(kw, rng):
    vds, tds = pair_datasets(rng)
    vb, tb = list(vd.DataLoader(vds, **kw)), list(td.DataLoader(tds, **kw))
    assert len(vb) == len(tb) == len(vd.DataLoader(vds, **kw))
    for v, t in zip(vb, tb):
        for a, b in zip(v, t):
            np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_explicit_sampler_and_batch_sampler_match_torch(rng):
    vds, tds = pair_datasets(rng)
    perm = rng.permutation(len(vds)).tolist()
    assert_same_batches(vd.DataLoader(vds, batch_size=3, sampler=perm), td.DataLoader(tds, batch_size=3, sampler=perm))
    batches = [perm[:2], perm[2:7], perm[7:]]
    assert_same_batches(vd.DataLoader(vds, batch_sampler=batches), td.DataLoader(tds, batch_sampler=batches))
    assert_same_batches(vd.DataLoader(vds, batch_size=4, sampler=vd.SequentialSampler(vds)),
                        td.DataLoader(tds, batch_size=4, sampler=td.SequentialSampler(tds)))


@pytest.mark.parametrize("drop_last", [False, True])
def test_shuffle_with_torch_generator_matches_torch(drop_last, seed, rng):
    vds, tds = pair_datasets(rng, n=13)
    vl = vd.DataLoader(vds, batch_size=4, shuffle=True, drop_last=drop_last,
                       generator=torch.Generator().manual_seed(seed))
    tl = td.DataLoader(tds, batch_size=4, shuffle=True, drop_last=drop_last,
                       generator=torch.Generator().manual_seed(seed))
    for _epoch in range(3):  # each epoch a new permutation, from the same generator state as torch's
        assert_same_batches(vl, tl)
    vs = vd.random_split(vds, [0.3, 0.3, 0.4], generator=torch.Generator().manual_seed(seed))
    ts = td.random_split(tds, [0.3, 0.3, 0.4], generator=torch.Generator().manual_seed(seed))
    assert [s.indices for s in vs] == [s.indices for s in ts]
    vs = vd.random_split(vds, [5, 8], generator=torch.Generator().manual_seed(seed))
    ts = td.random_split(tds, [5, 8], generator=torch.Generator().manual_seed(seed))
    assert [s.indices for s in vs] == [s.indices for s in ts]


def test_shuffle_with_vt_seed_and_numpy_generator(rng):
    vds, _ = pair_datasets(rng, n=40)

    def order(**kw):
        return [int(i) for b in vd.DataLoader(vds, batch_size=7, shuffle=True, **kw) for i in b[1].tolist()]

    def labels():
        return sorted(vds.tensors[1].tolist())

    vt.manual_seed(3)
    a = order()
    vt.manual_seed(3)
    assert order() == a and sorted(a) == labels()
    first = order(generator=np.random.default_rng(7))
    assert first == order(generator=np.random.default_rng(7)) and sorted(first) == labels()
    parts = vd.random_split(vds, [0.5, 0.5], generator=np.random.default_rng(1))
    assert sorted(parts[0].indices + parts[1].indices) == list(range(40)) and len(parts[0]) == 20


def test_collate_numbers_tuples_dicts_arrays_match_torch(rng):
    samples = [{"x": rng.standard_normal(3), "f": float(i) / 3, "i": i, "b": i % 2 == 0, "s": f"n{i}",
                "t": (i, [i * 2.0, -1.0]), "a": np.float32(i)} for i in range(5)]
    vb = list(vd.DataLoader(samples, batch_size=2))
    tb = list(td.DataLoader(samples, batch_size=2))
    assert len(vb) == len(tb) == 3

    def check(v, t):
        if isinstance(t, torch.Tensor):
            assert str(v.dtype).split(".")[-1] == str(t.dtype).split(".")[-1] and tuple(v.shape) == tuple(t.shape)
            np.testing.assert_array_equal(v.numpy(), t.numpy())
        elif isinstance(t, dict):
            assert type(v) is type(t) and list(v) == list(t)
            for k in t:
                check(v[k], t[k])
        elif isinstance(t, list):
            assert isinstance(v, list) and len(v) == len(t)
            for a, b in zip(v, t):
                check(a, b)
        else:
            assert v == t

    for v, t in zip(vb, tb):
        check(v, t)
    point = collections.namedtuple("point", "x y")
    v = vd.default_collate([point(1, vt.ones(2)), point(2, vt.zeros(2))])
    assert type(v) is point and v.x.tolist() == [1, 2] and v.y.shape == (2, 2)
    with pytest.raises(RuntimeError, match="each element in list of batch should be of equal size"):
        vd.default_collate([[1, 2], [3]])
    with pytest.raises(TypeError, match="default_collate: batch must contain"):
        vd.default_collate([object()])


def test_datasets_subset_concat():
    ds = vd.TensorDataset(vt.arange(6), vt.arange(6) * 10)
    assert len(ds) == 6 and [int(v) for v in ds[2]] == [2, 20]
    sub = vd.Subset(ds, [5, 1, 3])
    assert len(sub) == 3 and int(sub[0][1]) == 50
    cat = ds + sub
    assert isinstance(cat, vd.ConcatDataset) and len(cat) == 9 and int(cat[7][0]) == 1 and int(cat[-1][0]) == 3
    with pytest.raises(AssertionError, match="Size mismatch between tensors"):
        vd.TensorDataset(vt.ones(3), vt.ones(4))
    with pytest.raises(ValueError, match="Sum of input lengths does not equal"):
        vd.random_split(ds, [2, 2])
    with pytest.raises(NotImplementedError):
        vd.Dataset()[0]


@pytest.mark.parametrize("kw,msg", [
    ({"num_workers": -1}, "num_workers option should be non-negative"),
    ({"sampler": [0, 1], "shuffle": True}, "sampler option is mutually exclusive with shuffle"),
    ({"batch_sampler": [[0]], "batch_size": 2}, "batch_sampler option is mutually exclusive"),
    ({"batch_sampler": [[0]], "drop_last": True}, "batch_sampler option is mutually exclusive"),
    ({"batch_size": None, "drop_last": True}, "batch_size=None option disables auto-batching"),
    ({"batch_size": 0}, "batch_size should be a positive integer value"),
])
def test_dataloader_argument_errors_match_torch(kw, msg):
    ds = list(range(4))
    with pytest.raises(ValueError, match=msg):
        td.DataLoader(ds, **kw)
    with pytest.raises(ValueError, match=msg):
        vd.DataLoader(ds, **kw)


def test_public_names():
    import vibetensor.torch.utils.data as public_data

    assert vt.save is save and vt.load is load and public_data is vd and vt.utils.data.DataLoader is vd.DataLoader
    assert vt.optim.RMSprop is RMSprop and vt.optim.lr_scheduler.ReduceLROnPlateau.__name__ == "ReduceLROnPlateau"
    assert {"Adagrad", "Adamax", "NAdam"} <= set(dir(vt.optim))


def test_malformed_tensor_records_are_rejected_with_a_clear_error(tmp_path):
    import io
    import pickle


    def file_with(record):
        class P(pickle.Pickler):
            def persistent_id(self, obj):
                return record if obj == "T" else None

        buf = io.BytesIO()
        buf.write(b"VTSAVE1\n")
        P(buf, 3).dump({"w": "T"})
        buf.seek(0)
        return buf

    good = ("tensor", 0, "float32", (2,), "cpu", False, False, b"\0" * 8)
    assert vt.load(file_with(good))["w"].tolist() == [0.0, 0.0]
    for bad in (("tensor", 0, "float32", (3,), "cpu", False, False, b"\0" * 8),  # 8 bytes for 3 floats
                ("tensor", 0, "complex99", (2,), "cpu", False, False, b"\0" * 8),
                ("tensor", 0, "float32", (-2,), "cpu", False, False, b""),
                ("tensor", 0, "float32", (2,)), ("tensor_ref", 5), ("blob",), "tensor"):
        with pytest.raises(pickle.UnpicklingError, match="malformed vt.save file"):
            vt.load(file_with(bad))
