"""Does the map point at what the model uses? Deletion removes pixels in the map's order, most important first
(each replaced by the baseline), and tracks the class probability: a faithful map makes it fall fast.
Insertion starts from the baseline and puts pixels back in the same order: it should rise fast. Dashed: the
mean of random pixel orders.
"""

import streamlit as st

from dashboard import defaults, widgets
from dashboard.loaders import cached_model, held_out, methods_options, model_input, probabilities
from interp import InterpError, figures, get_spec, methods

CHOICES = widgets.every_method("grad_cam", "guided_backprop", "saliency")  # the first three are chosen at the start
N_RANDOM = 2  # random pixel orders averaged for the reference curve
# Small inputs by default: the held-out table runs every method and curve on N images.

name, model, x, display = widgets.image_page("Faithfulness", __doc__, defaults.SMALL_CIFAR)
spec = get_spec(name)


@st.cache_data(show_spinner="Deleting and inserting pixels...", max_entries=32)
def _scores(name: str, key, chosen: tuple, target: int, baseline: str, steps: int):
    x, _ = model_input(name, key)
    return methods.trust.method_scores(
        cached_model(name),
        x,
        chosen,
        target=target,
        steps=steps,
        baseline=baseline,
        n_random=N_RANDOM,
        options=methods_options(name, chosen),
    )


@st.cache_data(show_spinner=False, max_entries=512)
def _held_out_scores(name: str, n: int, index: int, chosen: tuple, baseline: str, steps: int):
    """Scores of image ``index`` of the model's n-image held-out sample (cached image by image)."""
    return methods.trust.method_scores(
        cached_model(name),
        held_out(name, n).image(index),
        chosen,
        steps=steps,
        baseline=baseline,
        n_random=N_RANDOM,
        options=methods_options(name, chosen),
    )


probs = probabilities(name, widgets.page_image_key())
c1, c2, c3, c4 = st.columns([3, 2, 2, 2])
chosen = widgets.methods_picker(CHOICES, key="faith_methods", container=c1)
target = widgets.target_picker(name, probs, key="faith_target", label="Class", container=c2)
baseline = c3.selectbox(
    "Baseline",
    methods.trust.BASELINES,
    key="faith_baseline",
    help="What a deleted pixel becomes: a blurred copy of the image (Petsiuk et al.), the "
    "image's mean colour, or zero (the dataset's mean colour after normalisation).",
)
steps = c4.slider("Steps", 10, 100, 25, step=5, key="faith_steps", help="Points on each curve.")
if widgets.no_choice(chosen, "method"):
    st.stop()

scores = widgets.or_stop(_scores, name, widgets.page_image_key(), tuple(chosen), target, baseline, steps)
left, right = st.columns([1, 5])
left.image(display, caption=f"input; class {widgets.class_label(name, target)}", width="stretch")
right.plotly_chart(
    figures.deletion_insertion_curves(scores, spec.class_names[target]), width="stretch", key="faith_curves"
)

st.subheader("Mean areas over held-out images")
st.caption(
    f"Each image's predicted class, {steps} steps, baseline '{baseline}'. Deletion: lower is better; "
    "insertion: higher is better; the random columns are the reference every method should beat."
)
n_images = st.slider("Held-out images", 2, 64, 8, step=2, key="faith_images")
sample = widgets.or_stop(held_out, name, n_images)
count = len(sample)
if sample.note:
    st.caption(sample.note)
per_image, progress = [], st.progress(0.0, text="Scoring held-out images...")
try:
    for index in range(count):
        per_image.append(_held_out_scores(name, n_images, index, tuple(chosen), baseline, steps))
        progress.progress((index + 1) / count, text=f"Scored {index + 1} of {count} held-out images")
except InterpError as exc:
    st.error(str(exc))
    st.stop()
progress.empty()
widgets.method_table(
    methods.trust.summarize(per_image),
    {
        "deletion_auc": st.column_config.NumberColumn("deletion AUC", format="%.3f"),
        "random_deletion_auc": st.column_config.NumberColumn("random deletion AUC", format="%.3f"),
        "insertion_auc": st.column_config.NumberColumn("insertion AUC", format="%.3f"),
        "random_insertion_auc": st.column_config.NumberColumn("random insertion AUC", format="%.3f"),
    },
)


st.subheader("More metrics")
st.caption(
    "Average drop (lower is better) and increase in confidence (higher): the image multiplied by the map. "
    "Sparseness (Gini, higher: more concentrated) and complexity (entropy, lower: more concentrated). "
    "Max-sensitivity (lower: steadier under small input noise). Random logit (SSIM with another class's map; "
    "lower: the map depends on the class). ROAD (mean class probability after removing 10-90% of the most "
    "important pixels, filled by linear imputation; lower is better)."
)
METRIC_COLUMNS = {
    "average_drop": st.column_config.NumberColumn("average drop %", format="%.1f"),
    "increase_in_confidence": st.column_config.NumberColumn("increase in confidence %", format="%.0f"),
    "sparseness": st.column_config.NumberColumn("sparseness", format="%.3f"),
    "complexity": st.column_config.NumberColumn("complexity", format="%.2f"),
    "max_sensitivity": st.column_config.NumberColumn("max-sensitivity", format="%.3f"),
    "random_logit_ssim": st.column_config.NumberColumn("random logit SSIM", format="%.3f"),
    "road_morf": st.column_config.NumberColumn("ROAD (MoRF)", format="%.3f"),
}


@st.cache_data(show_spinner="Scoring the maps...", max_entries=32)
def _metrics(name: str, key, chosen: tuple, target: int):
    x, _ = model_input(name, key)
    spec = get_spec(name)
    return methods.trust.metric_scores(
        cached_model(name),
        x,
        chosen,
        target=target,
        mean=spec.mean,
        std=spec.std,
        options=methods_options(name, chosen),
    )


@st.cache_data(show_spinner=False, max_entries=512)
def _held_out_metrics(name: str, n: int, index: int, chosen: tuple):
    spec = get_spec(name)
    return methods.trust.metric_scores(
        cached_model(name),
        held_out(name, n).image(index),
        chosen,
        mean=spec.mean,
        std=spec.std,
        options=methods_options(name, chosen),
    )


this_image = widgets.or_stop(_metrics, name, widgets.page_image_key(), tuple(chosen), target)
st.markdown(f"**This image**, class {widgets.class_label(name, target)}")
widgets.method_table([{"method": method, **values} for method, values in this_image.items()], METRIC_COLUMNS)
n_metric_images = st.slider("Held-out images for the means", 2, 32, 4, step=2, key="faith_metric_images")
sample = widgets.or_stop(held_out, name, n_metric_images)
scored, progress = [], st.progress(0.0, text="Scoring held-out images...")
try:
    for index in range(len(sample)):
        scored.append(_held_out_metrics(name, n_metric_images, index, tuple(chosen)))
        progress.progress((index + 1) / len(sample), text=f"Scored {index + 1} of {len(sample)} held-out images")
except InterpError as exc:
    st.error(str(exc))
    st.stop()
progress.empty()
st.markdown(f"**Mean over {len(sample)} held-out images**, each for its predicted class")
widgets.method_table(methods.trust.summarize_metrics(scored), METRIC_COLUMNS)
