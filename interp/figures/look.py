"""Figures of what a filter looks for: optimised images and dataset crops as one picture grid,
and the optimisation's objective per step."""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np
import plotly.graph_objects as go

from ..errors import ParameterError
from .scaling import filter_mosaic
from .style import COLOURS, style_chart, style_map

# Light grey behind and between tiles: a white crop (a sketch's paper) still reads as a tile, not a gap.
BACKGROUND = 225


def as_tile(picture: np.ndarray, side: int) -> np.ndarray:
    """An RGB picture (H x W x 3 uint8, or 3 x H x W / H x W x 3 in [0, 1]) as side x side uint8,
    pixels kept sharp when enlarged (a receptive-field crop is often only a few pixels wide)."""
    a = np.asarray(picture)
    if a.ndim == 3 and a.shape[0] == 3 and a.shape[-1] != 3:
        a = a.transpose(1, 2, 0)
    if a.dtype != np.uint8:
        a = np.round(np.clip(np.nan_to_num(a.astype(np.float32)), 0, 1) * 255).astype(np.uint8)
    if a.shape[0] == 0 or a.shape[1] == 0:
        return np.full((side, side, 3), BACKGROUND, np.uint8)
    h, w = a.shape[:2]
    # The longer side fills the tile; the shorter is padded with the background, so a clipped crop keeps its shape.
    scale = side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    a = cv2.resize(np.ascontiguousarray(a), size, interpolation=cv2.INTER_NEAREST if scale > 1 else cv2.INTER_AREA)
    tile = np.full((side, side, 3), BACKGROUND, np.uint8)
    top, left = (side - a.shape[0]) // 2, (side - a.shape[1]) // 2
    tile[top : top + a.shape[0], left : left + a.shape[1]] = a
    return tile


def picture_grid_figure(
    pictures: Sequence[np.ndarray],
    labels: Sequence[str],
    ncols: int,
    side: int = 64,
    title: str = "",
    row_labels: Sequence[str] | None = None,
    col_labels: Sequence[str] | None = None,
) -> go.Figure:
    """Pictures of any sizes as one grid of side x side tiles, each tile's label on hover.

    Args:
        pictures: RGB pictures (see :func:`as_tile`), in reading order.
        labels: one hover line per picture ('channel 3: optimised', 'image 41, max 2.3').
        row_labels, col_labels: text written left of each row and above each column (default none).
    """
    if not len(pictures):
        raise ParameterError("picture_grid_figure needs at least one picture")
    tiles = np.stack([as_tile(p, side) for p in pictures]).astype(np.float32)
    pad = max(2, side // 16)
    mosaic, index = filter_mosaic(tiles, ncols, pad=pad, fill=float(BACKGROUND))
    text = np.asarray(list(labels) + [""], dtype=object)
    hover = text[np.where(index >= 0, index, len(labels))]
    fig = go.Figure(go.Image(z=mosaic.astype(np.uint8), customdata=hover, hovertemplate="%{customdata}<extra></extra>"))
    style_map(fig, title)
    centres = [i * (side + pad) + (side - 1) / 2 for i in range(max(len(row_labels or ()), len(col_labels or ())))]
    if row_labels is not None:
        fig.update_yaxes(
            showticklabels=True,
            tickvals=centres[: len(row_labels)],
            ticktext=list(row_labels),
            ticks="",
            automargin=True,
        )
    if col_labels is not None:
        fig.update_xaxes(
            showticklabels=True,
            side="top",
            tickvals=centres[: len(col_labels)],
            ticktext=list(col_labels),
            ticks="",
            automargin=True,
        )
    return fig


def objective_curves(objective: np.ndarray, channels: Sequence[int], height: int = 260) -> go.Figure:
    """Each channel's objective per optimisation step (N, steps), one line per channel."""
    fig = go.Figure()
    for i, c in enumerate(channels):
        fig.add_trace(
            go.Scatter(y=objective[i], mode="lines", name=f"channel {c}", line=dict(color=COLOURS[i % len(COLOURS)]))
        )
    fig.update_xaxes(title="step")
    fig.update_yaxes(title="objective (activation)")
    return style_chart(fig, height, title="objective per step")
