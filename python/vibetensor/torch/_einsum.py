"""einsum over the dispatcher's views, sums and batched matrix products (differentiable through them).

Plan: labels (letters, and one private label per dim that '...' covers, right-aligned across operands as
broadcasting aligns them) are given sizes; size-1 dims broadcast. Each operand first takes the diagonal of
any label it repeats and sums away labels no one else needs. Operands are then contracted left to right (or,
where the opt_einsum package is installed and vt.backends.opt_einsum is enabled, pair by pair in the order its
contract_path chooses, as torch's einsum does):
labels shared and still needed are batch dims, shared and no longer needed are contracted, the others stay
on their side; both sides are permuted and reshaped to [batch, rows, k] and [batch, k, cols], so each
contraction is one batched GEMM. The result is summed over leftover labels and permuted to the output order.

Note [einsum pairs without a contraction]: as torch's einsum, a contracted label that one side of a pair holds
at size 1 is summed on the other side first, and a pair left with nothing to contract is a broadcast product
(mul) rather than a GEMM - so outer and elementwise products ("bd,dn->bdn", "bd,bd->bd") promote mixed dtypes
as torch's do (Mamba's float64 dt times float32 A), while a real contraction of mixed dtypes raises.

Note [einsum plans are cached]: every decision of the plan above depends on the equation, the operands' shapes
and opt_einsum's order of the pairs only, never on values or dtypes. So the first call for a key runs the planner on
stand-ins (_Recording) that forward each tensor op and record it; later calls replay the recorded ops on the new
operands (a 4x4 "ij,jk->ik" spent ~20 us planning in Python for a product of a microsecond). A call whose
planning raises records nothing.
"""
from . import _functions as F
from ._backends_opt_einsum import opt_einsum as _opt_einsum


def _err(msg):
    raise RuntimeError("einsum(): " + msg)


def _parse(equation, operands):
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) > len(operands):
        _err("fewer operands were provided than specified in the equation")
    if len(terms) < len(operands):
        _err("more operands were provided than specified in the equation")
    n_ell = 0
    labels = []
    for k, (term, t) in enumerate(zip(terms, operands)):
        letters = term.replace("...", "")
        if any(not c.isalpha() for c in letters):
            _err(f"invalid subscript given at index {term}; subscripts must be in [a-zA-Z]")
        if "..." in term:
            covered = t.dim() - len(letters)
            if covered < 0:
                _err(f"the number of subscripts in the equation ({len(letters)}) is more than the number of "
                     f"dimensions ({t.dim()}) for operand {k}.")
            n_ell = max(n_ell, covered)
            head, _, tail = term.partition("...")
            labels.append((list(head), covered, list(tail)))
        else:
            if len(term) != t.dim():
                _err(f"the number of subscripts in the equation ({len(term)}) does not match the number of "
                     f"dimensions ({t.dim()}) for operand {k} and no ellipsis was given")
            labels.append((list(term), 0, []))
    ell = [f"...{i}" for i in range(n_ell)]
    full = [head + ell[n_ell - covered:] + tail for head, covered, tail in labels]
    if arrow:
        if "..." in rhs:
            h, _, tl = rhs.partition("...")
            out = list(h) + ell + list(tl)
        else:
            out = list(rhs)
        for c in out:
            if not c.startswith("...") and not any(c in f for f in full):
                _err(f"output subscript {c} does not appear in the equation for any input operand")
        if len(set(out)) != len(out):
            _err("output subscript appears more than once in the output")
    else:
        counts = {}
        for f in full:
            for c in f:
                counts[c] = counts.get(c, 0) + 1
        out = ell + sorted(c for c, n in counts.items() if n == 1 and not c.startswith("..."))
    return full, out


def _sizes(full, operands):
    size = {}
    for k, (labs, t) in enumerate(zip(full, operands)):
        for lab, n in zip(labs, t.shape):
            if lab not in size:
                size[lab] = n
                continue
            seen = size[lab]
            if n != seen and n != 1 and seen != 1:
                _err(f"subscript {lab} has size {n} for operand {k} which does not broadcast with previously seen "
                     f"size {seen}")
            size[lab] = n if seen == 1 else seen  # a size-1 dim broadcasts (to 0 as well)
    return size


def _prepare(t, labs, needed):
    """Diagonals for repeated labels, then sums over labels nobody else needs."""
    labs = list(labs)
    while len(set(labs)) != len(labs):
        for i, lab in enumerate(labs):
            j = labs.index(lab, i + 1) if labs.count(lab) > 1 else -1
            if j > 0:
                t = t.diagonal(0, i, j)
                labs = [x for m, x in enumerate(labs) if m not in (i, j)] + [lab]
                break
    drop = [i for i, lab in enumerate(labs) if lab not in needed]
    if drop:
        t = t.sum(drop)
        labs = [lab for i, lab in enumerate(labs) if i not in drop]
    return t, labs


def _drop_unit_contractions(a, la, b, lb, keep):
    """A contracted label one side holds at size 1 leaves both sides: summed on the other side (Note [einsum
    pairs without a contraction])."""
    la, lb = list(la), list(lb)
    for x in [x for x in la if x in lb and x not in keep]:
        ia, ib = la.index(x), lb.index(x)
        if a.shape[ia] != 1 and b.shape[ib] != 1:
            continue
        a = a.sum(ia) if a.shape[ia] != 1 else a.squeeze(ia)
        b = b.sum(ib) if b.shape[ib] != 1 else b.squeeze(ib)
        la.remove(x)
        lb.remove(x)
    return a, la, b, lb


def _place(t, labs, order):
    """t with its labels permuted into `order` and a size-1 dim for each label of `order` it lacks."""
    t = t.permute([labs.index(x) for x in order if x in labs])
    dims = iter(t.shape)
    return t.reshape(*[next(dims) if x in labs else 1 for x in order])


def _contract(a, la, b, lb, keep, size):
    a, la, b, lb = _drop_unit_contractions(a, la, b, lb, keep)
    batch = [x for x in la if x in lb and x in keep]
    summed = [x for x in la if x in lb and x not in keep]
    left = [x for x in la if x not in lb]
    right = [x for x in lb if x not in la]
    if not summed:  # nothing to contract: a broadcast product, which promotes dtypes as torch's mul
        order = batch + left + right
        return _place(a, la, order) * _place(b, lb, order), order

    def arrange(t, labs, order):
        t = t.permute([labs.index(x) for x in order])
        return t.expand(*[size[x] for x in order])

    def prod(xs):
        n = 1
        for x in xs:
            n *= size[x]
        return n
    lead = [prod(batch)] if batch else []  # no batch label: one matrix product
    a3 = arrange(a, la, batch + left + summed).reshape(*lead, prod(left), prod(summed))
    b3 = arrange(b, lb, batch + summed + right).reshape(*lead, prod(summed), prod(right))
    out = a3.matmul(b3).reshape(*[size[x] for x in batch + left + right])
    return out, batch + left + right


class _Recording:
    """An operand or intermediate while einsum plans (Note [einsum plans are cached]): the ops the planner calls
    run on the real tensor, and each is appended to the program as (source slot, method, arguments, other
    operand's slot or None); the result is a new slot."""
    __slots__ = ("t", "slot", "program")

    def __init__(self, t, slot, program):
        self.t, self.slot, self.program = t, slot, program

    @property
    def shape(self):
        return self.t.shape

    def dim(self):
        return self.t.dim()

    def _record(self, name, args, other=None):
        out = getattr(self.t, name)(other.t) if other is not None else getattr(self.t, name)(*args)
        if name in ("permute", "expand", "reshape") and out.shape == self.t.shape and (
                name != "permute" or list(args[0]) == list(range(len(args[0])))):
            return self  # a view that changes nothing: not worth a step in every replay
        self.program.append((self.slot, name, args, None if other is None else other.slot))
        return _Recording(out, self.program[0] + len(self.program) - 2, self.program)

    def matmul(self, other):
        return self._record("matmul", (), other)

    def __mul__(self, other):
        return self._record("__mul__", (), other)


for _name in ("diagonal", "sum", "squeeze", "permute", "reshape", "expand"):  # the planner's one-operand ops
    setattr(_Recording, _name, lambda self, *args, _name=_name: self._record(_name, args))
del _name


_PLANS = {}
_MAX_PLANS = 512


def einsum(equation, *operands):
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    try:
        shapes = tuple([t.shape for t in operands])
    except AttributeError:  # not a tensor: the planner raises on it
        shapes = None
    # opt_einsum's order (three or more operands, where enabled) is asked for on every call, as torch does
    path = _opt_einsum.path(equation, operands) if shapes is not None else None
    key = None if shapes is None else (equation, shapes, None if path is None else tuple(map(tuple, path)))
    plan = _PLANS.get(key)
    if plan is None:
        program = [len(operands)]  # the first slot a result takes, then the steps
        result = _plan(equation, [_Recording(t, k, program) for k, t in enumerate(operands)], path)
        if result.slot < len(operands):  # an operand itself (every step was skipped): torch returns a new view
            result = result._record("view", tuple(result.shape))
        if len(_PLANS) >= _MAX_PLANS:
            _PLANS.clear()
        if key is not None:
            _PLANS[key] = program[1:], result.slot
        return result.t
    steps, result = plan
    values = list(operands)
    for src, name, args, other in steps:
        values.append(getattr(values[src], name)(values[other]) if other is not None else
                      getattr(values[src], name)(*args))
    return values[result]


def _plan(equation, operands, path):
    """einsum's plan run on the stand-ins `operands` (Note [einsum plans are cached]); `path` is opt_einsum's
    order of the pairs, or None for left to right."""
    full, out = _parse(equation, operands)
    size = _sizes(full, operands)
    ts, labs = list(operands), [list(f) for f in full]
    for k in range(len(ts)):
        others = set(out).union(*[set(labs[m]) for m in range(len(ts)) if m != k])
        ts[k], labs[k] = _prepare(ts[k], labs[k], others)
    if path is None:  # left to right
        acc, lacc = ts[0], labs[0]
        for k in range(1, len(ts)):
            keep = set(out).union(*[set(x) for x in labs[k + 1:]])
            acc, lacc = _prepare(acc, lacc, keep | set(labs[k]))
            acc, lacc = _contract(acc, lacc, ts[k], labs[k], keep, size)
    else:  # each pair leaves the list and its product joins the end, as opt_einsum's paths count positions
        ops = list(zip(ts, labs))
        for pair in path:
            i, j = sorted(pair)
            (a, la), (b, lb) = ops[i], ops[j]
            del ops[j], ops[i]
            keep = set(out).union(*[set(x) for _, x in ops])
            a, la = _prepare(a, la, keep | set(lb))
            b, lb = _prepare(b, lb, keep | set(la))
            ops.append(_contract(a, la, b, lb, keep, size))
        (acc, lacc), = ops
    acc, lacc = _prepare(acc, lacc, set(out))
    acc = acc.expand(*[size[x] for x in lacc]) if lacc else acc
    return acc.permute([lacc.index(x) for x in out]) if out else acc
