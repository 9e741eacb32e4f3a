"""numpy -> pictures, without Plotly: display scaling, colour maps, overlays, mosaics.

Methods return raw maps; every scaling for display happens here, explicitly, and never
produces NaN: constant maps, all-zero gradients and NaN/inf inputs all give finite output.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch
from PIL import Image

from ..errors import ParameterError

__all__ = [
    "COLORMAPS",
    "EPS",
    "apply_colormap",
    "as_rgb_uint8",
    "denormalize",
    "filter_mosaic",
    "finite",
    "gradient_image",
    "normalize",
    "overlay",
    "shrink",
]

COLORMAPS = {
    "jet": cv2.COLORMAP_JET,
    "turbo": cv2.COLORMAP_TURBO,
    "viridis": cv2.COLORMAP_VIRIDIS,
    "inferno": cv2.COLORMAP_INFERNO,
    "magma": cv2.COLORMAP_MAGMA,
    "plasma": cv2.COLORMAP_PLASMA,
    "hot": cv2.COLORMAP_HOT,
    "bone": cv2.COLORMAP_BONE,
}
EPS = 1e-12


def finite(arr: np.ndarray | torch.Tensor) -> np.ndarray:
    """float64 numpy copy with NaN and infinities replaced by 0."""
    if isinstance(arr, torch.Tensor):
        arr = arr.detach().float().cpu().numpy()
    return np.nan_to_num(np.asarray(arr, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)


def normalize(
    arr: np.ndarray | torch.Tensor, mode: str = "minmax", percentile: float = 99.0, per_item: bool = False
) -> np.ndarray:
    """Scale a raw map to [0, 1] for display (float32, never NaN).

    Args:
        mode: "minmax" (lowest -> 0, highest -> 1), "abs" (|x| / max|x|), "symmetric"
            (0 -> 0.5, +-max|x| -> 1 / 0: signed maps and filters), or "percentile"
            (|x| clipped at its ``percentile``-th percentile, then scaled: maps with outliers).
        per_item: scale each arr[i] on its own (a batch of maps, a bank of filters).

    A constant map gives 0 (0.5 for "symmetric" when it is all zero); NaN/inf count as 0.
    """
    a = finite(arr)
    if per_item and a.ndim > 0 and a.shape[0] > 0:
        return np.stack([normalize(item, mode, percentile) for item in a]).astype(np.float32)
    if a.size == 0:
        return a.astype(np.float32)
    if mode == "minmax":
        lo, hi = a.min(), a.max()
        out = (a - lo) / (hi - lo) if hi - lo > EPS else np.zeros_like(a)
    elif mode == "abs":
        m = np.abs(a).max()
        out = np.abs(a) / m if m > EPS else np.zeros_like(a)
    elif mode == "symmetric":
        m = np.abs(a).max()
        out = 0.5 + 0.5 * a / m if m > EPS else np.full_like(a, 0.5)
    elif mode == "percentile":
        m = np.percentile(np.abs(a), percentile)
        out = np.clip(np.abs(a) / m, 0, 1) if m > EPS else normalize(a, "abs")
    else:
        raise ParameterError(f"mode must be minmax, abs, symmetric or percentile, not {mode!r}")
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def apply_colormap(values01: np.ndarray, cmap: str = "jet") -> np.ndarray:
    """A map already in [0, 1] (H, W) -> uint8 RGB (H, W, 3) through an OpenCV colour map."""
    if cmap not in COLORMAPS:
        raise ParameterError(f"cmap must be one of {', '.join(COLORMAPS)}, not {cmap!r}")
    a = np.clip(finite(values01), 0, 1)
    if a.ndim != 2:
        raise ParameterError(f"apply_colormap takes one (H, W) map, got shape {a.shape}")
    bgr = cv2.applyColorMap(np.round(a * 255).astype(np.uint8), COLORMAPS[cmap])
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def as_rgb_uint8(image: Image.Image | np.ndarray) -> np.ndarray:
    """A PIL image or an (H, W[, C]) array (uint8, or float in [0, 1]) as uint8 RGB (H, W, 3)."""
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"), dtype=np.uint8)
    a = np.asarray(image)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    if a.dtype != np.uint8:  # float images are taken to be in [0, 1]
        a = np.round(np.clip(finite(a), 0, 1) * 255).astype(np.uint8)
    return a[..., :3]


def overlay(image: Image.Image | np.ndarray, values01: np.ndarray, alpha: float = 0.5, cmap: str = "jet") -> np.ndarray:
    """Blend a colour-mapped map in [0, 1] over an RGB image; the map is resized to the image.

    Returns:
        uint8 RGB (H, W, 3) of the image's size.
    """
    img = as_rgb_uint8(image)
    heat = np.clip(finite(values01), 0, 1).astype(np.float32)
    if heat.shape != img.shape[:2]:
        heat = cv2.resize(heat, (img.shape[1], img.shape[0]), interpolation=cv2.INTER_LINEAR)
    colour = apply_colormap(heat, cmap).astype(np.float32)
    out = (1 - alpha) * img.astype(np.float32) + alpha * colour
    return np.round(np.clip(out, 0, 255)).astype(np.uint8)


def gradient_image(grad: np.ndarray) -> np.ndarray:
    """A (3, H, W) gradient (guided backprop, saliency) as an RGB picture (H, W, 3) in [0, 1]:
    zero is mid-grey, the largest |value| is black or full colour."""
    g = finite(grad)
    if g.ndim != 3:
        raise ParameterError(f"gradient_image takes one (C, H, W) map, got shape {g.shape}")
    return normalize(g.transpose(1, 2, 0), "symmetric")


def denormalize(x: torch.Tensor | np.ndarray, mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    """A preprocessed image (C, H, W) or (1, C, H, W) back to uint8 RGB (H, W, 3): what the model saw."""
    a = finite(x)
    if a.ndim == 4:
        a = a[0]
    a = a * np.asarray(std).reshape(-1, 1, 1) + np.asarray(mean).reshape(-1, 1, 1)
    return np.round(np.clip(a.transpose(1, 2, 0), 0, 1) * 255).astype(np.uint8)


def filter_mosaic(
    tiles: np.ndarray, ncols: int | None = None, pad: int = 1, fill: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Lay k tiles (k, h, w) or (k, h, w, 3) out in a grid.

    Returns:
        (mosaic, index): the picture, and for each of its pixels the tile index (-1 in gaps).
    """
    t = finite(tiles)
    k, h, w = t.shape[:3]
    ncols = ncols or max(1, math.ceil(math.sqrt(k)))
    nrows = max(1, math.ceil(k / ncols))
    H, W = nrows * (h + pad) - pad, ncols * (w + pad) - pad
    mosaic = np.full((H, W) + t.shape[3:], fill, dtype=np.float32)
    index = np.full((H, W), -1, dtype=np.int64)
    for i in range(k):
        r, c = divmod(i, ncols)
        y, x = r * (h + pad), c * (w + pad)
        mosaic[y : y + h, x : x + w] = t[i]
        index[y : y + h, x : x + w] = i
    return mosaic, index


def shrink(a: np.ndarray, max_side: int) -> np.ndarray:
    """A 2-D map downsampled (area averaging) so that its longer side is at most ``max_side``."""
    h, w = a.shape
    scale = max_side / max(h, w)
    if scale >= 1:
        return a
    return cv2.resize(
        a.astype(np.float32), (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA
    )
