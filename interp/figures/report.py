"""The report card's figures: the methods x metrics table of ranks, and one chart per metric family
of each method's mean with its 95 % bootstrap interval."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .style import method_title


def _metric_title(metric: str) -> str:
    from ..whole_dataset.metrics import METRIC_TABLE

    m = METRIC_TABLE[metric]
    return f"{m.title} ({'higher' if m.higher_is_better else 'lower'} is better)"


def rank_table_figure(summary: pd.DataFrame) -> go.Figure:
    """Methods (rows) x metrics (columns), each cell the rank (1: best, green), its mean and 95 %
    interval on hover; metrics grouped by family, methods ordered by their mean rank."""
    from ..whole_dataset.metrics import METRICS

    metrics = [m for m in METRICS if m in set(summary["metric"])]
    ranks = summary.pivot(index="method", columns="metric", values="rank")[metrics]
    order = ranks.mean(1).sort_values().index
    ranks = ranks.loc[order]
    cells = summary.set_index(["method", "metric"])
    hover = [
        [
            (
                f"{method_title(method)}, {_metric_title(metric)}<br>rank {int(cells.loc[(method, metric), 'rank'])}"
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
    fig.update_layout(
        height=120 + 28 * len(ranks),
        margin=dict(l=10, r=10, t=40, b=10),
        title="Rank of each method for each metric (1: best; overlapping 95% intervals share a rank)",
        xaxis=dict(side="top", tickangle=-35),
        yaxis=dict(autorange="reversed"),
    )
    return fig


def family_figure(summary: pd.DataFrame, family: str) -> go.Figure:
    """One panel per metric of ``family``: each method's mean with its 95 % bootstrap interval."""
    part = summary[summary["family"] == family]
    metrics = list(dict.fromkeys(part["metric"]))
    fig = make_subplots(rows=1, cols=max(1, len(metrics)), subplot_titles=[_metric_title(m) for m in metrics])
    for col, metric in enumerate(metrics, start=1):
        rows = part[part["metric"] == metric].sort_values("mean")
        fig.add_trace(
            go.Bar(
                x=rows["mean"],
                y=[method_title(m) for m in rows["method"]],
                orientation="h",
                error_x=dict(
                    type="data",
                    symmetric=False,
                    array=rows["high"] - rows["mean"],
                    arrayminus=rows["mean"] - rows["low"],
                ),
                marker_color="#4c72b0",
                customdata=np.stack([rows["low"], rows["high"], rows["rank"]], 1),
                hovertemplate="%{y}: %{x:.3g} [%{customdata[0]:.3g}, %{customdata[1]:.3g}], rank %{customdata[2]}"
                "<extra></extra>",
                showlegend=False,
            ),
            row=1,
            col=col,
        )
    fig.update_layout(
        height=140 + 22 * part["method"].nunique(),
        margin=dict(l=10, r=10, t=60, b=10),
        title=f"{family.capitalize()}: mean over images with its 95% bootstrap interval",
    )
    fig.update_annotations(font_size=11)
    return fig
