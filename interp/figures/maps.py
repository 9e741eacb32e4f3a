"""Plotly figures of maps and filters: a map over an image, banks of filters, channel grids
and single kernels. Every colour bar is in the values' own (raw) units, so the scale of a
map is never hidden."""

from __future__ import annotations

import cv2
import numpy as np
import plotly.graph_objects as go
from PIL import Image

from ..errors import ParameterError
from .scaling import as_rgb_uint8, filter_mosaic, finite, normalize
from .style import ACTIVATION_SCALE, ATTRIBUTION_SCALE, SIGNED_SCALE, colorbar, heatmap, style_map, value_range


def heatmap_figure(
    values: np.ndarray,
    image: Image.Image | np.ndarray | None = None,
    title: str = "",
    colorscale: str = ATTRIBUTION_SCALE,
    opacity: float = 0.5,
    symmetric: bool = False,
    colorbar_title: str = "value",
    zrange: tuple[float, float] | None = None,
) -> go.Figure:
    """A 2-D map as a heatmap with a colour bar in raw units, optionally over an image (the map
    is resized to it).

    Args:
        symmetric: centre the colour scale on 0 (signed maps; use a diverging colorscale).
        zrange: the colour scale's (low, high), to put several maps on one scale; default the map's own.
    """
    z = finite(values).astype(np.float32)
    if z.ndim != 2:
        raise ParameterError(f"heatmap_figure takes one (H, W) map, got shape {z.shape}")
    fig = go.Figure()
    if image is not None:
        img = as_rgb_uint8(image)
        if z.shape != img.shape[:2]:
            z = np.asarray(cv2.resize(z, (img.shape[1], img.shape[0]), interpolation=cv2.INTER_LINEAR), np.float32)
        fig.add_trace(go.Image(z=img, hoverinfo="skip"))
    fig.add_trace(
        heatmap(
            z,
            value_range(np.asarray(zrange) if zrange else z, symmetric),
            colorscale,
            opacity=opacity if image is not None else 1.0,
            colorbar=colorbar(colorbar_title),
            hovertemplate="x=%{x}, y=%{y}<br>value=%{z:.4g}<extra></extra>",
        )
    )
    return style_map(fig, title)


def kernel_figure(
    kernel: np.ndarray, title: str = "", what: str = "weight", showscale: bool = True, limit: float | None = None
) -> go.Figure:
    """One kh x kw kernel in weight units on a scale centred on 0, values on hover.

    Args:
        limit: the scale's +-bound, to share one scale between kernels; default max |kernel|.
    """
    z = finite(kernel)
    fig = go.Figure(
        heatmap(
            z,
            value_range(np.array([-limit, limit]) if limit else z, symmetric=True),
            SIGNED_SCALE,
            showscale=showscale,
            colorbar=colorbar(what),
            hovertemplate=f"row %{{y}}, col %{{x}}<br>{what} %{{z:.4g}}<extra></extra>",
        )
    )
    return style_map(fig, title)


def _hover_labels(index: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per mosaic pixel: the label of its tile, -1 in the gaps."""
    return np.where(index >= 0, labels[np.maximum(index, 0)], -1)


def filter_grid_figure(
    tiles: np.ndarray, labels: list[int] | np.ndarray | None = None, ncols: int | None = None, title: str = ""
) -> go.Figure:
    """A bank of filters as one picture.

    Args:
        tiles: (k, h, w, 3) RGB tiles (from methods.rgb_tiles): each filter is scaled to its
            own +-max|w| around mid-grey, so the picture shows patterns, not magnitudes; or
            (k, h, w) single-channel tiles (methods.reduce_input_channels / per_input_channel),
            shown in raw units on a colour scale centred on 0, with a colour bar.
        labels: the filter index shown on hover for each tile (default 0..k-1), e.g. after
            ordering by norm.
    """
    t = finite(tiles)
    labels = np.arange(len(t)) if labels is None else np.asarray(labels)
    if t.ndim == 4 and t.shape[-1] == 3:
        mosaic, index = filter_mosaic(normalize(t, "symmetric", per_item=True), ncols, fill=1.0)
        trace = go.Image(
            z=np.round(mosaic * 255).astype(np.uint8),
            customdata=_hover_labels(index, labels),
            hovertemplate="filter %{customdata}<extra></extra>",
        )
    elif t.ndim == 3:
        mosaic, index = filter_mosaic(t, ncols, fill=0.0)  # gaps read as 0: white on RdBu
        trace = heatmap(
            mosaic,
            value_range(t, symmetric=True),
            SIGNED_SCALE,
            customdata=_hover_labels(index, labels),
            colorbar=colorbar("weight"),
            hovertemplate="filter %{customdata}<br>weight=%{z:.4g}<extra></extra>",
        )
    else:
        raise ParameterError(f"filter_grid_figure takes (k, h, w, 3) or (k, h, w) tiles, got shape {t.shape}")
    return style_map(go.Figure(trace), title)


def feature_grid_figure(
    maps: np.ndarray,
    channels: list[int] | np.ndarray,
    ncols: int | None = None,
    title: str = "",
    colorscale: str = ACTIVATION_SCALE,
) -> go.Figure:
    """Channel maps (C, H, W) of one layer, the given channels in order, on one shared colour
    scale in activation units (so strong and weak channels can be told apart)."""
    channels = np.asarray(channels, dtype=int)
    tiles = finite(maps)[channels]
    mosaic, index = filter_mosaic(tiles, ncols, pad=max(1, tiles.shape[-1] // 16), fill=np.nan)
    fig = go.Figure(
        heatmap(
            mosaic,
            value_range(tiles),
            colorscale,
            customdata=_hover_labels(index, channels),
            colorbar=colorbar("activation"),
            hoverongaps=False,
            hovertemplate="channel %{customdata}<br>activation=%{z:.4g}<extra></extra>",
        )
    )
    return style_map(fig, title, plot_bgcolor="white")


def compact(fig: go.Figure, height: int = 260) -> go.Figure:
    """Fit a map figure into a narrow column: colour bar laid horizontally under the map."""
    fig.update_traces(
        colorbar=dict(orientation="h", thickness=10, y=-0.02, yanchor="top", len=0.9, title=dict(side="top")),
        selector=dict(type="heatmap"),
    )
    fig.update_layout(height=height, margin=dict(l=5, r=5, t=30 if fig.layout.title.text else 5, b=40))
    return fig
