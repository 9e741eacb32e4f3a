"""TCAV of named concepts for a model's outputs (``interp.concepts.style_tcav``)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .style import COLOURS


def style_tcav_figure(tables: dict[str, pd.DataFrame]) -> go.Figure:
    """TCAV of styles for two models (``interp.concepts.style_tcav``'s tables, by model name) as
    grouped bars, a panel per model: x its outputs, a colour per style; the bars that are not
    significant faded and hatched (a trace of their own, in the same slot, so the legend's swatches
    are the solid colours)."""
    fig = make_subplots(1, 2, subplot_titles=[f"{t}: {n}" for t, n in zip("AB", tables)], shared_yaxes=True)
    faded = dict(opacity=0.35, pattern_shape="/")
    for col, table in enumerate(tables.values(), start=1):
        for i, style in enumerate(table["concept"].unique()):
            rows = table[table["concept"] == style]
            for sig in (True, False):
                keep = rows["significant"].to_numpy() == sig
                fig.add_bar(
                    x=rows["output_name"],
                    y=rows["score"].where(keep),
                    error_y=dict(type="data", array=rows["std"].where(keep), thickness=1),
                    name=style,
                    legendgroup=style,
                    offsetgroup=style,
                    showlegend=col == 1 and sig,
                    marker=dict(color=COLOURS[i], **({} if sig else faded)),
                    customdata=rows["p_value"],
                    hovertemplate=f"%{{x}}, {style}: TCAV score %{{y:.2f}}, p = %{{customdata:.2g}} "
                    f"({'' if sig else 'not '}significant)<extra></extra>",
                    row=1,
                    col=col,
                )
    # a legend entry for the faded, hatched bars (no data: it takes the first style's slot)
    key = dict(color="#999999", **faded)
    first = tables[next(iter(tables))]["concept"].iloc[0]
    fig.add_bar(x=[None], y=[None], name="not significant", offsetgroup=first, marker=key, row=1, col=1)
    fig.add_hline(y=0.5, line_dash="dot", line_color="#888888")
    fig.update_yaxes(range=[0, 1.05], col=1, title_text="TCAV score")
    return fig.update_layout(barmode="group", height=380, margin=dict(l=10, r=10, t=40, b=10))
