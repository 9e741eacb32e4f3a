"""numpy -> pictures: display scaling, colour maps, overlays, and Plotly figure builders.

Methods return raw maps; every scaling for display happens here, explicitly, and never
produces NaN: constant maps, all-zero gradients and NaN/inf inputs all give finite output.
Figures show raw values on their colour bar, so the scale of a map is never hidden.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch
from PIL import Image

from .methods.explain import reduce_channels

__all__ = ["COLORMAPS", "apply_colormap", "denormalize", "filter_grid_figure", "filter_mosaic",
           "gradient_image", "heatmap_figure", "normalize", "overlay", "reduce_channels"]

COLORMAPS = {
    "jet": cv2.COLORMAP_JET, "turbo": cv2.COLORMAP_TURBO, "viridis": cv2.COLORMAP_VIRIDIS,
    "inferno": cv2.COLORMAP_INFERNO, "magma": cv2.COLORMAP_MAGMA, "plasma": cv2.COLORMAP_PLASMA,
    "hot": cv2.COLORMAP_HOT, "bone": cv2.COLORMAP_BONE,
}
_EPS = 1e-12


def _finite(arr: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(arr, torch.Tensor):
        arr = arr.detach().float().cpu().numpy()
    return np.nan_to_num(np.asarray(arr, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)


def normalize(arr: np.ndarray | torch.Tensor, mode: str = "minmax", percentile: float = 99.0,
              per_item: bool = False) -> np.ndarray:
    """Scale a raw map to [0, 1] for display (float32, never NaN).

    Args:
        mode: "minmax" (lowest -> 0, highest -> 1), "abs" (|x| / max|x|), "symmetric"
            (0 -> 0.5, +-max|x| -> 1 / 0: signed maps and filters), or "percentile"
            (|x| clipped at its ``percentile``-th percentile, then scaled: maps with outliers).
        per_item: scale each arr[i] on its own (a batch of maps, a bank of filters).

    A constant map gives 0 (0.5 for "symmetric" when it is all zero); NaN/inf count as 0.
    """
    a = _finite(arr)
    if per_item and a.ndim > 0 and a.shape[0] > 0:
        return np.stack([normalize(item, mode, percentile) for item in a]).astype(np.float32)
    if a.size == 0:
        return a.astype(np.float32)
    if mode == "minmax":
        lo, hi = a.min(), a.max()
        out = (a - lo) / (hi - lo) if hi - lo > _EPS else np.zeros_like(a)
    elif mode == "abs":
        m = np.abs(a).max()
        out = np.abs(a) / m if m > _EPS else np.zeros_like(a)
    elif mode == "symmetric":
        m = np.abs(a).max()
        out = 0.5 + 0.5 * a / m if m > _EPS else np.full_like(a, 0.5)
    elif mode == "percentile":
        m = np.percentile(np.abs(a), percentile)
        out = np.clip(np.abs(a) / m, 0, 1) if m > _EPS else normalize(a, "abs")
    else:
        raise ValueError(f"mode must be minmax, abs, symmetric or percentile, not {mode!r}")
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def apply_colormap(values01: np.ndarray, cmap: str = "jet") -> np.ndarray:
    """A map already in [0, 1] (H, W) -> uint8 RGB (H, W, 3) through an OpenCV colour map."""
    if cmap not in COLORMAPS:
        raise ValueError(f"cmap must be one of {', '.join(COLORMAPS)}, not {cmap!r}")
    a = np.clip(_finite(values01), 0, 1)
    if a.ndim != 2:
        raise ValueError(f"apply_colormap takes one (H, W) map, got shape {a.shape}")
    bgr = cv2.applyColorMap(np.round(a * 255).astype(np.uint8), COLORMAPS[cmap])
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _as_rgb_uint8(image: Image.Image | np.ndarray) -> np.ndarray:
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"), dtype=np.uint8)
    a = np.asarray(image)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    if a.dtype != np.uint8:  # float images are taken to be in [0, 1]
        a = np.round(np.clip(_finite(a), 0, 1) * 255).astype(np.uint8)
    return a[..., :3]


def overlay(image: Image.Image | np.ndarray, values01: np.ndarray, alpha: float = 0.5,
            cmap: str = "jet") -> np.ndarray:
    """Blend a colour-mapped map in [0, 1] over an RGB image; the map is resized to the image.

    Returns:
        uint8 RGB (H, W, 3) of the image's size.
    """
    img = _as_rgb_uint8(image)
    heat = np.clip(_finite(values01), 0, 1).astype(np.float32)
    if heat.shape != img.shape[:2]:
        heat = cv2.resize(heat, (img.shape[1], img.shape[0]), interpolation=cv2.INTER_LINEAR)
    colour = apply_colormap(heat, cmap).astype(np.float32)
    out = (1 - alpha) * img.astype(np.float32) + alpha * colour
    return np.round(np.clip(out, 0, 255)).astype(np.uint8)


def gradient_image(grad: np.ndarray) -> np.ndarray:
    """A (3, H, W) gradient (guided backprop, saliency) as an RGB picture (H, W, 3) in [0, 1]:
    zero is mid-grey, the largest |value| is black or full colour."""
    g = _finite(grad)
    if g.ndim != 3:
        raise ValueError(f"gradient_image takes one (C, H, W) map, got shape {g.shape}")
    return normalize(g.transpose(1, 2, 0), "symmetric")


def denormalize(x: torch.Tensor | np.ndarray, mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    """A preprocessed image (C, H, W) or (1, C, H, W) back to uint8 RGB (H, W, 3): what the model saw."""
    a = _finite(x)
    if a.ndim == 4:
        a = a[0]
    a = a * np.asarray(std).reshape(-1, 1, 1) + np.asarray(mean).reshape(-1, 1, 1)
    return np.round(np.clip(a.transpose(1, 2, 0), 0, 1) * 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# Plotly


def heatmap_figure(values: np.ndarray, image: Image.Image | np.ndarray | None = None, title: str = "",
                   colorscale: str = "Jet", opacity: float = 0.5, symmetric: bool = False,
                   colorbar_title: str = "value"):
    """A 2-D map as a Plotly heatmap with a colour bar in the map's own (raw) units,
    optionally over an image (the map is resized to it).

    Args:
        symmetric: centre the colour scale on 0 (signed maps; use a diverging colorscale).
    """
    import plotly.graph_objects as go

    z = _finite(values).astype(np.float32)
    if z.ndim != 2:
        raise ValueError(f"heatmap_figure takes one (H, W) map, got shape {z.shape}")
    fig = go.Figure()
    if image is not None:
        img = _as_rgb_uint8(image)
        if z.shape != img.shape[:2]:
            z = cv2.resize(z, (img.shape[1], img.shape[0]), interpolation=cv2.INTER_LINEAR)
        fig.add_trace(go.Image(z=img, hoverinfo="skip"))
    lo, hi = float(z.min()), float(z.max())
    if symmetric:
        m = max(abs(lo), abs(hi))
        lo, hi = -m, m
    if hi - lo <= _EPS:  # a constant map: give the colour bar a range so it still draws
        lo, hi = lo - 0.5, hi + 0.5
    fig.add_trace(go.Heatmap(z=z, zmin=lo, zmax=hi, colorscale=colorscale,
                             opacity=opacity if image is not None else 1.0,
                             colorbar=dict(title=dict(text=colorbar_title)),
                             hovertemplate="x=%{x}, y=%{y}<br>value=%{z:.4g}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", scaleanchor="x", showticklabels=False)
    fig.update_xaxes(showticklabels=False, constrain="domain")
    fig.update_layout(title=title, margin=dict(l=10, r=10, t=40 if title else 10, b=10))
    return fig


def filter_mosaic(tiles: np.ndarray, ncols: int | None = None, pad: int = 1,
                  fill: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Lay k tiles (k, h, w) or (k, h, w, 3) out in a grid.

    Returns:
        (mosaic, index): the picture, and for each of its pixels the tile index (-1 in gaps).
    """
    t = _finite(tiles)
    k, h, w = t.shape[:3]
    ncols = ncols or max(1, math.ceil(math.sqrt(k)))
    nrows = max(1, math.ceil(k / ncols))
    H, W = nrows * (h + pad) - pad, ncols * (w + pad) - pad
    mosaic = np.full((H, W) + t.shape[3:], fill, dtype=np.float32)
    index = np.full((H, W), -1, dtype=np.int64)
    for i in range(k):
        r, c = divmod(i, ncols)
        y, x = r * (h + pad), c * (w + pad)
        mosaic[y:y + h, x:x + w] = t[i]
        index[y:y + h, x:x + w] = i
    return mosaic, index


def filter_grid_figure(tiles: np.ndarray, labels: list[int] | np.ndarray | None = None,
                       ncols: int | None = None, title: str = ""):
    """A bank of filters as one Plotly picture.

    Args:
        tiles: (k, h, w, 3) RGB tiles (from methods.rgb_tiles): each filter is scaled to its
            own +-max|w| around mid-grey, so the picture shows patterns, not magnitudes; or
            (k, h, w) single-channel tiles (methods.reduce_input_channels / per_input_channel),
            shown in raw units on a colour scale centred on 0, with a colour bar.
        labels: the filter index shown on hover for each tile (default 0..k-1), e.g. after
            ordering by norm.
    """
    import plotly.graph_objects as go

    t = _finite(tiles)
    labels = np.arange(len(t)) if labels is None else np.asarray(labels)
    if t.ndim == 4 and t.shape[-1] == 3:
        mosaic, index = filter_mosaic(normalize(t, "symmetric", per_item=True), ncols, fill=1.0)
        hover = np.where(index >= 0, labels[np.maximum(index, 0)], -1)
        trace = go.Image(z=np.round(mosaic * 255).astype(np.uint8), customdata=hover,
                         hovertemplate="filter %{customdata}<extra></extra>")
    elif t.ndim == 3:
        m = float(np.abs(t).max()) or 1.0
        mosaic, index = filter_mosaic(t, ncols, fill=0.0)  # gaps read as 0: white on RdBu
        hover = np.where(index >= 0, labels[np.maximum(index, 0)], -1)
        trace = go.Heatmap(z=mosaic, zmin=-m, zmax=m, colorscale="RdBu_r", customdata=hover,
                           colorbar=dict(title=dict(text="weight")),
                           hovertemplate="filter %{customdata}<br>weight=%{z:.4g}<extra></extra>")
    else:
        raise ValueError(f"filter_grid_figure takes (k, h, w, 3) or (k, h, w) tiles, got shape {t.shape}")
    fig = go.Figure(trace)
    fig.update_yaxes(autorange="reversed", scaleanchor="x", showticklabels=False)
    fig.update_xaxes(showticklabels=False, constrain="domain")
    fig.update_layout(title=title, margin=dict(l=10, r=10, t=40 if title else 10, b=10))
    return fig


def feature_grid_figure(maps: np.ndarray, channels: list[int] | np.ndarray, ncols: int | None = None,
                        title: str = "", colorscale: str = "Viridis"):
    """Channel maps (C, H, W) of one layer, the given channels in order, on one shared colour
    scale in activation units (so strong and weak channels can be told apart)."""
    import plotly.graph_objects as go

    channels = np.asarray(channels, dtype=int)
    tiles = _finite(maps)[channels]
    lo, hi = float(tiles.min()), float(tiles.max())
    if hi - lo <= _EPS:
        lo, hi = lo - 0.5, hi + 0.5
    mosaic, index = filter_mosaic(tiles, ncols, pad=max(1, tiles.shape[-1] // 16), fill=np.nan)
    hover = np.where(index >= 0, channels[np.maximum(index, 0)], -1)
    fig = go.Figure(go.Heatmap(z=mosaic, zmin=lo, zmax=hi, colorscale=colorscale, customdata=hover,
                               colorbar=dict(title=dict(text="activation")), hoverongaps=False,
                               hovertemplate="channel %{customdata}<br>activation=%{z:.4g}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", scaleanchor="x", showticklabels=False)
    fig.update_xaxes(showticklabels=False, constrain="domain")
    fig.update_layout(title=title, margin=dict(l=10, r=10, t=40 if title else 10, b=10),
                      plot_bgcolor="white")
    return fig


def compact(fig, height: int = 260):
    """Fit a map figure into a narrow column: colour bar laid horizontally under the map."""
    fig.update_traces(colorbar=dict(orientation="h", thickness=10, y=-0.02, yanchor="top", len=0.9,
                                    title=dict(side="top")),
                      selector=dict(type="heatmap"))
    fig.update_layout(height=height, margin=dict(l=5, r=5, t=30 if fig.layout.title.text else 5, b=40))
    return fig
