"""The ``Distribution`` base class of vt.distributions (torch.distributions.Distribution's interface: batch/event
shapes, sample/rsample/log_prob/entropy, mean/stddev/variance, argument and sample validation) plus the helpers
``broadcast_all``, ``lazy_property`` and the probs<->logits conversions the concrete distributions share."""
import numbers

import vibetensor.torch as vt

from .constraints import is_dependent

__all__ = ["Distribution", "broadcast_all", "lazy_property", "logits_to_probs", "probs_to_logits", "clamp_probs"]


def broadcast_all(*values):
    """Broadcast tensors and Python numbers to a common shape; numbers become tensors of the first tensor's dtype
    (or the default dtype when none is a tensor), as torch.distributions.utils.broadcast_all does."""
    if not all(vt.is_tensor(v) or isinstance(v, numbers.Number) for v in values):
        raise ValueError("Input arguments must all be instances of numbers.Number, torch.Tensor or objects "
                         "implementing __torch_function__.")
    if all(vt.is_tensor(v) for v in values):
        return vt.broadcast_tensors(*values)
    like = next((v for v in values if vt.is_tensor(v)), None)
    dtype = like.dtype if like is not None else vt.get_default_dtype()
    device = like.device if like is not None else "cpu"
    values = [v if vt.is_tensor(v) else vt.tensor(float(v), dtype=dtype, device=device) for v in values]
    return vt.broadcast_tensors(*values)


class lazy_property:
    """Computed once per instance on first access, then cached in the instance dict (so it is not recomputed and
    the class attribute is shadowed), like torch.distributions.utils.lazy_property."""

    def __init__(self, wrapped):
        self.wrapped = wrapped
        self.__doc__ = wrapped.__doc__
        self.__name__ = wrapped.__name__

    def __get__(self, instance, obj_type=None):
        if instance is None:
            return self
        # enable_grad: a parameter derived lazily inside a no_grad block must still carry its graph later.
        with vt.enable_grad():
            value = self.wrapped(instance)
        instance.__dict__[self.wrapped.__name__] = value
        return value


def clamp_probs(probs):
    eps = vt.finfo(probs.dtype).eps
    return probs.clamp(min=eps, max=1 - eps)


def logits_to_probs(logits, is_binary=False):
    return vt.sigmoid(logits) if is_binary else vt.softmax(logits, dim=-1)


def probs_to_logits(probs, is_binary=False):
    ps_clamped = clamp_probs(probs)  # keeps log finite at exactly 0 or 1
    if is_binary:
        return vt.log(ps_clamped) - vt.log1p(-ps_clamped)
    return vt.log(ps_clamped)


def _all_true(mask):
    return bool(mask.all().item())


def _fmt_param(v):
    # torch formats the parameter with an f-string: a 0-dim tensor prints as its Python number.
    if v.numel() != 1:
        return f"Size({list(v.shape)})"
    return str(v.item()) if v.dim() == 0 else str(v)


class Distribution:
    """Abstract base of probability distributions; subclasses set ``arg_constraints``, ``support`` and implement
    the methods they support (the rest raise NotImplementedError as in torch)."""
    has_rsample = False
    has_enumerate_support = False
    _validate_args = __debug__  # torch's default (validation on unless python -O)

    @staticmethod
    def set_default_validate_args(value):
        if value not in [True, False]:
            raise ValueError
        Distribution._validate_args = value

    def __init__(self, batch_shape=(), event_shape=(), validate_args=None):
        self._batch_shape = tuple(batch_shape)
        self._event_shape = tuple(event_shape)
        if validate_args is not None:
            self._validate_args = validate_args
        if self._validate_args:
            for param, constraint in self.arg_constraints.items():
                if is_dependent(constraint):
                    continue
                if param not in self.__dict__ and isinstance(getattr(type(self), param), lazy_property):
                    continue  # a lazily derived parameter is valid when its source is
                value = getattr(self, param)
                if not _all_true(constraint.check(value)):
                    raise ValueError(
                        f"Expected parameter {param} ({type(value).__name__} of shape {tuple(value.shape)}) "
                        f"of distribution {repr(self)} to satisfy the constraint {repr(constraint)}, "
                        f"but found invalid values:\n{value}")

    def expand(self, batch_shape, _instance=None):
        """A view of this distribution with its parameters expanded to ``batch_shape`` (subclasses override)."""
        raise NotImplementedError

    def _get_checked_instance(self, cls, _instance=None):
        # A subclass with its own __init__ must override expand too, or the bare instance would be incomplete.
        if _instance is None and type(self).__init__ != cls.__init__:
            raise NotImplementedError(
                f"Subclass {self.__class__.__name__} of {cls.__name__} that defines a custom __init__ method "
                "must also define a custom .expand() method.")
        return self.__new__(type(self)) if _instance is None else _instance

    def _broadcast_params(self, **params):
        """Sets each parameter, broadcast against the others (Python numbers become tensors), and returns the batch
        shape they give: () when every one is a number (a 0-dim tensor then), else their common shape."""
        values = broadcast_all(*params.values())
        for name, value in zip(params, values):
            setattr(self, name, value)
        return tuple(values[0].shape)

    def _expand_params(self, cls, batch_shape, names, _instance=None, event_dims=0):
        """The shared body of expand(): a new instance whose parameters ``names`` (those present) are expanded to
        batch_shape plus their ``event_dims`` trailing dims."""
        new = self._get_checked_instance(cls, _instance)
        batch_shape = tuple(batch_shape)
        for name in names:
            if name in self.__dict__:
                value = self.__dict__[name]
                tail = tuple(value.shape[value.dim() - event_dims:]) if event_dims else ()
                new.__dict__[name] = value.expand(batch_shape + tail)
        return self._finish_expand(new, batch_shape)

    def _finish_expand(self, new, batch_shape):
        """The last step of every expand(): ``new`` gets batch_shape, this event shape and this instance's
        validation setting (its parameters were expanded already, so they are not checked again)."""
        Distribution.__init__(new, batch_shape, self._event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @property
    def batch_shape(self):
        return self._batch_shape

    @property
    def event_shape(self):
        return self._event_shape

    @property
    def arg_constraints(self):
        raise NotImplementedError

    @property
    def support(self):
        raise NotImplementedError

    @property
    def mean(self):
        raise NotImplementedError(f"{self.__class__} does not implement mean")

    @property
    def mode(self):
        raise NotImplementedError(f"{self.__class__} does not implement mode")

    @property
    def variance(self):
        raise NotImplementedError(f"{self.__class__} does not implement variance")

    @property
    def stddev(self):
        return self.variance.sqrt()

    def sample(self, sample_shape=()):
        """Draws without a graph; reparameterisable distributions reuse rsample."""
        with vt.no_grad():
            return self.rsample(sample_shape)

    def rsample(self, sample_shape=()):
        raise NotImplementedError

    def sample_n(self, n):
        return self.sample((n,))

    def log_prob(self, value):
        raise NotImplementedError

    def cdf(self, value):
        raise NotImplementedError

    def icdf(self, value):
        raise NotImplementedError

    def enumerate_support(self, expand=True):
        raise NotImplementedError

    def entropy(self):
        raise NotImplementedError

    def perplexity(self):
        return vt.exp(self.entropy())

    def _extended_shape(self, sample_shape=()):
        return tuple(sample_shape) + self._batch_shape + self._event_shape

    def _validate_sample(self, value):
        if not vt.is_tensor(value):
            raise ValueError("The value argument to log_prob must be a Tensor")
        shape = tuple(value.shape)
        start = len(shape) - len(self._event_shape)
        if shape[start:] != self._event_shape:
            raise ValueError(f"The right-most size of value must match event_shape: {shape} vs {self._event_shape}.")
        expected = self._batch_shape + self._event_shape
        for i, j in zip(reversed(shape), reversed(expected)):
            if i != 1 and j != 1 and i != j:
                raise ValueError(f"Value is not broadcastable with batch_shape+event_shape: {shape} vs {expected}.")
        support = self.support
        if not _all_true(support.check(value)):
            raise ValueError(
                f"Expected value argument ({type(value).__name__} of shape {shape}) to be within the support "
                f"({repr(support)}) of the distribution {repr(self)}, but found invalid values:\n{value}")

    def __repr__(self):
        names = [k for k in self.arg_constraints if k in self.__dict__]
        args = ", ".join(f"{p}: {_fmt_param(self.__dict__[p])}" for p in names)
        return f"{self.__class__.__name__}({args})"


