"""CNN from scratch: conv, max-pool, ReLU and linear layers written in numpy (interp.scratch), and
the training curve of overfitting 50 CIFAR-10 training images with them."""

import streamlit as st

from dashboard.widgets import page
from interp import figures, scratch
from interp.errors import InterpError

page(
    "CNN from scratch",
    "Every layer's forward and backward pass written out in numpy (interp.scratch: Conv2d, MaxPool2d, "
    "ReLU, Flatten, Linear, softmax cross-entropy, SGD with momentum), each tested against PyTorch's. "
    "A network that cannot overfit 50 images has a bug in one of them; this one learns them.",
)

record = scratch.read_record()
if st.button("Train again here (about 15 s on two CPU cores)", key="scratch_rerun"):
    with st.spinner("Training the numpy network on 50 images..."):
        try:
            st.session_state["scratch_live"] = scratch.overfit(command="the dashboard's Train again button")
        except InterpError as exc:
            st.error(str(exc))
live = st.session_state.get("scratch_live")
if live is not None:
    record = live
    st.caption(
        "Showing the run just made in this browser session (the shipped record is in checkpoints/scratch_overfit.json)."
    )
if record is None:
    st.info(
        "No training record here yet: `python -m interp scratch` writes checkpoints/scratch_overfit.json "
        "(about 15 s), or use the button above."
    )
    st.stop()
if record.get("note"):
    st.info(record["note"])

last = record["epochs"][-1]
m1, m2, m3, m4 = st.columns(4)
m1.metric("Final accuracy on the training images", f"{record['final_accuracy']:.0%}")
m2.metric("Final loss", f"{last['loss']:.4f}")
m3.metric("Epochs", len(record["epochs"]))
m4.metric("Training time", f"{record['wall_time_s']:.1f} s")
first_90 = next((e["epoch"] for e in record["epochs"] if e["accuracy"] >= 0.9), None)
st.caption(
    f"{record['data']}. "
    + (f"Accuracy first reached 90% after epoch {first_90}." if first_90 else "Accuracy stayed under 90%.")
)
st.plotly_chart(figures.scratch_curves(record), width="stretch", key="scratch_curves")

c1, c2 = st.columns(2)
with c1:
    st.markdown(f"**The network** ({record['parameters']:,} parameters)")
    st.code("\n".join(record["architecture"]), language=None)
with c2:
    st.markdown("**Training**")
    s = record["settings"]
    st.markdown(
        f"SGD, learning rate {s['lr']}, momentum {s['momentum']}, batches of {s['batch_size']}, "
        f"seed {s['seed']}; softmax cross-entropy.  \nCommand: `{record['command']}`"
    )
