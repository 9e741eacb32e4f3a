"""Imbalance: what a long-tailed training set does to a model, and what the class-balanced focal
loss changes, per class and in where the models look."""

import numpy as np
import streamlit as st

from dashboard import defaults
from dashboard.loaders import cached_model, held_out, model_card
from dashboard.widgets import or_stop, page
from interp import figures, get_spec, methods
from interp.data import long_tail_counts
from interp.losses import class_balanced_weights
from interp.models import weights_command
from interp.train import imbalance_summary, tail_classes

MODELS = defaults.IMBALANCE_PAIR
UPPER_BOUND = defaults.IMBALANCE_UPPER_BOUND
UPPER_LABEL = "balanced training set"
CLASSES = get_spec(MODELS["cross-entropy"]).class_names
POOL = 400  # held-out images loaded to find a class's examples (the shipped sample has 10 per class)
SHOWN = 5  # examples of the chosen class

page(
    "Imbalance",
    "Real datasets are long-tailed: a few classes have most of the images. Two ResNet-32 trained on "
    "CIFAR-10 cut to a long tail, one with cross-entropy, one with the class-balanced focal loss "
    "(Cui et al., CVPR 2019), both tested on the balanced test set (1,000 images per class). Registry names: "
    + ", ".join(MODELS.values())
    + ".",
)

st.subheader("The training set")
ratio = st.radio(
    "Imbalance ratio (most / fewest images)", [10, 50, 100], index=2, horizontal=True, key="imbalance_ratio"
)
counts = long_tail_counts(5000, ratio, len(CLASSES))
st.plotly_chart(figures.class_counts(counts, CLASSES), width="stretch", key="imbalance_counts")
st.caption(
    f"n_i = 5,000 x (1/{ratio})^(i/9) for class i: {sum(counts):,} of the 50,000 training images. "
    "The two models trained at ratio 100."
)

read = {label: model_card(name) for label, name in MODELS.items()}
cards = {label: card for label, card in read.items() if card is not None and "train_counts" in card}
missing = [name for label, name in MODELS.items() if label not in cards]

st.subheader("Accuracy per class")
if missing:
    st.info("Not trained yet: " + "; ".join(f"{n} ({weights_command(get_spec(n))})" for n in missing))
else:
    summaries = {label: imbalance_summary(card) for label, card in cards.items()}
    baseline = summaries["cross-entropy"]
    for col, (label, s) in zip(st.columns(len(summaries)), summaries.items()):
        delta = None if label == "cross-entropy" else s["balanced_accuracy"] - baseline["balanced_accuracy"]
        col.metric(
            f"{label}: balanced accuracy",
            f"{s['balanced_accuracy']:.1%}",
            None if delta is None else f"{delta * 100:+.1f} points",
        )
        tail_delta = None if label == "cross-entropy" else s["tail_accuracy"] - baseline["tail_accuracy"]
        col.metric(
            f"{label}: the five rarest classes",
            f"{s['tail_accuracy']:.1%}",
            None if tail_delta is None else f"{tail_delta * 100:+.1f} points",
        )
    per_class = {label: c["metrics"]["per_class_accuracy"] for label, c in cards.items()}
    upper = model_card(UPPER_BOUND)
    if upper is not None and "per_class_accuracy" in upper.get("metrics", {}):
        # Its rarest five are the long tail's: summarised under the pair's training counts.
        bound = imbalance_summary({**upper, "train_counts": cards["cross-entropy"]["train_counts"]})
        st.markdown(
            f"**Upper bound:** the same ResNet-32 trained on the whole balanced training set (5,000 images "
            f"per class, `{UPPER_BOUND}`) reaches {bound['balanced_accuracy']:.1%}, and "
            f"{bound['tail_accuracy']:.1%} on the five classes that are rarest in the long tail."
        )
        per_class[UPPER_LABEL] = upper["metrics"]["per_class_accuracy"]
    else:
        st.caption(
            f"The upper bound, the same ResNet-32 trained on the whole balanced training set, is not trained "
            f"yet: {weights_command(get_spec(UPPER_BOUND))}."
        )
    st.plotly_chart(figures.per_class_comparison(per_class), width="stretch", key="imbalance_per_class")
    st.caption(
        f"Classes in order of training images in the long tail, most first; the five rarest: "
        f"{', '.join(baseline['tail_classes'])}. Losses: "
        + "; ".join(f"{label}: {s['loss']}" for label, s in summaries.items())
        + "."
    )
    for label, card in cards.items():
        if card.get("note"):
            st.info(f"{label}: {card['note']}")
    with st.expander("Training curves of both models"):
        for label, card in cards.items():
            st.markdown(f"**{label}** (validation: the balanced test set)")
            st.plotly_chart(figures.training_curves(card), width="stretch", key=f"imbalance_curves_{MODELS[label]}")
    st.subheader("Confusion matrices")
    for col, (label, card) in zip(st.columns(len(cards)), cards.items()):
        col.markdown(f"**{label}** (rows: true class, columns: predicted)")
        col.plotly_chart(
            figures.confusion_matrix(card["metrics"]["confusion_matrix"], CLASSES),
            width="stretch",
            key=f"imbalance_confusion_{MODELS[label]}",
        )

st.subheader("The loss explorer")
left, right = st.columns(2)
with left:
    gammas = st.multiselect("Focal gamma", [0.0, 0.5, 1.0, 2.0, 5.0], default=[0.0, 1.0, 2.0], key="imbalance_gammas")
    if gammas:
        st.plotly_chart(figures.focal_curves(gammas), width="stretch", key="imbalance_focal")
    st.caption(
        "The focal term (1 - p_t)^gamma shrinks the loss of samples the model already gets right "
        "(p_t near 1), so training spends itself on the hard ones."
    )
with right:
    beta = st.select_slider(
        "Class-balancing beta", [0.0, 0.9, 0.99, 0.999, 0.9999, 0.99999], value=0.9999, key="imbalance_beta"
    )
    st.plotly_chart(figures.class_weight_curves(counts, CLASSES, beta), width="stretch", key="imbalance_weights")
    weights = class_balanced_weights(counts, beta).numpy()
    st.caption(
        f"Weights 1 / effective number of samples (1 - beta^n) / (1 - beta), summing to 10; at beta = "
        f"{beta:g} the rarest class weighs {weights[-1] / weights[0]:.0f} times the commonest "
        "(beta = 0: all equal; beta near 1: inverse class frequency)."
    )


@st.cache_data(show_spinner="Computing Grad-CAM of both models...", max_entries=16)
def _rare_class_maps(class_index: int):
    """Grad-CAM of the true class on the first SHOWN held-out images of one class, under each model."""
    batch = held_out(MODELS["cross-entropy"], POOL)
    idx = np.flatnonzero(batch.labels == class_index)[:SHOWN]
    rows = {}
    for label, name in MODELS.items():
        model = cached_model(name)
        e = methods.explain(model, batch.x[idx], "grad_cam", target=np.full(len(idx), class_index))
        rows[label] = (e.spatial(), methods.predict(model, batch.x[idx]))
    return [batch.pictures[i] for i in idx], rows, batch.note


st.subheader("Where they look for a rare class")
if missing:
    st.info("The maps need both trained models.")
    st.stop()
rare = tail_classes(cards["cross-entropy"]["train_counts"], CLASSES)
chosen = st.selectbox(
    "Class",
    rare,
    key="imbalance_class",
    format_func=lambda c: f"{c} ({cards['cross-entropy']['train_counts'][CLASSES.index(c)]} training images)",
)
pictures, rows, note = or_stop(_rare_class_maps, CLASSES.index(chosen))
st.caption(
    f"Grad-CAM of '{chosen}' at each model's last convolutional stage on held-out images of that "
    "class; under each map, what that model predicts." + (f" {note}" if note else "")
)
for label, (maps, probs) in rows.items():
    st.markdown(f"**{label}**: {int((probs.argmax(1) == CLASSES.index(chosen)).sum())} of {len(maps)} right")
    for col, picture, cam, p in zip(st.columns(SHOWN), pictures, maps, probs):
        pred = int(p.argmax())
        col.image(
            figures.overlay(picture, figures.normalize(cam), alpha=0.45),
            width="stretch",
            caption=f"{'✓' if CLASSES[pred] == chosen else '✗'} {CLASSES[pred]} ({p[pred]:.0%}), "
            f"p({chosen}) = {p[CLASSES.index(chosen)]:.0%}"
            + ("; map all zero: no evidence for it" if not np.any(cam) else ""),
        )
