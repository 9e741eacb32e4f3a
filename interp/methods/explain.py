"""One entry point for attribution: ``explain(model, x, method)`` -> Explanation."""

from __future__ import annotations

from functools import partial
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from ..errors import MethodError
from .attribution.reference import with_noise_tunnel
from .core import Compute, Explanation, Target, as_batch, attribute, layer_resolution, logits_of, reduce_channels, using
from .records import REGISTRY, get_method, method_names

__all__ = [
    "CAM_FAMILY",
    "LAYER_METHODS",
    "LAYER_RESOLUTION_METHODS",
    "METHODS",
    "SPATIAL_METHODS",
    "TUNNEL_METHODS",
    "Explanation",
    "explain",
    "noise_tunnel",
    "predict",
    "reduce_channels",
]


class _Methods(Mapping[str, Callable]):
    """Method name -> its internal function, read from :data:`.records.REGISTRY` on each access,
    so that a method registered later appears here too."""

    def __getitem__(self, name: str) -> Callable:
        if name not in REGISTRY:
            raise KeyError(name)
        return REGISTRY[name].function()

    def __iter__(self) -> Iterator[str]:
        return iter(list(REGISTRY))

    def __len__(self) -> int:
        return len(REGISTRY)


METHODS: Mapping[str, Callable] = _Methods()
# Sets of the built-in methods, read from their records (kept for callers that used them).
# The CAM family beyond CAM and Grad-CAM: one map per pixel, a weighting of a layer's maps (what
# the benchmark's `cam_family` and the peer tests hold to pytorch-grad-cam's CAM classes). Deep
# Feature Factorization is listed with the CAMs but picks one NMF part instead: not among them.
CAM_FAMILY = tuple(n for n in method_names(family="Class activation maps") if n not in ("cam", "grad_cam", "dff"))
SPATIAL_METHODS = method_names(spatial=True)  # one value per pixel; the others per input channel and pixel
LAYER_METHODS = method_names(needs_layer=True)  # read a layer (the others differentiate w.r.t. the input only)
LAYER_RESOLUTION_METHODS = method_names(layer_resolution=True)  # explain(..., resolution="layer") applies
TUNNEL_METHODS = method_names(tunnel=True)  # the noise tunnel can wrap them
TUNNEL_OPTIONS = ("noise_tunnel", "nt_samples", "nt_noise_level", "nt_seed")


def _options_of(method: str) -> list[str]:
    """The options a method takes (its keyword parameters besides model, input, targets, layer)."""
    return list(get_method(method).options())


def explain(
    model: nn.Module,
    x: torch.Tensor,
    method: str,
    target: Target = None,
    layer: str | Sequence[str] | None = None,
    resolution: str = "input",
    image: Any = None,
    **options: Any,
) -> Explanation:
    """Attribute a model's decision to its input with one of :data:`METHODS`.

    Args:
        model: a classifier returning N x classes logits; it is not modified.
        x: a preprocessed image (C x H x W or 1 x C x H x W) or a batch N x C x H x W.
        method: one of :data:`METHODS`: cam, grad_cam, guided_backprop, guided_grad_cam, saliency,
            smoothgrad, integrated_gradients, the CAM family (:data:`CAM_FAMILY`: grad_cam_pp,
            xgrad_cam, hires_cam, layer_cam, score_cam, ablation_cam, eigen_cam, eigen_grad_cam),
            input_x_gradient, deeplift, gradient_shap, deconvolution, vargrad, occlusion, lime,
            kernel_shap, fullgrad, dff, rise (every name of :data:`METHODS`).
        target: class index (or one per image); default the model's prediction.
        layer: for grad_cam, guided_grad_cam, the CAM family and dff (default: the last conv stage),
            and cam (must be the maps the head pools); a list for layer_cam fuses those layers'
            maps; ignored by the input-gradient methods.
        options: method options, e.g. relu=False (grad_cam and the CAM family), n_samples /
            noise_level / seed (smoothgrad, vargrad), steps / baseline (integrated_gradients),
            batch_size (score_cam, ablation_cam), gamma (layer_cam's fusion), center (eigen_cam,
            eigen_grad_cam), baseline (deeplift), n_samples / stdevs / baselines / seed
            (gradient_shap), window / stride / baseline (occlusion), n_samples / n_segments / seed /
            mean / std / segments (lime, kernel_shap), scaling (fullgrad), n_components / seed
            (dff), n_masks / grid / p / seed / batch_size (rise). ``noise_tunnel`` = smoothgrad | smoothgrad_sq
            | vargrad wraps a method of :data:`TUNNEL_METHODS` in the noise tunnel, with nt_samples /
            nt_noise_level / nt_seed (SmoothGrad's seeded noise; see :mod:`.attribution`).
        resolution: "input" (maps at the input's size; the CAMs upsampled bilinearly) or "layer"
            (the CAMs at their layer's own size, as computed: h x w; a fused layer_cam at its
            largest layer's size).
        image: the picture ``x`` was made from (a PIL image, a file, an RGB array; one per image
            of a batch), kept for display only: in Jupyter the Explanation shows its map over it
            (see :meth:`Explanation.with_image`). It does not change the map.

    Raises:
        MethodError: unknown method or option. TargetError: a class the model does not have.
        LayerError: unknown layer; CamNotApplicableError for CAM on a model without a GAP head.
        ImageError: an input that is not an image tensor, or an ``image`` that is not a picture.
    """
    spec = get_method(method)
    fn = spec.function()
    tunnel = {k: options.pop(k) for k in TUNNEL_OPTIONS if k in options}
    kind = tunnel.pop("noise_tunnel", None)
    if kind is None and tunnel:
        raise MethodError(f"{', '.join(tunnel)} need noise_tunnel=smoothgrad|smoothgrad_sq|vargrad")
    if kind is not None and not spec.tunnel:
        raise MethodError(f"the noise tunnel wraps {', '.join(method_names(tunnel=True))}, not {method}")
    allowed = _options_of(method)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise MethodError(
            f"{method} does not take option(s) {', '.join(unknown)}; it takes: {', '.join(allowed) or 'none'}"
        )
    compute: Compute = partial(fn, **options, layer=layer if spec.needs_layer else None)
    if kind is not None:
        compute = with_noise_tunnel(compute, kind, **tunnel)
    if resolution not in ("input", "layer"):
        raise MethodError(f"resolution must be 'input' or 'layer', not {resolution!r}")
    if resolution == "layer":
        if not spec.layer_resolution:
            raise MethodError(
                f"{method} has no map at a layer's resolution; the CAMs do: "
                f"{', '.join(method_names(layer_resolution=True))}"
            )
        with layer_resolution():
            result = attribute(model, x, target, compute, method)
    else:
        result = attribute(model, x, target, compute, method)
    return result if image is None else result.with_image(image, size=(int(x.shape[-2]), int(x.shape[-1])))


def predict(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    """Softmax probabilities, (N, classes), under the model's lock and without gradients."""
    xb, _ = as_batch(model, x)
    with using(model) as m, torch.no_grad():
        return torch.softmax(logits_of(m, xb).float(), dim=1).cpu().numpy()


def noise_tunnel(
    model: nn.Module,
    x: torch.Tensor,
    method: str,
    kind: str = "smoothgrad",
    target: Target = None,
    n_samples: int = 25,
    noise_level: float = 0.15,
    seed: int = 0,
    **options: Any,
) -> np.ndarray:
    """Any gradient method over noisy copies of the input: the same as
    ``explain(model, x, method, noise_tunnel=kind, nt_samples=..., nt_noise_level=..., nt_seed=...)``.

    Args:
        kind: smoothgrad (mean), smoothgrad_sq (mean square) or vargrad (variance).
        noise_level: as :func:`.gradients.smoothgrad`.
        seed: as :func:`.gradients.smoothgrad`.
    """
    return explain(
        model,
        x,
        method,
        target=target,
        noise_tunnel=kind,
        nt_samples=n_samples,
        nt_noise_level=noise_level,
        nt_seed=seed,
        **options,
    ).map
