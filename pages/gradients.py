"""How the target class's score changes with each input pixel. Top: the gradient as colour (grey is zero);
bottom: its largest absolute value over colour channels, in raw units.
"""

import streamlit as st

from dashboard import defaults
from dashboard.loaders import explanation, probabilities
from dashboard.widgets import class_label, image_page, page_image_key, show_interp_errors, target_picker
from interp import figures

METHODS = ["guided_backprop", "guided_grad_cam", "saliency", "smoothgrad", "integrated_gradients"]

name, model, x, display = image_page("Gradients", __doc__, defaults.COURSE_CLASS)

probs = probabilities(name, page_image_key())
c1, c2, c3 = st.columns(3)
target = target_picker(name, probs, key="grad_target", container=c1)
samples = c2.slider("SmoothGrad samples", 5, 50, 25, step=5, key="grad_samples")
steps = c3.slider("Integrated-gradients steps", 10, 100, 50, step=10, key="grad_steps")
options = {"smoothgrad": (("n_samples", samples),), "integrated_gradients": (("steps", steps),)}
cols = st.columns(len(METHODS))
progress = st.progress(0.0, text="Computing attributions...")
for i, (col, method) in enumerate(zip(cols, METHODS)):
    result = show_interp_errors(explanation, name, page_image_key(), method, target, options=options.get(method, ()))
    progress.progress((i + 1) / len(METHODS), text=f"{figures.method_title(method)} done")
    if result is None:
        continue
    with col:
        st.markdown(f"**{figures.method_title(method)}**")
        st.image(figures.gradient_image(result.map), width="stretch")
        fig = figures.compact(
            figures.heatmap_figure(
                result.spatial("absmax"), colorscale="Hot", colorbar_title="max |gradient| over colour"
            ),
            height=300,
        )

        st.plotly_chart(fig, width="stretch", key=f"grad_{method}")
progress.empty()
st.image(display, caption=f"input; explained class {class_label(name, target)}", width=240)
