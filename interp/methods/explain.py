"""One entry point for attribution: ``explain(model, x, method)`` -> Explanation."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Any, Callable, Sequence, Union

import numpy as np
import torch
from torch import nn

from .attribution import GRADIENT_FAMILY, with_noise_tunnel
from .cam import _cam, _grad_cam, _guided_grad_cam
from .cam_family import _eigen_cam, _eigen_grad_cam, _grad_cam_pp, _hires_cam, _layer_cam, _xgrad_cam
from .cam_perturb import _ablation_cam, _score_cam
from ..errors import MethodError
from .core import Target, as_batch, attribute, layer_resolution, logits_of, using
from .gradients import _guided_backprop, _integrated_gradients, _saliency, _smoothgrad
from .perturbation import PERTURBATION_FAMILY

METHODS: dict[str, Callable] = {
    "cam": _cam,
    "grad_cam": _grad_cam,
    "guided_backprop": _guided_backprop,
    "guided_grad_cam": _guided_grad_cam,
    "saliency": _saliency,
    "smoothgrad": _smoothgrad,
    "integrated_gradients": _integrated_gradients,
    "grad_cam_pp": _grad_cam_pp,
    "xgrad_cam": _xgrad_cam,
    "hires_cam": _hires_cam,
    "layer_cam": _layer_cam,
    "score_cam": _score_cam,
    "ablation_cam": _ablation_cam,
    "eigen_cam": _eigen_cam,
    "eigen_grad_cam": _eigen_grad_cam,
    **GRADIENT_FAMILY,  # input_x_gradient, deeplift, gradient_shap, deconvolution, vargrad
    **PERTURBATION_FAMILY,  # occlusion, lime, kernel_shap
}
# The CAM family beyond CAM and Grad-CAM (cam_family.py, cam_perturb.py): one map per pixel, read off a layer.
CAM_FAMILY = ("grad_cam_pp", "xgrad_cam", "hires_cam", "layer_cam", "score_cam", "ablation_cam", "eigen_cam",
              "eigen_grad_cam")
# Methods whose map has one value per pixel; the others have one per input channel and pixel.
# (Occlusion's window and LIME's/KernelSHAP's superpixels span every channel: one signed value
# per pixel, which a channel reduction such as absmax would lose the sign of.)
SPATIAL_METHODS = ("cam", "grad_cam", *CAM_FAMILY, "occlusion", "lime", "kernel_shap")
# Methods that read a layer (the others differentiate w.r.t. the input only).
LAYER_METHODS = ("cam", "grad_cam", "guided_grad_cam", *CAM_FAMILY)
# Methods whose map is computed at a layer's resolution and then upsampled: explain(...,
# resolution="layer") returns it as computed. (Guided Grad-CAM multiplies by an input gradient.)
LAYER_RESOLUTION_METHODS = tuple(m for m in LAYER_METHODS if m != "guided_grad_cam")
# Methods that the noise tunnel can wrap: the gradient methods that do not sample already.
TUNNEL_METHODS = ("grad_cam", "guided_backprop", "guided_grad_cam", "saliency", "integrated_gradients",
                  "input_x_gradient", "deeplift", "deconvolution")
TUNNEL_OPTIONS = ("noise_tunnel", "nt_samples", "nt_noise_level", "nt_seed")


@dataclass(frozen=True)
class Explanation:
    """An attribution of one image (or a batch) for one class."""

    map: np.ndarray  # raw, not normalised: (H, W) for SPATIAL_METHODS, (C, H, W) for the others; leading N for a batch
    target: Union[int, np.ndarray]  # the explained class (default: the prediction); (N,) for a batch
    probability: Union[float, np.ndarray]  # softmax probability of the target class
    method: str
    layer: str | None  # the layer a CAM method read ("a+b": layer_cam fused them); None for methods on the input alone
    neuron: tuple | None = None  # (layer, channel[, y, x]) for a neuron view (neuron_attribution)

    @property
    def batched(self) -> bool:
        return isinstance(self.target, np.ndarray)

    def spatial(self, how: str = "absmax") -> np.ndarray:
        """One value per pixel, (H, W) or (N, H, W): channel maps reduced by ``how``."""
        if self.method in SPATIAL_METHODS:
            return self.map
        return reduce_channels(self.map, how, channel_axis=-3)


_CHANNEL_REDUCTIONS: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {
    "absmax": lambda a, ax: np.abs(a).max(axis=ax),  # Simonyan et al.'s saliency map
    "abs_sum": lambda a, ax: np.abs(a).sum(axis=ax),
    "sum": lambda a, ax: a.sum(axis=ax),  # signed; integrated gradients' per-pixel attribution
    "l2": lambda a, ax: np.sqrt((a.astype(np.float64) ** 2).sum(axis=ax)).astype(a.dtype),
}


def reduce_channels(arr: np.ndarray, how: str = "absmax", channel_axis: int = -3) -> np.ndarray:
    """Collapse the channel axis of a (C, H, W) or (N, C, H, W) map: absmax, abs_sum, sum or l2."""
    if how not in _CHANNEL_REDUCTIONS:
        raise ValueError(f"how must be one of {', '.join(_CHANNEL_REDUCTIONS)}, not {how!r}")
    return _CHANNEL_REDUCTIONS[how](np.asarray(arr), channel_axis)


@lru_cache(maxsize=None)
def _options_of(method: str) -> list[str]:
    """The options a method takes (its keyword parameters besides model, input, targets, layer)."""
    params = inspect.signature(METHODS[method]).parameters
    return [p for p in params if p not in ("model", "xb", "targets", "layer")]


def explain(model: nn.Module, x: torch.Tensor, method: str, target: Target = None,
            layer: str | Sequence[str] | None = None, resolution: str = "input", **options: Any) -> Explanation:
    """Attribute a model's decision to its input with one of :data:`METHODS`.

    Args:
        model: a classifier returning N x classes logits; it is not modified.
        x: a preprocessed image (C x H x W or 1 x C x H x W) or a batch N x C x H x W.
        method: one of :data:`METHODS`: cam, grad_cam, guided_backprop, guided_grad_cam, saliency,
            smoothgrad, integrated_gradients, the CAM family (:data:`CAM_FAMILY`: grad_cam_pp,
            xgrad_cam, hires_cam, layer_cam, score_cam, ablation_cam, eigen_cam, eigen_grad_cam),
            input_x_gradient, deeplift, gradient_shap, deconvolution, vargrad, occlusion, lime,
            kernel_shap.
        target: class index (or one per image); default the model's prediction.
        layer: for grad_cam, guided_grad_cam and the CAM family (default: the last conv stage),
            and cam (must be the maps the head pools); a list for layer_cam fuses those layers'
            maps; ignored by the input-gradient methods.
        options: method options, e.g. relu=False (grad_cam and the CAM family), n_samples /
            noise_level / seed (smoothgrad, vargrad), steps / baseline (integrated_gradients),
            batch_size (score_cam, ablation_cam), gamma (layer_cam's fusion), center (eigen_cam,
            eigen_grad_cam), baseline (deeplift), n_samples / stdevs / baselines / seed
            (gradient_shap), window / stride / baseline (occlusion), n_samples / n_segments / seed /
            mean / std / segments (lime, kernel_shap). ``noise_tunnel`` = smoothgrad | smoothgrad_sq
            | vargrad wraps a method of :data:`TUNNEL_METHODS` in the noise tunnel, with nt_samples /
            nt_noise_level / nt_seed (SmoothGrad's seeded noise; see :mod:`.attribution`).
        resolution: "input" (maps at the input's size; the CAMs upsampled bilinearly) or "layer"
            (the CAMs at their layer's own size, as computed: h x w; a fused layer_cam at its
            largest layer's size).

    Raises:
        MethodError: unknown method or option. TargetError: a class the model does not have.
        LayerError: unknown layer; CamNotApplicableError for CAM on a model without a GAP head.
        ImageError: an input that is not an image tensor.
    """
    fn = METHODS.get(method)
    if fn is None:
        raise MethodError(f"unknown method {method!r}; choose one of: {', '.join(METHODS)}")
    tunnel = {k: options.pop(k) for k in TUNNEL_OPTIONS if k in options}
    kind = tunnel.pop("noise_tunnel", None)
    if kind is None and tunnel:
        raise MethodError(f"{', '.join(tunnel)} need noise_tunnel=smoothgrad|smoothgrad_sq|vargrad")
    if kind is not None and method not in TUNNEL_METHODS:
        raise MethodError(f"the noise tunnel wraps {', '.join(TUNNEL_METHODS)}, not {method}")
    allowed = _options_of(method)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise MethodError(f"{method} does not take option(s) {', '.join(unknown)}; "
                          f"it takes: {', '.join(allowed) or 'none'}")
    compute = partial(fn, **options, layer=layer if method in LAYER_METHODS else None)
    if kind is not None:
        compute = with_noise_tunnel(compute, kind, **tunnel)
    if resolution not in ("input", "layer"):
        raise MethodError(f"resolution must be 'input' or 'layer', not {resolution!r}")
    if resolution == "layer":
        if method not in LAYER_RESOLUTION_METHODS:
            raise MethodError(f"{method} has no map at a layer's resolution; the CAMs do: "
                              f"{', '.join(LAYER_RESOLUTION_METHODS)}")
        with layer_resolution():
            result = attribute(model, x, target, compute)
    else:
        result = attribute(model, x, target, compute)
    return Explanation(result.map, result.target, result.probability, method, result.layer)


def predict(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    """Softmax probabilities, (N, classes), under the model's lock and without gradients."""
    xb, _ = as_batch(model, x)
    with using(model) as m, torch.no_grad():
        return torch.softmax(logits_of(m, xb).float(), dim=1).cpu().numpy()
