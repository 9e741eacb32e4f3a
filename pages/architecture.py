"""Architecture: the per-layer table and where the parameters are."""

import pandas as pd
import streamlit as st

from dashboard import defaults
from dashboard.widgets import first_ready, page
from interp import figures, get_spec, list_models
from interp.methods import default_layer, probe_input
from interp.models import meta_model, spec_layer_table


@st.cache_data(show_spinner=False)
def _table(name: str):
    spec = get_spec(name)
    rows, total = spec_layer_table(spec)
    # Shapes alone decide Grad-CAM's default layer, so a model built on the meta device will do.
    layer = spec.target_layer or default_layer(meta_model(spec), probe_input(spec.input_size).to("meta"))
    return rows, total, layer


page("Architecture")
names = list_models()
name = st.selectbox(
    "Model", names, index=names.index(first_ready(defaults.COURSE_DOMAIN, names) or names[0]), key="model"
)
spec = get_spec(name)
rows, total, cam_layer = _table(name)
st.markdown(
    f"**{name}**: `{spec.arch}` for {spec.task} ({spec.num_classes} classes), input "
    f"{spec.input_label}, **{total:,} parameters**. Default Grad-CAM layer: `{cam_layer}`."
)
if spec.training_note:
    st.caption(spec.training_note)
table = pd.DataFrame([{**r, "output": "x".join(map(str, r["output"]))} for r in rows])
st.dataframe(
    table,
    hide_index=True,
    width="stretch",
    height=min(600, 36 * len(rows) + 40),
    column_config={"parameters": st.column_config.NumberColumn(format="localized")},
)

st.subheader("Where the parameters are")
st.plotly_chart(figures.parameters_per_layer(rows), width="stretch")
