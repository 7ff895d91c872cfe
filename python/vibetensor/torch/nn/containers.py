"""The containers, torch-shaped: Sequential, ModuleList, ModuleDict, ParameterList, ParameterDict.

Each keeps its items in the Module tables under torch's names (ModuleList and ParameterList under "0", "1",
...; the dicts under their keys), so parameters(), state_dict() and printing see them as torch's do. Indexing
follows the sequence protocol: negative indices count from the end, slices return a container of the same kind,
and an index out of range raises IndexError."""
from collections import OrderedDict

from .module import Module, _indent
from .parameter import Parameter


def _index(n, idx):
    if not -n <= idx < n:
        raise IndexError(f"index {idx} is out of range")
    return idx % n


class _ModuleSequence(Module):
    """What Sequential and ModuleList share: length, iteration, append/extend, and item assignment and deletion
    by position (deletion renumbers the rest "0", "1", ..., as torch keeps the names dense)."""

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __setitem__(self, idx, module):
        self.add_module(list(self._modules)[_index(len(self), idx)], module)

    def __delitem__(self, idx):
        mods = list(self._modules.values())
        del mods[idx if isinstance(idx, slice) else _index(len(mods), idx)]
        self._renumber(mods)

    def _renumber(self, mods):
        self._modules.clear()
        for i, m in enumerate(mods):
            self._modules[str(i)] = m

    def append(self, module):
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules):
        for m in modules:
            self.append(m)
        return self


class Sequential(_ModuleSequence):
    """Sequential(*modules) or Sequential(OrderedDict of name -> module); forward chains them in order."""

    def __init__(self, *args):
        super().__init__()
        if len(args) == 1 and isinstance(args[0], OrderedDict):
            for name, m in args[0].items():
                self.add_module(name, m)
        else:
            for i, m in enumerate(args):
                self.add_module(str(i), m)

    def __getitem__(self, idx):
        items = list(self._modules.items())
        if isinstance(idx, slice):
            return type(self)(OrderedDict(items[idx]))
        return items[_index(len(items), idx)][1]

    def forward(self, input):
        for m in self._modules.values():
            input = m(input)
        return input


class ModuleList(_ModuleSequence):
    """A list of modules, registered under "0", "1", ...; it has no forward of its own."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def __getitem__(self, idx):
        mods = list(self._modules.values())
        if isinstance(idx, slice):
            return type(self)(mods[idx])
        return mods[_index(len(mods), idx)]

    def __iadd__(self, modules):
        return self.extend(modules)

    def __add__(self, other):
        return ModuleList(list(self) + list(other))

    def insert(self, index, module):
        mods = list(self._modules.values())
        mods.insert(index, module)
        self._renumber(mods)

    def __repr__(self):
        """Runs of identical children print once, as "(0-5): 6 x Block(...)" (torch's format)."""
        reprs = [repr(m) for m in self]
        if not reprs:
            return self._get_name() + "()"
        runs = []  # [first, last, text]
        for i, r in enumerate(reprs):
            if runs and runs[-1][2] == r:
                runs[-1][1] = i
            else:
                runs.append([i, i, r])
        lines = [_indent(f"({a}): {r}" if a == b else f"({a}-{b}): {b - a + 1} x {r}", 2) for a, b, r in runs]
        return self._get_name() + "(\n  " + "\n  ".join(lines) + "\n)"


class _KeyedContainer(Module):
    """The mapping protocol shared by ModuleDict and ParameterDict, over the ordered key table _table()."""

    def _table(self):
        raise NotImplementedError

    def __len__(self):
        return len(self._table())

    def __iter__(self):
        return iter(self._table())

    def __contains__(self, key):
        return key in self._table()

    def keys(self):
        return self._table().keys()

    def items(self):
        return ((k, self[k]) for k in self._table())

    def values(self):
        return (self[k] for k in self._table())

    def pop(self, key):
        v = self[key]
        del self[key]
        return v

    def update(self, items):
        if hasattr(items, "items"):
            items = items.items()
        for j, kv in enumerate(items):
            if not isinstance(kv, (list, tuple)) or len(kv) != 2:
                raise ValueError(f"{type(self).__name__} update sequence element #{j} should be an iterable of "
                                 "length 2")
            self[kv[0]] = kv[1]


class ModuleDict(_KeyedContainer):
    """An ordered dict of modules, registered under their keys."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def _table(self):
        return self._modules

    def __getitem__(self, key):
        return self._modules[key]

    def __setitem__(self, key, module):
        self.add_module(key, module)

    def __delitem__(self, key):
        del self._modules[key]

    def items(self):  # views, as torch's
        return self._modules.items()

    def values(self):
        return self._modules.values()

    def clear(self):
        self._modules.clear()


def _as_parameter(value):
    """Tensors stored in a ParameterList/Dict become Parameters (other objects are kept as they are)."""
    from ._tensor_api import Tensor

    if isinstance(value, Tensor) and not isinstance(value, Parameter):
        return Parameter(value)
    return value


_TYPENAMES = {"float32": "Float", "float64": "Double", "float16": "Half", "bfloat16": "BFloat16", "int64": "Long",
              "int32": "Int", "int16": "Short", "int8": "Char", "uint8": "Byte", "bool": "Bool"}


def _describe(key, p, legacy_type_names=False):
    """torch's line for one entry: ParameterList names the dtype (torch.float32), ParameterDict the legacy
    tensor type (torch.FloatTensor, torch.cuda.FloatTensor)."""
    from ._tensor_api import Tensor

    if not isinstance(p, Tensor):
        return f"  ({key}): Object of type: {type(p).__name__}"
    cuda = p.device.type == "cuda"
    kind = "Parameter" if isinstance(p, Parameter) else "Tensor"
    size = "x".join(str(s) for s in p.shape)
    if legacy_type_names:
        return f"  ({key}): {kind} containing: [torch.{'cuda.' if cuda else ''}{_TYPENAMES[p.dtype.name]}Tensor " \
               f"of size {size}{f' (GPU {p.device.index or 0})' if cuda else ''}]"
    return f"  ({key}): {kind} containing: [torch.{p.dtype.name} of size {size}{f' ({p.device})' if cuda else ''}]"


class ParameterList(Module):
    def __init__(self, values=None):
        super().__init__()
        self._size = 0
        if values is not None:
            self.extend(values)

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return ParameterList([self[i] for i in range(self._size)[idx]])
        return getattr(self, str(_index(self._size, idx)))

    def __setitem__(self, idx, param):
        setattr(self, str(_index(self._size, idx)), _as_parameter(param))

    def __len__(self):
        return self._size

    def __iter__(self):
        return (self[i] for i in range(self._size))

    def __iadd__(self, params):
        return self.extend(params)

    def append(self, value):
        self._size += 1
        setattr(self, str(self._size - 1), _as_parameter(value))
        return self

    def extend(self, values):
        for v in values:
            self.append(v)
        return self

    def extra_repr(self):
        return "\n".join(_describe(i, p) for i, p in enumerate(self))

    def __call__(self, *args, **kwargs):
        raise RuntimeError("ParameterList should not be called.")


class ParameterDict(_KeyedContainer):
    def __init__(self, parameters=None):
        super().__init__()
        self._keys = {}
        if parameters is not None:
            self.update(parameters)

    def _table(self):
        return self._keys

    def __getitem__(self, key):
        return getattr(self, key)

    def __setitem__(self, key, value):
        self._keys[key] = None
        setattr(self, key, _as_parameter(value))

    def __delitem__(self, key):
        del self._keys[key]
        delattr(self, key)

    def get(self, key, default=None):
        return self[key] if key in self else default

    def update(self, parameters):
        # torch keeps the order of an OrderedDict, a ParameterDict or a sequence of pairs, but sorts a plain
        # mapping's keys (so the state_dict order of ParameterDict({...}) is sorted, as torch's)
        from collections import OrderedDict
        from collections.abc import Mapping

        if isinstance(parameters, Mapping) and not isinstance(parameters, (OrderedDict, ParameterDict)):
            parameters = sorted(parameters.items())
        super().update(parameters)

    def extra_repr(self):
        return "\n".join(_describe(k, p, legacy_type_names=True) for k, p in self.items())

    def __call__(self, *args, **kwargs):
        raise RuntimeError("ParameterDict should not be called.")
