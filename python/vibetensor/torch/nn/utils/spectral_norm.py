"""The legacy hook-based vt.nn.utils.spectral_norm / remove_spectral_norm (parametrizations.spectral_norm is the
newer API). <name> becomes <name>_orig (the Parameter), with buffers <name>_u and <name>_v, the power iteration's
left and right singular-vector estimates; a forward pre-hook sets the plain attribute <name> = <name>_orig / sigma,
sigma = u . (W v), where W is <name>_orig with `dim` moved first and the rest flattened. In training each forward
first runs n_power_iterations rounds (v = normalize(W^T u), u = normalize(W v)) in place on the buffers, without
grad; in eval the stored u, v are used as they are. state_dict keys are torch's: <name>_orig, <name>_u, <name>_v.

Not mirrored: torch's state_dict metadata version and its load hook that converts pre-1.0 checkpoints (a saved
<name> instead of <name>_v): current checkpoints load as they are.
"""
from ....autograd import no_grad
from ..parameter import Parameter


def _normalize(x, eps):
    return x / x.norm().clamp(min=eps)


class SpectralNorm:
    _version = 1

    def __init__(self, name="weight", n_power_iterations=1, dim=0, eps=1e-12):
        self.name, self.dim = name, dim
        if n_power_iterations <= 0:
            raise ValueError("Expected n_power_iterations to be positive, but got "
                             f"n_power_iterations={n_power_iterations}")
        self.n_power_iterations, self.eps = n_power_iterations, eps

    def reshape_weight_to_matrix(self, weight):
        mat = weight
        if self.dim != 0:
            mat = mat.permute(self.dim, *[d for d in range(mat.dim()) if d != self.dim])
        return mat.reshape(mat.shape[0], -1)

    def compute_weight(self, module, do_power_iteration):
        weight = getattr(module, self.name + "_orig")
        u, v = getattr(module, self.name + "_u"), getattr(module, self.name + "_v")
        mat = self.reshape_weight_to_matrix(weight)
        if do_power_iteration:
            with no_grad():
                for _ in range(self.n_power_iterations):
                    v.copy_(_normalize(mat.t().mv(u), self.eps))
                    u.copy_(_normalize(mat.mv(v), self.eps))
            # copies, so the graph of sigma keeps these values while the buffers move on at the next forward
            u, v = u.clone(), v.clone()
        sigma = u.dot(mat.mv(v))
        return weight / sigma

    def remove(self, module):
        with no_grad():
            weight = self.compute_weight(module, do_power_iteration=False)
        delattr(module, self.name)
        for suffix in ("_u", "_v", "_orig"):
            delattr(module, self.name + suffix)
        module.register_parameter(self.name, Parameter(weight.detach()))

    def __call__(self, module, inputs):
        setattr(module, self.name, self.compute_weight(module, do_power_iteration=module.training))

    @staticmethod
    def apply(module, name, n_power_iterations, dim, eps):
        for hook, _ in module._forward_pre_hooks.values():
            if isinstance(hook, SpectralNorm) and hook.name == name:
                raise RuntimeError(f"Cannot register two spectral_norm hooks on the same parameter {name}")
        fn = SpectralNorm(name, n_power_iterations, dim, eps)
        if name not in module._parameters:
            raise KeyError(name)  # torch's module._parameters[name]
        weight = module._parameters[name]
        if weight is None:
            raise ValueError(f"`SpectralNorm` cannot be applied as parameter `{name}` is None")
        from ..parameter import UninitializedTensorMixin

        if isinstance(weight, UninitializedTensorMixin):
            raise ValueError("The module passed to `SpectralNorm` can't have uninitialized parameters. Make sure to "
                             "run the dummy forward before applying spectral normalization")
        with no_grad():
            h, w = fn.reshape_weight_to_matrix(weight).shape
            u = _normalize(weight.new_empty(h).normal_(0, 1), fn.eps)
            v = _normalize(weight.new_empty(w).normal_(0, 1), fn.eps)
        delattr(module, name)
        module.register_parameter(name + "_orig", weight)
        setattr(module, name, weight.detach())
        module.register_buffer(name + "_u", u)
        module.register_buffer(name + "_v", v)
        module.register_forward_pre_hook(fn)
        return fn


def spectral_norm(module, name="weight", n_power_iterations=1, eps=1e-12, dim=None):
    if dim is None:
        from ..conv_more_layers import ConvTranspose1d, ConvTranspose2d
        from ..conv_transpose3d import ConvTranspose3d

        # a transposed conv's weight is (in, out / groups, ...): its outputs are dim 1
        dim = 1 if isinstance(module, (ConvTranspose1d, ConvTranspose2d, ConvTranspose3d)) else 0
    SpectralNorm.apply(module, name, n_power_iterations, dim, eps)
    return module


def remove_spectral_norm(module, name="weight"):
    for k, (hook, _) in list(module._forward_pre_hooks.items()):
        if isinstance(hook, SpectralNorm) and hook.name == name:
            hook.remove(module)
            del module._forward_pre_hooks[k]
            return module
    raise ValueError(f"spectral_norm of '{name}' not found in {module}")
