"""Plotly figures for the trust pages: the randomisation strip, similarity curves, and the
deletion and insertion curves."""

from __future__ import annotations

from typing import Mapping

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..data.datasets import spread_indices
from ..methods.trust.faithfulness import DeletionInsertion
from ..methods.trust.sanity import Randomization
from .scaling import normalize, shrink
from .style import COLOURS, MAGNITUDE_SCALE, style_chart
from .style import method_title as title


def step_labels(result: Randomization) -> list[str]:
    """Column labels: 'original', then what was randomised at each step."""
    mark = "→ " if result.kind == "cascading" else ""
    return ["original", *(f"{mark}{layer}" for layer in result.layers)]


def randomization_strip(
    result: Randomization, max_side: int = 64, colorscale: str = MAGNITUDE_SCALE, max_columns: int = 12
) -> go.Figure:
    """Maps per method (rows) across randomisation depth (columns).

    Each map is shown as |map| / max |map| (its own maximum: the pattern, not the scale; the raw
    value is on hover), downsampled to at most ``max_side`` pixels a side for the browser. A deep
    model (DenseNet: 120 steps) shows ``max_columns`` steps spread from the original to the last,
    and says so in the title; the similarity curves keep every step.
    """
    every = step_labels(result)
    shown = spread_indices(len(every), max_columns).tolist()
    labels = [every[i] for i in shown]
    rows, cols = len(result.methods), len(labels)
    fig = make_subplots(
        rows=rows,
        cols=cols,
        column_titles=labels,
        row_titles=[title(m) for m in result.methods],
        horizontal_spacing=0.01,
        vertical_spacing=0.02,
    )
    if len(shown) < len(every):
        fig.update_layout(title=f"{len(shown)} of {len(every)} steps, spread from the original to the last")
    for r, method in enumerate(result.methods, start=1):
        for c, amap in enumerate([result.maps[method][i] for i in shown], start=1):
            raw = shrink(np.nan_to_num(np.asarray(amap, np.float32)), max_side)
            fig.add_trace(
                go.Heatmap(
                    z=normalize(raw, "abs"),
                    customdata=raw,
                    coloraxis="coloraxis",
                    hovertemplate="x=%{x}, y=%{y}<br>raw=%{customdata:.4g}<br>"
                    "share of max |map|=%{z:.2f}<extra></extra>",
                ),
                r,
                c,
            )
            k = (r - 1) * cols + c
            fig.update_yaxes(scaleanchor="x" if k == 1 else f"x{k}", row=r, col=c)  # square pixels
    fig.update_yaxes(autorange="reversed", visible=False)
    fig.update_xaxes(visible=False, constrain="domain")
    fig.update_layout(
        plot_bgcolor="white",
        coloraxis=dict(
            colorscale=colorscale, cmin=0, cmax=1, colorbar=dict(title=dict(text="|map| / max"), thickness=12)
        ),
        height=40 + 130 * rows,
        margin=dict(l=10, r=10, t=40, b=10),
    )
    fig.update_annotations(font_size=11)
    return fig


def similarity_curves(result: Randomization) -> go.Figure:
    """Spearman rank correlation (of |map|) and SSIM with the original map, against depth."""
    labels = step_labels(result)
    fig = make_subplots(
        rows=1, cols=2, subplot_titles=("Spearman rank correlation of |map|", "SSIM"), horizontal_spacing=0.08
    )
    for i, method in enumerate(result.methods):
        colour = COLOURS[i % len(COLOURS)]
        for col, values in ((1, result.spearman[method]), (2, result.ssim[method])):
            fig.add_trace(
                go.Scatter(
                    x=labels,
                    y=values,
                    mode="lines+markers",
                    name=title(method),
                    legendgroup=method,
                    showlegend=col == 1,
                    line=dict(color=colour),
                    hovertemplate="%{x}: %{y:.3f}<extra>" + title(method) + "</extra>",
                ),
                1,
                col,
            )
    low = min(0.0, *(float(np.min(v)) for d in (result.spearman, result.ssim) for v in d.values()))
    fig.update_yaxes(range=[low - 0.05, 1.05])
    fig.add_hline(y=0, line=dict(color="grey", width=1, dash="dot"))
    fig.update_xaxes(title_text="randomised (cascading: down to)" if result.kind == "cascading" else "randomised alone")
    return style_chart(fig, 380, legend_below=True)


def deletion_insertion_curves(scores: Mapping[str, DeletionInsertion], class_name: str = "") -> go.Figure:
    """Target probability as pixels are deleted (left) and inserted (right), one line per method,
    the mean of the random orders dashed; the legend gives each curve's area."""
    what = f"p({class_name})" if class_name else "target probability"
    fig = make_subplots(
        rows=1,
        cols=2,
        horizontal_spacing=0.08,
        subplot_titles=("Deletion (lower area is better)", "Insertion (higher area is better)"),
    )
    for i, (method, s) in enumerate(scores.items()):
        colour = COLOURS[i % len(COLOURS)]
        for col, curve, area in ((1, s.deletion, s.deletion_auc), (2, s.insertion, s.insertion_auc)):
            fig.add_trace(
                go.Scatter(
                    x=s.fractions,
                    y=curve,
                    mode="lines",
                    line=dict(color=colour),
                    name=f"{title(method)} ({'del' if col == 1 else 'ins'} AUC {area:.3f})",
                    legendgroup=method,
                ),
                1,
                col,
            )
    if scores:
        s = next(iter(scores.values()))
        for col, curve, area in (
            (1, s.random_deletion, s.random_deletion_auc),
            (2, s.random_insertion, s.random_insertion_auc),
        ):
            fig.add_trace(
                go.Scatter(
                    x=s.fractions,
                    y=curve,
                    mode="lines",
                    line=dict(color="grey", dash="dash"),
                    name=f"random order ({'del' if col == 1 else 'ins'} AUC {area:.3f})",
                    legendgroup="random",
                ),
                1,
                col,
            )
    fig.update_xaxes(title_text="fraction of pixels", range=[0, 1], tickformat=".0%")
    fig.update_yaxes(title_text=what, range=[-0.02, 1.02], col=1)
    fig.update_yaxes(range=[-0.02, 1.02], col=2)
    return style_chart(fig, 400, legend_below=True)
