"""Any attribution methods side by side on the same image and class, drawn on one colour convention. Methods are
grouped by family; the table says what each map shows and what it costs.
"""

import pandas as pd
import streamlit as st

from dashboard import defaults
from dashboard.loaders import explanation, probabilities
from dashboard.widgets import class_label, image_page, no_choice, page_image_key, show_interp_errors, target_picker
from interp import figures
from interp.methods import REGISTRY, by_family

DEFAULT_CHOICE = ("grad_cam", "grad_cam_pp", "score_cam", "saliency", "integrated_gradients", "occlusion")
PER_ROW = 4
CONVENTIONS = {
    "magnitude": "|attribution| over the image, each map scaled to its 99th percentile (red: most important)",
    "signed": "attribution summed over colour channels, each map scaled to its max |value| "
    "(red: raises the class score, blue: lowers it)",
}

name, model, x, display = image_page("All methods", __doc__, defaults.CAM_MODEL)

probs = probabilities(name, page_image_key())
left, right = st.columns([1, 2])
target = target_picker(name, probs, key="all_target", container=left)
convention = right.radio(
    "Colour convention",
    list(CONVENTIONS),
    horizontal=True,
    key="all_convention",
    help="\n\n".join(f"**{k}**: {v}" for k, v in CONVENTIONS.items()),
)
chosen = []
for family, names in by_family().items():
    offered = names
    chosen += (
        st.pills(
            family,
            offered,
            selection_mode="multi",
            format_func=figures.method_title,
            default=[n for n in offered if n in DEFAULT_CHOICE],
            key=f"all_{family}",
        )
        or []
    )
with st.expander("What each method shows and costs"):
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "method": info.title,
                    "family": info.family,
                    "shows": info.shows,
                    "cost per image": info.cost,
                    "reference": info.reference,
                    "also in": ", ".join(info.peers),
                }
                for info in REGISTRY.values()
            ]
        ),
        hide_index=True,
        width="stretch",
    )
if no_choice(chosen, "method"):
    st.stop()

st.caption(f"Class {class_label(name, target)}; {CONVENTIONS[convention]}.")
progress = st.progress(0.0, text="Computing attributions...")
for start in range(0, len(chosen), PER_ROW):
    for col, method in zip(st.columns(PER_ROW), chosen[start : start + PER_ROW]):
        result = show_interp_errors(explanation, name, page_image_key(), method, target)
        done = chosen.index(method) + 1
        progress.progress(done / len(chosen), text=f"{figures.method_title(method)} done ({done} of {len(chosen)})")
        if result is None:
            continue
        if convention == "magnitude":
            values = figures.normalize(result.spatial("absmax"), "percentile")
            fig = figures.heatmap_figure(values, image=display, zrange=(0, 1), colorbar_title="importance")
        else:
            values = figures.normalize(result.spatial("sum"), "symmetric") * 2 - 1
            fig = figures.heatmap_figure(
                values,
                image=display,
                zrange=(-1, 1),
                colorscale="RdBu_r",
                symmetric=True,
                opacity=0.6,
                colorbar_title="signed attribution",
            )
        with col:
            st.markdown(f"**{figures.method_title(method)}**")
            st.plotly_chart(figures.compact(fig, height=280), width="stretch", key=f"all_map_{method}")
            st.caption(REGISTRY[method].shows)
progress.empty()
