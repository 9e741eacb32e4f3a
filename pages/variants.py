"""Enhancing AlexNet: the course's three AlexNets on both PACS tasks side by side: architecture,
parameters, accuracy, training curves, first- and last-layer kernels, and what each change did."""

import pandas as pd
import streamlit as st

from dashboard.loaders import cached_model, model_card
from dashboard.widgets import page, show_interp_errors
from interp import figures, methods
from interp.train.variants import CHANGES, TASK_LABELS, architecture_text, variant_effects, variant_rows

page(
    "Enhancing AlexNet",
    "The course's AlexNet (Figure 2) and two variants, one recipe per task for all three: larger "
    "kernels and strides instead of pooling (Figure 3), and average instead of max pooling (Figure 4). "
    "Each is trained to tell a PACS image's domain and, separately, its class. Accuracy is on the "
    "held-out validation split, for the weights as shipped.",
)


@st.cache_data(show_spinner=False)
def _rows() -> list[dict]:
    return variant_rows()


rows = _rows()
effects = variant_effects(rows)
table = pd.DataFrame(
    [
        {
            "variant": r["variant"],
            "task": TASK_LABELS[r["task"]],
            "parameters": f"{r['parameters']:,}",
            "accuracy": f"{r['accuracy']:.1%}" if r["trained"] else "not trained",
            "float32 accuracy": f"{r['float32_accuracy']:.1%}" if r.get("float32_accuracy") is not None else "",
            "conv1 autocorrelation": f"{r['conv1_autocorrelation']:.2f}" if r["trained"] else "",
            "epochs": str(r["epochs"]) if r.get("epochs") is not None else "",  # one type: Arrow needs it
            "min / epoch": f"{r['minutes_per_epoch']:.1f}" if r["trained"] else "",
        }
        for r in rows
    ]
)
st.dataframe(table, hide_index=True, width="stretch")
st.caption(
    "conv1 autocorrelation: lag-1 spatial autocorrelation of the first layer's kernels, about 0 for "
    "random initialisation and about 0.66 for Gabor-like filters. Minutes per epoch on the machine "
    "that trained it (its card says which)."
)

task = st.radio(
    "Task", list(TASK_LABELS), format_func=lambda t: f"PACS {TASK_LABELS[t]}", horizontal=True, key="variants_task"
)
columns = st.columns(3)
for column, row in zip(columns, [r for r in rows if r["task"] == task]):
    with column:
        st.subheader(row["variant"])
        st.caption(CHANGES[row["variant"]])
        if row["trained"]:
            st.markdown(effects[row["name"]])
        st.metric("Parameters", f"{row['parameters'] / 1e6:.2f} M")
        with st.expander("Architecture (print(model))"):
            st.code(architecture_text(row["name"]), language="text")
        if not row["trained"]:
            st.info(f"No weights yet. Train it with `{row['command']}`.")
            continue
        st.metric(
            "Validation accuracy",
            f"{row['accuracy']:.1%}",
            help=f"Weights as shipped; in float32 {row['float32_accuracy']:.1%}."
            if row.get("float32_accuracy") is not None
            else None,
        )
        card = model_card(row["name"])  # read like the row's: there, as the row is trained
        if card is not None:
            curves = figures.training_curves(card).update_layout(height=340)
            st.plotly_chart(curves, width="stretch", key=f"variants_curves_{row['name']}")
        model = show_interp_errors(cached_model, row["name"])
        if model is None:
            continue
        conv = methods.conv_layers(model)
        first, last = methods.filters(model, conv[0]), methods.filters(model, conv[-1])
        st.markdown(f"`{conv[0]}`: {first.shape[0]} kernels of {first.shape[2]}x{first.shape[3]}, as RGB")
        st.plotly_chart(
            figures.filter_grid_figure(methods.rgb_tiles(first)), width="stretch", key=f"variants_first_{row['name']}"
        )
        st.markdown(
            f"`{conv[-1]}`: {last.shape[0]} kernels of {last.shape[2]}x{last.shape[3]}, mean over input channels"
        )
        st.plotly_chart(
            figures.filter_grid_figure(methods.reduce_input_channels(last, "mean")),
            width="stretch",
            key=f"variants_last_{row['name']}",
        )
with st.expander("How they were trained"):
    for row in rows:
        st.code(row["command"], language="bash")
