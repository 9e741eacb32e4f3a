"""Gradient and reference-based attributions: input x gradient, DeepLIFT, GradientSHAP,
deconvolution, VarGrad, and a noise tunnel around any gradient method.

- Input x gradient (Shrikumar et al. 2016, "Not just a black box"): x * d logit / dx, done here in
  one pass, like saliency.
- DeepLIFT, Rescale rule (Shrikumar et al. 2017): Captum's DeepLift on a private twin of the model
  (see :mod:`.twin`: in-place and reused activations are Captum's failure cases); a model that
  applies non-linear functions outside activation modules gets a MethodError, since DeepLIFT
  would silently use their gradient there.
- Deconvolution (Zeiler & Fergus 2014): Captum's Deconvolution on the same twin, because its
  backward hooks on ReLU modules fail on in-place ReLUs (torchvision's ResNet).
- GradientSHAP (Lundberg & Lee 2017): the expectation of grad(b + a (x + e - b)) * (x + e - b)
  over baselines b, a ~ U(0, 1) and noise e, as Captum's GradientShap computes it; done here so
  that a seeded generator draws the samples (Captum draws from torch's and numpy's global state).
- Noise tunnel: SmoothGrad (Smilkov et al. 2017), SmoothGrad-squared (Hooker et al. 2019) and
  VarGrad (Adebayo et al. 2018) over any gradient method, with SmoothGrad's seeded noise
  (:func:`.gradients.smoothgrad_noise`), as Captum's NoiseTunnel aggregates it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import torch
from torch import nn

from ..core import Compute, Maps, Target, Targets, attribute, input_grad, options_from
from ..twin import twin
from .gradients import BaselineLike, Noise, _baseline, _check, _check_count, _saliency

TUNNEL_KINDS = ("smoothgrad", "smoothgrad_sq", "vargrad")


def _input_x_gradient(
    model: nn.Module, xb: torch.Tensor, targets: Targets, layer: str | None = None
) -> tuple[torch.Tensor, None]:
    return xb * input_grad(model, xb, targets), None


def _deeplift(
    model: nn.Module, xb: torch.Tensor, targets: Targets, layer: str | None = None, baseline: BaselineLike = None
) -> tuple[torch.Tensor, None]:
    from captum.attr import DeepLift

    model_twin = twin(model, xb, targets, strict=True)
    attr = DeepLift(model_twin).attribute(xb.detach().clone(), baselines=_baseline(xb, baseline), target=targets.value)
    targets.of(model_twin.take_logits(xb.shape[0]))  # the input's rows of Captum's own pass
    return attr, None


def _deconvolution(
    model: nn.Module, xb: torch.Tensor, targets: Targets, layer: str | None = None
) -> tuple[torch.Tensor, None]:
    from captum.attr import Deconvolution

    model_twin = twin(model, xb, targets, strict=False)
    attr = Deconvolution(model_twin).attribute(xb.detach().clone(), target=targets.value)
    targets.of(model_twin.take_logits(xb.shape[0]))
    return attr, None


def gradient_shap_samples(
    xb: torch.Tensor, baselines: BaselineLike, n_samples: int, stdevs: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """GradientSHAP's samples, (n_samples, N, C, H, W) each: the points where the gradient is taken,
    b + a (x + e - b), and the differences x + e - b that multiply it.

    Args:
        baselines: a number, one image, or a stack (B, C, H, W) to draw from uniformly; default zeros.
        stdevs: std of the Gaussian noise e added to the input (absolute, as in Captum).
    """
    refs = _baselines(xb, baselines)
    gen = torch.Generator().manual_seed(int(seed))
    s, n = n_samples, xb.shape[0]
    noise = torch.randn((s, *xb.shape), generator=gen) * float(stdevs)
    pick = torch.randint(0, refs.shape[0], (s, n), generator=gen)
    alpha = torch.rand((s, n, 1, 1, 1), generator=gen)
    device, dtype = xb.device, xb.dtype
    b = refs[pick.to(refs.device)]
    delta = xb.detach().unsqueeze(0) + noise.to(device=device, dtype=dtype) - b
    return b + alpha.to(device=device, dtype=dtype) * delta, delta


def _baselines(xb: torch.Tensor, baselines: BaselineLike) -> torch.Tensor:
    """A stack of baselines (B, C, H, W) on the input's device."""
    if isinstance(baselines, (torch.Tensor, np.ndarray)) and np.ndim(baselines) == 4:
        b = torch.as_tensor(baselines).detach().to(device=xb.device, dtype=xb.dtype)
        _check(
            b.shape[1:] == xb.shape[1:] and b.shape[0] >= 1,
            f"baselines (B, C, H, W) must match the input's {tuple(xb.shape[1:])}, not {tuple(b.shape)}",
        )
        return b
    return _baseline(xb[:1], baselines)


@dataclass(frozen=True)
class GradientShapOptions:
    """GradientSHAP's options: ``n_samples`` points, Gaussian noise of std ``stdevs`` (absolute, as in
    Captum), the ``baselines`` (see :func:`gradient_shap_samples`), the ``seed`` of the draws and
    ``batch_size`` points per forward pass."""

    n_samples: int = 25
    stdevs: float = 0.0
    baselines: BaselineLike = None
    seed: int = 0
    batch_size: int = 32

    def __post_init__(self) -> None:
        _check_count("n_samples", self.n_samples)
        _check(self.stdevs >= 0 and np.isfinite(self.stdevs), f"stdevs must be >= 0, not {self.stdevs!r}")


@options_from(GradientShapOptions)
def _gradient_shap(
    model: nn.Module, xb: torch.Tensor, targets: Targets, layer: str | None = None, **options: Any
) -> Maps:
    o = GradientShapOptions(**options)
    classes = targets.before(model, xb)  # the clean image's class
    points, deltas = gradient_shap_samples(xb, o.baselines, o.n_samples, o.stdevs, o.seed)
    n = xb.shape[0]
    total = torch.zeros_like(xb)
    for p, d in zip(points.split(max(1, o.batch_size // n)), deltas.split(max(1, o.batch_size // n))):
        s = p.shape[0]
        grads = input_grad(model, p.reshape(s * n, *xb.shape[1:]), Targets(classes.repeat(s)))
        total += (grads.reshape(s, *xb.shape) * d).sum(0)
    return total / o.n_samples, None


def _noise_tunnel(
    model: nn.Module, xb: torch.Tensor, targets: Targets, inner: Compute, kind: str, noise: Noise, batch_size: int = 16
) -> Maps:
    """``inner`` over the ``noise``'s copies of the input, aggregated as Captum's NoiseTunnel does: the
    mean (smoothgrad), the mean square (smoothgrad_sq) or the variance (vargrad) of the maps."""
    _check(kind in TUNNEL_KINDS, f"noise_tunnel must be one of {', '.join(TUNNEL_KINDS)}, not {kind!r}")
    draws = noise.draw(xb)
    classes = targets.before(model, xb)  # the clean image's prediction, not a noisy copy's
    n = xb.shape[0]
    # Several copies of one image per pass; a batch goes one copy at a time, so that a baseline
    # given per image still matches the batch it is given with.
    total: torch.Tensor | None = None
    total_sq: torch.Tensor | None = None
    layer: str | None = None
    for chunk in draws.split(max(1, batch_size // n) if n == 1 else 1):
        s = chunk.shape[0]
        noisy = (xb.detach().unsqueeze(0) + chunk).reshape(s * n, *xb.shape[1:])
        maps, layer = inner(model, noisy, Targets(classes.repeat(s)))
        maps = maps.detach().reshape(s, n, *maps.shape[1:])
        part, part_sq = maps.sum(0), (maps * maps).sum(0)
        if total is None or total_sq is None:
            total, total_sq = part, part_sq
        else:
            total, total_sq = total + part, total_sq + part_sq
    assert total is not None and total_sq is not None  # n_samples >= 1: at least one chunk
    mean, mean_sq = total / noise.n_samples, total_sq / noise.n_samples
    if kind == "smoothgrad":
        return mean, layer
    if kind == "smoothgrad_sq":
        return mean_sq, layer
    return (mean_sq - mean * mean).clamp(min=0), layer  # rounding could leave a variance of -1e-12


@options_from(Noise)
def _vargrad(model: nn.Module, xb: torch.Tensor, targets: Targets, layer: str | None = None, **options: Any) -> Maps:
    return _noise_tunnel(model, xb, targets, _saliency, "vargrad", Noise(**options))


def with_noise_tunnel(
    compute: Compute, kind: str, nt_samples: int = 25, nt_noise_level: float = 0.15, nt_seed: int = 0
) -> Compute:
    """``compute`` (a method with its options bound) wrapped in the noise tunnel."""
    return partial(_noise_tunnel, inner=compute, kind=kind, noise=Noise(nt_samples, nt_noise_level, nt_seed))


# ---------------------------------------------------------------------------------------------
# Public functions (explain() reaches the same computations by name)


def input_x_gradient(model: nn.Module, x: torch.Tensor, target: Target = None) -> np.ndarray:
    """Input x gradient (Shrikumar et al. 2016): (C, H, W) or (N, C, H, W), signed."""
    return attribute(model, x, target, _input_x_gradient).map


def deeplift(model: nn.Module, x: torch.Tensor, target: Target = None, baseline: BaselineLike = None) -> np.ndarray:
    """DeepLIFT's Rescale rule (Shrikumar et al. 2017), Captum's DeepLift on a twin of the model.

    Args:
        baseline: the reference, in the model's (normalised) input space; default zeros.

    Raises:
        MethodError: the model applies a non-linear function outside an activation module.
    """
    return attribute(model, x, target, partial(_deeplift, baseline=baseline)).map


def deconvolution(model: nn.Module, x: torch.Tensor, target: Target = None) -> np.ndarray:
    """Deconvnet backpropagation (Zeiler & Fergus 2014): ReLUs pass max(gradient, 0) whatever
    their input; Captum's Deconvolution on a twin of the model. (C, H, W) or (N, C, H, W)."""
    return attribute(model, x, target, _deconvolution).map


@options_from(GradientShapOptions)
def gradient_shap(model: nn.Module, x: torch.Tensor, target: Target = None, **options: Any) -> np.ndarray:
    """GradientSHAP (Lundberg & Lee 2017); samples from :func:`gradient_shap_samples`, seeded.

    Args:
        options: n_samples, stdevs, baselines, seed, batch_size; see :class:`GradientShapOptions`.
    """
    return attribute(model, x, target, partial(_gradient_shap, **options)).map


@options_from(Noise)
def vargrad(model: nn.Module, x: torch.Tensor, target: Target = None, **options: Any) -> np.ndarray:
    """VarGrad (Adebayo et al. 2018): the variance of the saliency over SmoothGrad's noisy copies.

    Args:
        options: n_samples, noise_level, seed, as :func:`.gradients.smoothgrad`'s; see :class:`.gradients.Noise`.
    """
    return attribute(model, x, target, partial(_vargrad, **options)).map
