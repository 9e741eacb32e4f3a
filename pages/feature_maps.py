"""Feature maps: activations of up to three layers for the chosen image, most active first."""

import numpy as np
import streamlit as st

from interp import methods, viz
from pages.common import cached_model, image_key, model_input, page_model_and_image, show_interp_errors

st.title("Feature maps")
st.caption("What each layer's channels respond to in the image. Channels are ordered by their mean "
           "activation; one colour scale per layer, in activation units.")
picked = page_model_and_image("alexnet_gap_pacs_class")
if picked is None:
    st.stop()
name, model, x, display = picked


@st.cache_data(show_spinner="Computing feature maps...", max_entries=32)
def _maps(name: str, key, layers: tuple[str, ...]):
    x, _ = model_input(name, key)
    return methods.feature_maps(cached_model(name), x, list(layers))


layers = [n for n, m in model.named_modules() if n and not list(m.children())
          and type(m).__name__ in ("Conv2d", "ReLU", "MaxPool2d", "AvgPool2d", "BatchNorm2d")]
convs = methods.conv_layers(model)
picks = [convs[0], convs[len(convs) // 2], convs[-1]] if len(convs) >= 3 else convs


def _after_activation(conv: str) -> str:
    """The first ReLU after a conv: what the next layer actually receives."""
    later = layers[layers.index(conv) + 1:]
    return next((n for n in later if type(model.get_submodule(n)).__name__ == "ReLU"), conv)


default = [_after_activation(c) for c in picks]
chosen = st.multiselect("Layers (up to three)", layers, default=list(dict.fromkeys(default)), max_selections=3,
                        key=f"fm_layers_{name}")
c1, c2 = st.columns(2)
count = c1.slider("Channels shown per layer", 4, 64, 16, step=4, key="fm_count")
rank_by = c2.radio("Rank channels by", ["mean", "max"], horizontal=True, key="fm_rank")
if not chosen:
    st.info("Choose at least one layer.")
    st.stop()
maps = show_interp_errors(_maps, name, image_key(), tuple(chosen))
if maps is None:
    st.stop()
left, right = st.columns([1, 4])
left.image(display, caption="what the model sees", width="stretch")
with right:
    for layer in chosen:
        a = maps[layer]
        top = methods.top_channels(a, k=min(count, len(a)), by=rank_by)
        summary = methods.channel_summary(a)
        st.markdown(f"**{layer}**: {a.shape[0]} channels of {a.shape[1]}x{a.shape[2]}; "
                    f"strongest channel {int(top[0])} (mean {summary['mean'][top[0]]:.3g}, "
                    f"max {summary['max'][top[0]]:.3g}); {int((summary['max'] <= 0).sum())} channels silent")
        fig = viz.feature_grid_figure(a, top, ncols=min(8, len(top)))
        fig.update_layout(height=int(105 * np.ceil(len(top) / min(8, len(top)))) + 30)
        st.plotly_chart(fig, width="stretch", key=f"fm_{layer}")
