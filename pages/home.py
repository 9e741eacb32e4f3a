"""Home: the model registry as a table."""

import pandas as pd
import streamlit as st

from interp.catalog import registry_rows

st.title("interp: look inside trained image CNNs")
st.caption("Filters, feature maps, CAM and gradients of the models in the registry.")
st.dataframe(pd.DataFrame(registry_rows()), hide_index=True, width="stretch")
