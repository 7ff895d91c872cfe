"""torch.quasirandom.SobolEngine against torch: the direction-number state, unscrambled points bit for bit through
any sequence of draw / draw_base2 / fast_forward / reset (the internal quasi state and counter too), dtypes and
out=, torch's errors; scrambled sequences (vibetensor's random bits, so not torch's numbers) keep the seed's
reproducibility and the balance properties that make Sobol points useful."""
import numpy as np
import pytest
import torch

import vibetensor.torch as vt


@pytest.mark.parametrize("dimension", [1, 2, 3, 17, 250, 1024])
def test_state_and_unscrambled_draws_match_torch(dimension):
    te, ve = torch.quasirandom.SobolEngine(dimension), vt.quasirandom.SobolEngine(dimension)
    np.testing.assert_array_equal(ve.sobolstate.numpy(), te.sobolstate.numpy())
    assert ve.sobolstate.dtype == vt.int64 and repr(ve) == repr(te)
    script = [("draw", 1), ("draw", 7), ("ff", 5), ("draw", 16), ("draw", 0), ("reset",), ("ff", 3), ("draw", 1),
              ("base2", 2), ("draw", 3, "float64")]
    for step in script:
        if step[0] == "draw":
            kw = {} if len(step) < 3 else {"dtype": getattr(torch, step[2])}
            a = te.draw(step[1], **kw)
            b = ve.draw(step[1], **({} if not kw else {"dtype": getattr(vt, step[2])}))
            assert str(b.dtype).split(".")[-1] == str(a.dtype).split(".")[-1]
            assert tuple(b.shape) == tuple(a.shape)
            np.testing.assert_array_equal(b.numpy(), a.numpy())
        elif step[0] == "base2":
            np.testing.assert_array_equal(ve.draw_base2(step[1]).numpy(), te.draw_base2(step[1]).numpy())
        elif step[0] == "ff":
            assert ve.fast_forward(step[1]) is ve
            te.fast_forward(step[1])
        else:
            assert ve.reset() is ve
            te.reset()
        assert ve.num_generated == te.num_generated
        np.testing.assert_array_equal(ve.quasi.numpy(), te.quasi.numpy())


def test_out_and_errors_match_torch():
    te, ve = torch.quasirandom.SobolEngine(3), vt.quasirandom.SobolEngine(3)
    tout, vout = torch.empty(4, 3), vt.empty(4, 3)
    assert ve.draw(4, out=vout) is vout
    te.draw(4, out=tout)
    np.testing.assert_array_equal(vout.numpy(), tout.numpy())
    for m in (torch, vt):
        with pytest.raises(ValueError, match=r"Supported range of dimensionality for SobolEngine is \[1, 21201\]"):
            m.quasirandom.SobolEngine(0)
        with pytest.raises(ValueError, match=r"Supported range"):
            m.quasirandom.SobolEngine(21202)
        eng = m.quasirandom.SobolEngine(2)
        eng.draw(3)
        with pytest.raises(ValueError, match="n=3\\+2\\*\\*2=7"):
            eng.draw_base2(2)
    with pytest.raises(NotImplementedError, match="up to 1024"):
        vt.quasirandom.SobolEngine(1025)


@pytest.mark.parametrize("dimension", [1, 4])
def test_scrambled_sequences_are_seeded_and_balanced(dimension):
    a = vt.quasirandom.SobolEngine(dimension, scramble=True, seed=3)
    x = a.draw_base2(7).numpy()
    assert repr(a) == f"SobolEngine(dimension={dimension}, scramble=True, seed=3)"
    np.testing.assert_array_equal(vt.quasirandom.SobolEngine(dimension, scramble=True, seed=3).draw(128).numpy(), x)
    assert not np.array_equal(vt.quasirandom.SobolEngine(dimension, scramble=True, seed=4).draw(128).numpy(), x)
    assert (x >= 0).all() and (x < 1).all() and len(np.unique(x[:, 0])) == 128
    for j in range(dimension):  # every dyadic interval of length 1/128 holds exactly one point
        np.testing.assert_array_equal(np.histogram(x[:, j], bins=128, range=(0, 1))[0], np.ones(128))
    if dimension > 1:  # and every 1/8 x 1/16 box of the first two coordinates one point
        boxes = np.histogram2d(x[:, 0], x[:, 1], bins=(8, 16), range=((0, 1), (0, 1)))[0]
        np.testing.assert_array_equal(boxes, np.ones((8, 16)))
    t = torch.quasirandom.SobolEngine(dimension, scramble=True, seed=3).draw_base2(7).numpy()
    for j in range(dimension):  # torch's scrambled points have the same structure (its own random bits)
        np.testing.assert_array_equal(np.histogram(t[:, j], bins=128, range=(0, 1))[0], np.ones(128))
