"""FullGrad (Srinivas & Fleuret, NeurIPS 2019): the input-gradient map plus the bias-gradient map
of every layer with a bias, each made positive and scaled, upsampled to the input and summed.

A ReLU network's logit is exactly the sum of gradient x input and, over every bias b of every
layer, gradient x b (the "full-gradient" decomposition). The saliency map keeps the spatial
terms: |x * dy/dx| and, for each Conv2d and BatchNorm2d, |b * dy/dz| at that layer's output z.
As in pytorch-grad-cam (the reference the tests hold it to), a batch norm's bias is its
eval-mode constant, beta - gamma * running_mean / sqrt(running_var + eps), and each term is made
positive (abs) and min-max scaled to [0, 1] per channel before the channels are summed; its final
min-max scaling of the whole map is a display choice here (interp.figures). The authors' code
scales each layer's maps together instead: ``scaling="layer"``.

Bilinear upsampling is linear and keeps constants, so a layer's scaled channel maps are summed at
the layer's resolution and upsampled once (what upsampling each channel and summing would give).
A model without any Conv2d or BatchNorm2d bias gets the input-gradient term alone: the
decomposition has no bias part there, and that term is still FullGrad's map of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import nn

from ...errors import MethodError
from ..core import Maps, Targets, forward_hooks, logits_of, options_from, target_score, upsample

SCALINGS = ("channel", "layer")
_EPS = 1e-7  # pytorch-grad-cam's, in its min-max scaling


def layer_bias(module: nn.Module) -> torch.Tensor | None:
    """The constant a Conv2d or BatchNorm2d adds to each channel in eval mode, (C,); None where it
    adds none (a conv without bias).

    A batch norm with running statistics adds beta - gamma * mean / sqrt(var + eps) (the paper's
    code, and pytorch-grad-cam's); one without them normalises by each batch's statistics, and
    only beta is a constant there.
    """
    if isinstance(module, nn.BatchNorm2d):
        mean, var = module.running_mean, module.running_var
        if mean is None or var is None:
            return None if module.bias is None else module.bias.detach()
        scale = 1.0 / torch.sqrt(var + module.eps)
        if module.weight is not None:
            scale = scale * module.weight.detach()
        bias = -mean * scale
        return bias if module.bias is None else bias + module.bias.detach()
    if isinstance(module, nn.Conv2d) and module.bias is not None:
        return module.bias.detach()
    return None


class _KeepOutputs:
    """A forward hook that keeps every output of its module (a module may run more than once),
    each differentiable, and hands the rest of the network a copy (an in-place op after the
    layer would otherwise overwrite what is differentiated against)."""

    def __init__(self, bias: torch.Tensor):
        self.bias = bias
        self.outputs: list[torch.Tensor] = []

    def __call__(self, module: nn.Module, inputs: tuple, output):
        if not isinstance(output, torch.Tensor) or output.ndim != 4:
            return None  # not a batch of maps: no spatial bias term
        if torch.is_grad_enabled() and not output.requires_grad:
            output = output.detach().requires_grad_(True)
        self.outputs.append(output)
        return output.clone()


def _scaled(maps: torch.Tensor, per_channel: bool) -> torch.Tensor:
    """N x C x h x w non-negative maps min-max scaled to [0, 1]: each channel alone, or all of an
    image's channels together."""
    dims = (2, 3) if per_channel else (1, 2, 3)
    maps = maps - maps.amin(dims, keepdim=True)
    return maps / (maps.amax(dims, keepdim=True) + _EPS)


@dataclass(frozen=True)
class FullGradOptions:
    """FullGrad's options: ``scaling`` "channel" min-max scales each channel's term alone
    (pytorch-grad-cam), "layer" each layer's terms together (the authors' code)."""

    scaling: str = "channel"

    def __post_init__(self) -> None:
        if self.scaling not in SCALINGS:
            raise MethodError(f"scaling must be one of {', '.join(SCALINGS)}, not {self.scaling!r}")


@options_from(FullGradOptions)
def _fullgrad(model: nn.Module, xb: torch.Tensor, targets: Targets, layer: str | None = None, **options: Any) -> Maps:
    """FullGrad's map, (N, H, W): one forward and one backward pass.

    Every Conv2d and BatchNorm2d with a bias adds |bias * d logit / d output| per channel, once per
    call of the module; the input adds |x * d logit / d x| per input channel. Each channel is
    scaled to [0, 1] (see :class:`FullGradOptions`), the channels summed, the sum upsampled to the
    input (bilinear) and added up.
    """
    o = FullGradOptions(**options)
    per_channel = o.scaling == "channel"
    keeps = [(module, _KeepOutputs(bias)) for module in model.modules() if (bias := layer_bias(module)) is not None]
    x = xb.detach().requires_grad_(True)
    with forward_hooks(keeps):
        logits = logits_of(model, x)
    score = target_score(logits, targets.of(logits))
    outputs = [out for _, keep in keeps for out in keep.outputs]
    biases = [keep.bias for _, keep in keeps for _ in keep.outputs]
    wrt = [x, *outputs]
    found: Sequence[torch.Tensor | None] = (
        torch.autograd.grad(score, wrt, allow_unused=True) if score.requires_grad else [None] * len(wrt)
    )
    grads = [torch.zeros_like(t) if g is None else g for t, g in zip(wrt, found)]  # zero where unused
    size = (int(xb.shape[-2]), int(xb.shape[-1]))
    with torch.no_grad():
        # Each layer's channel-summed term at its own resolution; same resolutions added before upsampling.
        by_size: dict[tuple[int, int], torch.Tensor] = {size: _scaled((x * grads[0]).abs(), per_channel).sum(1)}
        for out, bias, grad in zip(outputs, biases, grads[1:]):
            term = _scaled((grad * bias.to(grad.dtype).view(1, -1, 1, 1)).abs(), per_channel).sum(1)
            hw = (int(out.shape[-2]), int(out.shape[-1]))
            by_size[hw] = by_size[hw] + term if hw in by_size else term
        total = by_size.pop(size)
        for maps in by_size.values():
            total = total + upsample(maps, size)
    return total, None
