"""Plotly figures of the basics: one convolution step, a convolution matrix, a network's linear
pieces with its tangent, the from-scratch network's training curves and where a bias term
comes from."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .cards import epoch_curve
from .scaling import finite
from .style import COLOURS, HELD_OUT_COLOUR, SIGNED_SCALE, TRAIN_COLOUR, colorbar, heatmap, style_chart, value_range


def _number(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:.3g}"


def _grid(z: np.ndarray, showscale: bool = False) -> go.Heatmap:
    """A small matrix with its values written in the cells, on a scale centred on 0."""
    return heatmap(
        z,
        value_range(z, symmetric=True),
        SIGNED_SCALE,
        showscale=showscale,
        text=[[_number(v) for v in row] for row in z],
        texttemplate="%{text}",
        hovertemplate="row %{y}, col %{x}: %{z:.4g}<extra></extra>",
        xgap=1,
        ygap=1,
    )


def _outline(fig: go.Figure, top: int, left: int, height: int, width: int, col: int) -> None:
    fig.add_shape(
        type="rect",
        x0=left - 0.5,
        x1=left + width - 0.5,
        y0=top - 0.5,
        y1=top + height - 0.5,
        line=dict(color="black", width=3),
        row=1,
        col=col,
    )


def convolution_step_figure(step, output: np.ndarray, pad: tuple[int, int]) -> go.Figure:
    """Four panels: the padded image with the window outlined (padding outside the dashed
    frame), the kernel as applied, the products, and the output with the pixel outlined.

    Args:
        step: an interp.basics.ConvolutionStep.
        pad: (rows, columns) of padding on each side of the image (0 for 'valid').
    """
    kh, kw = step.kernel.shape
    fig = make_subplots(
        rows=1,
        cols=4,
        horizontal_spacing=0.04,
        column_widths=[step.padded.shape[1], kw, kw, output.shape[1]],
        subplot_titles=(
            "padded image and window",
            "kernel as applied",
            "products",
            f"output: pixel ({step.row}, {step.col}) = {_number(step.total)}",
        ),
    )
    for col, z in enumerate((step.padded, step.kernel, step.products, output), start=1):
        fig.add_trace(_grid(finite(z)), 1, col)
    _outline(fig, step.row, step.col, kh, kw, 1)
    _outline(fig, step.row, step.col, 1, 1, 4)
    if any(pad):
        h, w = step.padded.shape
        fig.add_shape(
            type="rect",
            x0=pad[1] - 0.5,
            x1=w - pad[1] - 0.5,
            y0=pad[0] - 0.5,
            y1=h - pad[0] - 0.5,
            line=dict(color="grey", width=2, dash="dash"),
            row=1,
            col=1,
        )
    fig.update_yaxes(autorange="reversed", showticklabels=False, scaleanchor=None)
    fig.update_xaxes(showticklabels=False)
    return style_chart(fig, 300)


def conv_matrix_figure(a: np.ndarray, blocks: tuple[int, int] = (1, 1), title: str = "") -> go.Figure:
    """A convolution matrix as a heatmap (0 white), with lines between the (output, input)
    channel blocks."""
    z = finite(a)
    fig = go.Figure(
        heatmap(
            z,
            value_range(z, symmetric=True),
            SIGNED_SCALE,
            colorbar=colorbar("weight"),
            hovertemplate="row %{y} (output), column %{x} (input)<br>%{z:.4g}<extra></extra>",
        )
    )
    rows_per, cols_per = z.shape[0] // blocks[0], z.shape[1] // blocks[1]
    for b in range(1, blocks[0]):
        fig.add_hline(y=b * rows_per - 0.5, line=dict(color="black", width=1))
    for b in range(1, blocks[1]):
        fig.add_vline(x=b * cols_per - 0.5, line=dict(color="black", width=1))
    fig.update_yaxes(autorange="reversed", scaleanchor="x", title="output pixel (row-major)")
    fig.update_xaxes(constrain="domain", title="input pixel (row-major)")
    return style_chart(fig, min(700, max(300, 14 * z.shape[0] + 120)), title=title)


def piecewise_figure(pieces: Sequence[Any], x0: float, w: float, b: float) -> go.Figure:
    """h as its linear pieces (one colour each), breakpoints marked, and the tangent W x + b at x0."""
    fig = go.Figure()
    for n, p in enumerate(pieces):
        fig.add_trace(
            go.Scatter(
                x=[p.start, p.end],
                y=[p.slope * p.start + p.intercept, p.slope * p.end + p.intercept],
                mode="lines",
                line=dict(color=COLOURS[n % len(COLOURS)], width=4),
                name=f"{p.slope:.4g} x + {p.intercept:.4g} on [{p.start:.4g}, {p.end:.4g}]",
            )
        )
    kinks = [p.end for p in pieces[:-1]]
    fig.add_trace(
        go.Scatter(
            x=kinks,
            y=[p.slope * p.end + p.intercept for p in pieces[:-1]],
            mode="markers",
            marker=dict(color="black", size=9, symbol="x"),
            name="breakpoints",
        )
    )
    lo, hi = pieces[0].start, pieces[-1].end
    fig.add_trace(
        go.Scatter(
            x=[lo, hi],
            y=[w * lo + b, w * hi + b],
            mode="lines",
            name=f"tangent at x0 = {x0:.4g}",
            line=dict(color="black", dash="dash", width=1.5),
        )
    )
    fig.add_trace(
        go.Scatter(
            x=[x0],
            y=[w * x0 + b],
            mode="markers",
            marker=dict(color="black", size=11),
            name=f"h(x0) = {w * x0 + b:.4g}",
        )
    )
    return style_chart(fig, 420, xaxis_title="x", yaxis_title="h(x)", legend=dict(orientation="h", y=-0.2))


def scratch_curves(record: dict[str, Any]) -> go.Figure:
    """Loss (per step and per epoch) and accuracy per epoch on the images the network trains on."""
    epochs = record["epochs"]
    steps = record["step_loss"]
    fig = make_subplots(
        rows=1, cols=2, subplot_titles=("Loss", "Accuracy on the training images"), horizontal_spacing=0.08
    )
    x = np.arange(1, len(steps) + 1) * len(epochs) / max(len(steps), 1)
    fig.add_trace(
        go.Scatter(x=x, y=steps, mode="lines", name="loss per step", line=dict(color="rgba(31,119,180,0.3)", width=1)),
        1,
        1,
    )
    fig.add_trace(epoch_curve(epochs, "loss", "loss after the epoch", dict(color=TRAIN_COLOUR)), 1, 1)
    fig.add_trace(epoch_curve(epochs, "accuracy", "accuracy", dict(color=HELD_OUT_COLOUR)), 1, 2)
    fig.update_xaxes(title_text="epoch")
    fig.update_yaxes(type="log", row=1, col=1)
    fig.update_yaxes(tickformat=".0%", range=[0, 1.05], row=1, col=2)
    return style_chart(fig, 360, legend_below=True)


def bias_bars(contributions: dict[str, float]) -> go.Figure:
    """Horizontal bars: each layer's share of the bias term b."""
    names = list(contributions)
    fig = go.Figure(
        go.Bar(
            y=names, x=[contributions[n] for n in names], orientation="h", hovertemplate="%{y}: %{x:.4g}<extra></extra>"
        )
    )
    return style_chart(fig, max(220, 26 * len(names) + 80), xaxis_title="share of b", yaxis_autorange="reversed")
