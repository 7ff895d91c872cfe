"""``_LocScale``: the shared base of the real-valued location-scale families of vt.distributions (Normal, Laplace,
Cauchy, Gumbel): their common argument constraints and support, the broadcasting (loc, scale) constructor, expand,
and a mode at loc. Each family adds its own moments, sampling, densities and entropy."""
from . import constraints
from .distribution import Distribution

__all__ = []


class _LocScale(Distribution):
    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    has_rsample = True

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # expand() builds (and names in its error) the family itself, as each torch class does, also for a
        # user subclass of that family; the family is the direct subclass of this base.
        if _LocScale in cls.__bases__:
            cls._family = cls

    def __init__(self, loc, scale, validate_args=None):
        batch_shape = self._broadcast_params(loc=loc, scale=scale)
        super().__init__(batch_shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        return self._expand_params(self._family, batch_shape, ["loc", "scale"], _instance)

    @property
    def mode(self):
        return self.loc
