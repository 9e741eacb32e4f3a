"""A map that explains the model should change when the model's weights are replaced by random ones. Here the
layers of a copy of the model are re-initialised one at a time, from the logits down (cascading), or each on
its own (independent), and every map is recomputed for the same image and class. Adebayo et al. (NeurIPS 2018)
found that guided backprop barely changes: it shows the image's edges more than the model's reasoning.
"""

import streamlit as st

from dashboard import defaults, widgets
from dashboard.loaders import cached_model, methods_options, model_input, probabilities
from interp import figures, methods

CHOICES = widgets.every_method("guided_backprop", "grad_cam", "saliency")  # the first three are chosen at the start
# Light settings for the sampling methods: each is recomputed once per randomisation step.

name, model, x, display = widgets.image_page("Sanity checks", __doc__, defaults.CAM_MODEL)


@st.cache_data(show_spinner="Randomising layers and recomputing the maps...", max_entries=32)
def _randomization(name: str, key, chosen: tuple, kind: str, target: int, seed: int):
    x, _ = model_input(name, key)
    run = methods.trust.cascading_randomization if kind == "cascading" else methods.trust.independent_randomization
    return run(cached_model(name), x, chosen, target=target, seed=seed, options=methods_options(name, chosen))


probs = probabilities(name, widgets.page_image_key())
c1, c2, c3, c4 = st.columns([3, 2, 2, 1])
chosen = widgets.methods_picker(CHOICES, key="sanity_methods", container=c1)
kind = c2.radio(
    "Randomisation",
    ["cascading", "independent"],
    horizontal=True,
    key="sanity_kind",
    help="Cascading: from the logits down, each step adds a layer. Independent: one layer at a "
    "time, the others keep their trained weights.",
)
target = widgets.target_picker(name, probs, key="sanity_target", label="Class explained", container=c3)
seed = int(c4.number_input("Seed", 0, 9999, 0, key="sanity_seed", help="Seeds the random weights."))
if widgets.no_choice(chosen, "method"):
    st.stop()

result = widgets.or_stop(_randomization, name, widgets.page_image_key(), tuple(chosen), kind, target, seed)
left, right = st.columns([1, 5])
left.image(display, caption=f"input; explained class {widgets.class_label(name, result.target)}", width="stretch")
with right:
    st.markdown("**Maps across randomisation depth**")
    st.caption(
        "Each map scaled to its own maximum |value| (the colour bar is a share of it; hover for the raw "
        "value). Channel maps are reduced to their largest |value| over colour channels."
    )
    st.plotly_chart(figures.randomization_strip(result), width="stretch", key="sanity_strip")
st.markdown("**Similarity to the original map**")
st.caption("1 means unchanged. A trustworthy map falls towards 0 as the layers it depends on are randomised.")
st.plotly_chart(figures.similarity_curves(result), width="stretch", key="sanity_curves")
with st.expander("Similarity table"):
    widgets.method_table(
        result.rows(),
        {
            "spearman": st.column_config.NumberColumn(format="%.3f"),
            "ssim": st.column_config.NumberColumn("SSIM", format="%.3f"),
        },
    )
