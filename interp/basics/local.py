"""The local affine model of a torch network at an input x0: W = dh/dx by autograd, and the bias
term b two ways (h(x0) - W x0, and every layer's offset pushed to the output), in float64 on a
private copy, so that the shared model is never changed and the check is not lost to rounding."""

from __future__ import annotations

import copy

import numpy as np

from ..errors import ParameterError


def _as_batch_of_one(x0):
    import torch

    x = x0.detach() if isinstance(x0, torch.Tensor) else torch.as_tensor(np.asarray(x0, dtype=float))
    if x.ndim < 2 or x.shape[0] != 1:
        raise ParameterError(f"x0 must be a batch of one input, shape (1, ...), not {tuple(x.shape)}")
    return x


def _float64_copy(model):
    """A float64 eval-mode copy without in-place operations, taken under the model's lock (the
    shared model stays as it is)."""
    from ..methods.core import using

    with using(model) as m:
        private = copy.deepcopy(m).double().eval()
    for module in private.modules():
        # An in-place ReLU would overwrite a layer's output that bias_contributions differentiates by.
        if getattr(module, "inplace", False):
            module.inplace = False
    return private


def local_linear(model, x0, target: int | None = None) -> tuple[np.ndarray, np.ndarray | float]:
    """(W, b) of the network's affine piece at x0: W = dh/dx at x0 and b = h(x0) - W x0.

    Args:
        model: a torch module returning (1, K) outputs (or (1,) ... reshaped to K).
        x0: a batch of one input (1, ...): a tensor or an array.
        target: one output only; default all K.

    Returns:
        W of shape (K, *x0.shape[1:]) and b of shape (K,); for a target, W of x0.shape[1:] and a float b.

    Raises:
        ParameterError: x0 not a batch of one, or a target the output does not have.
    """
    import torch

    m = _float64_copy(model)
    device = next((p.device for p in m.parameters()), torch.device("cpu"))
    x = _as_batch_of_one(x0).to(device, torch.float64).requires_grad_(True)
    out = m(x).reshape(-1)
    outputs = range(out.numel()) if target is None else [_checked_target(target, out.numel())]
    grads = [torch.autograd.grad(out[k], x, retain_graph=True)[0][0] for k in outputs]
    w = torch.stack(grads)
    b = out[list(outputs)].detach() - (w.reshape(len(grads), -1) @ x.detach().reshape(-1))
    w_np, b_np = w.cpu().numpy(), b.cpu().numpy()
    return (w_np[0], float(b_np[0])) if target is not None else (w_np, b_np)


def output_of(model, x0, target: int) -> float:
    """Output ``target`` of the model itself (its own precision, under its lock, no gradients)."""
    import torch

    from ..methods.core import using

    x = _as_batch_of_one(x0)
    with using(model) as m, torch.no_grad():
        device = next((p.device for p in m.parameters()), torch.device("cpu"))
        dtype = next((p.dtype for p in m.parameters()), torch.float32)
        out = m(x.to(device, dtype)).reshape(-1)
    return float(out[_checked_target(target, out.numel())])


def _checked_target(target: int, k: int) -> int:
    if not 0 <= int(target) < k:
        raise ParameterError(f"target {target} is not an output of this model (0 ... {k - 1})")
    return int(target)


def _offset(module):
    """The constant a module adds to its output (broadcastable to it), or None for none."""
    from torch import nn

    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)) and module.bias is not None:
        return module.bias.reshape(-1, *([1] * (module.weight.ndim - 2)))
    if isinstance(module, nn.Linear) and module.bias is not None:
        return module.bias
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.running_mean is not None:
        scale = (module.running_var + module.eps).rsqrt()
        gamma = module.weight if module.affine else 1.0
        beta = module.bias if module.affine else 0.0
        shift = beta - gamma * module.running_mean * scale  # eval mode: gamma (x - mean) / std + beta
        return _bn_shape(shift, module)
    return None


def _bn_shape(shift, module):
    """The per-channel shift shaped for the module's output (BatchNorm1d: on (N, C) features)."""
    from torch import nn

    spatial = {nn.BatchNorm1d: 0, nn.BatchNorm2d: 2, nn.BatchNorm3d: 3}.get(type(module), 2)
    return shift.reshape(-1, *([1] * spatial))


def bias_contributions(model, x0, target: int) -> dict[str, float]:
    """Each layer's share of the bias term b of output ``target`` at x0: its offset (a conv's or
    linear layer's bias, batch norm's beta - gamma mean / std) times dh/d(its output). Where the
    network is piecewise linear and has no other constants, they sum to b of :func:`local_linear`.
    """
    import torch

    m = _float64_copy(model)
    device = next((p.device for p in m.parameters()), torch.device("cpu"))
    x = _as_batch_of_one(x0).to(device, torch.float64)
    outputs: dict[str, torch.Tensor] = {}
    handles = []
    for name, module in m.named_modules():
        if _offset(module) is not None:
            handles.append(module.register_forward_hook(lambda mod, i, o, name=name: outputs.__setitem__(name, o)))
    try:
        out = m(x).reshape(-1)
    finally:
        for h in handles:
            h.remove()
    k = _checked_target(target, out.numel())
    names = list(outputs)
    grads = torch.autograd.grad(out[k], [outputs[n] for n in names], allow_unused=True)
    modules = dict(m.named_modules())
    return {n: (0.0 if g is None else float((g * _offset(modules[n]).detach()).sum())) for n, g in zip(names, grads)}
