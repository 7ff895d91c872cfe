"""nn.TransformerEncoder against torch where torch's inference fast path shows (Note [Encoder padding under
torch's fast path]): in eval, without gradients, with a right-padded src_key_padding_mask and no mask, torch runs
nested tensors and returns zeros at the padded positions; everywhere else the masked computation. Before, vibetensor
always returned the masked computation's values there. Also torch's attributes (enable_nested_tensor,
use_nested_tensor, mask_check, activation_relu_or_gelu), its warning when the fast path cannot be used, and
torch.backends.mha's switch."""
import warnings

import numpy as np
import pytest
import torch
import vibetensor.torch as vt

E, B, T = 8, 3, 6


def pair(heads=2, norm=False, nested=True, mask_check=True, layer=None, vlayer=None):
    """(torch, vt) encoders of two layers with equal weights; layer: the torch layer's extra arguments, vlayer:
    the vt layer's where they differ (an activation function of each library)."""
    kw = dict(dict(dim_feedforward=16, dropout=0.0, batch_first=True), **(layer or {}))
    vkw = dict(dict(dim_feedforward=16, dropout=0.0, batch_first=True), **(vlayer or layer or {}))
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tm = torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(E, heads, **kw), 2,
                                         norm=torch.nn.LayerNorm(E) if norm else None, enable_nested_tensor=nested,
                                         mask_check=mask_check)
        vm = vt.nn.TransformerEncoder(vt.nn.TransformerEncoderLayer(E, heads, **vkw), 2,
                                      norm=vt.nn.LayerNorm(E) if norm else None, enable_nested_tensor=nested,
                                      mask_check=mask_check)
    sd = {k: v.detach().numpy().copy() for k, v in tm.state_dict().items()}
    for k in sd:
        if k.endswith("norm.bias") or k.endswith("norm1.bias"):
            sd[k] += 0.5  # a nonzero bias: the final norm of a zeroed position shows it
    tm.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})
    vm.load_state_dict({k: vt.from_numpy(v) for k, v in sd.items()})
    return tm, vm


def data(kind="right", float_mask=False):
    r = np.random.default_rng(0)
    x = r.standard_normal((B, T, E)).astype(np.float32)
    pad = np.zeros((B, T), bool)
    if kind == "right":
        pad[1, 4:] = True
        pad[2, 2:] = True
    elif kind == "left":
        pad[1, :2] = True
    mask = np.where(pad, -np.inf, 0.0).astype(np.float32) if float_mask else pad
    return x, mask


def outputs(tm, vm, x, kpm, grad=False, mask=None, train=False, src_grad=False):
    tm.train(train)
    vm.train(train)
    tx, vx = torch.from_numpy(x.copy()), vt.from_numpy(x.copy())
    if src_grad:
        tx.requires_grad_()
        vx.requires_grad_()
    args_t = dict(src_key_padding_mask=torch.from_numpy(kpm), mask=None if mask is None else torch.from_numpy(mask))
    args_v = dict(src_key_padding_mask=vt.from_numpy(kpm), mask=None if mask is None else vt.from_numpy(mask))
    if grad:
        return tm(tx, **args_t).detach().numpy(), vm(vx, **args_v).detach().numpy()
    with torch.no_grad(), vt.no_grad():
        return tm(tx, **args_t).numpy(), vm(vx, **args_v).numpy()


CASES = {
    "eval no_grad": dict(), "eval grad": dict(grad=True), "train": dict(train=True, grad=True),
    "train no_grad": dict(train=True), "src requires grad": dict(grad=True, src_grad=True),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("norm", [False, True])
@pytest.mark.parametrize("float_mask", [False, True])
def test_outputs_and_padded_positions_match_torch(case, norm, float_mask):
    tm, vm = pair(norm=norm)
    x, kpm = data(float_mask=float_mask)
    tout, vout = outputs(tm, vm, x, kpm, **CASES[case])
    np.testing.assert_allclose(vout, tout, rtol=1e-5, atol=1e-5)
    if case == "eval no_grad" and not norm:  # the fast path: zeros where the padding is
        pad = kpm if kpm.dtype == bool else kpm != 0
        assert not np.abs(vout[pad]).any()


@pytest.mark.parametrize("setup", ["left padded", "no padding", "with mask", "mask_check off (right)",
                                   "fast path off", "nested off", "norm_first", "odd heads", "gelu", "gelu module",
                                   "custom activation", "seq first"])
def test_when_torch_takes_the_fast_path(setup):
    layer = {"norm_first": dict(norm_first=True), "gelu": dict(activation="gelu"),
             "gelu module": dict(activation=torch.nn.GELU()), "custom activation": dict(activation=torch.tanh),
             "seq first": dict(batch_first=False)}.get(setup, {})
    vlayer = {k: (vt.nn.GELU() if isinstance(v, torch.nn.GELU) else vt.tanh if v is torch.tanh else v)
              for k, v in layer.items()}
    tm, vm = pair(heads=1 if setup == "odd heads" else 2, nested=setup != "nested off",
                  mask_check=setup != "mask_check off (right)", layer=layer, vlayer=vlayer)
    x, kpm = data({"left padded": "left", "no padding": "none"}.get(setup, "right"))
    if setup == "seq first":
        x = x.transpose(1, 0, 2).copy()
    mask = np.triu(np.ones((T, T), bool), 1) if setup == "with mask" else None
    if setup == "fast path off":
        torch.backends.mha.set_fastpath_enabled(False)
        vt.backends.mha.set_fastpath_enabled(False)
    try:
        tout, vout = outputs(tm, vm, x, kpm, mask=mask)
    finally:
        torch.backends.mha.set_fastpath_enabled(True)
        vt.backends.mha.set_fastpath_enabled(True)
    np.testing.assert_allclose(vout, tout, rtol=1e-5, atol=1e-5)


def test_attributes_and_warnings_match_torch():
    cases = [dict(), dict(norm_first=True), dict(batch_first=False), dict(bias=False), dict(activation="gelu"),
             dict(activation="relu"), dict(activation=torch.nn.ReLU()), dict(activation=torch.sigmoid)]
    for kw in cases:
        for heads in (2, 1):
            vkw = {k: (vt.nn.ReLU() if isinstance(v, torch.nn.ReLU) else vt.sigmoid if v is torch.sigmoid else v)
                   for k, v in kw.items()}
            tl = torch.nn.TransformerEncoderLayer(E, heads, 16, **kw)
            vl = vt.nn.TransformerEncoderLayer(E, heads, 16, **vkw)
            assert vl.activation_relu_or_gelu == tl.activation_relu_or_gelu, kw
            for nested in (True, False):
                with warnings.catch_warnings(record=True) as tw:
                    warnings.simplefilter("always")
                    te = torch.nn.TransformerEncoder(tl, 2, enable_nested_tensor=nested, mask_check=False)
                with warnings.catch_warnings(record=True) as vw:
                    warnings.simplefilter("always")
                    ve = vt.nn.TransformerEncoder(vl, 2, enable_nested_tensor=nested, mask_check=False)
                assert [str(w.message) for w in vw] == [str(w.message) for w in tw], (kw, heads, nested)
                assert (ve.enable_nested_tensor, ve.use_nested_tensor, ve.mask_check) == (
                    te.enable_nested_tensor, te.use_nested_tensor, te.mask_check)
    tl = torch.nn.TransformerEncoderLayer(E, 2, 16, batch_first=True)
    vl = vt.nn.TransformerEncoderLayer(E, 2, 16, batch_first=True)
    tl.norm2.eps = vl.norm2.eps = 1e-6
    with warnings.catch_warnings(record=True) as tw:
        warnings.simplefilter("always")
        torch.nn.TransformerEncoder(tl, 1)
    with warnings.catch_warnings(record=True) as vw:
        warnings.simplefilter("always")
        vt.nn.TransformerEncoder(vl, 1)
    assert [str(w.message) for w in vw] == [str(w.message) for w in tw] and len(vw) == 1


def test_mha_backend_switch():
    assert vt.backends.mha.get_fastpath_enabled() is True
    vt.backends.mha.set_fastpath_enabled(0)
    try:
        assert vt.backends.mha.get_fastpath_enabled() is False
    finally:
        vt.backends.mha.set_fastpath_enabled(True)
    assert vt.backends.mha.get_fastpath_enabled() is True
