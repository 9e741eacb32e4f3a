"""What each layer's channels respond to in the image. Channels are ordered by their mean activation; one colour
scale per layer, in activation units.
"""

import numpy as np
import streamlit as st

from dashboard import defaults
from dashboard.loaders import cached_model, model_input, model_layers
from dashboard.widgets import image_page, no_choice, or_stop, page_image_key
from interp import figures, methods

name, model, x, display = image_page("Feature maps", __doc__, defaults.COURSE_CLASS)


@st.cache_data(show_spinner="Computing feature maps...", max_entries=32)
def _maps(name: str, key, layers: tuple[str, ...]):
    x, _ = model_input(name, key)
    return methods.feature_maps(cached_model(name), x, list(layers))


layers = model_layers(name)
convs = [c for c in layers["conv"] if c in layers["spatial"]]  # not squeeze-and-excitation's 1 x 1 convs
picks = [convs[0], convs[len(convs) // 2], convs[-1]] if len(convs) >= 3 else convs
# Post-activation maps by default: what the next layer actually receives.
default = [methods.activation_after(model, c, layers["spatial"]) for c in picks]
chosen = st.multiselect(
    "Layers (up to three)",
    layers["spatial"],
    default=list(dict.fromkeys(default)),
    max_selections=3,
    key=f"fm_layers_{name}",
)

c1, c2 = st.columns(2)
count = c1.slider("Channels shown per layer", 4, 64, 16, step=4, key="fm_count")
rank_by = c2.radio("Rank channels by", ["mean", "max"], horizontal=True, key="fm_rank")
if no_choice(chosen, "layer"):
    st.stop()
maps = or_stop(_maps, name, page_image_key(), tuple(chosen))
left, right = st.columns([1, 4])
left.image(display, caption="what the model sees", width="stretch")
with right:
    for layer in chosen:
        a = maps[layer]
        top = methods.introspect.top_channels(a, k=min(count, len(a)), by=rank_by)
        summary = methods.introspect.channel_summary(a)
        st.markdown(
            f"**{layer}**: {a.shape[0]} channels of {a.shape[1]}x{a.shape[2]}; "
            f"strongest channel {int(top[0])} (mean {summary['mean'][top[0]]:.3g}, "
            f"max {summary['max'][top[0]]:.3g}); {int((summary['max'] <= 0).sum())} channels silent"
        )
        fig = figures.feature_grid_figure(a, top, ncols=min(8, len(top)))
        fig.update_layout(height=int(105 * np.ceil(len(top) / min(8, len(top)))) + 30)
        st.plotly_chart(fig, width="stretch", key=f"fm_{layer}")
