"""Each chosen filter's weights (top) and its response to the image (bottom): the filter convolved with the
preprocessed image, plus its bias, before any ReLU.
"""

import numpy as np
import streamlit as st

from dashboard import defaults
from dashboard.loaders import cached_model, model_input, model_layers
from dashboard.widgets import image_page, no_choice, or_stop, page_image_key, show_interp_errors
from interp import figures, methods

name, model, x, display = image_page("Filter activations", __doc__, defaults.COURSE_CLASS)
convs = model_layers(name)["conv"]


@st.cache_data(show_spinner="Computing activations...", max_entries=32)
def _activations(name: str, key, layer: str, indices: tuple[int, ...]):
    x, _ = model_input(name, key)
    return methods.filter_activations(cached_model(name), x, layer, list(indices))


@st.cache_data(show_spinner="Attributing the filter's response...", max_entries=64)
def _neuron_map(name: str, key, layer: str, channel: int, method: str):
    x, _ = model_input(name, key)
    return methods.neuron_attribution(
        cached_model(name), x, layer, channel, method=method, **methods.get_method(method).quick
    )


layer = st.selectbox("Conv layer", convs, key="fa_layer")
n_filters = methods.filters(model, layer).shape[0]
default = defaults.CLASSIC_FILTERS.get((name, layer), list(range(min(5, n_filters))))
indices = st.multiselect(
    "Filters", list(range(n_filters)), default=default, max_selections=10, key=f"fa_indices_{name}_{layer}"
)
if no_choice(indices, "filter"):
    st.stop()
result = or_stop(_activations, name, page_image_key(), layer, tuple(indices))
weights, acts = result
cols = st.columns(len(indices))
for col, i, w, a in zip(cols, indices, weights, acts):
    with col:
        st.markdown(f"**filter {i}**")
        tiles = methods.rgb_tiles(w[None]) if w.shape[0] == 3 else methods.reduce_input_channels(w[None])
        kernel = figures.compact(figures.filter_grid_figure(tiles, labels=[i]), height=220)
        st.plotly_chart(kernel, width="stretch", key=f"fa_w_{i}")
        fig = figures.compact(figures.heatmap_figure(a, colorscale="Gray", colorbar_title="activation"), height=280)
        st.plotly_chart(fig, width="stretch", key=f"fa_act_{i}")
st.image(display, caption="the image as the model sees it", width=240)

st.subheader("Which input pixels drive each filter")
neuron_method = st.selectbox(
    "Method",
    methods.NEURON_METHODS,
    format_func=figures.method_title,
    key="fa_neuron_method",
    help="The attribution of each filter's mean activation over the map, instead of a "
    "class score: which pixels raise that filter's response.",
)
for col, i in zip(st.columns(len(indices)), indices):
    e = show_interp_errors(_neuron_map, name, page_image_key(), layer, i, neuron_method)
    if e is not None:
        fig = figures.heatmap_figure(
            figures.normalize(e.spatial("absmax"), "percentile"),
            image=display,
            zrange=(0, 1),
            colorbar_title="importance",
            title=f"filter {i}",
        )
        col.plotly_chart(figures.compact(fig, height=260), width="stretch", key=f"fa_neuron_{i}")

st.subheader(f"Last conv layer: the first ten channels of `{convs[-1]}`")
last = show_interp_errors(
    _activations, name, page_image_key(), convs[-1], tuple(range(min(10, methods.filters(model, convs[-1]).shape[0])))
)

if last is not None:
    _, acts = last
    st.caption(
        f"{acts.shape[0]} channels of {acts.shape[1]}x{acts.shape[2]}: at this depth each position "
        "covers a large part of the image, and the maps say where a high-level pattern was found."
    )
    fig = figures.feature_grid_figure(acts, np.arange(len(acts)), ncols=5)
    fig.update_layout(height=380)
    st.plotly_chart(fig, width="stretch", key="fa_last")
