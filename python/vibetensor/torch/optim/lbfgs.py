"""LBFGS: limited-memory BFGS over all parameters flattened into one vector, with torch's arguments, closure API
(step(closure) re-evaluates the loss as often as it needs and returns the first loss) and state (kept on the first
parameter: func_evals, n_iter, d, t, old_dirs, old_stps, ro, H_diag, prev_flat_grad, prev_loss, al).

The direction is the two-loop recursion over the last history_size (s, y) pairs, scaled by H_diag = s.y / y.y;
the step is lr (the first one shrunk to min(1, 1/|g|_1) * lr), or a strong-Wolfe line search (cubic
interpolation with a bracketing then zoom phase, c1=1e-4, c2=0.9, at most the evaluations max_eval leaves). Scalars (t, ys, ro,
H_diag, al) are Python floats: in float64 the trajectory is torch's to rounding."""
from ...autograd import enable_grad, no_grad
from .. import _functions as T
from .optimizer import Optimizer


def _cubic_min(x1, f1, g1, x2, f2, g2, bounds=None):
    """Minimiser of the cubic through (x1, f1, g1), (x2, f2, g2), clamped to bounds (default: between them);
    the midpoint when the cubic has no real minimiser."""
    lo, hi = bounds if bounds is not None else (min(x1, x2), max(x1, x2))
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    disc = d1 * d1 - g1 * g2
    if disc < 0:
        return (lo + hi) / 2.0
    d2 = disc ** 0.5
    if x1 <= x2:
        m = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
    else:
        m = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
    return min(max(m, lo), hi)


def _dot(a, b):
    return float((a * b).sum().item())


def _strong_wolfe(evaluate, t, d, f, g, gtd, c1=1e-4, c2=0.9, tolerance_change=1e-9, max_ls=25):
    """Returns (loss, flat grad, step, evaluations) for a step t along d meeting the strong Wolfe conditions."""
    d_norm = float(d.abs().max().item())
    f_new, g_new = evaluate(t)
    evals, it = 1, 0
    gtd_new = _dot(g_new, d)
    t_prev, f_prev, g_prev, gtd_prev = 0.0, f, g, gtd
    done = False
    # bracketing: grow t until an interval holding a Wolfe point is found
    while it < max_ls:
        if f_new > f + c1 * t * gtd or (it > 1 and f_new >= f_prev):
            br, br_f, br_g, br_gtd = [t_prev, t], [f_prev, f_new], [g_prev, g_new], [gtd_prev, gtd_new]
            break
        if abs(gtd_new) <= -c2 * gtd:  # checked before the sign of the slope: a Wolfe point ends the search
            br, br_f, br_g, br_gtd, done = [t], [f_new], [g_new], [gtd_new], True
            break
        if gtd_new >= 0:
            br, br_f, br_g, br_gtd = [t_prev, t], [f_prev, f_new], [g_prev, g_new], [gtd_prev, gtd_new]
            break
        t_next = _cubic_min(t_prev, f_prev, gtd_prev, t, f_new, gtd_new, bounds=(t + 0.01 * (t - t_prev), t * 10))
        t_prev, f_prev, g_prev, gtd_prev = t, f_new, g_new, gtd_new
        t = t_next
        f_new, g_new = evaluate(t)
        evals += 1
        gtd_new = _dot(g_new, d)
        it += 1
    if it == max_ls:
        br, br_f, br_g, br_gtd = [0.0, t], [f, f_new], [g, g_new], [gtd, gtd_new]
    # zoom: shrink the bracket by cubic interpolation, nudging away from its ends when progress stalls
    stalled = False
    low, high = (0, 1) if br_f[0] <= br_f[-1] else (1, 0)
    while not done and it < max_ls:
        if abs(br[1] - br[0]) * d_norm < tolerance_change:
            break
        t = _cubic_min(br[0], br_f[0], br_gtd[0], br[1], br_f[1], br_gtd[1])
        lo_b, hi_b = min(br), max(br)
        eps = 0.1 * (hi_b - lo_b)
        if min(hi_b - t, t - lo_b) < eps:
            if stalled or t >= hi_b or t <= lo_b:
                t = hi_b - eps if abs(t - hi_b) < abs(t - lo_b) else lo_b + eps
                stalled = False
            else:
                stalled = True
        else:
            stalled = False
        f_new, g_new = evaluate(t)
        evals += 1
        gtd_new = _dot(g_new, d)
        it += 1
        if f_new > f + c1 * t * gtd or f_new >= br_f[low]:
            br[high], br_f[high], br_g[high], br_gtd[high] = t, f_new, g_new, gtd_new
            low, high = (0, 1) if br_f[0] <= br_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (br[high] - br[low]) >= 0:
                br[high], br_f[high], br_g[high], br_gtd[high] = br[low], br_f[low], br_g[low], br_gtd[low]
            br[low], br_f[low], br_g[low], br_gtd[low] = t, f_new, g_new, gtd_new
    return br_f[low], br_g[low], br[low], evals


class LBFGS(Optimizer):
    def __init__(self, params, lr=1, max_iter=20, max_eval=None, tolerance_grad=1e-7, tolerance_change=1e-9,
                 history_size=100, line_search_fn=None):
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        if line_search_fn not in (None, "strong_wolfe"):
            raise RuntimeError("only 'strong_wolfe' is supported")
        super().__init__(params, dict(lr=lr, max_iter=max_iter, max_eval=max_eval, tolerance_grad=tolerance_grad,
                                      tolerance_change=tolerance_change, history_size=history_size,
                                      line_search_fn=line_search_fn))
        if len(self.param_groups) != 1:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")
        self._params = self.param_groups[0]["params"]

    def add_param_group(self, param_group):
        if getattr(self, "param_groups", None):
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")
        super().add_param_group(param_group)

    def load_state_dict(self, state_dict):
        """Also takes torch's LBFGS state: its history lists of tensors and its 0-d tensor scalars."""
        from .optimizer import _state_value
        p0 = self._params[0]

        def conv(k, v):
            if isinstance(v, list):
                return [conv(k, x) for x in v]
            if hasattr(v, "shape") and len(v.shape) == 0:
                return float(v.item())
            return _state_value(p0, k, v)
        state = {i: {k: conv(k, v) for k, v in st.items()} for i, st in state_dict["state"].items()}
        super().load_state_dict({"state": state, "param_groups": state_dict["param_groups"]})

    def _flat_grad(self):
        return T.cat([p.grad.reshape(-1) if p.grad is not None else T.zeros(p.numel(), dtype=p.dtype,
                                                                                 device=p.device)
                      for p in self._params], 0)

    def _add_step(self, t, d):
        off = 0
        for p in self._params:
            n = p.numel()
            p.add_(d[off:off + n].reshape(p.shape), alpha=t)
            off += n

    def _loss(self, closure):
        with enable_grad():
            return float(closure())

    def step(self, closure=None):
        if closure is None:
            raise TypeError("LBFGS.step requires a closure that re-evaluates the model and returns the loss")
        g = self.param_groups[0]
        lr, max_iter, max_eval = g["lr"], g["max_iter"], g["max_eval"]
        tol_grad, tol_change, hist = g["tolerance_grad"], g["tolerance_change"], g["history_size"]
        st = self.state[self._params[0]]
        st.setdefault("func_evals", 0)
        st.setdefault("n_iter", 0)
        with enable_grad():
            orig_loss = closure()
        loss = float(orig_loss)
        evals = 1
        st["func_evals"] += 1
        with no_grad():
            flat_grad = self._flat_grad()
            if float(flat_grad.abs().max().item()) <= tol_grad:
                return orig_loss
            d, t = st.get("d"), st.get("t")
            old_dirs, old_stps, ro, H_diag = st.get("old_dirs"), st.get("old_stps"), st.get("ro"), st.get("H_diag")
            prev_flat_grad, prev_loss = st.get("prev_flat_grad"), st.get("prev_loss")
            n_iter = 0
            while n_iter < max_iter:
                n_iter += 1
                st["n_iter"] += 1
                if st["n_iter"] == 1:
                    d, old_dirs, old_stps, ro, H_diag = -flat_grad, [], [], [], 1.0
                else:
                    y = flat_grad - prev_flat_grad
                    s = d * t
                    ys = _dot(y, s)
                    if ys > 1e-10:  # keep the pair only when the curvature condition holds
                        if len(old_dirs) == hist:
                            old_dirs.pop(0), old_stps.pop(0), ro.pop(0)
                        old_dirs.append(y)
                        old_stps.append(s)
                        ro.append(1.0 / ys)
                        H_diag = ys / _dot(y, y)
                    al = st.setdefault("al", [None] * hist)
                    q = -flat_grad
                    for i in range(len(old_dirs) - 1, -1, -1):
                        al[i] = _dot(old_stps[i], q) * ro[i]
                        q = q - old_dirs[i] * al[i]
                    r = q * H_diag
                    for i in range(len(old_dirs)):
                        be = _dot(old_dirs[i], r) * ro[i]
                        r = r + old_stps[i] * (al[i] - be)
                    d = r
                prev_flat_grad = flat_grad.clone()
                prev_loss = loss
                t = min(1.0, 1.0 / float(flat_grad.abs().sum().item())) * lr if st["n_iter"] == 1 else lr
                gtd = _dot(flat_grad, d)
                if gtd > -tol_change:  # not a descent direction
                    break
                ls_evals = 0
                if g["line_search_fn"] is not None:
                    x0 = [p.clone() for p in self._params]

                    def evaluate(step):
                        self._add_step(step, d)
                        f = self._loss(closure)
                        fg = self._flat_grad()
                        for p, v in zip(self._params, x0):
                            p.copy_(v)
                        return f, fg
                    # as torch's: the search may use the evaluations left; its own tolerance_change is 1e-9
                    loss, flat_grad, t, ls_evals = _strong_wolfe(evaluate, t, d, loss, flat_grad, gtd,
                                                                 max_ls=max_eval - evals)
                    self._add_step(t, d)
                    opt_cond = float(flat_grad.abs().max().item()) <= tol_grad
                else:
                    self._add_step(t, d)
                    opt_cond = False
                    if n_iter != max_iter:  # the last iteration's loss is the caller's to evaluate
                        loss = self._loss(closure)
                        flat_grad = self._flat_grad()
                        opt_cond = float(flat_grad.abs().max().item()) <= tol_grad
                        ls_evals = 1
                evals += ls_evals
                st["func_evals"] += ls_evals
                if n_iter == max_iter or evals >= max_eval or opt_cond:
                    break
                if float((d * t).abs().max().item()) <= tol_change or abs(loss - prev_loss) < tol_change:
                    break
            st.update(d=d, t=t, old_dirs=old_dirs, old_stps=old_stps, ro=ro, H_diag=H_diag,
                      prev_flat_grad=prev_flat_grad, prev_loss=prev_loss)
        return orig_loss
