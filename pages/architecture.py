"""Architecture: the per-layer table and where the parameters are."""

import pandas as pd
import streamlit as st

from interp import charts, get_spec
from interp.summary import spec_layer_table
from interp import list_models


@st.cache_data(show_spinner=False)
def _table(name: str):
    return spec_layer_table(get_spec(name))


st.title("Architecture")
names = list_models()
name = st.selectbox("Model", names, index=names.index("alexnet_pacs_domain"), key="model")
spec = get_spec(name)
rows, total = _table(name)
st.markdown(f"**{name}**: `{spec.arch}` for {spec.task} ({spec.num_classes} classes), input "
            f"3x{spec.input_size}x{spec.input_size}, **{total:,} parameters**. Default CAM layer: `{spec.target_layer}`.")
if spec.training_note:
    st.caption(spec.training_note)
table = pd.DataFrame([{**r, "output": "x".join(map(str, r["output"]))} for r in rows])
st.dataframe(table, hide_index=True, width="stretch", height=min(600, 36 * len(rows) + 40),
             column_config={"parameters": st.column_config.NumberColumn(format="localized")})
st.subheader("Where the parameters are")
st.plotly_chart(charts.parameters_per_layer(rows), width="stretch")
