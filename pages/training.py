"""Training: curves from the model card, confusion matrix and per-class accuracy."""

import streamlit as st

from dashboard import defaults
from dashboard.loaders import model_card
from dashboard.widgets import model_picker, page
from interp import figures, get_spec

page("Training")
name = model_picker(default=defaults.COURSE_CLASS)
card = model_card(name)
if card is None:
    spec = get_spec(name)
    if spec.weights_from_torchvision:
        st.info(f"{name} uses torchvision's ImageNet weights, trained elsewhere: there is no training record.")
    elif spec.builder is not None:
        st.info(f"{name} is your model, trained outside interp: there is no training record of it here.")
    else:
        st.info(
            f"{name} has not been trained in this installation. Train it with "
            f"`python -m interp train {name}`; its curves appear here afterwards."
        )
    st.stop()

metrics = card["metrics"]
cols = st.columns(4)
cols[0].metric(f"Held-out accuracy ({metrics['split']})", f"{metrics['accuracy']:.1%}")
kept = card.get("kept_epoch", card["best_epoch"])
cols[1].metric(
    "Kept epoch",
    f"{kept} of {len(card['history']['epochs'])}",
    help=f"The weights are those of this epoch; the lowest validation loss was at epoch {card['best_epoch']}.",
)
cols[2].metric("Training time", f"{card['wall_time_s'] / 60:.0f} min")
if card.get("conv1_autocorrelation") is not None:
    cols[3].metric(
        "conv1 autocorrelation",
        f"{card['conv1_autocorrelation']:.2f}",
        help="Lag-1 spatial autocorrelation of the first layer's filters: about 0 for random "
        "initialisation, about 0.66 for Gabor-like filters.",
    )
if card.get("note"):
    st.info(card["note"])
if card.get("train_counts"):
    counts = card["train_counts"]
    st.caption(
        f"Loss: {card.get('loss', 'cross-entropy')}. Trained on {sum(counts):,} images, per class "
        + ", ".join(f"{c} {n:,}" for c, n in zip(card["class_names"], counts))
        + "."
    )
st.plotly_chart(figures.training_curves(card), width="stretch")
left, right = st.columns(2)
with left:
    st.subheader("Confusion matrix")
    st.plotly_chart(figures.confusion_matrix(metrics["confusion_matrix"], card["class_names"]), width="stretch")
with right:
    st.subheader("Accuracy per class")
    st.plotly_chart(figures.per_class_accuracy(metrics["per_class_accuracy"]), width="stretch")
with st.expander("How it was trained"):
    st.code(card["command"], language="bash")
    st.json(
        {
            "settings": card["settings"],
            "hardware": card["hardware"],
            "code_version": card["code_version"],
            "trained_at": card["trained_at"],
            "throughput": card.get("throughput"),
        },
        expanded=False,
    )
