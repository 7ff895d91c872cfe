"""vt.autocast against torch.autocast (CPU, bfloat16) where a region meets the rest of the library: checkpoint's
recomputation in backward, out= and in-place forms (never autocast), products torch decomposes (einsum,
multi_dot, chain_matmul), layers holding their function as a staticmethod, torch's older spellings, vt.linalg's
composites (float32 inside a region, as torch's native kernels), and addr / cross edge cases."""
import warnings

import numpy as np
import pytest
import torch
import vibetensor.torch as vt

rs = np.random.default_rng(0)
A = rs.standard_normal((4, 8)).astype(np.float32)
Wn = rs.standard_normal((8, 8)).astype(np.float32)


def t(m, a, dtype="float32"):
    x = torch.from_numpy(a.copy()) if m is torch else vt.from_numpy(a.copy())
    return x.to(getattr(m, dtype))


@pytest.mark.parametrize("use_reentrant", [False, True])
def test_checkpoint_recomputes_under_the_forwards_autocast_state(use_reentrant):
    grads = {}
    for m in (torch, vt):
        from importlib import import_module
        cp = import_module(m.__name__ + ".utils.checkpoint")
        w = t(m, Wn).requires_grad_(True)
        x = t(m, A).requires_grad_(True)

        def block(x):
            return m.nn.functional.linear(m.nn.functional.linear(x, w).relu(), w)

        with m.autocast("cpu", dtype=m.bfloat16):
            y = cp.checkpoint(block, x, use_reentrant=use_reentrant)
            loss = y.float().pow(2).sum()
        loss.backward()  # vt: RuntimeError mm: expected m1 and m2 to have the same dtype (bfloat16 != float32)
        grads[m] = np.asarray(w.grad.float().numpy())
    np.testing.assert_allclose(grads[vt], grads[torch], rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("op", ["mm", "matmul", "addmm"])
def test_out_variants_are_not_autocast(op):
    c = rs.standard_normal((4, 8)).astype(np.float32)
    res = {}
    for m in (torch, vt):
        args = (t(m, A), t(m, Wn)) if op != "addmm" else (t(m, c), t(m, A), t(m, Wn))
        out = t(m, np.zeros((4, 8), np.float32))
        with m.autocast("cpu", dtype=m.bfloat16):
            getattr(m, op)(*args, out=out)  # vt: RuntimeError expected out tensor to have dtype bfloat16
        res[m] = np.asarray(out.numpy())
    np.testing.assert_allclose(res[vt], res[torch], rtol=1e-5, atol=1e-5)  # torch computes in float32


@pytest.mark.parametrize("case", ["einsum", "multi_dot", "chain_matmul"])
def test_products_without_a_cpu_policy_still_autocast_inside(case):
    fns = {"einsum": lambda m: m.einsum("ij,kj->ik", t(m, A), t(m, Wn)),
           "multi_dot": lambda m: m.linalg.multi_dot([t(m, A), t(m, Wn), t(m, Wn)]),
           "chain_matmul": lambda m: m.chain_matmul(t(m, A), t(m, Wn), t(m, Wn))}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.autocast("cpu", dtype=torch.bfloat16):
            expected = fns[case](torch).dtype
        with vt.autocast("cpu", dtype=vt.bfloat16):
            got = fns[case](vt).dtype
    assert str(got).split(".")[-1] == str(expected).split(".")[-1]  # torch: bfloat16; vt: float32


@pytest.mark.parametrize("layer", ["MaxPool3d", "AvgPool3d", "AdaptiveAvgPool3d"])
def test_pool3d_modules_get_the_functional_policy(layer):
    v = rs.standard_normal((1, 1, 4, 4, 4)).astype(np.float32)
    dtypes = []
    for m in (torch, vt):
        with m.autocast("cpu", dtype=m.bfloat16):
            dtypes.append(str(getattr(m.nn, layer)(2)(t(m, v, "bfloat16")).dtype).split(".")[-1])
    assert dtypes[0] == dtypes[1]  # torch float32, vt bfloat16 (the classes hold the unwrapped function)


@pytest.mark.parametrize("name", ["is_autocast_cpu_enabled", "get_autocast_cpu_dtype", "get_autocast_gpu_dtype",
                                  "set_autocast_cpu_enabled"])
def test_deprecated_autocast_queries_exist(name):
    assert hasattr(torch, name) and hasattr(vt, name)


def test_cpu_amp_autocast_exists():
    assert hasattr(vt, "cpu") and hasattr(vt.cpu, "amp") and hasattr(vt.cpu.amp, "autocast")


_SPD = (lambda m_: (m_ @ m_.T).astype(np.float32))(rs.standard_normal((5, 5)) + 5 * np.eye(5))
_B = rs.standard_normal((5, 2)).astype(np.float32)
LINALG = {
    "inv": lambda m: m.linalg.inv(t(m, _SPD)),
    "solve": lambda m: m.linalg.solve(t(m, _SPD), t(m, _B)),
    "cholesky": lambda m: m.linalg.cholesky(t(m, _SPD)),
    "qr_r": lambda m: m.linalg.qr(t(m, _SPD))[1],
    "solve_triangular": lambda m: m.linalg.solve_triangular(t(m, np.triu(_SPD)), t(m, _B), upper=True),
    "matrix_exp": lambda m: m.linalg.matrix_exp(t(m, _SPD) / 50),
    "lstsq": lambda m: m.linalg.lstsq(t(m, _SPD), t(m, _B)).solution,  # vt: RuntimeError (dtype mismatch)
    "pinverse": lambda m: m.pinverse(t(m, _SPD)),  # torch: float32 (CPU fp32 list); vt: bfloat16
}


@pytest.mark.parametrize("name", list(LINALG))
def test_float32_linalg_is_not_silently_computed_in_bfloat16(name):
    """torch computes these in float32 inside a CPU autocast region (native kernels, or the fp32 list); vt's
    Python composites reach vt::mm inside, which the region casts to bfloat16."""
    fn = LINALG[name]
    expected = np.asarray(fn(vt).numpy())  # outside any region
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert fn(torch).dtype == torch.float32
    with vt.autocast("cpu", dtype=vt.bfloat16):
        got = fn(vt)
    assert got.dtype == vt.float32
    np.testing.assert_allclose(np.asarray(got.numpy()), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("beta", [0, False])
def test_addr_bool_beta_zero_broadcasts_input(beta):
    res = []
    for m in (torch, vt):
        inp, u, v = m.tensor([True, False, True]), m.tensor([True, False]), m.tensor([True, True, False])
        res.append(m.addr(inp, u, v, beta=beta).tolist())  # vt: RuntimeError from expand(input.shape)
    assert res[0] == res[1]


def test_cross_default_dim_with_broadcast_input():
    a, b = np.arange(3.0).reshape(1, 3), np.ones((3, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = torch.cross(torch.from_numpy(a), torch.from_numpy(b)).numpy()
        got = np.asarray(vt.cross(vt.from_numpy(a), vt.from_numpy(b)).numpy())  # vt: RuntimeError
    np.testing.assert_allclose(got, expected)


def test_inplace_forms_compute_in_their_own_dtype():
    c = rs.standard_normal((1, 4, 8)).astype(np.float32)
    res = {}
    for m in (torch, vt):
        x = t(m, c)
        with m.autocast("cpu", dtype=m.bfloat16):
            x.baddbmm_(t(m, A)[None], t(m, Wn)[None])
        assert x.dtype == m.float32
        res[m] = np.asarray(x.numpy())
    np.testing.assert_allclose(res[vt], res[torch], rtol=1e-5, atol=1e-5)


def test_addr_integer_beta_and_cross_dtypes_like_torch():
    for m in (torch, vt):
        with pytest.raises(RuntimeError, match="argument beta must not be a floating point number"):
            m.addr(m.zeros(2, 2, dtype=m.int64), m.ones(2, dtype=m.int64), m.ones(2, dtype=m.int64), beta=0.5)
        with pytest.raises(RuntimeError, match="expected scalar type Long but found Float"):
            m.cross(m.ones(3, dtype=m.int64), m.ones(3), dim=0)


@pytest.mark.parametrize("layer", ["LSTM", "GRU", "RNN"])
def test_recurrent_layers_run_in_torchs_dtypes(layer):
    """On the CPU torch's LSTM and Elman RNN kernels are autocast (their outputs and states come out bfloat16),
    its GRU decomposes and stays float32: vibetensor's unrolled layers follow, with close values."""
    x = rs.standard_normal((5, 3, 4)).astype(np.float32)
    res = []
    for m in (torch, vt):
        m.manual_seed(0)
        mod = getattr(m.nn, layer)(4, 8, num_layers=2)
        if m is vt:  # torch's weights, so that the values compare
            mod.load_state_dict({k: vt.from_numpy(v.detach().numpy().copy()) for k, v in res[0][0].items()})
        with m.autocast("cpu", dtype=m.bfloat16):
            y, state = mod(t(m, x))
        states = state if isinstance(state, tuple) else (state,)
        res.append((mod.state_dict(), [str(s.dtype).split(".")[-1] for s in (y, *states)], y.float().detach()))
    assert res[1][1] == res[0][1]
    np.testing.assert_allclose(np.asarray(res[1][2].numpy()), res[0][2].numpy(), rtol=3e-2, atol=3e-2)


def test_padding_and_index_copy_follow_torchs_cpu_lists():
    xs = [rs.standard_normal(s).astype(np.float32) for s in [(1, 2, 5), (1, 2, 5, 5), (1, 2, 5, 5, 5)]]
    for mode in ("reflect", "replicate", "circular", "constant"):
        got = []
        for m in (torch, vt):
            with m.autocast("cpu", dtype=m.bfloat16):
                got.append([str(m.nn.functional.pad(t(m, x, "bfloat16"), (1, 1) * (x.ndim - 2),
                                                     mode=mode).dtype).split(".")[-1] for x in xs])
        assert got[0] == got[1], mode
    res = []
    for m in (torch, vt):
        with m.autocast("cpu", dtype=m.bfloat16):
            out = t(m, np.zeros((3, 2), np.float32)).index_copy(0, m.tensor([0, 2]), t(m, np.ones((2, 2), np.float32),
                                                                                       "bfloat16"))
        res.append((str(out.dtype).split(".")[-1], out.float().tolist()))
    assert res[0] == res[1]
