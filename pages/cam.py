"""Class activation maps: which regions raise the score of a class. Raw map values on the colour bar (CAM: the
class score's contribution per position; Grad-CAM: ReLU of the gradient-weighted activations).
"""

import pandas as pd
import streamlit as st

from dashboard import defaults
from dashboard.loaders import cached_model, cam_refusal, explanation, held_out, model_layers, probabilities
from dashboard.widgets import image_page, or_stop, page_image_key, target_picker
from interp import figures, get_spec, methods

GALLERY_POOL = 96  # held-out images classified for the gallery
GALLERY_PER_KIND = 4  # shown right and wrong

name, model, x, display = image_page("CAM", __doc__, defaults.CAM_MODEL)
spec = get_spec(name)


@st.cache_data(show_spinner="Classifying held-out images and computing their maps...", max_entries=8)
def _gallery(name: str, method: str, layer: str | None) -> tuple[methods.trust.Gallery, list, str | None]:
    batch = held_out(name, GALLERY_POOL)
    found = methods.trust.right_and_wrong(cached_model(name), batch.x, batch.labels, method, layer, GALLERY_PER_KIND)
    return found, [(batch.pictures[i], int(batch.labels[i])) for i in found.right + found.wrong], batch.note


reason = cam_refusal(name)
c1, c2 = st.columns(2)
method = c1.radio(
    "Method",
    ["CAM", "Grad-CAM"],
    index=0 if reason is None else 1,
    horizontal=True,
    key=f"cam_method_{name}",
    disabled=reason is not None,
)
if reason is not None:
    st.info(reason)
method_name = "cam" if method == "CAM" else "grad_cam"
layer = None
if method_name == "grad_cam":
    layers = model_layers(name)
    layer = c2.selectbox(
        "Layer", layers["spatial"], index=layers["spatial"].index(layers["default"]), key=f"cam_layer_{name}"
    )

probs = probabilities(name, page_image_key())
top5 = probs.argsort()[::-1][:5]
left, right = st.columns([3, 2])
with right:
    st.markdown("**Top-5 predictions**")
    st.dataframe(
        pd.DataFrame({"class": [spec.class_names[k] for k in top5], "probability": probs[top5]}),
        hide_index=True,
        width="stretch",
        column_config={"probability": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0, format="percent")},
    )
    target = target_picker(name, probs, key="cam_target")
    opacity = st.slider("Map opacity", 0.0, 1.0, 0.5, step=0.05, key="cam_opacity")
result = or_stop(explanation, name, page_image_key(), method_name, target, layer)
with left:
    fig = figures.heatmap_figure(
        result.map,
        image=display,
        opacity=opacity,
        colorbar_title=method,
        title=f"{method} for '{spec.class_names[result.target]}' (p = {result.probability:.1%}), layer {result.layer}",
    )
    fig.update_layout(height=520)
    st.plotly_chart(fig, width="stretch", key="cam_overlay")

st.subheader("Held-out images it got right and wrong")
gallery, shown, note = or_stop(_gallery, name, method_name, layer)
st.caption(
    f"From {len(gallery.predictions)} held-out images ({gallery.accuracy:.0%} correct); "
    "each map explains the predicted class." + (f" {note}" if note else "")
)
pictures = dict(zip(gallery.right + gallery.wrong, shown))
for kind, indices in (("right", gallery.right), ("wrong", gallery.wrong)):
    if not indices:
        st.caption(f"None {kind} in this sample.")
        continue
    for col, i in zip(st.columns(GALLERY_PER_KIND), indices):
        picture, truth = pictures[i]
        pred = int(gallery.predictions[i])
        col.image(
            figures.overlay(picture, figures.normalize(gallery.maps[i]), alpha=0.45),
            width="stretch",
            caption=f"{'✓' if kind == 'right' else '✗'} true {spec.class_names[truth]}, "
            f"predicted {spec.class_names[pred]} ({gallery.confidence[i]:.0%})",
        )
