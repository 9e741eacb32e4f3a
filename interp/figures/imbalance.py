"""Plotly figures of training on a long tail: class counts, per-class accuracy of several models,
the focal term against p_t and the class-balanced weights against beta."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from ..losses import class_balanced_weights, focal_term
from .style import COLOURS, style_chart


def class_counts(counts: Sequence[int], class_names: Sequence[str], title: str = "") -> go.Figure:
    """Bars: training images per class, the count written on each."""
    fig = go.Figure(
        go.Bar(
            x=list(class_names),
            y=list(counts),
            text=[f"{c:,}" for c in counts],
            textposition="outside",
            marker_color=COLOURS[0],
        )
    )
    return style_chart(fig, 320, title=title, yaxis=dict(title="training images", range=[0, max(counts) * 1.15]))


def per_class_comparison(per_class: Mapping[str, Mapping[str, float]]) -> go.Figure:
    """Grouped bars: per-class held-out accuracy of each model (label -> class -> accuracy)."""
    fig = go.Figure()
    for colour, (label, accuracy) in zip(COLOURS, per_class.items()):
        fig.add_trace(
            go.Bar(
                x=list(accuracy),
                y=list(accuracy.values()),
                name=label,
                marker_color=colour,
                text=[f"{v:.0%}" for v in accuracy.values()],
                textposition="outside",
            )
        )
    return style_chart(
        fig,
        360,
        legend_below=True,
        barmode="group",
        yaxis=dict(range=[0, 1.12], tickformat=".0%", title="test accuracy"),
    )


def focal_curves(gammas: Sequence[float]) -> go.Figure:
    """The focal term (1 - p_t)^gamma (-log p_t) against p_t, one curve per gamma (0: cross-entropy)."""
    p = np.linspace(0.01, 1.0, 200)
    fig = go.Figure()
    for colour, gamma in zip(COLOURS * 2, sorted(gammas)):
        label = f"gamma = {gamma:g}" + (" (cross-entropy)" if gamma == 0 else "")
        fig.add_trace(go.Scatter(x=p, y=focal_term(p, gamma), name=label, mode="lines", line=dict(color=colour)))
    return style_chart(
        fig,
        340,
        legend_below=True,
        xaxis=dict(title="p_t, the probability of the true class"),
        yaxis=dict(title="loss of the sample", range=[0, 4.6]),
    )


def class_weight_curves(counts: Sequence[int], class_names: Sequence[str], beta: float | None = None) -> go.Figure:
    """Class-balanced weights of each class against beta (log scale in 1 - beta), a marker at ``beta``."""
    one_minus = np.logspace(-5, 0, 120)[:-1]  # 1 - beta from 1e-5 (beta 0.99999) towards 1 (beta 0)
    betas = np.concatenate([1 - one_minus, [0.0]])
    weights = np.stack([class_balanced_weights(counts, float(b)).numpy() for b in betas])
    x = np.concatenate([one_minus, [1.0]])
    fig = go.Figure()
    for i, name in enumerate(class_names):
        fig.add_trace(
            go.Scatter(
                x=x,
                y=weights[:, i],
                mode="lines",
                name=f"{name} ({counts[i]:,})",
                line=dict(color=COLOURS[i % len(COLOURS)], dash="solid" if i < 7 else "dot"),
                hovertemplate="beta %{customdata:.5f}<br>weight %{y:.3f}<extra>" + name + "</extra>",
                customdata=betas,
            )
        )
    if beta is not None:
        fig.add_vline(x=max(1 - beta, 1e-5), line=dict(color="grey", dash="dash"))
    ticks = [1, 0.1, 0.01, 1e-3, 1e-4, 1e-5]
    return style_chart(
        fig,
        360,
        xaxis=dict(
            type="log",
            autorange="reversed",
            tickvals=ticks,
            ticktext=["0", "0.9", "0.99", "0.999", "0.9999", "0.99999"],
            title="beta (log scale in 1 - beta)",
        ),
        yaxis=dict(title="class weight", type="log", tickvals=[0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5]),
    )
