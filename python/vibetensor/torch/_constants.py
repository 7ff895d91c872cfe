"""torch's module-level numeric constants: torch.inf, torch.nan, torch.pi, torch.e (plain Python floats, as in
torch, so `x.masked_fill(mask, -torch.inf)` and `torch.pi * x` read the same) and torch.newaxis (None, for
indexing as numpy's)."""
import math

inf = math.inf
nan = math.nan
pi = math.pi
e = math.e
newaxis = None
