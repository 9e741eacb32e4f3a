"""How concentrated a map is, from the maps alone: sparseness, complexity and effective complexity
(Quantus's complexity family), every map of a batch at once."""

from __future__ import annotations

import numpy as np

from ....errors import ParameterError
from .base import MapsLike, as_maps, unit_max


def _flat_abs(maps: MapsLike) -> np.ndarray:
    a = as_maps(maps)
    return np.abs(a.reshape(len(a), -1))


def sparseness(maps: MapsLike, eps: float = 1e-7) -> np.ndarray:
    """The Gini index of each |map| (Chalasani et al., "Concise explanations of neural networks using
    adversarial training", ICML 2020), as Quantus's ``Sparseness``: 0 when every pixel holds the same
    share, towards 1 when one pixel holds everything. Higher: sparser.

    Args:
        maps: (N, H, W), (N, 1, H, W) or one (H, W).
        eps: added to every |value| (Quantus's 1e-7), so an all-zero map scores 0, not NaN.

    Returns:
        (N,) float64.

    Raises:
        ParameterError: maps of another shape, or not finite.
    """
    a = np.sort(_flat_abs(maps), axis=1) + eps
    n = a.shape[1]
    i = np.arange(1, n + 1)
    return ((2 * i - n - 1) * a).sum(1) / (n * a.sum(1))


def complexity(maps: MapsLike) -> np.ndarray:
    """The entropy (nats) of each pixel's share of |map| (Bhatt et al., "Evaluating and aggregating
    feature-based model explanations", IJCAI 2020), Quantus's ``Complexity``: log(pixels) for a flat
    map, 0 for one pixel. Lower: more concentrated.

    Quantus adds 1e-12 inside the logarithm; this is the exact entropy (0 log 0 = 0): the two differ
    by at most pixels x 1e-12.

    Args:
        maps: (N, H, W), (N, 1, H, W) or one (H, W).

    Returns:
        (N,) float64; NaN for an all-zero map (it has no shares), as in Quantus.

    Raises:
        ParameterError: maps of another shape, or not finite.
    """
    a = _flat_abs(maps)
    total = a.sum(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = a / total
        terms = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    out = -terms.sum(1)
    out[total[:, 0] == 0] = np.nan
    return out


def effective_complexity(maps: MapsLike, eps: float = 1e-5) -> np.ndarray:
    """How many pixels matter (Nguyen & Martinez, "On quantitative aspects of model
    interpretability", 2020), Quantus's ``EffectiveComplexity``: the number of pixels whose |value|,
    divided by the map's max |value|, exceeds ``eps``. Lower: fewer pixels carry the map.

    Quantus divides by the max over the whole batch by default (so an image's score depends on the
    images scored with it); it agrees with this per-map division given
    ``normalise_func_kwargs={"normalise_axes": (1, 2, 3)}``, or one image per batch.

    Args:
        maps: (N, H, W), (N, 1, H, W) or one (H, W).
        eps: the threshold on the max-scaled |value| (Quantus's default 1e-5).

    Returns:
        (N,) int64; 0 for an all-zero map.

    Raises:
        ParameterError: maps of another shape, not finite, or a negative eps.
    """
    if eps < 0:
        raise ParameterError(f"eps is a threshold on max-scaled |values| in [0, 1], not {eps}")
    a = np.abs(unit_max(as_maps(maps)))
    return (a.reshape(len(a), -1) > eps).sum(1).astype(np.int64)
