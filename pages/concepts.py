"""What a prediction is made of. **CRP** (Achtibat et al. 2023): which channels of a layer carried the prediction,
where each sits in the image (LRP let through one channel at a time) and the held-out crops where each mattered most
for the class. **CRAFT** (Fel et al. 2023): the class's own concepts, found by factorising the layer's activations on
crops of its images, ranked by how much of the class's logit each drives. **TCAV** (Kim et al. 2018): does a concept
you name with example images push the class's logit up, more often than random images do?
"""

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import concepts as kept
from dashboard import defaults
from dashboard.loaders import cached_model, model_input, model_layers, probabilities, relevance_layer_examples
from dashboard.look import HELD_OUT
from dashboard.widgets import class_label, image_page, or_stop, page_image_key, show_interp_errors, target_picker
from interp import concepts, figures, get_spec
from interp.errors import DataError
from interp.methods.attribution.lrp import COMPOSITES
from interp.methods.introspect import crop

PER_ROW = 3
REFERENCES = 4  # held-out crops shown per channel and per concept

name, model, x, display = image_page("Concepts", __doc__, defaults.COURSE_CLASS)
spec = get_spec(name)
n_images = st.sidebar.select_slider(
    "Held-out images",
    HELD_OUT,
    100,
    key="concepts_held_out",
    help="Where the reference crops, CRAFT's crops and TCAV's inputs come from: the held-out images of the "
    "model's task (the full split under the data root, else the sample that ships with interp).",
)


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


def progress_bar(text: str):
    """A progress bar and the callback(done, total) that moves it."""
    bar = st.progress(0.0, text=text)
    return bar, lambda done, total: bar.progress(min(1.0, done / max(total, 1)), text=f"{text} {done} of {total}")


# Everything below reads held-out images of the model's classes; a user's own model may have none here.
try:
    batch, of_class = kept.class_images(name, n_images, result.target)
except DataError as exc:
    st.info(f"No reference crops, CRAFT concepts or TCAV for this model: they need held-out images. {exc}")
    st.stop()

# ---- reference images: where each channel mattered most for the class (relevance maximisation)
st.subheader("Where these channels matter most for the class")
st.caption(
    f"For each channel above, the {REFERENCES} held-out crops where it carried the most relevance for "
    f"**{class_label(name, result.target)}** (relevance maximisation): the part of the image its strongest unit sees."
)
bar, moved = progress_bar("Relevance of the held-out images: batch")
references = show_interp_errors(
    relevance_layer_examples, name, layer, n_images, result.target, composite, progress=moved
)
bar.empty()
if references is not None:
    tiles, hover = [], []
    for c in result.channels:
        for r in range(min(REFERENCES, references.top.shape[1])):
            j = int(references.top[c, r])
            tiles.append(crop(batch.pictures[j], references.top_boxes[c, r]))
            hover.append(
                f"channel {c}: held-out image {j} ({batch.class_names[batch.labels[j]]}), "
                f"relevance {references.top_values[c, r]:.3g}"
            )
    grid = figures.picture_grid_figure(
        tiles, hover, ncols=len(tiles) // len(result.channels), side=72, row_labels=[f"ch {c}" for c in result.channels]
    )
    st.plotly_chart(grid.update_layout(height=90 * len(result.channels) + 40), width="stretch", key="concepts_refs")
    if batch.note:
        st.caption(batch.note)

# ---- CRAFT: the class's own concepts
st.subheader(f"The concepts of {class_label(name, result.target)} (CRAFT)")
st.caption(
    f"`{layer}`'s activations on a 3 x 3 grid of crops of each of the {len(of_class)} held-out images of the class, "
    "factorised into non-negative concepts (NMF); each concept's importance is its total Sobol index for the class's "
    "logit, and its map shows where it is in the image above."
)
c1, c2 = st.columns([1, 3], vertical_alignment="bottom")
n_concepts = c1.slider("Concepts", 2, 10, 5, key="concepts_craft_k")
if len(of_class) < 2:
    st.info(f"Only {len(of_class)} held-out image of this class here: CRAFT needs at least two. Take more images.")
else:
    craft_args = (name, layer, n_images, result.target, n_concepts)
    found = kept.craft(*craft_args, run=False)
    if found is None and c2.button("Extract concepts", key="concepts_craft_run", type="primary"):
        bar, moved = progress_bar("CRAFT: batch")
        found = show_interp_errors(kept.craft, *craft_args, progress=moved)
        bar.empty()
    if found is None:
        st.info("Press Extract concepts (CRAFT runs the model on every crop; a minute or two for an AlexNet on a CPU).")
    else:
        labels = [f"concept {i + 1}" for i in range(len(found.importance))]
        bars = go.Figure(
            go.Bar(x=labels, y=found.importance, hovertemplate="%{x}: total Sobol index %{y:.3f}<extra></extra>")
        )
        bars.update_layout(height=220, margin=dict(l=10, r=10, t=30, b=10), title="Importance (total Sobol index)")
        st.plotly_chart(bars, width="stretch", key="concepts_craft_importance")
        st.caption(
            f"Reconstruction error ‖A − UW‖ / ‖A‖ = {found.reconstruction_error:.2f} over {len(found.coefficients)} "
            "crops: the share of the activations the concepts leave unexplained."
        )
        tiles, hover = [], []
        for i in range(len(labels)):
            for j in found.top_crops(i, REFERENCES):
                image, top, left, bottom, right = (int(v) for v in found.crop_boxes[j])
                tiles.append(crop(batch.pictures[of_class[image]], (top, left, bottom, right)))
                hover.append(
                    f"{labels[i]}: held-out image {of_class[image]}, coefficient {found.coefficients[j, i]:.3g}"
                )
        grid = figures.picture_grid_figure(tiles, hover, ncols=REFERENCES, side=72, row_labels=labels)
        st.plotly_chart(grid.update_layout(height=90 * len(labels) + 40), width="stretch", key="concepts_craft_crops")
        presence = show_interp_errors(found.maps, x, cached_model(name))
        if presence is not None:
            top_value = float(presence.max()) or 1.0
            for start in range(0, len(labels), PER_ROW):
                for col, i in zip(st.columns(PER_ROW), range(start, min(start + PER_ROW, len(labels)))):
                    fig = figures.heatmap_figure(
                        presence[i],
                        image=display,
                        title=f"{labels[i]} in this image",
                        colorscale="Viridis",
                        opacity=0.6,
                        colorbar_title="coefficient",
                        zrange=(0.0, top_value),
                    )
                    col.plotly_chart(figures.compact(fig, height=280), width="stretch", key=f"concepts_craft_map_{i}")

# ---- TCAV: concepts a person names
st.subheader(f"Does a concept push {class_label(name, result.target)} up? (TCAV)")
offered, chosen_by_default = kept.set_names(name)
c1, c2 = st.columns([3, 1])
chosen = c1.multiselect("Concept sets", offered, chosen_by_default, key=f"concepts_tcav_sets_{spec.dataset}")
n_random = c2.slider("Random sets", 3, 16, 8, key="concepts_tcav_random", help="More: a surer significance test.")
uploads = st.file_uploader(
    "Or your own concept: a few images of it (at least 2)",
    type=["jpg", "jpeg", "png", "bmp", "webp"],
    accept_multiple_files=True,
    key="concepts_tcav_upload",
)
files = [u.getvalue() for u in uploads or []]
st.caption(
    f"Each concept's direction at `{layer}` (its images against random held-out images, a linear classifier); "
    f"the score is the share of the class's {len(of_class)} held-out images whose logit grows along it. Against "
    f"{n_random} random sets, a two-sided t-test says whether the score differs from a random direction's "
    "(significant: p below 0.05 divided by the number of concepts)."
)
if not chosen and not files:
    st.info("Choose a concept set or give your own images.")
elif len(of_class) < 2:
    st.info(f"Only {len(of_class)} held-out image of this class here: TCAV needs at least two.")
else:
    tcav_args = (name, layer, n_images, result.target, tuple(chosen), n_random, tuple(files))
    scores = kept.run_tcav(*tcav_args, run=False)
    if scores is None and st.button("Run TCAV", key="concepts_tcav_run", type="primary"):
        bar, moved = progress_bar("TCAV: step")
        scores = show_interp_errors(kept.run_tcav, *tcav_args, progress=moved)
        bar.empty()
    if scores is None:
        st.info("Press Run TCAV (it trains one linear classifier per concept and random set).")
    else:
        table = scores.table()
        fig = go.Figure(
            go.Bar(
                x=table["concept"],
                y=table["score"],
                error_y=dict(type="data", array=table["std"]),
                marker_color=["#c0392b" if s else "#bbbbbb" for s in table["significant"]],
                customdata=np.stack([table["p_value"], table["significant"]], 1),
                hovertemplate="%{x}: TCAV score %{y:.2f}, p = %{customdata[0]:.2g}<extra></extra>",
            )
        )
        fig.add_hline(y=0.5, line_dash="dot", annotation_text="0.5", line_color="#888")
        fig.update_layout(
            height=300,
            margin=dict(l=10, r=10, t=40, b=10),
            yaxis=dict(range=[0, 1], title="TCAV score"),
            title="TCAV score (red: significant; grey: not distinguishable from random)",
        )
        st.plotly_chart(fig, width="stretch", key="concepts_tcav_scores")
        st.dataframe(
            table,
            hide_index=True,
            column_config={"cav_accuracy": st.column_config.NumberColumn("CAV accuracy", format="%.2f")},
            key="concepts_tcav_table",
        )
