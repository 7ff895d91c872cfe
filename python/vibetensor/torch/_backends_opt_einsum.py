"""vt.backends.opt_einsum, as torch.backends.opt_einsum: where the opt_einsum package is installed, einsum of three
or more operands contracts them in the order opt_einsum.contract_path chooses (its `strategy`: "auto", "greedy"
or "optimal") instead of left to right, as torch's does, so the intermediate products (and, under autocast,
which of them run in 16 bits) are torch's. `enabled` defaults to whether the package is there. As torch's module:
set_flags/flags check their arguments (enabling, or a strategy, without the package raises ValueError) while an
assignment to `enabled`, or to `strategy` without the package, only stores the value (einsum then still goes left
to right); an assigned strategy is checked where the package is. The package is imported on first use."""
import contextlib

_STRATEGIES = ("auto", "greedy", "optimal")


class _OptEinsumBackend:
    def __init__(self):
        self._checked, self._module = False, None
        self._enabled, self._strategy, self._stored = None, "auto", None

    def get_opt_einsum(self):
        """The opt_einsum package if it is installed, else None."""
        if not self._checked:
            try:
                import opt_einsum
            except ImportError:
                opt_einsum = None
            self._checked, self._module = True, opt_einsum
        return self._module

    def is_available(self) -> bool:
        return self.get_opt_einsum() is not None

    @property
    def enabled(self) -> bool:
        return self.is_available() if self._enabled is None else self._enabled

    @enabled.setter
    def enabled(self, value: bool) -> None:
        self._enabled = value

    def _set_enabled(self, value: bool) -> None:
        if value and not self.is_available():
            raise ValueError(
                f"opt_einsum is not available, so setting `enabled` to {value} will not reap the benefits of "
                "calculating an optimal path for einsum. torch.einsum will fall back to contracting from left to "
                "right. To enable this optimal path calculation, please install opt-einsum.")
        self._enabled = bool(value)

    @property
    def strategy(self):
        return self._strategy if self.is_available() else self._stored

    @strategy.setter
    def strategy(self, value: str) -> None:
        if not self.is_available():
            self._stored = value
            return
        self._set_strategy(value)

    def _set_strategy(self, value: str) -> None:
        if not self.is_available():
            raise ValueError(
                f"opt_einsum is not available, so setting `strategy` to {value} will not be meaningful. "
                "torch.einsum will bypass path calculation and simply contract from left to right. Please install "
                "opt_einsum or unset `strategy`.")
        if not self.enabled:
            raise ValueError(
                f"opt_einsum is not enabled, so setting a `strategy` to {value} will not be meaningful. "
                "torch.einsum will bypass path calculation and simply contract from left to right. Please set "
                "`enabled` to `True` as well or unset `strategy`.")
        if value not in _STRATEGIES:
            raise ValueError(f"`strategy` must be one of the following: [auto, greedy, optimal] but is {value}")
        self._strategy = value

    def set_flags(self, _enabled=None, _strategy=None):
        orig = (self.enabled, self.strategy if self.is_available() else None)
        if _enabled is not None:
            self._set_enabled(_enabled)
        if _strategy is not None:
            self._set_strategy(_strategy)
        return orig

    @contextlib.contextmanager
    def flags(self, enabled=None, strategy=None):
        orig = self.set_flags(enabled, strategy)
        try:
            yield
        finally:
            self.set_flags(*orig)

    def path(self, equation, operands):
        """The pairs to contract, in order (positions in the shrinking operand list, each result appended at its
        end), or None for left to right: fewer than three operands, or disabled."""
        if len(operands) <= 2 or not self.enabled or not self.is_available():
            return None
        return list(self.get_opt_einsum().contract_path(equation, *operands, optimize=self.strategy)[0])


opt_einsum = _OptEinsumBackend()
