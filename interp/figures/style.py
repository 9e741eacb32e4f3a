"""The one visual style of every figure: colours, colour scales, method titles and the layout
of map figures (square pixels, no ticks, image rows top to bottom)."""

from __future__ import annotations

from typing import Iterator, Mapping

import numpy as np
import plotly.graph_objects as go

from ..methods.records import REGISTRY
from .scaling import EPS

# One colour per method or curve, in order (Plotly's default cycle, so legends look familiar).
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2")
TRAIN_COLOUR, HELD_OUT_COLOUR = COLOURS[0], COLOURS[1]
SIGNED_SCALE = "RdBu_r"  # weights and signed maps: blue < 0 < red, white at 0
ATTRIBUTION_SCALE = "Jet"  # CAM-style overlays, as in the papers
MAGNITUDE_SCALE = "Hot"  # |gradient| maps
ACTIVATION_SCALE = "Viridis"  # feature maps


class _Titles(Mapping[str, str]):
    """Method name -> title, read from the method records on each access (user methods included)."""

    def __getitem__(self, method: str) -> str:
        return REGISTRY[method].title

    def __iter__(self) -> Iterator[str]:
        return iter(list(REGISTRY))

    def __len__(self) -> int:
        return len(REGISTRY)


METHOD_TITLES: Mapping[str, str] = _Titles()


def method_title(method: str) -> str:
    """A method's name for people ('grad_cam' -> 'Grad-CAM'), from its record; unknown names pass through."""
    spec = REGISTRY.get(method)
    return spec.title if spec is not None else method


def value_range(z: np.ndarray, symmetric: bool = False) -> tuple[float, float]:
    """(low, high) of a colour scale for ``z``: centred on 0 when ``symmetric``; never empty,
    so a constant map still draws with a colour bar."""
    lo, hi = float(np.min(z)), float(np.max(z))
    if symmetric:
        m = max(abs(lo), abs(hi))
        lo, hi = -m, m
    if hi - lo <= EPS:
        lo, hi = lo - 0.5, hi + 0.5
    return lo, hi


def heatmap(z: np.ndarray, zrange: tuple[float, float], colorscale: str, **trace) -> go.Heatmap:
    """A heatmap of ``z`` whose colour scale spans ``zrange`` (low, high: :func:`value_range`);
    ``trace``: the heatmap's other settings (colour bar, hover text...)."""
    return go.Heatmap(z=z, zmin=zrange[0], zmax=zrange[1], colorscale=colorscale, **trace)


def colorbar(title: str) -> dict:
    """A colour bar titled with the map's units."""
    return dict(title=dict(text=title))


def style_map(fig, title: str = "", height: int | None = None, **layout):
    """Lay out a figure that shows a picture: square pixels, no ticks, row 0 at the top."""
    fig.update_yaxes(autorange="reversed", scaleanchor="x", showticklabels=False)
    fig.update_xaxes(showticklabels=False, constrain="domain")
    fig.update_layout(title=title, margin=dict(l=10, r=10, t=40 if title else 10, b=10), **layout)
    if height is not None:
        fig.update_layout(height=height)
    return fig


def style_chart(fig, height: int, legend_below: bool = False, **layout):
    """Lay out a chart (curves, bars, matrices) with the shared margins."""
    fig.update_layout(height=height, margin=dict(t=40, b=40, l=40, r=20), **layout)
    if legend_below:
        fig.update_layout(legend=dict(orientation="h", y=-0.3))
    return fig
