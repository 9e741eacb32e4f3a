"""Gradients: guided backprop, guided Grad-CAM, saliency, SmoothGrad and integrated gradients side by side."""

import streamlit as st

from interp import get_spec, viz
from pages.common import (cached_explanation, cached_probabilities, class_label, image_key, page_model_and_image,
                          show_interp_errors)

METHODS = ["guided_backprop", "guided_grad_cam", "saliency", "smoothgrad", "integrated_gradients"]
TITLES = {"guided_backprop": "Guided backprop", "guided_grad_cam": "Guided Grad-CAM", "saliency": "Saliency",
          "smoothgrad": "SmoothGrad", "integrated_gradients": "Integrated gradients"}

st.title("Gradients")
st.caption("How the target class's score changes with each input pixel. Top: the gradient as colour "
           "(grey is zero); bottom: its largest absolute value over colour channels, in raw units.")
picked = page_model_and_image("alexnet_gap_pacs_class")
if picked is None:
    st.stop()
name, model, x, display = picked
spec = get_spec(name)


probs = cached_probabilities(name, image_key())
c1, c2, c3 = st.columns(3)
target = c1.selectbox("Target class", range(spec.num_classes), index=int(probs.argmax()),
                      format_func=lambda k: f"{class_label(name, k)} ({probs[k]:.1%})", key=f"grad_target_{name}")
samples = c2.slider("SmoothGrad samples", 5, 50, 25, step=5, key="grad_samples")
steps = c3.slider("Integrated-gradients steps", 10, 100, 50, step=10, key="grad_steps")
options = {"smoothgrad": (("n_samples", samples),), "integrated_gradients": (("steps", steps),)}
cols = st.columns(len(METHODS))
progress = st.progress(0.0, text="Computing attributions...")
for i, (col, method) in enumerate(zip(cols, METHODS)):
    result = show_interp_errors(cached_explanation, name, image_key(), method, int(target),
                                options=options.get(method, ()))
    progress.progress((i + 1) / len(METHODS), text=f"{TITLES[method]} done")
    if result is None:
        continue
    with col:
        st.markdown(f"**{TITLES[method]}**")
        st.image(viz.gradient_image(result.map), width="stretch")
        fig = viz.compact(viz.heatmap_figure(result.spatial("absmax"), colorscale="Hot",
                                             colorbar_title="max |gradient| over colour"), height=300)
        st.plotly_chart(fig, width="stretch", key=f"grad_{method}")
progress.empty()
st.image(display, caption=f"input; explained class {class_label(name, int(target))}", width=240)
