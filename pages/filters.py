"""What each conv layer's kernels look like. First layer: each filter as an RGB picture (scaled to its own range
around grey). Deeper layers have one kernel per input channel: shown averaged over input channels or for one
input channel, in weight units.
"""

import numpy as np
import streamlit as st

from dashboard import defaults
from dashboard.loaders import model_card
from dashboard.widgets import model_page
from interp import figures, methods

name, model = model_page("Filters", __doc__, defaults.COURSE_CLASS)

layers = methods.conv_layers(model)
if st.session_state.get("filters_layer") not in layers:
    st.session_state["filters_layer"] = layers[0]
c1, c2, c3 = st.columns([4, 1, 1], vertical_alignment="bottom")
c2.button("First conv layer", on_click=lambda: st.session_state.update(filters_layer=layers[0]), width="stretch")
c3.button("Last conv layer", on_click=lambda: st.session_state.update(filters_layer=layers[-1]), width="stretch")
layer = c1.selectbox("Conv layer", layers, key="filters_layer")

weights = methods.filters(model, layer)
out_ch, in_ch, kh, kw = weights.shape
colour = in_ch == 3
o1, o2, o3 = st.columns(3)
order_by_norm = o1.toggle("Sort by norm (strongest first)", value=False, key="filters_sort")
if colour:
    view = "RGB"
else:
    view = o2.radio(
        "Deeper layer view", ["mean over input channels", "one input channel"], key="filters_view", horizontal=True
    )
    if view == "one input channel":
        channel = o3.number_input("Input channel", 0, in_ch - 1, 0, key=f"filters_in_channel_{name}_{layer}")

order = methods.introspect.order_by_norm(weights) if order_by_norm else np.arange(out_ch)
if colour:
    tiles = methods.rgb_tiles(weights)
elif view == "one input channel":
    tiles = weights[:, int(channel)]  # every filter's kernel for that input channel
else:
    tiles = methods.reduce_input_channels(weights, "mean")
st.markdown(f"`{layer}`: **{out_ch} filters** of {in_ch}x{kh}x{kw}")
if layer == layers[0]:
    card = model_card(name)
    value = card.get("conv1_autocorrelation") if card else methods.conv1_autocorrelation(weights)
    st.caption(
        f"Lag-1 spatial autocorrelation of these filters: **{value:.2f}** "
        "(random initialisation about 0, Gabor-like filters about 0.66)."
    )
grid = figures.filter_grid_figure(tiles[order], labels=order)
grid.update_layout(height=620)
st.plotly_chart(grid, width="stretch", key="filters_grid")

st.subheader("One filter")
index = st.number_input(
    "Filter",
    0,
    out_ch - 1,
    int(order[0]),
    key=f"filters_index_{name}_{layer}",
    help="Filter index in the layer (hover the grid to find one).",
)
w = weights[int(index)]
cols = st.columns(4 if colour else 2)
if colour:
    one = methods.rgb_tiles(weights[int(index) : int(index) + 1])
    big = figures.filter_grid_figure(one, labels=[int(index)], title="as RGB")  # leaves the title its margin
    big.update_layout(height=300)
    cols[0].plotly_chart(big, width="stretch", key="filters_big")
    shared = float(np.abs(w).max())  # one scale for the three channels, so they can be compared
    for c, channel_name in enumerate("RGB"):
        fig = figures.kernel_figure(w[c], title=f"{channel_name} channel", showscale=c == 2, limit=shared)
        # The same right margin on all three holds the B channel's colour bar, so the three maps are drawn
        # the same size.
        fig.update_layout(height=300, margin_r=100)
        cols[c + 1].plotly_chart(fig, width="stretch", key=f"filters_channel_{c}")
else:
    fig = figures.kernel_figure(w.mean(axis=0), title="mean over input channels", what="mean weight")
    fig.update_layout(height=320)
    cols[0].plotly_chart(fig, width="stretch", key="filters_mean")
    kernels = figures.filter_grid_figure(
        methods.introspect.per_input_channel(weights, int(index)), title="its kernel for each input channel"
    )

    kernels.update_layout(height=320)
    cols[1].plotly_chart(kernels, width="stretch", key="filters_kernels")
