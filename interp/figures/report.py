"""The report card's figures: the methods x metrics table of ranks, and one chart per metric family
of each method's mean with its 95 % bootstrap interval."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .style import method_title


def _metric_title(metric: str, short: bool = False) -> str:
    """The metric's title and which way is better (``short``: an arrow, up for higher)."""
    from ..whole_dataset.metrics import METRIC_TABLE

    m = METRIC_TABLE[metric]
    if short:
        return f"{m.title} {'↑' if m.higher_is_better else '↓'}"
    return f"{m.title}<br>({'higher' if m.higher_is_better else 'lower'} is better)"


def rank_table_figure(summary: pd.DataFrame) -> go.Figure:
    """Methods (rows) x metrics (columns), each cell the rank (1: best, green), its mean and 95 %
    interval on hover; metrics grouped by family, methods ordered by their mean rank."""
    from ..whole_dataset.metrics import METRICS

    metrics = [m for m in METRICS if m in set(summary["metric"])]
    ranks = summary.pivot(index="method", columns="metric", values="rank")[metrics]
    order = ranks.mean(axis=1).sort_values().index
    ranks = ranks.loc[order]
    cells = summary.set_index(["method", "metric"])
    hover = [
        [
            (
                f"{method_title(method)}<br>{_metric_title(metric)}<br>rank {int(cells.loc[(method, metric), 'rank'])}"
                f"<br>mean {cells.loc[(method, metric), 'mean']:.3g} "
                f"[{cells.loc[(method, metric), 'low']:.3g}, {cells.loc[(method, metric), 'high']:.3g}]"
                f"<br>{int(cells.loc[(method, metric), 'n'])} images"
            )
            if (method, metric) in cells.index
            else "not scored"
            for metric in metrics
        ]
        for method in ranks.index
    ]
    z = ranks.to_numpy(dtype=float)
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=metrics,
            y=[method_title(m) for m in ranks.index],
            text=np.where(np.isnan(z), "", np.nan_to_num(z).astype(int).astype(str)),
            texttemplate="%{text}",
            hovertext=hover,
            hovertemplate="%{hovertext}<extra></extra>",
            colorscale="RdYlGn_r",
            zmin=1,
            zmax=max(2.0, float(np.nanmax(z))),
            colorbar=dict(title="rank"),
        )
    )
    # The metrics' titles under the table (above it, slanted, they ran into the figure's title).
    fig.update_layout(
        height=200 + 28 * len(ranks),
        margin=dict(l=10, r=10, t=40, b=10),
        title="Rank of each method for each metric (1: best; overlapping 95% intervals share a rank)",
        xaxis=dict(tickvals=metrics, ticktext=[_metric_title(m, short=True) for m in metrics], tickangle=-30),
        yaxis=dict(autorange="reversed"),
    )
    return fig


def family_figure(summary: pd.DataFrame, family: str, ncols: int = 3) -> go.Figure:
    """One panel per metric of ``family`` (``ncols`` to a row): each method's mean with its 95 % bootstrap
    interval, the methods in one order in every panel (by their mean rank over the family, best on top)."""
    from ..whole_dataset.metrics import METRICS

    part = summary[summary["family"] == family]
    metrics = [m for m in METRICS if m in set(part["metric"])]
    methods = part.groupby("method")["rank"].mean().sort_values(kind="stable").index.tolist()
    cols = max(1, min(ncols, len(metrics)))
    rows = max(1, math.ceil(len(metrics) / cols))
    fig = make_subplots(
        rows=rows,
        cols=cols,
        shared_yaxes=True,  # the method names once per row, left of its first panel
        subplot_titles=[_metric_title(m) for m in metrics],
        horizontal_spacing=0.03,
        vertical_spacing=0.5 / rows if rows > 1 else 0.0,
    )
    for i, metric in enumerate(metrics):
        cell = part[part["metric"] == metric].set_index("method").reindex(methods).dropna(subset=["mean"])
        fig.add_trace(
            go.Bar(
                x=cell["mean"],
                y=[method_title(m) for m in cell.index],
                orientation="h",
                error_x=dict(
                    type="data",
                    symmetric=False,
                    array=cell["high"] - cell["mean"],
                    arrayminus=cell["mean"] - cell["low"],
                ),
                marker_color="#4c72b0",
                customdata=np.stack([cell["low"], cell["high"], cell["rank"]], 1),
                hovertemplate="%{y}: %{x:.3g} [%{customdata[0]:.3g}, %{customdata[1]:.3g}], rank %{customdata[2]}"
                "<extra></extra>",
                showlegend=False,
            ),
            row=i // cols + 1,
            col=i % cols + 1,
        )
    fig.update_yaxes(autorange="reversed", categoryorder="array", categoryarray=[method_title(m) for m in methods])
    per_row = 70 + 22 * len(methods)
    fig.update_layout(
        height=60 + rows * per_row,
        margin=dict(l=10, r=10, t=90, b=10),
        title=f"{family.capitalize()}: mean over images with its 95% bootstrap interval",
    )
    fig.update_annotations(font_size=11)
    return fig
