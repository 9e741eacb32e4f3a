"""Whether a map falls on the object, given ground-truth masks: the pointing game, the energy-based
pointing game and relevance mass accuracy (Quantus's localisation family), a batch at once."""

from __future__ import annotations

import math

import numpy as np
import torch

from ....errors import ParameterError
from .base import MapsLike, as_maps, as_masks


def _dilate(masks: np.ndarray, radius: float) -> np.ndarray:
    """Each mask grown by a disc of ``radius`` pixels (Euclidean)."""
    r = math.floor(radius)
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    disc = torch.from_numpy((yy**2 + xx**2 <= radius**2).astype(np.float64))[None, None]
    grown = torch.nn.functional.conv2d(torch.from_numpy(masks.astype(np.float64))[:, None], disc, padding=r)
    return grown[:, 0].numpy() > 0.5


def pointing_game(maps: MapsLike, masks: MapsLike, tolerance: float = 0.0) -> np.ndarray:
    """1 where the map's maximum lies on the object, else 0 (Zhang et al., "Top-down neural attention
    by excitation backprop", IJCV 2018); Quantus's ``PointingGame``: where several pixels share the
    maximum, one on the object is a hit.

    Args:
        maps: (N, H, W), signed values as they are (the highest value is the point).
        masks: (N, H, W) bool, True on the object.
        tolerance: a hit may miss the mask by this many pixels (Zhang et al. use 15 at 224 x 224;
            Quantus and the default: 0).

    Returns:
        (N,) float64: 1.0 or 0.0; NaN for an empty mask (Quantus counts that as a hit, by casting NaN
        to bool).

    Raises:
        ParameterError: masks of another shape than the maps, maps not finite, a negative tolerance.
    """
    if tolerance < 0:
        raise ParameterError(f"tolerance is a distance in pixels >= 0, not {tolerance}")
    a = as_maps(maps)
    m = as_masks(masks, a.shape)
    near = _dilate(m, tolerance) if tolerance > 0 else m
    flat = a.reshape(len(a), -1)
    on_max = flat == flat.max(1, keepdims=True)
    hit = (on_max & near.reshape(len(a), -1)).any(1).astype(np.float64)
    hit[~m.reshape(len(a), -1).any(1)] = np.nan
    return hit


def _positive_share(maps: MapsLike, masks: MapsLike) -> np.ndarray:
    a = np.clip(as_maps(maps), 0, None)
    m = as_masks(masks, a.shape)
    inside = (a * m).reshape(len(a), -1).sum(1)
    total = a.reshape(len(a), -1).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = inside / total
    share[(total == 0) | ~m.reshape(len(a), -1).any(1)] = np.nan
    return share


def relevance_mass_accuracy(maps: MapsLike, masks: MapsLike) -> np.ndarray:
    """The share of the map's positive mass that lies on the object (Arras et al., "CLEVR-XAI: a
    benchmark dataset for the ground truth evaluation of neural network explanations", Information
    Fusion 2022): sum of max(map, 0) inside the mask / sum of max(map, 0). Higher: better localised.

    Arras et al. count positive relevance only; Quantus's ``RelevanceMassAccuracy`` sums the values
    as they are, so it agrees for non-negative maps; for signed maps, Quantus's
    ``AttributionLocalisation(positive_attributions=True, abs=False)`` is the same quantity (up to
    the 1e-9 it adds to the denominator).

    Args:
        maps: (N, H, W).
        masks: (N, H, W) bool, True on the object.

    Returns:
        (N,) float64 in [0, 1]; NaN for an empty mask or a map without positive values.

    Raises:
        ParameterError: masks of another shape than the maps, maps not finite.
    """
    return _positive_share(maps, masks)


def energy_pointing_game(maps: MapsLike, masks: MapsLike) -> np.ndarray:
    """The energy-based pointing game (Wang et al., "Score-CAM: score-weighted visual explanations
    for convolutional neural networks", CVPR workshops 2020): the share of the map's positive energy
    inside the object's bounding box (or mask). The same quantity as
    :func:`relevance_mass_accuracy`, named as the CAM literature reports it; Quantus's
    ``AttributionLocalisation(positive_attributions=True, abs=False)`` (Kohlbrenner et al.) computes
    it too, with 1e-9 added to the denominator.

    Args:
        maps: (N, H, W); negative values count as no energy (a CAM's are cut at 0 anyway).
        masks: (N, H, W) bool, True in the box.

    Returns:
        (N,) float64 in [0, 1]; NaN for an empty mask or a map without positive values.

    Raises:
        ParameterError: masks of another shape than the maps, maps not finite.
    """
    return _positive_share(maps, masks)
