"""torch._dynamo for code that configures or marks it: vibetensor has no graph capture (it runs eagerly; see
vibetensor/torch/_compile.py), so the shape marks (mark_dynamic, mark_static, maybe_mark_dynamic,
mark_static_address) record nothing and graph_break() does nothing; reset, disable, allow_in_graph and
is_compiling are torch.compiler's; `config` holds the options scripts set."""
from . import config
from ..compiler import allow_in_graph, disable, is_compiling, reset

__all__ = ["allow_in_graph", "config", "disable", "graph_break", "is_compiling", "mark_dynamic", "mark_static",
           "mark_static_address", "maybe_mark_dynamic", "reset"]


def mark_dynamic(t, index, *, min=None, max=None, specialize_on=None):
    return None


def maybe_mark_dynamic(t, index):
    return None


def mark_static(t, index=None):
    return None


def mark_static_address(t, guard=True):
    return None


def graph_break(msg=""):
    return None
