"""Plotly figures of model cards and architectures: training curves, confusion matrix, per-class
accuracy, parameters per layer."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .style import HELD_OUT_COLOUR, TRAIN_COLOUR, style_chart


def epoch_curve(epochs: Sequence[dict[str, Any]], key: str, name: str, line: dict) -> go.Scatter:
    """Lines and markers: ``key`` of each epoch's record (which has its number under "epoch")."""
    return go.Scatter(
        x=[r["epoch"] for r in epochs], y=[r[key] for r in epochs], name=name, mode="lines+markers", line=line
    )


def training_curves(card: dict[str, Any]) -> go.Figure:
    """Loss (per step and per epoch, train vs validation) and accuracy per epoch."""
    history = card["history"]
    epochs = history["epochs"]
    steps = history["step_loss"]
    steps_per_epoch = len(steps) / max(len(epochs), 1)
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Loss", "Accuracy"), horizontal_spacing=0.08)
    if steps:
        x = np.arange(1, len(steps) + 1) / steps_per_epoch
        fig.add_trace(
            go.Scatter(
                x=x,
                y=steps,
                name="train loss per step",
                mode="lines",
                line=dict(color="rgba(31,119,180,0.25)", width=1),
            ),
            1,
            1,
        )
    for key, name, line, col in (  # losses on the left, accuracies (dotted) on the right
        ("train_loss", "train loss (epoch mean)", dict(color=TRAIN_COLOUR), 1),
        ("val_loss", "validation loss", dict(color=HELD_OUT_COLOUR), 1),
        ("train_accuracy", "train accuracy", dict(color=TRAIN_COLOUR, dash="dot"), 2),
        ("val_accuracy", "validation accuracy", dict(color=HELD_OUT_COLOUR, dash="dot"), 2),
    ):
        fig.add_trace(epoch_curve(epochs, key, name, line), 1, col)
    best = card.get("kept_epoch") or card.get("best_epoch")  # the epoch whose weights were written
    if best and best > 0:
        for col in (1, 2):
            fig.add_vline(x=best, line=dict(color="grey", dash="dash"), row=1, col=col)
    fig.update_xaxes(title_text="epoch")
    fig.update_yaxes(tickformat=".0%", row=1, col=2)
    return style_chart(fig, 380, legend_below=True)


def confusion_matrix(matrix: Sequence[Sequence[int]], class_names: Sequence[str]) -> go.Figure:
    """Row-normalised confusion matrix (true class in rows), counts on hover."""
    counts = np.asarray(matrix, dtype=float)
    rows = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    fig = go.Figure(
        go.Heatmap(
            z=share,
            x=list(class_names),
            y=list(class_names),
            colorscale="Blues",
            zmin=0,
            zmax=1,
            customdata=counts.astype(int),
            text=np.round(share * 100).astype(int),
            texttemplate="%{text}",
            hovertemplate="true %{y}<br>predicted %{x}<br>%{customdata} images (%{z:.1%} of the row)<extra></extra>",
            colorbar=dict(title="share of row", tickformat=".0%"),
        )
    )
    return style_chart(fig, 420, xaxis_title="predicted", yaxis_title="true", yaxis_autorange="reversed")


def per_class_accuracy(per_class: dict[str, float]) -> go.Figure:
    """Bars: accuracy of each class on the held-out split."""
    fig = go.Figure(
        go.Bar(
            x=list(per_class),
            y=list(per_class.values()),
            text=[f"{v:.0%}" for v in per_class.values()],
            textposition="outside",
        )
    )
    return style_chart(fig, 320, yaxis=dict(range=[0, 1.1], tickformat=".0%", title="accuracy"))


def parameters_per_layer(rows: list[dict[str, Any]]) -> go.Figure:
    """Horizontal bars: where the parameters are (layers without parameters left out)."""
    rows = [r for r in rows if r["parameters"]]
    total = sum(r["parameters"] for r in rows) or 1
    fig = go.Figure(
        go.Bar(
            y=[r["layer"] for r in rows],
            x=[r["parameters"] for r in rows],
            orientation="h",
            text=[f"{r['parameters'] / total:.1%}" for r in rows],
            textposition="outside",
            hovertemplate="%{y}: %{x:,} parameters<extra></extra>",
        )
    )
    return style_chart(fig, max(250, 22 * len(rows) + 80), xaxis_title="parameters", yaxis_autorange="reversed")
