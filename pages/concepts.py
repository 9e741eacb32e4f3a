"""Which channels of a layer carried the prediction, and where each of them sits in the image: Concept Relevance
Propagation (Achtibat et al. 2023), LRP let through one channel of the layer at a time. A channel's share is its part
of the relevance that reaches the layer; the shares of all the layer's channels (by absolute value) add up to one, and
their maps add up to the LRP map.
"""

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import defaults
from dashboard.loaders import cached_model, model_input, model_layers, probabilities
from dashboard.widgets import class_label, image_page, or_stop, page_image_key, target_picker
from interp import concepts, figures, get_spec
from interp.methods.attribution.lrp import COMPOSITES

PER_ROW = 3

name, model, x, display = image_page("Concepts", __doc__, defaults.COURSE_CLASS)


@st.cache_data(show_spinner="Propagating the relevance through each channel...", max_entries=32)
def _crp(name: str, key, layer: str, target: int, top: int, composite: str) -> concepts.ConceptRelevance:
    x, _ = model_input(name, key)
    spec = get_spec(name)
    return concepts.crp(
        cached_model(name), x, layer, target=target, top=top, composite=composite, mean=spec.mean, std=spec.std
    )


convs = model_layers(name)["conv"]
c1, c2, c3, c4 = st.columns([2, 2, 1, 2])
layer = c1.selectbox(
    "Layer",
    convs,
    index=len(convs) - 1,
    key=f"concepts_layer_{name}",
    help="The last conv layer by default: its channels are the most object-like.",
)
target = target_picker(name, probabilities(name, page_image_key()), key="concepts_target", container=c2)
top = c3.slider("Channels", 1, 12, 6, key="concepts_top")
composite = c4.selectbox("LRP composite", COMPOSITES, key="concepts_composite")
result = or_stop(_crp, name, page_image_key(), layer, target, top, composite)

st.caption(
    f"Class {class_label(name, result.target)} ({result.probability:.0%}); the {len(result.channels)} channels of "
    f"`{layer}` with the most relevance, {float(np.abs(result.share).sum()):.0%} of it together."
)
bars = go.Figure(
    go.Bar(
        x=[f"channel {c}" for c in result.channels],
        y=result.share,
        marker_color=["#c0392b" if s >= 0 else "#2e86c1" for s in result.share],
        hovertemplate="%{x}: %{y:.1%} of the relevance<extra></extra>",
    )
)
bars.update_layout(height=240, margin=dict(l=10, r=10, t=30, b=10), yaxis_tickformat=".0%", title="Share of relevance")
st.plotly_chart(bars, width="stretch", key="concepts_shares")

# One symmetric colour scale for every channel, so that their maps compare; clipped at the 99.5th
# percentile of |relevance| over all of them, so that a few hot pixels do not wash the rest out.
limit = float(np.percentile(np.abs(result.maps), 99.5)) or 1.0
for start in range(0, len(result.channels), PER_ROW):
    for col, i in zip(st.columns(PER_ROW), range(start, min(start + PER_ROW, len(result.channels)))):
        fig = figures.heatmap_figure(
            np.clip(result.maps[i], -limit, limit),
            image=display,
            title=f"channel {result.channels[i]}: {result.share[i]:+.1%}",
            colorscale="RdBu_r",
            symmetric=True,
            opacity=0.6,
            colorbar_title="relevance (clipped)",
            zrange=(-limit, limit),
        )
        col.plotly_chart(figures.compact(fig, height=300), width="stretch", key=f"concepts_map_{i}")
st.dataframe(
    pd.DataFrame({"channel": result.channels, "relevance": result.relevance, "share": result.share}),
    hide_index=True,
    column_config={"share": st.column_config.NumberColumn(format="percent")},
)
