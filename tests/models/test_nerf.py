"""The NeRF of tests/models/nerf.py, loaded once with torch and once with vibetensor swapped in for torch, with the
same weights: the positional encoding, ray sampling (uniform, stratified with passed-in jitter, linear in
disparity), volume rendering against a numpy reference (exclusive cumprod transmittance, weights summing to the
opacity, opaque samples cutting off what lies behind them), hierarchical sampling by searchsorted(right=True) on the
CDF (values on the CDF's knots, zero weights, the drawn depths' distribution), the full two-pass render and every
gradient (float32, float64, with and without view directions), rays from a pinhole camera (and NDC rays) rendered as
an image batch, Adam steps on a fixed batch of rays, and a state_dict round trip that leaves the non-persistent
frequency buffer out. On the CPU and, where both see a GPU, on the GPU (marker cuda)."""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from side_by_side import both, close, DEVICES, load_torch_weights, train_side_by_side
from swap_import import pair

tnerf, vnerf = pair("nerf.py")


def build(seed=0, device="cpu", dtype="float32", **cfg):
    torch.manual_seed(seed)
    tm = tnerf.NeRFRenderer(**cfg)
    vm = vnerf.NeRFRenderer(**cfg)
    load_torch_weights(vm, tm)
    if dtype == "float64":
        tm.double()
        vm.double()
    return tm.to(device), vm.to(device)


def rays(seed, n=5, n_coarse=8, n_fine=8, dtype=np.float32):
    r = np.random.default_rng(seed)
    o = r.standard_normal((n, 3)) * 0.3
    d = r.standard_normal((n, 3))
    jitter = r.uniform(size=(n, n_coarse))
    u = np.sort(r.uniform(size=(n, n_fine)), -1)
    return [a.astype(dtype) for a in (o, d, jitter, u)]


def test_positional_encoding_matches_torch_and_the_formula():
    x = np.random.default_rng(0).standard_normal((2, 4, 3)).astype(np.float32)
    (tx,), (vx,) = both("cpu", x)
    for kw in (dict(), dict(include_input=False), dict(log_sampling=False)):
        te, ve = tnerf.PositionalEncoding(5, **kw), vnerf.PositionalEncoding(5, **kw)
        close(ve.freq_bands, te.freq_bands, rtol=0, atol=0)
        out = ve(vx)
        assert tuple(out.shape) == (2, 4, ve.out_dim(3)) == tuple(te(tx).shape)
        close(out, te(tx), rtol=1e-6, atol=1e-6)
    bands = 2.0 ** np.arange(5)
    expect = np.concatenate([x] + [f(x * b) for b in bands for f in (np.sin, np.cos)], -1)
    np.testing.assert_allclose(vnerf.PositionalEncoding(5)(vx).numpy(), expect, rtol=1e-5, atol=1e-6)
    assert "freq_bands" not in vnerf.PositionalEncoding(5).state_dict()  # persistent=False, as torch's


@pytest.mark.parametrize("lindisp", [False, True])
def test_ray_sampling_matches_torch(lindisp):
    o, d, jitter, _ = rays(1)
    (to, td, tj), (vo, vd, vj) = both("cpu", o, d, jitter)
    for jit in (None, "jitter"):
        tz, tp = tnerf.sample_along_rays(to, td, 2.0, 6.0, 8, tj if jit else None, lindisp)
        vz, vp = vnerf.sample_along_rays(vo, vd, 2.0, 6.0, 8, vj if jit else None, lindisp)
        close(vz, tz, rtol=1e-6, atol=1e-6)
        close(vp, tp, rtol=1e-6, atol=1e-6)
        z = vz.numpy()
        assert (np.diff(z, axis=-1) > 0).all() and z.min() >= 2.0 - 1e-6 and z.max() <= 6.0 + 1e-6
    assert vz.dtype == vt.float32 and tuple(vp.shape) == (5, 8, 3)


def numpy_render(raw, z, d):
    dists = np.concatenate([np.diff(z, axis=-1), np.full(z[..., :1].shape, 1e10)], -1)
    dists = dists * np.linalg.norm(d, axis=-1, keepdims=True)
    alpha = 1 - np.exp(-np.maximum(raw[..., 3], 0) * dists)
    trans = np.cumprod(np.concatenate([np.ones_like(alpha[:, :1]), 1 - alpha + 1e-10], -1), -1)[:, :-1]
    w = alpha * trans
    rgb = (w[..., None] / (1 + np.exp(-raw[..., :3]))).sum(-2)
    return rgb, w, (w * z).sum(-1), w.sum(-1)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("white_bkgd", [False, True])
def test_volume_rendering_matches_torch_and_numpy(white_bkgd, device):
    r = np.random.default_rng(2)
    raw = r.standard_normal((4, 9, 4)) * 2
    raw[1, 3, 3] = 1e4  # an opaque sample: nothing behind it contributes
    raw[2, :, 3] = -5.0  # an empty ray: no opacity, the background shows
    z = np.sort(r.uniform(2, 6, (4, 9)), -1)
    d = r.standard_normal((4, 3))
    (traw, tz, td), (vraw, vz, vd) = both(device, raw, z, d)
    for a in (traw, vraw):
        a.requires_grad_()
    tout = tnerf.raw2outputs(traw, tz, td, white_bkgd)
    vout = vnerf.raw2outputs(vraw, vz, vd, white_bkgd)
    for v, t in zip(vout, tout):
        close(v, t, rtol=1e-10, atol=1e-12)
    rgb, w, depth, acc = numpy_render(raw, z, d)
    np.testing.assert_allclose(vout[3].detach().cpu().numpy(), w, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(vout[0].detach().cpu().numpy(), rgb + (1 - acc[:, None]) * white_bkgd, rtol=1e-10)
    np.testing.assert_allclose(vout[4].detach().cpu().numpy(), depth, rtol=1e-10)
    weights = vout[3].detach().cpu().numpy()
    assert (weights[1, 4:] < 1e-9).all() and acc[2] < 1e-9 and (acc <= 1 + 1e-9).all()
    # gradients through the cumprod (with a transmittance of 0 after the opaque sample) and the norm
    wt = np.linspace(-1, 1, 4 * 3).reshape(4, 3)
    tg = torch.autograd.grad((tout[0] * torch.from_numpy(wt).to(device)).sum() + tout[4].sum(), traw)[0]
    vg = vt.autograd.grad((vout[0] * vt.from_numpy(wt).to(device)).sum() + vout[4].sum(), vraw)[0]
    close(vg, tg, rtol=1e-8, atol=1e-12)


def test_sample_pdf_inverts_the_cdf_as_torch():
    r = np.random.default_rng(3)
    bins = np.sort(r.uniform(2, 6, (6, 9)), -1)
    weights = r.uniform(0, 1, (6, 8))
    weights[1] = 0.0  # no weight anywhere: the 1e-5 floor makes it uniform
    weights[2, :7] = 0.0  # all weight in the last bin
    pdf = (weights + 1e-5) / (weights + 1e-5).sum(-1, keepdims=True)
    cdf = np.concatenate([np.zeros((6, 1)), np.cumsum(pdf, -1)], -1)
    u = np.concatenate([cdf[:, 2:5], r.uniform(size=(6, 4)), np.zeros((6, 1)), np.ones((6, 1))], -1)
    (tb, tw, tu), (vb, vw, vu) = both("cpu", bins, weights, u)
    for tu_, vu_ in ((tu, vu), (None, None)):
        ts, vs = tnerf.sample_pdf(tb, tw, 9, tu_), vnerf.sample_pdf(vb, vw, 9, vu_)
        close(vs, ts, rtol=1e-12, atol=1e-12)
    # right=True puts a value equal to a knot in the bin that starts there
    inds = vt.searchsorted(vt.from_numpy(cdf), vu, right=True).numpy()
    np.testing.assert_array_equal(inds, torch.searchsorted(torch.from_numpy(cdf), tu, right=True).numpy())
    np.testing.assert_array_equal(inds[:, :3], np.tile([3, 4, 5], (6, 1)))
    s = vs.numpy()
    assert (s >= bins[:, :1] - 1e-12).all() and (s <= bins[:, -1:] + 1e-12).all()
    assert (s[2] >= bins[2, 7] - 1e-3).mean() > 0.8  # most draws land in the heavy bin


def test_sample_pdf_draws_follow_the_weights():
    """Many evenly spaced draws: the share falling in each bin is that bin's weight."""
    bins = np.linspace(0, 1, 5)[None]
    weights = np.array([[0.1, 0.6, 0.0, 0.3]])
    (tb, tw), (vb, vw) = both("cpu", bins, weights)
    s = vnerf.sample_pdf(vb, vw, 4000).numpy()[0]
    close(vnerf.sample_pdf(vb, vw, 4000), tnerf.sample_pdf(tb, tw, 4000), rtol=1e-12, atol=1e-12)
    share = np.histogram(s, bins=bins[0])[0] / len(s)
    np.testing.assert_allclose(share, weights[0] / weights.sum(), atol=2e-3)


def render_both(tm, vm, device, dtype=np.float32, seed=4, stratified=True):
    o, d, jitter, u = rays(seed, dtype=dtype)
    (to, td, tj, tu), (vo, vd, vj, vu) = both(device, o, d, jitter, u)
    if not stratified:
        return tm(to, td), vm(vo, vd)
    return tm(to, td, tj, tu), vm(vo, vd, vj, vu)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("cfg", [dict(), dict(use_viewdirs=False, white_bkgd=True)], ids=["viewdirs", "plain"])
@pytest.mark.parametrize("stratified", [True, False])
def test_render_and_gradients_match_torch(stratified, cfg, dtype, device):
    tm, vm = build(seed=5, device=device, dtype=dtype, **cfg)
    assert list(vm.state_dict()) == list(tm.state_dict())
    tout, vout = render_both(tm, vm, device, np.float32 if dtype == "float32" else np.float64,
                             stratified=stratified)
    assert list(vout) == list(tout)
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == "float32" else dict(rtol=1e-9, atol=1e-11)
    for k in tout:
        assert vout[k].dtype == getattr(vt, str(tout[k].dtype).split(".")[-1]), k
        close(vout[k], tout[k], **tol)
    z = vout["z_vals"].detach().cpu().numpy()
    assert (np.diff(z, axis=-1) >= 0).all() and z.shape == (5, 16)
    assert vout["z_samples"].grad_fn is None and vout["z_samples"].requires_grad is False
    tl = tnerf.img2mse(tout["rgb_map"], 0.5) + tnerf.img2mse(tout["rgb0"], 0.5)
    vl = vnerf.img2mse(vout["rgb_map"], 0.5) + vnerf.img2mse(vout["rgb0"], 0.5)
    tpsnr, vpsnr = tnerf.mse2psnr(tl), vnerf.mse2psnr(vl)
    assert tuple(vpsnr.shape) == tuple(tpsnr.shape) == (1,) and vpsnr.dtype == getattr(
        vt, str(tpsnr.dtype).split(".")[-1])
    close(vpsnr, tpsnr, **tol)
    tl.backward()
    vl.backward()
    tgrads = dict(tm.named_parameters())
    for name, p in vm.named_parameters():
        assert p.grad is not None, name
        close(p.grad, tgrads[name].grad, rtol=1e-3 if dtype == "float32" else 1e-7, atol=1e-7)
    assert np.abs(vm.coarse.pts_linears[0].weight.grad.cpu().numpy()).max() > 0  # the coarse net is trained too


@pytest.mark.parametrize("device", DEVICES)
def test_adam_steps_match_torch(device):
    tm, vm = build(seed=6, device=device)
    topt = torch.optim.Adam(tm.parameters(), lr=5e-3, betas=(0.9, 0.999))
    vopt = vt.optim.Adam(vm.parameters(), lr=5e-3, betas=(0.9, 0.999))
    target = np.random.default_rng(6).uniform(size=(5, 3)).astype(np.float32)
    (ttarget,), (vtarget,) = both(device, target)

    def losses_at(step):
        tout, vout = render_both(tm, vm, device, seed=40 + step % 2)
        tl = tnerf.img2mse(tout["rgb_map"], ttarget) + tnerf.img2mse(tout["rgb0"], ttarget)
        vl = vnerf.img2mse(vout["rgb_map"], vtarget) + vnerf.img2mse(vout["rgb0"], vtarget)
        return tl, vl

    train_side_by_side(tm, vm, topt, vopt, losses_at, 6)


def test_state_dict_round_trip_and_eval():
    tm, vm = build(seed=7)
    _, other = build(seed=8)
    sd = vm.state_dict()
    assert not any("freq_bands" in k for k in sd) and len(sd) == len(tm.state_dict())
    other.load_state_dict(sd)
    other.eval()
    assert not other.training and not other.coarse.training
    with vt.no_grad():
        a = other(*[vt.from_numpy(x) for x in rays(9)])
        b = vm(*[vt.from_numpy(x) for x in rays(9)])
    for k in a:
        close(a[k], b[k], rtol=0, atol=0)
    assert a["rgb_map"].requires_grad is False


def camera(seed):
    """Intrinsics and a camera-to-world pose (a rotation about z then x, and a translation)."""
    r = np.random.default_rng(seed)
    a, b = r.uniform(-1, 1, 2)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    c2w = np.concatenate([rz @ rx, r.standard_normal((3, 1))], 1).astype(np.float32)
    K = np.array([[5.0, 0, 3.5], [0, 5.0, 2.5], [0, 0, 1]], np.float32)
    return K, c2w


def test_camera_rays_match_torch_and_numpy():
    H, W = 5, 7
    K, c2w = camera(10)
    (tK, tc2w), (vK, vc2w) = both("cpu", K, c2w)
    to, td = tnerf.get_rays(H, W, tK, tc2w)
    vo, vd = vnerf.get_rays(H, W, vK, vc2w)
    assert tuple(vd.shape) == (H, W, 3) and tuple(vo.shape) == (H, W, 3) and vo.stride()[:2] == (0, 0)
    close(vo, to, rtol=0, atol=0)
    close(vd, td, rtol=1e-6, atol=1e-6)
    jj, ii = np.mgrid[0:H, 0:W]
    dirs = np.stack([(ii - 3.5) / 5.0, -(jj - 2.5) / 5.0, -np.ones((H, W))], -1)
    np.testing.assert_allclose(vd.numpy(), dirs @ c2w[:3, :3].T, rtol=1e-5, atol=1e-6)
    # NDC rays of the same camera: the origins on the near plane map to z = -1
    ton, tdn = tnerf.ndc_rays(H, W, 5.0, 1.0, to, td)
    von, vdn = vnerf.ndc_rays(H, W, 5.0, 1.0, vo, vd)
    close(von, ton, rtol=1e-5, atol=1e-5)
    close(vdn, tdn, rtol=1e-5, atol=1e-5)


def test_rendering_an_image_of_rays_matches_torch():
    """The rays of a small image, flattened to a batch and rendered by both renderers."""
    tm, vm = build(seed=11)
    K, c2w = camera(11)
    (tK, tc2w), (vK, vc2w) = both("cpu", K, c2w)
    tout = tm(*(x.reshape(-1, 3) for x in tnerf.get_rays(3, 4, tK, tc2w)))
    vout = vm(*(x.reshape(-1, 3) for x in vnerf.get_rays(3, 4, vK, vc2w)))
    for k in ("rgb_map", "depth_map", "acc_map", "z_vals"):
        close(vout[k], tout[k], rtol=1e-4, atol=1e-5)
    assert tuple(vout["rgb_map"].reshape(3, 4, 3).shape) == (3, 4, 3)
