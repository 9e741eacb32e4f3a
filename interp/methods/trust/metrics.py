"""Quality metrics of attribution maps beside deletion/insertion, after their papers (and Quantus's
choices where the papers leave one open):

- average drop and increase in confidence (Chattopadhyay et al., Grad-CAM++, WACV 2018): the image
  multiplied by the map scaled to [0, 1], in pixel space (black where the map is 0);
- sparseness (Chalasani et al., ICML 2020): the Gini index of |map|, 1 = all on one pixel;
- complexity (Bhatt et al., IJCAI 2020): the entropy of |map| / sum |map|, low = concentrated;
- max-sensitivity (Yeh et al., NeurIPS 2019): the largest relative change of the map under
  uniform input noise of a given radius (Monte Carlo, seeded), maps scaled by their max |value|;
- random logit (Sixt et al., ICML 2020): SSIM between the map of the class and the map of a random
  other class; a map that explains the class and not the image should score low;
- ROAD (Rong et al., ICML 2022): remove the most (MoRF) or least (LeRF) important pixels and fill
  them by noisy linear imputation, so the filling carries no hint of the removed shape.

Every metric reads the one-value-per-pixel map (``Explanation.spatial()``), so every method is
scored the same way. These score one image; :mod:`.batched` scores many at once (and computes these).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from ...errors import MethodError
from ..core import Target, as_batch, logits_of, resolve_targets, using
from ..explain import explain
from . import batched
from .batched.road import ROAD_PERCENTAGES

MethodOptions = Mapping[str, Any] | None  # the explained method's own options (explain's keywords)


def _target_of(model: nn.Module, x: torch.Tensor, target: Target) -> tuple[torch.Tensor, int, int]:
    """(the image as a batch of one, its target class, the model's number of classes), from one pass."""
    xb, _ = as_batch(model, x)
    if xb.shape[0] != 1:
        raise MethodError(f"the metrics score one image at a time; got a batch of {xb.shape[0]}")
    with using(model) as m, torch.no_grad():
        logits = logits_of(m, xb)
    return xb, int(resolve_targets(logits, target)[0]), logits.shape[1]


def _spatial_maps(
    model: nn.Module, xb: torch.Tensor, method: str, targets: list[int], options: Mapping[str, Any]
) -> np.ndarray:
    """(N, H, W) one-value-per-pixel maps of a batch (explain drops the batch axis of a single image)."""
    maps = explain(model, xb, method, target=targets, **options).spatial()
    return np.asarray(maps).reshape(len(xb), *maps.shape[-2:])


def sparseness(saliency_map: np.ndarray) -> float:
    """Gini index of |map| (0: all pixels equal, -> 1: one pixel holds everything); one map of
    :func:`.batched.sparseness`, with 1e-12 for its eps."""
    return float(batched.sparseness(_one(saliency_map), eps=1e-12)[0])


def complexity(saliency_map: np.ndarray) -> float:
    """Entropy (nats) of each pixel's share of |map|: log(pixels) for a flat map, 0 for one pixel
    (and for an all-zero map); one map of :func:`.batched.complexity`."""
    value = float(batched.complexity(_one(saliency_map))[0])
    return 0.0 if np.isnan(value) else value


def _one(saliency_map: np.ndarray) -> np.ndarray:
    """Any array as one map of the batched metrics (its values, whatever its shape)."""
    return np.asarray(saliency_map, dtype=np.float64).reshape(1, 1, -1)


def average_drop(
    model: nn.Module,
    x: torch.Tensor,
    saliency_map: np.ndarray,
    target: Target = None,
    mean: Sequence[float] = (0.0, 0.0, 0.0),
    std: Sequence[float] = (1.0, 1.0, 1.0),
) -> dict[str, float]:
    """Confidence in the class on the image multiplied by its map, against the image alone (one
    image of :func:`.batched.average_drop`).

    Args:
        saliency_map: (H, W) at the input's resolution; its |values| are scaled to [0, 1].
        mean: the model's input normalisation, so that the masking happens in pixel space.
        std: likewise.

    Returns:
        drop: max(0, Y - O) / Y (average drop is its mean over images, in %), increase: 1.0
        where O > Y (increase in confidence is its mean), and the two probabilities Y and O.
    """
    xb, c, _ = _target_of(model, x, target)
    found = batched.average_drop(model, xb, np.asarray(saliency_map)[None], c, mean, std)
    return {k: float(v[0]) for k, v in found.items()}


def max_sensitivity(
    model: nn.Module,
    x: torch.Tensor,
    method: str,
    target: Target = None,
    radius: float = 0.2,
    n_perturbations: int = 10,
    seed: int = 0,
    options: MethodOptions = None,
) -> float:
    """max over noisy copies x + u, u ~ U(-radius, radius) per input value (the model's input
    units), of ||E(x + u) - E(x)|| / ||E(x)|| (Frobenius norms of max-scaled maps, class fixed);
    one image of :func:`.batched.max_sensitivity`.

    Args:
        options: the method's own options (explain's keywords).
    """
    n_samples, options = n_perturbations, dict(options or {})
    if n_samples < 1 or radius < 0:
        raise MethodError(f"max-sensitivity needs n_perturbations >= 1 and radius >= 0, got {n_samples}, {radius}")
    xb, c, _ = _target_of(model, x, target)
    scores = batched.max_sensitivity(model, xb, batched.explainer(method, **options), c, radius, n_samples, seed)
    return float(scores[0])


def random_logit(
    model: nn.Module, x: torch.Tensor, method: str, target: Target = None, seed: int = 0, options: MethodOptions = None
) -> dict[str, Any]:
    """SSIM of the class's map and the map of a random other class (drawn with ``seed``);
    both maps scaled to [0, 1] by their max |value|. Lower: the map depends on the class.
    ``options``: the method's own options. One image of :func:`.batched.random_logit` (which draws
    the other class as Quantus does; this keeps its own draw)."""
    options = dict(options or {})
    xb, c, classes = _target_of(model, x, target)
    others = [k for k in range(classes) if k != c]
    other = others[int(np.random.default_rng(seed).integers(len(others)))]
    scores = batched.random_logit(model, xb, batched.explainer(method, **options), c, others=[other])
    return {"ssim": float(scores[0]), "target": c, "other": other}


@dataclass(frozen=True)
class Road:
    """ROAD curve of one map: the class probability after removing each share of pixels."""

    percentages: np.ndarray  # share of pixels removed, in %
    probability: np.ndarray  # probability of the target class after each removal
    kept: np.ndarray  # 1.0 where the prediction is still the target (Quantus's per-image ROAD)
    auc: float  # mean probability over the percentages: low for MoRF, high for LeRF is good
    order: str
    target: int


def road(
    model: nn.Module,
    x: torch.Tensor,
    saliency_map: np.ndarray,
    target: Target = None,
    percentages: Sequence[int] = ROAD_PERCENTAGES,
    order: str = "morf",
    noise: float = 0.01,
    seed: int = 0,
) -> Road:
    """ROAD: remove the top (``morf``) or bottom (``lerf``) pixels of the map, impute, re-classify
    (one image of :func:`.batched.road`).

    Raises:
        MethodError: an unknown order, a percentage outside [0, 100], or a map of another size.
    """
    if order not in ("morf", "lerf"):
        raise MethodError(f"order must be 'morf' (most relevant first) or 'lerf', not {order!r}")
    if any(not 0 <= p <= 100 for p in percentages):
        raise MethodError(f"percentages must lie in [0, 100], got {list(percentages)}")
    xb, c, _ = _target_of(model, x, target)
    m = np.asarray(saliency_map, dtype=np.float64)
    if m.shape != tuple(xb.shape[-2:]):
        raise MethodError(f"the map is {m.shape}, the input {tuple(xb.shape[-2:])}: give the input-resolution map")
    found = batched.road(model, xb, m[None], c, percentages, order, noise, seed)
    return Road(found.percentages, found.probability[0], found.kept[0], float(found.auc[0]), order, c)


def summarize_metrics(per_image: Sequence[Mapping[str, Mapping[str, float]]]) -> list[dict[str, Any]]:
    """Mean of each metric over images, one row per method (method -> metric -> value per image)."""
    methods = list(per_image[0]) if per_image else []
    return [
        {
            "method": method,
            **{metric: float(np.mean([img[method][metric] for img in per_image])) for metric in per_image[0][method]},
        }
        for method in methods
    ]


def metric_scores(
    model: nn.Module,
    x: torch.Tensor,
    methods: Sequence[str],
    target: Target = None,
    mean: Sequence[float] = (0.0, 0.0, 0.0),
    std: Sequence[float] = (1.0, 1.0, 1.0),
    options: Mapping[str, Mapping[str, Any]] | None = None,
    sensitivity_samples: int = 5,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Every metric of every method's map on one image: method -> metric -> value.

    Args:
        mean: the model's input normalisation (average drop masks in pixel space).
        std: likewise.
        options: per-method options for explain (e.g. fewer SmoothGrad samples).
        sensitivity_samples: noisy copies for max-sensitivity (each costs one explanation).
    """
    xb, c, _ = _target_of(model, x, target)
    scores = {}
    for method in methods:
        opts = dict((options or {}).get(method, {}))
        m = _spatial_maps(model, xb, method, [c], opts)[0]
        drop = average_drop(model, xb, m, c, mean, std)
        scores[method] = {
            "average_drop": 100 * drop["drop"],
            "increase_in_confidence": 100 * drop["increase"],
            "sparseness": sparseness(m),
            "complexity": complexity(m),
            "max_sensitivity": max_sensitivity(
                model, xb, method, c, n_perturbations=sensitivity_samples, seed=seed, options=opts
            ),
            "random_logit_ssim": random_logit(model, xb, method, c, seed=seed, options=opts)["ssim"],
            "road_morf": road(model, xb, m, c, seed=seed).auc,
        }
    return scores
