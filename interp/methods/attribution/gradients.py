"""Input-gradient attributions: guided backprop, saliency, SmoothGrad, integrated gradients.

Integrated gradients and SmoothGrad run Captum. Saliency is one forward and one backward pass
done here, so that the pass that computes the gradient also picks the predicted class (Captum's
Saliency needs the class before its pass, which costs a second forward); the tests hold it to
Captum's Saliency. Guided backprop is done here because
Captum's version puts backward hooks on ReLU modules, which fails on in-place ReLUs
(torchvision's ResNet); here a tensor hook on each ReLU's output lets only positive gradients
into the ReLU's backward, which is correct whether the ReLU is in-place or not. SmoothGrad draws its
noise from its own seeded generator, so results are reproducible and no global random state is
touched (Captum's NoiseTunnel uses the global one).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from ...errors import MethodError
from ..core import Maps, Target, Targets, attribute, forward_hooks, input_grad, logits_of, options_from

BaselineLike = float | np.ndarray | torch.Tensor | None


def _positive_part(grad: torch.Tensor) -> torch.Tensor:
    return grad.clamp(min=0)


def _guide(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
    """Make a ReLU guided: a hook on its output keeps the positive part of the gradient that
    arrives there, and the ReLU's own backward then zeroes it where the unit was off, so the
    gradient passed down is (y > 0) * max(g, 0). Costs one clamp per ReLU call, nothing forward.

    A tensor hook (not a module backward hook) is right for in-place ReLUs too: if the tensor
    is later changed in place, the hook still receives the gradient w.r.t. the ReLU's output.
    """
    if isinstance(output, torch.Tensor) and output.requires_grad:
        output.register_hook(_positive_part)


def _guided_backprop(
    model: nn.Module, xb: torch.Tensor, targets: Targets, layer: str | None = None
) -> tuple[torch.Tensor, None]:
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    with forward_hooks((m, _guide) for m in relus):
        return input_grad(model, xb, targets), None


def _connected(model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """The model as Captum's forward function. Adding 0 * input keeps the output in the
    input's graph, so a model whose output ignores the input gets zero gradients instead of
    an autograd error; the values and gradients are unchanged."""

    def forward(inp: torch.Tensor) -> torch.Tensor:
        return logits_of(model, inp) + 0.0 * inp.flatten(1).sum(1, keepdim=True)

    return forward


def _saliency(
    model: nn.Module, xb: torch.Tensor, targets: Targets, layer: str | None = None
) -> tuple[torch.Tensor, None]:
    return input_grad(model, xb, targets), None


def smoothgrad_noise(x: torch.Tensor, n_samples: int, noise_level: float, seed: int) -> torch.Tensor:
    """The noise SmoothGrad adds: (n_samples, N, C, H, W), std = noise_level x each image's value range."""
    gen = torch.Generator().manual_seed(int(seed))
    noise = torch.randn((n_samples, *x.shape), generator=gen, dtype=torch.float32)
    span = (x.flatten(1).amax(1) - x.flatten(1).amin(1)).detach().float().cpu()
    return (noise * (noise_level * span).view(1, -1, 1, 1, 1)).to(device=x.device, dtype=x.dtype)


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise MethodError(message)


def _check_count(name: str, value: Any, least: int = 1) -> None:
    _check(isinstance(value, int) and value >= least, f"{name} must be an int >= {least}, not {value!r}")


@dataclass(frozen=True)
class Noise:
    """SmoothGrad's noisy copies of the input, also the noise tunnel's and VarGrad's: ``n_samples``
    copies, with Gaussian noise of std ``noise_level`` times each image's value range (paper:
    0.1-0.2), drawn from a generator seeded by ``seed`` (the same seed gives the same map)."""

    n_samples: int = 25
    noise_level: float = 0.15
    seed: int = 0

    def __post_init__(self) -> None:
        _check_count("n_samples", self.n_samples)
        _check(
            self.noise_level >= 0 and np.isfinite(self.noise_level),
            f"noise_level must be >= 0, not {self.noise_level!r}",
        )

    def draw(self, xb: torch.Tensor) -> torch.Tensor:
        """The noise for the batch ``xb``: (n_samples, N, C, H, W)."""
        return smoothgrad_noise(xb, self.n_samples, self.noise_level, self.seed)


@dataclass(frozen=True)
class SmoothGradOptions(Noise):
    """SmoothGrad's options: its :class:`Noise`, and ``batch_size`` noisy copies per forward pass."""

    batch_size: int = 16


@options_from(SmoothGradOptions)
def _smoothgrad(model: nn.Module, xb: torch.Tensor, targets: Targets, layer: str | None = None, **options: Any) -> Maps:
    from captum.attr import Saliency

    o = SmoothGradOptions(**options)
    noise = o.draw(xb)
    classes = targets.before(model, xb)  # the clean image's prediction, not a noisy copy's
    saliency = Saliency(_connected(model))
    n = xb.shape[0]
    total = torch.zeros_like(xb)
    for chunk in noise.split(max(1, o.batch_size // n)):  # several noisy copies per forward pass
        s = chunk.shape[0]
        noisy = (xb.detach().unsqueeze(0) + chunk).reshape(s * n, *xb.shape[1:]).requires_grad_(True)
        grads = saliency.attribute(noisy, target=classes.repeat(s), abs=False)
        total += grads.reshape(s, *xb.shape).sum(0)
    return total / o.n_samples, None


def _baseline(xb: torch.Tensor, baseline: BaselineLike) -> torch.Tensor:
    if baseline is None:
        return torch.zeros_like(xb)
    try:
        b = torch.as_tensor(np.asarray(baseline) if not isinstance(baseline, torch.Tensor) else baseline.detach())
        return torch.broadcast_to(b.to(device=xb.device, dtype=xb.dtype), xb.shape).clone()
    except (TypeError, ValueError, RuntimeError) as exc:
        raise MethodError(f"the baseline must be a number or broadcast to the input {tuple(xb.shape)} ({exc})") from exc


@dataclass(frozen=True)
class IntegratedGradientsOptions:
    """Integrated gradients' options: ``steps`` of the Gauss-Legendre rule along the path, the
    ``baseline`` it starts from (in the model's normalised input space; default zeros, the mean
    image) and ``batch_size`` points of the path per forward pass."""

    steps: int = 50
    baseline: BaselineLike = None
    batch_size: int = 32

    def __post_init__(self) -> None:
        _check_count("steps", self.steps)


@options_from(IntegratedGradientsOptions)
def _integrated_gradients(
    model: nn.Module, xb: torch.Tensor, targets: Targets, layer: str | None = None, **options: Any
) -> Maps:
    from captum.attr import IntegratedGradients

    o = IntegratedGradientsOptions(**options)
    ig = IntegratedGradients(_connected(model))
    attr = ig.attribute(
        xb.detach(),
        baselines=_baseline(xb, o.baseline),
        target=targets.before(model, xb),
        n_steps=o.steps,
        method="gausslegendre",
        internal_batch_size=max(o.batch_size, xb.shape[0]),
    )
    return attr, None


def guided_backprop(model: nn.Module, x: torch.Tensor, target: Target = None) -> np.ndarray:
    """Guided backpropagation (Springenberg et al. 2015): (C, H, W) or (N, C, H, W), raw."""
    return attribute(model, x, target, _guided_backprop).map


def saliency(model: nn.Module, x: torch.Tensor, target: Target = None) -> np.ndarray:
    """The gradient of the target logit w.r.t. the input (Simonyan et al. 2014), signed:
    (C, H, W) or (N, C, H, W). viz.reduce_channels(..., "absmax") gives the classic map."""
    return attribute(model, x, target, _saliency).map


@options_from(SmoothGradOptions)
def smoothgrad(model: nn.Module, x: torch.Tensor, target: Target = None, **options: Any) -> np.ndarray:
    """SmoothGrad (Smilkov et al. 2017): the mean saliency over noisy copies of the input,
    (C, H, W) or (N, C, H, W).

    Args:
        options: n_samples, noise_level (noise std as a fraction of each image's value range),
            seed (the same seed gives the same map), batch_size; see :class:`SmoothGradOptions`.
    """
    return attribute(model, x, target, partial(_smoothgrad, **options)).map


@options_from(IntegratedGradientsOptions)
def integrated_gradients(model: nn.Module, x: torch.Tensor, target: Target = None, **options: Any) -> np.ndarray:
    """Integrated gradients (Sundararajan et al. 2017), Captum's Gauss-Legendre rule.

    Args:
        options: steps, baseline (in the model's normalised input space; default zeros, the mean
            image), batch_size; see :class:`IntegratedGradientsOptions`.
    """
    return attribute(model, x, target, partial(_integrated_gradients, **options)).map
