"""torch.amp.GradScaler: dynamic loss scaling for mixed-precision training, with torch's API, error messages,
state_dict keys and scale arithmetic.

scale(loss) multiplies by the current scale (a float32 0-dim tensor made on the first output's device);
unscale_(optimizer) divides the optimizer's gradients by it in place and records, per device, whether any of
them is inf or NaN; step(optimizer) skips optimizer.step() when one was; update() backs the scale off after a
skipped step and grows it after growth_interval consecutive clean ones.

Note [Scaler without host syncs]
Only step() reads a value back to the host, once (whether to run optimizer.step()). unscale_() checks a whole
device's gradients in two multi-tensor calls - the infinity norm of each (NaN and inf survive a max of absolute
values, and nothing finite overflows it; each in its gradient's dtype, so a float64 gradient is judged in its
own range) and one in-place multiply by the reciprocal scale - and update() computes the new scale and growth
tracker with where() on the device. The reciprocal is taken in float64 and rounded to float32, and growth and
backoff multiply the float32 scale in float64 before rounding back, as torch does, so scales agree bit for bit.
"""
import warnings
from collections import defaultdict
from enum import Enum

from ..._C import core as _core
from ... import cuda as _cuda
from .._foreach import _foreach_mul_, _foreach_norm
from .._functions import Tensor, full, stack, where

_f32, _f64, _i32 = _core.dtype.float32, _core.dtype.float64, _core.dtype.int32

_NEW_SCALE_REASON = ("new_scale should be a float or a 1-element torch.cuda.FloatTensor or torch.FloatTensor with "
                     "requires_grad=False.")


class OptState(Enum):
    READY = 0
    UNSCALED = 1
    STEPPED = 2


def _fresh_optimizer_state():
    # module-level (not a lambda) so a scaler pickles
    return {"stage": OptState.READY, "found_inf_per_device": {}}


def _any_non_finite(grads):
    """1.0 (float32, 0-dim, on the gradients' device) if any element of the nonempty `grads` is inf or NaN."""
    by_dtype = {}
    for n in _foreach_norm(grads, float("inf")):  # each norm in its gradient's dtype: a float64 one stays in range
        by_dtype.setdefault(n.dtype, []).append(n)
    finite = None
    for norms in by_dtype.values():
        f = stack(norms).isfinite().all()
        finite = f if finite is None else finite.logical_and(f)
    return finite.logical_not().to(_f32)


class GradScaler:
    def __init__(self, device="cuda", init_scale=2.0**16, growth_factor=2.0, backoff_factor=0.5,
                 growth_interval=2000, enabled=True):
        self._device = device
        self._enabled = enabled
        if device == "cuda" and enabled and not _cuda.is_available():
            warnings.warn("torch.cuda.amp.GradScaler is enabled, but CUDA is not available.  Disabling.")
            self._enabled = False
        if not self._enabled:
            return  # as torch's: a disabled scaler keeps no hyperparameters
        assert growth_factor > 1.0, "The growth factor must be > 1.0."
        assert backoff_factor < 1.0, "The backoff factor must be < 1.0."
        self._init_scale = init_scale
        self._scale = None
        self._growth_factor = growth_factor
        self._backoff_factor = backoff_factor
        self._growth_interval = growth_interval
        self._init_growth_tracker = 0
        self._growth_tracker = None
        self._per_optimizer_states = defaultdict(_fresh_optimizer_state)

    def _check_scale_growth_tracker(self, funcname):
        fix = "This may indicate your script did not use scaler.scale(loss or outputs) earlier in the iteration."
        assert self._scale is not None, f"Attempted {funcname} but _scale is None.  " + fix
        assert self._growth_tracker is not None, f"Attempted {funcname} but _growth_tracker is None.  " + fix
        return self._scale, self._growth_tracker

    def _lazy_init_scale_growth_tracker(self, dev):
        assert self._growth_tracker is None, "_growth_tracker initialized before _scale"
        self._scale = full((), float(self._init_scale), dtype=_f32, device=dev)
        self._growth_tracker = full((), int(self._init_growth_tracker), dtype=_i32, device=dev)

    def scale(self, outputs):
        """outputs (a tensor, or lists/tuples/iterables of them, nested) times the scale; lists and tuples keep
        their type, other iterables come back as a lazy map, as torch's."""
        if not self._enabled:
            return outputs
        on_device = {}  # the scale copied once per device met

        def scaled(val):
            if isinstance(val, Tensor):
                if self._scale is None:
                    self._lazy_init_scale_growth_tracker(val.device)
                dev = val.device
                if dev not in on_device:
                    on_device[dev] = self._scale.to(dev)
                return val * on_device[dev]
            if isinstance(val, (list, tuple)):
                return type(val)(map(scaled, val))
            if hasattr(val, "__iter__"):
                return map(scaled, val)
            raise ValueError("outputs must be a Tensor or an iterable of Tensors")

        return scaled(outputs)

    def _unscale_grads_(self, optimizer, inv_scale, found_inf, allow_fp16):
        """Multiplies every gradient of `optimizer` by inv_scale in place; returns {device: found_inf there}, a
        float32 0-dim tensor that is 1.0 when a gradient on that device held inf or NaN (Note [Scaler without
        host syncs])."""
        by_device = {}
        for group in optimizer.param_groups:
            for p in group["params"]:
                g = p.grad
                if g is None:
                    continue
                if not allow_fp16 and g.dtype == _core.dtype.float16:
                    raise ValueError("Attempting to unscale FP16 gradients.")
                by_device.setdefault(g.device, []).append(g)
        per_device = {}
        for dev, grads in by_device.items():
            found = found_inf.to(dev)
            grads = [g for g in grads if g.numel()]  # nothing to check or scale (and no infinity norm) in these
            if grads:
                found.copy_(found.maximum(_any_non_finite(grads)))
                _foreach_mul_(grads, inv_scale.to(dev))
            per_device[dev] = found
        return per_device

    def unscale_(self, optimizer):
        """Divides the gradients of `optimizer` by the scale in place (at most once between two update()s), e.g.
        to clip them before step()."""
        if not self._enabled:
            return
        self._check_scale_growth_tracker("unscale_")
        state = self._per_optimizer_states[id(optimizer)]
        if state["stage"] is OptState.UNSCALED:
            raise RuntimeError("unscale_() has already been called on this optimizer since the last update().")
        if state["stage"] is OptState.STEPPED:
            raise RuntimeError("unscale_() is being called after step().")
        inv_scale = self._scale.to(_f64).reciprocal().to(_f32)
        found_inf = full((), 0.0, dtype=_f32, device=self._scale.device)
        state["found_inf_per_device"] = self._unscale_grads_(optimizer, inv_scale, found_inf, False)
        state["stage"] = OptState.UNSCALED

    def _maybe_opt_step(self, optimizer, state, *args, **kwargs):
        founds = list(state["found_inf_per_device"].values())
        total = founds[0]
        for f in founds[1:]:
            total = total + f.to(total.device)
        if total.item():  # the one host read of an iteration
            return None
        return optimizer.step(*args, **kwargs)

    def step(self, optimizer, *args, **kwargs):
        """optimizer.step(*args, **kwargs) unless the (unscaled) gradients hold inf or NaN; its return value, or
        None when skipped."""
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        if "closure" in kwargs:
            raise RuntimeError("Closure use is not currently supported if GradScaler is enabled.")
        self._check_scale_growth_tracker("step")
        state = self._per_optimizer_states[id(optimizer)]
        if state["stage"] is OptState.STEPPED:
            raise RuntimeError("step() has already been called since the last update().")
        if state["stage"] is OptState.READY:
            self.unscale_(optimizer)
        assert len(state["found_inf_per_device"]) > 0, "No inf checks were recorded for this optimizer."
        retval = self._maybe_opt_step(optimizer, state, *args, **kwargs)
        state["stage"] = OptState.STEPPED
        return retval

    def update(self, new_scale=None):
        """Sets the scale to new_scale (a float, or a 1-element tensor), or else backs it off if any optimizer
        stepped since the last update() saw inf/NaN and grows it after growth_interval clean steps in a row."""
        if not self._enabled:
            return
        scale, tracker = self._check_scale_growth_tracker("update")
        if new_scale is not None:
            if isinstance(new_scale, float):
                scale.fill_(new_scale)
            else:
                assert new_scale.device.type == self._device, _NEW_SCALE_REASON
                assert new_scale.numel() == 1, _NEW_SCALE_REASON
                assert new_scale.requires_grad is False, _NEW_SCALE_REASON
                scale.copy_(new_scale)
        else:
            founds = [f.to(scale.device) for st in self._per_optimizer_states.values()
                      for f in st["found_inf_per_device"].values()]
            assert len(founds) > 0, "No inf checks were recorded prior to update."
            found = founds[0]
            for f in founds[1:]:
                found = found + f
            self._update_scale_(scale, tracker, found)
        self._per_optimizer_states = defaultdict(_fresh_optimizer_state)

    def _update_scale_(self, scale, tracker, found):
        clean = found == 0
        streak = tracker + 1
        due = clean.logical_and(streak == self._growth_interval)
        grown = (scale.to(_f64) * self._growth_factor).to(_f32)
        backed = (scale.to(_f64) * self._backoff_factor).to(_f32)
        # growth that would overflow float32 keeps the scale (and still restarts the streak)
        kept = where(due.logical_and(grown.isfinite()), grown, scale)
        new_tracker = where(clean.logical_and(due.logical_not()), streak, tracker * 0)
        scale.copy_(where(clean, kept, backed))
        tracker.copy_(new_tracker)

    def _get_scale_async(self):
        return self._scale

    def get_scale(self):
        """The current scale as a Python float (init_scale before the first scale(); 1.0 when disabled)."""
        if not self._enabled:
            return 1.0
        return self._init_scale if self._scale is None else self._scale.item()

    def get_growth_factor(self):
        return self._growth_factor

    def set_growth_factor(self, new_factor):
        self._growth_factor = new_factor

    def get_backoff_factor(self):
        return self._backoff_factor

    def set_backoff_factor(self, new_factor):
        self._backoff_factor = new_factor

    def get_growth_interval(self):
        return self._growth_interval

    def set_growth_interval(self, new_interval):
        self._growth_interval = new_interval

    def _get_growth_tracker(self):
        if not self._enabled:
            return 0
        return self._init_growth_tracker if self._growth_tracker is None else self._growth_tracker.item()

    def is_enabled(self):
        return self._enabled

    def state_dict(self):
        """torch's keys: scale, growth_factor, backoff_factor, growth_interval, _growth_tracker ({} when
        disabled)."""
        if not self._enabled:
            return {}
        return {"scale": self.get_scale(), "growth_factor": self._growth_factor,
                "backoff_factor": self._backoff_factor, "growth_interval": self._growth_interval,
                "_growth_tracker": self._get_growth_tracker()}

    def load_state_dict(self, state_dict):
        if not self._enabled:
            return
        if len(state_dict) == 0:
            raise RuntimeError("The source state dict is empty, possibly because it was saved from a disabled "
                               "instance of GradScaler.")
        self._init_scale = state_dict["scale"]
        if self._scale is not None:
            self._scale.fill_(state_dict["scale"])
        self._growth_factor = state_dict["growth_factor"]
        self._backoff_factor = state_dict["backoff_factor"]
        self._growth_interval = state_dict["growth_interval"]
        self._init_growth_tracker = state_dict["_growth_tracker"]
        if self._growth_tracker is not None:
            self._growth_tracker.fill_(state_dict["_growth_tracker"])

    def __getstate__(self):
        # a pickled scaler carries its scale as plain numbers and remakes the tensors lazily, as torch's
        state = self.__dict__.copy()
        if self._enabled:
            assert len(self._per_optimizer_states) == 0, ("A GradScaler instance may only be pickled at the "
                                                          "beginning of an iteration, or at the end after "
                                                          "scaler.update().")
            state["_init_scale"] = self.get_scale()
            state["_init_growth_tracker"] = self._get_growth_tracker()
            state["_scale"] = None
            state["_growth_tracker"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)

    def _check_inf_per_device(self, optimizer):
        """Records and returns {device: found_inf} for the optimizer's gradients without changing them."""
        scale, _ = self._check_scale_growth_tracker("_check_inf_per_device")
        one = full((), 1.0, dtype=_f32, device=scale.device)
        found_inf = full((), 0.0, dtype=_f32, device=scale.device)
        found = self._unscale_grads_(optimizer, one, found_inf, True)
        self._per_optimizer_states[id(optimizer)]["found_inf_per_device"] = found
        return found

    def _found_inf_per_device(self, optimizer):
        return self._per_optimizer_states[id(optimizer)]["found_inf_per_device"]
