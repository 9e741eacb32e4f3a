"""Figures of a whole dataset's results: an image with its stored map, and a grid of mean maps
(per class, or per class and correctness) on one colour scale."""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .scaling import finite, normalize, overlay
from .style import ATTRIBUTION_SCALE, colorbar, heatmap, style_map, value_range


def map_overlay(picture: np.ndarray, saliency_map: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """An image (H, W, 3) uint8 with its map (h, w), scaled min..max and resized to the image."""
    return overlay(picture, normalize(saliency_map, "minmax"), alpha=alpha)


def mean_map_grid(maps: Mapping[str, tuple[np.ndarray, int]], title: str = "", ncols: int | None = None) -> go.Figure:
    """{label: (mean map, images)} as a grid of heat maps on one colour scale, each titled with
    its label and how many images it averages."""
    labels = list(maps)
    if not labels:
        return style_map(go.Figure(), title or "no images")
    ncols = ncols or min(len(labels), 5)
    nrows = math.ceil(len(labels) / ncols)
    stacked = np.stack([finite(maps[k][0]) for k in labels])
    zrange = value_range(stacked)  # one colour scale for every cell
    fig = make_subplots(
        rows=nrows,
        cols=ncols,
        subplot_titles=[f"{k} ({maps[k][1]})" for k in labels],
        horizontal_spacing=0.02,
        vertical_spacing=0.08,
    )
    for i, (k, z) in enumerate(zip(labels, stacked)):
        r, c = divmod(i, ncols)
        fig.add_trace(
            heatmap(
                z,
                zrange,
                ATTRIBUTION_SCALE,
                showscale=i == 0,
                colorbar=colorbar("mean map"),
                name=str(k),
                hovertemplate=f"{k}<br>mean=%{{z:.3f}}<extra></extra>",
            ),
            row=r + 1,
            col=c + 1,
        )
    fig = style_map(fig, title, height=180 * nrows + 60)
    fig.update_yaxes(autorange="reversed", scaleanchor=None, showticklabels=False)
    for i in range(len(labels)):  # square pixels in every cell
        fig.update_yaxes(scaleanchor=f"x{'' if i == 0 else i + 1}", row=i // ncols + 1, col=i % ncols + 1)
    return fig
